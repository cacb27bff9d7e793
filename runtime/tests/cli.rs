//! The `sandbox` binary as a person uses it: commands, exit codes, messages.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::process::{Command, Output};

fn sandbox(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("SANDBOX_AS")
        .output()
        .unwrap()
}

fn add_dataset(data: &Path, file: &Path, policy: &Path) -> Output {
    let (file, policy) = (file.to_string_lossy(), policy.to_string_lossy());
    sandbox(
        data,
        &[
            "--as", "prov", "dataset", "add", "--file", &file, "--policy", &policy,
        ],
    )
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn cli_flow_with_typed_failures() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    ok(sandbox(&data, &["init"]));
    // Initialising twice is refused.
    let again = sandbox(&data, &["init"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    ok(sandbox(
        &data,
        &["principal", "add", "ops", "--role", "operator"],
    ));
    ok(sandbox(
        &data,
        &[
            "--as",
            "ops",
            "principal",
            "add",
            "prov",
            "--role",
            "provider",
        ],
    ));
    // Only an operator adds principals.
    let refused = sandbox(
        &data,
        &[
            "--as",
            "prov",
            "principal",
            "add",
            "x",
            "--role",
            "developer",
        ],
    );
    assert!(!refused.status.success());

    let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policies/residents.toml");
    let bad = tmp.path().join("bad.csv");
    std::fs::write(&bad, "citizen_id,phone,district,age,income\n1,2,hexi,3\n").unwrap();
    let out = add_dataset(&data, &bad, &policy);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.csv"), "{err}");

    let good = tmp.path().join("residents.csv");
    std::fs::write(&good, sandbox_synth::residents_csv(100, 3)).unwrap();
    let text = ok(add_dataset(&data, &good, &policy));
    assert!(
        text.contains("registered residents version 1: 100 rows"),
        "{text}"
    );
    let list = ok(sandbox(&data, &["--json", "dataset", "list"]));
    let v: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(v[0]["name"], "residents");
    // Emergency stop of the domain: a provider may not, an operator may; then lifted.
    let refused = sandbox(
        &data,
        &["--as", "prov", "stop", "domain", "--reason", "test"],
    );
    assert!(!refused.status.success());
    let stop = ok(sandbox(
        &data,
        &[
            "--as", "ops", "--json", "stop", "domain", "--reason", "drill",
        ],
    ));
    let stop: serde_json::Value = serde_json::from_str(&stop).unwrap();
    assert_eq!(stop["scope"], "domain");
    let id = stop["id"].as_i64().unwrap().to_string();
    let lifted = ok(sandbox(
        &data,
        &["--as", "ops", "stop", "lift", &id, "--reason", "drill over"],
    ));
    assert!(lifted.contains("stop lifted"), "{lifted}");
    let audit = ok(sandbox(&data, &["audit", "verify"]));
    assert!(audit.contains("audit log verified"), "{audit}");
}
