//! Threshold mode: exact aggregates, with small cells, dominated sums and cells a margin
//! would reveal suppressed.

use std::collections::HashMap;

use sandbox_runtime::mediate::Rule;
use sandbox_runtime::{Error, catalog, scenarios};
use sandbox_tests::{DEVELOPER, OPERATOR, PROVIDER, ask_in, empty_domain, ints};

fn threshold_domain(csv_text: &str) -> (tempfile::TempDir, sandbox_runtime::Domain, i64) {
    let (dir, domain) = empty_domain();
    let policy = sandbox_cli::demo::RESIDENTS_POLICY
        .replace("mode = \"dp\"", "mode = \"threshold\"")
        .replace("min_group_size = 10", "min_group_size = 10\np_ratio = 0.1");
    let csv = dir.path().join("r.csv");
    std::fs::write(&csv, csv_text).unwrap();
    catalog::add(&domain, PROVIDER, &csv, &policy).unwrap();
    let text = sandbox_tests::scenario_text("threshold", 1.0, 1.0)
        .replace("[budget]", "mode = \"threshold\"\n[budget]");
    let s = scenarios::apply(&domain, DEVELOPER, &text).unwrap();
    let s = scenarios::decide(&domain, OPERATOR, &s.id.to_string(), true, None).unwrap();
    (dir, domain, s.id)
}

fn keys(batch: &arrow::array::RecordBatch) -> Vec<String> {
    batch
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .unwrap()
        .iter()
        .map(|v| v.unwrap().to_string())
        .collect()
}

#[test]
fn large_cells_are_exact_and_cost_no_epsilon() {
    let csv = sandbox_synth::residents_csv(3000, 11);
    let mut truth: HashMap<String, i64> = HashMap::new();
    for r in sandbox_synth::residents(3000, 11) {
        *truth.entry(r.district).or_default() += 1;
    }
    let (_d, domain, id) = threshold_domain(&csv);
    let a = ask_in(
        &domain,
        id,
        "SELECT district, COUNT(*) AS n FROM residents GROUP BY district ORDER BY district",
    )
    .unwrap();
    assert_eq!(a.epsilon, 0.0);
    assert_eq!(a.mechanism, "threshold");
    let n = ints(&a.batch, 1);
    for (k, n) in keys(&a.batch).iter().zip(n) {
        assert_eq!(truth[k], n, "{k}");
    }
    let b = sandbox_runtime::privacy::ledger::balance(&domain.conn().unwrap(), id).unwrap();
    assert_eq!(b.epsilon_spent, 0.0);
}

/// Twelve residents in each of three districts, incomes 1,000 each.
fn base_rows() -> Vec<String> {
    let mut rows = vec!["citizen_id,phone,district,age,income".to_string()];
    let mut i = 0;
    for d in ["heping", "hexi", "nankai"] {
        for _ in 0..12 {
            i += 1;
            rows.push(format!(
                "{},13800000000,{d},40,1000",
                sandbox_synth::resident_id("120101", 1980, 1, 1, i)
            ));
        }
    }
    rows
}

#[test]
fn a_small_cell_is_suppressed_with_a_second_cell() {
    let mut rows = base_rows();
    // Three residents in a fourth district: below min_group_size.
    for i in 100..103 {
        rows.push(format!(
            "{},13800000000,hebei,40,1000",
            sandbox_synth::resident_id("120105", 1980, 1, 1, i)
        ));
    }
    let (_d, domain, id) = threshold_domain(&(rows.join("\n") + "\n"));
    let a = ask_in(
        &domain,
        id,
        "SELECT district, COUNT(*) FROM residents GROUP BY district",
    )
    .unwrap();
    let released = keys(&a.batch);
    assert!(!released.contains(&"hebei".to_string()), "{released:?}");
    // A total over all districts minus the released ones would reveal hebei: one more
    // cell is suppressed.
    assert_eq!(released.len(), 2, "{released:?}");
    let suppressed: serde_json::Value =
        serde_json::from_str(&a.batch.schema().metadata()["sandbox.suppressed"]).unwrap();
    assert_eq!(suppressed["small_cell"], 1);
    assert_eq!(suppressed["secondary"], 1);
}

#[test]
fn a_dominated_sum_is_suppressed() {
    let mut rows = base_rows();
    // One resident of hexi earns 400,000: with the others' 11,000 the top two hold 97%.
    rows.push(format!(
        "{},13800000000,hexi,40,400000",
        sandbox_synth::resident_id("120103", 1970, 1, 1, 200)
    ));
    let (_d, domain, id) = threshold_domain(&(rows.join("\n") + "\n"));
    let a = ask_in(
        &domain,
        id,
        "SELECT district, SUM(income) FROM residents GROUP BY district",
    )
    .unwrap();
    let released = keys(&a.batch);
    assert!(!released.contains(&"hexi".to_string()), "{released:?}");
    let suppressed: serde_json::Value =
        serde_json::from_str(&a.batch.schema().metadata()["sandbox.suppressed"]).unwrap();
    assert_eq!(suppressed["dominance"], 1, "{suppressed}");
    // The count of the same cells is not a sum: hexi is released there.
    let a = ask_in(
        &domain,
        id,
        "SELECT district, COUNT(*) FROM residents GROUP BY district",
    )
    .unwrap();
    assert!(keys(&a.batch).contains(&"hexi".to_string()));
}

#[test]
fn single_values_are_refused_in_threshold_mode() {
    let (_d, domain, id) = threshold_domain(&(base_rows().join("\n") + "\n"));
    match ask_in(&domain, id, "SELECT MAX(income) FROM residents") {
        Err(Error::Refused(r)) => assert_eq!(r.rule, Rule::AggregateNotAllowed),
        other => panic!("{other:?}"),
    }
    match ask_in(&domain, id, "SELECT income FROM residents") {
        Err(Error::Refused(r)) => assert_eq!(r.rule, Rule::RowLevelOutput),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_differencing_pair_is_refused() {
    let mut rows = base_rows();
    // One resident aged 70: the second query leaves out exactly that person.
    rows.push(format!(
        "{},13800000000,heping,70,250000",
        sandbox_synth::resident_id("120101", 1956, 1, 1, 300)
    ));
    let (_d, domain, id) = threshold_domain(&(rows.join("\n") + "\n"));
    ask_in(&domain, id, "SELECT COUNT(*), SUM(income) FROM residents").unwrap();
    match ask_in(
        &domain,
        id,
        "SELECT COUNT(*), SUM(income) FROM residents WHERE age < 70",
    ) {
        Err(Error::Refused(r)) => {
            assert_eq!(r.rule, Rule::Differencing, "{r}");
            // The refusal must not say how many units differ (here: one).
            assert!(!r.message.contains(" 1 unit"), "{r}");
            assert!(r.message.contains("fewer than 10 differ"), "{r}");
        }
        other => panic!("{other:?}"),
    }
    // A filter that differs by many units is fine, and so is the same filter again.
    ask_in(
        &domain,
        id,
        "SELECT COUNT(*) FROM residents WHERE district = 'hexi'",
    )
    .unwrap();
    ask_in(&domain, id, "SELECT COUNT(*), SUM(income) FROM residents").unwrap();
}
