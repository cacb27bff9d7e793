//! API request bodies: every endpoint that reads a body gets the fuzzer's bytes as JSON,
//! from every kind of caller. The answer is never a server error (a 500 is an internal
//! error or a handler that panicked); an error answer is the API's JSON `{error,
//! message}`. What a body may change stays within the fixture: the paths name principals
//! and a scenario kept for it, and a stop the fuzzer imposes is lifted again.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use sandbox_runtime::identity::{self, Role};
use sandbox_runtime::{Domain, catalog, scenarios, stops, tokens};
use sandbox_server::{self as server, AppState};
use tower::ServiceExt;

use crate::world::{self, DEVELOPER, OPERATOR, PROVIDER, SUPERVISOR};

const ADMIN: &str = "it-fuzz";

struct Api {
    _dir: tempfile::TempDir,
    domain: Domain,
    rt: tokio::runtime::Runtime,
    app: Router,
    /// Callers' tokens, and `None` for an anonymous call.
    tokens: Vec<Option<String>>,
    endpoints: Vec<(Method, String)>,
}

fn api() -> Arc<Api> {
    // What the bodies create (principals, datasets, scenarios, modules, jobs) stays: a
    // fresh domain every so many inputs.
    static API: world::Recycled<Api> = world::Recycled::new(build_api, 20_000);
    API.get()
}

fn build_api() -> Api {
    let (dir, domain) = world::principals_domain();
    identity::add(&domain, Some(OPERATOR), ADMIN, Role::Admin).expect("admin");
    for victim in ["victim-a", "victim-b"] {
        identity::add(&domain, Some(OPERATOR), victim, Role::Developer).expect("victim");
    }
    let victim_token = tokens::issue(&domain, OPERATOR, "victim-a").expect("token");
    let csv = dir.path().join("people.csv");
    std::fs::write(&csv, world::people_csv()).expect("people.csv");
    catalog::add(
        &domain,
        PROVIDER,
        &csv,
        &world::people_policy("people", "dp"),
    )
    .expect("people");
    let today = chrono::Utc::now().date_naive();
    let text = format!(
        r#"name = "victim"
purpose = "A scenario the fuzzer's bodies decide on"
valid_from = "{today}"
valid_until = "{}"
response_plan = "the operator's duty officer is called; the scenario's jobs are stopped; the developer notifies the data bureau within the hour"
[budget]
epsilon = 10.0
epsilon_per_query = 1.0
[[dataset]]
name = "people"
columns = ["id", "district", "age"]
[agreement]
rights_and_obligations = "the developer uses the data for the stated purpose only and keeps the products' scope"
security_requirements = "no attempt to re-identify anyone; credentials kept by the named developer only"
legal_basis = "the data bureau's authorization of the public data operation"
breach = "suspension of the scenario, revocation of the authorization and liability under the agreement"
"#,
        today + chrono::Days::new(30)
    );
    let victim = scenarios::apply(&domain, DEVELOPER, &text).expect("scenario");
    let mut tokens: Vec<Option<String>> = [OPERATOR, PROVIDER, DEVELOPER, SUPERVISOR, ADMIN]
        .iter()
        .map(|p| Some(tokens::issue(&domain, OPERATOR, p).expect("token").token))
        .collect();
    tokens.push(None);
    tokens.push(Some("sbx_forged_token".into()));
    let id = victim.id;
    let post = |path: &str| (Method::POST, format!("/api/v1{path}"));
    let endpoints = vec![
        post("/principals"),
        post("/principals/victim-a/tokens"),
        post(&format!("/tokens/{}/revoke", victim_token.id)),
        post("/principals/victim-a/qualify"),
        post("/principals/victim-a/suspend"),
        post("/principals/victim-b/revoke"),
        post("/datasets"),
        post("/scenarios"),
        post(&format!("/scenarios/{id}/approve")),
        post(&format!("/scenarios/{id}/reject")),
        post(&format!("/scenarios/{id}/suspend")),
        post(&format!("/scenarios/{id}/reinstate")),
        post(&format!("/scenarios/{id}/revoke")),
        (Method::PUT, "/api/v1/usage/settings".into()),
        post("/modules"),
        post("/jobs"),
        post("/jobs/job-unknown/cancel"),
        post("/outputs/out-unknown/approve"),
        post("/outputs/out-unknown/reject"),
        post("/outputs/out-unknown/request-changes"),
        post("/stops"),
        post("/stops/1/lift"),
        (Method::PUT, "/api/v1/whoami/language".into()),
        (Method::PUT, "/api/v1/settings".into()),
        post("/jobs/job-unknown/comments"),
        post("/jobs/job-unknown/review"),
        post("/datasets/people/retire"),
    ];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let state = AppState::new(
        domain.clone(),
        server::Config {
            anonymous_refusals_per_minute: u32::MAX,
            ..Default::default()
        },
    );
    let app = server::router(state);
    Api {
        _dir: dir,
        domain,
        rt,
        app,
        tokens,
        endpoints,
    }
}

/// The endpoints a body goes to, for the corpus and the tests.
pub fn endpoints() -> usize {
    api().endpoints.len()
}

/// The target: the first byte chooses the endpoint, the second the caller, the rest is
/// the body.
pub fn run(data: &[u8]) {
    let [which, caller, body @ ..] = data else {
        return;
    };
    let a = api();
    let (method, path) = &a.endpoints[usize::from(*which) % a.endpoints.len()];
    let token = &a.tokens[usize::from(*caller) % a.tokens.len()];
    let mut req = Request::builder()
        .method(method.clone())
        .uri(path.as_str())
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let Ok(req) = req.body(Body::from(body.to_vec())) else {
        return;
    };
    let (status, bytes) = a.rt.block_on(async {
        let resp = a
            .app
            .clone()
            .oneshot(req)
            .await
            .unwrap_or_else(|e| match e {});
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap_or_default();
        (status, bytes)
    });
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        !status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE,
        "{method} {path}: {status} {text}\nbody: {:?}",
        String::from_utf8_lossy(body)
    );
    if status.is_client_error() {
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{method} {path}: {status} not JSON ({e}): {text}"));
        assert!(
            value["error"].is_string() && value["message"].is_string(),
            "{method} {path}: {status} {text}"
        );
    }
    if path.ends_with("/stops")
        && status.is_success()
        && let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes)
        && let Some(id) = value["id"].as_i64()
    {
        // A domain stop would turn every later call away.
        let _ = stops::lift(&a.domain, SUPERVISOR, id, "lifted by the fuzz target");
    }
}
