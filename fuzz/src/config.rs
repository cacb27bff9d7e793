//! Policy and scenario TOML: any text parses to a typed value or a typed error, never a
//! panic; what parses writes back to TOML that parses to the same value (what a
//! provider or a developer reads back is what the domain holds); a policy is checked
//! against the schema of `people` as ingest would.

use sandbox_policies::{ColumnType, Policy, Scenario};

/// The schema a parsed policy is checked against.
const SCHEMA: &[(&str, ColumnType)] = &[
    ("id", ColumnType::Utf8),
    ("phone", ColumnType::Utf8),
    ("district", ColumnType::Utf8),
    ("age", ColumnType::Int),
    ("income", ColumnType::Float),
    ("name", ColumnType::Utf8),
    ("born", ColumnType::Temporal),
];

/// The target: the first byte chooses policy or scenario, the rest is the text.
pub fn run(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    if which % 2 == 0 {
        policy(text);
    } else {
        scenario(text);
    }
}

/// One policy text.
pub fn policy(text: &str) {
    let Ok(policy) = Policy::from_toml_str(text) else {
        return;
    };
    let written = policy
        .to_toml_string()
        .unwrap_or_else(|e| panic!("a parsed policy does not write back: {e}\n{policy:?}"));
    let again = Policy::from_toml_str(&written)
        .unwrap_or_else(|e| panic!("a written policy does not parse: {e}\n{written}"));
    assert_eq!(policy, again, "a policy changed on its way through TOML");
    let _ = policy.validate_against(SCHEMA);
}

/// One scenario text.
pub fn scenario(text: &str) {
    let Ok(scenario) = Scenario::from_toml_str(text) else {
        return;
    };
    let written = toml::to_string(&scenario)
        .unwrap_or_else(|e| panic!("a parsed scenario does not write back: {e}\n{scenario:?}"));
    let again = Scenario::from_toml_str(&written)
        .unwrap_or_else(|e| panic!("a written scenario does not parse: {e}\n{written}"));
    assert_eq!(
        scenario, again,
        "a scenario changed on its way through TOML"
    );
}
