//! The HTTP API, driven through the router without a port: tokens, the happy path of every
//! endpoint, scenario membership, and the role matrix (every endpoint against every kind
//! of caller, every refusal audited).

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine;
use sandbox_runtime::identity::{self, Role};
use sandbox_runtime::{Error, tokens};
use sandbox_server::{self as server, AppState};
use sandbox_tests::{DEVELOPER, Fixture, OPERATOR, PROVIDER, SUPERVISOR, count, scenario_text};
use serde_json::{Value, json};
use tower::ServiceExt;

/// A second developer, with no scenario of their own.
pub(crate) const DEVELOPER2: &str = "dev-qian";
/// An admin: identities only.
pub(crate) const ADMIN: &str = "it-sun";
/// A data user: receives the products granted to it, and nothing else.
pub(crate) const DATA_USER: &str = "user-zhou";

pub(crate) struct Api {
    pub f: Fixture,
    pub app: Router,
    pub state: AppState,
    pub rt: tokio::runtime::Runtime,
    tokens: HashMap<&'static str, String>,
}

impl Api {
    /// The standard fixture, a token for each principal, and the router over it, with
    /// its job queue running.
    pub fn new() -> Api {
        Api::with(
            Fixture::new(),
            server::Config {
                // The matrix makes many anonymous calls within a minute.
                anonymous_refusals_per_minute: 100_000,
                ..Default::default()
            },
        )
    }

    /// As [`Api::new`] over `f` with `config`.
    pub fn with(f: Fixture, config: server::Config) -> Api {
        identity::add(&f.domain, Some(OPERATOR), DEVELOPER2, Role::Developer).unwrap();
        identity::add(&f.domain, Some(OPERATOR), ADMIN, Role::Admin).unwrap();
        identity::add(&f.domain, Some(OPERATOR), DATA_USER, Role::DataUser).unwrap();
        let mut tokens = HashMap::new();
        for name in [
            OPERATOR, PROVIDER, DEVELOPER, SUPERVISOR, DEVELOPER2, ADMIN, DATA_USER,
        ] {
            tokens.insert(
                name,
                tokens::issue(&f.domain, OPERATOR, name).unwrap().token,
            );
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let state = AppState::new(f.domain.clone(), config);
        {
            let _in = rt.enter();
            state.start_queue();
        }
        let app = server::router(state.clone());
        Api {
            f,
            app,
            state,
            rt,
            tokens,
        }
    }

    pub fn token(&self, name: &str) -> Option<&str> {
        self.tokens.get(name).map(String::as_str)
    }

    /// Issues a token for a principal added after the API started.
    pub fn add_token(&mut self, name: &str) {
        let t = tokens::issue(&self.f.domain, OPERATOR, name).unwrap().token;
        self.tokens.insert(name.to_string().leak(), t);
    }

    pub fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Vec<u8>) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        self.rt.block_on(async {
            let resp = self.app.clone().oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, bytes.to_vec())
        })
    }

    pub fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, bytes) = self.raw(method, path, token, body);
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    pub fn get(&self, as_: &str, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, self.token(as_), None)
    }

    pub fn post(&self, as_: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, self.token(as_), Some(body))
    }

    pub fn refusals(&self, actor: &str, subject: &str) -> i64 {
        sandbox_tests::raw(&self.f.domain)
            .query_row(
                "SELECT COUNT(*) FROM audit_events WHERE action = 'api.refused' AND actor = ?1 AND subject = ?2",
                [actor, subject],
                |r| r.get(0),
            )
            .unwrap()
    }
}

pub(crate) fn text_module(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(sandbox_tests::text_module(text))
}

#[test]
fn tokens_are_kept_hashed_shown_once_and_revocable() {
    let api = Api::new();
    let token = api.token(DEVELOPER).unwrap().to_string();
    let (id, secret) = tokens::parse(&token).unwrap();
    let conn = sandbox_tests::raw(&api.f.domain);
    let hash: String = conn
        .query_row("SELECT hash FROM api_tokens WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(secret));
    // Nothing in the audit log carries the secret.
    assert_eq!(
        count(
            &conn,
            &format!("SELECT COUNT(*) FROM audit_events WHERE details LIKE '%{secret}%'")
        ),
        0
    );
    let (status, me) = api.get(DEVELOPER, "/api/v1/whoami");
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["name"], DEVELOPER);
    assert_eq!(me["role"], "developer");
    // A wrong secret under a real id is refused and recorded.
    let forged = format!("sbx_{id}_{}", "0".repeat(64));
    let (status, body) = api.call(Method::GET, "/api/v1/whoami", Some(&forged), None);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "unauthenticated");
    assert_eq!(api.refusals("anonymous", "api:GET /api/v1/whoami"), 1);
    // Only an operator issues tokens.
    let conn = sandbox_tests::raw(&api.f.domain);
    assert!(matches!(
        tokens::issue(&api.f.domain, DEVELOPER, DEVELOPER),
        Err(Error::Forbidden(_))
    ));
    // The holder revokes their own token; it no longer works, and cannot be revoked again.
    tokens::revoke(&api.f.domain, DEVELOPER, id, "laptop lost").unwrap();
    assert!(matches!(
        tokens::revoke(&api.f.domain, OPERATOR, id, "again"),
        Err(Error::Conflict(_))
    ));
    let (status, body) = api.get(DEVELOPER, "/api/v1/whoami");
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["message"].as_str().unwrap().contains("revoked"));
    let actions: Vec<String> = conn
        .prepare("SELECT action FROM audit_events WHERE subject = ?1 ORDER BY seq")
        .unwrap()
        .query_map([format!("token:{id}")], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(actions, ["token.issued", "token.revoked"]);
    // A suspended principal's token is refused everywhere, and in the domain too.
    identity::set_status(
        &api.f.domain,
        OPERATOR,
        DEVELOPER2,
        identity::Status::Suspended,
        "qualification under review",
    )
    .unwrap();
    let (status, _) = api.get(DEVELOPER2, "/api/v1/whoami");
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(api.refusals("anonymous", "api:GET /api/v1/whoami"), 2);
    assert_eq!(api.refusals(DEVELOPER2, "api:GET /api/v1/whoami"), 1);
    assert!(matches!(
        sandbox_runtime::scenarios::apply(
            &api.f.domain,
            DEVELOPER2,
            &scenario_text("suspended-study", 1.0, 1.0)
        ),
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        tokens::issue(&api.f.domain, OPERATOR, DEVELOPER2),
        Err(Error::Conflict(_))
    ));
    // Qualified again, the same token works; revoked, never again.
    let (status, _) = api.post(
        OPERATOR,
        &format!("/api/v1/principals/{DEVELOPER2}/qualify"),
        json!({"reason": "review passed"}),
    );
    assert_eq!(status, StatusCode::OK);
    assert_eq!(api.get(DEVELOPER2, "/api/v1/whoami").0, StatusCode::OK);
    let (status, p) = api.post(
        OPERATOR,
        &format!("/api/v1/principals/{DEVELOPER2}/revoke"),
        json!({"reason": "left the institution"}),
    );
    assert_eq!(
        (status, p["status"].as_str()),
        (StatusCode::OK, Some("revoked"))
    );
    let (status, _) = api.post(
        OPERATOR,
        &format!("/api/v1/principals/{DEVELOPER2}/qualify"),
        json!({"reason": "back"}),
    );
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        api.get(DEVELOPER2, "/api/v1/whoami").0,
        StatusCode::FORBIDDEN
    );
    // An operator cannot suspend themselves.
    let (status, _) = api.post(
        OPERATOR,
        &format!("/api/v1/principals/{OPERATOR}/suspend"),
        json!({"reason": "test"}),
    );
    assert_eq!(status, StatusCode::FORBIDDEN);
    let verified = sandbox_runtime::audit::verify_custodian(&api.f.domain).unwrap();
    assert!(verified.events > 0);
}

#[test]
fn a_job_goes_from_submission_to_a_released_product_through_the_api() {
    let api = Api::new();
    // The provider registers a dataset (a new version of the residents).
    let (status, v) = api.post(
        PROVIDER,
        "/api/v1/datasets",
        json!({
            "policy": sandbox_cli::demo::RESIDENTS_POLICY,
            "csv": sandbox_synth::residents_csv(300, 7),
            "file_name": "residents-2026.csv",
        }),
    );
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["name"].as_str(), v["version"].as_i64()),
        (Some("residents"), Some(2))
    );
    assert!(v.get("path").is_none(), "no server path in {v}");
    let (status, list) = api.get(DEVELOPER, "/api/v1/datasets");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(
        api.get(DEVELOPER, "/api/v1/datasets/residents").0,
        StatusCode::OK
    );
    let (status, _) = api.get(DEVELOPER, "/api/v1/datasets/nowhere");
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The developer applies; the operator rejects one scenario and approves another.
    let (status, s) = api.post(
        DEVELOPER,
        "/api/v1/scenarios",
        json!({"spec": scenario_text("api-study", 2.0, 1.0)}),
    );
    assert_eq!(status, StatusCode::CREATED, "{s}");
    assert_eq!(s["status"], "pending");
    let id = s["id"].as_i64().unwrap();
    let (status, s2) = api.post(
        DEVELOPER,
        "/api/v1/scenarios",
        json!({"spec": scenario_text("api-study-2", 2.0, 1.0)}),
    );
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = api.post(
        OPERATOR,
        &format!("/api/v1/scenarios/{}/reject", s2["id"]),
        json!({}),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
    let (status, r) = api.post(
        OPERATOR,
        &format!("/api/v1/scenarios/{}/reject", s2["id"]),
        json!({"reason": "purpose too broad"}),
    );
    assert_eq!(
        (status, r["status"].as_str()),
        (StatusCode::OK, Some("rejected"))
    );
    // Consent before use (JZ Art. 11): the operator's approval alone leaves the scenario
    // pending; the provider objects, the applicant answers, the provider and a supervisor
    // record no objection, and the scenario becomes usable.
    let (status, r) = api.post(
        OPERATOR,
        &format!("/api/v1/scenarios/{id}/approve"),
        json!({"reason": "within the agreement"}),
    );
    assert_eq!(
        (status, r["status"].as_str(), r["decided_by"].as_str()),
        (StatusCode::OK, Some("pending"), Some(OPERATOR))
    );
    let consents = format!("/api/v1/scenarios/{id}/consents");
    let (status, c) = api.get(DEVELOPER, &consents);
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["complete"], false);
    assert_eq!(
        c["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["party"].as_str().unwrap(), i["state"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        [("provider", "awaited"), ("supervisor", "awaited")]
    );
    let consent = format!("/api/v1/scenarios/{id}/consent");
    for who in [DEVELOPER, OPERATOR, DEVELOPER2] {
        assert_eq!(
            api.post(who, &consent, json!({})).0,
            StatusCode::FORBIDDEN,
            "{who}"
        );
    }
    let (status, c) = api.post(
        PROVIDER,
        &consent,
        json!({"objection": "the age column is not needed for this purpose"}),
    );
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["items"][0]["state"], "objection");
    // A supervisor speaks for the scenario, not a dataset.
    assert_eq!(
        api.post(SUPERVISOR, &consent, json!({"dataset": "residents"}))
            .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(api.post(SUPERVISOR, &consent, json!({})).0, StatusCode::OK);
    let (_, one) = api.get(DEVELOPER, &format!("/api/v1/scenarios/{id}"));
    assert_eq!(one["status"], "pending", "an objection stands");
    let answer = format!("/api/v1/scenarios/{id}/answer");
    assert_eq!(
        api.post(
            DEVELOPER,
            &answer,
            json!({"party": "supervisor", "answer": "x"})
        )
        .0,
        StatusCode::CONFLICT,
        "the supervisor did not object"
    );
    let (status, c) = api.post(
        DEVELOPER,
        &answer,
        json!({"party": "provider", "dataset": "residents", "answer": "age bands the averages by cohort"}),
    );
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["items"][0]["answer"], "age bands the averages by cohort");
    let (status, c) = api.post(PROVIDER, &consent, json!({"dataset": "residents"}));
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["complete"], true);
    assert_eq!(c["status"], "approved");
    assert_eq!(
        count(
            &sandbox_tests::raw(&api.f.domain),
            &format!(
                "SELECT COUNT(*) FROM audit_events WHERE subject = 'scenario:{id}' AND action IN ('scenario.objected', 'scenario.objection_answered', 'scenario.consented', 'scenario.usable')"
            )
        ),
        5
    );
    // Deciding twice is a conflict, by name as by id.
    let (status, body) = api.post(OPERATOR, "/api/v1/scenarios/api-study/approve", json!({}));
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );
    let (status, one) = api.get(DEVELOPER, &format!("/api/v1/scenarios/{id}"));
    assert_eq!(
        (status, one["spec"]["name"].as_str()),
        (StatusCode::OK, Some("api-study"))
    );
    let (_, mine) = api.get(DEVELOPER, "/api/v1/scenarios");
    assert_eq!(mine.as_array().unwrap().len(), 3);

    // The developer submits a job; its output waits for review.
    let (status, report) = api.post(
        DEVELOPER,
        "/api/v1/jobs?wait=60",
        json!({"scenario": "api-study", "module": text_module("Average income rose in every district."), "params": {}, "limits": {"fuel": 1000000}}),
    );
    assert_eq!(status, StatusCode::CREATED, "{report}");
    assert_eq!(report["status"], "succeeded");
    let job = report["id"].as_str().unwrap().to_string();
    let out = report["outputs"][0]["id"].as_str().unwrap().to_string();
    let (status, j) = api.get(DEVELOPER, &format!("/api/v1/jobs/{job}"));
    assert_eq!(
        (status, j["status"].as_str()),
        (StatusCode::OK, Some("succeeded"))
    );
    assert_eq!(j["outputs"][0]["id"].as_str(), Some(out.as_str()));
    // Waits beyond the server's limit wait as long as the limit.
    for wait in ["1e300", "inf"] {
        let (status, report) = api.post(
            DEVELOPER,
            &format!("/api/v1/jobs?wait={wait}"),
            json!({"scenario": "api-study", "module": text_module("Waited.")}),
        );
        assert_eq!(
            (status, report["status"].as_str()),
            (StatusCode::CREATED, Some("succeeded")),
            "{wait}: {report}"
        );
    }
    for wait in ["-1", "NaN", "soon"] {
        let (status, _) = api.post(
            DEVELOPER,
            &format!("/api/v1/jobs?wait={wait}"),
            json!({"scenario": "api-study", "module": text_module("Never.")}),
        );
        assert_eq!(status, StatusCode::BAD_REQUEST, "{wait}");
    }
    let (status, body) = api.post(
        DEVELOPER,
        "/api/v1/jobs",
        json!({"scenario": "api-study", "module": "not base64!"}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // The operator sees it pending with its checks and reads the file.
    let (status, pending) = api.get(OPERATOR, "/api/v1/outputs");
    assert_eq!(status, StatusCode::OK);
    let o = pending
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == out.as_str())
        .unwrap();
    assert_eq!(o["status"], "checked");
    assert!(o["checks"]["results"].is_array(), "{o}");
    let (status, file) = api.raw(
        Method::GET,
        &format!("/api/v1/outputs/{out}/file"),
        api.token(OPERATOR),
        None,
    );
    assert_eq!(status, StatusCode::OK);
    assert_eq!(file, b"Average income rose in every district.");
    // The supervisor cannot go first; the operator approves, the supervisor releases.
    let (status, body) = api.post(
        SUPERVISOR,
        &format!("/api/v1/outputs/{out}/approve"),
        json!({}),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("review"))
    );
    let (status, o) = api.post(
        OPERATOR,
        &format!("/api/v1/outputs/{out}/approve"),
        json!({}),
    );
    assert_eq!(
        (status, o["status"].as_str()),
        (StatusCode::OK, Some("operator_approved"))
    );
    let (status, o) = api.post(
        SUPERVISOR,
        &format!("/api/v1/outputs/{out}/approve"),
        json!({"reason": "fine"}),
    );
    assert_eq!(
        (status, o["status"].as_str()),
        (StatusCode::OK, Some("released"))
    );
    let (_, all) = api.get(OPERATOR, "/api/v1/outputs?status=all");
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|o| o["id"] == out.as_str())
    );
    let (_, pending) = api.get(OPERATOR, "/api/v1/outputs");
    assert!(
        !pending
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["id"] == out.as_str())
    );
    assert_eq!(
        api.get(OPERATOR, "/api/v1/outputs?status=odd").0,
        StatusCode::BAD_REQUEST
    );

    // Everyone sees the product in the catalog; a provider it is not granted to gets no
    // manifest; a supervisor's verifies against the signature served.
    let (status, products) = api.get(DEVELOPER, "/api/v1/products");
    assert_eq!(status, StatusCode::OK);
    let product = products[0]["id"].as_str().unwrap().to_string();
    let (status, p) = api.get(PROVIDER, &format!("/api/v1/products/{product}"));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(p["catalog"]["id"].as_str(), Some(product.as_str()));
    assert_eq!(p["manifest"], Value::Null);
    let (status, p) = api.get(SUPERVISOR, &format!("/api/v1/products/{product}"));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(p["manifest"]["product_id"].as_str(), Some(product.as_str()));
    let (status, manifest_bytes) = api.raw(
        Method::GET,
        &format!("/api/v1/products/{product}/files/manifest.json"),
        api.token(SUPERVISOR),
        None,
    );
    assert_eq!(status, StatusCode::OK);
    let key = sandbox_runtime::keys::public_key(api.f.domain.layout()).unwrap();
    sandbox_runtime::keys::verify(&key, &manifest_bytes, p["signature"].as_str().unwrap()).unwrap();
    let (status, note) = api.raw(
        Method::GET,
        &format!("/api/v1/products/{product}/files/note.md"),
        api.token(DEVELOPER),
        None,
    );
    assert_eq!(
        (status, note.as_slice()),
        (
            StatusCode::OK,
            b"Average income rose in every district.".as_slice()
        )
    );
    for bad in ["..%2Fmanifest.json", "sandbox.db", "other.md"] {
        let (status, _) = api.get(
            DEVELOPER,
            &format!("/api/v1/products/{product}/files/{bad}"),
        );
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}");
    }
    // Every download is an audit event: who took which file, and the hash of what left;
    // a refused one took nothing.
    let conn = sandbox_tests::raw(&api.f.domain);
    let downloads: Vec<(String, String, String)> = conn
        .prepare(
            "SELECT actor, action, details FROM audit_events
             WHERE action IN ('output.downloaded', 'product.downloaded') ORDER BY seq",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let who: Vec<(&str, &str)> = downloads
        .iter()
        .map(|(a, k, _)| (a.as_str(), k.as_str()))
        .collect();
    assert_eq!(
        who,
        [
            (OPERATOR, "output.downloaded"),
            (SUPERVISOR, "product.downloaded"),
            (DEVELOPER, "product.downloaded"),
        ]
    );
    let detail: serde_json::Value = serde_json::from_str(&downloads[2].2).unwrap();
    assert_eq!(detail["file"], "note.md");
    assert_eq!(
        detail["sha256"].as_str(),
        Some(sandbox_core::sha256_hex(b"Average income rose in every district.").as_str())
    );

    // A second output is sent back with a comment, a third rejected.
    for (decision, to) in [
        ("request-changes", "changes_requested"),
        ("reject", "rejected"),
    ] {
        let (_, report) = api.post(
            DEVELOPER,
            "/api/v1/jobs?wait=60",
            json!({"scenario": id.to_string(), "module": text_module("Income is stable.")}),
        );
        let out = report["outputs"][0]["id"].as_str().unwrap().to_string();
        let (status, _) = api.post(
            OPERATOR,
            &format!("/api/v1/outputs/{out}/{decision}"),
            json!({}),
        );
        assert_eq!(status, StatusCode::BAD_REQUEST, "{decision} needs a reason");
        let (status, o) = api.post(
            OPERATOR,
            &format!("/api/v1/outputs/{out}/{decision}"),
            json!({"reason": "name the districts"}),
        );
        assert_eq!((status, o["status"].as_str()), (StatusCode::OK, Some(to)));
    }

    // Budget, audit page, verification, inclusion proof.
    let (status, b) = api.get(DEVELOPER, &format!("/api/v1/scenarios/{id}/budget"));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(b["epsilon_total"].as_f64(), Some(2.0));
    let (status, page) = api.get(SUPERVISOR, "/api/v1/audit/events?from=1&limit=5");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["events"].as_array().unwrap().len(), 5);
    assert_eq!(page["next"].as_i64(), Some(6));
    let (status, v) = api.get(SUPERVISOR, "/api/v1/audit/verify");
    assert_eq!(
        (status, v["verified"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{v}"
    );
    let (status, proof) = api.get(OPERATOR, "/api/v1/audit/proof/3");
    assert_eq!(status, StatusCode::OK, "{proof}");
    sandbox_runtime::audit::verify_proof(&proof.to_string(), Some(&key)).unwrap();
    assert_eq!(
        api.get(OPERATOR, "/api/v1/audit/proof/x").0,
        StatusCode::BAD_REQUEST
    );

    // An emergency stop refuses new jobs until it is lifted.
    let (status, stop) = api.post(
        SUPERVISOR,
        "/api/v1/stops",
        json!({"scope": "scenario", "target": "api-study", "reason": "suspected misuse"}),
    );
    assert_eq!(status, StatusCode::CREATED, "{stop}");
    let (status, body) = api.post(
        DEVELOPER,
        "/api/v1/jobs",
        json!({"scenario": "api-study", "module": text_module("x")}),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::LOCKED, Some("stopped"))
    );
    let (status, _) = api.post(
        OPERATOR,
        &format!("/api/v1/stops/{}/lift", stop["id"]),
        json!({"reason": "cleared"}),
    );
    assert_eq!(status, StatusCode::OK);
    let (status, report) = api.post(
        DEVELOPER,
        "/api/v1/jobs?wait=60",
        json!({"scenario": "api-study", "module": text_module("y")}),
    );
    assert_eq!(
        (status, report["status"].as_str()),
        (StatusCode::CREATED, Some("succeeded"))
    );
    // Nothing above was refused for want of a role, but the consents tried by three who
    // may not give one.
    assert_eq!(
        count(
            &sandbox_tests::raw(&api.f.domain),
            "SELECT COUNT(*) FROM audit_events WHERE action = 'api.refused'"
        ),
        3
    );
}

#[test]
fn developers_see_and_use_only_their_own_scenarios() {
    let api = Api::new();
    let id = api.f.scenario.id;
    let (status, list) = api.get(DEVELOPER2, "/api/v1/scenarios");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list, json!([]));
    let (_, list) = api.get(DEVELOPER, "/api/v1/scenarios");
    assert_eq!(list.as_array().unwrap().len(), 1);
    // The provider of its dataset sees it; every reviewer does.
    let (_, list) = api.get(PROVIDER, "/api/v1/scenarios");
    assert_eq!(list.as_array().unwrap().len(), 1);
    for path in [
        format!("/api/v1/scenarios/{id}"),
        format!("/api/v1/scenarios/{id}/budget"),
    ] {
        let (status, body) = api.get(DEVELOPER2, &path);
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert_eq!(api.refusals(DEVELOPER2, &format!("api:GET {path}")), 1);
    }
    let (status, _) = api.post(
        DEVELOPER2,
        "/api/v1/jobs",
        json!({"scenario": id.to_string(), "module": text_module("z")}),
    );
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(api.refusals(DEVELOPER2, "api:POST /api/v1/jobs"), 1);
    // Nor another developer's job.
    let (_, report) = api.post(
        DEVELOPER,
        "/api/v1/jobs?wait=60",
        json!({"scenario": id.to_string(), "module": text_module("z")}),
    );
    let job = report["id"].as_str().unwrap();
    assert_eq!(
        api.get(DEVELOPER, &format!("/api/v1/jobs/{job}")).0,
        StatusCode::OK
    );
    assert_eq!(
        api.get(SUPERVISOR, &format!("/api/v1/jobs/{job}")).0,
        StatusCode::OK
    );
    assert_eq!(
        api.get(DEVELOPER2, &format!("/api/v1/jobs/{job}")).0,
        StatusCode::FORBIDDEN
    );
    // A developer does not review, not even their own output.
    let out = report["outputs"][0]["id"].as_str().unwrap();
    let (status, _) = api.post(
        DEVELOPER,
        &format!("/api/v1/outputs/{out}/approve"),
        json!({}),
    );
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// Who calls: a principal's token, or one of the broken cases.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Provider,
    Operator,
    Developer,
    Supervisor,
    DataUser,
    Admin,
    NoToken,
    BadToken,
    RevokedToken,
    Suspended,
}

const ALL: &[Who] = &[
    Who::Provider,
    Who::Operator,
    Who::Developer,
    Who::Supervisor,
    Who::DataUser,
    Who::Admin,
];
/// Every role but the data user's (who receives products and nothing else).
const ALL_BUT_DATA_USERS: &[Who] = &[
    Who::Provider,
    Who::Operator,
    Who::Developer,
    Who::Supervisor,
    Who::Admin,
];
const EVERYONE: &[Who] = &[
    Who::Provider,
    Who::Operator,
    Who::Developer,
    Who::Supervisor,
];
const IDENTITY_ADMINS: &[Who] = &[Who::Operator, Who::Admin];
const PRINCIPAL_READERS: &[Who] = &[Who::Operator, Who::Supervisor, Who::Admin];
const REVIEWERS: &[Who] = &[Who::Operator, Who::Supervisor];
const PROVIDERS: &[Who] = &[Who::Provider];
const CONSENTERS: &[Who] = &[Who::Provider, Who::Supervisor];
const OPERATORS: &[Who] = &[Who::Operator];
const DEVELOPERS: &[Who] = &[Who::Developer];
const NOT_PROVIDERS: &[Who] = &[Who::Operator, Who::Developer, Who::Supervisor];

#[test]
fn role_matrix_every_endpoint_against_every_caller_and_every_refusal_is_audited() {
    let api = Api::new();
    let id = api.f.scenario.id;
    // A revoked token and a suspended principal's token.
    let revoked = tokens::issue(&api.f.domain, OPERATOR, SUPERVISOR).unwrap();
    tokens::revoke(&api.f.domain, OPERATOR, &revoked.id, "rotated").unwrap();
    identity::set_status(
        &api.f.domain,
        OPERATOR,
        DEVELOPER2,
        identity::Status::Suspended,
        "under review",
    )
    .unwrap();
    let bad = format!("sbx_{}_{}", "1".repeat(16), "2".repeat(64));
    let reason = || json!({"reason": "matrix"});
    // (method, path, body, who may call it). Allowed calls name things that do not exist
    // or are malformed, so they change nothing and the matrix can run in any order.
    let table: Vec<(Method, String, Option<Value>, &[Who])> = vec![
        (Method::GET, "/whoami".into(), None, ALL),
        (
            Method::PUT,
            "/whoami/language".into(),
            Some(json!({"language": "klingon"})),
            ALL,
        ),
        (Method::GET, "/settings".into(), None, ALL),
        (
            Method::PUT,
            "/settings".into(),
            Some(json!({"default_language": "en", "time_zone": "Nowhere/None"})),
            IDENTITY_ADMINS,
        ),
        (Method::GET, "/datasets".into(), None, ALL_BUT_DATA_USERS),
        (
            Method::GET,
            "/datasets/residents".into(),
            None,
            ALL_BUT_DATA_USERS,
        ),
        (
            Method::POST,
            "/datasets/nothing/retire".into(),
            Some(reason()),
            &[Who::Provider, Who::Operator],
        ),
        (
            Method::POST,
            "/datasets/nothing/sharing".into(),
            Some(json!({"scenario": "s", "reason": "matrix"})),
            CONSENTERS,
        ),
        (
            Method::POST,
            "/datasets/nothing/destroy".into(),
            Some(reason()),
            OPERATORS,
        ),
        (
            Method::GET,
            "/datasets/residents/destruction".into(),
            None,
            ALL_BUT_DATA_USERS,
        ),
        (
            Method::GET,
            "/datasets/residents/versions/1".into(),
            None,
            ALL_BUT_DATA_USERS,
        ),
        (
            Method::POST,
            "/datasets/nothing/versions/1/objections".into(),
            Some(reason()),
            &[Who::Provider, Who::Operator],
        ),
        (
            Method::POST,
            "/datasets/nothing/versions/1/suspend".into(),
            Some(reason()),
            &[Who::Provider, Who::Operator],
        ),
        (
            Method::POST,
            "/datasets/nothing/versions/1/reinstate".into(),
            Some(reason()),
            &[Who::Provider, Who::Operator],
        ),
        (
            Method::POST,
            "/datasets/nothing/versions/1/recall".into(),
            Some(reason()),
            REVIEWERS,
        ),
        (
            Method::POST,
            "/datasets".into(),
            Some(json!({"policy": "not toml [", "csv": "a\n1\n"})),
            PROVIDERS,
        ),
        (Method::GET, "/scenarios".into(), None, EVERYONE),
        (Method::GET, format!("/scenarios/{id}"), None, EVERYONE),
        (
            Method::GET,
            format!("/scenarios/{id}/consents"),
            None,
            EVERYONE,
        ),
        (
            Method::POST,
            "/scenarios/999999/consent".into(),
            Some(json!({})),
            CONSENTERS,
        ),
        (
            Method::POST,
            "/scenarios/999999/answer".into(),
            Some(json!({"party": "provider", "answer": "matrix"})),
            DEVELOPERS,
        ),
        (Method::GET, "/scenario-types".into(), None, EVERYONE),
        (
            Method::POST,
            "/scenario-types".into(),
            Some(json!({"name": "Not A Name", "scenario": "none", "description": "matrix"})),
            OPERATORS,
        ),
        (
            Method::POST,
            "/scenarios".into(),
            Some(json!({"spec": "not toml ["})),
            DEVELOPERS,
        ),
        (
            Method::POST,
            "/scenarios/999999/approve".into(),
            Some(json!({})),
            OPERATORS,
        ),
        (
            Method::POST,
            "/scenarios/999999/reject".into(),
            Some(reason()),
            OPERATORS,
        ),
        (
            Method::GET,
            format!("/scenarios/{id}/budget"),
            None,
            NOT_PROVIDERS,
        ),
        (
            Method::POST,
            "/jobs".into(),
            Some(json!({"scenario": id.to_string(), "module": "AAAA"})),
            DEVELOPERS,
        ),
        (Method::GET, "/jobs/job-none".into(), None, NOT_PROVIDERS),
        (Method::GET, "/jobs".into(), None, NOT_PROVIDERS),
        (
            Method::GET,
            "/jobs/job-none/logs".into(),
            None,
            NOT_PROVIDERS,
        ),
        (
            Method::GET,
            "/jobs/job-none/thread".into(),
            None,
            NOT_PROVIDERS,
        ),
        (
            Method::POST,
            "/jobs/job-none/comments".into(),
            Some(json!({"body": "matrix"})),
            NOT_PROVIDERS,
        ),
        (
            Method::POST,
            "/jobs/job-none/review".into(),
            Some(json!({"decision": "approve"})),
            REVIEWERS,
        ),
        (
            Method::POST,
            "/jobs/job-none/cancel".into(),
            Some(reason()),
            NOT_PROVIDERS,
        ),
        (
            Method::POST,
            "/modules".into(),
            Some(json!({"module": "AAAA"})),
            DEVELOPERS,
        ),
        (
            Method::POST,
            "/scenarios/999999/suspend".into(),
            Some(reason()),
            OPERATORS,
        ),
        (
            Method::POST,
            "/scenarios/999999/reinstate".into(),
            Some(reason()),
            OPERATORS,
        ),
        (
            Method::POST,
            "/scenarios/999999/revoke".into(),
            Some(reason()),
            OPERATORS,
        ),
        (Method::GET, "/usage".into(), None, REVIEWERS),
        (Method::GET, "/usage/settings".into(), None, REVIEWERS),
        (
            Method::PUT,
            "/usage/settings".into(),
            Some(json!({"max_refusals": 20, "idle_days": 0})),
            OPERATORS,
        ),
        (Method::GET, "/outputs".into(), None, REVIEWERS),
        (Method::GET, "/outputs/out-none".into(), None, REVIEWERS),
        (
            Method::GET,
            "/outputs/out-none/file".into(),
            None,
            REVIEWERS,
        ),
        (
            Method::POST,
            "/outputs/out-none/approve".into(),
            Some(json!({})),
            REVIEWERS,
        ),
        (
            Method::POST,
            "/outputs/out-none/reject".into(),
            Some(reason()),
            REVIEWERS,
        ),
        (
            Method::POST,
            "/outputs/out-none/request-changes".into(),
            Some(reason()),
            REVIEWERS,
        ),
        (Method::GET, "/products".into(), None, ALL),
        (Method::GET, "/products/prod-none".into(), None, ALL),
        (
            Method::GET,
            "/products/prod-none/files/a.md".into(),
            None,
            ALL,
        ),
        (
            Method::POST,
            "/products/prod-none/withdraw".into(),
            Some(reason()),
            REVIEWERS,
        ),
        (
            Method::POST,
            "/products/prod-none/grants".into(),
            Some(json!({"grantee": "nobody"})),
            OPERATORS,
        ),
        (
            Method::GET,
            "/products/prod-none/holders".into(),
            None,
            REVIEWERS,
        ),
        (
            Method::GET,
            "/organisations".into(),
            None,
            PRINCIPAL_READERS,
        ),
        (
            Method::POST,
            "/organisations".into(),
            Some(
                json!({"credit_code": "not-a-code", "name": "n", "security_officer": "o",
                        "security_contact": "c", "qualified_until": "2030-01-01"}),
            ),
            IDENTITY_ADMINS,
        ),
        (
            Method::GET,
            "/organisations/export?format=csv".into(),
            None,
            PRINCIPAL_READERS,
        ),
        (
            Method::GET,
            "/organisations/91110000100003208K".into(),
            None,
            PRINCIPAL_READERS,
        ),
        (
            Method::PUT,
            "/organisations/91110000100003208K".into(),
            Some(
                json!({"name": "n", "security_officer": "o", "security_contact": "c",
                        "qualified_until": "2030-01-01", "reason": "matrix"}),
            ),
            IDENTITY_ADMINS,
        ),
        (
            Method::PUT,
            "/principals/nobody/organisation".into(),
            Some(json!({"organisation": null})),
            IDENTITY_ADMINS,
        ),
        (
            Method::GET,
            "/reports/compliance?from=2026-01-01&to=2025-01-01".into(),
            None,
            REVIEWERS,
        ),
        (Method::GET, "/incidents".into(), None, REVIEWERS),
        (
            Method::POST,
            "/incidents".into(),
            Some(json!({"grade": "minor", "title": "t", "description": "d"})),
            REVIEWERS,
        ),
        (Method::GET, "/incidents/999999".into(), None, REVIEWERS),
        (
            Method::POST,
            "/incidents/999999/entries".into(),
            Some(json!({"kind": "action", "text": "matrix"})),
            REVIEWERS,
        ),
        (
            Method::POST,
            "/incidents/999999/close".into(),
            Some(json!({"summary": "matrix"})),
            REVIEWERS,
        ),
        (Method::GET, "/orders".into(), None, NOT_PROVIDERS),
        (
            Method::POST,
            "/orders".into(),
            Some(
                json!({"target_kind": "nothing", "target": "x", "requirement": "r", "deadline": "2999-01-01"}),
            ),
            &[Who::Supervisor],
        ),
        (
            Method::POST,
            "/orders/999999/answer".into(),
            Some(json!({"answer": "matrix"})),
            DEVELOPERS,
        ),
        (
            Method::POST,
            "/orders/999999/close".into(),
            None,
            &[Who::Supervisor],
        ),
        (Method::GET, "/audit/events".into(), None, REVIEWERS),
        (Method::GET, "/audit/verify".into(), None, REVIEWERS),
        (Method::GET, "/audit/proof/1?size=1".into(), None, REVIEWERS),
        (
            Method::POST,
            "/stops".into(),
            Some(json!({"scope": "nothing", "reason": "matrix"})),
            REVIEWERS,
        ),
        (Method::GET, "/stops?all=true".into(), None, REVIEWERS),
        (
            Method::POST,
            "/stops/999999/lift".into(),
            Some(reason()),
            REVIEWERS,
        ),
        (Method::GET, "/principals".into(), None, PRINCIPAL_READERS),
        (
            Method::POST,
            "/principals".into(),
            Some(json!({"name": OPERATOR, "role": "developer"})),
            IDENTITY_ADMINS,
        ),
        (
            Method::POST,
            "/principals/nobody/tokens".into(),
            None,
            IDENTITY_ADMINS,
        ),
        (Method::GET, "/tokens".into(), None, ALL),
        (
            Method::POST,
            "/tokens/0000000000000000/revoke".into(),
            Some(reason()),
            ALL,
        ),
        (
            Method::POST,
            "/principals/nobody/qualify".into(),
            Some(reason()),
            IDENTITY_ADMINS,
        ),
        (
            Method::POST,
            "/principals/nobody/suspend".into(),
            Some(reason()),
            IDENTITY_ADMINS,
        ),
        (
            Method::POST,
            "/principals/nobody/revoke".into(),
            Some(reason()),
            IDENTITY_ADMINS,
        ),
    ];
    // The table covers the OpenAPI document's operations exactly, and the document names
    // the same roles as the table.
    let mut covered = HashMap::new();
    for (method, path, _, allowed) in &table {
        let mut matching: Vec<&server::openapi::Endpoint> = server::openapi::ENDPOINTS
            .iter()
            .filter(|e| {
                e.method == method.as_str().to_ascii_lowercase() && template_matches(e.path, path)
            })
            .collect();
        // As the router does: a literal segment wins over a parameter.
        let literal = |e: &server::openapi::Endpoint| {
            e.path.matches('/').count() - e.path.matches('{').count()
        };
        if let Some(most) = matching.iter().map(|e| literal(e)).max() {
            matching.retain(|e| literal(e) == most);
        }
        assert_eq!(matching.len(), 1, "{method} {path} matches {matching:?}");
        let e = matching[0];
        *covered.entry((e.method, e.path)).or_insert(0) += 1;
        let documented: Vec<Who> = [
            Who::Provider,
            Who::Operator,
            Who::Developer,
            Who::Supervisor,
            Who::DataUser,
            Who::Admin,
        ]
        .into_iter()
        .zip([
            Role::Provider,
            Role::Operator,
            Role::Developer,
            Role::Supervisor,
            Role::DataUser,
            Role::Admin,
        ])
        .filter(|(_, r)| sandbox_core::authz::allows(*r, e.action))
        .map(|(w, _)| w)
        .collect();
        assert_eq!(&documented, allowed, "roles of {method} {path}");
    }
    for e in server::openapi::ENDPOINTS {
        assert_eq!(
            covered.get(&(e.method, e.path)),
            Some(&1),
            "{} {} in the matrix once",
            e.method,
            e.path
        );
    }
    let callers = [
        Who::Provider,
        Who::Operator,
        Who::Developer,
        Who::Supervisor,
        Who::DataUser,
        Who::Admin,
        Who::NoToken,
        Who::BadToken,
        Who::RevokedToken,
        Who::Suspended,
    ];
    let mut failures = Vec::new();
    for (method, path, body, allowed) in &table {
        for who in callers {
            let (token, actor) = match who {
                Who::Provider => (api.token(PROVIDER), PROVIDER),
                Who::Operator => (api.token(OPERATOR), OPERATOR),
                Who::Developer => (api.token(DEVELOPER), DEVELOPER),
                Who::Supervisor => (api.token(SUPERVISOR), SUPERVISOR),
                Who::Admin => (api.token(ADMIN), ADMIN),
                Who::DataUser => (api.token(DATA_USER), DATA_USER),
                Who::NoToken => (None, "anonymous"),
                Who::BadToken => (Some(bad.as_str()), "anonymous"),
                Who::RevokedToken => (Some(revoked.token.as_str()), "anonymous"),
                Who::Suspended => (api.token(DEVELOPER2), DEVELOPER2),
            };
            let full = format!("/api/v1{path}");
            let subject = format!("api:{method} {}", full.split('?').next().unwrap_or(&full));
            let before = api.refusals(actor, &subject);
            let (status, response) = api.call(method.clone(), &full, token, body.clone());
            let after = api.refusals(actor, &subject);
            let denied = status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN;
            let expected = match who {
                Who::NoToken | Who::BadToken | Who::RevokedToken => Some(StatusCode::UNAUTHORIZED),
                Who::Suspended => Some(StatusCode::FORBIDDEN),
                _ if allowed.contains(&who) => None,
                _ => Some(StatusCode::FORBIDDEN),
            };
            let ok = match expected {
                Some(code) => status == code && after == before + 1,
                None => !denied && after == before,
            };
            if !ok {
                failures.push(format!(
                    "{method} {path} as {who:?}: {status} {response} (refusals {before} -> {after}, expected {expected:?})"
                ));
            }
            if status.is_server_error() {
                failures.push(format!("{method} {path} as {who:?}: {status} {response}"));
            }
            // Every answer, refusal or not, is JSON with a stable error code when it fails.
            if status.is_client_error() && response.get("error").is_none() {
                failures.push(format!(
                    "{method} {path} as {who:?}: no error code in {response}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The refusals are part of a log that still verifies.
    sandbox_runtime::audit::verify_custodian(&api.f.domain).unwrap();
}

/// Whether a concrete path fits a template with `{name}` segments.
fn template_matches(template: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or(path);
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && t.ends_with('}')) || t == p)
}

#[test]
fn request_bodies_are_bounded() {
    let api = Api::new();
    let huge = "A".repeat(server::MAX_BODY_BYTES + 1);
    let (status, body) = api.post(
        DEVELOPER,
        "/api/v1/jobs",
        json!({"scenario": "income-test", "module": huge}),
    );
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body["error"].is_string());
}

#[test]
fn an_admin_bootstraps_a_domain_and_administers_identities_only() {
    let dir = tempfile::tempdir().unwrap();
    let domain = sandbox_tests::init_domain(&dir.path().join("d"));
    // The first principal may be an admin, never a developer.
    assert!(matches!(
        identity::add(&domain, None, "dev", Role::Developer),
        Err(Error::Forbidden(_))
    ));
    identity::add(&domain, None, "root", Role::Admin).unwrap();
    for (name, role) in [
        ("ops", Role::Operator),
        ("dev", Role::Developer),
        ("prov", Role::Provider),
    ] {
        identity::add(&domain, Some("root"), name, role).unwrap();
    }
    let issued = tokens::issue(&domain, "root", "ops").unwrap();
    assert_eq!(issued.principal, "ops");
    // The last one who administers identities stays; another admin can go.
    identity::add(&domain, Some("root"), "root2", Role::Admin).unwrap();
    identity::set_status(&domain, "root", "root2", identity::Status::Revoked, "left").unwrap();
    identity::set_status(
        &domain,
        "root",
        "ops",
        identity::Status::Suspended,
        "review",
    )
    .unwrap();
    assert!(matches!(
        identity::set_status(&domain, "ops", "root", identity::Status::Suspended, "x"),
        Err(Error::Forbidden(_))
    ));
    identity::set_status(&domain, "root", "ops", identity::Status::Active, "cleared").unwrap();
    // An admin decides nothing else.
    let spec = sandbox_tests::scenario_text("admin-test", 1.0, 1.0);
    let csv = dir.path().join("r.csv");
    std::fs::write(&csv, sandbox_synth::residents_csv(50, 1)).unwrap();
    sandbox_runtime::catalog::add(&domain, "prov", &csv, sandbox_cli::demo::RESIDENTS_POLICY)
        .unwrap();
    let s = sandbox_runtime::scenarios::apply(&domain, "dev", &spec).unwrap();
    assert!(matches!(
        sandbox_runtime::scenarios::decide(&domain, "root", &s.id.to_string(), true, None),
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        sandbox_runtime::audit::log(&domain, "root", 1, 1),
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        sandbox_runtime::stops::stop(&domain, "root", sandbox_runtime::stops::Scope::Domain, "x"),
        Err(Error::Forbidden(_))
    ));
    sandbox_runtime::audit::verify_custodian(&domain).unwrap();
}

#[test]
fn anonymous_refusals_beyond_the_limit_are_answered_429_and_recorded_as_a_count() {
    let api = Api::with(
        Fixture::new(),
        server::Config {
            anonymous_refusals_per_minute: 3,
            ..Default::default()
        },
    );
    let bad = format!("sbx_{}_{}", "1".repeat(16), "2".repeat(64));
    let statuses: Vec<u16> = (0..5)
        .map(|_| {
            api.call(Method::GET, "/api/v1/whoami", Some(&bad), None)
                .0
                .as_u16()
        })
        .collect();
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
    assert_eq!(api.refusals("anonymous", "api:GET /api/v1/whoami"), 3);
    // Principals are not limited: each of their refusals is recorded.
    for _ in 0..5 {
        assert_eq!(
            api.get(DEVELOPER, "/api/v1/outputs").0,
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(api.refusals(DEVELOPER, "api:GET /api/v1/outputs"), 5);
    // A verified token was cached; a wrong secret under its id still fails.
    let real = api.token(DEVELOPER).unwrap().to_string();
    let (id, _) = tokens::parse(&real).unwrap();
    let forged = format!("sbx_{id}_{}", "3".repeat(64));
    assert_eq!(
        api.call(Method::GET, "/api/v1/whoami", Some(&forged), None)
            .0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The held-back refusals are recorded as one count.
    api.rt.block_on(api.state.record_limited_refusals(true));
    let details: String = sandbox_tests::raw(&api.f.domain)
        .query_row(
            "SELECT details FROM audit_events WHERE action = 'api.refusals_limited' AND subject = 'client:local'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let details: Value = serde_json::from_str(&details).unwrap();
    assert_eq!(details["refused"], 3);
    sandbox_runtime::audit::verify_custodian(&api.f.domain).unwrap();
}

#[test]
fn a_cached_token_with_a_wrong_secret_is_refused() {
    let api = Api::new();
    let real = api.token(DEVELOPER).unwrap().to_string();
    assert_eq!(api.get(DEVELOPER, "/api/v1/whoami").0, StatusCode::OK);
    let (id, _) = tokens::parse(&real).unwrap();
    let forged = format!("sbx_{id}_{}", "3".repeat(64));
    assert_eq!(
        api.call(Method::GET, "/api/v1/whoami", Some(&forged), None)
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(api.get(DEVELOPER, "/api/v1/whoami").0, StatusCode::OK);
}

/// Principal names may be any Unicode letters (王伟, a transcribed name with its middle
/// dot), through the API as through the domain; what is not a name is refused and says
/// what a name may be.
#[test]
fn principals_may_have_names_in_any_script() {
    let api = Api::new();
    let (status, body) = api.call(
        Method::POST,
        "/api/v1/principals",
        api.token(OPERATOR),
        Some(json!({"name": "王伟", "role": "supervisor"})),
    );
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["name"], "王伟");
    let issued = tokens::issue(&api.f.domain, OPERATOR, "王伟").unwrap();
    let (status, body) = api.call(Method::GET, "/api/v1/whoami", Some(&issued.token), None);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "王伟");
    assert_eq!(body["role"], "supervisor");
    identity::add(
        &api.f.domain,
        Some(OPERATOR),
        "阿依古丽·买买提",
        Role::Developer,
    )
    .unwrap();
    identity::add(&api.f.domain, Some(OPERATOR), "zhao.li-2", Role::Developer).unwrap();
    for bad in [
        "",
        "王 伟",
        "-wang",
        "·wang",
        "wang/li",
        "tab\tname",
        &"长".repeat(65),
    ] {
        let e = identity::add(&api.f.domain, Some(OPERATOR), bad, Role::Developer).unwrap_err();
        assert!(
            matches!(&e, Error::Invalid(m) if m.contains("letters (of any script)")),
            "{bad:?}: {e:?}"
        );
    }
    let names: Vec<String> = identity::list(&api.f.domain, OPERATOR)
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert!(names.iter().any(|n| n == "阿依古丽·买买提"), "{names:?}");
}
