//! Data-independent execution: whether an accepted query fails must never depend on the
//! data. Generated queries (the allowed functions and operators, literals at the edges of
//! their types, nested expressions, filters, group keys) run through the mediator against
//! a dataset and its neighbours, each with one more row of extreme values: for every query,
//! every dataset answers, or every one refuses it at planning with the same rule.

use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use sandbox_runtime::mediate::{self, QueryRequest};
use sandbox_runtime::{Domain, Error, catalog, scenarios};
use sandbox_tests::{DEVELOPER, OPERATOR, PROVIDER, empty_domain};

/// The policy of `t`: a public group key, an integer and a float with bounds, a text and
/// a date to filter on.
fn policy() -> String {
    sandbox_tests::test_policy(
        "t",
        "dp",
        r#"
[[column]]
name = "g"
level = 2
access = "group"
categories = ["a", "b", "c"]
description = "Public group key"

[[column]]
name = "i"
level = 3
access = "aggregate"
bounds = [-1000, 1000]
description = "An integer"

[[column]]
name = "f"
level = 3
access = "aggregate"
bounds = [-1000, 1000]
description = "A float"

[[column]]
name = "s"
level = 2
access = "filter"
description = "A text"

[[column]]
name = "d"
level = 2
access = "filter"
description = "A date"

[disclosure]
min_group_size = 10
"#,
    )
}

/// One row: unit, group, integer, float, text, date.
type Row = (
    String,
    Option<&'static str>,
    Option<i64>,
    Option<f64>,
    Option<String>,
    Option<i32>,
);

/// Ordinary rows: 30 units in three groups.
fn ordinary() -> Vec<Row> {
    (0..30)
        .map(|u| {
            (
                format!("u{u}"),
                Some(["a", "b", "c"][u % 3]),
                Some(u as i64 * 7 - 100),
                Some(u as f64 * 1.5 - 20.0),
                Some(format!("name {u}")),
                Some(19_000 + u as i32 * 30),
            )
        })
        .collect()
}

/// Rows at the edges of every type, each the extra row of one neighbour.
fn extremes() -> Vec<Row> {
    let epoch = chrono::NaiveDate::default();
    let day = |d: chrono::NaiveDate| i32::try_from((d - epoch).num_days()).unwrap();
    let e =
        |i, f, s: Option<&str>, d| ("edge".to_string(), Some("a"), i, f, s.map(String::from), d);
    vec![
        e(
            Some(i64::MIN),
            Some(-f64::MAX),
            Some(""),
            Some(day(chrono::NaiveDate::MIN)),
        ),
        e(
            Some(i64::MAX),
            Some(f64::MAX),
            Some("王伟 é"),
            Some(day(chrono::NaiveDate::MAX)),
        ),
        e(Some(0), Some(0.0), Some("-1"), Some(0)),
        e(Some(-1), Some(f64::NAN), Some(&"x".repeat(5000)), Some(-1)),
        e(None, None, None, None),
        e(Some(-5), Some(-0.0), Some("  9  "), Some(1)),
    ]
}

fn parquet(path: &std::path::Path, rows: &[Row]) {
    let batch = RecordBatch::try_from_iter([
        (
            "id",
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
        (
            "g",
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )) as _,
        ),
        (
            "i",
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )) as _,
        ),
        (
            "f",
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            )) as _,
        ),
        (
            "s",
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.4.clone()).collect::<Vec<_>>(),
            )) as _,
        ),
        (
            "d",
            Arc::new(Date32Array::from(
                rows.iter().map(|r| r.5).collect::<Vec<_>>(),
            )) as _,
        ),
    ])
    .unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// A domain over `rows` with a DP scenario that can pay for many queries.
fn domain_of(rows: &[Row]) -> (tempfile::TempDir, Domain, i64) {
    let (dir, domain) = empty_domain();
    let path = dir.path().join("t.parquet");
    parquet(&path, rows);
    catalog::add(&domain, PROVIDER, &path, &policy()).unwrap();
    let id = sandbox_tests::approved_scenario(
        &domain,
        "independence",
        "t",
        &["id", "g", "i", "f", "s", "d"],
        "dp",
        100.0,
    );
    // Most generated queries are refused: usage monitoring would suspend the scenario.
    scenarios::set_usage_settings(
        &domain,
        OPERATOR,
        scenarios::UsageSettings {
            max_refusals: 0,
            idle_days: 90,
        },
    )
    .unwrap();
    (dir, domain, id)
}

fn pick(xs: &'static [&'static str]) -> BoxedStrategy<String> {
    proptest::sample::select(xs).prop_map(String::from).boxed()
}

/// Numeric expressions: columns, literals at the edges, operators and functions, nested.
fn numeric() -> BoxedStrategy<String> {
    let leaf = pick(&[
        "i",
        "f",
        "0",
        "-1",
        "2",
        "0.5",
        "9223372036854775807",
        "(-9223372036854775807 - 1)",
        "1e308",
        "-1e308",
        "NULL",
    ]);
    leaf.prop_recursive(3, 24, 3, |inner| {
        let text = text_leaf();
        prop_oneof![
            (
                inner.clone(),
                pick(&["+", "-", "*", "/", "%"]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            (inner.clone(), pick(&["/", "%"]), pick(&["2", "3", "0.5"]))
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            (
                pick(&[
                    "abs", "ceil", "floor", "round", "trunc", "sqrt", "ln", "log", "log10", "log2",
                    "exp", "signum", "-"
                ]),
                inner.clone()
            )
                .prop_map(|(f, a)| format!("{f}({a})")),
            (
                pick(&[
                    "power", "pow", "round", "log", "coalesce", "nullif", "greatest", "least",
                    "trunc"
                ]),
                inner.clone(),
                inner.clone()
            )
                .prop_map(|(f, a, b)| format!("{f}({a}, {b})")),
            (
                pick(&["length", "char_length", "character_length"]),
                text.clone()
            )
                .prop_map(|(f, t)| format!("{f}({t})")),
            (pick(&["year", "month", "day", "dow", "epoch"]), date_leaf())
                .prop_map(|(p, d)| format!("date_part('{p}', {d})")),
            (predicate_leaf(), inner.clone(), inner.clone())
                .prop_map(|(p, a, b)| format!("CASE WHEN {p} THEN {a} ELSE {b} END")),
        ]
    })
    .boxed()
}

fn text_leaf() -> BoxedStrategy<String> {
    let leaf = pick(&["s", "g", "''", "'王伟'", "'-1'", "'abc'"]);
    prop_oneof![
        3 => leaf.clone(),
        1 => (
            pick(&["lower", "upper", "trim", "btrim", "ltrim", "rtrim"]),
            leaf.clone()
        )
            .prop_map(|(f, t)| format!("{f}({t})")),
        1 => (
            pick(&["substr", "substring", "left", "right"]),
            leaf.clone(),
            pick(&["0", "-1", "2", "i", "9223372036854775807", "(-9223372036854775807 - 1)"])
        )
            .prop_map(|(f, t, n)| format!("{f}({t}, {n})")),
        1 => (
            leaf.clone(),
            pick(&["1", "i", "-1"]),
            pick(&["2", "i", "-1", "9223372036854775807"])
        )
            .prop_map(|(t, a, b)| format!("substr({t}, {a}, {b})")),
        1 => (leaf.clone(), leaf).prop_map(|(a, b)| format!("concat({a}, {b})")),
    ]
    .boxed()
}

fn date_leaf() -> BoxedStrategy<String> {
    prop_oneof![
        3 => Just("d".to_string()),
        1 => Just("DATE '2020-02-29'".to_string()),
        1 => pick(&["year", "month", "day"]).prop_map(|p| format!("date_trunc('{p}', d)")),
        1 => pick(&["1 day", "100000 years", "-100000 years"])
            .prop_map(|i| format!("(d + INTERVAL '{i}')")),
    ]
    .boxed()
}

fn predicate_leaf() -> BoxedStrategy<String> {
    prop_oneof![
        (
            pick(&["i", "f"]),
            pick(&["<", "<=", "=", "<>", ">"]),
            pick(&["0", "-1", "2.5"])
        )
            .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        (text_leaf(), pick(&["=", "<>", "<"]), text_leaf())
            .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        (text_leaf(), pick(&["'%a%'", "'x%'", "''"])).prop_map(|(t, p)| format!("{t} LIKE {p}")),
        (
            pick(&["starts_with", "ends_with"]),
            text_leaf(),
            text_leaf()
        )
            .prop_map(|(f, a, b)| format!("{f}({a}, {b})")),
        (date_leaf(), pick(&["<", ">="]), date_leaf())
            .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        pick(&["i", "f", "s", "d"]).prop_map(|c| format!("{c} IS NULL")),
        Just("g IN ('a', 'b')".to_string()),
    ]
    .boxed()
}

fn predicate() -> BoxedStrategy<String> {
    prop_oneof![
        3 => predicate_leaf(),
        2 => (numeric(), pick(&["<", ">=", "=", "<>"]), numeric())
            .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        1 => (predicate_leaf(), pick(&["AND", "OR"]), predicate_leaf())
            .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
        1 => predicate_leaf().prop_map(|p| format!("NOT ({p})")),
        1 => (numeric(), numeric(), numeric())
            .prop_map(|(a, b, c)| format!("{a} BETWEEN {b} AND {c}")),
    ]
    .boxed()
}

/// A whole query: one or two aggregates, maybe a filter, maybe grouped.
fn query() -> BoxedStrategy<String> {
    let aggregate = prop_oneof![
        Just("COUNT(*)".to_string()),
        numeric().prop_map(|e| format!("COUNT({e})")),
        numeric().prop_map(|e| format!("SUM({e})")),
        numeric().prop_map(|e| format!("AVG({e})")),
        pick(&["SUM(i)", "AVG(f)", "SUM(f)", "VAR_SAMP(i)", "STDDEV(f)"]),
    ];
    (
        proptest::collection::vec(aggregate, 1..3),
        proptest::option::of(predicate()),
        any::<bool>(),
    )
        .prop_map(|(aggs, filter, grouped)| {
            let filter = filter.map(|p| format!(" WHERE {p}")).unwrap_or_default();
            let aggs = aggs.join(", ");
            match grouped {
                true => format!("SELECT g, {aggs} FROM t{filter} GROUP BY g"),
                false => format!("SELECT {aggs} FROM t{filter}"),
            }
        })
        .boxed()
}

/// How a query ended: answered, or refused at planning (with its rule), or failed.
fn outcome(domain: &Domain, scenario_id: i64, sql: &str) -> String {
    let request = QueryRequest {
        scenario_id,
        job_id: None,
        actor: DEVELOPER,
        sql,
        epsilon: Some(0.01),
    };
    match mediate::answer(domain, &request) {
        Ok(_) => "answered".into(),
        Err(Error::Refused(r)) => format!("refused {}", r.rule),
        Err(e) => format!("failed: {e}"),
    }
}

/// Over generated queries, the dataset and each neighbour (one more row at the edges of
/// every type) end every query alike: all answer, or all refuse it at planning with the
/// same rule (or, for a failure that is not the data's, such as a literal overflowing, all
/// fail).
#[test]
fn whether_a_query_fails_does_not_depend_on_the_data() {
    let base = ordinary();
    let mut domains = vec![domain_of(&base)];
    for extreme in extremes() {
        let mut rows = base.clone();
        rows.push(extreme);
        domains.push(domain_of(&rows));
    }
    let cases: u32 = std::env::var("SANDBOX_INDEPENDENCE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let answered = std::cell::Cell::new(0u32);
    let failed = std::cell::Cell::new(0u32);
    runner
        .run(&query(), |sql| {
            let outcomes: Vec<String> = domains
                .iter()
                .map(|(_, domain, id)| outcome(domain, *id, &sql))
                .collect();
            prop_assert!(
                outcomes.iter().all(|o| *o == outcomes[0]),
                "{sql}: {outcomes:#?}"
            );
            // A failure after planning is allowed only as above, alike on every dataset
            // (a literal that overflows, say): reported to a module in one fixed form,
            // its charge kept (`a_failure_after_planning_is_reported_alike_and_stays_charged`).
            if outcomes[0] == "answered" {
                answered.set(answered.get() + 1);
            }
            if outcomes[0].starts_with("failed") {
                failed.set(failed.get() + 1);
            }
            Ok(())
        })
        .unwrap();
    println!(
        "{cases} queries: {} answered, {} failed alike after planning",
        answered.get(),
        failed.get()
    );
    // The property is not met by refusing everything.
    assert!(
        answered.get() * 4 > cases,
        "only {} of {cases} queries answered",
        answered.get()
    );
}

/// A module that asks one query and logs the response (answer or error) as its one line.
fn query_and_log(sql: &str) -> Vec<u8> {
    sandbox_tests::wat(&format!(
        r#"(module
        (import "sandbox" "query" (func $query (param i32 i32) (result i32)))
        (import "sandbox" "response_len" (func $len (result i32)))
        (import "sandbox" "response_read" (func $read (param i32 i32) (result i32)))
        (import "sandbox" "log" (func $log (param i32 i32 i32) (result i32)))
        (memory (export "memory") 4)
        (data (i32.const 0) "{sql}")
        (func (export "run") (result i32) (local $n i32)
          (drop (call $query (i32.const 0) (i32.const {len})))
          (local.set $n (call $len))
          (drop (call $read (i32.const 4096) (local.get $n)))
          (drop (call $log (i32.const 2) (i32.const 4096) (local.get $n)))
          (i32.const 0)))"#,
        len = sql.len(),
    ))
}

/// A query that fails after planning (here: the stored file replaced, once the scenario's
/// planning state holds its schema, by one whose values no longer fit it) is reported to
/// the module in one fixed form, whatever broke and whatever the data holds, and its
/// charge stands.
#[test]
fn a_failure_after_planning_is_reported_alike_and_stays_charged() {
    let mut seen = Vec::new();
    for income in ["not a number", "-1"] {
        let f = sandbox_tests::Fixture::new();
        // Planned once: the schema is held from here on.
        f.ask("SELECT COUNT(*) FROM residents").unwrap();
        let spent = || {
            sandbox_runtime::privacy::ledger::balance(&f.domain.conn().unwrap(), f.scenario.id)
                .unwrap()
                .epsilon_spent
        };
        let before = spent();
        let version = catalog::get(&f.domain, DEVELOPER, "residents").unwrap();
        let text = |v: &str| Arc::new(StringArray::from(vec![v; 20])) as ArrayRef;
        let batch = RecordBatch::try_from_iter([
            ("citizen_id", text("120101198001010011")),
            ("phone", text("13800000000")),
            ("district", text("heping")),
            ("age", Arc::new(Int64Array::from(vec![40; 20])) as _),
            (
                "income",
                Arc::new(arrow::array::BinaryArray::from(vec![income.as_bytes(); 20])) as _,
            ),
        ])
        .unwrap();
        // Written as the version's own file: encrypted with its key, bound to it.
        let key =
            sandbox_store::datakeys::get(&f.domain.conn().unwrap(), "residents", version.version)
                .unwrap()
                .unwrap();
        let props = parquet::file::properties::WriterProperties::builder()
            .with_file_encryption_properties(
                sandbox_mediator::atrest::encryption("residents", version.version, &key, 0)
                    .unwrap(),
            )
            .build();
        let file = std::fs::File::create(version.data_files()[0].as_path()).unwrap();
        let mut w =
            parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let sql = "SELECT district, AVG(income) FROM residents GROUP BY district";
        let report = f
            .submit(
                &query_and_log(sql),
                "{}",
                sandbox_runtime::wasm::JobLimits::default(),
            )
            .unwrap();
        assert_eq!(report.status, "succeeded", "{report:?}");
        let line = sandbox_runtime::jobs::logs(&f.domain, OPERATOR, &report.id).unwrap()[0]
            .text
            .clone();
        assert!(line.contains("the query failed inside the host"), "{line}");
        assert!(!line.contains(income), "{line}");
        seen.push(line);
        let after = spent();
        assert!(
            after > before,
            "the failed query's charge stands: {before} -> {after}"
        );
    }
    assert_eq!(seen[0], seen[1], "reported alike whatever the data");
}
