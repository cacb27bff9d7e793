//! The automated output checks: a planted resident ID number, a planted raw income value
//! and a differencing pair are each caught by their own check, and none is released
//! without the recorded override.

use sandbox_runtime::jobs::{self, OutputRecord};
use sandbox_runtime::review::{self, Decision};
use sandbox_runtime::wasm::JobLimits;
use sandbox_runtime::{Error, audit, catalog, scenarios};
use sandbox_tests::{
    DEVELOPER, Fixture, OPERATOR, PROVIDER, SUPERVISOR, emit_module, empty_domain, text_module, wat,
};

const ALL_BY_DISTRICT: &str =
    "SELECT district, COUNT(*) AS n FROM residents GROUP BY district ORDER BY district";

/// A module that asks one query and emits the answer unchanged as a table.
fn pass_through(sql: &str, name: &str) -> Vec<u8> {
    assert!(!sql.contains('"'));
    wat(&format!(
        r#"(module
        (import "sandbox" "query" (func $query (param i32 i32) (result i32)))
        (import "sandbox" "response_len" (func $len (result i32)))
        (import "sandbox" "response_read" (func $read (param i32 i32) (result i32)))
        (import "sandbox" "emit" (func $emit (param i32 i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 4)
        (data (i32.const 0) "{sql}")
        (data (i32.const 2048) "{name}")
        (func (export "run") (result i32) (local $n i32)
          (if (i32.ne (call $query (i32.const 0) (i32.const {sql_len})) (i32.const 0))
            (then unreachable))
          (local.set $n (call $len))
          (if (i32.ne (call $read (i32.const 4096) (local.get $n)) (i32.const 0))
            (then unreachable))
          (call $emit (i32.const 1) (i32.const 2048) (i32.const {name_len}) (i32.const 4096) (local.get $n))))"#,
        sql_len = sql.len(),
        name_len = name.len(),
    ))
}

/// A module that emits a table of adults per district it computed itself: A 27, B 18.
fn adults_table() -> Vec<u8> {
    use std::sync::Arc;
    let batch = arrow::array::RecordBatch::try_from_iter([
        (
            "district",
            Arc::new(arrow::array::StringArray::from(vec!["A", "B"])) as arrow::array::ArrayRef,
        ),
        (
            "n",
            Arc::new(arrow::array::Int64Array::from(vec![27, 18])) as _,
        ),
    ])
    .unwrap();
    let mut bytes = Vec::new();
    let mut w = arrow::ipc::writer::StreamWriter::try_new(&mut bytes, &batch.schema()).unwrap();
    w.write(&batch).unwrap();
    w.finish().unwrap();
    drop(w);
    emit_module(1, "adults", &bytes)
}

fn staged(f: &Fixture, module: &[u8]) -> OutputRecord {
    let report = f.submit(module, "{}", JobLimits::default()).unwrap();
    assert_eq!(report.status, "succeeded", "{report:?}");
    report.outputs[0].clone()
}

fn outcome(o: &OutputRecord, check: &str) -> (String, String) {
    let results = o.checks.as_ref().unwrap()["results"].as_array().unwrap();
    let r = results
        .iter()
        .find(|r| r["check"] == check)
        .unwrap_or_else(|| panic!("no `{check}` result in {results:?}"));
    (
        r["outcome"].as_str().unwrap().to_string(),
        r["reason"].as_str().unwrap().to_string(),
    )
}

/// Releasing a failed output: refused without a reason at either tier, released with
/// both, and the audit log records the override.
fn release_only_with_override(f: &Fixture, o: &OutputRecord) {
    assert_eq!(o.status, "flagged", "{:?}", o.checks);
    assert!(matches!(
        review::decide(&f.domain, OPERATOR, &o.id, Decision::Approve, None),
        Err(Error::Review(_))
    ));
    review::decide(
        &f.domain,
        OPERATOR,
        &o.id,
        Decision::Approve,
        Some("reviewed the finding"),
    )
    .unwrap();
    assert!(matches!(
        review::decide(&f.domain, SUPERVISOR, &o.id, Decision::Approve, None),
        Err(Error::Review(_))
    ));
    let released = review::decide(
        &f.domain,
        SUPERVISOR,
        &o.id,
        Decision::Approve,
        Some("override: accepted in writing"),
    )
    .unwrap();
    assert_eq!(released.status, "released");
    let events = audit::log(&f.domain, sandbox_tests::SUPERVISOR, 1, 100_000).unwrap();
    let overrides: Vec<_> = events
        .iter()
        .filter(|e| e.subject == format!("output:{}", o.id) && e.details["override"] == true)
        .collect();
    assert_eq!(overrides.len(), 2, "an override event at each tier");
}

/// Residents in a threshold-mode domain: districts A and B with 30 people each; in A three
/// are 18, in B twelve.
fn threshold_fixture(extra: &str) -> Fixture {
    let (dir, domain) = empty_domain();
    let mut csv = String::from("citizen_id,phone,district,age,income\n");
    let mut id = 0;
    for (district, young) in [("A", 3), ("B", 12)] {
        for i in 0..30 {
            id += 1;
            let age = if i < young { 18 } else { 40 };
            csv.push_str(&format!(
                "C{id:05},1380000{id:04},{district},{age},{}\n",
                20_000 + id * 100
            ));
        }
    }
    csv.push_str(extra);
    let path = dir.path().join("r.csv");
    std::fs::write(&path, csv).unwrap();
    let policy =
        sandbox_cli::demo::RESIDENTS_POLICY.replace("mode = \"dp\"", "mode = \"threshold\"");
    catalog::add(&domain, PROVIDER, &path, &policy).unwrap();
    let text = sandbox_tests::scenario_text("threshold-release", 1.0, 1.0)
        .replace("[budget]", "mode = \"threshold\"\n[budget]");
    let s = scenarios::apply(&domain, DEVELOPER, &text).unwrap();
    let scenario = sandbox_tests::approve(&domain, &s.id.to_string()).unwrap();
    Fixture {
        dir,
        domain,
        scenario,
    }
}

#[test]
fn a_differencing_pair_with_a_released_table_is_caught() {
    let f = threshold_fixture("");
    let all = staged(&f, &pass_through(ALL_BY_DISTRICT, "all"));
    // Nothing is released yet, every number came from the mediator: all checks pass.
    assert_eq!(all.status, "checked", "{:?}", all.checks);
    assert_eq!(outcome(&all, "differencing").0, "pass");
    assert_eq!(outcome(&all, "provenance").0, "pass");
    review::decide(&f.domain, OPERATOR, &all.id, Decision::Approve, None).unwrap();
    review::decide(&f.domain, SUPERVISOR, &all.id, Decision::Approve, None).unwrap();

    // Adults over 18, as a module that worked them out itself would write them: only three
    // fewer in district A, so the two tables together describe three people. (Asked of
    // the mediator, that cell is suppressed: see `threshold.rs`.)
    let adults = staged(&f, &adults_table());
    let (o, reason) = outcome(&adults, "differencing");
    assert_eq!(o, "fail", "{reason}");
    assert!(
        reason.contains("(A)") && !reason.contains("(B)"),
        "{reason}"
    );
    // The reason does not state the difference itself.
    assert!(!reason.contains(" 3 "), "{reason}");
    release_only_with_override(&f, &adults);
}

#[test]
fn a_planted_id_number_and_a_raw_income_are_caught_by_their_checks() {
    let f = Fixture::new();
    // An income only one resident has (the synthetic incomes are rounded to whole yuan;
    // a value from the data that appears once).
    let rows = sandbox_synth::residents(2000, 2026);
    let mut counts = std::collections::HashMap::new();
    for r in &rows {
        *counts.entry(r.income as i64).or_insert(0) += 1;
    }
    let rare = rows
        .iter()
        .map(|r| r.income as i64)
        .find(|i| counts[i] == 1 && *i >= 10_000)
        .unwrap();

    let id = staged(&f, &text_module("Top earner: 11010519491231002X"));
    let (o, reason) = outcome(&id, "identifiers");
    assert_eq!(o, "fail");
    assert!(reason.contains("resident ID number") && !reason.contains("11010519491231002X"));
    assert_eq!(outcome(&id, "raw_values").0, "pass");

    let raw = staged(
        &f,
        &text_module(&format!("The highest income was {rare} yuan.")),
    );
    let (o, reason) = outcome(&raw, "raw_values");
    assert_eq!(o, "fail", "{reason}");
    assert!(reason.contains("residents.income"), "{reason}");
    assert!(
        !reason.contains(&rare.to_string()),
        "the reason names no raw value"
    );
    assert_eq!(outcome(&raw, "identifiers").0, "pass");
    // The module received no answer with that number either.
    assert_eq!(outcome(&raw, "provenance").0, "review");

    // A phone number of the data is caught twice: as a mobile and as a raw value.
    let phone = rows[7].phone.clone();
    let leak = staged(&f, &text_module(&format!("call {phone}")));
    assert_eq!(outcome(&leak, "identifiers").0, "fail");
    let (o, reason) = outcome(&leak, "raw_values");
    assert_eq!(o, "fail", "{reason}");
    assert!(reason.contains("residents.phone"), "{reason}");

    release_only_with_override(&f, &id);
    release_only_with_override(&f, &raw);
}

#[test]
fn a_total_that_reveals_a_suppressed_cell_is_caught() {
    // District C has three residents: suppressed (and one more cell with it, so that the
    // column total cannot give it away).
    let f = threshold_fixture(
        "C09001,13900000001,C,50,31000\nC09002,13900000002,C,51,32000\nC09003,13900000003,C,52,33000\n",
    );
    // A module that knew the full total (63) and printed it beside the released cells.
    let module = wat(&format!(
        r#"(module
        (import "sandbox" "query" (func $query (param i32 i32) (result i32)))
        (import "sandbox" "emit" (func $emit (param i32 i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (data (i32.const 0) "{sql}")
        (data (i32.const 1024) "note")
        (data (i32.const 1040) "All districts: 63 residents.")
        (func (export "run") (result i32)
          (drop (call $query (i32.const 0) (i32.const {len})))
          (call $emit (i32.const 2) (i32.const 1024) (i32.const 4) (i32.const 1040) (i32.const 28))))"#,
        sql = "SELECT district, COUNT(*) AS n FROM residents GROUP BY district",
        len = "SELECT district, COUNT(*) AS n FROM residents GROUP BY district".len(),
    ));
    let total = staged(&f, &module);
    let (o, reason) = outcome(&total, "threshold");
    assert_eq!(o, "fail", "{reason}");
    // The reviewer reads which number, and where.
    assert!(
        reason.contains("line 1 (63): equals a total that includes suppressed cells"),
        "{reason}"
    );
    // A small count the mediator never released is a small cell.
    let small = staged(&f, &text_module("District C: 3 residents."));
    let (o, reason) = outcome(&small, "threshold");
    assert_eq!(o, "fail", "{reason}");
    assert!(
        reason.contains("line 1 (3): a count below 10 that no answer released"),
        "{reason}"
    );
}

#[test]
fn the_policy_configures_kinds_caps_and_severities() {
    let (dir, domain) = empty_domain();
    let policy = sandbox_cli::demo::RESIDENTS_POLICY.replace(
        "max_output_rows = 1000",
        "max_output_rows = 1000\noutput_kinds = [\"table\"]\nidentifiers = [\"email\"]\n[disclosure.checks]\nidentifiers = \"review\"",
    );
    let csv = dir.path().join("r.csv");
    std::fs::write(&csv, sandbox_synth::residents_csv(200, 3)).unwrap();
    catalog::add(&domain, PROVIDER, &csv, &policy).unwrap();
    let s = scenarios::apply(
        &domain,
        DEVELOPER,
        &sandbox_tests::scenario_text("kinds", 3.0, 1.0),
    )
    .unwrap();
    let scenario = sandbox_tests::approve(&domain, &s.id.to_string()).unwrap();
    let f = Fixture {
        dir,
        domain,
        scenario,
    };
    // Text is not an allowed kind; the mobile number is not scanned for; the e-mail
    // address is, as a finding for review only.
    let o = staged(
        &f,
        &text_module("write to li.lei@example.cn or 13812345678"),
    );
    assert_eq!(outcome(&o, "type_and_size").0, "fail");
    let (ids, reason) = outcome(&o, "identifiers");
    assert_eq!(ids, "review");
    assert!(
        reason.contains("e-mail") && !reason.contains("mobile"),
        "{reason}"
    );
    assert_eq!(o.status, "flagged");
    // A bad value is refused when the policy is loaded.
    let bad = sandbox_cli::demo::RESIDENTS_POLICY.replace(
        "min_group_size = 10",
        "min_group_size = 10\nidentifiers = [\"passport\"]",
    );
    assert!(sandbox_policies::Policy::from_toml_str(&bad).is_err());
}

#[test]
fn a_pair_released_one_after_the_other_is_caught_at_release() {
    let f = threshold_fixture("");
    let all = staged(&f, &pass_through(ALL_BY_DISTRICT, "all"));
    // The adults' table as a module that worked it out itself would write it (asked of the
    // mediator after `all`, district A's cell is suppressed: see `threshold.rs`).
    let adults = staged(&f, &adults_table());
    // Staged while nothing was released: neither fails.
    assert_eq!(all.status, "checked");
    assert_eq!(adults.status, "checked", "{:?}", adults.checks);
    review::decide(&f.domain, OPERATOR, &all.id, Decision::Approve, None).unwrap();
    // Its numbers were derived by the module (provenance: for review): the operator notes
    // why they are fine.
    review::decide(
        &f.domain,
        OPERATOR,
        &adults.id,
        Decision::Approve,
        Some("adults counted from the register"),
    )
    .unwrap();
    review::decide(&f.domain, SUPERVISOR, &all.id, Decision::Approve, None).unwrap();
    // Now `all` is out: releasing `adults` would publish the pair. The re-check at release
    // refuses and sends it back as flagged.
    let refused = review::decide(&f.domain, SUPERVISOR, &adults.id, Decision::Approve, None);
    assert!(
        matches!(&refused, Err(Error::Review(m)) if m.contains("differencing")),
        "{refused:?}"
    );
    let o = jobs::output(&f.domain, sandbox_tests::OPERATOR, &adults.id).unwrap();
    assert_eq!(o.status, "flagged");
    assert_eq!(outcome(&o, "differencing").0, "fail");
    assert!(
        audit::log(&f.domain, sandbox_tests::SUPERVISOR, 1, 100_000)
            .unwrap()
            .iter()
            .any(|e| e.action == "output.rechecked" && e.subject == format!("output:{}", adults.id))
    );
    assert!(
        review::products(&f.domain, sandbox_tests::OPERATOR)
            .unwrap()
            .len()
            == 1
    );
    release_only_with_override(&f, &o);
}

#[test]
fn a_png_chart_keeps_its_pixels_only_and_goes_to_the_reviewer() {
    let f = Fixture::new();
    // A 3×2 picture with an ID number hidden in a text chunk.
    let mut png_bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png_bytes, 3, 2);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder
            .add_text_chunk("Comment".into(), "11010519491231002X".into())
            .unwrap();
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&[200u8; 18]).unwrap();
        writer.finish().unwrap();
    }
    assert!(png_bytes.windows(18).any(|w| w == b"11010519491231002X"));
    let o = staged(&f, &emit_module(4, "chart", &png_bytes));
    assert_eq!(o.kind, "chart");
    assert!(o.file_name.ends_with(".png"));
    let file = std::fs::read(
        f.domain
            .layout()
            .staging()
            .join(&o.job_id)
            .join(&o.file_name),
    )
    .unwrap();
    assert!(
        !file.windows(18).any(|w| w == b"11010519491231002X"),
        "text chunk dropped"
    );
    let decoded = sandbox_runtime::wasm::reencode_png(&file).unwrap();
    assert_eq!((decoded.width, decoded.height), (3, 2));
    let (size, reason) = outcome(&o, "type_and_size");
    assert_eq!(size, "pass");
    assert!(reason.contains("3×2"), "{reason}");
    assert_eq!(outcome(&o, "provenance").0, "review");
    assert_eq!(o.status, "checked");

    // Not a PNG: the emit is refused and the job fails without staging anything.
    let report = f
        .submit(
            &emit_module(4, "chart", b"\x89PNG\r\n\x1a\nnot really"),
            "{}",
            JobLimits::default(),
        )
        .unwrap();
    assert_eq!(report.status, "failed");
    assert!(report.outputs.is_empty());
}

/// In threshold mode the module holds exact answers and its developer reads its log lines
/// without review: a line that gives a suppressed cell away (a total that includes it, a
/// small count no answer released) is held back from the developer; operators and
/// supervisors read it as written.
#[test]
fn threshold_log_lines_that_give_a_suppressed_cell_away_are_held_back() {
    let f = threshold_fixture(
        "C09001,13900000001,C,50,31000\nC09002,13900000002,C,51,32000\nC09003,13900000003,C,52,33000\n",
    );
    let sql = "SELECT district, COUNT(*) AS n FROM residents GROUP BY district";
    let lines = [
        "All districts: 63 residents.",
        "District C: 3 residents.",
        "The released cells are ready.",
    ];
    let mut data = String::new();
    let mut calls = String::new();
    let mut at = 1024;
    for l in lines {
        data.push_str(&format!("(data (i32.const {at}) \"{l}\")\n"));
        calls.push_str(&format!(
            "(drop (call $log (i32.const 2) (i32.const {at}) (i32.const {})))\n",
            l.len()
        ));
        at += 64;
    }
    let module = wat(&format!(
        r#"(module
        (import "sandbox" "query" (func $query (param i32 i32) (result i32)))
        (import "sandbox" "log" (func $log (param i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (data (i32.const 0) "{sql}")
        {data}
        (func (export "run") (result i32)
          (drop (call $query (i32.const 0) (i32.const {len})))
          {calls}
          (i32.const 0)))"#,
        len = sql.len(),
    ));
    let report = f.submit(&module, "{}", JobLimits::default()).unwrap();
    assert_eq!(report.status, "succeeded", "{report:?}");
    let read = |actor: &str| -> Vec<String> {
        jobs::logs(&f.domain, actor, &report.id)
            .unwrap()
            .into_iter()
            .map(|l| l.text)
            .collect()
    };
    let developer = read(DEVELOPER);
    assert_eq!(developer.len(), 3, "{developer:?}");
    assert!(
        developer[0].starts_with("[held back: equals a total that includes suppressed cells"),
        "{developer:?}"
    );
    assert!(
        developer[1].starts_with("[held back: a count below 10 that no answer released"),
        "{developer:?}"
    );
    assert!(!developer[0].contains("63") && !developer[1].contains('3'));
    assert_eq!(developer[2], lines[2]);
    // The report `submit` hands back to its developer holds the same lines.
    let reported: Vec<String> = report.logs.iter().map(|l| l.text.clone()).collect();
    assert_eq!(reported, developer);
    assert_eq!(read(OPERATOR), lines.to_vec());
    assert_eq!(read(SUPERVISOR), lines.to_vec());
    // What a reviewer writes to the developer passes the same check: quoting the total
    // would give the suppressed cell away.
    use sandbox_runtime::review::thread;
    thread::comment(&f.domain, OPERATOR, &report.id, lines[0]).unwrap();
    thread::comment(&f.domain, OPERATOR, &report.id, "Please add a chart.").unwrap();
    let texts = |actor: &str| -> Vec<String> {
        thread::thread(&f.domain, actor, &report.id)
            .unwrap()
            .entries
            .into_iter()
            .filter_map(|e| e.text)
            .collect()
    };
    let developer = texts(DEVELOPER);
    assert!(
        developer[0].starts_with("[held back: equals a total that includes suppressed cells"),
        "{developer:?}"
    );
    assert_eq!(developer[1], "Please add a chart.");
    assert_eq!(texts(SUPERVISOR), [lines[0], "Please add a chart."]);
}
