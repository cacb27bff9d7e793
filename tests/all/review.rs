//! Review and release: two approvals by two different people, neither the submitter; a
//! flagged output needs a written override.

use sandbox_runtime::Error;
use sandbox_runtime::jobs;
use sandbox_runtime::review::{self, Decision};
use sandbox_runtime::wasm::JobLimits;
use sandbox_tests::{DEVELOPER, Fixture, OPERATOR, OPERATOR2, SUPERVISOR, wat};

fn staged_text(f: &Fixture, text: &str) -> String {
    let module = wat(&format!(
        r#"(module
        (import "sandbox" "emit" (func $emit (param i32 i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (data (i32.const 0) "note")
        (data (i32.const 16) "{text}")
        (func (export "run") (result i32)
          (call $emit (i32.const 2) (i32.const 0) (i32.const 4) (i32.const 16) (i32.const {len}))))"#,
        len = text.len()
    ));
    let report = f.submit(&module, "{}", JobLimits::default()).unwrap();
    assert_eq!(report.status, "succeeded", "{report:?}");
    report.outputs[0].id.clone()
}

#[test]
fn release_needs_both_approvals_by_different_people() {
    let f = Fixture::new();
    let out = staged_text(&f, "Average income rose in every district.");
    // No approval at all.
    assert!(matches!(
        review::release(&f.domain, OPERATOR, &out),
        Err(Error::Review(_))
    ));
    // The submitter cannot review.
    assert!(matches!(
        review::decide(&f.domain, DEVELOPER, &out, Decision::Approve, None),
        Err(Error::Forbidden(_))
    ));
    // A supervisor cannot go first.
    assert!(matches!(
        review::decide(&f.domain, SUPERVISOR, &out, Decision::Approve, None),
        Err(Error::Review(_))
    ));
    review::decide(&f.domain, OPERATOR, &out, Decision::Approve, None).unwrap();
    // Operator approval alone does not release.
    assert!(matches!(
        review::release(&f.domain, OPERATOR, &out),
        Err(Error::Review(_))
    ));
    // A developer cannot release at all.
    assert!(matches!(
        review::release(&f.domain, DEVELOPER, &out),
        Err(Error::Forbidden(_))
    ));
    // A second operator is not a supervisor.
    assert!(matches!(
        review::decide(&f.domain, OPERATOR2, &out, Decision::Approve, None),
        Err(Error::Review(_))
    ));
    let o = review::decide(&f.domain, SUPERVISOR, &out, Decision::Approve, None).unwrap();
    assert_eq!(o.status, "released");
    let products = review::products(&f.domain).unwrap();
    assert_eq!(products.len(), 1);
    let key = sandbox_runtime::keys::verifying_key(f.domain.layout()).unwrap();
    review::verify_product(&products[0].path, Some(&key)).unwrap();
    // A changed byte in a product file fails verification.
    let file = products[0].path.join("note.md");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    assert!(matches!(
        review::verify_product(&products[0].path, Some(&key)),
        Err(Error::Verify(_))
    ));
}

#[test]
fn an_output_smuggling_an_id_number_is_flagged_and_needs_an_override() {
    let f = Fixture::new();
    let out = staged_text(&f, "top earner: 11010519491231002X");
    let o = jobs::output(&f.domain.conn().unwrap(), &out).unwrap();
    assert_eq!(o.status, "flagged");
    assert!(o.checks.unwrap().to_string().contains("resident ID number"));
    assert!(matches!(
        review::decide(&f.domain, OPERATOR, &out, Decision::Approve, None),
        Err(Error::Review(_))
    ));
    review::decide(
        &f.domain,
        OPERATOR,
        &out,
        Decision::Approve,
        Some("test of the override path"),
    )
    .unwrap();
    assert!(matches!(
        review::decide(&f.domain, SUPERVISOR, &out, Decision::Approve, None),
        Err(Error::Review(_))
    ));
    let o = review::decide(
        &f.domain,
        SUPERVISOR,
        &out,
        Decision::Approve,
        Some("override recorded"),
    )
    .unwrap();
    assert_eq!(o.status, "released");
}

#[test]
fn a_mobile_number_is_flagged_and_a_rejection_needs_a_reason() {
    let f = Fixture::new();
    let out = staged_text(&f, "call 13812345678");
    assert_eq!(
        jobs::output(&f.domain.conn().unwrap(), &out)
            .unwrap()
            .status,
        "flagged"
    );
    assert!(review::decide(&f.domain, OPERATOR, &out, Decision::Reject, None).is_err());
    let o = review::decide(
        &f.domain,
        OPERATOR,
        &out,
        Decision::Reject,
        Some("contains a phone number"),
    )
    .unwrap();
    assert_eq!(o.status, "rejected");
    assert!(review::release(&f.domain, OPERATOR, &out).is_err());
}
