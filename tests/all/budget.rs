//! The privacy-budget ledger: a spent budget refuses; the ledger never goes negative or
//! over, even under concurrent queries.

use sandbox_core::refusal::Rule;
use sandbox_runtime::Error;
use sandbox_runtime::mediate::{self, QueryRequest};
use sandbox_runtime::privacy::ledger;
use sandbox_tests::{DEVELOPER, Fixture};

#[test]
fn spent_budget_refuses_and_the_ledger_never_goes_negative() {
    let f = Fixture::with_budget(1.0, 0.4);
    let sql = "SELECT COUNT(*) FROM residents";
    f.ask(sql).unwrap();
    f.ask(sql).unwrap();
    // 0.8 spent, 0.2 left: a 0.4 query must be refused, and stays refused.
    for _ in 0..3 {
        match f.ask(sql) {
            Err(Error::Refused(r)) if r.rule == Rule::BudgetExhausted => {
                assert!(r.message.contains("left"), "{r}")
            }
            other => panic!("expected a budget refusal, got {other:?}"),
        }
    }
    let conn = sandbox_tests::raw(&f.domain);
    let b = ledger::balance(&f.domain.conn().unwrap(), f.scenario.id).unwrap();
    assert!((b.epsilon_spent - 0.8).abs() < 1e-9, "{b:?}");
    assert!(b.epsilon_remaining() >= 0.0);
    assert!(
        (ledger::ledger_sum(&f.domain.conn().unwrap(), f.scenario.id).unwrap() - b.epsilon_spent)
            .abs()
            < 1e-9
    );
    // The ledger cannot be rewritten through SQL.
    assert!(conn.execute("DELETE FROM ledger", []).is_err());
    assert!(conn.execute("UPDATE ledger SET epsilon = 0", []).is_err());
    // Nor can the running total exceed the budget.
    assert!(
        conn.execute(
            "UPDATE scenarios SET epsilon_spent = 5 WHERE id = ?1",
            [f.scenario.id]
        )
        .is_err()
    );
}

#[test]
fn concurrent_queries_never_overspend() {
    let f = Fixture::with_budget(1.0, 0.1);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let domain = f.domain.clone();
            let scenario_id = f.scenario.id;
            std::thread::spawn(move || {
                let mut answered = 0;
                for _ in 0..4 {
                    let r = mediate::answer(
                        &domain,
                        &QueryRequest {
                            scenario_id,
                            job_id: None,
                            actor: DEVELOPER,
                            sql: "SELECT COUNT(*) FROM residents",
                            epsilon: None,
                        },
                    );
                    match r {
                        Ok(_) => answered += 1,
                        Err(Error::Refused(r)) if r.rule == Rule::BudgetExhausted => {}
                        Err(e) => panic!("{e}"),
                    }
                }
                answered
            })
        })
        .collect();
    let answered: i32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(answered, 10, "exactly ε 1.0 / 0.1 queries can be paid");
    let b = ledger::balance(&f.domain.conn().unwrap(), f.scenario.id).unwrap();
    assert!(b.epsilon_spent <= b.epsilon_total + 1e-9, "{b:?}");
    assert!(
        (ledger::ledger_sum(&f.domain.conn().unwrap(), f.scenario.id).unwrap() - 1.0).abs() < 1e-9
    );
    sandbox_runtime::audit::verify_custodian(&f.domain).unwrap();
}

#[test]
fn zcdp_scenarios_compose_in_rho_and_refuse_past_their_budget() {
    let (dir, domain) = sandbox_tests::empty_domain();
    sandbox_tests::add_residents(&domain, dir.path(), 500);
    // ε 10 at δ 1e-6 allows ρ ≈ 1.35; a query of ε 0.5 costs ρ 0.125: ten fit, where
    // basic composition would allow twenty at ε 0.5... but each is Gaussian, not Laplace.
    let text = sandbox_tests::scenario_text("zcdp", 10.0, 0.5).replace(
        "epsilon_per_query = 0.5",
        "epsilon_per_query = 0.5\ndelta = 0.000001\naccounting = \"zcdp\"",
    );
    let s = sandbox_runtime::scenarios::apply(&domain, sandbox_tests::DEVELOPER, &text).unwrap();
    let s = sandbox_tests::approve(&domain, &s.id.to_string()).unwrap();
    let sql = "SELECT district, COUNT(*) FROM residents GROUP BY district";
    let mut answered = 0;
    loop {
        match sandbox_tests::ask_in(&domain, s.id, sql) {
            Ok(a) => {
                assert!(a.mechanism.contains("gaussian"), "{}", a.mechanism);
                assert!(a.noise.iter().all(|n| n.rho > 0.0 && n.epsilon == 0.0));
                answered += 1;
            }
            Err(Error::Refused(r)) if r.rule == Rule::BudgetExhausted => {
                assert!(r.message.contains("ρ"), "{r}");
                break;
            }
            Err(e) => panic!("{e}"),
        }
        assert!(answered <= 20);
    }
    assert_eq!(answered, 10);
    let b = ledger::balance(&domain.conn().unwrap(), s.id).unwrap();
    assert!((b.rho_spent - 1.25).abs() < 1e-9, "{b:?}");
    assert!(b.epsilon_spent <= b.epsilon_total, "{b:?}");
    assert!(b.epsilon_spent > 9.0, "{b:?}");
}
