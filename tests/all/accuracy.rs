//! Released numbers as a careful statistician would give them: counts are non-negative
//! integers, averages, variances and quantiles of too few values are withheld (NULL, not a
//! bound), each noisy column names its 95 % interval and the unit its policy has it
//! rounded to, and the job's queries record all of it for the reviewer and the manifest.

use arrow::array::{Array, Float64Array, Int64Array};
use sandbox_tests::{DEVELOPER, OPERATOR, PROVIDER, empty_domain, pums_dir, repo_root};

fn meta(a: &sandbox_runtime::mediate::Answer, column: &str, key: &str) -> Option<String> {
    a.batch
        .schema()
        .field_with_name(column)
        .unwrap()
        .metadata()
        .get(key)
        .cloned()
}

fn floats<'a>(a: &'a sandbox_runtime::mediate::Answer, column: &str) -> &'a Float64Array {
    let i = a.batch.schema().index_of(column).unwrap();
    a.batch
        .column(i)
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap()
}

#[test]
fn averages_of_nobody_are_withheld_and_counts_are_never_negative() {
    let f = sandbox_tests::pums_fixture();
    // No one is over 200: every cell is empty. Standard deviations and medians are
    // withheld in every cell, never shown as a bound. An average is withheld unless its
    // cell's noisy count comes out at nine noise scales or more (both of its intervals
    // then fit): with probability e^-9 / 2 per cell, so at most one cell in a run is
    // allowed (two would happen once in about ten million runs).
    for _ in 0..6 {
        let a = f
            .ask(
                "SELECT educ, COUNT(*) AS n, AVG(income) AS avg_income, STDDEV(age) AS sd, \
                 MEDIAN(age) AS median_age FROM pums WHERE age > 200 GROUP BY educ",
            )
            .unwrap();
        assert_eq!(a.batch.num_rows(), 16);
        for column in ["sd", "median_age"] {
            let i = a.batch.schema().index_of(column).unwrap();
            assert_eq!(a.batch.column(i).null_count(), 16, "{column}");
            assert_eq!(
                meta(&a, column, "sandbox.withheld").as_deref(),
                Some("16"),
                "{column}"
            );
        }
        let i = a.batch.schema().index_of("avg_income").unwrap();
        let withheld = a.batch.column(i).null_count();
        assert!(withheld >= 15, "{withheld}");
        assert_eq!(
            meta(&a, "avg_income", "sandbox.withheld"),
            Some(withheld.to_string())
        );
        let i = a.batch.schema().index_of("n").unwrap();
        let n = a
            .batch
            .column(i)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert!(n.iter().all(|v| v.is_some_and(|v| v >= 0)));
    }
}

#[test]
fn noisy_columns_name_their_interval_and_rounding() {
    let f = sandbox_tests::pums_fixture();
    let a = f
        .ask("SELECT COUNT(*) AS n, AVG(age) AS avg_age, SUM(income) AS total FROM pums")
        .unwrap();
    // ε 1 over four statistics (count(*), sum(age), count(age), sum(income)), k = 1:
    // the count's discrete Laplace has scale 4, its 95 % half-width 4 · ln 20.
    let scale: f64 = meta(&a, "n", "sandbox.noise_scale")
        .unwrap()
        .parse()
        .unwrap();
    let h: f64 = meta(&a, "n", "sandbox.ci95").unwrap().parse().unwrap();
    assert!((h - scale * 20f64.ln()).abs() < 0.01 * h, "{scale} {h}");
    assert_eq!(meta(&a, "n", "sandbox.rounding").as_deref(), Some("1"));
    // The average of 1,000 ages is worth reporting: shown, with an interval narrower
    // than a year and a rounding unit one digit below the interval's leading digit.
    let avg = floats(&a, "avg_age").value(0);
    assert!((0.0..=100.0).contains(&avg));
    let h_avg: f64 = meta(&a, "avg_age", "sandbox.ci95")
        .unwrap()
        .parse()
        .unwrap();
    assert!(h_avg > 0.0 && h_avg < 5.0, "{h_avg}");
    let unit: f64 = meta(&a, "avg_age", "sandbox.rounding")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(unit, 10f64.powi(h_avg.log10().floor() as i32 - 1));
    assert_eq!(meta(&a, "avg_age", "sandbox.withheld"), None);
    // A sum of incomes (never negative) is not shown negative.
    assert!(floats(&a, "total").value(0) >= 0.0);
    // The job's record keeps it for the reviewer and the manifest.
    let conn = sandbox_tests::raw(&f.domain);
    let accuracy: String = conn
        .query_row(
            "SELECT accuracy_json FROM queries WHERE status = 'answered' ORDER BY created_at DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let accuracy: serde_json::Value = serde_json::from_str(&accuracy).unwrap();
    let columns: Vec<&str> = accuracy
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["column"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["n", "avg_age", "total"]);
    assert_eq!(accuracy[1]["rounding"].as_f64(), Some(unit));
}

#[test]
fn a_policy_can_ask_for_numbers_as_drawn() {
    let (dir, domain) = empty_domain();
    let policy = std::fs::read_to_string(repo_root().join("examples/policies/pums.toml")).unwrap()
        + "\n[disclosure]\nrounding = \"none\"\n";
    sandbox_runtime::catalog::add(&domain, PROVIDER, &pums_dir().join("PUMS_pid.csv"), &policy)
        .unwrap();
    let today = chrono::Utc::now().date_naive();
    let text = format!(
        r#"name = "as-drawn"
purpose = "Age statistics from the census sample"
valid_from = "{today}"
valid_until = "{until}"
response_plan = "the operator's duty officer is called; the scenario's jobs are stopped; the developer notifies the data bureau within the hour"
[budget]
epsilon = 10.0
epsilon_per_query = 1.0
[[dataset]]
name = "pums"
columns = ["pid", "age", "educ"]
[agreement]
rights_and_obligations = "the developer uses the data for the stated purpose only and keeps the products' scope"
security_requirements = "no attempt to re-identify anyone; credentials kept by the named developer only"
legal_basis = "the data bureau's authorization of the public data operation"
breach = "suspension of the scenario, revocation of the authorization and liability under the agreement"
"#,
        until = today.succ_opt().unwrap()
    );
    let s = sandbox_runtime::scenarios::apply(&domain, DEVELOPER, &text).unwrap();
    let s = sandbox_tests::approve(&domain, &s.id.to_string()).unwrap();
    let a = sandbox_tests::ask_in(&domain, s.id, "SELECT AVG(age) AS avg_age FROM pums").unwrap();
    assert!(meta(&a, "avg_age", "sandbox.ci95").is_some());
    assert_eq!(meta(&a, "avg_age", "sandbox.rounding"), None);
    drop(dir);
}

/// A module may ask for its answers as drawn (`query_unrounded`), for its own arithmetic;
/// what it stages follows the policy's rounding rule all the same: the table passed
/// through is staged rounded to the units its answer named, and every staged number is
/// one the job was given (the provenance check traces it).
#[test]
fn answers_asked_for_as_drawn_are_staged_rounded() {
    let f = sandbox_tests::Fixture::new();
    let module = sandbox_tests::guest_module("income_by_district");
    let report = f
        .submit(
            &module,
            r#"{"as_drawn": true}"#,
            sandbox_runtime::wasm::JobLimits::default(),
        )
        .unwrap();
    assert_eq!(report.status, "succeeded", "{report:?}");
    let table = report.outputs.iter().find(|o| o.kind == "table").unwrap();
    let staged = sandbox_runtime::jobs::staged_file(&f.domain, table).unwrap();
    let batches = sandbox_runtime::wasm::decode_ipc(&staged).unwrap();
    let batch = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    // The answer as recorded: its units, and its numbers as drawn (not on those units).
    let conn = sandbox_tests::raw(&f.domain);
    let (answer, accuracy): (String, String) = conn
        .query_row(
            "SELECT answer_json, accuracy_json FROM queries WHERE job_id = ?1",
            [&report.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let accuracy: serde_json::Value = serde_json::from_str(&accuracy).unwrap();
    let unit = |column: &str| {
        accuracy
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["column"] == column)
            .and_then(|c| c["rounding"].as_f64())
            .unwrap()
    };
    let on_unit = |v: f64, u: f64| ((v / u).round() * u - v).abs() <= 1e-9 * v.abs().max(1.0);
    let drawn: Vec<f64> = serde_json::from_str::<serde_json::Value>(&answer)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["avg_income"].as_f64())
        .collect();
    let u = unit("avg_income");
    assert!(u > 1.0, "{u}");
    assert!(drawn.iter().any(|v| !on_unit(*v, u)), "{drawn:?} {u}");
    // As staged: every average on its unit, and the counts on theirs.
    let averages = floats_of(&batch, "avg_income");
    assert!(averages.iter().flatten().count() > 0);
    for v in averages.iter().flatten() {
        assert!(on_unit(*v, u), "{v} is not a multiple of {u}");
    }
    let n_unit = unit("residents");
    for v in floats_of(&batch, "residents").iter().flatten() {
        assert!(on_unit(*v, n_unit), "{v} {n_unit}");
    }
    // The rounded numbers are ones the job was given: provenance passes.
    let o = sandbox_runtime::jobs::output(&f.domain, OPERATOR, &table.id).unwrap();
    let checks = o.checks.unwrap();
    let provenance = checks["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["check"] == "provenance")
        .unwrap();
    assert_eq!(provenance["outcome"], "pass", "{checks}");
}

fn floats_of(batch: &arrow::array::RecordBatch, column: &str) -> Vec<Option<f64>> {
    let i = batch.schema().index_of(column).unwrap();
    let column =
        arrow::compute::cast(batch.column(i), &arrow::datatypes::DataType::Float64).unwrap();
    column
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap()
        .iter()
        .collect()
}
