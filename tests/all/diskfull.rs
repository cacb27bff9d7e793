//! A full disk and a read-only data directory, during ingest, a charge, staging and
//! release: a clear error, nothing half-written, and the domain usable once there is room
//! again (the audit log verifies, the budget equals the ledger).
//!
//! The data directory lives on a small tmpfs. The test runs itself again inside a user
//! and mount namespace of its own (`unshare -Urm`), where it may mount one without being
//! root, and fills it with a file it then shortens to leave the room each step needs.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use sandbox_runtime::identity::{self, Role};
use sandbox_runtime::jobs::{self, Submission};
use sandbox_runtime::privacy::ledger;
use sandbox_runtime::review::{self, Decision};
use sandbox_runtime::{Domain, audit, catalog, scenarios};
use sandbox_tests::{DEVELOPER, OPERATOR, OPERATOR2, PROVIDER, SUPERVISOR, ask_in, text_module};

const INSIDE: &str = "SANDBOX_DISKFULL_INSIDE";

/// Runs `test` in a namespace of its own where `root` is a fresh tmpfs of `size`.
fn in_namespace(name: &str, test: impl FnOnce(&Path)) {
    if std::env::var_os(INSIDE).is_none() {
        let exe = std::env::current_exe().unwrap();
        let out = Command::new("unshare")
            .args(["-Urm", "--propagation", "private"])
            .arg(&exe)
            .args([name, "--exact", "--nocapture", "--test-threads=1"])
            .env(INSIDE, "1")
            .output()
            .expect("unshare (util-linux) runs the test in a namespace of its own");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && text.contains("1 passed"),
            "inside the namespace:\n{text}"
        );
        println!("{text}");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=24m", "tmpfs"])
        .arg(root.path())
        .status()
        .unwrap();
    assert!(status.success(), "mount a tmpfs");
    test(root.path());
    let _ = Command::new("umount").arg(root.path()).status();
}

/// A file that takes all but `room` bytes of the filesystem it is on.
struct Filler {
    path: PathBuf,
}

impl Filler {
    fn new(dir: &Path) -> Filler {
        Filler {
            path: dir.join("filler"),
        }
    }

    /// Fills the filesystem, then gives `room` bytes back.
    fn leave(&self, room: u64) {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .unwrap();
        let chunk = vec![0u8; 64 * 1024];
        loop {
            match f.write(&chunk) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = f.flush();
        let len = f.metadata().unwrap().len();
        f.set_len(len.saturating_sub(room)).unwrap();
        f.sync_all().unwrap();
    }

    fn free(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn is_full(e: &dyn std::fmt::Display) -> bool {
    let text = e.to_string().to_lowercase();
    text.contains("no space left")
        || text.contains("disk is full")
        || text.contains("disk may be full")
}

fn is_read_only(e: &dyn std::fmt::Display) -> bool {
    let text = e.to_string().to_lowercase();
    text.contains("read-only") || text.contains("read only")
}

/// The domain's state that must not move when a step fails: files and rows.
fn state(domain: &Domain) -> (std::collections::BTreeMap<String, String>, Vec<i64>) {
    crate::ingest::snapshot(domain)
}

fn setup(root: &Path, outside: &Path) -> (Domain, i64, PathBuf) {
    let domain = Domain::init(&root.join("domain")).unwrap();
    identity::add(&domain, None, OPERATOR, Role::Operator).unwrap();
    identity::add(&domain, Some(OPERATOR), OPERATOR2, Role::Operator).unwrap();
    identity::add(&domain, Some(OPERATOR), PROVIDER, Role::Provider).unwrap();
    identity::add(&domain, Some(OPERATOR), DEVELOPER, Role::Developer).unwrap();
    identity::add(&domain, Some(OPERATOR), SUPERVISOR, Role::Supervisor).unwrap();
    let csv = outside.join("residents.csv");
    std::fs::write(&csv, sandbox_synth::residents_csv(2000, 5)).unwrap();
    catalog::add(&domain, PROVIDER, &csv, sandbox_cli::demo::RESIDENTS_POLICY).unwrap();
    let s = scenarios::apply(
        &domain,
        DEVELOPER,
        &sandbox_tests::scenario_text("full", 10.0, 1.0),
    )
    .unwrap();
    let s = sandbox_tests::approve(&domain, &s.id.to_string()).unwrap();
    (domain, s.id, csv)
}

fn submit(domain: &Domain, module: &[u8]) -> sandbox_runtime::Result<jobs::JobReport> {
    jobs::submit(
        domain,
        DEVELOPER,
        &Submission {
            scenario: "full",
            module,
            params_json: "{}",
            limits: sandbox_runtime::wasm::JobLimits::default().into(),
            resubmits: None,
        },
    )
}

/// Whatever failed, the domain is whole: its audit log verifies, the budget spent is what
/// the ledger holds, and no job is left running or queued.
fn whole(domain: &Domain, scenario: i64) {
    audit::verify_custodian(domain).unwrap();
    let raw = sandbox_tests::raw(domain);
    assert_eq!(
        sandbox_tests::count(
            &raw,
            "SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')"
        ),
        0,
        "a job left behind"
    );
    let conn = domain.conn().unwrap();
    let b = ledger::balance(&conn, scenario).unwrap();
    let sum = ledger::ledger_sum(&conn, scenario).unwrap();
    assert!((b.epsilon_spent - sum).abs() < 1e-9, "{b:?} against {sum}");
}

#[test]
fn a_full_disk_fails_each_step_cleanly_and_the_domain_recovers() {
    in_namespace(
        "diskfull::a_full_disk_fails_each_step_cleanly_and_the_domain_recovers",
        |root| {
            let outside = tempfile::tempdir().unwrap();
            let (domain, scenario, _) = setup(root, outside.path());
            let filler = Filler::new(root);

            // Ingest: a dataset larger than the room left.
            let big = outside.path().join("big.csv");
            std::fs::write(&big, sandbox_synth::residents_csv(60_000, 6)).unwrap();
            let before = state(&domain);
            filler.leave(256 * 1024);
            let e = catalog::add(&domain, PROVIDER, &big, sandbox_cli::demo::RESIDENTS_POLICY)
                .map(|v| v.name)
                .unwrap_err();
            println!("ingest on a full disk: {e}");
            assert!(matches!(e, sandbox_runtime::Error::Io(_)), "ingest: {e:?}");
            assert!(is_full(&e), "ingest: {e}");
            filler.free();
            assert_eq!(state(&domain), before, "ingest left something behind");
            whole(&domain, scenario);

            // A charge: the answer is not released unless the charge was recorded.
            let spent = ledger::balance(&domain.conn().unwrap(), scenario)
                .unwrap()
                .epsilon_spent;
            filler.leave(0);
            let asked = ask_in(&domain, scenario, "SELECT COUNT(*) FROM residents");
            filler.free();
            let after = ledger::balance(&domain.conn().unwrap(), scenario)
                .unwrap()
                .epsilon_spent;
            println!(
                "charge on a full disk: {:?}",
                asked.as_ref().map(|a| &a.query_id)
            );
            match asked {
                Ok(_) => assert!(after > spent, "answered without its charge"),
                Err(e) => {
                    assert!(is_full(&e), "charge: {e}");
                    assert_eq!(after, spent, "a refused charge moved the budget");
                }
            }
            whole(&domain, scenario);

            // Staging: the job's output does not fit.
            let note = "x".repeat(512 * 1024);
            let before = state(&domain);
            filler.leave(64 * 1024);
            let staged = submit(&domain, &text_module(&note));
            filler.free();
            println!(
                "staging on a full disk: {:?}",
                staged.as_ref().map(|r| (&r.status, &r.error))
            );
            match staged {
                Ok(r) => {
                    assert_ne!(r.status, "succeeded", "{r:?}");
                    assert!(r.outputs.is_empty(), "{r:?}");
                }
                Err(e) => assert!(is_full(&e), "staging: {e}"),
            }
            let staging = domain.layout().staging();
            for dir in std::fs::read_dir(&staging).unwrap() {
                let dir = dir.unwrap().path();
                assert!(
                    before.0.contains_key(
                        &dir.strip_prefix(domain.layout().root())
                            .unwrap()
                            .display()
                            .to_string()
                    ),
                    "a half-staged output: {}",
                    dir.display()
                );
            }
            whole(&domain, scenario);

            // Release: approved by an operator, then the supervisor's approval meets a
            // full disk.
            let r = submit(&domain, &text_module("Counted the residents.")).unwrap();
            assert_eq!(r.status, "succeeded", "{r:?}");
            let output = r.outputs[0].id.clone();
            review::decide(&domain, OPERATOR, &output, Decision::Approve, None).unwrap();
            let products = domain.layout().root().join("products");
            let products_before = std::fs::read_dir(&products).map(|d| d.count()).unwrap_or(0);
            filler.leave(0);
            let released = review::decide(&domain, SUPERVISOR, &output, Decision::Approve, None);
            filler.free();
            println!(
                "release on a full disk: {:?}",
                released.as_ref().map(|o| &o.status)
            );
            if let Err(e) = &released {
                assert!(is_full(e), "release: {e}");
                let o = jobs::output(&domain, OPERATOR, &output).unwrap();
                assert_ne!(o.status, "released");
                assert_eq!(
                    std::fs::read_dir(&products).map(|d| d.count()).unwrap_or(0),
                    products_before,
                    "a half-written product"
                );
                // With room again, the release goes through.
                review::decide(&domain, SUPERVISOR, &output, Decision::Approve, None).unwrap();
            }
            for p in review::products(&domain, OPERATOR).unwrap() {
                review::verify_product(&products.join(&p.id), None).unwrap();
            }
            whole(&domain, scenario);

            // And the domain works: a dataset, a query, a job.
            let small = outside.path().join("small.csv");
            std::fs::write(&small, sandbox_synth::residents_csv(500, 7)).unwrap();
            let policy = sandbox_cli::demo::RESIDENTS_POLICY
                .replace("name = \"residents\"", "name = \"residents_b\"");
            catalog::add(&domain, PROVIDER, &small, &policy).unwrap();
            ask_in(&domain, scenario, "SELECT COUNT(*) FROM residents").unwrap();
            assert_eq!(
                submit(&domain, &text_module("Again.")).unwrap().status,
                "succeeded"
            );
            whole(&domain, scenario);
        },
    );
}

#[test]
fn a_read_only_data_directory_refuses_writes_clearly_and_the_domain_recovers() {
    in_namespace(
        "diskfull::a_read_only_data_directory_refuses_writes_clearly_and_the_domain_recovers",
        |root| {
            let outside = tempfile::tempdir().unwrap();
            let (domain, scenario, csv) = setup(root, outside.path());
            let r = submit(&domain, &text_module("Counted the residents.")).unwrap();
            let output = r.outputs[0].id.clone();
            review::decide(&domain, OPERATOR, &output, Decision::Approve, None).unwrap();
            drop(domain);
            let before = {
                let d = Domain::open(&root.join("domain")).unwrap();
                state(&d)
            };
            let remount = |mode: &str| {
                let status = Command::new("mount")
                    .args(["-o", &format!("remount,{mode}")])
                    .arg(root)
                    .status()
                    .unwrap();
                assert!(status.success(), "remount {mode}");
            };
            remount("ro");
            // Opening may itself be refused (SQLite's WAL needs its shared-memory file);
            // whatever is refused says why.
            match Domain::open(&root.join("domain")) {
                Err(e) => assert!(is_read_only(&e), "open: {e}"),
                Ok(domain) => {
                    let policy = sandbox_cli::demo::RESIDENTS_POLICY
                        .replace("name = \"residents\"", "name = \"residents_b\"");
                    let e = catalog::add(&domain, PROVIDER, &csv, &policy)
                        .map(|v| v.name)
                        .unwrap_err();
                    assert!(is_read_only(&e), "ingest: {e}");
                    let e = ask_in(&domain, scenario, "SELECT COUNT(*) FROM residents")
                        .map(|a| a.query_id)
                        .unwrap_err();
                    assert!(is_read_only(&e), "charge: {e}");
                    let e = submit(&domain, &text_module("x"))
                        .map(|r| r.id)
                        .unwrap_err();
                    assert!(is_read_only(&e), "submit: {e}");
                    let e = review::decide(&domain, SUPERVISOR, &output, Decision::Approve, None)
                        .map(|o| o.id)
                        .unwrap_err();
                    assert!(is_read_only(&e), "release: {e}");
                }
            }
            remount("rw");
            let domain = Domain::open(&root.join("domain")).unwrap();
            assert_eq!(
                state(&domain),
                before,
                "a refused write left something behind"
            );
            whole(&domain, scenario);
            review::decide(&domain, SUPERVISOR, &output, Decision::Approve, None).unwrap();
            ask_in(&domain, scenario, "SELECT COUNT(*) FROM residents").unwrap();
            whole(&domain, scenario);
        },
    );
}
