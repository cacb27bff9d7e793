//! The demo path end to end, with the real example module.

use sandbox_runtime::mediate::Rule;
use sandbox_tests::guest_module;

#[test]
fn demo_runs_end_to_end_and_releases_a_verified_product() {
    let module = guest_module("income_by_district");
    let dir = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    let summary = sandbox_cli::demo::run_in(
        &dir.path().join("d"),
        &module,
        3000,
        sandbox_core::Suite::Standard,
        sandbox_core::Lang::En,
        &mut out,
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    // A person can follow it: refusals, ε, the product and its manifest.
    assert!(text.contains("refuses"), "{text}");
    assert!(text.contains("ε spent 1.00 of 3.00"), "{text}");
    assert!(text.contains("manifest.json"), "{text}");
    assert!(text.contains("hash chain verified"), "{text}");
    let rules: Vec<Rule> = summary.refusals.iter().map(|r| r.rule).collect();
    assert_eq!(
        rules,
        vec![
            Rule::RowLevelOutput,
            Rule::RowLevelOutput,
            Rule::ColumnAccess,
            Rule::UnknownColumn,
            Rule::AggregateNotAllowed
        ]
    );
    assert!((summary.epsilon_spent - 1.0).abs() < 1e-9);
    // The product verifies on its own, from its folder.
    let manifest = sandbox_runtime::review::verify_product(&summary.product_dir, None).unwrap();
    assert_eq!(
        manifest["datasets"][0]["provider"],
        "Municipal Public Security Bureau"
    );
    assert_eq!(manifest["approvals"].as_array().unwrap().len(), 2);
    assert_eq!(manifest["queries"][0]["epsilon"], 1.0);
}
