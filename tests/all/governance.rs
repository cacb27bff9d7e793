//! The governance workflows of the regulations, end to end through the API: products
//! reach only those entitled and can be withdrawn (TJ-Sec Art. 9, 11; SYS Art. 28, 33, 41,
//! 50; QQHR Art. 20, 23), and the register of organisations (QQHR Art. 14, 23). Every
//! refusal is recorded.

use axum::http::{Method, StatusCode};
use sandbox_runtime::identity::{self, Role};
use sandbox_runtime::review::{self, Decision};
use sandbox_runtime::{Error, jobs, scenarios, tokens};
use sandbox_tests::{DEVELOPER, OPERATOR, SUPERVISOR, count, raw, scenario_text};
use serde_json::{Value, json};

use crate::server::{Api, DATA_USER};

/// A data user the product is not granted to.
const OUTSIDER: &str = "user-wu";
/// A data user of the granted organisation.
const ORG_USER: &str = "user-li";
/// A unified social credit code (its check character holds).
const ORG: &str = "91120000MA05K7Q3XD";
/// Another.
const DEV_ORG: &str = "91110000100003208K";

fn organisation(name: &str, until: &str, cap: Option<f64>) -> Value {
    json!({"name": name, "security_officer": "刘敏", "security_contact": "022-2345 6789",
           "qualified_until": until, "epsilon_cap": cap})
}

/// The API with a registered organisation, data users in and outside it, tokens for
/// them, and a released product of a scenario whose recipients are `DATA_USER` and the
/// organisation. Returns the API and the product's id.
fn released() -> (Api, String) {
    let mut api = Api::new();
    let mut org = organisation("天津数据交易中心", "2030-12-31", None);
    org["credit_code"] = json!(ORG);
    let (status, body) = api.post(OPERATOR, "/api/v1/organisations", org);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for (name, org) in [(OUTSIDER, None), (ORG_USER, Some(ORG))] {
        let (status, body) = api.post(
            OPERATOR,
            "/api/v1/principals",
            json!({"name": name, "role": "data_user", "organisation": org}),
        );
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["organisation"], json!(org));
        api.add_token(name);
    }
    let spec = scenario_text("income-for-users", 3.0, 1.0).replace(
        "[budget]",
        &format!("recipients = [\"{DATA_USER}\", \"org:{ORG}\"]\n[budget]"),
    );
    let s = scenarios::apply(&api.f.domain, DEVELOPER, &spec).unwrap();
    sandbox_tests::approve(&api.f.domain, &s.id.to_string()).unwrap();
    let report = jobs::submit(
        &api.f.domain,
        DEVELOPER,
        &jobs::Submission {
            scenario: "income-for-users",
            module: &sandbox_tests::text_module("Incomes rose in every district."),
            params_json: "{}",
            limits: sandbox_runtime::wasm::JobLimits::default().into(),
            resubmits: None,
        },
    )
    .unwrap();
    let out = report.outputs[0].id.clone();
    review::decide(&api.f.domain, OPERATOR, &out, Decision::Approve, None).unwrap();
    let o = review::decide(&api.f.domain, SUPERVISOR, &out, Decision::Approve, None).unwrap();
    assert_eq!(o.status, "released");
    let id = review::products(&api.f.domain, OPERATOR).unwrap()[0]
        .id
        .clone();
    (api, id)
}

fn refused_downloads(api: &Api, actor: &str, id: &str, error: &str) -> i64 {
    let conn = raw(&api.f.domain);
    conn.query_row(
        &format!(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'product.download_refused'
             AND actor = ?1 AND subject = ?2 AND {} = ?3",
            conn.json_field("details", "error")
        ),
        [actor, &format!("product:{id}"), error],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn products_reach_only_those_entitled_and_a_withdrawal_refuses_every_download_after_it() {
    let (api, id) = released();
    let file = |who: &str| {
        let (_, p) = api.get(who, &format!("/api/v1/products/{id}"));
        p["catalog"]["files"][0].as_str().map(str::to_string)
    };
    // The manifest writes the scope at release; the catalog shows it to everyone.
    let (status, p) = api.get(DATA_USER, &format!("/api/v1/products/{id}"));
    assert_eq!(status, StatusCode::OK, "{p}");
    assert_eq!(
        p["manifest"]["scope"],
        json!([DATA_USER, format!("org:{ORG}")])
    );
    assert_eq!(p["catalog"]["entitlement"], "granted");
    let name = file(DATA_USER).unwrap();
    // An outsider sees that it exists, what it is, for whom, from where: not its files.
    let (status, list) = api.get(OUTSIDER, "/api/v1/products");
    assert_eq!(status, StatusCode::OK);
    let entry = &list[0];
    assert_eq!(entry["id"], json!(id));
    assert_eq!(entry["entitlement"], Value::Null);
    assert_eq!(entry["files"], json!([]));
    assert_eq!(entry["scope"].as_array().unwrap().len(), 2);
    assert_eq!(
        entry["providers"],
        json!([]),
        "the job asked nothing of the data"
    );
    assert!(entry["purpose"].as_str().unwrap().contains("annual report"));
    let (_, p) = api.get(OUTSIDER, &format!("/api/v1/products/{id}"));
    assert_eq!(p["manifest"], Value::Null);
    assert_eq!(p["signature"], Value::Null);
    let path = format!("/api/v1/products/{id}/files/{name}");
    let (status, body) = api.get(OUTSIDER, &path);
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(refused_downloads(&api, OUTSIDER, &id, "forbidden"), 1);
    assert_eq!(api.refusals(OUTSIDER, &format!("api:GET {path}")), 1);
    // Nor the manifest by name.
    let (status, _) = api.get(
        OUTSIDER,
        &format!("/api/v1/products/{id}/files/manifest.json"),
    );
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The recipient downloads; so does a data user of the granted organisation, and the
    // developer whose job made it.
    for who in [DATA_USER, ORG_USER, DEVELOPER] {
        let (status, body) = api.raw(Method::GET, &path, api.token(who), None);
        assert_eq!(
            status,
            StatusCode::OK,
            "{who}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(body, b"Incomes rose in every district.");
    }
    // A data user reads nothing else: not the catalog of datasets, not scenarios, jobs or
    // outputs, not the audit log.
    for path in [
        "/api/v1/datasets",
        "/api/v1/scenarios",
        "/api/v1/jobs",
        "/api/v1/outputs",
        "/api/v1/audit/events",
    ] {
        assert_eq!(api.get(DATA_USER, path).0, StatusCode::FORBIDDEN, "{path}");
    }

    // Whom a withdrawal would notify.
    let (status, holders) = api.get(SUPERVISOR, &format!("/api/v1/products/{id}/holders"));
    assert_eq!(status, StatusCode::OK, "{holders}");
    let names: Vec<&str> = holders
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["principal"].as_str().unwrap())
        .collect();
    assert_eq!(names, [DEVELOPER, ORG_USER, DATA_USER]);
    assert_eq!(holders[1]["organisation"], ORG);

    // Only operators and supervisors withdraw, and with a reason.
    let withdraw = format!("/api/v1/products/{id}/withdraw");
    assert_eq!(
        api.post(DEVELOPER, &withdraw, json!({"reason": "mine"})).0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api.post(DATA_USER, &withdraw, json!({"reason": "x"})).0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api.post(SUPERVISOR, &withdraw, json!({"reason": "  "})).0,
        StatusCode::BAD_REQUEST
    );
    let (status, w) = api.post(
        SUPERVISOR,
        &withdraw,
        json!({"reason": "a source dataset was found to hold errors"}),
    );
    assert_eq!(status, StatusCode::OK, "{w}");
    assert_eq!(w["holders"].as_array().unwrap().len(), 3);
    assert_eq!(
        w["notice"]["holders"],
        json!([DEVELOPER, ORG_USER, DATA_USER])
    );
    assert_eq!(w["product"]["withdrawal"]["withdrawn_by"], SUPERVISOR);
    // Withdrawn once, for good.
    assert_eq!(
        api.post(OPERATOR, &withdraw, json!({"reason": "again"})).0,
        StatusCode::CONFLICT
    );

    // From now on every download is refused, to everyone, and recorded; the notice stays
    // readable to those entitled.
    for who in [DATA_USER, ORG_USER, DEVELOPER, OPERATOR] {
        let (status, body) = api.get(who, &path);
        assert_eq!(status, StatusCode::GONE, "{who}: {body}");
        assert_eq!(body["error"], "withdrawn");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("found to hold errors")
        );
        assert_eq!(refused_downloads(&api, who, &id, "withdrawn"), 1, "{who}");
    }
    let (status, notice) = api.raw(
        Method::GET,
        &format!("/api/v1/products/{id}/files/withdrawal.json"),
        api.token(DATA_USER),
        None,
    );
    assert_eq!(status, StatusCode::OK);
    let notice: Value = serde_json::from_slice(&notice).unwrap();
    assert_eq!(notice["format"], review::WITHDRAWAL_FORMAT);
    assert_eq!(
        api.get(
            OUTSIDER,
            &format!("/api/v1/products/{id}/files/withdrawal.json")
        )
        .0,
        StatusCode::FORBIDDEN
    );
    // The catalog and the product's answer show it.
    let (_, list) = api.get(OUTSIDER, "/api/v1/products");
    assert_eq!(
        list[0]["withdrawal"]["reason"],
        "a source dataset was found to hold errors"
    );
    let (_, p) = api.get(DATA_USER, &format!("/api/v1/products/{id}"));
    assert_eq!(p["withdrawal"]["product_id"], json!(id));
    assert!(p["withdrawal_signature"].is_string());
    // Nor is it granted to anyone more.
    assert_eq!(
        api.post(
            OPERATOR,
            &format!("/api/v1/products/{id}/grants"),
            json!({"grantee": OUTSIDER})
        )
        .0,
        StatusCode::GONE
    );

    // The notice verifies offline against the manifest's key; an edited one does not.
    let dir = api.f.domain.layout().products().join(&id);
    let manifest = review::verify_product(&dir, None).unwrap();
    let verified = review::verify_withdrawal(&dir, &manifest).unwrap().unwrap();
    assert_eq!(verified["withdrawn_by"], SUPERVISOR);
    let text = std::fs::read_to_string(dir.join(review::WITHDRAWAL)).unwrap();
    std::fs::write(
        dir.join(review::WITHDRAWAL),
        text.replace("errors", "nothing"),
    )
    .unwrap();
    assert!(matches!(
        review::verify_withdrawal(&dir, &manifest),
        Err(Error::Verify(_))
    ));
    std::fs::write(dir.join(review::WITHDRAWAL), text).unwrap();
    // Every step is in a log that still verifies.
    let conn = raw(&api.f.domain);
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM audit_events WHERE action = 'product.withdrawn'"
        ),
        1
    );
    sandbox_runtime::audit::verify_custodian(&api.f.domain).unwrap();
}

#[test]
fn grants_after_release_are_the_operators_and_recorded() {
    let (api, id) = released();
    let grants = format!("/api/v1/products/{id}/grants");
    let (_, p) = api.get(OUTSIDER, &format!("/api/v1/products/{id}"));
    assert_eq!(p["catalog"]["entitlement"], Value::Null);
    // Supervisors and developers do not grant; products go to data users and
    // organisations only.
    for who in [SUPERVISOR, DEVELOPER, DATA_USER] {
        assert_eq!(
            api.post(who, &grants, json!({"grantee": OUTSIDER})).0,
            StatusCode::FORBIDDEN,
            "{who}"
        );
    }
    let (status, body) = api.post(OPERATOR, &grants, json!({"grantee": SUPERVISOR}));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = api.post(OPERATOR, &grants, json!({"grantee": "org:12345"}));
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a malformed credit code"
    );
    assert_eq!(body["error"], "bad_request");
    let (status, _) = api.post(
        OPERATOR,
        &grants,
        json!({"grantee": format!("org:{DEV_ORG}")}),
    );
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "an organisation not in the register"
    );
    let (status, body) = api.post(OPERATOR, &grants, json!({"grantee": OUTSIDER}));
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let later = body.as_array().unwrap().last().unwrap().clone();
    assert_eq!(later["grantee"], OUTSIDER);
    assert_eq!(later["at_release"], false);
    assert_eq!(later["granted_by"], OPERATOR);
    assert_eq!(
        api.post(OPERATOR, &grants, json!({"grantee": OUTSIDER})).0,
        StatusCode::CONFLICT
    );
    let (_, p) = api.get(OUTSIDER, &format!("/api/v1/products/{id}"));
    assert_eq!(p["catalog"]["entitlement"], "granted");
    // The signed manifest keeps the scope at release.
    assert_eq!(p["manifest"]["scope"].as_array().unwrap().len(), 2);
    assert_eq!(
        count(
            &raw(&api.f.domain),
            "SELECT COUNT(*) FROM audit_events WHERE action = 'product.granted'"
        ),
        1
    );
    // A recipient the scenario names must be a data user or a registered organisation.
    let spec = scenario_text("bad-recipients", 1.0, 1.0).replace(
        "[budget]",
        &format!("recipients = [\"{SUPERVISOR}\"]\n[budget]"),
    );
    assert!(matches!(
        scenarios::apply(&api.f.domain, DEVELOPER, &spec),
        Err(Error::Invalid(m)) if m.contains("not a data user")
    ));
    let spec = scenario_text("bad-recipients", 1.0, 1.0).replace(
        "[budget]",
        &format!("recipients = [\"org:{DEV_ORG}\"]\n[budget]"),
    );
    assert!(matches!(
        scenarios::apply(&api.f.domain, DEVELOPER, &spec),
        Err(Error::Invalid(m)) if m.contains("register")
    ));
}

#[test]
fn an_organisation_whose_qualification_ended_has_its_developers_work_refused_and_its_cap_holds() {
    let api = Api::new();
    // The register refuses a code whose check character does not hold.
    let body = |code: &str, until: &str, cap: Option<f64>| {
        let mut o = organisation("滨海数据科技有限公司", until, cap);
        o["credit_code"] = json!(code);
        o
    };
    let (status, b) = api.post(
        OPERATOR,
        "/api/v1/organisations",
        body("91110000100003208J", "2030-01-01", None),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{b}");
    assert!(b["message"].as_str().unwrap().contains("check character"));
    assert_eq!(
        api.post(
            SUPERVISOR,
            "/api/v1/organisations",
            body(DEV_ORG, "2030-01-01", None)
        )
        .0,
        StatusCode::FORBIDDEN
    );
    let (status, o) = api.post(
        OPERATOR,
        "/api/v1/organisations",
        body(DEV_ORG, "2030-01-01", None),
    );
    assert_eq!(status, StatusCode::CREATED, "{o}");
    assert_eq!(
        api.post(
            OPERATOR,
            "/api/v1/organisations",
            body(DEV_ORG, "2030-01-01", None)
        )
        .0,
        StatusCode::CONFLICT
    );
    let (status, p) = api.call(
        Method::PUT,
        &format!("/api/v1/principals/{DEVELOPER}/organisation"),
        api.token(OPERATOR),
        Some(json!({"organisation": DEV_ORG})),
    );
    assert_eq!(status, StatusCode::OK, "{p}");
    assert_eq!(p["organisation"], DEV_ORG);
    let (_, o) = api.get(SUPERVISOR, &format!("/api/v1/organisations/{DEV_ORG}"));
    assert_eq!(o["members"], json!([DEVELOPER]));

    // Its qualification ends: the developer's work is refused as a suspension's is.
    let yesterday = (chrono::Utc::now().date_naive() - chrono::Duration::days(1)).to_string();
    let change = |until: &str, cap: Option<f64>| {
        let mut b = organisation("滨海数据科技有限公司", until, cap);
        b["reason"] = json!("annual review");
        api.call(
            Method::PUT,
            &format!("/api/v1/organisations/{DEV_ORG}"),
            api.token(OPERATOR),
            Some(b),
        )
    };
    let (status, o) = change(&yesterday, None);
    assert_eq!(status, StatusCode::OK, "{o}");
    let submit = || {
        api.post(
            DEVELOPER,
            "/api/v1/jobs?wait=60",
            json!({"scenario": api.f.scenario.id.to_string(), "module": crate::server::text_module("x")}),
        )
    };
    let (status, body) = submit();
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("qualification"),
        "{body}"
    );
    // A query of a job already running is refused under the scenario rule, as for a
    // suspended developer.
    assert!(matches!(
        api.f.ask("SELECT COUNT(*) FROM residents"),
        Err(Error::Refused(r)) if r.rule == sandbox_runtime::mediate::Rule::Scenario
            && r.message.contains("qualification")
    ));
    // Renewed, it works again.
    let next_year = (chrono::Utc::now().date_naive() + chrono::Duration::days(365)).to_string();
    assert_eq!(change(&next_year, None).0, StatusCode::OK);
    let (status, body) = submit();
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // A cap across the organisation's scenarios: ε 1.5 in all, though the scenario has 3.
    assert_eq!(change(&next_year, Some(1.5)).0, StatusCode::OK);
    api.f.ask("SELECT COUNT(*) FROM residents").unwrap();
    match api.f.ask("SELECT COUNT(*) FROM residents") {
        Err(Error::Refused(r)) => {
            assert_eq!(r.rule, sandbox_runtime::mediate::Rule::BudgetExhausted);
            assert!(r.message.contains(DEV_ORG), "{}", r.message);
        }
        other => panic!("{other:?}"),
    }
    let (_, o) = api.get(OPERATOR, &format!("/api/v1/organisations/{DEV_ORG}"));
    assert_eq!(o["epsilon_spent"], 1.0);
    // The scenario's own balance is untouched by the refusal.
    let (_, b) = api.get(
        DEVELOPER,
        &format!("/api/v1/scenarios/{}/budget", api.f.scenario.id),
    );
    assert_eq!(b["epsilon_spent"], 1.0);

    // The register exported, recorded with the hash of what left.
    let (status, csv) = api.raw(
        Method::GET,
        "/api/v1/organisations/export?format=csv",
        api.token(SUPERVISOR),
        None,
    );
    assert_eq!(status, StatusCode::OK);
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.starts_with("\u{feff}credit_code,name,"), "{csv}");
    assert!(
        csv.contains(&format!(
            "{DEV_ORG},滨海数据科技有限公司,刘敏,022-2345 6789,{next_year},1.5,1,{DEVELOPER},"
        )),
        "{csv}"
    );
    assert_eq!(
        count(
            &raw(&api.f.domain),
            "SELECT COUNT(*) FROM audit_events WHERE action = 'organisation.exported'"
        ),
        1
    );
    // Every change is recorded with what it was and what it is.
    let changes = count(
        &raw(&api.f.domain),
        "SELECT COUNT(*) FROM audit_events WHERE action = 'organisation.changed'",
    );
    assert_eq!(changes, 3);
}

#[test]
fn a_data_user_signs_in_to_the_console_and_sees_only_products() {
    let dir = tempfile::tempdir().unwrap();
    let domain = sandbox_tests::init_domain(&dir.path().join("d"));
    identity::add(&domain, None, "ops", Role::Operator).unwrap();
    identity::add(&domain, Some("ops"), "user", Role::DataUser).unwrap();
    let t = tokens::issue(&domain, "ops", "user").unwrap();
    let (_, session) = sandbox_runtime::sessions::sign_in(&domain, &t.token).unwrap();
    assert_eq!(session.principal.role, Role::DataUser);
    // Scenario lists and the dataset catalog are not for it.
    assert!(matches!(
        sandbox_runtime::catalog::list(&domain, "user"),
        Err(Error::Forbidden(_))
    ));
    assert!(review::catalog(&domain, "user").unwrap().is_empty());
}

/// The browser test of a withdrawal (QQHR Art. 20, 23): a data user downloads a product
/// granted to it; a supervisor signs in to the console, sees the holder, withdraws the
/// product with a reason and a confirmation; the data user, signed in to the console,
/// sees the withdrawal and is refused the file, in the console and through the API.
#[test]
fn a_supervisor_withdraws_a_product_in_the_console_and_the_data_users_download_is_refused() {
    use fantoccini::Locator;
    use sandbox_tests::browser::{Driver, click, sign_in, wait_text};

    let Some(driver) = Driver::start() else {
        return;
    };
    let f = sandbox_tests::Fixture::new();
    identity::add(&f.domain, Some(OPERATOR), DATA_USER, Role::DataUser).unwrap();
    let user_token = tokens::issue(&f.domain, OPERATOR, DATA_USER).unwrap().token;
    let spec = scenario_text("income-for-users", 3.0, 1.0).replace(
        "[budget]",
        &format!("recipients = [\"{DATA_USER}\"]\n[budget]"),
    );
    let s = scenarios::apply(&f.domain, DEVELOPER, &spec).unwrap();
    sandbox_tests::approve(&f.domain, &s.id.to_string()).unwrap();
    let report = jobs::submit(
        &f.domain,
        DEVELOPER,
        &jobs::Submission {
            scenario: "income-for-users",
            module: &sandbox_tests::text_module("Incomes rose in every district."),
            params_json: "{}",
            limits: sandbox_runtime::wasm::JobLimits::default().into(),
            resubmits: None,
        },
    )
    .unwrap();
    let out = report.outputs[0].id.clone();
    review::decide(&f.domain, OPERATOR, &out, Decision::Approve, None).unwrap();
    review::decide(&f.domain, SUPERVISOR, &out, Decision::Approve, None).unwrap();
    let product = review::products(&f.domain, OPERATOR).unwrap()[0].clone();
    let file = review::catalog(&f.domain, DATA_USER).unwrap()[0].files[0].clone();
    let server = sandbox_tests::LiveServer::start(f, sandbox_server::Config::default());
    let base = server.url.clone();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let api_download = || {
        let mut r = agent
            .get(format!(
                "{base}/api/v1/products/{}/files/{file}",
                product.id
            ))
            .header("Authorization", format!("Bearer {user_token}"))
            .call()
            .unwrap();
        (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        )
    };
    // Before: the data user has the file.
    assert_eq!(
        api_download(),
        (200, "Incomes rose in every district.".to_string())
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = driver.client().await;
        // The supervisor finds the product, its scope and its holder, and withdraws it:
        // the confirmation is required.
        c.goto(&format!("{base}/console/products/{}", product.id))
            .await
            .unwrap();
        sign_in(&c, server.token(SUPERVISOR)).await;
        wait_text(&c, "#who", "sup-chen (supervisor)").await;
        c.goto(&format!("{base}/console/products/{}", product.id))
            .await
            .unwrap();
        wait_text(&c, "#scope .grant", DATA_USER).await;
        wait_text(&c, "tr.holder td", DATA_USER).await;
        c.find(Locator::Id("withdraw-reason"))
            .await
            .unwrap()
            .send_keys("A source dataset was found to hold errors.")
            .await
            .unwrap();
        click(&c, "#withdraw").await;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let url = c.current_url().await.unwrap().to_string();
        assert!(
            !url.contains("done="),
            "withdrawn without confirming: {url}"
        );
        click(&c, "#withdraw-confirm").await;
        click(&c, "#withdraw").await;
        wait_text(
            &c,
            "#notice",
            "The product is withdrawn; its holders are listed for notification.",
        )
        .await;
        wait_text(
            &c,
            "#withdrawal-reason",
            "A source dataset was found to hold errors.",
        )
        .await;
        assert!(
            c.find(Locator::Id("withdraw")).await.is_err(),
            "withdrawn once"
        );
        click(&c, "#sign-out").await;
        // The data user signs in: the console shows products only, this one withdrawn,
        // and its file is refused.
        sign_in(&c, &user_token).await;
        wait_text(&c, "#who", &format!("{DATA_USER} (data user)")).await;
        let nav = c
            .find(Locator::Css("header nav"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(nav.trim(), "Products");
        let status = c
            .find(Locator::Css(&format!(
                "tr.product[data-id='{}'] td.status",
                product.id
            )))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(status.starts_with("withdrawn"), "{status}");
        c.goto(&format!("{base}/console/products/{}", product.id))
            .await
            .unwrap();
        wait_text(
            &c,
            "#files-withdrawn",
            "Its files can no longer be downloaded.",
        )
        .await;
        c.goto(&format!(
            "{base}/console/products/{}/files/{file}",
            product.id
        ))
        .await
        .unwrap();
        let error = c
            .find(Locator::Id("error"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            error.starts_with("Withdrawn:") && error.contains("found to hold errors"),
            "{error}"
        );
        c.close().await.unwrap();
    });
    let (status, body) = api_download();
    assert_eq!(status, 410, "{body}");
    let conn = raw(server.domain());
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM audit_events WHERE action = 'product.download_refused' AND actor = 'user-zhou'"
        ),
        2
    );
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM audit_events WHERE action = 'product.withdrawn' AND actor = 'sup-chen'"
        ),
        1
    );
    sandbox_runtime::audit::verify_custodian(server.domain()).unwrap();
}

/// A provider's conditions (JZ Art. 11; SYS Art. 43) hold at application and at approval:
/// scenario types, modes, ε per scenario, and ε across every scenario over the dataset; a
/// scenario type established from a scenario reviewed in whole lets later ones of the same
/// shape through on the operator's approval alone (QQHR Art. 15).
#[test]
fn providers_conditions_bind_scenarios_and_an_established_type_shortens_the_review() {
    let f = sandbox_tests::Fixture::new();
    let policy = sandbox_cli::demo::RESIDENTS_POLICY.replacen(
        "name = \"residents\"",
        "name = \"residents_c\"",
        1,
    ) + "\n[conditions]\nscenario_types = [\"livelihood-statistics\"]\nmodes = [\"dp\"]\nmax_epsilon_per_scenario = 2.0\nmax_epsilon_total = 3.5\n";
    let csv = f.dir.path().join("residents_c.csv");
    std::fs::write(&csv, sandbox_synth::residents_csv(500, 7)).unwrap();
    sandbox_runtime::catalog::add(&f.domain, sandbox_tests::PROVIDER, &csv, &policy).unwrap();
    let spec = |name: &str, kind: Option<&str>, mode: &str, epsilon: f64, columns: &str| {
        let text = scenario_text(name, epsilon, epsilon.min(1.0))
            .replace("name = \"residents\"", "name = \"residents_c\"")
            .replace(
                "columns = [\"citizen_id\", \"district\", \"age\", \"income\"]",
                &format!("columns = [{columns}]"),
            )
            .replace(
                "[budget]",
                &format!(
                    "mode = \"{mode}\"\n{}[budget]",
                    kind.map(|k| format!("type = \"{k}\"\n"))
                        .unwrap_or_default()
                ),
            );
        scenarios::apply(&f.domain, DEVELOPER, &text)
    };
    let all = "\"citizen_id\", \"district\", \"income\"";
    let refused = |r: sandbox_runtime::Result<sandbox_runtime::scenarios::ScenarioRecord>,
                   field: &str| {
        match r {
            Err(Error::Policy(e)) => assert!(e.to_string().contains(field), "{e}"),
            other => panic!("{field}: {other:?}"),
        }
    };
    refused(spec("untyped", None, "dp", 1.0, all), "scenario_types");
    // (Its policy releases it in DP mode only; the condition says so again.)
    refused(
        spec(
            "exact",
            Some("livelihood-statistics"),
            "threshold",
            1.0,
            all,
        ),
        "mode",
    );
    refused(
        spec("greedy", Some("livelihood-statistics"), "dp", 2.5, all),
        "max_epsilon_per_scenario",
    );
    let first = spec("first", Some("livelihood-statistics"), "dp", 2.0, all).unwrap();
    // Not yet a type: its consents are needed.
    let c = sandbox_runtime::consent::consents(&f.domain, OPERATOR, "first").unwrap();
    assert_eq!(c.covered_by_type, None);
    assert_eq!(c.items.len(), 2);
    assert_eq!(
        sandbox_tests::approve(&f.domain, "first").unwrap().status,
        sandbox_runtime::scenarios::Status::Approved
    );
    // Across scenarios: 2 granted, 2 more would pass the provider's 3.5.
    refused(
        spec("second", Some("livelihood-statistics"), "dp", 2.0, all),
        "max_epsilon_total",
    );
    // One type of scenario, one review.
    assert!(matches!(
        sandbox_runtime::consent::establish_type(
            &f.domain,
            DEVELOPER,
            "livelihood-statistics",
            "first",
            "x"
        ),
        Err(Error::Forbidden(_))
    ));
    let t = sandbox_runtime::consent::establish_type(
        &f.domain,
        OPERATOR,
        "livelihood-statistics",
        "first",
        "Yearly livelihood statistics by district",
    )
    .unwrap();
    assert_eq!(t.scenario_id, first.id);
    let third = spec("third", Some("livelihood-statistics"), "dp", 1.0, all).unwrap();
    let c = sandbox_runtime::consent::consents(&f.domain, DEVELOPER, "third").unwrap();
    assert_eq!(c.covered_by_type.as_deref(), Some("livelihood-statistics"));
    assert!(c.complete && c.items.is_empty());
    assert!(matches!(
        sandbox_runtime::consent::consent(&f.domain, SUPERVISOR, "third", None, None),
        Err(Error::Conflict(_))
    ));
    let third = scenarios::decide(&f.domain, OPERATOR, &third.id.to_string(), true, None).unwrap();
    assert_eq!(third.status, sandbox_runtime::scenarios::Status::Approved);
    // A scenario of the type over other columns is not of its shape: its own consents.
    let fourth = spec(
        "fourth",
        Some("livelihood-statistics"),
        "dp",
        0.5,
        "\"citizen_id\", \"district\", \"age\"",
    )
    .unwrap();
    let c =
        sandbox_runtime::consent::consents(&f.domain, DEVELOPER, &fourth.id.to_string()).unwrap();
    assert_eq!(c.covered_by_type, None);
    let r = scenarios::decide(&f.domain, OPERATOR, &fourth.id.to_string(), true, None).unwrap();
    assert_eq!(r.status, sandbox_runtime::scenarios::Status::Pending);
    // Nobody but the type's operator and the data's parties moved it; every step recorded.
    assert_eq!(
        count(
            &raw(&f.domain),
            "SELECT COUNT(*) FROM audit_events WHERE action = 'scenario_type.established'"
        ),
        1
    );
}

/// A dataset version objected to and suspended: every query reading it is refused until a
/// new version replaces it; the products whose numbers came from it are listed and
/// recalled in one step (QQHR Art. 20, 23; JZ Art. 16, 21; SYS Art. 28, 40).
#[test]
fn a_suspended_dataset_version_answers_nothing_and_its_products_are_recalled_in_one_step() {
    let api = Api::new();
    let report = api
        .f
        .submit(
            &sandbox_tests::guest_module("income_by_district"),
            "{}",
            sandbox_runtime::wasm::JobLimits::default(),
        )
        .unwrap();
    assert_eq!(report.status, "succeeded", "{report:?}");
    let table = report.outputs.iter().find(|o| o.kind == "table").unwrap();
    review::decide(&api.f.domain, OPERATOR, &table.id, Decision::Approve, None).unwrap();
    review::decide(
        &api.f.domain,
        SUPERVISOR,
        &table.id,
        Decision::Approve,
        None,
    )
    .unwrap();
    let product = review::products(&api.f.domain, OPERATOR).unwrap()[0]
        .id
        .clone();
    let version = "/api/v1/datasets/residents/versions/1";
    let (status, v) = api.get(DEVELOPER, version);
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["products"], json!([product]));
    assert_eq!(v["current"], true);
    // Its provider objects; a developer may not.
    let objection = json!({"reason": "district codes of 2025 were mapped wrongly"});
    assert_eq!(
        api.post(
            DEVELOPER,
            &format!("{version}/objections"),
            objection.clone()
        )
        .0,
        StatusCode::FORBIDDEN
    );
    let (status, v) = api.post(
        sandbox_tests::PROVIDER,
        &format!("{version}/objections"),
        objection,
    );
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["objections"][0]["raised_by"], sandbox_tests::PROVIDER);
    assert_eq!(
        v["suspended"],
        Value::Null,
        "an objection alone suspends nothing"
    );
    api.f.ask("SELECT COUNT(*) FROM residents").unwrap();
    // Suspended: every query of the scenario is refused, checks too.
    let (status, v) = api.post(
        sandbox_tests::PROVIDER,
        &format!("{version}/suspend"),
        json!({"reason": "until the mapping is corrected"}),
    );
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        api.post(
            OPERATOR,
            &format!("{version}/suspend"),
            json!({"reason": "again"})
        )
        .0,
        StatusCode::CONFLICT
    );
    match api.f.ask("SELECT COUNT(*) FROM residents") {
        Err(Error::Refused(r)) => {
            assert_eq!(r.rule, sandbox_runtime::mediate::Rule::Scenario);
            assert!(
                r.message.contains("residents` version 1 is suspended"),
                "{}",
                r.message
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        sandbox_runtime::mediate::check(
            &api.f.domain,
            DEVELOPER,
            "income-test",
            "SELECT COUNT(*) FROM residents"
        ),
        Err(Error::Refused(_))
    ));
    // The products it fed are recalled in one step, by an operator or a supervisor.
    let recall = format!("{version}/recall");
    assert_eq!(
        api.post(sandbox_tests::PROVIDER, &recall, json!({"reason": "x"}))
            .0,
        StatusCode::FORBIDDEN
    );
    let (status, w) = api.post(
        SUPERVISOR,
        &recall,
        json!({"reason": "district codes mapped wrongly"}),
    );
    assert_eq!(status, StatusCode::OK, "{w}");
    assert_eq!(w.as_array().unwrap().len(), 1);
    assert!(
        w[0]["product"]["withdrawal"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("recall of dataset `residents` version 1: ")
    );
    let (status, _) = api.get(
        SUPERVISOR,
        &format!("/api/v1/products/{product}/files/income_by_district.arrow"),
    );
    assert_eq!(status, StatusCode::GONE);
    // Recalled once: a second recall finds nothing left to withdraw.
    let (_, w) = api.post(OPERATOR, &recall, json!({"reason": "again"}));
    assert_eq!(w, json!([]));
    // A new version replaces it: the scenario is answered again.
    let csv = api.f.dir.path().join("residents-2.csv");
    std::fs::write(&csv, sandbox_synth::residents_csv(2000, 2027)).unwrap();
    sandbox_runtime::catalog::add(
        &api.f.domain,
        sandbox_tests::PROVIDER,
        &csv,
        sandbox_cli::demo::RESIDENTS_POLICY,
    )
    .unwrap();
    api.f.ask("SELECT COUNT(*) FROM residents").unwrap();
    let (_, v) = api.get(SUPERVISOR, version);
    assert_eq!(v["current"], false);
    let (status, v) = api.post(
        OPERATOR,
        &format!("{version}/reinstate"),
        json!({"reason": "corrected in version 2; kept for the record"}),
    );
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["suspensions"][0]["lifted_by"], OPERATOR);
    let conn = raw(&api.f.domain);
    for (action, n) in [
        ("dataset.objected", 1),
        ("dataset.suspended", 1),
        ("dataset.recalled", 2),
        ("dataset.reinstated", 1),
        ("product.withdrawn", 1),
    ] {
        assert_eq!(
            count(
                &conn,
                &format!("SELECT COUNT(*) FROM audit_events WHERE action = '{action}'")
            ),
            n,
            "{action}"
        );
    }
    sandbox_runtime::audit::verify_custodian(&api.f.domain).unwrap();
}

/// A dataset destroyed at the end of its authorization (the regulations' data life
/// cycle): refused while a scenario over it is live; then its files are gone from the
/// domain store, the record of what was destroyed (files, sizes, hashes; who, when, why)
/// stays in the catalog, and nothing reads it again.
#[test]
fn a_dataset_is_destroyed_at_the_end_of_its_authorization_and_its_record_kept() {
    let api = Api::new();
    let destroy = "/api/v1/datasets/residents/destroy";
    let reason = json!({"reason": "the authorization of the residents data ended"});
    assert_eq!(
        api.post(sandbox_tests::PROVIDER, destroy, reason.clone()).0,
        StatusCode::FORBIDDEN
    );
    let (status, body) = api.post(OPERATOR, destroy, reason.clone());
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("income-test"),
        "{body}"
    );
    let folder = api.f.domain.layout().domain().join("residents");
    assert!(folder.is_dir(), "a refusal destroys nothing");
    // A copy of the file kept elsewhere (a backup, a disk image), to try after.
    let v1 = sandbox_runtime::catalog::get(&api.f.domain, OPERATOR, "residents").unwrap();
    let copy = api.f.dir.path().join("copy.parquet");
    std::fs::copy(v1.data_files()[0].as_path(), &copy).unwrap();
    scenarios::change(
        &api.f.domain,
        OPERATOR,
        "income-test",
        sandbox_runtime::scenarios::Change::Revoke,
        "its agreement ended",
    )
    .unwrap();
    let (status, d) = api.post(OPERATOR, destroy, reason.clone());
    assert_eq!(status, StatusCode::OK, "{d}");
    assert!(!folder.exists(), "the files are gone");
    // Their keys too: the copy cannot be decrypted again.
    let conn = sandbox_tests::raw(&api.f.domain);
    assert_eq!(
        sandbox_tests::count(
            &conn,
            "SELECT COUNT(*) FROM data_keys WHERE dataset = 'residents'"
        ),
        0
    );
    drop(conn);
    let gone = sandbox_runtime::catalog::get(&api.f.domain, OPERATOR, "residents").unwrap();
    std::fs::create_dir_all(gone.data_files()[0].as_path().parent().unwrap()).unwrap();
    std::fs::copy(&copy, gone.data_files()[0].as_path()).unwrap();
    assert!(
        sandbox_mediator::ingest::stored_reader(api.f.domain.mediator().dataset_keys(), &gone, 0)
            .is_err(),
        "a destroyed version's file read again"
    );
    std::fs::remove_dir_all(&folder).unwrap();
    let files = d["record"]["versions"][0]["files"].as_array().unwrap();
    assert!(
        files
            .iter()
            .any(|f| f["path"] == "1/data.parquet" && f["sha256"].as_str().unwrap().len() == 64),
        "{files:?}"
    );
    // The catalog keeps the record; the dataset is retired; nothing reads it again.
    let (_, kept) = api.get(SUPERVISOR, "/api/v1/datasets/residents/destruction");
    assert_eq!(kept["destroyed_by"], OPERATOR);
    assert_eq!(kept["record"], d["record"]);
    let (status, v) = api.get(SUPERVISOR, "/api/v1/datasets/residents");
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v["retired"]["reason"], "the authorization of the residents data ended",
        "{v}"
    );
    assert_eq!(api.post(OPERATOR, destroy, reason).0, StatusCode::CONFLICT);
    // What a crash between the commit and the removal would leave is swept at the next
    // start; a folder of a dataset not destroyed is left alone.
    let store = api.f.domain.layout().domain();
    std::fs::create_dir_all(store.join(".destroyed-residents-d-00000000000000aa/1")).unwrap();
    std::fs::create_dir_all(store.join(".destroyed-trips-d-00000000000000bb")).unwrap();
    let swept = sandbox_runtime::versions::sweep_destroyed(&api.f.domain).unwrap();
    assert_eq!(swept.len(), 1, "{swept:?}");
    assert!(
        !store
            .join(".destroyed-residents-d-00000000000000aa")
            .exists()
    );
    assert!(store.join(".destroyed-trips-d-00000000000000bb").exists());
    assert!(matches!(
        scenarios::apply(&api.f.domain, DEVELOPER, &scenario_text("after", 1.0, 1.0)),
        Err(Error::Invalid(m)) if m.contains("retired")
    ));
    assert_eq!(
        count(
            &raw(&api.f.domain),
            "SELECT COUNT(*) FROM audit_events WHERE action = 'dataset.destroyed'"
        ),
        1
    );
    sandbox_runtime::audit::verify_custodian(&api.f.domain).unwrap();
}

/// The catalog carries SYS Art. 12's fields and enforces share type (SYS Art. 24): a
/// `not_shared` dataset goes into a scenario only on a recorded decision of its provider
/// or a supervisor; the entry names the scenarios authorized over it; a scenario
/// agreement carries its remaining terms (QQHR Art. 16).
#[test]
fn a_dataset_not_shared_needs_a_recorded_decision_and_the_catalog_says_who_uses_it() {
    let api = Api::new();
    let policy = sandbox_cli::demo::RESIDENTS_POLICY
        .replacen("name = \"residents\"", "name = \"residents_ns\"", 1)
        .replacen(
            "share_type = \"conditional\"",
            "share_type = \"not_shared\"\nshare_conditions = \"only for statistics the data bureau approves\"\nshare_method = \"in the sandbox, usable but not visible\"",
            1,
        );
    let csv = api.f.dir.path().join("residents_ns.csv");
    std::fs::write(&csv, sandbox_synth::residents_csv(300, 3)).unwrap();
    sandbox_runtime::catalog::add(&api.f.domain, sandbox_tests::PROVIDER, &csv, &policy).unwrap();
    let spec = scenario_text("housing-survey", 1.0, 1.0)
        .replace("name = \"residents\"", "name = \"residents_ns\"")
        .replace(
            "the data bureau's authorization of the public data operation",
            "SYS Art. 24",
        );
    match scenarios::apply(&api.f.domain, DEVELOPER, &spec) {
        Err(Error::Forbidden(m)) => assert!(m.contains("not shared"), "{m}"),
        other => panic!("{other:?}"),
    }
    let sharing = "/api/v1/datasets/residents_ns/sharing";
    let body = json!({"scenario": "housing-survey", "reason": "approved by the data bureau"});
    assert_eq!(
        api.post(DEVELOPER, sharing, body.clone()).0,
        StatusCode::FORBIDDEN
    );
    let (status, d) = api.post(SUPERVISOR, sharing, body.clone());
    assert_eq!(status, StatusCode::CREATED, "{d}");
    assert_eq!(
        api.post(sandbox_tests::PROVIDER, sharing, body).0,
        StatusCode::CONFLICT
    );
    let s = scenarios::apply(&api.f.domain, DEVELOPER, &spec).unwrap();
    assert_eq!(
        s.spec.agreement.as_ref().unwrap().legal_basis,
        "SYS Art. 24"
    );
    // An agreement's terms are not left blank.
    assert!(matches!(
        scenarios::apply(
            &api.f.domain,
            DEVELOPER,
            &spec
                .replace("housing-survey", "blank-terms")
                .replace("SYS Art. 24", " ")
        ),
        Err(Error::Policy(_))
    ));
    // Nor left out, nor the response plan (QQHR Art. 16, 20): refused with the field named,
    // nothing stored.
    let without_plan = scenario_text("no-plan", 1.0, 1.0).replace("response_plan =", "# plan =");
    let without_terms = scenario_text("no-terms", 1.0, 1.0)
        .split("[agreement]")
        .next()
        .unwrap()
        .to_string();
    for (text, field) in [
        (without_plan, "invalid response_plan"),
        (without_terms, "invalid agreement"),
    ] {
        let (status, body) = api.post(DEVELOPER, "/api/v1/scenarios", json!({"spec": text}));
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.to_string().contains(field), "{body}");
    }
    assert_eq!(
        count(
            &raw(&api.f.domain),
            "SELECT COUNT(*) FROM scenarios WHERE name IN ('no-plan', 'no-terms')"
        ),
        0
    );
    sandbox_tests::approve(&api.f.domain, "housing-survey").unwrap();
    let (_, v) = api.get(sandbox_tests::PROVIDER, "/api/v1/datasets/residents_ns");
    assert_eq!(v["authorized_scenarios"], json!(["housing-survey"]));
    assert_eq!(v["source_format"], "csv");
    assert_eq!(v["policy"]["dataset"]["share_type"], "not_shared");
    assert_eq!(
        v["policy"]["dataset"]["share_method"],
        "in the sandbox, usable but not visible"
    );
    assert_eq!(
        count(
            &raw(&api.f.domain),
            "SELECT COUNT(*) FROM audit_events WHERE action = 'dataset.sharing_decided'"
        ),
        1
    );
}

/// Incidents (QQHR Art. 20; JZ Art. 21; TJ-Sec Art. 15) and rectification orders (SYS
/// Art. 31): a timeline of what was done and reported, to whom; an order answered and
/// closed; an order whose deadline passes unanswered suspends its target at once, and the
/// suspension is recorded.
#[test]
fn incidents_keep_their_timeline_and_an_unanswered_order_suspends_its_target() {
    let api = Api::new();
    assert_eq!(
        api.post(
            DEVELOPER,
            "/api/v1/incidents",
            json!({"grade": "major", "title": "t", "description": "d"})
        )
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api.post(
            SUPERVISOR,
            "/api/v1/incidents",
            json!({"grade": "huge", "title": "t", "description": "d"})
        )
        .0,
        StatusCode::BAD_REQUEST
    );
    let (status, i) = api.post(
        SUPERVISOR,
        "/api/v1/incidents",
        json!({"grade": "major", "title": "Re-identification attempt", "description": "A module tried to single out residents by differencing."}),
    );
    assert_eq!(status, StatusCode::CREATED, "{i}");
    let id = i["id"].as_i64().unwrap();
    let entries = format!("/api/v1/incidents/{id}/entries");
    // A suspension names who or what was suspended; a report names to whom it went.
    assert_eq!(
        api.post(
            OPERATOR,
            &entries,
            json!({"kind": "suspension", "reference": "nobody", "text": "x"})
        )
        .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api.post(
            OPERATOR,
            &entries,
            json!({"kind": "report", "text": "reported"})
        )
        .0,
        StatusCode::BAD_REQUEST
    );
    for body in [
        json!({"kind": "suspension", "reference": DEVELOPER, "text": "developer suspended pending review"}),
        json!({"kind": "report", "recipient": "市数据局", "text": "reported within 24 hours"}),
        json!({"kind": "notice", "recipient": "Municipal Public Security Bureau", "text": "the provider notified"}),
    ] {
        let (status, body) = api.post(OPERATOR, &entries, body);
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, i) = api.post(
        SUPERVISOR,
        &format!("/api/v1/incidents/{id}/close"),
        json!({"summary": "the module's developer was warned; no data left the domain"}),
    );
    assert_eq!(status, StatusCode::OK, "{i}");
    assert_eq!(i["entries"].as_array().unwrap().len(), 3);
    assert_eq!(i["entries"][1]["recipient"], "市数据局");
    assert_eq!(
        api.post(
            OPERATOR,
            &entries,
            json!({"kind": "action", "text": "late"})
        )
        .0,
        StatusCode::CONFLICT
    );

    // An order answered in time, and closed.
    let tomorrow = (chrono::Utc::now().date_naive() + chrono::Duration::days(1)).to_string();
    let (status, o) = api.post(
        SUPERVISOR,
        "/api/v1/orders",
        json!({"target_kind": "principal", "target": DEVELOPER, "requirement": "Explain the differencing queries", "deadline": tomorrow}),
    );
    assert_eq!(status, StatusCode::CREATED, "{o}");
    let first = o["id"].as_i64().unwrap();
    assert_eq!(
        api.post(
            crate::server::DEVELOPER2,
            &format!("/api/v1/orders/{first}/answer"),
            json!({"answer": "x"})
        )
        .0,
        StatusCode::FORBIDDEN
    );
    let (status, o) = api.post(
        DEVELOPER,
        &format!("/api/v1/orders/{first}/answer"),
        json!({"answer": "The queries were a mistake; the module is withdrawn."}),
    );
    assert_eq!(
        (status, o["status"].as_str()),
        (StatusCode::OK, Some("answered"))
    );
    let (status, o) = api.post(
        SUPERVISOR,
        &format!("/api/v1/orders/{first}/close"),
        json!(null),
    );
    assert_eq!(
        (status, o["status"].as_str()),
        (StatusCode::OK, Some("closed")),
        "{o}"
    );

    // An order over the scenario whose deadline passes unanswered.
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let (status, o) = api.post(
        SUPERVISOR,
        "/api/v1/orders",
        json!({"target_kind": "scenario", "target": "income-test", "requirement": "Narrow the columns", "deadline": soon}),
    );
    assert_eq!(status, StatusCode::CREATED, "{o}");
    let second = o["id"].as_i64().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    // From the deadline on, the work is refused, before anything recorded it.
    let (status, body) = api.post(
        DEVELOPER,
        "/api/v1/jobs?wait=60",
        json!({"scenario": api.f.scenario.id.to_string(), "module": crate::server::text_module("x")}),
    );
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("rectification order"),
        "{body}"
    );
    assert_eq!(
        api.post(
            DEVELOPER,
            &format!("/api/v1/orders/{second}/answer"),
            json!({"answer": "late"})
        )
        .0,
        StatusCode::CONFLICT,
        "an answer after the deadline is too late"
    );
    // Reading the orders records the enforcement: the scenario is suspended.
    let (_, list) = api.get(SUPERVISOR, "/api/v1/orders");
    let enforced = list
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == second)
        .unwrap();
    assert_eq!(enforced["status"], "enforced");
    let (_, s) = api.get(
        OPERATOR,
        &format!("/api/v1/scenarios/{}", api.f.scenario.id),
    );
    assert_eq!(s["status"], "suspended");
    let conn = raw(&api.f.domain);
    for (action, n) in [
        ("incident.opened", 1),
        ("incident.logged", 3),
        ("incident.closed", 1),
        ("order.issued", 2),
        ("order.answered", 1),
        ("order.closed", 1),
        ("order.enforced", 1),
    ] {
        assert_eq!(
            count(
                &conn,
                &format!("SELECT COUNT(*) FROM audit_events WHERE action = '{action}'")
            ),
            n,
            "{action}"
        );
    }
    sandbox_runtime::audit::verify_custodian(&api.f.domain).unwrap();
}

/// A compliance report (B8): for the domain or one scenario over a period, each
/// requirement with the events that evidence it; signed by the domain key with a signed
/// checkpoint, it verifies offline, and an edited one does not.
#[test]
fn a_compliance_report_gathers_the_evidence_and_verifies_offline() {
    let api = Api::new();
    let report = api
        .f
        .submit(
            &sandbox_tests::text_module("Incomes rose."),
            "{}",
            sandbox_runtime::wasm::JobLimits::default(),
        )
        .unwrap();
    let out = report.outputs[0].id.clone();
    review::decide(&api.f.domain, OPERATOR, &out, Decision::Approve, None).unwrap();
    review::decide(&api.f.domain, SUPERVISOR, &out, Decision::Approve, None).unwrap();
    api.f.ask("SELECT COUNT(*) FROM residents").unwrap();
    let _ = api.f.ask("SELECT citizen_id FROM residents");
    let today = chrono::Utc::now().date_naive();
    let path = format!("/api/v1/reports/compliance?from={today}&to={today}");
    assert_eq!(api.get(DEVELOPER, &path).0, StatusCode::FORBIDDEN);
    let (status, answer) = api.get(SUPERVISOR, &path);
    assert_eq!(status, StatusCode::OK, "{answer}");
    let r = &answer["report"];
    let section = |id: &str| -> Value {
        r["sections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .cloned()
            .unwrap()
    };
    let consent = section("consent");
    assert_eq!(consent["counts"]["scenario.consented"], 2, "{consent}");
    assert_eq!(consent["counts"]["scenario.usable"], 1);
    assert!(consent["articles"].as_str().unwrap().contains("JZ Art. 11"));
    assert_eq!(section("review")["counts"]["product.released"], 1);
    assert_eq!(section("budget")["epsilon_spent"], 1.0);
    assert_eq!(
        section("refusals")["queries_refused_by_rule"]["row_level_output"],
        1,
        "{}",
        section("refusals")
    );
    let first = &consent["events"][0];
    assert_eq!(
        first["link"],
        format!("/console/audit?from={}", first["seq"])
    );
    // One scenario: its own events only.
    let other = scenarios::apply(
        &api.f.domain,
        DEVELOPER,
        &scenario_text("other-use", 1.0, 1.0),
    )
    .unwrap();
    sandbox_tests::consent_all(&api.f.domain, &other.id.to_string()).unwrap();
    let (_, scoped) = api.get(SUPERVISOR, &format!("{path}&scenario=income-test"));
    let consent = scoped["report"]["sections"][0].clone();
    assert_eq!(consent["counts"]["scenario.consented"], 2, "{consent}");
    assert_eq!(scoped["report"]["scope"]["scenario"]["name"], "income-test");
    // A period before anything happened has no evidence.
    let (_, empty) = api.get(
        SUPERVISOR,
        "/api/v1/reports/compliance?from=2020-01-01&to=2020-01-31",
    );
    assert!(
        empty["report"]["sections"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["evidence"] == 0)
    );
    assert_eq!(
        api.get(
            SUPERVISOR,
            &format!("/api/v1/reports/compliance?from={today}&to=2020-01-01")
        )
        .0,
        StatusCode::BAD_REQUEST
    );
    // Written as served, it verifies offline; edited, it does not.
    let dir = api.f.dir.path().join("report");
    sandbox_runtime::report::write(&dir, r, answer["signature"].as_str().unwrap()).unwrap();
    let key = sandbox_runtime::keys::public_key(api.f.domain.layout()).unwrap();
    sandbox_runtime::report::verify(&dir, Some(&key)).unwrap();
    let text = std::fs::read_to_string(dir.join(sandbox_runtime::report::REPORT)).unwrap();
    std::fs::write(
        dir.join(sandbox_runtime::report::REPORT),
        text.replacen("\"scenario.usable\": 1", "\"scenario.usable\": 0", 1),
    )
    .unwrap();
    assert!(matches!(
        sandbox_runtime::report::verify(&dir, Some(&key)),
        Err(Error::Verify(_))
    ));
    assert!(
        count(
            &raw(&api.f.domain),
            "SELECT COUNT(*) FROM audit_events WHERE action = 'report.generated'"
        ) >= 3
    );
}
