//! Hostile and buggy modules: each ends with a typed error, the host stays healthy, and
//! nothing of the job is staged.

use sandbox_runtime::Error;
use sandbox_runtime::jobs::JobReport;
use sandbox_runtime::wasm::JobLimits;
use sandbox_tests::{Fixture, wat};

fn submit(f: &Fixture, module: &[u8], limits: JobLimits) -> sandbox_runtime::Result<JobReport> {
    f.submit(module, "{}", limits)
}

fn assert_nothing_staged(f: &Fixture, report: &JobReport) {
    assert!(report.outputs.is_empty());
    let conn = sandbox_tests::raw(&f.domain);
    let n: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM outputs WHERE job_id = ?1",
            [&report.id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 0);
    assert!(!f.domain.layout().staging().join(&report.id).exists());
    let status: String = conn
        .query_row("SELECT status FROM jobs WHERE id = ?1", [&report.id], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(status, "failed");
}

/// Emits an output, then loops forever.
const EMIT_THEN_LOOP: &str = r#"
(module
  (import "sandbox" "emit" (func $emit (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "early")
  (data (i32.const 16) "leaked before the loop")
  (func (export "run") (result i32)
    (drop (call $emit (i32.const 2) (i32.const 0) (i32.const 5) (i32.const 16) (i32.const 22)))
    (loop $forever (br $forever))
    (i32.const 0)))
"#;

#[test]
fn endless_loop_is_stopped_by_fuel_and_nothing_is_staged() {
    let f = Fixture::new();
    let limits = JobLimits {
        fuel: 5_000_000,
        ..JobLimits::default()
    };
    let report = submit(&f, &wat(EMIT_THEN_LOOP), limits).unwrap();
    assert_eq!(report.status, "failed");
    assert_eq!(
        report.error_kind.as_deref(),
        Some("limit:fuel"),
        "{report:?}"
    );
    assert_nothing_staged(&f, &report);
    // What the module did is audited, including the output it emitted but never staged.
    let details: String = sandbox_tests::raw(&f.domain)
        .query_row(
            "SELECT details FROM audit_events WHERE action = 'job.failed' AND subject = ?1",
            [format!("job:{}", report.id)],
            |r| r.get(0),
        )
        .unwrap();
    let details: serde_json::Value = serde_json::from_str(&details).unwrap();
    assert_eq!(details["error_kind"], "limit:fuel");
    assert_eq!(details["emitted_not_staged"][0]["name"], "early");
}

#[test]
fn endless_loop_is_stopped_by_the_deadline() {
    let f = Fixture::new();
    let limits = JobLimits {
        fuel: u64::MAX / 2,
        deadline_ms: 200,
        ..JobLimits::default()
    };
    let report = submit(&f, &wat(EMIT_THEN_LOOP), limits).unwrap();
    assert_eq!(
        report.error_kind.as_deref(),
        Some("limit:deadline"),
        "{report:?}"
    );
    assert_nothing_staged(&f, &report);
}

#[test]
fn wasi_and_unknown_imports_are_refused_at_submission() {
    let f = Fixture::new();
    let wasi = wat(r#"(module
        (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (func (export "run") (result i32) (i32.const 0)))"#);
    match submit(&f, &wasi, JobLimits::default()) {
        Err(Error::Guest(m)) => assert!(m.contains("wasi_snapshot_preview1"), "{m}"),
        other => panic!("{other:?}"),
    }
    let unknown = wat(r#"(module
        (import "sandbox" "read_file" (func (param i32 i32) (result i32)))
        (memory (export "memory") 1)
        (func (export "run") (result i32) (i32.const 0)))"#);
    match submit(&f, &unknown, JobLimits::default()) {
        Err(Error::Guest(m)) => assert!(m.contains("read_file"), "{m}"),
        other => panic!("{other:?}"),
    }
    match submit(&f, b"not wasm at all", JobLimits::default()) {
        Err(Error::Guest(m)) => assert!(m.contains("magic"), "{m}"),
        other => panic!("{other:?}"),
    }
    // No job row for a refused module.
    let n: i64 = sandbox_tests::raw(&f.domain)
        .query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn bad_pointers_get_errors_not_panics() {
    let f = Fixture::new();
    // Every call with an out-of-bounds pointer or negative length must return 1
    // (INVALID_ARGUMENT); the module checks and fails with 7 otherwise.
    let module = wat(r#"(module
        (import "sandbox" "query" (func $query (param i32 i32) (result i32)))
        (import "sandbox" "emit" (func $emit (param i32 i32 i32 i32 i32) (result i32)))
        (import "sandbox" "log" (func $log (param i32 i32 i32) (result i32)))
        (import "sandbox" "response_read" (func $read (param i32 i32) (result i32)))
        (import "sandbox" "response_len" (func $len (result i32)))
        (memory (export "memory") 1)
        (func $expect (param i32 i32)
          (if (i32.ne (local.get 0) (local.get 1)) (then unreachable)))
        (func (export "run") (result i32)
          (call $expect (call $query (i32.const 65530) (i32.const 100)) (i32.const 1))
          (call $expect (call $query (i32.const 0) (i32.const -1)) (i32.const 1))
          (call $expect (call $query (i32.const -8) (i32.const 16)) (i32.const 1))
          (call $expect (call $emit (i32.const 1) (i32.const 0) (i32.const 70000) (i32.const 0) (i32.const 1)) (i32.const 1))
          (call $expect (call $emit (i32.const 9) (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 1)) (i32.const 1))
          (call $expect (call $log (i32.const 2) (i32.const 65535) (i32.const 2)) (i32.const 1))
          (call $expect (call $log (i32.const 99) (i32.const 0) (i32.const 1)) (i32.const 1))
          ;; a pending error response exists; reading it with the wrong length fails
          (call $expect (call $read (i32.const 0) (i32.add (call $len) (i32.const 1))) (i32.const 1))
          ;; reading it at the end of memory fails
          (call $expect (call $read (i32.const 65535) (call $len)) (i32.const 1))
          (call $expect (call $read (i32.const 0) (call $len)) (i32.const 0))
          (call $expect (call $read (i32.const 0) (i32.const 0)) (i32.const 6))
          (i32.const 0)))"#);
    let report = submit(&f, &module, JobLimits::default()).unwrap();
    assert_eq!(report.status, "succeeded", "{report:?}");
}

#[test]
fn guest_panic_fails_the_job_with_its_message() {
    let f = Fixture::new();
    let module = wat(r#"(module
        (import "sandbox" "log" (func $log (param i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (data (i32.const 0) "panicked at src/lib.rs:3: boom")
        (func (export "run") (result i32)
          (drop (call $log (i32.const 4) (i32.const 0) (i32.const 30)))
          unreachable))"#);
    let report = submit(&f, &module, JobLimits::default()).unwrap();
    assert_eq!(report.error_kind.as_deref(), Some("guest"));
    assert!(
        report.error.as_deref().unwrap().contains("boom"),
        "{report:?}"
    );
    assert_nothing_staged(&f, &report);
}

#[test]
fn memory_bomb_is_refused_by_the_memory_limit() {
    let f = Fixture::new();
    // Grows memory until growth fails, then traps if growth ever exceeded the limit.
    let module = wat(r#"(module
        (memory (export "memory") 1)
        (func (export "run") (result i32)
          (loop $grow
            (if (i32.ne (memory.grow (i32.const 16)) (i32.const -1)) (then (br $grow))))
          ;; 1 MiB limit = 16 pages: growth must have stopped there
          (if (i32.gt_u (memory.size) (i32.const 16)) (then unreachable))
          unreachable))"#);
    let limits = JobLimits {
        memory_bytes: 1 << 20,
        ..JobLimits::default()
    };
    let report = submit(&f, &module, limits).unwrap();
    assert_eq!(report.error_kind.as_deref(), Some("guest"), "{report:?}");
    assert_nothing_staged(&f, &report);
    // The host is healthy: a good module still runs afterwards.
    let ok = wat(
        r#"(module (memory (export "memory") 1) (func (export "run") (result i32) (i32.const 0)))"#,
    );
    assert_eq!(
        submit(&f, &ok, JobLimits::default()).unwrap().status,
        "succeeded"
    );
}

#[test]
fn too_many_queries_end_the_job_with_the_limit_named() {
    let f = Fixture::with_budget(100.0, 0.01);
    let module = wat(QUERIES_UNTIL_STOPPED);
    let limits = JobLimits {
        max_queries: 3,
        ..JobLimits::default()
    };
    let report = submit(&f, &module, limits).unwrap();
    assert_eq!(
        report.error_kind.as_deref(),
        Some("limit:queries"),
        "{report:?}"
    );
    assert_eq!(report.queries, 3);
    assert_nothing_staged(&f, &report);
}

#[test]
fn the_example_module_runs_with_params() {
    let f = Fixture::new();
    let module = sandbox_tests::guest_module("income_by_district");
    let report = f
        .submit(&module, r#"{"min_age": 30}"#, JobLimits::default())
        .unwrap();
    assert_eq!(report.status, "succeeded", "{report:?}");
    let conn = sandbox_tests::raw(&f.domain);
    let sql: String = conn
        .query_row(
            "SELECT sql FROM queries WHERE job_id = ?1",
            [&report.id],
            |r| r.get(0),
        )
        .unwrap();
    assert!(sql.contains("age >= 30"), "{sql}");
    assert!(
        report
            .outputs
            .iter()
            .any(|o| o.name == "income_by_district" && o.kind == "table")
    );
}

#[test]
fn emergency_stop_interrupts_the_running_job_and_refuses_new_work_until_lifted() {
    use sandbox_runtime::stops::{self, Scope};
    let f = std::sync::Arc::new(Fixture::new());
    let runner = {
        let f = f.clone();
        std::thread::spawn(move || {
            let limits = JobLimits {
                fuel: u64::MAX / 2,
                deadline_ms: 120_000,
                ..JobLimits::default()
            };
            submit(&f, &wat(EMIT_THEN_LOOP), limits)
        })
    };
    let started = std::time::Instant::now();
    while f.domain.host().running(f.domain.layout().root()).is_empty() {
        assert!(started.elapsed().as_secs() < 60, "the job never started");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // A developer cannot stop; a supervisor can, with a reason.
    assert!(matches!(
        stops::stop(&f.domain, sandbox_tests::DEVELOPER, Scope::Domain, "no"),
        Err(Error::Forbidden(_))
    ));
    let stop = stops::stop(
        &f.domain,
        sandbox_tests::SUPERVISOR,
        Scope::Scenario(f.scenario.id),
        "suspected misuse of the residents data",
    )
    .unwrap();
    assert_eq!(stop.interrupted.len(), 1);
    let report = runner.join().unwrap().unwrap();
    assert_eq!(report.error_kind.as_deref(), Some("stopped"), "{report:?}");
    assert!(started.elapsed().as_secs() < 60);
    assert_nothing_staged(&f, &report);
    assert!(f.domain.host().running(f.domain.layout().root()).is_empty());

    // While the stop is in force, new jobs and queries of the scenario are refused.
    match submit(&f, &wat(EMIT_THEN_LOOP), JobLimits::default()) {
        Err(Error::Stopped(m)) => assert!(m.contains("suspected misuse"), "{m}"),
        other => panic!("{other:?}"),
    }
    match f.ask("SELECT COUNT(*) FROM residents") {
        Err(Error::Refused(r)) => assert!(r.message.contains("stop"), "{r:?}"),
        other => panic!("{other:?}"),
    }
    stops::lift(&f.domain, sandbox_tests::SUPERVISOR, stop.id, "reviewed").unwrap();
    f.ask("SELECT COUNT(*) FROM residents").unwrap();
    let conn = sandbox_tests::raw(&f.domain);
    for action in ["stop.imposed", "stop.lifted", "job.refused"] {
        let n = sandbox_tests::count(
            &conn,
            &format!("SELECT COUNT(*) FROM audit_events WHERE action = '{action}'"),
        );
        assert_eq!(n, 1, "{action}");
    }
    // Stops are lifted, never deleted.
    assert!(conn.execute("DELETE FROM stops", []).is_err());
}

#[test]
fn query_with_spends_the_epsilon_the_module_asks_for() {
    let f = Fixture::with_budget(100.0, 1.0);
    let module = |epsilon: &str| {
        wat(&format!(
            r#"(module
        (import "sandbox" "query_with" (func $q (param i32 i32 f64) (result i32)))
        (memory (export "memory") 1)
        (data (i32.const 0) "SELECT COUNT(*) FROM residents")
        (func (export "run") (result i32)
          (call $q (i32.const 0) (i32.const 30) (f64.const {epsilon}))))"#
        ))
    };
    let report = submit(&f, &module("0.25"), JobLimits::default()).unwrap();
    assert_eq!(report.status, "succeeded", "{report:?}");
    let b = sandbox_runtime::privacy::ledger::balance(&f.domain.conn().unwrap(), f.scenario.id)
        .unwrap();
    assert!((b.epsilon_spent - 0.25).abs() < 1e-12, "{b:?}");
    // A bad ε is an invalid argument (status 1), and nothing is charged; above the cap the
    // mediator refuses (status 2).
    for (epsilon, status) in [("-1", 1), ("nan", 1), ("inf", 1), ("5", 2)] {
        let report = submit(&f, &module(epsilon), JobLimits::default()).unwrap();
        assert_eq!(report.status, "failed");
        assert!(
            report
                .error
                .as_deref()
                .is_some_and(|e| e.contains(&format!("returned {status}"))),
            "{epsilon}: {report:?}"
        );
    }
    let b = sandbox_runtime::privacy::ledger::balance(&f.domain.conn().unwrap(), f.scenario.id)
        .unwrap();
    assert!((b.epsilon_spent - 0.25).abs() < 1e-12, "{b:?}");
}

#[test]
fn charts_are_svg_in_a_restricted_vocabulary() {
    use sandbox_runtime::wasm::check_svg;
    let ok = "<svg xmlns='http://www.w3.org/2000/svg'><g><rect x='1' y='2' width='3' height='4'><title>a: 1</title></rect></g><text x='1' y='2'>Trips</text></svg>";
    assert_eq!(check_svg(ok.as_bytes()).unwrap().trim(), "a: 1\nTrips");
    for (bad, why) in [
        (
            "<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
            "<script>",
        ),
        (
            "<svg xmlns='http://www.w3.org/2000/svg'><rect onload='x()'/></svg>",
            "onload",
        ),
        (
            "<svg xmlns='http://www.w3.org/2000/svg' xmlns:l='http://www.w3.org/1999/xlink'><rect l:href='http://x'/></svg>",
            "href",
        ),
        (
            "<svg xmlns='http://www.w3.org/2000/svg'><rect style='fill:url(http://x)'/></svg>",
            "style",
        ),
        (
            "<svg xmlns='http://www.w3.org/2000/svg'><image/></svg>",
            "<image>",
        ),
        (
            "<svg xmlns='http://www.w3.org/2000/svg'><foreignObject/></svg>",
            "<foreignObject>",
        ),
        (
            "<!DOCTYPE svg [<!ENTITY x 'y'>]><svg xmlns='http://www.w3.org/2000/svg'/>",
            "XML",
        ),
        ("<html><body/></html>", "root"),
        ("<svg xmlns='http://www.w3.org/2000/svg'>", "XML"),
    ] {
        let e = check_svg(bad.as_bytes()).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }

    // Through the host: a good chart is staged as .svg and checked (a mobile number in
    // its text is flagged); a chart with a script is refused with status 1.
    let f = Fixture::new();
    let module = |svg: &str| {
        wat(&format!(
            r#"(module
        (import "sandbox" "emit" (func $emit (param i32 i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (data (i32.const 0) "chart")
        (data (i32.const 16) "{svg}")
        (func (export "run") (result i32)
          (call $emit (i32.const 3) (i32.const 0) (i32.const 5) (i32.const 16) (i32.const {len}))))"#,
            len = svg.len()
        ))
    };
    let report = submit(&f, &module(ok), JobLimits::default()).unwrap();
    assert_eq!(report.status, "succeeded", "{report:?}");
    assert_eq!(report.outputs[0].kind, "chart");
    assert_eq!(report.outputs[0].file_name, "chart.svg");
    assert_eq!(report.outputs[0].status, "checked");
    let leaky = "<svg xmlns='http://www.w3.org/2000/svg'><text>13812345678</text></svg>";
    let report = submit(&f, &module(leaky), JobLimits::default()).unwrap();
    assert_eq!(report.outputs[0].status, "flagged", "{report:?}");
    let script = "<svg xmlns='http://www.w3.org/2000/svg'><script>x</script></svg>";
    let report = submit(&f, &module(script), JobLimits::default()).unwrap();
    assert_eq!(report.status, "failed");
    assert!(
        report
            .error
            .as_deref()
            .is_some_and(|e| e.contains("returned 1")),
        "{report:?}"
    );
    assert_nothing_staged(&f, &report);
}

/// A domain holding one example dataset (synthetic `csv` under `examples/policies/<policy>`)
/// and an approved scenario `name` over `columns` of it; `extra` is appended to the budget.
fn example_domain(
    csv: &str,
    policy: &str,
    name: &str,
    columns: &str,
    extra: &str,
) -> (tempfile::TempDir, sandbox_runtime::Domain, i64) {
    let (dir, domain) = sandbox_tests::empty_domain();
    let path = dir.path().join("data.csv");
    std::fs::write(&path, csv).unwrap();
    let text = std::fs::read_to_string(
        sandbox_tests::repo_root()
            .join("examples/policies")
            .join(policy),
    )
    .unwrap();
    let dataset = sandbox_policies::Policy::from_toml_str(&text)
        .unwrap()
        .dataset
        .name;
    sandbox_runtime::catalog::add(&domain, sandbox_tests::PROVIDER, &path, &text).unwrap();
    let scenario = sandbox_tests::scenario_text(name, 10.0, 1.0)
        .replace("name = \"residents\"", &format!("name = \"{dataset}\""))
        .replace(
            "columns = [\"citizen_id\", \"district\", \"age\", \"income\"]",
            &format!("columns = {columns}"),
        )
        .replace(
            "epsilon_per_query = 1",
            &format!("epsilon_per_query = 1{extra}"),
        );
    let s =
        sandbox_runtime::scenarios::apply(&domain, sandbox_tests::DEVELOPER, &scenario).unwrap();
    let s = sandbox_tests::approve(&domain, &s.id.to_string()).unwrap();
    (dir, domain, s.id)
}

#[test]
fn the_traffic_module_emits_a_table_a_chart_and_a_summary() {
    let (_dir, domain, scenario_id) = example_domain(
        &sandbox_synth::trips_csv(4000, 7),
        "trips.toml",
        "traffic",
        r#"["plate", "district", "hour", "minutes"]"#,
        "",
    );
    let module = sandbox_tests::guest_module("traffic_peak_hours");
    let run = |params: &str| {
        sandbox_runtime::jobs::submit(
            &domain,
            sandbox_tests::DEVELOPER,
            &sandbox_runtime::jobs::Submission {
                scenario: "traffic",
                module: &module,
                params_json: params,
                limits: sandbox_core::job::LimitRequest::default(),
                resubmits: None,
            },
        )
        .unwrap()
    };
    let report = run(r#"{"epsilon": 0.5}"#);
    assert_eq!(report.status, "succeeded", "{report:?}");
    let kinds: Vec<(&str, &str, &str)> = report
        .outputs
        .iter()
        .map(|o| (o.name.as_str(), o.kind.as_str(), o.status.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("trips_by_hour", "table", "checked"),
            ("trips_chart", "chart", "checked"),
            ("peak_hours", "text", "checked"),
        ]
    );
    let staged = domain.layout().staging().join(&report.id);
    let svg = std::fs::read_to_string(staged.join("trips_chart.svg")).unwrap();
    assert_eq!(svg.matches("<rect").count(), 24, "one bar per hour");
    let summary = std::fs::read_to_string(staged.join("peak_hours.md")).unwrap();
    // The synthetic trips peak around 8:00 and 18:00: the busiest hours are near them.
    let busiest = summary
        .split("The busiest hours: ")
        .nth(1)
        .and_then(|rest| rest.get(..2))
        .and_then(|h| h.parse::<i64>().ok())
        .unwrap();
    assert!(
        (6..=10).contains(&busiest) || (16..=20).contains(&busiest),
        "{summary}"
    );
    let b =
        sandbox_runtime::privacy::ledger::balance(&domain.conn().unwrap(), scenario_id).unwrap();
    assert!((b.epsilon_spent - 0.5).abs() < 1e-9, "{b:?}");
    // A parameter that is not a district name never reaches the SQL.
    let report = run(r#"{"district": "x' OR '1'='1"}"#);
    assert_eq!(report.status, "failed");
    assert!(
        report
            .error
            .as_deref()
            .is_some_and(|e| e.contains("not a district name"))
    );
}

#[test]
fn dev_run_uses_synthetic_data_from_the_policy_and_marks_every_output() {
    let out = tempfile::tempdir().unwrap();
    let module = sandbox_tests::repo_root()
        .join("examples/modules/target/wasm32-unknown-unknown/release/income_by_district.wasm");
    let args = sandbox_cli::dev::DevRunArgs {
        module,
        policies: vec![sandbox_tests::repo_root().join("examples/policies/residents.toml")],
        params: r#"{"min_age": 30}"#.into(),
        units: 300,
        seed: 5,
        out: out.path().join("o"),
    };
    let mut log = Vec::new();
    sandbox_cli::dev::run(&args, sandbox_core::Lang::En, &mut log).unwrap();
    let log = String::from_utf8(log).unwrap();
    assert!(log.starts_with("SYNTHETIC DATA"), "{log}");
    let mut names: Vec<String> = std::fs::read_dir(out.path().join("o"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "SYNTHETIC-income_by_district.arrow",
            "SYNTHETIC-summary.md",
            "SYNTHETIC.txt"
        ]
    );
    // The synthetic data follows the policy: districts from its categories, ages and
    // incomes within bounds, one row per resident (k = 1).
    let policy = sandbox_policies::Policy::from_toml_str(
        &std::fs::read_to_string(
            sandbox_tests::repo_root().join("examples/policies/residents.toml"),
        )
        .unwrap(),
    )
    .unwrap();
    let csv = sandbox_cli::dev::synthetic_csv(&policy, 50, 1);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "citizen_id,phone,district,age,income");
    assert_eq!(lines.len(), 51);
    for line in &lines[1..] {
        let f: Vec<&str> = line.split(',').collect();
        assert!(
            ["heping", "hedong", "hexi", "nankai", "hebei", "hongqiao"].contains(&f[2]),
            "{line}"
        );
        let age: i64 = f[3].parse().unwrap();
        assert!((0..=120).contains(&age), "{line}");
    }
}

#[test]
fn the_enterprise_module_groups_by_a_generalized_date() {
    // Years come from the data: the scenario allows δ per query for τ-thresholding.
    let (_dir, domain, _) = example_domain(
        &sandbox_synth::enterprises_csv(6000, 11),
        "enterprises.toml",
        "registrations",
        r#"["credit_code", "industry", "registered_on", "employees"]"#,
        "\ndelta = 0.0001\ndelta_per_query = 0.000001",
    );
    let report = sandbox_runtime::jobs::submit(
        &domain,
        sandbox_tests::DEVELOPER,
        &sandbox_runtime::jobs::Submission {
            scenario: "registrations",
            module: &sandbox_tests::guest_module("enterprise_registrations"),
            params_json: "{}",
            limits: sandbox_core::job::LimitRequest::default(),
            resubmits: None,
        },
    )
    .unwrap();
    assert_eq!(report.status, "succeeded", "{report:?}");
    let names: Vec<&str> = report.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["registrations", "registrations_chart", "trend"]);
    let staged = domain.layout().staging().join(&report.id);
    // Information technology registers hundreds of firms a year: all 11 years pass τ.
    let svg = std::fs::read_to_string(staged.join("registrations_chart.svg")).unwrap();
    assert_eq!(svg.matches("<rect").count(), 11, "{svg}");
    let trend = std::fs::read_to_string(staged.join("trend.md")).unwrap();
    assert!(
        trend.contains("in 2015") && trend.contains("in 2025"),
        "{trend}"
    );
}

#[test]
fn recursion_outputs_and_logs_past_their_limits_end_the_job_with_the_limit_named() {
    let f = Fixture::new();
    let cases: [(&str, &str); 4] = [
        (
            // Unbounded recursion: the stack limit.
            r#"(module
              (memory (export "memory") 1)
              (func $down (param i32) (result i32)
                (call $down (i32.add (local.get 0) (i32.const 1))))
              (func (export "run") (result i32) (call $down (i32.const 0))))"#,
            "limit:stack",
        ),
        (
            // One output larger than the per-output cap (4 MiB): memory grown to 8 MiB.
            r#"(module
              (import "sandbox" "emit" (func $emit (param i32 i32 i32 i32 i32) (result i32)))
              (memory (export "memory") 128)
              (data (i32.const 0) "big")
              (func (export "run") (result i32)
                (call $emit (i32.const 2) (i32.const 0) (i32.const 3) (i32.const 16) (i32.const 8000000))))"#,
            "limit:output_bytes",
        ),
        (
            // Many small outputs under distinct names: the output count.
            r#"(module
              (import "sandbox" "emit" (func $emit (param i32 i32 i32 i32 i32) (result i32)))
              (memory (export "memory") 1)
              (data (i32.const 0) "a")
              (data (i32.const 16) "x")
              (func (export "run") (result i32)
                (local $i i32)
                (loop $more
                  ;; name: one byte 'a'..'z' at offset 0
                  (i32.store8 (i32.const 0) (i32.add (i32.const 97) (local.get $i)))
                  (drop (call $emit (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 16) (i32.const 1)))
                  (local.set $i (i32.add (local.get $i) (i32.const 1)))
                  (br_if $more (i32.lt_u (local.get $i) (i32.const 26))))
                (i32.const 0)))"#,
            "limit:outputs",
        ),
        (
            // A log flood: the log volume.
            r#"(module
              (import "sandbox" "log" (func $log (param i32 i32 i32) (result i32)))
              (memory (export "memory") 1)
              (func (export "run") (result i32)
                (loop $again (drop (call $log (i32.const 2) (i32.const 0) (i32.const 60000))) (br $again))
                (i32.const 0)))"#,
            "limit:log_bytes",
        ),
    ];
    for (module, kind) in cases {
        let report = submit(&f, &wat(module), JobLimits::default()).unwrap();
        assert_eq!(report.error_kind.as_deref(), Some(kind), "{report:?}");
        assert_nothing_staged(&f, &report);
    }
    // The host is healthy afterwards.
    f.ask("SELECT COUNT(*) FROM residents").unwrap();
}

/// A module that asks one query after another until a limit stops it.
const QUERIES_UNTIL_STOPPED: &str = r#"(module
    (import "sandbox" "query" (func $query (param i32 i32) (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 0) "SELECT COUNT(*) FROM residents")
    (func (export "run") (result i32)
      (loop $again (drop (call $query (i32.const 0) (i32.const 30))) (br $again))
      (i32.const 0)))"#;

/// The details of the domain's one `job.started` event (the limits the job got).
fn started_details(domain: &sandbox_runtime::Domain) -> serde_json::Value {
    let details: String = sandbox_tests::raw(domain)
        .query_row(
            "SELECT details FROM audit_events WHERE action = 'job.started'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    serde_json::from_str(&details).unwrap()
}

#[test]
fn the_scenario_grants_the_limits_and_a_job_cannot_ask_for_more() {
    let (dir, domain) = sandbox_tests::empty_domain();
    sandbox_tests::add_residents(&domain, dir.path(), 200);
    let text = format!(
        "{}[limits]\nmax_queries = 2\ndeadline_ms = 5000\n",
        sandbox_tests::scenario_text("limited", 10.0, 0.01)
    );
    let s = sandbox_runtime::scenarios::apply(&domain, sandbox_tests::DEVELOPER, &text).unwrap();
    sandbox_tests::approve(&domain, &s.id.to_string()).unwrap();
    let module = wat(QUERIES_UNTIL_STOPPED);
    // The job asks for 50 queries; the scenario grants 2.
    let report = sandbox_runtime::jobs::submit(
        &domain,
        sandbox_tests::DEVELOPER,
        &sandbox_runtime::jobs::Submission {
            scenario: "limited",
            module: &module,
            params_json: "{}",
            limits: sandbox_core::job::LimitRequest {
                max_queries: Some(50),
                deadline_ms: Some(600_000),
                ..Default::default()
            },
            resubmits: None,
        },
    )
    .unwrap();
    assert_eq!(
        report.error_kind.as_deref(),
        Some("limit:queries"),
        "{report:?}"
    );
    assert_eq!(report.queries, 2);
    let details = started_details(&domain);
    assert_eq!(details["limits"]["max_queries"], 2);
    assert_eq!(details["limits"]["deadline_ms"], 5000);
    // A scenario cannot grant nonsense.
    let bad = format!(
        "{}[limits]\nmemory_mib = 0\n",
        sandbox_tests::scenario_text("bad-limits", 10.0, 0.01)
    );
    match sandbox_runtime::scenarios::apply(&domain, sandbox_tests::DEVELOPER, &bad) {
        Err(Error::Policy(sandbox_policies::PolicyError::Invalid { field, .. })) => {
            assert_eq!(field, "limits.memory_mib")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_job_that_asks_for_no_limits_gets_the_scenarios_grant_even_above_the_defaults() {
    let (dir, domain) = sandbox_tests::empty_domain();
    sandbox_tests::add_residents(&domain, dir.path(), 200);
    let defaults = sandbox_core::job::JobLimits::default();
    let granted_queries = defaults.max_queries + 50;
    let granted_deadline = defaults.deadline_ms * 2;
    let text = format!(
        "{}[limits]\nmax_queries = {granted_queries}\ndeadline_ms = {granted_deadline}\n",
        sandbox_tests::scenario_text("generous", 10.0, 0.01)
    );
    let s = sandbox_runtime::scenarios::apply(&domain, sandbox_tests::DEVELOPER, &text).unwrap();
    sandbox_tests::approve(&domain, &s.id.to_string()).unwrap();
    // The module asks until it is stopped: it gets the grant, more than the defaults.
    let module = wat(QUERIES_UNTIL_STOPPED);
    let report = sandbox_runtime::jobs::submit(
        &domain,
        sandbox_tests::DEVELOPER,
        &sandbox_runtime::jobs::Submission {
            scenario: "generous",
            module: &module,
            params_json: "{}",
            limits: sandbox_core::job::LimitRequest::default(),
            resubmits: None,
        },
    )
    .unwrap();
    assert_eq!(
        report.error_kind.as_deref(),
        Some("limit:queries"),
        "{report:?}"
    );
    assert_eq!(report.queries, granted_queries);
    let details = started_details(&domain);
    assert_eq!(details["limits"]["max_queries"], granted_queries);
    assert_eq!(details["limits"]["deadline_ms"], granted_deadline);
    assert_eq!(details["limits"]["fuel"], defaults.fuel);
}
