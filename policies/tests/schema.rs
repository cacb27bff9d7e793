//! The committed JSON Schemas match the types. `SANDBOX_BLESS=1` rewrites them.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

fn check(file: &str, schema: serde_json::Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schema")
        .join(file);
    let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
    if std::env::var_os("SANDBOX_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        committed, text,
        "{file} is out of date: run SANDBOX_BLESS=1 cargo test -p sandbox-policies --test schema"
    );
}

#[test]
fn policy_schema_is_current() {
    let schema = sandbox_policies::policy_schema();
    assert!(schema["properties"]["column"].is_object());
    check("policy.schema.json", schema);
}

#[test]
fn scenario_schema_is_current() {
    let schema = sandbox_policies::scenario_schema();
    assert!(schema["properties"]["budget"].is_object());
    check("scenario.schema.json", schema);
}
