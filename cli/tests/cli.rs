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
    let list = ok(sandbox(
        &data,
        &["--as", "prov", "--json", "dataset", "list"],
    ));
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

/// `sandbox serve` as a process, with JSON logs; the CLI against it with `--server`.
struct Served {
    child: std::process::Child,
    url: String,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Served {
    fn start(data: &Path) -> Served {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_sandbox"))
            .arg("--data-dir")
            .arg(data)
            .args([
                "--log-format",
                "json",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--jobs",
                "1",
            ])
            .env_remove("SANDBOX_LOG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let url = loop {
            let line = lines
                .next()
                .expect("the server ended before it served")
                .unwrap();
            if let Some(at) = line.find("http://") {
                break line[at..].trim().to_string();
            }
        };
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Served { child, url, log }
    }

    /// Stops the server the way an init system does (SIGTERM) and waits for it.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        let log = self.log.lock().unwrap().clone();
        (status, log)
    }
}

fn remote(url: &str, token: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args(["--server", url])
        .args(args)
        .env("SANDBOX_TOKEN", token)
        .env_remove("SANDBOX_AS")
        .env("SANDBOX_DATA_DIR", "/nonexistent")
        .output()
        .unwrap()
}

fn token(data: &Path, name: &str) -> String {
    let out = ok(sandbox(
        data,
        &["--as", "ops", "--json", "token", "issue", name],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["token"].as_str().unwrap().to_string()
}

#[test]
fn the_cli_works_through_a_server_and_the_server_logs_json_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    ok(sandbox(&data, &["init"]));
    ok(sandbox(
        &data,
        &["principal", "add", "ops", "--role", "operator"],
    ));
    for (name, role) in [
        ("prov", "provider"),
        ("dev", "developer"),
        ("sup", "supervisor"),
    ] {
        ok(sandbox(
            &data,
            &["--as", "ops", "principal", "add", name, "--role", role],
        ));
    }
    let (ops, prov, dev, sup) = (
        token(&data, "ops"),
        token(&data, "prov"),
        token(&data, "dev"),
        token(&data, "sup"),
    );
    let server = Served::start(&data);
    let url = server.url.clone();
    let who = ok(remote(&url, &dev, &["whoami"]));
    assert_eq!(who.trim(), "dev (developer, active)");
    // The provider registers the residents from CSV through the server.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let csv = tmp.path().join("residents.csv");
    std::fs::write(&csv, sandbox_synth::residents_csv(500, 5)).unwrap();
    let policy = root.join("examples/policies/residents.toml");
    let added = ok(remote(
        &url,
        &prov,
        &[
            "dataset",
            "add",
            "--file",
            &csv.to_string_lossy(),
            "--policy",
            &policy.to_string_lossy(),
        ],
    ));
    assert!(
        added.contains("registered residents version 1: 500 rows"),
        "{added}"
    );
    // The developer applies; the operator approves.
    let today = chrono::Utc::now().date_naive();
    let spec = tmp.path().join("scenario.toml");
    std::fs::write(
        &spec,
        std::fs::read_to_string(root.join("examples/scenarios/income-by-district.toml"))
            .unwrap()
            .lines()
            .map(|l| {
                if l.starts_with("valid_from") {
                    format!("valid_from = {today}")
                } else if l.starts_with("valid_until") {
                    format!("valid_until = {}", today + chrono::Duration::days(30))
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    ok(remote(
        &url,
        &dev,
        &["scenario", "apply", "--file", &spec.to_string_lossy()],
    ));
    let refused = remote(&url, &dev, &["scenario", "approve", "income-by-district"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not permitted"));
    ok(remote(
        &url,
        &ops,
        &["scenario", "approve", "income-by-district"],
    ));
    // The developer submits the example module and waits for it.
    let module =
        root.join("examples/modules/target/wasm32-unknown-unknown/release/income_by_district.wasm");
    assert!(
        module.exists(),
        "build the example modules first (scripts/build-guests.sh)"
    );
    let job = ok(remote(
        &url,
        &dev,
        &[
            "--json",
            "job",
            "submit",
            "--scenario",
            "income-by-district",
            "--module",
            &module.to_string_lossy(),
            "--wait",
            "60",
        ],
    ));
    let job: serde_json::Value = serde_json::from_str(&job).unwrap();
    assert_eq!(job["status"], "succeeded", "{job}");
    let id = job["id"].as_str().unwrap();
    assert!(ok(remote(&url, &dev, &["job", "status", id])).contains("succeeded"));
    assert!(ok(remote(&url, &dev, &["job", "list"])).contains(id));
    let out = job["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "table")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Both tiers approve; the product is downloaded and verified locally.
    let checks = ok(remote(&url, &ops, &["output", "checks", &out]));
    assert!(checks.contains("provenance"), "{checks}");
    ok(remote(
        &url,
        &ops,
        &["output", "approve", &out, "--reason", "fine"],
    ));
    let released = ok(remote(&url, &sup, &["output", "approve", &out]));
    assert!(released.contains("released"), "{released}");
    let products = ok(remote(&url, &dev, &["--json", "product", "list"]));
    let products: serde_json::Value = serde_json::from_str(&products).unwrap();
    let product = products[0]["id"].as_str().unwrap();
    let dir = tmp.path().join("product");
    ok(remote(
        &url,
        &dev,
        &[
            "product",
            "download",
            product,
            "--out",
            &dir.to_string_lossy(),
        ],
    ));
    let verified = ok(sandbox(
        &data,
        &["product", "verify", &dir.to_string_lossy()],
    ));
    assert!(verified.contains("verified"), "{verified}");
    // Refusals come back typed; a bad token never reaches anything.
    let no = remote(&url, &dev, &["output", "list"]);
    assert!(!no.status.success());
    let err = String::from_utf8_lossy(&no.stderr);
    assert_eq!(err.matches("not permitted").count(), 1, "{err}");
    // On the data directory and through the server, the same commands are refused for
    // the same principals, and allowed for the same ones.
    for args in [
        &["principal", "list"][..],
        &["scenario", "show", "income-by-district"][..],
    ] {
        let anonymous = sandbox(&data, args);
        assert!(!anonymous.status.success(), "{args:?} without --as");
        assert!(String::from_utf8_lossy(&anonymous.stderr).contains("--as"));
    }
    for out in [
        sandbox(&data, &["--as", "dev", "principal", "list"]),
        remote(&url, &dev, &["principal", "list"]),
        sandbox(&data, &["--as", "prov", "principal", "list"]),
        remote(&url, &prov, &["principal", "list"]),
    ] {
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.matches("not permitted").count(), 1, "{err}");
    }
    let local = ok(sandbox(
        &data,
        &["--as", "sup", "--json", "principal", "list"],
    ));
    let through = ok(remote(&url, &sup, &["--json", "principal", "list"]));
    assert_eq!(local, through);
    for (name, token) in [("dev", &dev), ("sup", &sup), ("prov", &prov)] {
        let local = ok(sandbox(
            &data,
            &["--as", name, "scenario", "show", "income-by-district"],
        ));
        let through = ok(remote(
            &url,
            token,
            &["scenario", "show", "income-by-district"],
        ));
        assert_eq!(local, through, "{name}");
    }
    let bad = remote(
        &url,
        &format!("sbx_{}_{}", "1".repeat(16), "2".repeat(64)),
        &["whoami"],
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not authenticated"));
    let local_only = remote(
        &url,
        &ops,
        &[
            "query",
            "check",
            "--scenario",
            "income-by-district",
            "SELECT 1",
        ],
    );
    assert!(String::from_utf8_lossy(&local_only.stderr).contains("server's machine"));
    // Identities are administered through the server too.
    let added = ok(remote(
        &url,
        &ops,
        &["principal", "add", "dev2", "--role", "developer"],
    ));
    assert!(added.contains("added dev2 (developer)"), "{added}");
    let issued = ok(remote(&url, &ops, &["--json", "token", "issue", "dev2"]));
    let issued: serde_json::Value = serde_json::from_str(&issued).unwrap();
    let dev2 = issued["token"].as_str().unwrap().to_string();
    assert_eq!(
        ok(remote(&url, &dev2, &["whoami"])).trim(),
        "dev2 (developer, active)"
    );
    assert!(ok(remote(&url, &dev2, &["token", "list"])).contains("dev2"));
    ok(remote(
        &url,
        &dev2,
        &[
            "token",
            "revoke",
            issued["id"].as_str().unwrap(),
            "--reason",
            "done",
        ],
    ));
    assert!(!remote(&url, &dev2, &["whoami"]).status.success());
    assert!(ok(remote(&url, &sup, &["audit", "verify"])).contains("verified by the server"));
    let usage = ok(remote(&url, &sup, &["usage", "show"]));
    assert!(usage.contains("income-by-district"), "{usage}");

    // SIGTERM ends the server cleanly; its log is one JSON object per line, a line per
    // request with its route template, status and principal, never a token.
    let (status, log) = server.stop();
    assert!(status.success(), "{status:?}\n{log}");
    let requests: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "request")
        .collect();
    assert!(requests.len() >= 15, "{log}");
    assert!(
        requests
            .iter()
            .any(|r| r["route"] == "/api/v1/outputs/{id}/approve"
                && r["status"] == 200
                && r["principal"] == "sup")
    );
    for t in [&ops, &dev, &sup, &prov] {
        assert!(!log.contains(t.as_str()));
    }
    assert!(ok(sandbox(&data, &["audit", "verify"])).contains("audit log verified"));
}
