//! Backup and restore (TJ-Sec Art. 10; SYS Art. 18, 60; QQHR Art. 19): the restore drill.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sandbox_runtime::backup::{self, Standing};
use sandbox_runtime::{Domain, Error, MasterKey, audit};

fn spent(domain: &Domain, scenario: i64) -> f64 {
    sandbox_runtime::privacy::ledger::balance(&domain.conn().unwrap(), scenario)
        .unwrap()
        .epsilon_spent
}

/// The sum of the ledger's charges of a scenario, read from its rows.
fn ledger_sum(domain: &Domain, scenario: i64) -> f64 {
    sandbox_tests::raw(domain)
        .query_row(
            "SELECT COALESCE(SUM(epsilon), 0) FROM ledger WHERE scenario_id = ?1",
            [scenario],
            |r| r.get(0),
        )
        .unwrap()
}

/// The drill: a domain that has run a job and released a product answers queries while
/// a backup is taken; more work is done and a checkpoint kept elsewhere; the backup
/// verifies and restores: the restored domain answers, its budget is its ledger's at the
/// backup's instant, its product verifies, and against the later checkpoint it reports
/// that it was rolled back. A backup altered, cut short or opened with another key fails;
/// a developer cannot take one.
#[test]
fn the_restore_drill() {
    let module = sandbox_tests::guest_module("income_by_district");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let demo = sandbox_cli::demo::run_in(
        &dir,
        &module,
        2000,
        sandbox_core::Suite::Standard,
        sandbox_core::Lang::En,
        &mut Vec::new(),
    )
    .unwrap();
    let key_file = tmp.path().join("d.master-key");
    let domain = Domain::open(&dir).unwrap();
    let scenario = sandbox_runtime::scenarios::list(&domain, "ops-li").unwrap()[0].id;
    let before = spent(&domain, scenario);
    let early = audit::checkpoint(&domain, "sup-chen").unwrap();

    let out = tmp.path().join("backups").join("d.sbk");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    assert!(matches!(
        backup::backup(&domain, "dev-zhao", &out),
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        backup::backup(&domain, "ops-li", &dir.join("inside.sbk")),
        Err(Error::Invalid(_))
    ));
    // Queries charged while the backup is taken: ε 0.001 each, at most 400 of them (0.4 of
    // the scenario's 3), however fast the machine answers, so the budget left for the
    // queries after the backup does not depend on the timing.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let load = {
        let domain = domain.clone();
        let stop = stop.clone();
        let answered = answered.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) && answered.load(Ordering::SeqCst) < 400 {
                if sandbox_runtime::mediate::answer(
                    &domain,
                    &sandbox_runtime::mediate::QueryRequest {
                        scenario_id: scenario,
                        job_id: None,
                        actor: "dev-zhao",
                        sql: "SELECT COUNT(*) FROM residents",
                        epsilon: Some(0.001),
                    },
                )
                .is_ok()
                {
                    answered.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
    };
    while answered.load(Ordering::SeqCst) == 0 && !load.is_finished() {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let report = backup::backup(&domain, "ops-li", &out).unwrap();
    stop.store(true, Ordering::SeqCst);
    load.join().unwrap();
    assert!(
        answered.load(Ordering::SeqCst) > 0,
        "no query answered during the backup"
    );
    assert!(report.files > 5, "{report:?}");
    let at_backup_max = spent(&domain, scenario);

    // More work after the backup; a checkpoint kept elsewhere.
    sandbox_tests::ask_in(&domain, scenario, "SELECT COUNT(*) FROM residents").unwrap();
    let later = audit::checkpoint(&domain, "sup-chen").unwrap();
    let later_size = later.size;

    let key = MasterKey::File(key_file.clone());
    let v = backup::verify(&out, &key).unwrap();
    assert_eq!(v.backup_id, report.backup_id);
    assert!(v.checkpoints >= 1);

    let restored_dir = tmp.path().join("restored");
    let r = backup::restore(&out, &restored_dir, &key, Some(&later)).unwrap();
    match r.standing {
        Some(Standing::RolledBack { log, checkpoint }) => {
            assert_eq!(checkpoint, later_size);
            assert!(log < checkpoint);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        backup::restore(&out, &restored_dir, &key, None),
        Err(Error::Conflict(_))
    ));
    let restored = Domain::open(&restored_dir).unwrap();
    // Its budget is its ledger's, between what was spent before the backup and after it.
    let restored_spent = spent(&restored, scenario);
    assert!((restored_spent - ledger_sum(&restored, scenario)).abs() < 1e-9);
    assert!(
        restored_spent >= before - 1e-9 && restored_spent <= at_backup_max + 1e-9,
        "{before} <= {restored_spent} <= {at_backup_max}"
    );
    // It answers, and its product verifies from its restored folder.
    let answer = sandbox_tests::ask_in(&restored, scenario, "SELECT COUNT(*) FROM residents");
    assert!(answer.is_ok(), "{answer:?}");
    let product = restored_dir
        .join("products")
        .join(demo.product_dir.file_name().unwrap());
    sandbox_runtime::review::verify_product(&product, None).unwrap();
    // Its log holds the checkpoint taken before the backup.
    assert!(matches!(
        backup::stand_against(&restored, &early).unwrap(),
        Standing::Holds { .. }
    ));
    assert!(audit::verify_custodian(&restored).unwrap().checkpoints >= 1);

    // An altered byte, a cut, another key: each fails, and leaves no directory.
    let bytes = std::fs::read(&out).unwrap();
    let mut altered = bytes.clone();
    let at = altered.len() / 2;
    altered[at] ^= 1;
    let bad = tmp.path().join("bad.sbk");
    for (what, content) in [
        ("altered", altered),
        ("cut short", bytes[..bytes.len() - 100].to_vec()),
    ] {
        std::fs::write(&bad, &content).unwrap();
        match backup::restore(&bad, &tmp.path().join("never"), &key, None) {
            Err(Error::Verify(m)) => assert!(m.contains("backup"), "{what}: {m}"),
            other => panic!("{what}: {other:?}"),
        }
        assert!(!tmp.path().join("never").exists());
    }
    let other_key = tmp.path().join("other.key");
    std::fs::write(&other_key, hex::encode([5u8; 32])).unwrap();
    assert!(backup::verify(&out, &MasterKey::File(other_key)).is_err());
    // No value of the data in the clear in the backup either.
    for r in sandbox_synth::residents(2000, 2026).iter().take(100) {
        assert!(
            !bytes
                .windows(r.citizen_id.len())
                .any(|w| w == r.citizen_id.as_bytes())
        );
    }
}
