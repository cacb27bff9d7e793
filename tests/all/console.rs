//! The review console: sign-in and sessions, CSRF and origin checks, escaping, the
//! security headers, the two-tier decision through the pages, and every refusal audited;
//! then the same path in a real browser (headless Chromium driven over WebDriver).

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use sandbox_runtime::audit;
use sandbox_runtime::wasm::JobLimits;
use sandbox_tests::{DEVELOPER, Fixture, OPERATOR, SUPERVISOR, count};
use tower::ServiceExt;

use super::server::Api;

struct Page {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

fn request(
    api: &Api,
    method: Method,
    path: &str,
    cookie: Option<&str>,
    form: Option<&[(&str, &str)]>,
    origin: Option<&str>,
) -> Page {
    let mut headers = Vec::new();
    if let Some(c) = cookie {
        headers.push((header::COOKIE, format!("sandbox_session={c}")));
    }
    if let Some(o) = origin {
        headers.push((header::ORIGIN, o.to_string()));
    }
    request_with(api, method, path, &headers, form)
}

/// A request with the given headers (besides the host).
fn request_with(
    api: &Api,
    method: Method,
    path: &str,
    headers: &[(header::HeaderName, String)],
    form: Option<&[(&str, &str)]>,
) -> Page {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "console.test");
    for (name, value) in headers {
        req = req.header(name, value);
    }
    let req = match form {
        Some(fields) => {
            let body: String = fields
                .iter()
                .map(|(k, v)| format!("{k}={}", urlencode(v)))
                .collect::<Vec<_>>()
                .join("&");
            req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
        }
        None => req.body(Body::empty()),
    }
    .unwrap();
    api.rt.block_on(async {
        let resp = api.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        Page {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    })
}

fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Signs in with `name`'s token; returns the session cookie's value.
fn sign_in(api: &Api, name: &str) -> String {
    let page = request(
        api,
        Method::POST,
        "/console/login",
        None,
        Some(&[("token", api.token(name).unwrap())]),
        None,
    );
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let cookie = page
        .headers
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    cookie
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("sandbox_session=")
        .unwrap()
        .to_string()
}

/// The CSRF secret in a page's forms.
fn csrf_of(body: &str) -> String {
    let at = body.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    body[at..at + 64].to_string()
}

fn refusals(api: &Api, actor: &str) -> i64 {
    count(
        &sandbox_tests::raw(&api.f.domain),
        &format!(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'console.refused' AND actor = '{actor}'"
        ),
    )
}

#[test]
fn reviewers_decide_in_the_console_and_every_refusal_is_recorded() {
    let api = Api::new();
    let report = api
        .f
        .submit(
            &sandbox_tests::text_module("Income <script>alert(1)</script> rose."),
            "{}",
            JobLimits::default(),
        )
        .unwrap();
    let out = report.outputs[0].id.clone();

    // Without a session, every page sends the caller to sign in.
    for path in [
        "/console/",
        &format!("/console/outputs/{out}"),
        "/console/audit",
    ] {
        let page = request(&api, Method::GET, path, None, None, None);
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(page.location(), "/console/login");
    }
    let page = request(&api, Method::GET, "/console/login", None, None, None);
    assert_eq!(page.status, StatusCode::OK);
    for (h, v) in [
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(page.headers.get(h).unwrap(), v, "{h}");
    }
    let csp = page
        .headers
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );

    // A bad token and an admin's token are refused, and recorded.
    let bad = format!("sbx_{}_{}", "1".repeat(16), "2".repeat(64));
    let page = request(
        &api,
        Method::POST,
        "/console/login",
        None,
        Some(&[("token", &bad)]),
        None,
    );
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refusals(&api, "anonymous"), 1);
    let page = request(
        &api,
        Method::POST,
        "/console/login",
        None,
        Some(&[("token", api.token(super::server::ADMIN).unwrap())]),
        None,
    );
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(
        page.body
            .contains("operators, supervisors, developers, providers and data users")
    );
    assert_eq!(refusals(&api, super::server::ADMIN), 1);

    // The operator signs in: only the session id's hash is stored.
    let ops = sign_in(&api, OPERATOR);
    let conn = sandbox_tests::raw(&api.f.domain);
    assert_eq!(
        count(
            &conn,
            &format!("SELECT COUNT(*) FROM console_sessions WHERE id_sha256 LIKE '%{ops}%'")
        ),
        0
    );
    let page = request(&api, Method::GET, "/console/", Some(&ops), None, None);
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains(&format!("data-id=\"{out}\"")),
        "{}",
        page.body
    );
    let page = request(
        &api,
        Method::GET,
        &format!("/console/outputs/{out}"),
        Some(&ops),
        None,
        None,
    );
    assert_eq!(page.status, StatusCode::OK);
    // The module's text is shown, escaped; the checks and the decision form are there.
    assert!(
        page.body
            .contains("Income &lt;script&gt;alert(1)&lt;/script&gt; rose.")
    );
    assert!(!page.body.contains("<script>"));
    assert!(page.body.contains("id=\"checks\"") && page.body.contains("id=\"approve\""));
    // The checks' findings, recorded once, read in the reviewer's language (here the new
    // domain's, Simplified Chinese).
    assert!(
        page.body.contains("Markdown 文本，") && page.body.contains("字节：允许"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("bytes: allowed"), "{}", page.body);
    let csrf = csrf_of(&page.body);
    let decide = format!("/console/outputs/{out}/decide");

    // A form without the CSRF secret, or from another origin, is refused and recorded.
    let page = request(
        &api,
        Method::POST,
        &decide,
        Some(&ops),
        Some(&[
            ("decision", "approve"),
            ("reason", ""),
            ("csrf", &"0".repeat(64)),
        ]),
        None,
    );
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = request(
        &api,
        Method::POST,
        &decide,
        Some(&ops),
        Some(&[("decision", "approve"), ("reason", ""), ("csrf", &csrf)]),
        Some("https://evil.example"),
    );
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(refusals(&api, OPERATOR), 2);
    assert_eq!(
        sandbox_runtime::jobs::output(&api.f.domain, sandbox_tests::OPERATOR, &out)
            .unwrap()
            .status,
        "checked"
    );

    // The operator approves; the page says so.
    let page = request(
        &api,
        Method::POST,
        &decide,
        Some(&ops),
        Some(&[("decision", "approve"), ("reason", "fine"), ("csrf", &csrf)]),
        Some("http://console.test"),
    );
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let page = request(&api, Method::GET, page.location(), Some(&ops), None, None);
    assert!(
        page.body
            .contains("id=\"status\" data-status=\"operator_approved\">运营机构已批准<"),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"not-yours\""));
    // Deciding again at the operator tier is refused by the review itself.
    let page = request(
        &api,
        Method::POST,
        &decide,
        Some(&ops),
        Some(&[
            ("decision", "approve"),
            ("reason", "again"),
            ("csrf", &csrf),
        ]),
        None,
    );
    assert_eq!(page.status, StatusCode::CONFLICT);
    assert!(page.body.contains("id=\"error\""));

    // The supervisor's session cannot use the operator's CSRF secret; with its own, the
    // supervisor releases.
    let sup = sign_in(&api, SUPERVISOR);
    let page = request(&api, Method::GET, "/console/", Some(&sup), None, None);
    assert!(page.body.contains(&format!("data-id=\"{out}\"")));
    let page = request(
        &api,
        Method::POST,
        &decide,
        Some(&sup),
        Some(&[("decision", "approve"), ("reason", ""), ("csrf", &csrf)]),
        None,
    );
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = request(
        &api,
        Method::GET,
        &format!("/console/outputs/{out}"),
        Some(&sup),
        None,
        None,
    );
    let sup_csrf = csrf_of(&page.body);
    let page = request(
        &api,
        Method::POST,
        &decide,
        Some(&sup),
        Some(&[("decision", "approve"), ("reason", ""), ("csrf", &sup_csrf)]),
        None,
    );
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        sandbox_runtime::jobs::output(&api.f.domain, sandbox_tests::OPERATOR, &out)
            .unwrap()
            .status,
        "released"
    );

    // The registry, the product and its files, the budgets, the audit trail.
    let page = request(
        &api,
        Method::GET,
        "/console/products",
        Some(&sup),
        None,
        None,
    );
    assert_eq!(page.status, StatusCode::OK);
    let product = sandbox_runtime::review::products(&api.f.domain, sandbox_tests::OPERATOR)
        .unwrap()[0]
        .id
        .clone();
    assert!(page.body.contains(&format!("data-id=\"{product}\"")));
    let page = request(
        &api,
        Method::GET,
        &format!("/console/products/{product}"),
        Some(&sup),
        None,
        None,
    );
    assert!(page.body.contains("id=\"signature\""));
    let page = request(
        &api,
        Method::GET,
        &format!("/console/products/{product}/files/note.md"),
        Some(&sup),
        None,
        None,
    );
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body, "Income <script>alert(1)</script> rose.");
    assert_eq!(
        request(
            &api,
            Method::GET,
            &format!("/console/products/{product}/files/..%2Fsandbox.db"),
            Some(&sup),
            None,
            None
        )
        .status,
        StatusCode::NOT_FOUND
    );
    let page = request(
        &api,
        Method::GET,
        "/console/scenarios",
        Some(&sup),
        None,
        None,
    );
    assert!(page.body.contains("<meter"), "{}", page.body);
    let page = request(
        &api,
        Method::GET,
        "/console/audit?verify=1",
        Some(&sup),
        None,
        None,
    );
    // A new domain speaks Simplified Chinese to a client that asks for no language.
    assert!(page.body.contains("<html lang=\"zh-CN\">"), "{}", page.body);
    assert!(page.body.contains("校验通过"), "{}", page.body);
    assert!(page.body.contains("output.supervisor_approve"));

    // Signing out ends the session; revoking the token ends the other one.
    let page = request(
        &api,
        Method::POST,
        "/console/logout",
        Some(&sup),
        Some(&[("csrf", &sup_csrf)]),
        None,
    );
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        request(&api, Method::GET, "/console/", Some(&sup), None, None).location(),
        "/console/login"
    );
    let (id, _) = sandbox_runtime::tokens::parse(api.token(OPERATOR).unwrap()).unwrap();
    let conn = sandbox_tests::raw(&api.f.domain);
    sandbox_runtime::tokens::revoke(&api.f.domain, OPERATOR, id, "rotated").unwrap();
    assert_eq!(
        request(&api, Method::GET, "/console/", Some(&ops), None, None).location(),
        "/console/login"
    );
    let actions: Vec<String> = conn
        .prepare("SELECT action FROM audit_events WHERE action LIKE 'console.%' ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        actions.iter().filter(|a| *a == "console.signed_in").count(),
        2
    );
    assert!(actions.contains(&"console.signed_out".to_string()));
    audit::verify_custodian(&api.f.domain).unwrap();
}

/// The console speaks the signed-in principal's own language, else the browser's (its
/// `Accept-Language`, or the language chosen on the sign-in page), else the domain's
/// default (Simplified Chinese for a new domain); times are shown in the domain's zone.
#[test]
fn the_console_speaks_the_principals_language_then_the_browsers_then_the_domains() {
    let api = Api::new();
    let english = (header::ACCEPT_LANGUAGE, "en-US,en;q=0.9".to_string());
    let page = request_with(&api, Method::GET, "/console/login", &[], None);
    assert!(page.body.contains("<html lang=\"zh-CN\">"), "{}", page.body);
    assert!(page.body.contains("API 令牌"), "{}", page.body);
    let page = request_with(
        &api,
        Method::GET,
        "/console/login",
        std::slice::from_ref(&english),
        None,
    );
    assert!(page.body.contains("<html lang=\"en\">"), "{}", page.body);
    assert!(page.body.contains("API token"), "{}", page.body);
    // A choice on the sign-in page is kept in a cookie and beats the browser's language.
    let page = request_with(
        &api,
        Method::GET,
        "/console/login?lang=zh-CN",
        std::slice::from_ref(&english),
        None,
    );
    assert!(page.body.contains("<html lang=\"zh-CN\">"));
    let cookie = page
        .headers
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(cookie.starts_with("sandbox_lang=zh-CN;"), "{cookie}");
    let chosen = (header::COOKIE, "sandbox_lang=zh-CN".to_string());
    let page = request_with(
        &api,
        Method::GET,
        "/console/login",
        &[english.clone(), chosen],
        None,
    );
    assert!(page.body.contains("<html lang=\"zh-CN\">"));

    // Signed in, with an English browser: English, until the principal chooses Chinese.
    let ops = sign_in(&api, OPERATOR);
    let session = (header::COOKIE, format!("sandbox_session={ops}"));
    let page = request_with(
        &api,
        Method::GET,
        "/console/",
        &[session.clone(), english.clone()],
        None,
    );
    assert!(
        page.body.contains("Outputs awaiting review"),
        "{}",
        page.body
    );
    let csrf = csrf_of(&page.body);
    let page = request_with(
        &api,
        Method::POST,
        "/console/language",
        &[
            session.clone(),
            english.clone(),
            (header::REFERER, "http://console.test/console/audit".into()),
        ],
        Some(&[("lang", "zh-CN"), ("csrf", &csrf)]),
    );
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), "/console/audit");
    let page = request_with(
        &api,
        Method::GET,
        "/console/",
        &[session.clone(), english.clone()],
        None,
    );
    assert!(page.body.contains("等待审核的输出结果"), "{}", page.body);
    assert!(page.body.contains("(运营机构)"), "{}", page.body);
    let principal = sandbox_runtime::identity::whoami(&api.f.domain, OPERATOR).unwrap();
    assert_eq!(principal.language, Some(sandbox_core::Lang::ZhCn));
    // Without the CSRF secret the switch is refused and recorded.
    let page = request_with(
        &api,
        Method::POST,
        "/console/language",
        std::slice::from_ref(&session),
        Some(&[("lang", "en"), ("csrf", &"0".repeat(64))]),
    );
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(refusals(&api, OPERATOR), 1);

    // Times in the domain's zone, to the second: Asia/Shanghai by default, then London.
    let first = audit::log(&api.f.domain, OPERATOR, 1, 1).unwrap().remove(0);
    let page = request_with(
        &api,
        Method::GET,
        "/console/audit?from=1",
        std::slice::from_ref(&session),
        None,
    );
    let shanghai = sandbox_i18n::local_time(&first.ts, sandbox_i18n::DEFAULT_TIME_ZONE);
    assert!(
        page.body.contains(&format!("<td>{shanghai}</td>")),
        "{shanghai}: {}",
        page.body
    );
    assert!(!page.body.contains(&first.ts));
    sandbox_runtime::settings::set(
        &api.f.domain,
        OPERATOR,
        &sandbox_runtime::settings::Settings {
            default_language: sandbox_core::Lang::En,
            time_zone: "Europe/London".into(),
        },
    )
    .unwrap();
    let page = request_with(&api, Method::GET, "/console/audit?from=1", &[session], None);
    let london =
        sandbox_i18n::local_time(&first.ts, sandbox_i18n::time_zone("Europe/London").unwrap());
    assert!(
        page.body.contains(&format!("<td>{london}</td>")),
        "{london}"
    );
    // The domain's new default speaks to a visitor who asks for nothing.
    let page = request_with(&api, Method::GET, "/console/login", &[], None);
    assert!(page.body.contains("<html lang=\"en\">"));
    assert_eq!(
        count(
            &sandbox_tests::raw(&api.f.domain),
            "SELECT COUNT(*) FROM audit_events WHERE action IN ('principal.language_set', 'domain.settings_set')"
        ),
        2
    );
    audit::verify_custodian(&api.f.domain).unwrap();
}

/// The browser test: headless Chromium, driven by chromedriver over WebDriver, signs in as
/// an operator and approves an output, then as a supervisor and releases it, and finds it
/// in the product registry. Chromium and chromedriver are Debian's (`./dev test` and CI
/// install them); without them the test fails, unless `SANDBOX_SKIP_BROWSER=1`.
#[test]
fn a_browser_signs_in_as_operator_then_supervisor_and_releases_an_output() {
    use fantoccini::Locator;
    use sandbox_tests::browser::{Driver, click, sign_in, wait_text};

    let Some(driver) = Driver::start() else {
        return;
    };
    let f = Fixture::new();
    let report = f
        .submit(
            &sandbox_tests::guest_module("income_by_district"),
            "{}",
            JobLimits::default(),
        )
        .unwrap();
    assert_eq!(report.status, "succeeded", "{report:?}");
    let table = report
        .outputs
        .iter()
        .find(|o| o.kind == "table")
        .unwrap()
        .clone();
    let server = sandbox_tests::LiveServer::start(f, sandbox_server::Config::default());
    let base = server.url.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = driver.client().await;
        let open_output = format!("tr.output[data-id='{}'] a", table.id);
        // The operator signs in (the browser asks for English), switches to Chinese, opens
        // the output, sees its table, approves with a note.
        c.goto(&format!("{base}/console/")).await.unwrap();
        sign_in(&c, server.token(OPERATOR)).await;
        wait_text(&c, "#who", "ops-li (operator)").await;
        click(&c, "#lang-zh-CN").await;
        wait_text(&c, "#who", "ops-li (运营机构)").await;
        let lang = c
            .find(Locator::Css("html"))
            .await
            .unwrap()
            .attr("lang")
            .await
            .unwrap();
        assert_eq!(lang.as_deref(), Some("zh-CN"));
        click(&c, &open_output).await;
        wait_text(&c, "#status", "已检查").await;
        wait_text(&c, "#approve", "批准").await;
        let rows = c
            .find_all(Locator::Css("#content-table tbody tr"))
            .await
            .unwrap();
        assert!(!rows.is_empty(), "the table is shown");
        c.find(Locator::Id("reason"))
            .await
            .unwrap()
            .send_keys("Noisy averages by district; within the agreement.")
            .await
            .unwrap();
        // Approving asks for a confirmation the browser requires ticked.
        click(&c, "#approve").await;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let url = c.current_url().await.unwrap().to_string();
        assert!(!url.contains("done="), "approved without confirming: {url}");
        wait_text(&c, "#status", "已检查").await;
        click(&c, "#confirm").await;
        click(&c, "#approve").await;
        wait_text(&c, "#status", "运营机构已批准").await;
        wait_text(
            &c,
            "#notice",
            "已记录：批准。该输出结果现为“运营机构已批准”。",
        )
        .await;
        click(&c, "#sign-out").await;
        // The supervisor signs in, in the browser's English, finds the request waiting,
        // writes to its thread, and approves what awaits a supervisor (the table),
        // which releases it.
        sign_in(&c, server.token(SUPERVISOR)).await;
        wait_text(&c, "#who", "sup-chen (supervisor)").await;
        click(&c, &format!("tr.output[data-id='{}'] a.job", table.id)).await;
        // The table awaits the supervisor, the job's text still the operator.
        wait_text(
            &c,
            "#awaiting",
            "the operator's review · the supervisor's review",
        )
        .await;
        c.find(Locator::Id("comment"))
            .await
            .unwrap()
            .send_keys("Checked against the agreement.")
            .await
            .unwrap();
        click(&c, "#post-comment").await;
        wait_text(&c, "#notice", "Your comment was posted.").await;
        wait_text(
            &c,
            "#thread li:last-child .said",
            "Checked against the agreement.",
        )
        .await;
        click(&c, "#request-confirm").await;
        click(&c, "#request-approve").await;
        wait_text(
            &c,
            "#notice",
            "Recorded: Approve, for every output that awaited your tier.",
        )
        .await;
        click(&c, &open_output).await;
        wait_text(&c, "#status", "released").await;
        c.goto(&format!("{base}/console/products")).await.unwrap();
        let products = c
            .find(Locator::Id("products"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(products.contains("income_by_district"), "{products}");
        c.close().await.unwrap();
    });
    let conn = sandbox_tests::raw(server.domain());
    assert_eq!(
        sandbox_runtime::jobs::output(server.domain(), sandbox_tests::OPERATOR, &table.id)
            .unwrap()
            .status,
        "released"
    );
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM audit_events WHERE action = 'console.signed_in'"
        ),
        2
    );
    audit::verify_custodian(server.domain()).unwrap();
}

/// An operator decides a pending scenario in the console: the page shows its purpose, the
/// columns it asks for with their levels, a warning for level-4 columns, and asks for a
/// confirmation; a rejection needs a reason; a supervisor sees it but cannot decide.
#[test]
fn an_operator_approves_a_scenario_in_the_console_seeing_its_columns_and_levels() {
    let api = Api::new();
    // The standard scenario asks for the resident ID (level 4) among its columns.
    let text = sandbox_tests::scenario_text("district-ids", 1.0, 1.0);
    assert!(text.contains("citizen_id"), "{text}");
    let pending = sandbox_runtime::scenarios::apply(&api.f.domain, DEVELOPER, &text).unwrap();
    // Its provider and a supervisor have no objection: the operator's approval makes it
    // usable.
    sandbox_tests::consent_all(&api.f.domain, &pending.id.to_string()).unwrap();
    let path = format!("/console/scenarios/{}", pending.id);
    let sup = sign_in(&api, SUPERVISOR);
    let page = request(&api, Method::GET, &path, Some(&sup), None, None);
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        !page.body.contains("id=\"decide-scenario\""),
        "supervisors do not decide"
    );
    let ops = sign_in(&api, OPERATOR);
    let page = request(&api, Method::GET, &path, Some(&ops), None, None);
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("id=\"level4-warning\""), "{}", page.body);
    assert!(page.body.contains("data-level=\"4\""), "{}", page.body);
    assert!(page.body.contains("id=\"scenario-confirm\"") && page.body.contains("required"));
    let csrf = csrf_of(&page.body);
    let decide = format!("{path}/decide");
    let refused = request(
        &api,
        Method::POST,
        &decide,
        Some(&ops),
        Some(&[("decision", "reject"), ("reason", ""), ("csrf", &csrf)]),
        None,
    );
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("id=\"error\""));
    let done = request(
        &api,
        Method::POST,
        &decide,
        Some(&ops),
        Some(&[
            ("decision", "approve"),
            ("reason", "within the agreement"),
            ("csrf", &csrf),
            ("confirm", "yes"),
        ]),
        None,
    );
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let page = request(&api, Method::GET, done.location(), Some(&ops), None, None);
    assert!(
        page.body.contains("data-status=\"approved\""),
        "{}",
        page.body
    );
    // The scenarios page links it, and its budget bar is not a full green bar.
    let list = request(
        &api,
        Method::GET,
        "/console/scenarios",
        Some(&ops),
        None,
        None,
    );
    assert!(list.body.contains(&format!("href=\"{path}\"")));
    assert!(list.body.contains("optimum=\"0\""), "{}", list.body);
}

/// Every page of the console at a desktop width (1280 px) and a phone's (390 px), in
/// Chinese and in English: the page itself never scrolls sideways (wide tables scroll
/// inside their own box). Screenshots are kept in target/console-screenshots.
#[test]
fn no_console_page_overflows_at_1280_or_390_pixels() {
    use sandbox_tests::browser::{Driver, sign_in};

    let Some(driver) = Driver::start() else {
        return;
    };
    let f = Fixture::new();
    let report = f
        .submit(
            &sandbox_tests::guest_module("income_by_district"),
            "{}",
            JobLimits::default(),
        )
        .unwrap();
    let table = report
        .outputs
        .iter()
        .find(|o| o.kind == "table")
        .unwrap()
        .clone();
    let text = report
        .outputs
        .iter()
        .find(|o| o.kind == "text")
        .unwrap()
        .clone();
    let scenario = f.scenario.id;
    // A product to show: the text released through both reviews.
    use sandbox_runtime::review::{self, Decision};
    review::decide(
        &f.domain,
        OPERATOR,
        &text.id,
        Decision::Approve,
        Some("fine"),
    )
    .unwrap();
    review::decide(&f.domain, SUPERVISOR, &text.id, Decision::Approve, None).unwrap();
    let product = review::products(&f.domain, OPERATOR).unwrap()[0].id.clone();
    let server = sandbox_tests::LiveServer::start(f, sandbox_server::Config::default());
    let base = server.url.clone();
    let shots = sandbox_tests::repo_root().join("target/console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = driver.client().await;
        c.goto(&format!("{base}/console/login")).await.unwrap();
        sign_in(&c, server.token(OPERATOR)).await;
        let pages = [
            ("login", "/console/login".to_string()),
            ("dashboard", "/console/".to_string()),
            ("output-table", format!("/console/outputs/{}", table.id)),
            ("output-text", format!("/console/outputs/{}", text.id)),
            ("request", format!("/console/jobs/{}", report.id)),
            ("audit", "/console/audit".to_string()),
            ("products", "/console/products".to_string()),
            ("product", format!("/console/products/{product}")),
            ("scenarios", "/console/scenarios".to_string()),
            ("scenario", format!("/console/scenarios/{scenario}")),
            ("oversight", "/console/oversight".to_string()),
            ("datasets", "/console/datasets".to_string()),
            ("version", "/console/datasets/residents/1".to_string()),
            (
                "report",
                format!(
                    "/console/reports?from={}&to={}",
                    chrono::Utc::now().date_naive(),
                    chrono::Utc::now().date_naive()
                ),
            ),
        ];
        for lang in ["zh-CN", "en"] {
            c.goto(&format!("{base}/console/")).await.unwrap();
            c.find(fantoccini::Locator::Id(&format!("lang-{lang}")))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            for width in [1280u32, 390] {
                c.set_window_size(width, 900).await.unwrap();
                for (name, path) in &pages {
                    c.goto(&format!("{base}{path}")).await.unwrap();
                    let sizes = c
                        .execute(
                            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];",
                            vec![],
                        )
                        .await
                        .unwrap();
                    let sizes: Vec<i64> = serde_json::from_value(sizes).unwrap();
                    let png = c.screenshot().await.unwrap();
                    std::fs::write(shots.join(format!("{name}-{lang}-{width}.png")), png).unwrap();
                    assert!(
                        sizes[0] <= sizes[1],
                        "{name} ({lang}) overflows at {width} px: {} wider than {}",
                        sizes[0],
                        sizes[1]
                    );
                }
            }
        }
        // A provider's pages, in the language it reads.
        c.find(fantoccini::Locator::Id("sign-out"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        c.goto(&format!("{base}/console/login")).await.unwrap();
        sign_in(&c, server.token(sandbox_tests::PROVIDER)).await;
        for width in [1280u32, 390] {
            c.set_window_size(width, 900).await.unwrap();
            for (name, path) in [
                ("provider-scenarios", "/console/scenarios".to_string()),
                ("provider-scenario", format!("/console/scenarios/{scenario}")),
                ("provider-version", "/console/datasets/residents/1".to_string()),
            ] {
                c.goto(&format!("{base}{path}")).await.unwrap();
                let sizes = c
                    .execute(
                        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];",
                        vec![],
                    )
                    .await
                    .unwrap();
                let sizes: Vec<i64> = serde_json::from_value(sizes).unwrap();
                let png = c.screenshot().await.unwrap();
                std::fs::write(shots.join(format!("{name}-{width}.png")), png).unwrap();
                assert!(
                    sizes[0] <= sizes[1],
                    "{name} overflows at {width} px: {} wider than {}",
                    sizes[0],
                    sizes[1]
                );
            }
        }
        c.close().await.unwrap();
    });
}

/// A developer's console: their jobs and where each review stands; the request's thread
/// with the reviewers' words, answered from the page; never an output's content, never a
/// decision.
#[test]
fn a_developer_reads_the_review_of_their_job_and_answers_in_the_console() {
    use sandbox_runtime::review::{Decision, thread};
    let api = Api::new();
    let report = api
        .f
        .submit(
            &sandbox_tests::text_module("Income rose in every district."),
            "{}",
            JobLimits::default(),
        )
        .unwrap();
    let out = report.outputs[0].id.clone();
    thread::decide_request(
        &api.f.domain,
        OPERATOR,
        &report.id,
        Decision::RequestChanges,
        Some("Say by how much, rounded."),
    )
    .unwrap();
    let dev = sign_in(&api, DEVELOPER);
    let page = request(&api, Method::GET, "/console/", Some(&dev), None, None);
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"my-jobs\""), "{}", page.body);
    assert!(
        page.body.contains("data-awaiting=\"developer\""),
        "{}",
        page.body
    );
    assert!(!page.body.contains("href=\"/console/audit\""));
    let path = format!("/console/jobs/{}", report.id);
    let page = request(&api, Method::GET, &path, Some(&dev), None, None);
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Say by how much, rounded."),
        "{}",
        page.body
    );
    assert!(!page.body.contains("id=\"decide-request\""));
    assert!(
        !page
            .body
            .contains(&format!("href=\"/console/outputs/{out}\""))
    );
    let csrf = csrf_of(&page.body);
    let posted = request(
        &api,
        Method::POST,
        &format!("{path}/comment"),
        Some(&dev),
        Some(&[
            ("body", "Rounded to hundreds; resubmitting."),
            ("csrf", &csrf),
        ]),
        None,
    );
    assert_eq!(posted.status, StatusCode::SEE_OTHER);
    let t = thread::thread(&api.f.domain, OPERATOR, &report.id).unwrap();
    assert_eq!(
        t.entries.last().and_then(|e| e.text.as_deref()),
        Some("Rounded to hundreds; resubmitting.")
    );
    // The output itself stays with the reviewers.
    let page = request(
        &api,
        Method::GET,
        &format!("/console/outputs/{out}"),
        Some(&dev),
        None,
        None,
    );
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(!page.body.contains("Income rose"));
    // And the refused page is recorded, as every refusal is.
    assert_eq!(refusals(&api, DEVELOPER), 1);
    // Another developer's job is not theirs to read.
    sandbox_runtime::identity::add(
        &api.f.domain,
        Some(OPERATOR),
        "dev-two",
        sandbox_core::Role::Developer,
    )
    .unwrap();
    let token = sandbox_runtime::tokens::issue(&api.f.domain, OPERATOR, "dev-two")
        .unwrap()
        .token;
    let page = request(
        &api,
        Method::POST,
        "/console/login",
        None,
        Some(&[("token", &token)]),
        None,
    );
    let cookie = page
        .headers
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .and_then(|v| v.split_once('='))
        .map(|(_, v)| v.to_string())
        .unwrap();
    let page = request(&api, Method::GET, &path, Some(&cookie), None, None);
    assert_eq!(page.status, StatusCode::FORBIDDEN);
}

/// A table's counts below the policy's smallest group are marked for the reviewer, the
/// job's parameters are shown, and the output links its review request.
#[test]
fn small_counts_are_marked_and_the_jobs_parameters_shown() {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    let api = Api::new();
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("district", DataType::Utf8, false),
            Field::new("n", DataType::Int64, false),
        ])),
        vec![
            Arc::new(StringArray::from(vec!["heping", "hexi"])),
            Arc::new(Int64Array::from(vec![3, 120])),
        ],
    )
    .unwrap();
    let mut w = arrow::ipc::writer::StreamWriter::try_new(Vec::new(), &batch.schema()).unwrap();
    w.write(&batch).unwrap();
    w.finish().unwrap();
    let ipc = w.into_inner().unwrap();
    let report = api
        .f
        .submit(
            &sandbox_tests::emit_module(1, "counts", &ipc),
            r#"{"min_age": 18}"#,
            JobLimits::default(),
        )
        .unwrap();
    assert_eq!(report.status, "succeeded", "{report:?}");
    let out = &report.outputs[0].id;
    let ops = sign_in(&api, OPERATOR);
    let page = request(
        &api,
        Method::GET,
        &format!("/console/outputs/{out}"),
        Some(&ops),
        None,
        None,
    );
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        page.body.matches("class=\"num small\"").count(),
        1,
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("id=\"params\">{&quot;min_age&quot;: 18}</code>"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!("href=\"/console/jobs/{}\"", report.id))
    );
}

/// The console's compliance report (B8): a supervisor asks for a period and reads each
/// requirement with its articles and the events behind it, linked to the audit trail; a
/// developer has no such page.
#[test]
fn a_supervisor_reads_a_compliance_report_in_the_console() {
    let api = Api::new();
    let sup = sign_in(&api, SUPERVISOR);
    let page = request(
        &api,
        Method::GET,
        "/console/reports",
        Some(&sup),
        None,
        None,
    );
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"report-form\""), "{}", page.body);
    let today = chrono::Utc::now().date_naive();
    let page = request(
        &api,
        Method::GET,
        &format!("/console/reports?from={today}&to={today}&scenario=income-test"),
        Some(&sup),
        None,
        None,
    );
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("data-id=\"consent\""), "{}", page.body);
    assert!(page.body.contains("JZ Art. 11"), "{}", page.body);
    assert!(page.body.contains("/console/audit?from="), "{}", page.body);
    assert!(page.body.contains("id=\"report-signature\""));
    // The report signed, as a download that verifies offline; edited, it does not.
    let download =
        format!("/console/reports?from={today}&to={today}&scenario=income-test&format=json");
    assert!(
        page.body.contains(&download.replace('&', "&amp;")),
        "{}",
        page.body
    );
    let file = request(&api, Method::GET, &download, Some(&sup), None, None);
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.headers[header::CONTENT_TYPE], "application/json");
    assert!(
        file.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains(&format!("compliance-report-{today}-{today}.json"))
    );
    let path = api.f.dir.path().join("report.json");
    std::fs::write(&path, &file.body).unwrap();
    let key = sandbox_runtime::keys::public_key(api.f.domain.layout()).unwrap();
    let r = sandbox_runtime::report::verify(&path, Some(&key)).unwrap();
    assert_eq!(r["scope"]["scenario"]["name"], "income-test");
    std::fs::write(&path, file.body.replacen("JZ Art. 11", "JZ Art. 12", 1)).unwrap();
    assert!(sandbox_runtime::report::verify(&path, Some(&key)).is_err());
    let page = request(
        &api,
        Method::GET,
        "/console/reports?from=2026-13-01&to=2026-01-01",
        Some(&sup),
        None,
        None,
    );
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    let dev = sign_in(&api, DEVELOPER);
    let page = request(
        &api,
        Method::GET,
        &format!("/console/reports?from={today}&to={today}"),
        Some(&dev),
        None,
        None,
    );
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
}

/// The scenario page shows where each party's word stands (JZ Art. 11): an objection with
/// its reasons and the applicant's answer, a no-objection, and the operator's approval
/// awaited; the decision form is not offered once the operator has approved.
#[test]
fn the_scenario_page_shows_each_partys_word_on_it() {
    let api = Api::new();
    let text = sandbox_tests::scenario_text("district-study", 1.0, 1.0);
    let s = sandbox_runtime::scenarios::apply(&api.f.domain, DEVELOPER, &text).unwrap();
    let key = s.id.to_string();
    sandbox_runtime::consent::consent(
        &api.f.domain,
        sandbox_tests::PROVIDER,
        &key,
        None,
        Some("the resident ID is not needed"),
    )
    .unwrap();
    sandbox_runtime::consent::answer(
        &api.f.domain,
        DEVELOPER,
        &key,
        sandbox_runtime::consent::Party::Provider,
        Some("residents"),
        "it counts distinct residents only",
    )
    .unwrap();
    // The supervisor records the data bureau's word in the console: an objection needs
    // its reasons; then no objection.
    let sup = sign_in(&api, SUPERVISOR);
    let page = request(
        &api,
        Method::GET,
        &format!("/console/scenarios/{key}"),
        Some(&sup),
        None,
        None,
    );
    assert!(
        page.body.contains("id=\"consent-scenario\""),
        "{}",
        page.body
    );
    let csrf = csrf_of(&page.body);
    let consent_path = format!("/console/scenarios/{key}/consent");
    let page = request(
        &api,
        Method::POST,
        &consent_path,
        Some(&sup),
        Some(&[("decision", "objection"), ("reason", " "), ("csrf", &csrf)]),
        None,
    );
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    let page = request(
        &api,
        Method::POST,
        &consent_path,
        Some(&sup),
        Some(&[
            ("decision", "no_objection"),
            ("reason", ""),
            ("csrf", &csrf),
        ]),
        None,
    );
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let ops = sign_in(&api, OPERATOR);
    let path = format!("/console/scenarios/{key}");
    let page = request(&api, Method::GET, &path, Some(&ops), None, None);
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("data-state=\"objection\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("the resident ID is not needed"));
    assert!(page.body.contains("it counts distinct residents only"));
    assert!(page.body.contains("data-state=\"no_objection\""));
    assert!(page.body.contains("id=\"decide-scenario\""));
    sandbox_runtime::scenarios::decide(&api.f.domain, OPERATOR, &key, true, None).unwrap();
    let page = request(&api, Method::GET, &path, Some(&ops), None, None);
    assert!(
        page.body.contains("运营人员 ops-li 已批准"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("id=\"decide-scenario\""));
}

/// The oversight page: an incident and its timeline, a rectification order, the register
/// of organisations, in the reader's language; a developer is refused.
#[test]
fn a_supervisor_oversees_incidents_orders_and_organisations_in_the_console() {
    let api = Api::new();
    let i = sandbox_runtime::incidents::open(
        &api.f.domain,
        SUPERVISOR,
        "major",
        "Re-identification attempt",
        "A module tried differencing",
    )
    .unwrap();
    sandbox_runtime::incidents::log(
        &api.f.domain,
        OPERATOR,
        i.id,
        "report",
        None,
        Some("市数据局"),
        "reported the same day",
    )
    .unwrap();
    let tomorrow = (chrono::Utc::now().date_naive() + chrono::Duration::days(1)).to_string();
    sandbox_runtime::incidents::issue(
        &api.f.domain,
        SUPERVISOR,
        "scenario",
        "income-test",
        "Narrow the columns",
        &tomorrow,
    )
    .unwrap();
    sandbox_runtime::organisations::register(
        &api.f.domain,
        OPERATOR,
        "91120000MA05K7Q3XD",
        &sandbox_runtime::organisations::OrganisationEntry {
            name: "天津数据交易中心".into(),
            security_officer: "刘敏".into(),
            security_contact: "022-23456789".into(),
            qualified_until: "2030-12-31".into(),
            epsilon_cap: Some(20.0),
        },
    )
    .unwrap();
    let sup = sign_in(&api, SUPERVISOR);
    let page = request(
        &api,
        Method::GET,
        "/console/oversight",
        Some(&sup),
        None,
        None,
    );
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for text in [
        "Re-identification attempt",
        "→ 市数据局",
        "Narrow the columns",
        "data-status=\"open\"",
        "天津数据交易中心",
        "刘敏",
    ] {
        assert!(page.body.contains(text), "{text}: {}", page.body);
    }
    let dev = sign_in(&api, DEVELOPER);
    let page = request(
        &api,
        Method::GET,
        "/console/oversight",
        Some(&dev),
        None,
        None,
    );
    assert_eq!(page.status, StatusCode::FORBIDDEN);
}

/// The catalog in the console and a dataset version's page: an objection shown, the
/// operator suspends the version behind a confirmation (its queries refused), then
/// reinstates it; a supervisor may recall but not suspend.
#[test]
fn an_operator_suspends_and_reinstates_a_dataset_version_in_the_console() {
    let api = Api::new();
    sandbox_runtime::versions::object(
        &api.f.domain,
        sandbox_tests::PROVIDER,
        "residents",
        1,
        "district codes of 2025 were mapped wrongly",
    )
    .unwrap();
    let ops = sign_in(&api, OPERATOR);
    let page = request(
        &api,
        Method::GET,
        "/console/datasets",
        Some(&ops),
        None,
        None,
    );
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("income-test"), "{}", page.body);
    let path = "/console/datasets/residents/1";
    let page = request(&api, Method::GET, path, Some(&ops), None, None);
    assert!(
        page.body.contains("district codes of 2025"),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"version-suspend\""));
    let csrf = csrf_of(&page.body);
    let act = "/console/datasets/residents/1/act";
    let done = request(
        &api,
        Method::POST,
        act,
        Some(&ops),
        Some(&[
            ("decision", "suspend"),
            ("reason", "until corrected"),
            ("csrf", &csrf),
        ]),
        None,
    );
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert!(api.f.ask("SELECT COUNT(*) FROM residents").is_err());
    let page = request(&api, Method::GET, path, Some(&ops), None, None);
    assert!(page.body.contains("id=\"suspended\""), "{}", page.body);
    let done = request(
        &api,
        Method::POST,
        act,
        Some(&ops),
        Some(&[
            ("decision", "reinstate"),
            ("reason", "corrected"),
            ("csrf", &csrf),
        ]),
        None,
    );
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    api.f.ask("SELECT COUNT(*) FROM residents").unwrap();
    // A supervisor may not suspend: refused, recorded.
    let sup = sign_in(&api, SUPERVISOR);
    let page = request(&api, Method::GET, path, Some(&sup), None, None);
    assert!(!page.body.contains("id=\"version-suspend\""));
    let sup_csrf = csrf_of(&page.body);
    let refused = request(
        &api,
        Method::POST,
        act,
        Some(&sup),
        Some(&[
            ("decision", "suspend"),
            ("reason", "x"),
            ("csrf", &sup_csrf),
        ]),
        None,
    );
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
}

/// The oversight page's forms (QQHR Art. 20; SYS Art. 31): a supervisor opens an
/// incident, logs a notice and closes it, and issues a rectification order; the developer
/// answers it from their console; the supervisor closes it. An operator may record
/// incidents but not issue orders (refused, recorded); a bad deadline is a clear error.
#[test]
fn incidents_and_orders_are_recorded_and_answered_in_the_console() {
    let api = Api::new();
    let sup = sign_in(&api, SUPERVISOR);
    let page = request(
        &api,
        Method::GET,
        "/console/oversight",
        Some(&sup),
        None,
        None,
    );
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"issue-order\""), "{}", page.body);
    // Each session's forms carry its own CSRF secret.
    let csrf_for = |cookie: &str| {
        let page = request(
            &api,
            Method::GET,
            "/console/oversight",
            Some(cookie),
            None,
            None,
        );
        csrf_of(&page.body)
    };
    let act = |cookie: &str, fields: &[(&str, &str)]| {
        let csrf = csrf_for(cookie);
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf", &csrf));
        request(
            &api,
            Method::POST,
            "/console/oversight/act",
            Some(cookie),
            Some(&form),
            None,
        )
    };
    let page = act(
        &sup,
        &[
            ("action", "open"),
            ("grade", "relatively_major"),
            ("title", "Unusual query volume"),
            ("text", "A scenario's refusals rose within the hour"),
        ],
    );
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let id = sandbox_runtime::incidents::list(&api.f.domain, SUPERVISOR).unwrap()[0].id;
    let id = id.to_string();
    // A notice names to whom it went.
    let page = act(
        &sup,
        &[
            ("action", "log"),
            ("id", &id),
            ("kind", "notice"),
            ("text", "the developer was told"),
        ],
    );
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(page.body.contains("id=\"error\""));
    let page = act(
        &sup,
        &[
            ("action", "log"),
            ("id", &id),
            ("kind", "notice"),
            ("recipient", DEVELOPER),
            ("text", "the developer was told"),
        ],
    );
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let page = act(
        &sup,
        &[
            ("action", "close"),
            ("id", &id),
            ("text", "volume explained"),
        ],
    );
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let incident =
        sandbox_runtime::incidents::get(&api.f.domain, SUPERVISOR, id.parse().unwrap()).unwrap();
    assert_eq!(incident.grade, "relatively_major");
    assert_eq!(incident.entries.len(), 1);
    assert_eq!(incident.entries[0].recipient.as_deref(), Some(DEVELOPER));
    assert_eq!(incident.summary.as_deref(), Some("volume explained"));

    // Orders: a deadline in the past is refused; one for tomorrow is issued.
    let yesterday = (chrono::Utc::now().date_naive() - chrono::Duration::days(1)).to_string();
    let tomorrow = (chrono::Utc::now().date_naive() + chrono::Duration::days(1)).to_string();
    fn order(deadline: &str) -> Vec<(&'static str, &str)> {
        vec![
            ("action", "issue"),
            ("kind", "principal"),
            ("target", DEVELOPER),
            ("deadline", deadline),
            (
                "text",
                "Delete the copies of the outputs kept outside review",
            ),
        ]
    }
    let page = act(&sup, &order(&yesterday));
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    let ops = sign_in(&api, OPERATOR);
    let page = act(&ops, &order(&tomorrow));
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(page.body.contains("order.issue"), "{}", page.body);
    assert_eq!(refusals(&api, OPERATOR), 1);
    let page = act(&sup, &order(&tomorrow));
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let o = sandbox_runtime::incidents::orders(&api.f.domain, SUPERVISOR).unwrap()[0].clone();
    assert_eq!(o.status, "open");

    // The developer sees it on their console and answers it.
    let dev = sign_in(&api, DEVELOPER);
    let page = request(&api, Method::GET, "/console/", Some(&dev), None, None);
    assert!(
        page.body
            .contains("Delete the copies of the outputs kept outside review"),
        "{}",
        page.body
    );
    let answer_path = format!("/console/orders/{}/answer", o.id);
    let dev_csrf = csrf_of(&page.body);
    let page = request(
        &api,
        Method::POST,
        &answer_path,
        Some(&dev),
        Some(&[
            ("reason", "copies deleted on 6 December"),
            ("csrf", &dev_csrf),
        ]),
        None,
    );
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let page = request(
        &api,
        Method::GET,
        "/console/oversight",
        Some(&sup),
        None,
        None,
    );
    assert!(page.body.contains("copies deleted on 6 December"));
    assert!(
        page.body.contains(&format!("id=\"order-close-{}\"", o.id)),
        "{}",
        page.body
    );
    let page = act(
        &sup,
        &[("action", "close_order"), ("id", &o.id.to_string())],
    );
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let o = sandbox_runtime::incidents::orders(&api.f.domain, SUPERVISOR).unwrap()[0].clone();
    assert_eq!(o.status, "closed");
    // A closed order leaves the developer's console.
    let page = request(&api, Method::GET, "/console/", Some(&dev), None, None);
    assert!(!page.body.contains("Delete the copies"));

    // The operator keeps the register (QQHR Art. 14, 23): a code whose check character
    // fails is refused; an organisation entered, then its qualification ended with a
    // reason. A supervisor has no such form.
    let entry = |code: &'static str| {
        vec![
            ("action", "org_add"),
            ("code", code),
            ("name", "天津数据交易中心"),
            ("officer", "刘敏"),
            ("contact", "022-23456789"),
            ("qualified_until", "2030-12-31"),
            ("epsilon_cap", "20"),
        ]
    };
    let page = act(&ops, &entry("91110000100003208J"));
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(page.body.contains("id=\"error\""));
    let page = act(&ops, &entry("91120000MA05K7Q3XD"));
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let page = request(
        &api,
        Method::GET,
        "/console/oversight",
        Some(&ops),
        None,
        None,
    );
    assert!(
        page.body
            .contains("id=\"org-91120000MA05K7Q3XD-until\" name=\"qualified_until\" required value=\"2030-12-31\""),
        "{}",
        page.body
    );
    let mut change = entry("91120000MA05K7Q3XD");
    change[0] = ("action", "org_set");
    change[5] = ("qualified_until", "2026-01-31");
    change.push(("text", "qualification not renewed"));
    let page = act(&ops, &change);
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let o =
        sandbox_runtime::organisations::get(&api.f.domain, OPERATOR, "91120000MA05K7Q3XD").unwrap();
    assert_eq!(o.qualified_until, "2026-01-31");
    assert_eq!(o.epsilon_cap, Some(20.0));
    let page = request(
        &api,
        Method::GET,
        "/console/oversight",
        Some(&sup),
        None,
        None,
    );
    assert!(!page.body.contains("id=\"add-organisation\""));
    let page = act(&sup, &change);
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(page.body.contains("organisation.manage"), "{}", page.body);
}

/// A provider in the console (JZ Art. 11; QQHR Art. 20): its scenarios with its word on
/// each, the agreement's terms and response plan, its no-objection recorded; on its
/// dataset's version page it objects and suspends (no recall: that is for operators and
/// supervisors); the oversight pages are not its.
#[test]
fn a_provider_consents_and_objects_in_the_console() {
    let api = Api::new();
    let text = sandbox_tests::scenario_text("provider-view", 1.0, 1.0);
    let s = sandbox_runtime::scenarios::apply(&api.f.domain, DEVELOPER, &text).unwrap();
    let key = s.id.to_string();
    let prov = sign_in(&api, sandbox_tests::PROVIDER);
    let page = request(&api, Method::GET, "/console/", Some(&prov), None, None);
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/console/scenarios");
    let page = request(
        &api,
        Method::GET,
        "/console/scenarios",
        Some(&prov),
        None,
        None,
    );
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body
            .contains(&format!("data-id=\"{key}\" data-word=\"awaited\"")),
        "{}",
        page.body
    );
    let path = format!("/console/scenarios/{key}");
    let page = request(&api, Method::GET, &path, Some(&prov), None, None);
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for text in [
        "id=\"response-plan\"",
        "the developer notifies the data bureau within the hour",
        "id=\"legal-basis\">the data bureau's authorization of the public data operation",
        "id=\"consent-scenario\"",
    ] {
        assert!(page.body.contains(text), "{text}: {}", page.body);
    }
    let csrf = csrf_of(&page.body);
    let page = request(
        &api,
        Method::POST,
        &format!("{path}/consent"),
        Some(&prov),
        Some(&[
            ("decision", "no_objection"),
            ("reason", ""),
            ("csrf", &csrf),
        ]),
        None,
    );
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let consents = sandbox_runtime::consent::consents(&api.f.domain, DEVELOPER, &key).unwrap();
    assert!(consents.items.iter().any(|i| {
        i.dataset.as_deref() == Some("residents")
            && i.state == sandbox_runtime::consent::ConsentState::NoObjection
            && i.by.as_deref() == Some(sandbox_tests::PROVIDER)
    }));
    let page = request(&api, Method::GET, &path, Some(&prov), None, None);
    assert!(!page.body.contains("id=\"consent-scenario\""));

    // Its dataset's version page: object, then suspend.
    let version = sandbox_runtime::catalog::get(&api.f.domain, OPERATOR, "residents")
        .unwrap()
        .version;
    let vpath = format!("/console/datasets/residents/{version}");
    let page = request(&api, Method::GET, &vpath, Some(&prov), None, None);
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("id=\"version-object\""), "{}", page.body);
    assert!(page.body.contains("id=\"version-suspend\""));
    assert!(!page.body.contains("id=\"version-recall\""));
    let csrf = csrf_of(&page.body);
    for decision in ["object", "suspend"] {
        let page = request(
            &api,
            Method::POST,
            &format!("{vpath}/act"),
            Some(&prov),
            Some(&[
                ("decision", decision),
                ("reason", "district codes were shifted in this version"),
                ("confirm", "yes"),
                ("csrf", &csrf),
            ]),
            None,
        );
        assert_eq!(
            page.status,
            StatusCode::SEE_OTHER,
            "{decision}: {}",
            page.body
        );
    }
    let standing =
        sandbox_runtime::versions::show(&api.f.domain, OPERATOR, "residents", version).unwrap();
    assert_eq!(standing.objections.len(), 1);
    assert_eq!(standing.objections[0].raised_by, sandbox_tests::PROVIDER);
    assert!(standing.suspended.is_some());
    let page = request(
        &api,
        Method::GET,
        "/console/oversight",
        Some(&prov),
        None,
        None,
    );
    assert_eq!(page.status, StatusCode::FORBIDDEN);
}
