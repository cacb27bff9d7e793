//! The `sandbox` binary as a person uses it: commands, exit codes, messages.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::Path;

use common::{
    Served, add_dataset, init_with_principals, ok, remote, sandbox, submit_example, token,
    write_example_scenario,
};

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
    // The ingest report follows the registration.
    assert!(
        text.contains("ingest report: 100 rows read, 100 stored"),
        "{text}"
    );
    assert!(text.contains("100 privacy units"), "{text}");
    assert!(
        text.contains("not stored (no query can see them): phone"),
        "{text}"
    );
    let shown = ok(sandbox(
        &data,
        &["--as", "prov", "dataset", "show", "residents"],
    ));
    assert!(shown.contains("ingest report"), "{shown}");
    // The same in Chinese: the CLI's own sentences, and the columns' uses as words.
    let zh = ok(sandbox(
        &data,
        &[
            "--lang",
            "zh-CN",
            "--as",
            "prov",
            "dataset",
            "show",
            "residents",
        ],
    ));
    assert!(
        zh.contains("入库报告：读取 100 行")
            && zh.contains("未存储（任何查询都看不到）：phone")
            && zh.contains("提供方：")
            && zh.contains("聚合"),
        "{zh}"
    );
    assert!(
        !zh.contains("ingest report") && !zh.contains("provider:") && !zh.contains("aggregate"),
        "{zh}"
    );
    // Lists have a header.
    let listed = ok(sandbox(&data, &["--as", "prov", "dataset", "list"]));
    assert!(listed.starts_with("NAME"), "{listed}");
    assert!(
        listed.lines().nth(1).unwrap().starts_with("residents"),
        "{listed}"
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
    let listed = ok(sandbox(&data, &["--as", "ops", "stop", "list"]));
    let lines: Vec<&str> = listed.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("REASON"),
        "{listed}"
    );
    assert!(
        lines[1].starts_with(&id) && lines[1].contains("drill"),
        "{listed}"
    );
    let lifted = ok(sandbox(
        &data,
        &["--as", "ops", "stop", "lift", &id, "--reason", "drill over"],
    ));
    assert!(lifted.contains("stop lifted"), "{lifted}");
    let listed = ok(sandbox(&data, &["--as", "ops", "stop", "list"]));
    assert_eq!(listed.trim(), "no stops in force");
    // A mistyped name gets the closest known one.
    let typo = sandbox(&data, &["--as", "opz", "stop", "list"]);
    assert!(!typo.status.success());
    let err = String::from_utf8_lossy(&typo.stderr);
    assert!(err.contains("did you mean `ops`?"), "{err}");
    let all = ok(sandbox(
        &data,
        &["--as", "ops", "--json", "stop", "list", "--all"],
    ));
    let all: serde_json::Value = serde_json::from_str(&all).unwrap();
    assert_eq!(all[0]["in_force"], false, "{all}");
    assert_eq!(all[0]["lifted_by"], "ops", "{all}");
    let audit = ok(sandbox(&data, &["audit", "verify"]));
    assert!(audit.contains("audit log verified"), "{audit}");
    // A reader that goes away ends the command quietly.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .arg("--data-dir")
        .arg(&data)
        .args(["--as", "ops", "--json", "audit", "log", "--limit", "1000"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_cli_works_through_a_server_and_the_server_logs_json_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    init_with_principals(&data);
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
    let spec = tmp.path().join("scenario.toml");
    write_example_scenario(&spec, None);
    ok(remote(
        &url,
        &dev,
        &["scenario", "apply", "--file", &spec.to_string_lossy()],
    ));
    // The provider and a supervisor record no objection (JZ Art. 11); the operator's
    // approval then makes the scenario usable.
    for t in [&prov, &sup] {
        ok(remote(
            &url,
            t,
            &["scenario", "consent", "income-by-district"],
        ));
    }
    let refused = remote(&url, &dev, &["scenario", "approve", "income-by-district"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("Not permitted"));
    ok(remote(
        &url,
        &ops,
        &["scenario", "approve", "income-by-district"],
    ));
    // A refusal says what is wrong in words, without the engine's internals.
    for (sql, says) in [
        ("SELEC 1", "Expected: an SQL statement, found: SELEC"),
        (
            "SELECT COUNT(*) FROM residents WHERE age >",
            "Expected: an expression",
        ),
    ] {
        let refused = sandbox(
            &data,
            &[
                "--as",
                "dev",
                "query",
                "check",
                "--scenario",
                "income-by-district",
                sql,
            ],
        );
        assert!(!refused.status.success());
        let err = String::from_utf8_lossy(&refused.stderr);
        assert!(err.contains(says), "{err}");
        assert!(
            !err.contains("ParserError")
                && !err.contains("SQL error:")
                && !err.contains("datafusion."),
            "{err}"
        );
    }
    // The developer submits the example module and waits for it.
    let job = ok(submit_example(&url, &dev, &["--wait", "60"]));
    let job: serde_json::Value = serde_json::from_str(&job).unwrap();
    assert_eq!(job["status"], "succeeded", "{job}");
    let id = job["id"].as_str().unwrap();
    assert!(ok(remote(&url, &dev, &["job", "status", id])).contains("succeeded"));
    let zh = ok(remote(
        &url,
        &dev,
        &["--lang", "zh-CN", "job", "status", id],
    ));
    assert!(zh.starts_with(&format!("任务 {id} 已成功")), "{zh}");
    assert!(!zh.contains("succeeded") && !zh.contains("output "), "{zh}");
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
    // The job's other output is reviewed as a request: the operator asks for changes, the
    // developer reads why, answers and resubmits; the new job continues the thread.
    let asked = ok(remote(
        &url,
        &ops,
        &[
            "review",
            "decide",
            id,
            "request-changes",
            "--reason",
            "Say which districts.",
        ],
    ));
    assert!(asked.contains("changes requested"), "{asked}");
    let thread = ok(remote(&url, &dev, &["review", "show", id]));
    assert!(thread.contains("awaiting the developer"), "{thread}");
    assert!(
        thread.contains("Request changes (operator review)"),
        "{thread}"
    );
    assert!(thread.contains("    Say which districts."), "{thread}");
    ok(remote(
        &url,
        &dev,
        &["review", "comment", id, "Done; resubmitted."],
    ));
    let again = ok(submit_example(
        &url,
        &dev,
        &["--wait", "60", "--resubmits", id],
    ));
    let again: serde_json::Value = serde_json::from_str(&again).unwrap();
    let again_id = again["id"].as_str().unwrap();
    let thread = ok(remote(&url, &ops, &["--json", "review", "show", again_id]));
    let thread: serde_json::Value = serde_json::from_str(&thread).unwrap();
    assert_eq!(thread["jobs"].as_array().unwrap().len(), 2, "{thread}");
    assert_eq!(
        thread["awaiting"],
        serde_json::json!(["operator"]),
        "{thread}"
    );
    let twice = submit_example(&url, &dev, &["--wait", "60", "--resubmits", id]);
    assert!(!twice.status.success());
    assert!(
        String::from_utf8_lossy(&twice.stderr).contains("already answered"),
        "{}",
        String::from_utf8_lossy(&twice.stderr)
    );
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
    // Tables as Excel and WPS open them, locally and through the server, beside the
    // signed files (which still verify).
    let xlsx_dir = tmp.path().join("product-xlsx");
    ok(remote(
        &url,
        &dev,
        &[
            "product",
            "download",
            product,
            "--out",
            &xlsx_dir.to_string_lossy(),
            "--format",
            "xlsx",
        ],
    ));
    let sheet = std::fs::read(xlsx_dir.join("income_by_district.xlsx")).unwrap();
    assert_eq!(&sheet[..2], b"PK");
    ok(sandbox(
        &data,
        &["product", "verify", &xlsx_dir.to_string_lossy()],
    ));
    let csv_path = tmp.path().join("table.csv");
    ok(remote(
        &url,
        &ops,
        &[
            "output",
            "download",
            &out,
            "--out",
            &csv_path.to_string_lossy(),
        ],
    ));
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    assert!(
        csv.starts_with("\u{feff}district,residents,avg_income\n"),
        "{csv}"
    );
    let local_csv = tmp.path().join("local.csv");
    ok(sandbox(
        &data,
        &[
            "--as",
            "ops",
            "output",
            "download",
            &out,
            "--out",
            &local_csv.to_string_lossy(),
        ],
    ));
    assert_eq!(std::fs::read_to_string(&local_csv).unwrap(), csv);
    // `output show` prints the table as a grid, the same both ways.
    let shown = ok(remote(&url, &ops, &["output", "show", &out]));
    assert!(shown.contains("| district"), "{shown}");
    assert!(shown.contains("rows"), "{shown}");
    assert_eq!(
        shown,
        ok(sandbox(&data, &["--as", "ops", "output", "show", &out]))
    );
    // The audit log says where its next page starts.
    let page = ok(remote(&url, &sup, &["audit", "log", "--limit", "3"]));
    let lines: Vec<&str> = page.lines().collect();
    assert!(lines[0].starts_with("SEQ"), "{page}");
    assert_eq!(lines.len(), 5, "{page}");
    assert!(lines[4].contains("sandbox audit log --from 4"), "{page}");
    // Refusals come back typed; a bad token never reaches anything.
    let no = remote(&url, &dev, &["output", "list"]);
    assert!(!no.status.success());
    let err = String::from_utf8_lossy(&no.stderr);
    assert_eq!(
        err.to_lowercase().matches("not permitted").count(),
        1,
        "{err}"
    );
    // With --json, a refusal is the API's `{error, message}` on standard error.
    let no = remote(&url, &dev, &["--json", "output", "list"]);
    assert!(!no.status.success());
    assert!(no.stdout.is_empty());
    let e: serde_json::Value = serde_json::from_slice(&no.stderr).unwrap();
    assert_eq!(e["error"], "forbidden", "{e}");
    assert_eq!(
        e["message"], "a developer may not read outputs (output.read)",
        "{e}"
    );
    // A job that fails (out of fuel) ends the command with a non-zero status, after its
    // report; so does one still running when --wait runs out.
    let failed = submit_example(&url, &dev, &["--wait", "60", "--fuel", "1000"]);
    assert!(!failed.status.success());
    let report: serde_json::Value = serde_json::from_slice(&failed.stdout).unwrap();
    assert_eq!(report["status"], "failed", "{report}");
    let e: serde_json::Value = serde_json::from_slice(&failed.stderr).unwrap();
    assert_eq!(e["error"], "module", "{e}");
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
        assert_eq!(err.matches("Not permitted").count(), 1, "{err}");
        assert!(err.contains("may not read principals"), "{err}");
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
    assert!(String::from_utf8_lossy(&bad.stderr).contains("Not authenticated"));
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

    // The register of organisations, on the data directory: a code whose check character
    // fails is refused; an organisation, a data user in it, the register exported.
    let refused = sandbox(
        &data,
        &[
            "--as",
            "ops",
            "org",
            "add",
            "91110000100003208J",
            "--name",
            "x",
            "--officer",
            "y",
            "--contact",
            "z",
            "--qualified-until",
            "2030-12-31",
        ],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("check character"));
    let org = ok(sandbox(
        &data,
        &[
            "--as",
            "ops",
            "org",
            "add",
            "91120000MA05K7Q3XD",
            "--name",
            "天津数据交易中心",
            "--officer",
            "刘敏",
            "--contact",
            "022-23456789",
            "--qualified-until",
            "2030-12-31",
            "--epsilon-cap",
            "20",
        ],
    ));
    assert!(
        org.starts_with("Organisation 91120000MA05K7Q3XD: 天津数据交易中心"),
        "{org}"
    );
    let added = ok(remote(
        &url,
        &ops,
        &[
            "principal",
            "add",
            "user",
            "--role",
            "data_user",
            "--org",
            "91120000MA05K7Q3XD",
        ],
    ));
    assert!(added.contains("added user (data user)"), "{added}");
    let listed = ok(remote(&url, &sup, &["org", "list"]));
    assert!(
        listed.contains("91120000MA05K7Q3XD  天津数据交易中心"),
        "{listed}"
    );
    assert_eq!(
        ok(sandbox(
            &data,
            &["--as", "sup", "org", "show", "91120000MA05K7Q3XD"]
        )),
        ok(remote(&url, &sup, &["org", "show", "91120000MA05K7Q3XD"]))
    );
    let register = tmp.path().join("register.csv");
    ok(remote(
        &url,
        &sup,
        &["org", "export", "--out", &register.to_string_lossy()],
    ));
    let csv = std::fs::read_to_string(&register).unwrap();
    assert!(csv.starts_with("\u{feff}credit_code,"), "{csv}");
    assert!(csv.contains(",user,"), "{csv}");
    // Products reach only those entitled: the product (released with no recipients) is
    // granted to the data user's organisation; the data user sees and downloads it;
    // a supervisor withdraws it, naming its holders; the next download is refused.
    let user = token(&data, "user");
    let listed = ok(remote(&url, &user, &["product", "list"]));
    assert!(listed.contains("not granted to you"), "{listed}");
    assert!(!remote(&url, &user, &["dataset", "list"]).status.success());
    let granted = ok(remote(
        &url,
        &ops,
        &[
            "product",
            "grant",
            product,
            "--to",
            "org:91120000MA05K7Q3XD",
        ],
    ));
    assert!(
        granted.contains("organisation 91120000MA05K7Q3XD"),
        "{granted}"
    );
    let shown = ok(remote(&url, &user, &["product", "show", product]));
    assert!(shown.contains("income_by_district"), "{shown}");
    assert!(shown.contains("Files: income_by_district.arrow"), "{shown}");
    let user_dir = tmp.path().join("user-product");
    ok(remote(
        &url,
        &user,
        &[
            "product",
            "download",
            product,
            "--out",
            &user_dir.to_string_lossy(),
        ],
    ));
    let holders = ok(sandbox(
        &data,
        &["--as", "sup", "product", "holders", product],
    ));
    assert!(
        holders.contains("user") && holders.contains("91120000MA05K7Q3XD"),
        "{holders}"
    );
    let refused = remote(
        &url,
        &dev,
        &["product", "withdraw", product, "--reason", "mine"],
    );
    assert!(!refused.status.success());
    let withdrawn = ok(remote(
        &url,
        &sup,
        &[
            "product",
            "withdraw",
            product,
            "--reason",
            "a source dataset holds errors",
        ],
    ));
    assert!(
        withdrawn.contains("withdrawn. 2 holders to notify: dev, user"),
        "{withdrawn}"
    );
    let again = remote(
        &url,
        &user,
        &[
            "product",
            "download",
            product,
            "--out",
            &tmp.path().join("again").to_string_lossy(),
        ],
    );
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("Withdrawn:") && err.contains("a source dataset holds errors"),
        "{err}"
    );
    assert!(!tmp.path().join("again").exists(), "nothing half-written");
    let shown = ok(sandbox(
        &data,
        &["--as", "user", "product", "show", product],
    ));
    assert!(shown.contains("Withdrawn by sup on"), "{shown}");
    // The data user's folder verifies; the domain's copy verifies with its notice.
    ok(sandbox(
        &data,
        &["product", "verify", &user_dir.to_string_lossy()],
    ));
    let domain_copy = data.join("products").join(product);
    let verified = ok(sandbox(
        &data,
        &["product", "verify", &domain_copy.to_string_lossy()],
    ));
    assert!(verified.contains("Withdrawn by sup on"), "{verified}");

    // Consent and dataset versions, as the CLI says them: the scenario's consents are in;
    // a provider objects to and suspends the residents' version, queries are refused, the
    // products it fed (withdrawn above) leave nothing to recall, and it is reinstated.
    let consents = ok(remote(
        &url,
        &dev,
        &["scenario", "consents", "income-by-district"],
    ));
    assert!(consents.contains("every consent is in"), "{consents}");
    assert!(
        consents.contains("provider of `residents`: no objection (prov,"),
        "{consents}"
    );
    let objected = ok(sandbox(
        &data,
        &[
            "--as",
            "prov",
            "dataset",
            "object",
            "residents",
            "--version",
            "1",
            "--reason",
            "ages shifted by a year",
        ],
    ));
    assert!(objected.contains("objection by prov on"), "{objected}");
    ok(remote(
        &url,
        &prov,
        &[
            "dataset",
            "suspend",
            "residents",
            "--version",
            "1",
            "--reason",
            "until corrected",
        ],
    ));
    let shown = ok(remote(
        &url,
        &sup,
        &["dataset", "version", "residents", "1"],
    ));
    assert!(shown.contains("is SUSPENDED since"), "{shown}");
    assert!(shown.contains("1 product came from it"), "{shown}");
    let refused = sandbox(
        &data,
        &[
            "--as",
            "dev",
            "query",
            "check",
            "--scenario",
            "income-by-district",
            "SELECT COUNT(*) FROM residents",
        ],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is suspended since"));
    let recalled = ok(remote(
        &url,
        &sup,
        &[
            "dataset",
            "recall",
            "residents",
            "--version",
            "1",
            "--reason",
            "ages shifted",
        ],
    ));
    assert!(recalled.contains("No product to recall"), "{recalled}");
    ok(sandbox(
        &data,
        &[
            "--as",
            "ops",
            "dataset",
            "reinstate",
            "residents",
            "--version",
            "1",
            "--reason",
            "checked: the shift was in the report only",
        ],
    ));

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

/// `init` chooses the domain's language and time zone and says how to point later
/// commands at the new domain; `settings` and `principal language` show and change them;
/// names in any script work from the command line.
#[test]
fn init_says_where_the_domain_is_and_settings_and_languages_are_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    let bad = sandbox(&data, &["init", "--time-zone", "Mars/Olympus"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown time zone"));
    assert!(!data.exists(), "a refused init leaves nothing");
    let out = ok(sandbox(&data, &["init", "--language", "en"]));
    let shown = std::path::absolute(&data).unwrap();
    assert!(
        out.contains(&format!("export SANDBOX_DATA_DIR={}", shown.display())),
        "{out}"
    );
    // The hint works as written: the next command finds the domain through the variable.
    let next = std::process::Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args(["principal", "add", "王伟", "--role", "operator"])
        .env("SANDBOX_DATA_DIR", &shown)
        .env_remove("SANDBOX_AS")
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(ok(next).contains("added 王伟 (operator)"));
    let settings = ok(sandbox(&data, &["--as", "王伟", "settings"]));
    assert!(
        settings.contains("English (en)") && settings.contains("Asia/Shanghai"),
        "{settings}"
    );
    let settings = ok(sandbox(
        &data,
        &[
            "--as",
            "王伟",
            "--json",
            "settings",
            "--language",
            "zh-CN",
            "--time-zone",
            "Asia/Urumqi",
        ],
    ));
    let v: serde_json::Value = serde_json::from_str(&settings).unwrap();
    assert_eq!(v["default_language"], "zh-CN");
    assert_eq!(v["time_zone"], "Asia/Urumqi");
    let refused = sandbox(
        &data,
        &["--as", "王伟", "settings", "--time-zone", "Nowhere"],
    );
    assert!(!refused.status.success());
    let chosen = ok(sandbox(
        &data,
        &["--as", "王伟", "principal", "language", "en"],
    ));
    assert!(chosen.contains("English (en)"), "{chosen}");
    let who = ok(sandbox(&data, &["--as", "王伟", "--json", "whoami"]));
    let who: serde_json::Value = serde_json::from_str(&who).unwrap();
    assert_eq!(who["language"], "en");
    let refused = sandbox(&data, &["--as", "王伟", "principal", "language", "fr"]);
    assert!(!refused.status.success());
    ok(sandbox(
        &data,
        &["--as", "王伟", "principal", "language", "auto"],
    ));
}

/// A settings file gives the data directory, the principal and the language; flags and
/// environment variables win over it; errors speak the chosen language; completions and
/// manual pages come from the command's own definition.
#[test]
fn a_settings_file_languages_completions_and_manual_pages() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    ok(sandbox(&data, &["init", "--language", "en"]));
    ok(sandbox(
        &data,
        &["principal", "add", "ops", "--role", "operator"],
    ));
    let config = tmp.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\nprincipal = \"ops\"\nlanguage = \"zh-CN\"\n",
            data.display()
        ),
    )
    .unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_sandbox"));
        c.args(args)
            .env("SANDBOX_CONFIG", &config)
            .env_remove("SANDBOX_AS")
            .env_remove("SANDBOX_DATA_DIR")
            .env_remove("SANDBOX_LANG")
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            .env("LANG", "C.UTF-8")
            .current_dir(tmp.path());
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    // No --data-dir, no --as: both from the file.
    // The file says zh-CN: the CLI's sentences and the words for role and status too.
    assert_eq!(ok(run(&["whoami"], &[])).trim(), "ops（运营机构，正常）");
    assert_eq!(
        ok(run(&["--lang", "en", "whoami"], &[])).trim(),
        "ops (operator, active)"
    );
    // So does the command line's help, the file's language unless a flag says otherwise.
    let help = ok(run(&["job", "submit", "--help"], &[]));
    assert!(
        help.contains("用法：") && help.contains("场景编号或名称"),
        "{help}"
    );
    let help = ok(run(&["--lang", "en", "job", "submit", "--help"], &[]));
    assert!(
        help.contains("Usage:") && help.contains("Scenario id or name"),
        "{help}"
    );
    // Lists speak the chosen language too.
    let listed = ok(run(&["principal", "list"], &[]));
    assert!(listed.starts_with("名称"), "{listed}");
    let listed = ok(run(&["--lang", "en", "principal", "list"], &[]));
    assert!(listed.starts_with("NAME"), "{listed}");
    // Errors in the file's language; a flag or the environment wins over it.
    let refused = run(&["stop", "lift", "99", "--reason", "x"], &[]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.starts_with("错误："), "{err}");
    let err = run(
        &["--lang", "en", "stop", "lift", "99", "--reason", "x"],
        &[],
    );
    assert!(String::from_utf8_lossy(&err.stderr).starts_with("error: Not found"));
    let err = run(
        &["stop", "lift", "99", "--reason", "x"],
        &[("SANDBOX_LANG", "en")],
    );
    assert!(String::from_utf8_lossy(&err.stderr).starts_with("error: "));
    let other = tmp.path().join("other");
    let err = run(&["--data-dir", &other.to_string_lossy(), "whoami"], &[]);
    assert!(!err.status.success(), "--data-dir wins over the file");
    // Without a file, the locale decides.
    let err = sandbox(
        &data,
        &["--as", "ops", "stop", "lift", "99", "--reason", "x"],
    );
    assert!(String::from_utf8_lossy(&err.stderr).starts_with("error: "));
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_sandbox"));
    let zh = c
        .args(["--data-dir", &data.to_string_lossy(), "--as", "ops"])
        .args(["stop", "lift", "99", "--reason", "x"])
        .env_remove("SANDBOX_CONFIG")
        .env_remove("SANDBOX_LANG")
        .env_remove("LC_ALL")
        .env("XDG_CONFIG_HOME", "/nonexistent-sandbox-config")
        .env("LANG", "zh_CN.UTF-8")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&zh.stderr).starts_with("错误："));
    // A settings file that does not parse is named.
    std::fs::write(&config, "data_dir = 3\nunknown = true\n").unwrap();
    let bad = run(&["whoami"], &[]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("config.toml"), "{err}");
    std::fs::remove_file(&config).unwrap();
    let missing = run(&["whoami"], &[]);
    assert!(
        !missing.status.success(),
        "a named settings file must exist"
    );
    // Completions and manual pages.
    let bash = ok(sandbox(&data, &["completions", "bash"]));
    assert!(
        bash.contains("_sandbox()") && bash.contains("submit"),
        "{bash}"
    );
    let zsh = ok(sandbox(&data, &["completions", "zsh"]));
    assert!(zsh.contains("#compdef sandbox"));
    let man = tmp.path().join("man");
    let wrote = ok(sandbox(&data, &["man", "--out", &man.to_string_lossy()]));
    assert!(wrote.contains("manual pages"), "{wrote}");
    let page = std::fs::read_to_string(man.join("sandbox-job-submit.1")).unwrap();
    assert!(page.contains(".TH") && page.contains("resubmits"), "{page}");
    assert!(man.join("sandbox.1").exists());
}

/// The governance workflows on a data directory, as a person types them: consents and an
/// objection answered, an incident's timeline, a rectification order answered and
/// closed, a signed compliance report verified, and a dataset destroyed at the end of its
/// authorization with its record kept.
#[test]
fn governance_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    init_with_principals(&data);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let csv = tmp.path().join("residents.csv");
    std::fs::write(&csv, sandbox_synth::residents_csv(300, 9)).unwrap();
    ok(add_dataset(
        &data,
        &csv,
        &root.join("examples/policies/residents.toml"),
    ));
    let spec = tmp.path().join("scenario.toml");
    write_example_scenario(&spec, None);
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
    let s = "income-by-district";
    // The operator approves first: it waits for its consents.
    let approved = ok(sandbox(&data, &["--as", "ops", "scenario", "approve", s]));
    assert!(
        approved.contains("becomes usable once every consent is in"),
        "{approved}"
    );
    let objected = ok(sandbox(
        &data,
        &[
            "--as",
            "prov",
            "scenario",
            "consent",
            s,
            "--object",
            "age is not needed",
        ],
    ));
    assert!(objected.contains("OBJECTION (prov,"), "{objected}");
    let answered = ok(sandbox(
        &data,
        &[
            "--as",
            "dev",
            "scenario",
            "answer",
            s,
            "--to",
            "provider",
            "--dataset",
            "residents",
            "age bands the averages",
        ],
    ));
    assert!(answered.contains("answered"), "{answered}");
    ok(sandbox(&data, &["--as", "prov", "scenario", "consent", s]));
    let done = ok(sandbox(&data, &["--as", "sup", "scenario", "consent", s]));
    assert!(done.contains("every consent is in"), "{done}");
    let shown = ok(sandbox(&data, &["--as", "dev", "scenario", "show", s]));
    assert!(shown.contains("approved"), "{shown}");
    // The agreement's terms and the response plan are part of what was approved.
    assert!(
        shown.contains("response plan: the operator's duty officer is called"),
        "{shown}"
    );
    assert!(
        shown.contains("legal basis: the data bureau's authorization"),
        "{shown}"
    );
    // One type of scenario, one review.
    let typed = ok(sandbox(
        &data,
        &[
            "--as",
            "ops",
            "scenario",
            "type-add",
            "livelihood",
            "--from",
            s,
            "--description",
            "Yearly livelihood statistics",
        ],
    ));
    assert!(
        typed.contains("Scenario type `livelihood` established from scenario 1"),
        "{typed}"
    );
    assert!(ok(sandbox(&data, &["--as", "dev", "scenario", "types"])).contains("livelihood"));
    // A dataset its provider does not share goes into a scenario only on a recorded
    // decision.
    let ns_policy = tmp.path().join("ns.toml");
    std::fs::write(
        &ns_policy,
        std::fs::read_to_string(root.join("examples/policies/residents.toml"))
            .unwrap()
            .replacen("name = \"residents\"", "name = \"residents_ns\"", 1)
            .replacen(
                "share_type = \"conditional\"",
                "share_type = \"not_shared\"",
                1,
            ),
    )
    .unwrap();
    ok(add_dataset(&data, &csv, &ns_policy));
    let ns_spec = tmp.path().join("ns-scenario.toml");
    std::fs::write(
        &ns_spec,
        std::fs::read_to_string(&spec)
            .unwrap()
            .replace("income-by-district", "housing")
            .replace("name = \"residents\"", "name = \"residents_ns\""),
    )
    .unwrap();
    let apply_ns = || {
        sandbox(
            &data,
            &[
                "--as",
                "dev",
                "scenario",
                "apply",
                "--file",
                &ns_spec.to_string_lossy(),
            ],
        )
    };
    let refused = apply_ns();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is not shared"));
    let shared = ok(sandbox(
        &data,
        &[
            "--as",
            "sup",
            "dataset",
            "share",
            "residents_ns",
            "--scenario",
            "housing",
            "--reason",
            "approved by the data bureau",
        ],
    ));
    assert!(
        shared.contains("may go into scenario `housing`"),
        "{shared}"
    );
    ok(apply_ns());
    // An incident and what was done under it.
    let opened = ok(sandbox(
        &data,
        &[
            "--as",
            "sup",
            "--json",
            "incident",
            "open",
            "--grade",
            "general",
            "--title",
            "Odd queries",
            "--description",
            "Many refused queries from one module",
        ],
    ));
    let id = serde_json::from_str::<serde_json::Value>(&opened).unwrap()["id"].to_string();
    let logged = ok(sandbox(
        &data,
        &[
            "--as",
            "ops",
            "incident",
            "log",
            &id,
            "--kind",
            "report",
            "--to",
            "市数据局",
            "reported the same day",
        ],
    ));
    assert!(
        logged.contains("→ 市数据局: reported the same day"),
        "{logged}"
    );
    let closed = ok(sandbox(
        &data,
        &[
            "--as",
            "sup",
            "incident",
            "close",
            &id,
            "--summary",
            "no data left the domain",
        ],
    ));
    assert!(closed.contains("Closed by sup on"), "{closed}");
    // A rectification order, answered and closed.
    let tomorrow = (chrono::Utc::now().date_naive() + chrono::Duration::days(1)).to_string();
    let issued = ok(sandbox(
        &data,
        &[
            "--as",
            "sup",
            "order",
            "issue",
            "--target-kind",
            "principal",
            "--target",
            "dev",
            "--requirement",
            "Explain the refused queries",
            "--deadline",
            &tomorrow,
        ],
    ));
    assert!(
        issued.starts_with("Rectification order 1 (open) to principal dev"),
        "{issued}"
    );
    assert!(
        !sandbox(&data, &["--as", "prov", "order", "answer", "1", "x"])
            .status
            .success()
    );
    ok(sandbox(
        &data,
        &[
            "--as",
            "dev",
            "order",
            "answer",
            "1",
            "A loop in the module; fixed.",
        ],
    ));
    let closed = ok(sandbox(&data, &["--as", "sup", "order", "close", "1"]));
    assert!(closed.contains("(closed)"), "{closed}");
    let mine = ok(sandbox(&data, &["--as", "dev", "order", "list"]));
    assert!(mine.contains("Explain the refused queries"), "{mine}");
    // An order whose deadline passes unanswered suspends the developer's work (SYS Art.
    // 31): the deadline a few seconds ahead, then passed.
    let check = || {
        sandbox(
            &data,
            &[
                "--as",
                "dev",
                "query",
                "check",
                "--scenario",
                s,
                "SELECT district, COUNT(*) FROM residents GROUP BY district",
            ],
        )
    };
    ok(check());
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    ok(sandbox(
        &data,
        &[
            "--as",
            "sup",
            "order",
            "issue",
            "--target-kind",
            "scenario",
            "--target",
            s,
            "--requirement",
            "Narrow the columns",
            "--deadline",
            &soon,
        ],
    ));
    std::thread::sleep(std::time::Duration::from_millis(3100));
    let refused = check();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr).to_string();
    assert!(said.contains("passed its deadline"), "{said}");
    // Too late to answer; the order is enforced (the scenario suspended) when orders are
    // next read, and only an operator's reinstatement lifts it.
    let late = sandbox(
        &data,
        &["--as", "dev", "order", "answer", "2", "Columns narrowed."],
    );
    assert!(!late.status.success());
    let listed = ok(sandbox(&data, &["--as", "sup", "order", "list"]));
    assert!(listed.contains("enforced"), "{listed}");
    let shown = ok(sandbox(&data, &["--as", "dev", "scenario", "show", s]));
    assert!(shown.contains("(suspended)"), "{shown}");
    ok(sandbox(
        &data,
        &[
            "--as",
            "ops",
            "scenario",
            "reinstate",
            s,
            "--reason",
            "columns narrowed",
        ],
    ));
    let shown = ok(sandbox(&data, &["--as", "dev", "scenario", "show", s]));
    assert!(shown.contains("(approved)"), "{shown}");
    // An organisation whose qualification ends suspends its developers' work (QQHR Art.
    // 14, 23) until it is renewed.
    ok(sandbox(
        &data,
        &[
            "--as",
            "ops",
            "org",
            "add",
            "91120000MA05K7Q3XD",
            "--name",
            "天津数据交易中心",
            "--officer",
            "刘敏",
            "--contact",
            "022-23456789",
            "--qualified-until",
            "2030-12-31",
        ],
    ));
    ok(sandbox(
        &data,
        &["--as", "ops", "org", "assign", "dev", "91120000MA05K7Q3XD"],
    ));
    ok(check());
    let yesterday = (chrono::Utc::now().date_naive() - chrono::Duration::days(1)).to_string();
    let set = |until: &str| {
        ok(sandbox(
            &data,
            &[
                "--as",
                "ops",
                "org",
                "set",
                "91120000MA05K7Q3XD",
                "--qualified-until",
                until,
                "--reason",
                "qualification review",
            ],
        ))
    };
    set(&yesterday);
    let said = String::from_utf8_lossy(&check().stderr).to_string();
    assert!(
        said.contains("qualification of organisation 91120000MA05K7Q3XD"),
        "{said}"
    );
    set("2030-12-31");
    ok(check());
    // A compliance report, signed and verified offline; an edited one fails.
    let today = chrono::Utc::now().date_naive().to_string();
    let out = tmp.path().join("report");
    let report = ok(sandbox(
        &data,
        &[
            "--as",
            "sup",
            "report",
            "compliance",
            "--from",
            &today,
            "--to",
            &today,
            "--out",
            &out.to_string_lossy(),
        ],
    ));
    assert!(report.contains("consent"), "{report}");
    assert!(report.contains("JZ Art. 11"), "{report}");
    ok(sandbox(
        &data,
        &["report", "verify", &out.to_string_lossy()],
    ));
    let text = std::fs::read_to_string(out.join("report.json")).unwrap();
    assert!(text.contains("JZ Art. 11"));
    std::fs::write(
        out.join("report.json"),
        text.replacen("JZ Art. 11", "JZ Art. 12", 1),
    )
    .unwrap();
    let bad = sandbox(&data, &["report", "verify", &out.to_string_lossy()]);
    assert!(!bad.status.success());
    // The authorization ends: the scenario is revoked, the dataset destroyed, its record kept.
    let refused = sandbox(
        &data,
        &[
            "--as",
            "ops",
            "dataset",
            "destroy",
            "residents",
            "--reason",
            "authorization ended",
        ],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("has not ended"));
    ok(sandbox(
        &data,
        &[
            "--as",
            "ops",
            "scenario",
            "revoke",
            s,
            "--reason",
            "agreement ended",
        ],
    ));
    let destroyed = ok(sandbox(
        &data,
        &[
            "--as",
            "ops",
            "dataset",
            "destroy",
            "residents",
            "--reason",
            "authorization ended",
        ],
    ));
    assert!(
        destroyed.contains("Dataset residents destroyed by ops"),
        "{destroyed}"
    );
    assert!(destroyed.contains("1/data.parquet"), "{destroyed}");
    assert!(!data.join("domain").join("residents").exists());
    let kept = ok(sandbox(
        &data,
        &["--as", "sup", "dataset", "destruction", "residents"],
    ));
    assert_eq!(kept, destroyed);
    assert!(ok(sandbox(&data, &["audit", "verify"])).contains("audit log verified"));
}

/// `init --crypto gm` makes a domain on the national suite and says so; an unknown suite is
/// refused and leaves nothing; the domain's checkpoints are SM2-signed SM3 roots naming
/// their suite, and `audit verify-proof` checks its proofs with its key (and refuses them
/// with another domain's).
#[test]
fn init_chooses_the_cryptographic_suite_for_the_domains_life() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    let bad = sandbox(&data, &["init", "--crypto", "sm9"]);
    assert!(!bad.status.success());
    let said = String::from_utf8_lossy(&bad.stderr).to_string();
    assert!(said.contains("unknown cryptographic suite"), "{said}");
    assert!(!data.exists(), "a refused init leaves nothing");
    let said = ok(sandbox(&data, &["init", "--crypto", "gm"]));
    assert!(
        said.contains("Cryptographic suite: gm (hashes sm3, signatures SM2, key wrapping SM4-GCM)"),
        "{said}"
    );
    ok(sandbox(
        &data,
        &["principal", "add", "ops-li", "--role", "operator"],
    ));
    let checkpoint = ok(sandbox(
        &data,
        &["--as", "ops-li", "--json", "audit", "checkpoint"],
    ));
    let checkpoint: serde_json::Value = serde_json::from_str(&checkpoint).unwrap();
    assert_eq!(checkpoint["suite"], "gm");
    let key = checkpoint["public_key"].as_str().unwrap().to_string();
    assert_eq!(key.len(), 130, "an SM2 point: {key}");
    let proof = ok(sandbox(
        &data,
        &["--as", "ops-li", "--json", "audit", "prove", "2"],
    ));
    let file = tmp.path().join("proof.json");
    std::fs::write(&file, &proof).unwrap();
    let file = file.to_string_lossy().to_string();
    let checked = ok(sandbox(
        &data,
        &["audit", "verify-proof", &file, "--key", &key],
    ));
    assert!(
        checked.contains("inclusion proof verified (gm suite)"),
        "{checked}"
    );
    // Another domain's key (of the standard suite) does not verify it.
    let other = tmp.path().join("other");
    ok(sandbox(&other, &["init"]));
    ok(sandbox(
        &other,
        &["principal", "add", "ops-wu", "--role", "operator"],
    ));
    let theirs = ok(sandbox(
        &other,
        &["--as", "ops-wu", "--json", "audit", "checkpoint"],
    ));
    let theirs: serde_json::Value = serde_json::from_str(&theirs).unwrap();
    assert_eq!(theirs["suite"], "standard");
    let refused = sandbox(
        &data,
        &[
            "audit",
            "verify-proof",
            &file,
            "--key",
            theirs["public_key"].as_str().unwrap(),
        ],
    );
    assert!(!refused.status.success());
}

/// The master key (TJ-Sec Art. 10; SYS Art. 18): `init` makes it beside the data directory
/// and says so; one held in an environment variable is read at every start, and without
/// it the domain does not open; a key file inside the data directory is refused; a second
/// domain may use a key file made before.
#[test]
fn the_master_key_is_kept_apart_from_the_data_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    let said = ok(sandbox(&data, &["init"]));
    let beside = tmp.path().join("d.master-key");
    assert!(
        said.contains(&format!("Master key: key file {}", beside.display())),
        "{said}"
    );
    let key = "ab".repeat(32);
    let held = tmp.path().join("e");
    let with_key = |args: &[&str]| {
        common::isolated(&mut std::process::Command::new(env!(
            "CARGO_BIN_EXE_sandbox"
        )))
        .arg("--data-dir")
        .arg(&held)
        .args(args)
        .env("OPS_MASTER_KEY", &key)
        .output()
        .unwrap()
    };
    let said = ok(with_key(&["init", "--master-key-env", "OPS_MASTER_KEY"]));
    assert!(
        said.contains("Master key: environment variable OPS_MASTER_KEY"),
        "{said}"
    );
    ok(with_key(&["principal", "add", "ops", "--role", "operator"]));
    let refused = sandbox(&held, &["audit", "verify"]);
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr).to_string();
    assert!(why.contains("OPS_MASTER_KEY, which is not set"), "{why}");
    assert!(ok(with_key(&["audit", "verify"])).contains("audit log verified"));
    // Rotated to a key file: the variable is no longer needed.
    let rotated = tmp.path().join("rotated.key");
    let said = ok(with_key(&[
        "--as",
        "ops",
        "key",
        "rotate",
        "--master-key-file",
        &rotated.to_string_lossy(),
    ]));
    assert!(
        said.contains("The domain's secrets moved from master key"),
        "{said}"
    );
    assert!(ok(sandbox(&held, &["audit", "verify"])).contains("audit log verified"));

    let inner = tmp.path().join("f");
    let refused = sandbox(
        &inner,
        &[
            "init",
            "--master-key-file",
            &inner.join("master.key").to_string_lossy(),
        ],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("inside the data directory"));
    assert!(!inner.exists());
    let second = tmp.path().join("g");
    ok(sandbox(
        &second,
        &[
            "init",
            "--master-key-file",
            &beside.to_string_lossy(),
            "--existing",
        ],
    ));
    assert!(ok(sandbox(&second, &["--json", "audit", "verify"])).contains("\"events\""));
    // Over the network: not an act of the server.
    let remote = common::isolated(&mut std::process::Command::new(env!(
        "CARGO_BIN_EXE_sandbox"
    )))
    .args(["--server", "http://127.0.0.1:9", "key", "protect"])
    .output()
    .unwrap();
    assert!(!remote.status.success());
}

/// Backup and restore from the command line: a backup taken, checked, restored into a new
/// directory with the checkpoint printed after more work kept elsewhere (reported rolled
/// back), the restored domain's log verified; a developer refused.
#[test]
fn a_backup_is_taken_checked_and_restored_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    ok(sandbox(&data, &["init"]));
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
            "dev",
            "--role",
            "developer",
        ],
    ));
    let file = tmp.path().join("d.sbk");
    let file_arg = file.to_string_lossy().to_string();
    let refused = sandbox(&data, &["--as", "dev", "backup", "--out", &file_arg]);
    assert!(!refused.status.success());
    assert!(!file.exists());
    let said = ok(sandbox(
        &data,
        &["--as", "ops", "backup", "--out", &file_arg],
    ));
    assert!(said.contains("written to"), "{said}");
    let said = ok(sandbox(&data, &["backup", "verify", &file_arg]));
    assert!(said.contains("verified"), "{said}");
    // More work, and a checkpoint of it kept elsewhere.
    ok(sandbox(
        &data,
        &[
            "--as",
            "ops",
            "principal",
            "add",
            "sup",
            "--role",
            "supervisor",
        ],
    ));
    let checkpoint = ok(sandbox(
        &data,
        &["--as", "sup", "--json", "audit", "checkpoint"],
    ));
    let kept = tmp.path().join("checkpoint.json");
    std::fs::write(&kept, checkpoint).unwrap();
    let restored = tmp.path().join("r");
    let said = ok(sandbox(
        &data,
        &[
            "restore",
            &file_arg,
            &restored.to_string_lossy(),
            "--checkpoint",
            &kept.to_string_lossy(),
        ],
    ));
    assert!(said.contains("restored into"), "{said}");
    assert!(said.contains("ROLLED BACK"), "{said}");
    assert!(ok(sandbox(&restored, &["audit", "verify"])).contains("audit log verified"));
    // The restored domain does not know `sup`, added after the backup.
    let who = sandbox(&restored, &["--as", "sup", "whoami"]);
    assert!(!who.status.success());
}
