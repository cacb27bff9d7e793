//! Refusals and acceptances pinned by a golden file, and answers that are aggregates only.

use std::fmt::Write as _;

use sandbox_runtime::Error;
use sandbox_runtime::mediate::{self, QueryRequest};
use sandbox_tests::{DEVELOPER, Fixture, repo_root};

/// How a golden file's queries are judged.
#[derive(Clone, Copy)]
enum Mode {
    /// The policy pass only: nothing runs, nothing is charged.
    Check,
    /// The whole query path: accepted queries run and report their answer's shape.
    Answer,
}

fn verdict(f: &Fixture, sql: &str, mode: Mode) -> String {
    let refused = |r: &mediate::Refusal| match &r.column {
        Some(c) => format!("refused {} column={c}", r.rule),
        None => format!("refused {}", r.rule),
    };
    match mode {
        Mode::Check => match mediate::check(
            &f.domain,
            sandbox_tests::DEVELOPER,
            &f.scenario.id.to_string(),
            sql,
        ) {
            Ok(a) => format!(
                "accepted dataset={} groups=[{}] aggregates={}",
                a.datasets(),
                a.group_keys
                    .iter()
                    .map(|g| g.label())
                    .collect::<Vec<_>>()
                    .join(","),
                a.requested.len()
            ),
            Err(Error::Refused(r)) => refused(&r),
            Err(e) => panic!("{sql}: unexpected error {e}"),
        },
        Mode::Answer => match f.ask(sql) {
            Ok(a) => {
                let schema = a.batch.schema();
                let columns: Vec<String> = schema
                    .fields()
                    .iter()
                    .map(|c| format!("{}:{}", c.name(), c.data_type()))
                    .collect();
                format!(
                    "rows={} columns=[{}] mechanism={}",
                    a.batch.num_rows(),
                    columns.join(", "),
                    a.mechanism
                )
            }
            Err(Error::Refused(r)) => refused(&r),
            Err(e) => panic!("{sql}: unexpected error {e}"),
        },
    }
}

/// Runs a golden file. Each block: `query`, SQL lines, `----`, the verdict line. Set
/// SANDBOX_BLESS=1 to rewrite the verdicts from the current behaviour (then review the
/// diff).
fn run_golden(f: &Fixture, file: &str, mode: Mode, min_cases: usize) {
    run_golden_with(&f.domain, file, min_cases, |_, sql| verdict(f, sql, mode));
}

/// Runs a golden file with verdicts from `verdict`, which gets the block's tag (the words
/// after `query`, if any) and its SQL.
pub(crate) fn run_golden_with(
    domain: &sandbox_runtime::Domain,
    file: &str,
    min_cases: usize,
    mut verdict: impl FnMut(&str, &str) -> String,
) {
    // The corpus is mostly refusals under one scenario: usage monitoring would suspend it.
    sandbox_runtime::scenarios::set_usage_settings(
        domain,
        sandbox_tests::OPERATOR,
        sandbox_runtime::scenarios::UsageSettings {
            max_refusals: 0,
            idle_days: 90,
        },
    )
    .unwrap();
    let path = repo_root().join("tests/golden").join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut actual = String::new();
    let mut lines = text.lines().peekable();
    let mut cases = 0;
    while let Some(line) = lines.next() {
        let Some(tag) = line
            .strip_prefix("query")
            .filter(|t| t.is_empty() || t.starts_with(' '))
        else {
            writeln!(actual, "{line}").unwrap();
            continue;
        };
        let mut sql = Vec::new();
        for l in lines.by_ref() {
            if l == "----" {
                break;
            }
            sql.push(l);
        }
        let _expected = lines.next();
        let sql = sql.join("\n");
        writeln!(actual, "{line}\n{sql}\n----\n{}", verdict(tag.trim(), &sql)).unwrap();
        cases += 1;
    }
    if std::env::var_os("SANDBOX_BLESS").is_some() {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    assert!(cases >= min_cases, "{file} has only {cases} cases");
    if actual != text {
        let diff: Vec<String> = text
            .lines()
            .zip(actual.lines())
            .filter(|(a, b)| a != b)
            .map(|(a, b)| format!("- {a}\n+ {b}"))
            .collect();
        panic!("{file}: verdicts changed:\n{}", diff.join("\n"));
    }
}

#[test]
fn golden_mediation_residents() {
    run_golden(&Fixture::new(), "mediation.slt", Mode::Check, 50);
}

#[test]
fn golden_pums_corpus() {
    run_golden(&sandbox_tests::pums_fixture(), "pums.slt", Mode::Answer, 80);
}

#[test]
fn required_refusals_are_typed_and_charge_nothing() {
    let f = Fixture::new();
    for (sql, rule, column) in [
        (
            "SELECT * FROM residents",
            mediate::Rule::RowLevelOutput,
            Some("citizen_id"),
        ),
        (
            "SELECT income FROM residents",
            mediate::Rule::RowLevelOutput,
            Some("income"),
        ),
        (
            "SELECT COUNT(*) FROM residents WHERE citizen_id = '120101196505080007'",
            mediate::Rule::ColumnAccess,
            Some("citizen_id"),
        ),
    ] {
        match f.ask(sql) {
            Err(Error::Refused(r)) => {
                assert_eq!(r.rule, rule, "{sql}");
                assert_eq!(r.column.as_deref(), column, "{sql}");
            }
            other => panic!("{sql}: expected a refusal, got {other:?}"),
        }
    }
    let conn = sandbox_tests::raw(&f.domain);
    let b = sandbox_runtime::privacy::ledger::balance(&f.domain.conn().unwrap(), f.scenario.id)
        .unwrap();
    assert_eq!(b.epsilon_spent, 0.0);
    let refused = sandbox_tests::count(
        &conn,
        "SELECT COUNT(*) FROM queries WHERE status = 'refused'",
    );
    assert_eq!(refused, 3);
    let audited = sandbox_tests::count(
        &conn,
        "SELECT COUNT(*) FROM audit_events WHERE action = 'query.refused'",
    );
    assert_eq!(audited, 3);
}

#[test]
fn answers_are_noisy_aggregates_over_public_cells_with_their_epsilon() {
    let f = Fixture::new();
    let a = f.ask("SELECT district, COUNT(*) AS n, AVG(income) AS avg_income FROM residents GROUP BY district ORDER BY district",
    )
    .unwrap();
    let b = &a.batch;
    // Every declared district, in order, whether or not the data has it.
    assert_eq!(b.num_rows(), 6);
    assert_eq!(b.schema().field(0).name(), "district");
    assert_eq!(b.schema().metadata()["sandbox.epsilon"], "1");
    let noise: serde_json::Value =
        serde_json::from_str(&b.schema().metadata()["sandbox.noise"]).unwrap();
    assert_eq!(noise[0]["statistic"], "count(*)");
    assert_eq!(noise[0]["scale"], 3.0);
    assert_eq!(a.noise.len(), 3, "COUNT, and SUM and COUNT for AVG");
    let eps: f64 = a.noise.iter().map(|n| n.epsilon).sum();
    assert!((eps - 1.0).abs() < 1e-9, "{eps}");
    // Count noise at ε/3 per statistic, k = 1: scale 3.
    assert!((a.noise[0].scale - 3.0).abs() < 1e-9, "{:?}", a.noise);
    let total: i64 = sandbox_tests::ints(b, 1).iter().sum();
    // 2000 residents; six cells of Laplace(3) noise cannot move the total by 200.
    assert!((total - 2000).abs() < 200, "{total}");
}

#[test]
fn post_processing_runs_on_the_noisy_table() {
    let f = Fixture::new();
    let a = f.ask("SELECT district, SUM(income) / 1000 AS k_income FROM residents GROUP BY district HAVING COUNT(*) > 0 ORDER BY k_income DESC LIMIT 2",
    )
    .unwrap();
    assert_eq!(a.batch.num_rows(), 2);
    assert_eq!(a.batch.num_columns(), 2);
}

#[test]
fn outside_the_validity_window_is_refused() {
    let (dir, domain) = sandbox_tests::empty_domain();
    sandbox_tests::add_residents(&domain, dir.path(), 200);
    let text = sandbox_tests::scenario_text("expired", 1.0, 1.0)
        .replace("valid_from = \"", "valid_from = \"2020-01-01\"\n#")
        .replace("valid_until = \"", "valid_until = \"2020-12-31\"\n#");
    let s = sandbox_runtime::scenarios::apply(&domain, DEVELOPER, &text).unwrap();
    let s = sandbox_tests::approve(&domain, &s.id.to_string()).unwrap();
    let r = mediate::answer(
        &domain,
        &QueryRequest {
            scenario_id: s.id,
            job_id: None,
            actor: DEVELOPER,
            sql: "SELECT COUNT(*) FROM residents",
            epsilon: None,
        },
    );
    assert!(
        matches!(r, Err(Error::Refused(ref r)) if r.rule == mediate::Rule::Scenario),
        "{r:?}"
    );
}

#[test]
fn desensitized_columns_are_what_queries_see_and_compute() {
    let (dir, domain) = sandbox_tests::empty_domain();
    // District generalized to its first two letters: heping, hedong, hexi, hebei → "he".
    let policy = sandbox_cli::demo::RESIDENTS_POLICY.replace(
        "categories = [\"heping\", \"hedong\", \"hexi\", \"nankai\", \"hebei\", \"hongqiao\"]",
        "categories = [\"he\", \"na\", \"ho\"]\ndesensitize = { kind = \"prefix\", length = 2 }",
    );
    let csv = dir.path().join("r.csv");
    std::fs::write(&csv, sandbox_synth::residents_csv(3000, 5)).unwrap();
    sandbox_runtime::catalog::add(&domain, sandbox_tests::PROVIDER, &csv, &policy).unwrap();
    let s = sandbox_runtime::scenarios::apply(
        &domain,
        DEVELOPER,
        &sandbox_tests::scenario_text("prefix", 10.0, 10.0),
    )
    .unwrap();
    let s = sandbox_tests::approve(&domain, &s.id.to_string()).unwrap();
    let a = mediate::answer(
        &domain,
        &QueryRequest {
            scenario_id: s.id,
            job_id: None,
            actor: DEVELOPER,
            sql: "SELECT district, COUNT(*) AS n, COUNT(DISTINCT citizen_id) AS units FROM residents GROUP BY district ORDER BY district",
            epsilon: None,
        },
    )
    .unwrap();
    let districts = a
        .batch
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .unwrap();
    let keys: Vec<&str> = districts.iter().map(|v| v.unwrap()).collect();
    assert_eq!(keys, vec!["he", "ho", "na"]);
    let n = sandbox_tests::ints(&a.batch, 1);
    // Four of the six districts start with "he": about two thirds of 3000 residents.
    assert!((n[0] - 2000).abs() < 250, "{n:?}");
    // Units are counted over pseudonyms: one per resident here.
    let units = sandbox_tests::ints(&a.batch, 2);
    assert!((units[0] - n[0]).abs() < 100, "{units:?} {n:?}");
}

/// A domain whose residents policy declares no district categories, with `n` residents,
/// and a scenario that allows δ per query.
fn private_keys_fixture(
    n: usize,
    delta_per_query: f64,
) -> (tempfile::TempDir, sandbox_runtime::Domain, i64) {
    let (dir, domain) = sandbox_tests::empty_domain();
    let policy = sandbox_cli::demo::RESIDENTS_POLICY.replace(
        "categories = [\"heping\", \"hedong\", \"hexi\", \"nankai\", \"hebei\", \"hongqiao\"]\n",
        "",
    );
    let csv = dir.path().join("r.csv");
    std::fs::write(&csv, sandbox_synth::residents_csv(n, 9)).unwrap();
    sandbox_runtime::catalog::add(&domain, sandbox_tests::PROVIDER, &csv, &policy).unwrap();
    let text = sandbox_tests::scenario_text("private-keys", 10.0, 1.0).replace(
        "epsilon_per_query = 1",
        &format!("epsilon_per_query = 1\ndelta = 0.0001\ndelta_per_query = {delta_per_query}"),
    );
    let s = sandbox_runtime::scenarios::apply(&domain, DEVELOPER, &text).unwrap();
    let s = sandbox_tests::approve(&domain, &s.id.to_string()).unwrap();
    (dir, domain, s.id)
}

#[test]
fn keys_from_the_data_need_delta_and_pass_a_threshold() {
    // Without δ: refused, nothing charged.
    let (_d, domain, id) = private_keys_fixture(600, 0.0);
    match sandbox_tests::ask_in(
        &domain,
        id,
        "SELECT district, COUNT(*) FROM residents GROUP BY district",
    ) {
        Err(Error::Refused(r)) => assert_eq!(r.rule, mediate::Rule::GroupKeysNotPublic),
        other => panic!("{other:?}"),
    }
    // With δ: the six districts (about 100 residents each) pass τ; δ is charged.
    let (_d, domain, id) = private_keys_fixture(600, 1e-6);
    let a = sandbox_tests::ask_in(
        &domain,
        id,
        "SELECT district, COUNT(*) AS n, AVG(income) FROM residents GROUP BY district ORDER BY district",
    )
    .unwrap();
    assert_eq!(a.batch.num_rows(), 6);
    assert_eq!(a.delta, 1e-6);
    assert_eq!(a.batch.schema().metadata()["sandbox.delta"], "0.000001");
    let b = sandbox_runtime::privacy::ledger::balance(&domain.conn().unwrap(), id).unwrap();
    assert!((b.delta_spent - 1e-6).abs() < 1e-12, "{b:?}");
    assert!(a.noise.iter().any(|n| n.mechanism == "laplace_threshold"));
}

#[test]
fn rare_keys_from_the_data_are_not_released() {
    // Eight residents in six districts: no district has enough people to pass τ.
    let (_d, domain, id) = private_keys_fixture(8, 1e-6);
    let a = sandbox_tests::ask_in(
        &domain,
        id,
        "SELECT district, COUNT(*) FROM residents GROUP BY district",
    )
    .unwrap();
    assert_eq!(a.batch.num_rows(), 0);
}

#[test]
fn released_statistics_carry_their_noise_scale() {
    let f = Fixture::new();
    let a = f
        .ask("SELECT district, COUNT(*) AS n FROM residents GROUP BY district")
        .unwrap();
    let field = a.batch.schema().field_with_name("n").unwrap().clone();
    // ε 1 on one count with k = 1: discrete Laplace of scale 1.
    assert_eq!(
        field
            .metadata()
            .get("sandbox.noise_scale")
            .map(String::as_str),
        Some("1")
    );
}

#[test]
fn joins_on_the_privacy_unit_are_bounded_after_the_join() {
    let f = sandbox_tests::pums_fixture();
    // PUMS_dup repeats persons up to four times; its policy keeps two rows per person, so
    // the join keeps at most two rows per person: 1,582 rows (1,948 unbounded).
    let mut total = 0i64;
    let runs = 5;
    for _ in 0..runs {
        let a = f
            .ask("SELECT COUNT(*) AS n FROM pums a JOIN pums_dup b ON a.pid = b.pid")
            .unwrap();
        total += sandbox_tests::ints(&a.batch, 0)[0];
        // Sensitivity follows the bound: k = 2 rows per unit, so the count's scale is 2.
        assert_eq!(a.noise[0].sensitivity, 2.0);
    }
    let mean = total as f64 / runs as f64;
    assert!((mean - 1582.0).abs() < 15.0, "mean {mean}");
    let e = mediate::explain(
        &f.domain,
        sandbox_tests::DEVELOPER,
        &f.scenario.id.to_string(),
        "SELECT COUNT(*) FROM pums a JOIN pums_dup b ON a.pid = b.pid",
        None,
    )
    .unwrap();
    assert!(e.bounding);
    assert_eq!(e.dataset, "pums+pums_dup");
}

#[test]
fn one_dataset_is_bounded_by_the_rank_recorded_at_ingest() {
    let f = sandbox_tests::pums_fixture();
    // PUMS_dup: 1,948 rows of 1,000 persons, bounded to two rows each: 1,582 rows.
    let mut total = 0i64;
    for _ in 0..5 {
        let a = f.ask("SELECT COUNT(*) FROM pums_dup").unwrap();
        total += sandbox_tests::ints(&a.batch, 0)[0];
    }
    let mean = total as f64 / 5.0;
    assert!((mean - 1582.0).abs() < 15.0, "mean {mean}");
    // The rank column is internal: a module cannot name it.
    match f.ask("SELECT SUM(__sandbox_rank) FROM pums_dup") {
        Err(Error::Refused(r)) => assert_eq!(r.rule, mediate::Rule::UnknownColumn),
        other => panic!("{other:?}"),
    }
}

fn texts(batch: &arrow::array::RecordBatch, i: usize) -> Vec<String> {
    let col = arrow::compute::cast(batch.column(i), &arrow::datatypes::DataType::Utf8).unwrap();
    let col = col
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .unwrap();
    col.iter().map(|v| v.unwrap_or("").to_string()).collect()
}

#[test]
fn generalizing_group_keys_are_computed_from_the_categories() {
    let f = sandbox_tests::pums_fixture();
    // educ declares 1..16: the bands are 0..4, whatever the data holds.
    let a = f
        .ask("SELECT educ / 4 AS band, COUNT(*) AS n FROM pums GROUP BY educ / 4 ORDER BY band")
        .unwrap();
    assert_eq!(texts(&a.batch, 0), ["0", "1", "2", "3", "4"]);
    assert_eq!(a.delta, 0.0);
    let e = mediate::explain(
        &f.domain,
        sandbox_tests::DEVELOPER,
        &f.scenario.id.to_string(),
        "SELECT CASE WHEN educ <= 9 THEN 'school' ELSE 'college' END, sex, COUNT(*) FROM pums GROUP BY CASE WHEN educ <= 9 THEN 'school' ELSE 'college' END, sex",
        None,
    )
    .unwrap();
    assert_eq!(e.cells, 4);
    assert!(!e.thresholded);

    // Without categories, an expression's keys come from the data: refused without δ,
    // released by τ-thresholding with it.
    let sql = "SELECT substr(district, 1, 2) AS p, COUNT(*) FROM residents GROUP BY substr(district, 1, 2) ORDER BY p";
    let (_d, domain, id) = private_keys_fixture(600, 0.0);
    match sandbox_tests::ask_in(&domain, id, sql) {
        Err(Error::Refused(r)) => {
            assert_eq!(r.rule, mediate::Rule::GroupKeysNotPublic);
            assert_eq!(r.column.as_deref(), Some("district"));
        }
        other => panic!("{other:?}"),
    }
    let (_d, domain, id) = private_keys_fixture(600, 1e-6);
    let a = sandbox_tests::ask_in(&domain, id, sql).unwrap();
    assert_eq!(texts(&a.batch, 0), ["he", "ho", "na"]);
    assert_eq!(a.delta, 1e-6);
}

#[test]
fn values_inside_aggregates_get_bounds_from_their_columns() {
    let f = sandbox_tests::pums_fixture();
    let sensitivity = |sql: &str| {
        mediate::explain(
            &f.domain,
            sandbox_tests::DEVELOPER,
            &f.scenario.id.to_string(),
            sql,
            None,
        )
        .unwrap()
        .statistics[0]
            .sensitivity
    };
    // income in [0, 500000], age in [0, 100], one row per person. Each is the bound, and
    // a hair more: what the exact sum rounds (a millionth per value, and the total's one
    // rounding to a float).
    let assert_sensitivity = |got: f64, bound: f64| {
        assert!(
            got >= bound && got - bound <= 1e-5 + 1e-9 * bound,
            "{got} for a bound of {bound}"
        );
    };
    assert_sensitivity(sensitivity("SELECT SUM(income * age) FROM pums"), 5e7);
    assert_sensitivity(
        sensitivity("SELECT SUM(income - 600000) FROM pums"),
        600000.0,
    );
    assert_sensitivity(sensitivity("SELECT SUM(income / 1000) FROM pums"), 500.0);
    assert_sensitivity(
        sensitivity("SELECT SUM(CASE WHEN married = 1 THEN income END) FROM pums"),
        500000.0,
    );
    assert_sensitivity(
        sensitivity("SELECT SUM(CASE WHEN age >= 65 THEN 1 ELSE 0 END) FROM pums"),
        1.0,
    );
    assert_sensitivity(sensitivity("SELECT SUM(ABS(age - 30)) FROM pums"), 70.0);
    // The expression computes what SQL says: a conditional sum of ones is a filtered count.
    let mut diff = 0;
    for _ in 0..3 {
        let a = f
            .ask("SELECT SUM(CASE WHEN age >= 65 THEN 1 ELSE 0 END) FROM pums")
            .unwrap();
        let b = f.ask("SELECT COUNT(*) FROM pums WHERE age >= 65").unwrap();
        diff += (sandbox_tests::ints(&a.batch, 0)[0] - sandbox_tests::ints(&b.batch, 0)[0]).abs();
    }
    assert!(diff < 40, "{diff}");
    let months = f.ask("SELECT AVG(age * 12) FROM pums").unwrap();
    let years = f.ask("SELECT AVG(age) FROM pums").unwrap();
    let m = arrow::array::cast::as_primitive_array::<arrow::datatypes::Float64Type>(
        months.batch.column(0),
    )
    .value(0);
    let y = arrow::array::cast::as_primitive_array::<arrow::datatypes::Float64Type>(
        years.batch.column(0),
    )
    .value(0);
    assert!((m - 12.0 * y).abs() < 20.0, "{m} vs 12 × {y}");
}

#[test]
fn ctes_and_subqueries_keep_the_per_unit_bound() {
    let f = sandbox_tests::pums_fixture();
    // PUMS_dup: 1,948 rows of 1,000 persons, two kept per person: 1,582 rows, whether the
    // query reads the dataset directly or through a CTE that drops the unit column.
    let mut total = 0i64;
    for _ in 0..5 {
        let a = f
            .ask("WITH d AS (SELECT sex, income FROM pums_dup) SELECT COUNT(*) FROM (SELECT * FROM d) x")
            .unwrap();
        total += sandbox_tests::ints(&a.batch, 0)[0];
        assert_eq!(a.noise[0].sensitivity, 2.0);
    }
    let mean = total as f64 / 5.0;
    assert!((mean - 1582.0).abs() < 15.0, "mean {mean}");
    // Renaming the unit does not make it a filter column.
    match f
        .ask("WITH t AS (SELECT pid AS person FROM pums) SELECT COUNT(*) FROM t WHERE person = 'x'")
    {
        Err(Error::Refused(r)) => {
            assert_eq!(r.rule, mediate::Rule::ColumnAccess);
            assert_eq!(r.column.as_deref(), Some("pid"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn groups_per_unit_are_bounded_by_rewriting() {
    // 120 residents with four rows each, every row in another district.
    let (dir, domain) = sandbox_tests::empty_domain();
    let districts = ["heping", "hedong", "hexi", "nankai", "hebei", "hongqiao"];
    let mut csv = String::from("citizen_id,phone,district,age,income\n");
    for u in 0..120 {
        for r in 0..4 {
            let d = districts[(u + r) % districts.len()];
            csv.push_str(&format!("P{u:05},1380000{u:04},{d},40,1000\n"));
        }
    }
    let path = dir.path().join("multi.csv");
    std::fs::write(&path, csv).unwrap();
    let base = sandbox_cli::demo::RESIDENTS_POLICY
        .replace("max_rows_per_unit = 1", "max_rows_per_unit = 4");
    let bounded = base.replace(
        "max_rows_per_unit = 4",
        "max_rows_per_unit = 4\nmax_groups_per_unit = 1",
    );
    let total = |policy: &str| -> (i64, mediate::Explanation) {
        let (_d, domain) = sandbox_tests::empty_domain();
        sandbox_runtime::catalog::add(&domain, sandbox_tests::PROVIDER, &path, policy).unwrap();
        let s = sandbox_runtime::scenarios::apply(
            &domain,
            DEVELOPER,
            &sandbox_tests::scenario_text("groups", 10.0, 1.0),
        )
        .unwrap();
        let s = sandbox_tests::approve(&domain, &s.id.to_string()).unwrap();
        let sql = "SELECT district, COUNT(*) FROM residents GROUP BY district";
        let a = sandbox_tests::ask_in(&domain, s.id, sql).unwrap();
        let e = mediate::explain(
            &domain,
            sandbox_tests::DEVELOPER,
            &s.id.to_string(),
            sql,
            None,
        )
        .unwrap();
        (sandbox_tests::ints(&a.batch, 1).iter().sum(), e)
    };
    // Without the bound, every row counts (480); with one group per unit, one row each
    // (120). Noise: six cells of scale 4.
    let (all, e) = total(&base);
    assert!((all - 480).abs() < 80, "{all}");
    assert_eq!(e.groups_per_unit, None);
    let (one, e) = total(&bounded);
    assert!((one - 120).abs() < 80, "{one}");
    assert_eq!(e.groups_per_unit, Some(1));
    assert!(
        e.to_string()
            .contains("at most 1 group(s) per privacy unit")
    );
    drop(domain);
}

#[test]
fn a_suspended_principal_gets_no_further_answers() {
    let f = sandbox_tests::Fixture::new();
    f.ask("SELECT COUNT(*) FROM residents").unwrap();
    sandbox_runtime::identity::set_status(
        &f.domain,
        sandbox_tests::OPERATOR,
        sandbox_tests::DEVELOPER,
        sandbox_runtime::identity::Status::Suspended,
        "qualification under review",
    )
    .unwrap();
    match f.ask("SELECT COUNT(*) FROM residents") {
        Err(sandbox_runtime::Error::Refused(r)) => {
            assert!(r.to_string().contains("suspended"), "{r}")
        }
        other => panic!("answered a suspended developer: {other:?}"),
    }
    let refused = sandbox_tests::count(
        &sandbox_tests::raw(&f.domain),
        "SELECT COUNT(*) FROM queries WHERE status = 'refused'",
    );
    assert_eq!(refused, 1);
}

/// A chain of operators is a tree as deep as it is long: past the bound it is refused from
/// the tokens, before the parser or the planner walk it; at the bound it is answered, on
/// a test thread's stack in a debug build.
#[test]
fn long_operator_chains_are_refused_and_the_longest_allowed_is_answered() {
    let f = Fixture::new();
    let bound = sandbox_mediator::query::MAX_OPERATORS;
    let chain = |n: usize| format!("SELECT SUM(income{}) AS s FROM residents", " / 2".repeat(n));
    let a = f.ask(&chain(bound)).unwrap();
    assert_eq!(a.batch.num_rows(), 1);
    match f.ask(&chain(bound + 1)) {
        Err(Error::Refused(r)) => {
            assert_eq!(r.rule.as_str(), "syntax");
            assert!(r.message.contains("operators"), "{}", r.message);
        }
        other => panic!("{other:?}"),
    }
    let filters = vec!["age > 1"; bound / 2 + 1].join(" AND ");
    match f.ask(&format!(
        "SELECT COUNT(*) AS n FROM residents WHERE {filters}"
    )) {
        Err(Error::Refused(r)) => assert_eq!(r.rule.as_str(), "syntax"),
        other => panic!("{other:?}"),
    }
}
