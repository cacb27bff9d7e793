//! The audit log's hash chain: any edit is found.

use sandbox_runtime::{Error, audit};
use sandbox_tests::Fixture;

#[test]
fn editing_one_audit_row_makes_verify_fail() {
    let f = Fixture::new();
    let conn = f.domain.conn().unwrap();
    let v = audit::verify(&conn).unwrap();
    assert!(v.events >= 8, "{v:?}");
    // The store refuses ordinary edits...
    assert!(
        conn.execute("UPDATE audit_events SET actor = 'nobody' WHERE seq = 3", [])
            .is_err()
    );
    assert!(
        conn.execute("DELETE FROM audit_events WHERE seq = 3", [])
            .is_err()
    );
    // ...so an attacker with the file drops the trigger first. Verify still finds it.
    conn.execute_batch(
        "DROP TRIGGER audit_events_no_update;
         UPDATE audit_events SET actor = 'nobody' WHERE seq = 3;",
    )
    .unwrap();
    match audit::verify(&conn) {
        Err(Error::Verify(m)) => assert!(m.contains("event 3"), "{m}"),
        other => panic!("tampering not detected: {other:?}"),
    }
}

#[test]
fn deleting_or_truncating_events_is_found() {
    let f = Fixture::new();
    let conn = f.domain.conn().unwrap();
    conn.execute_batch(
        "DROP TRIGGER audit_events_no_delete;
         DELETE FROM audit_events WHERE seq = 2;",
    )
    .unwrap();
    assert!(matches!(audit::verify(&conn), Err(Error::Verify(m)) if m.contains("event 2")));

    let f = Fixture::new();
    let conn = f.domain.conn().unwrap();
    let n = audit::verify(&conn).unwrap().events;
    conn.execute_batch("DROP TRIGGER audit_events_no_delete;")
        .unwrap();
    conn.execute("DELETE FROM audit_events WHERE seq = ?1", [n])
        .unwrap();
    assert!(matches!(audit::verify(&conn), Err(Error::Verify(_))));
}

#[test]
fn details_are_covered_by_the_hash() {
    let f = Fixture::new();
    let conn = f.domain.conn().unwrap();
    conn.execute_batch(
        "DROP TRIGGER audit_events_no_update;
         UPDATE audit_events SET details = '{\"role\":\"supervisor\"}' WHERE action = 'principal.added' AND seq = (SELECT MIN(seq) FROM audit_events WHERE action = 'principal.added');",
    )
    .unwrap();
    assert!(matches!(audit::verify(&conn), Err(Error::Verify(_))));
}
