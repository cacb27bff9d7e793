//! Review and release: two approvals by two different people, neither the submitter; a
//! flagged output needs a written override.

use sandbox_runtime::Error;
use sandbox_runtime::jobs;
use sandbox_runtime::review::{self, Decision};
use sandbox_runtime::wasm::JobLimits;
use sandbox_tests::{DEVELOPER, Fixture, OPERATOR, OPERATOR2, SUPERVISOR, text_module};

fn staged_text(f: &Fixture, text: &str) -> String {
    let report = f
        .submit(&text_module(text), "{}", JobLimits::default())
        .unwrap();
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
    let products = review::products(&f.domain, sandbox_tests::OPERATOR).unwrap();
    assert_eq!(products.len(), 1);
    let key = sandbox_runtime::keys::public_key(f.domain.layout()).unwrap();
    let manifest = review::verify_product(&products[0].path, Some(&key)).unwrap();
    // The manifest states the sources (none: this job asked nothing of the data), the
    // approvals with times and where the output's history is in the audit log.
    assert_eq!(manifest["datasets"], serde_json::json!([]));
    assert_eq!(manifest["approvals"].as_array().unwrap().len(), 2);
    let actions: Vec<&str> = manifest["audit"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "job.started",
        "job.succeeded",
        "output.staged",
        "output.operator_approve",
        "output.supervisor_approve",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
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
    let o = jobs::output(&f.domain, sandbox_tests::OPERATOR, &out).unwrap();
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
        jobs::output(&f.domain, sandbox_tests::OPERATOR, &out)
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

#[test]
fn the_review_state_machine_records_every_transition() {
    let f = Fixture::new();
    // A number the module made up: provenance asks for review, nothing fails.
    let out = staged_text(&f, "We estimate 41 percent growth.");
    let o = jobs::output(&f.domain, sandbox_tests::OPERATOR, &out).unwrap();
    assert_eq!(o.status, "checked");
    let provenance = o.checks.as_ref().unwrap()["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["check"] == "provenance")
        .unwrap()
        .clone();
    assert_eq!(provenance["outcome"], "review");
    // The operator must say why a finding for review is fine.
    assert!(matches!(
        review::decide(&f.domain, OPERATOR, &out, Decision::Approve, None),
        Err(Error::Review(m)) if m.contains("note")
    ));
    // Changes requested: needs a comment (its absence is bad input); the output then
    // leaves review for good.
    assert!(matches!(
        review::decide(&f.domain, OPERATOR, &out, Decision::RequestChanges, None),
        Err(Error::Invalid(_))
    ));
    let o = review::decide(
        &f.domain,
        OPERATOR,
        &out,
        Decision::RequestChanges,
        Some("say where the 41 percent comes from"),
    )
    .unwrap();
    assert_eq!(o.status, "changes_requested");
    for (who, d) in [
        (OPERATOR, Decision::Approve),
        (SUPERVISOR, Decision::Approve),
        (OPERATOR2, Decision::Reject),
    ] {
        assert!(
            matches!(
                review::decide(&f.domain, who, &out, d, Some("again")),
                Err(Error::Review(_))
            ),
            "{who}"
        );
    }
    assert!(review::release(&f.domain, SUPERVISOR, &out).is_err());

    // The next output goes staged → checked → operator-approved → released, a supervisor
    // rejection is possible only after the operator, and each step is an audit event
    // with its actor, the states and the reason.
    let out2 = staged_text(&f, "We estimate 41 percent growth, from the tables above.");
    review::decide(
        &f.domain,
        OPERATOR,
        &out2,
        Decision::Approve,
        Some("41 is the module's rounding of the table"),
    )
    .unwrap();
    let o = review::decide(&f.domain, SUPERVISOR, &out2, Decision::Approve, None).unwrap();
    assert_eq!(o.status, "released");
    let trail: Vec<(String, String, serde_json::Value)> =
        sandbox_runtime::audit::log(&f.domain, sandbox_tests::SUPERVISOR, 1, 100_000)
            .unwrap()
            .into_iter()
            .filter(|e| {
                e.subject == format!("output:{out}") || e.subject == format!("output:{out2}")
            })
            .map(|e| (e.actor, e.action, e.details))
            .collect();
    let actions: Vec<&str> = trail.iter().map(|(_, a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "output.staged",
            "output.checked",
            "output.operator_request_changes",
            "output.staged",
            "output.checked",
            "output.operator_approve",
            "output.supervisor_approve"
        ]
    );
    assert_eq!(trail[0].0, DEVELOPER);
    assert_eq!(trail[1].0, "system");
    assert_eq!(trail[1].2["to"], "checked");
    assert_eq!(trail[2].0, OPERATOR);
    assert_eq!(trail[2].2["from"], "checked");
    assert_eq!(trail[2].2["to"], "changes_requested");
    assert_eq!(trail[2].2["reason"], "say where the 41 percent comes from");
    assert_eq!(trail[6].0, SUPERVISOR);
    assert_eq!(trail[6].2["to"], "operator_approved");
}

/// The `output.refused` events recorded for `out`, with their reasons.
fn refusals_of(f: &Fixture, out: &str) -> Vec<String> {
    sandbox_runtime::audit::log(&f.domain, SUPERVISOR, 1, 100_000)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "output.refused" && e.subject == format!("output:{out}"))
        .map(|e| e.details["reason"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn no_decision_or_release_while_a_stop_covers_the_work_or_its_scenario_or_submitter_is_suspended() {
    use sandbox_runtime::identity::{self, Status};
    use sandbox_runtime::scenarios::{self, Change};
    use sandbox_runtime::stops::{self, Scope};

    let f = Fixture::new();
    let out = staged_text(&f, "Average income rose in every district.");
    let scenario = f.scenario.id.to_string();

    // A domain-wide stop: neither tier decides, and the refusal is recorded.
    let stop = stops::stop(&f.domain, SUPERVISOR, Scope::Domain, "incident 7").unwrap();
    assert!(matches!(
        review::decide(&f.domain, OPERATOR, &out, Decision::Approve, None),
        Err(Error::Stopped(_))
    ));
    assert_eq!(refusals_of(&f, &out).len(), 1);
    stops::lift(&f.domain, SUPERVISOR, stop.id, "incident closed").unwrap();
    review::decide(&f.domain, OPERATOR, &out, Decision::Approve, None).unwrap();

    // Operator-approved: a stop over the developer, then over the scenario, holds the
    // supervisor's approval and so the release.
    for scope in [
        Scope::Developer(DEVELOPER.into()),
        Scope::Scenario(f.scenario.id),
    ] {
        let stop = stops::stop(&f.domain, OPERATOR, scope, "under review").unwrap();
        assert!(matches!(
            review::decide(&f.domain, SUPERVISOR, &out, Decision::Approve, None),
            Err(Error::Stopped(_))
        ));
        assert!(matches!(
            review::release(&f.domain, SUPERVISOR, &out),
            Err(Error::Stopped(_))
        ));
        stops::lift(&f.domain, OPERATOR, stop.id, "cleared").unwrap();
    }

    // A suspended scenario: refused, and reinstated, allowed again.
    scenarios::change(&f.domain, OPERATOR, &scenario, Change::Suspend, "rectify").unwrap();
    assert!(matches!(
        review::decide(&f.domain, SUPERVISOR, &out, Decision::Approve, None),
        Err(Error::Forbidden(m)) if m.contains("suspended")
    ));
    scenarios::change(
        &f.domain,
        OPERATOR,
        &scenario,
        Change::Reinstate,
        "rectified",
    )
    .unwrap();

    // A suspended submitter: refused too.
    identity::set_status(&f.domain, OPERATOR, DEVELOPER, Status::Suspended, "inquiry").unwrap();
    assert!(matches!(
        review::decide(&f.domain, SUPERVISOR, &out, Decision::Approve, None),
        Err(Error::Forbidden(m)) if m.contains(DEVELOPER)
    ));
    identity::set_status(&f.domain, OPERATOR, DEVELOPER, Status::Active, "cleared").unwrap();

    // Every refusal above is in the log; nothing was released while they held.
    assert_eq!(refusals_of(&f, &out).len(), 1 + 2 * 2 + 2);
    assert!(review::products(&f.domain, OPERATOR).unwrap().is_empty());
    let o = review::decide(&f.domain, SUPERVISOR, &out, Decision::Approve, None).unwrap();
    assert_eq!(o.status, "released");
    sandbox_runtime::audit::verify_custodian(&f.domain).unwrap();
}

/// The outputs of a job are one review request: decided together, with a thread between
/// reviewers and the developer, who answers a request for changes by resubmitting.
#[test]
fn a_review_is_a_conversation_that_ends_in_one_release_of_the_whole_request() {
    use sandbox_runtime::review::thread;
    let f = Fixture::new();
    let module = sandbox_tests::guest_module("income_by_district");
    let first = f.submit(&module, "{}", JobLimits::default()).unwrap();
    assert_eq!(first.status, "succeeded", "{first:?}");
    assert_eq!(first.outputs.len(), 2);
    let t = thread::thread(&f.domain, OPERATOR, &first.id).unwrap();
    assert_eq!(t.awaiting, ["operator"]);
    assert_eq!(t.developer, DEVELOPER);
    // A request for changes needs a comment, and goes to every output of the job.
    assert!(matches!(
        thread::decide_request(
            &f.domain,
            OPERATOR,
            &first.id,
            Decision::RequestChanges,
            None
        ),
        Err(Error::Invalid(_))
    ));
    let decided = thread::decide_request(
        &f.domain,
        OPERATOR,
        &first.id,
        Decision::RequestChanges,
        Some("Show only districts with at least 100 residents."),
    )
    .unwrap();
    assert_eq!(decided.len(), 2);
    assert!(decided.iter().all(|o| o.status == "changes_requested"));
    // The developer reads why, answers, and resubmits.
    let t = thread::thread(&f.domain, DEVELOPER, &first.id).unwrap();
    assert_eq!(t.awaiting, ["developer"]);
    assert!(t.entries.iter().any(|e| e.kind == "decision"
        && e.decision.as_deref() == Some("request_changes")
        && e.text.as_deref() == Some("Show only districts with at least 100 residents.")));
    thread::comment(&f.domain, DEVELOPER, &first.id, "Filtered; resubmitting.").unwrap();
    // Nobody else reads or writes the thread: another developer, a provider, an admin.
    use sandbox_runtime::identity;
    identity::add(
        &f.domain,
        Some(OPERATOR),
        "dev-two",
        sandbox_core::Role::Developer,
    )
    .unwrap();
    identity::add(
        &f.domain,
        Some(OPERATOR),
        "adm-he",
        sandbox_core::Role::Admin,
    )
    .unwrap();
    for who in ["dev-two", sandbox_tests::PROVIDER, "adm-he"] {
        assert!(matches!(
            thread::thread(&f.domain, who, &first.id),
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(
            thread::comment(&f.domain, who, &first.id, "hello"),
            Err(Error::Forbidden(_))
        ));
    }
    assert!(matches!(
        thread::comment(&f.domain, DEVELOPER, &first.id, "   "),
        Err(Error::Invalid(_))
    ));
    let resubmit = |earlier: &str| {
        jobs::submit(
            &f.domain,
            DEVELOPER,
            &jobs::Submission {
                scenario: &f.scenario.spec.name,
                module: &module,
                params_json: r#"{"min_age": 18}"#,
                limits: JobLimits::default().into(),
                resubmits: Some(earlier),
            },
        )
    };
    let second = resubmit(&first.id).unwrap();
    assert_eq!(second.status, "succeeded", "{second:?}");
    // One answer per request for changes; a job without one cannot be answered.
    assert!(matches!(resubmit(&first.id), Err(Error::Conflict(_))));
    assert!(matches!(resubmit(&second.id), Err(Error::Review(_))));
    // The request continues: both jobs, every entry, whichever job it is read from.
    let t = thread::thread(&f.domain, OPERATOR, &second.id).unwrap();
    let jobs_of: Vec<&str> = t.jobs.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(jobs_of, [first.id.as_str(), second.id.as_str()]);
    assert_eq!(t.awaiting, ["operator"]);
    assert_eq!(
        t.entries.len(),
        3,
        "two decisions and one comment: {:?}",
        t.entries
    );
    assert_eq!(
        thread::thread(&f.domain, SUPERVISOR, &first.id)
            .unwrap()
            .jobs
            .len(),
        2
    );
    // Approved together: the operator (with the note the checks ask for), then the
    // supervisor, whose approval releases every output of the job.
    assert!(matches!(
        thread::decide_request(&f.domain, SUPERVISOR, &second.id, Decision::Approve, None),
        Err(Error::Review(_))
    ));
    let approved = thread::decide_request(
        &f.domain,
        OPERATOR,
        &second.id,
        Decision::Approve,
        Some("Rounded figures; districts are large."),
    )
    .unwrap();
    assert!(approved.iter().all(|o| o.status == "operator_approved"));
    let released = thread::decide_request(
        &f.domain,
        SUPERVISOR,
        &second.id,
        Decision::Approve,
        Some("Agreed."),
    )
    .unwrap();
    assert!(released.iter().all(|o| o.status == "released"));
    assert_eq!(review::products(&f.domain, OPERATOR).unwrap().len(), 2);
    assert_eq!(
        thread::thread(&f.domain, DEVELOPER, &second.id)
            .unwrap()
            .awaiting,
        Vec::<String>::new()
    );
    // The thread is in the audit log, with its text.
    let events = sandbox_runtime::audit::log(&f.domain, OPERATOR, 0, 10_000).unwrap();
    let comment = events
        .iter()
        .find(|e| e.action == "review.commented")
        .unwrap();
    assert_eq!(comment.details["text"], "Filtered; resubmitting.");
    let queued = events.iter().rfind(|e| e.action == "job.queued").unwrap();
    assert_eq!(queued.details["resubmits"], first.id.as_str());
}

/// A manifest names the dataset versions the job's answers read, with their policies: a
/// version registered after the job, before the release, is not among its sources.
#[test]
fn a_manifest_names_the_versions_the_answers_read() {
    let f = Fixture::new();
    let module = sandbox_tests::guest_module("income_by_district");
    let report = f.submit(&module, "{}", JobLimits::default()).unwrap();
    assert_eq!(report.status, "succeeded", "{report:?}");
    let out = report
        .outputs
        .iter()
        .find(|o| o.kind == "table")
        .unwrap()
        .id
        .clone();
    // The provider registers a second version of the dataset while the output waits.
    sandbox_tests::add_residents(&f.domain, f.dir.path(), 500);
    let current = sandbox_runtime::catalog::get(&f.domain, OPERATOR, "residents").unwrap();
    assert_eq!(current.version, 2);
    review::decide(&f.domain, OPERATOR, &out, Decision::Approve, None).unwrap();
    let o = review::decide(&f.domain, SUPERVISOR, &out, Decision::Approve, None).unwrap();
    assert_eq!(o.status, "released");
    let product = review::products(&f.domain, OPERATOR)
        .unwrap()
        .into_iter()
        .find(|p| p.output_id == out)
        .unwrap();
    let manifest = review::verify_product(&product.path, None).unwrap();
    let datasets = manifest["datasets"].as_array().unwrap();
    assert_eq!(datasets.len(), 1, "{datasets:?}");
    assert_eq!(datasets[0]["name"], "residents");
    assert_eq!(datasets[0]["version"], 1);
    assert_eq!(
        datasets[0]["policy_sha256"].as_str().map(str::len),
        Some(64)
    );
    assert!(datasets[0]["obtained_at"].is_string());
    // The record behind it cannot be changed.
    let conn = sandbox_tests::raw(&f.domain);
    assert!(
        conn.execute("UPDATE query_datasets SET version = 2", [])
            .is_err()
    );
    assert!(conn.execute("DELETE FROM query_datasets", []).is_err());
}
