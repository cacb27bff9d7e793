//! The job queue, scenario standing and usage monitoring, through the API: jobs wait in a
//! durable queue, report progress and logs, can be cancelled; operators suspend, reinstate
//! and revoke scenarios; over-scope refusals suspend a scenario by themselves and idle
//! scenarios are flagged (Shuangyashan Art. 31); the OpenAPI document and the metrics.

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use base64::Engine;
use sandbox_runtime::jobs::{self, Claimed, Submission};
use sandbox_runtime::scenarios::{self, UsageSettings};
use sandbox_runtime::wasm::JobLimits;
use sandbox_runtime::{Error, audit};
use sandbox_server as server;
use sandbox_tests::{DEVELOPER, Fixture, OPERATOR, SUPERVISOR, count, wat};
use serde_json::{Value, json};

use super::server::{Api, text_module};

/// Logs a line, then loops until something stops it.
const LOG_THEN_LOOP: &str = r#"
(module
  (import "sandbox" "log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "looping now")
  (func (export "run") (result i32)
    (drop (call $log (i32.const 2) (i32.const 0) (i32.const 11)))
    (loop $forever (br $forever))
    (i32.const 0)))
"#;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn looping() -> String {
    b64(&wat(LOG_THEN_LOOP))
}

/// Polls a job until `done` holds of it, for at most a minute.
fn poll(api: &Api, as_: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (status, job) = api.get(as_, &format!("/api/v1/jobs/{id}"));
        assert_eq!(status, StatusCode::OK, "{job}");
        if done(&job) {
            return job;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "job {id} never got there: {job}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Submits the looping module and waits until it runs; returns its id.
fn start_looping(api: &Api, scenario: &str) -> String {
    let (status, long) = api.post(
        DEVELOPER,
        "/api/v1/jobs",
        json!({"scenario": scenario, "module": looping()}),
    );
    assert_eq!(status, StatusCode::ACCEPTED, "{long}");
    let long = long["id"].as_str().unwrap().to_string();
    poll(api, DEVELOPER, &long, |j| j["status"] == "running");
    long
}

fn actions_of(api: &Api, subject: &str) -> Vec<String> {
    sandbox_tests::raw(&api.f.domain)
        .prepare("SELECT action FROM audit_events WHERE subject = ?1 ORDER BY seq")
        .unwrap()
        .query_map([subject], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn one_slot() -> server::Config {
    server::Config {
        job_slots: 1,
        ..Default::default()
    }
}

#[test]
fn jobs_wait_in_the_queue_report_progress_and_logs_and_can_be_cancelled() {
    let api = Api::with(Fixture::new(), one_slot());
    let id = api.f.scenario.id.to_string();
    // The one slot goes to a job that loops until it is cancelled.
    let (status, long) = api.post(
        DEVELOPER,
        "/api/v1/jobs",
        json!({"scenario": id, "module": looping(), "limits": {"deadline_ms": 60000}}),
    );
    assert_eq!(status, StatusCode::ACCEPTED, "{long}");
    let long = long["id"].as_str().unwrap().to_string();
    let running = poll(&api, DEVELOPER, &long, |j| {
        j["status"] == "running" && j["progress"]["fuel_used"].as_u64().unwrap_or(0) > 0
    });
    assert_eq!(
        running["progress"]["fuel_limit"],
        json!(JobLimits::default().fuel)
    );
    assert_eq!(running["progress"]["log_lines"], 1);
    let (status, logs) = api.get(DEVELOPER, &format!("/api/v1/jobs/{long}/logs"));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(logs["lines"][0]["text"], "looping now");

    // The next job waits its turn.
    let (status, queued) = api.post(
        DEVELOPER,
        "/api/v1/jobs",
        json!({"scenario": id, "module": text_module("never run")}),
    );
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(queued["status"], "queued");
    assert_eq!(queued["queue_position"], 0);
    let queued = queued["id"].as_str().unwrap().to_string();

    // Only the submitter, operators and supervisors cancel; someone else's job needs a
    // reason.
    let (status, _) = api.post(
        super::server::DEVELOPER2,
        &format!("/api/v1/jobs/{queued}/cancel"),
        json!({}),
    );
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = api.post(
        OPERATOR,
        &format!("/api/v1/jobs/{queued}/cancel"),
        json!({}),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
    // The submitter cancels the queued job: it ends at once and never starts.
    let (status, cancelled) = api.post(
        DEVELOPER,
        &format!("/api/v1/jobs/{queued}/cancel"),
        json!({}),
    );
    assert_eq!(
        (status, cancelled["status"].as_str()),
        (StatusCode::OK, Some("cancelled")),
        "{cancelled}"
    );
    assert_eq!(
        actions_of(&api, &format!("job:{queued}")),
        ["job.queued", "job.cancelled"]
    );

    // A supervisor cancels the running one: it is interrupted within a tick.
    let (status, asked) = api.post(
        SUPERVISOR,
        &format!("/api/v1/jobs/{long}/cancel"),
        json!({"reason": "runs for too long"}),
    );
    assert_eq!(status, StatusCode::OK, "{asked}");
    assert_eq!(asked["cancel_requested_by"], SUPERVISOR);
    let ended = poll(&api, DEVELOPER, &long, |j| j["status"] != "running");
    assert_eq!(ended["status"], "cancelled", "{ended}");
    assert_eq!(ended["error_kind"], "cancelled");
    assert_eq!(ended["outputs"], json!([]));
    assert!(!api.f.domain.layout().staging().join(&long).exists());
    assert_eq!(
        actions_of(&api, &format!("job:{long}")),
        [
            "job.queued",
            "job.started",
            "job.cancel_requested",
            "job.cancelled"
        ]
    );
    // The logs of an ended job are kept.
    let (_, logs) = api.get(OPERATOR, &format!("/api/v1/jobs/{long}/logs"));
    assert_eq!(logs["lines"][0]["text"], "looping now");
    let (status, _) = api.post(DEVELOPER, &format!("/api/v1/jobs/{long}/cancel"), json!({}));
    assert_eq!(status, StatusCode::CONFLICT);

    // The slot is free again: the next job runs.
    let (status, done) = api.post(
        DEVELOPER,
        "/api/v1/jobs?wait=60",
        json!({"scenario": id, "module": text_module("Income is stable.")}),
    );
    assert_eq!(
        (status, done["status"].as_str()),
        (StatusCode::CREATED, Some("succeeded")),
        "{done}"
    );
    let (status, list) = api.get(DEVELOPER, "/api/v1/jobs");
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [done["id"].as_str().unwrap(), &queued, &long]);
    let (_, cancelled) = api.get(OPERATOR, "/api/v1/jobs?status=cancelled");
    assert_eq!(cancelled.as_array().unwrap().len(), 2);
    assert_eq!(
        api.get(OPERATOR, "/api/v1/jobs?status=odd").0,
        StatusCode::BAD_REQUEST
    );
    // Another developer sees none of them.
    let (_, theirs) = api.get(super::server::DEVELOPER2, "/api/v1/jobs");
    assert_eq!(theirs, json!([]));
    audit::verify_custodian(&api.f.domain).unwrap();
}

#[test]
fn a_developer_with_too_many_waiting_jobs_is_refused_until_one_starts() {
    let api = Api::with(
        Fixture::new(),
        server::Config {
            job_slots: 1,
            max_queued_per_developer: 1,
            ..Default::default()
        },
    );
    let id = api.f.scenario.id.to_string();
    let long = start_looping(&api, &id);
    let (status, _) = api.post(
        DEVELOPER,
        "/api/v1/jobs",
        json!({"scenario": id, "module": text_module("second")}),
    );
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, body) = api.post(
        DEVELOPER,
        "/api/v1/jobs",
        json!({"scenario": id, "module": text_module("third")}),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("busy")),
        "{body}"
    );
    api.post(DEVELOPER, &format!("/api/v1/jobs/{long}/cancel"), json!({}));
    poll(&api, DEVELOPER, &long, |j| j["status"] == "cancelled");
}

#[test]
fn queued_jobs_survive_a_restart_and_jobs_of_a_dead_runner_are_failed() {
    let f = Fixture::new();
    let submission = |text: &str| {
        jobs::enqueue(
            &f.domain,
            DEVELOPER,
            &Submission {
                scenario: &f.scenario.spec.name,
                module: &sandbox_tests::text_module(text),
                params_json: "{}",
                limits: sandbox_core::job::LimitRequest::default(),
                resubmits: None,
            },
        )
        .unwrap()
    };
    // A job claimed by a process that has since died, and one still queued.
    let orphan = submission("orphan");
    let Claimed::Ready(_) = jobs::claim(&f.domain, &orphan.id).unwrap() else {
        panic!("not claimed")
    };
    let conn = sandbox_tests::raw(&f.domain);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    conn.execute(
        "UPDATE jobs SET runner = ?2 WHERE id = ?1",
        [&orphan.id, &format!("{}:4294967295", host.trim())],
    )
    .unwrap();
    let waiting = submission("waiting");
    // The server starting over the domain fails the orphan and runs the waiting job.
    let api = Api::with(f, server::Config::default());
    let ended = jobs::recover(&api.f.domain).unwrap();
    assert_eq!(ended, std::slice::from_ref(&orphan.id));
    let orphan = poll(&api, DEVELOPER, &orphan.id, |j| j["status"] != "running");
    assert_eq!(
        (orphan["status"].as_str(), orphan["error_kind"].as_str()),
        (Some("failed"), Some("interrupted"))
    );
    let waiting = poll(&api, DEVELOPER, &waiting.id, |j| j["status"] == "succeeded");
    assert_eq!(waiting["outputs"].as_array().unwrap().len(), 1);
    // A job cannot be claimed twice.
    assert!(matches!(
        jobs::claim(&api.f.domain, waiting["id"].as_str().unwrap()),
        Err(Error::Conflict(_))
    ));
}

#[test]
fn modules_are_uploaded_once_and_named_by_their_hash() {
    let api = Api::new();
    let id = api.f.scenario.id.to_string();
    let module = sandbox_tests::text_module("Named by hash.");
    let (status, m) = api.post(
        DEVELOPER,
        "/api/v1/modules",
        json!({"module": b64(&module)}),
    );
    assert_eq!(status, StatusCode::CREATED, "{m}");
    let sha = m["sha256"].as_str().unwrap().to_string();
    assert_eq!(sha, sandbox_runtime::sha256_hex(&module));
    let (status, job) = api.post(
        DEVELOPER,
        "/api/v1/jobs?wait=60",
        json!({"scenario": id, "module_sha256": sha}),
    );
    assert_eq!(
        (status, job["status"].as_str()),
        (StatusCode::CREATED, Some("succeeded")),
        "{job}"
    );
    assert_eq!(job["module_sha256"], sha.as_str());
    let (status, _) = api.post(
        DEVELOPER,
        "/api/v1/jobs",
        json!({"scenario": id, "module_sha256": "0".repeat(64)}),
    );
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.post(
        DEVELOPER,
        "/api/v1/jobs",
        json!({"scenario": id, "module_sha256": "../../sandbox.db"}),
    );
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.post(
        DEVELOPER,
        "/api/v1/jobs",
        json!({"scenario": id, "module_sha256": sha, "module": b64(&module)}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A module that does not validate is refused, and the refusal recorded.
    let wasi = wat(
        r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))) (func (export "run") (result i32) (i32.const 0)))"#,
    );
    let (status, body) = api.post(DEVELOPER, "/api/v1/modules", json!({"module": b64(&wasi)}));
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("module")),
        "{body}"
    );
    assert_eq!(
        actions_of(
            &api,
            &format!("module:{}", sandbox_runtime::sha256_hex(&wasi))
        ),
        ["module.refused"]
    );
}

#[test]
fn operators_suspend_reinstate_and_revoke_scenarios() {
    let api = Api::new();
    let id = api.f.scenario.id;
    let path = |what: &str| format!("/api/v1/scenarios/{id}/{what}");
    assert_eq!(
        api.post(OPERATOR, &path("suspend"), json!({})).0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api.post(DEVELOPER, &path("suspend"), json!({"reason": "x"}))
            .0,
        StatusCode::FORBIDDEN
    );
    // A running job of the scenario is interrupted by its suspension.
    let long = start_looping(&api, &id.to_string());
    let (status, s) = api.post(
        OPERATOR,
        &path("suspend"),
        json!({"reason": "purpose unclear"}),
    );
    assert_eq!(
        (status, s["status"].as_str()),
        (StatusCode::OK, Some("suspended")),
        "{s}"
    );
    let ended = poll(&api, DEVELOPER, &long, |j| j["status"] != "running");
    assert_eq!(
        (ended["status"].as_str(), ended["error_kind"].as_str()),
        (Some("failed"), Some("stopped"))
    );
    let submit = || {
        api.post(
            DEVELOPER,
            "/api/v1/jobs?wait=60",
            json!({"scenario": id.to_string(), "module": text_module("hello")}),
        )
    };
    assert_eq!(submit().0, StatusCode::FORBIDDEN);
    assert!(matches!(
        api.f.ask("SELECT COUNT(*) FROM residents"),
        Err(Error::Refused(_))
    ));
    let (status, s) = api.post(
        OPERATOR,
        &path("reinstate"),
        json!({"reason": "purpose restated"}),
    );
    assert_eq!(
        (status, s["status"].as_str()),
        (StatusCode::OK, Some("approved"))
    );
    assert_eq!(submit().1["status"], "succeeded");
    let (status, s) = api.post(
        OPERATOR,
        &path("revoke"),
        json!({"reason": "agreement ended"}),
    );
    assert_eq!(
        (status, s["status"].as_str()),
        (StatusCode::OK, Some("revoked"))
    );
    for what in ["reinstate", "suspend", "revoke"] {
        assert_eq!(
            api.post(OPERATOR, &path(what), json!({"reason": "again"}))
                .0,
            StatusCode::CONFLICT,
            "{what}"
        );
    }
    // Revocation is final even around the API.
    let conn = sandbox_tests::raw(&api.f.domain);
    assert!(
        conn.execute(
            "UPDATE scenarios SET status = 'approved' WHERE id = ?1",
            [id]
        )
        .is_err()
    );
    assert!(
        conn.execute("DELETE FROM scenarios WHERE id = ?1", [id])
            .is_err()
    );
    assert_eq!(
        actions_of(&api, &format!("scenario:{id}"))
            .into_iter()
            .filter(|a| a.starts_with("scenario."))
            .collect::<Vec<_>>(),
        [
            "scenario.applied",
            "scenario.consented",
            "scenario.consented",
            "scenario.approved",
            "scenario.usable",
            "scenario.suspended",
            "scenario.reinstated",
            "scenario.revoked"
        ]
    );
}

#[test]
fn over_scope_refusals_suspend_a_scenario_by_themselves_sys_art_31() {
    let f = Fixture::new();
    scenarios::set_usage_settings(
        &f.domain,
        OPERATOR,
        UsageSettings {
            max_refusals: 3,
            idle_days: 90,
        },
    )
    .unwrap();
    // Mistakes do not count; reaching for raw rows or for columns outside the scenario
    // does.
    for sql in ["SELEC 1", "SELECT COUNT(* FROM residents"] {
        assert!(f.ask(sql).is_err());
    }
    for sql in [
        "SELECT citizen_id FROM residents",
        "SELECT income FROM residents",
    ] {
        assert!(matches!(f.ask(sql), Err(Error::Refused(_))));
    }
    let today = chrono::Utc::now().date_naive();
    let u = &scenarios::usage(&f.domain, sandbox_tests::OPERATOR, today).unwrap()[0];
    assert_eq!(
        (u.counted_refusals, u.flags.clone()),
        (2, vec!["expires_soon", "refusals"])
    );
    assert!(matches!(
        f.ask("SELECT phone FROM residents"),
        Err(Error::Refused(_))
    ));
    // The third suspended the scenario, recorded as the system's act.
    let conn = sandbox_tests::raw(&f.domain);
    let r = sandbox_store::scenarios::get(&f.domain.conn().unwrap(), f.scenario.id).unwrap();
    assert_eq!(r.status, scenarios::Status::Suspended);
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM audit_events WHERE action = 'scenario.suspended' AND actor = 'system'"
        ),
        1
    );
    match f.ask("SELECT COUNT(*) FROM residents") {
        Err(Error::Refused(r)) => assert_eq!(r.rule.as_str(), "scenario"),
        other => panic!("{other:?}"),
    }
    let u = &scenarios::usage(&f.domain, sandbox_tests::OPERATOR, today).unwrap()[0];
    assert_eq!(u.flags, ["suspended"]);
    assert!(
        u.status_reason
            .as_deref()
            .unwrap()
            .contains("Shuangyashan Art. 31")
    );
    // Reinstated, it counts afresh.
    scenarios::change(
        &f.domain,
        OPERATOR,
        &f.scenario.id.to_string(),
        scenarios::Change::Reinstate,
        "developer rectified the module",
    )
    .unwrap();
    let u = &scenarios::usage(&f.domain, sandbox_tests::OPERATOR, today).unwrap()[0];
    assert_eq!(u.counted_refusals, 0);
    assert!(f.ask("SELECT COUNT(*) FROM residents").is_ok());
}

#[test]
fn a_scenario_without_jobs_for_ninety_days_is_flagged_once() {
    let f = Fixture::new();
    let conn = sandbox_tests::raw(&f.domain);
    let today = chrono::Utc::now().date_naive();
    assert_eq!(
        scenarios::flag_idle(&f.domain, today).unwrap(),
        Vec::<i64>::new()
    );
    let long_ago = (chrono::Utc::now() - chrono::Duration::days(100)).to_rfc3339();
    conn.execute(
        "UPDATE scenarios SET decided_at = ?2 WHERE id = ?1",
        rusqlite::params![f.scenario.id, long_ago],
    )
    .unwrap();
    assert_eq!(
        scenarios::flag_idle(&f.domain, today).unwrap(),
        [f.scenario.id]
    );
    assert_eq!(
        scenarios::flag_idle(&f.domain, today).unwrap(),
        Vec::<i64>::new()
    );
    let u = &scenarios::usage(&f.domain, sandbox_tests::OPERATOR, today).unwrap()[0];
    assert!(u.flags.contains(&"idle"), "{:?}", u.flags);
    assert_eq!(u.idle_days, Some(100));
    // Used again, it is no longer idle.
    f.submit(
        &sandbox_tests::text_module("back"),
        "{}",
        JobLimits::default(),
    )
    .unwrap();
    let u = &scenarios::usage(&f.domain, sandbox_tests::OPERATOR, today).unwrap()[0];
    assert!(!u.flags.contains(&"idle"));
    assert_eq!(u.jobs, 1);
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM audit_events WHERE action = 'scenario.idle'"
        ),
        1
    );
}

#[test]
fn the_openapi_document_is_public_and_complete_and_metrics_are_for_reviewers() {
    let api = Api::new();
    let (status, doc) = api.call(Method::GET, "/api/v1/openapi.json", None, None);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let cancel = &doc["paths"]["/api/v1/jobs/{id}/cancel"]["post"];
    assert_eq!(
        cancel["x-sandbox-roles"],
        json!(["operator", "developer", "supervisor"])
    );
    assert!(cancel["requestBody"].is_object());
    // Every reference resolves.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 20);
    for r in all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{r}"));
        assert!(doc["components"]["schemas"][name].is_object(), "{r}");
    }
    let job = &doc["components"]["schemas"]["JobRecord"]["properties"];
    assert!(job["progress"].is_object() && job["queue_position"].is_object());

    // Metrics: reviewers only, and they count what happened.
    api.post(
        DEVELOPER,
        "/api/v1/jobs?wait=60",
        json!({"scenario": api.f.scenario.id.to_string(), "module": text_module("m")}),
    );
    let (status, body) = api.raw(Method::GET, "/metrics", api.token(OPERATOR), None);
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body).unwrap();
    for needle in [
        "sandbox_http_requests_total{method=\"POST\",route=\"/api/v1/jobs\",status=\"201\"} 1",
        "sandbox_jobs{status=\"succeeded\"} 1",
        "sandbox_jobs_ended_total{status=\"succeeded\"} 1",
        &format!(
            "sandbox_scenario_epsilon_total{{scenario=\"{}\"}} 3",
            api.f.scenario.id
        ),
        "# EOF",
    ] {
        assert!(text.contains(needle), "{needle} not in\n{text}");
    }
    assert_eq!(
        api.raw(Method::GET, "/metrics", api.token(DEVELOPER), None)
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(api.refusals(DEVELOPER, "api:GET /metrics"), 1);
    assert_eq!(
        api.raw(Method::GET, "/metrics", None, None).0,
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn an_emergency_stop_ends_queued_jobs_without_starting_them() {
    let api = Api::with(Fixture::new(), one_slot());
    let id = api.f.scenario.id.to_string();
    let long = start_looping(&api, &id);
    let (_, waiting) = api.post(
        DEVELOPER,
        "/api/v1/jobs",
        json!({"scenario": id, "module": text_module("waiting")}),
    );
    let waiting = waiting["id"].as_str().unwrap().to_string();
    let (status, _) = api.post(
        SUPERVISOR,
        "/api/v1/stops",
        json!({"scope": "scenario", "target": id, "reason": "incident"}),
    );
    assert_eq!(status, StatusCode::CREATED);
    // The running job is interrupted; the queued one never starts.
    for job in [&long, &waiting] {
        let ended = poll(&api, DEVELOPER, job, |j| {
            !["queued", "running"].contains(&j["status"].as_str().unwrap_or(""))
        });
        assert_eq!(
            (ended["status"].as_str(), ended["error_kind"].as_str()),
            (Some("failed"), Some("stopped")),
            "{ended}"
        );
    }
    assert_eq!(
        actions_of(&api, &format!("job:{waiting}")),
        ["job.queued", "job.failed"]
    );
    // New jobs are refused while the stop is in force.
    let (status, _) = api.post(
        DEVELOPER,
        "/api/v1/jobs",
        json!({"scenario": id, "module": text_module("refused")}),
    );
    assert_eq!(status, StatusCode::LOCKED);
}

#[test]
fn a_job_whose_end_cannot_be_recorded_is_failed_not_left_running() {
    let f = Fixture::new();
    let job = jobs::enqueue(
        &f.domain,
        DEVELOPER,
        &Submission {
            scenario: &f.scenario.spec.name,
            module: &sandbox_tests::text_module("lost"),
            params_json: "{}",
            limits: sandbox_core::job::LimitRequest::default(),
            resubmits: None,
        },
    )
    .unwrap();
    let Claimed::Ready(_) = jobs::claim(&f.domain, &job.id).unwrap() else {
        panic!("not claimed")
    };
    jobs::abandon(&f.domain, &job.id, "the store went away").unwrap();
    // Once: an ended job is left as it is.
    jobs::abandon(&f.domain, &job.id, "again").unwrap();
    let conn = sandbox_tests::raw(&f.domain);
    let j = jobs::job(&f.domain, sandbox_tests::OPERATOR, &job.id).unwrap();
    assert_eq!(
        (
            j.status.as_str(),
            j.error_kind.as_deref(),
            j.error.as_deref()
        ),
        ("failed", Some("internal"), Some("the store went away"))
    );
    assert_eq!(
        count(
            &conn,
            &format!(
                "SELECT COUNT(*) FROM audit_events WHERE subject = 'job:{}' AND action = 'job.failed'",
                job.id
            )
        ),
        1
    );
}

#[test]
fn leases_fail_jobs_whose_runner_is_gone_on_any_host_and_reach_the_runner_that_holds_one() {
    let lease = Duration::from_secs(1);
    let api = Api::with(
        Fixture::new(),
        server::Config {
            job_slots: 2,
            job_lease: lease,
            ..Default::default()
        },
    );
    let domain = api.f.domain.clone().with_job_lease(lease);
    let id = api.f.scenario.id.to_string();
    let conn = sandbox_tests::raw(&domain);
    let enqueue = |text: &str| {
        jobs::enqueue(
            &domain,
            DEVELOPER,
            &Submission {
                scenario: &api.f.scenario.spec.name,
                module: &sandbox_tests::text_module(text),
                params_json: "{}",
                limits: sandbox_core::job::LimitRequest::default(),
                resubmits: None,
            },
        )
        .unwrap()
        .id
    };
    // Two jobs claimed by runners on another host (whose processes this host cannot
    // see): one whose lease lapsed, one whose lease runs on.
    let mut claimed = Vec::new();
    for (text, until) in [
        ("gone", "2000-01-01T00:00:00.000000Z"),
        ("alive", "2999-01-01T00:00:00.000000Z"),
    ] {
        let job = enqueue(text);
        let Claimed::Ready(_) = jobs::claim(&domain, &job).unwrap() else {
            panic!("not claimed")
        };
        conn.execute(
            "UPDATE jobs SET runner = 'another-host:7', lease_until = ?2 WHERE id = ?1",
            [&job, until],
        )
        .unwrap();
        claimed.push(job);
    }
    let ended = jobs::recover(&domain).unwrap();
    assert_eq!(ended, std::slice::from_ref(&claimed[0]));
    let gone = poll(&api, DEVELOPER, &claimed[0], |j| j["status"] != "running");
    assert_eq!(
        (gone["status"].as_str(), gone["error_kind"].as_str()),
        (Some("failed"), Some("interrupted"))
    );
    assert!(
        gone["error"].as_str().unwrap().contains("lease lapsed"),
        "{gone}"
    );
    let (_, alive) = api.get(DEVELOPER, &format!("/api/v1/jobs/{}", claimed[1]));
    assert_eq!(alive["status"], "running");

    // A job this server runs keeps its lease for as long as it runs: after three leases
    // another server's sweep finds nothing to fail.
    let looping = start_looping(&api, &id);
    std::thread::sleep(3 * lease);
    assert!(!jobs::recover(&domain).unwrap().contains(&looping));
    let (_, job) = api.get(DEVELOPER, &format!("/api/v1/jobs/{looping}"));
    assert_eq!(job["status"], "running", "{job}");
    // A cancel recorded by another server (which cannot interrupt it) reaches the runner
    // with its next renewal.
    conn.execute(
        "UPDATE jobs SET cancel_requested_by = ?2 WHERE id = ?1",
        [&looping, OPERATOR],
    )
    .unwrap();
    let job = poll(&api, DEVELOPER, &looping, |j| j["status"] != "running");
    assert_eq!(job["status"], "cancelled", "{job}");

    // A job another server failed meanwhile (its lease looked lapsed there) is no longer
    // this runner's: the runner stops it, and the end recorded there stands.
    let looping = start_looping(&api, &id);
    conn.execute(
        "UPDATE jobs SET status = 'failed', error_kind = 'interrupted', error = 'taken over'
         WHERE id = ?1",
        [&looping],
    )
    .unwrap();
    let start = Instant::now();
    while domain
        .host()
        .running(domain.layout().root())
        .contains(&looping)
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "still running here"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, job) = api.get(DEVELOPER, &format!("/api/v1/jobs/{looping}"));
    assert_eq!(
        (job["status"].as_str(), job["error"].as_str()),
        (Some("failed"), Some("taken over"))
    );
}
