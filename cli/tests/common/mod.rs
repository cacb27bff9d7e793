//! What the CLI's tests share: the `sandbox` binary on a data directory, through a
//! server, and `sandbox serve` as a process.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, dead_code)]

use std::path::Path;
use std::process::{Command, Output};

pub fn sandbox(data: &Path, args: &[&str]) -> Output {
    isolated(&mut Command::new(env!("CARGO_BIN_EXE_sandbox")))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("SANDBOX_AS")
        .output()
        .unwrap()
}

/// The environment every command of the tests runs in, whatever the machine's: no
/// settings file, English messages.
pub fn isolated(c: &mut Command) -> &mut Command {
    for var in [
        "SANDBOX_CONFIG",
        "SANDBOX_LANG",
        "LC_ALL",
        "LC_MESSAGES",
        "SANDBOX_MASTER_KEY_FILE",
    ] {
        c.env_remove(var);
    }
    c.env("LANG", "C.UTF-8")
        .env("XDG_CONFIG_HOME", "/nonexistent-sandbox-config")
}

pub fn add_dataset(data: &Path, file: &Path, policy: &Path) -> Output {
    let (file, policy) = (file.to_string_lossy(), policy.to_string_lossy());
    sandbox(
        data,
        &[
            "--as", "prov", "dataset", "add", "--file", &file, "--policy", &policy,
        ],
    )
}

pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `sandbox serve` as a process, with JSON logs; the CLI against it with `--server`.
pub struct Served {
    pub child: std::process::Child,
    pub url: String,
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
}

/// Keeps every line a process writes to `stderr` (until it ends) in the returned text.
pub fn keep_log(
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStderr>>,
) -> std::sync::Arc<std::sync::Mutex<String>> {
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    log
}

impl Served {
    pub fn start(data: &Path) -> Served {
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
        let log = keep_log(lines);
        Served { child, url, log }
    }

    /// Stops the server the way an init system does (SIGTERM) and waits for it.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
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

pub fn remote(url: &str, token: &str, args: &[&str]) -> Output {
    isolated(&mut Command::new(env!("CARGO_BIN_EXE_sandbox")))
        .args(["--server", url])
        .args(args)
        .env("SANDBOX_TOKEN", token)
        .env_remove("SANDBOX_AS")
        .env("SANDBOX_DATA_DIR", "/nonexistent")
        .output()
        .unwrap()
}

pub fn token(data: &Path, name: &str) -> String {
    let out = ok(sandbox(
        data,
        &["--as", "ops", "--json", "token", "issue", name],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["token"].as_str().unwrap().to_string()
}

/// `sandbox init` on `data` and the four principals the tests act as: ops (operator),
/// prov (provider), dev (developer), sup (supervisor).
pub fn init_with_principals(data: &Path) {
    init_with_principals_on(data, &[]);
}

/// [`init_with_principals`] with more arguments to `sandbox init` (where the metadata
/// store is, say).
pub fn init_with_principals_on(data: &Path, init: &[&str]) {
    let mut args = vec!["init"];
    args.extend_from_slice(init);
    ok(sandbox(data, &args));
    ok(sandbox(
        data,
        &["principal", "add", "ops", "--role", "operator"],
    ));
    for (name, role) in [
        ("prov", "provider"),
        ("dev", "developer"),
        ("sup", "supervisor"),
    ] {
        ok(sandbox(
            data,
            &["--as", "ops", "principal", "add", name, "--role", role],
        ));
    }
}

/// The example scenario (income by district) written to `spec`, valid from today for 30
/// days, with `budget` (ε in all, ε per query) when given.
pub fn write_example_scenario(spec: &Path, budget: Option<(f64, f64)>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let today = chrono::Utc::now().date_naive();
    let text = std::fs::read_to_string(root.join("examples/scenarios/income-by-district.toml"))
        .unwrap()
        .lines()
        .map(|l| {
            if l.starts_with("valid_from") {
                format!("valid_from = {today}")
            } else if l.starts_with("valid_until") {
                format!("valid_until = {}", today + chrono::Duration::days(30))
            } else if let (Some((e, _)), true) = (budget, l.starts_with("epsilon =")) {
                format!("epsilon = {e:?}")
            } else if let (Some((_, q)), true) = (budget, l.starts_with("epsilon_per_query =")) {
                format!("epsilon_per_query = {q:?}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(spec, text).unwrap();
}

/// The example module (income by district), built by `scripts/build-guests.sh`.
pub fn example_module() -> std::path::PathBuf {
    let module = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/modules/target/wasm32-unknown-unknown/release/income_by_district.wasm");
    assert!(
        module.exists(),
        "build the example modules first (scripts/build-guests.sh)"
    );
    module
}

/// `job submit` of the example module under the example scenario through a server, with
/// `--json` and `extra` arguments.
pub fn submit_example(url: &str, token: &str, extra: &[&str]) -> Output {
    submit_module(url, token, &example_module(), extra)
}

/// `job submit` of `module` under the example scenario through a server, with `--json`
/// and `extra` arguments.
pub fn submit_module(url: &str, token: &str, module: &Path, extra: &[&str]) -> Output {
    let module = module.to_string_lossy();
    let mut args = vec![
        "--json",
        "job",
        "submit",
        "--scenario",
        "income-by-district",
        "--module",
        &module,
    ];
    args.extend_from_slice(extra);
    remote(url, token, &args)
}

/// A domain in `tmp/d` with the four principals, `rows` synthetic residents (generated with
/// `seed`) and the example scenario (income by district) with ε 100 (0.01 per query),
/// consented and approved; the principals' tokens (ops, dev, sup, prov).
pub fn example_domain(tmp: &Path, rows: usize, seed: u64) -> (std::path::PathBuf, [String; 4]) {
    example_domain_with(tmp, rows, seed, &[], Some((100.0, 0.01)))
}

/// [`example_domain`] made with more arguments to `sandbox init`, the scenario's budget
/// `budget` (ε in all, ε per query).
pub fn example_domain_with(
    tmp: &Path,
    rows: usize,
    seed: u64,
    init: &[&str],
    budget: Option<(f64, f64)>,
) -> (std::path::PathBuf, [String; 4]) {
    let data = tmp.join("d");
    init_with_principals_on(&data, init);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let csv = tmp.join("residents.csv");
    std::fs::write(&csv, sandbox_synth::residents_csv(rows, seed)).unwrap();
    ok(add_dataset(
        &data,
        &csv,
        &root.join("examples/policies/residents.toml"),
    ));
    let spec = tmp.join("scenario.toml");
    // A budget that lasts: most jobs do their work rather than stop at a spent budget.
    write_example_scenario(&spec, budget);
    ok(sandbox(
        &data,
        &[
            "--as",
            "dev",
            "scenario",
            "apply",
            "--file",
            &spec.to_string_lossy(),
        ],
    ));
    for who in ["prov", "sup"] {
        ok(sandbox(
            &data,
            &["--as", who, "scenario", "consent", "income-by-district"],
        ));
    }
    ok(sandbox(
        &data,
        &["--as", "ops", "scenario", "approve", "income-by-district"],
    ));
    let tokens = ["ops", "dev", "sup", "prov"].map(|n| token(&data, n));
    (data, tokens)
}

/// The test's own connection to a domain's metadata database (encrypted: its key from the
/// domain's keyring).
pub fn metadata_db(data: &Path) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(data.join("sandbox.db")).unwrap();
    let domain = sandbox_runtime::Domain::open(data).unwrap();
    if let Some(key) = domain.keys().database_key().unwrap() {
        db.execute_batch(&format!("PRAGMA key = \"x'{}'\";", hex::encode(key)))
            .unwrap();
    }
    db
}

/// A `sandbox` process (a server, a node of the cluster), its standard error kept.
pub struct Node {
    pub child: std::process::Child,
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Node {
    pub fn start(data: &Path, args: &[&str]) -> Node {
        use std::io::BufRead;
        let mut child = isolated(&mut Command::new(env!("CARGO_BIN_EXE_sandbox")))
            .arg("--data-dir")
            .arg(data)
            .args(args)
            .env("SANDBOX_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        Node {
            child,
            log: keep_log(lines),
        }
    }

    /// Waits until the log holds `needle`.
    pub fn wait_for(&mut self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let log = self.log.lock().unwrap().clone();
            if let Some(at) = log.find(needle) {
                return log[at..].lines().next().unwrap_or_default().to_string();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the process ended ({status}) before `{needle}`:\n{log}");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no `{needle}` in:\n{log}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    pub fn kill(&mut self, signal: &str) {
        Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        self.child.wait().unwrap();
    }

    /// A server's URL, from its log.
    pub fn url(&mut self) -> String {
        let line = self.wait_for("http://");
        line[line.find("http://").unwrap()..]
            .split_whitespace()
            .next()
            .unwrap()
            .trim_end_matches('"')
            .to_string()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
