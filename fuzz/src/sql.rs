//! SQL mediation over the fixed schema of [`crate::world`]. Every text is checked under
//! both scenarios (differential privacy and threshold mode); an accepted one is answered,
//! and the answer goes through the oracle: it comes only from the mediator's noisy or
//! thresholded aggregate, never a value read from a protected column.
//!
//! Never a panic; a check fails only by a refusal; an answer is an answer, a refusal, or
//! the engine's failure after planning (the same for every dataset, which
//! `tests/all/independence.rs` pins). Anything else is a finding.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::array::RecordBatch;
use arrow::util::display::array_value_to_string;
use sandbox_policies::Mode;
use sandbox_runtime::Error;
use sandbox_runtime::mediate::{self, Answer, QueryRequest};

use crate::world::{self, CANARY, DEVELOPER, ROWS};

/// Answers judged by the oracle in this process, by mode (differential privacy,
/// threshold): the replay test checks that the generator reaches answers.
pub static JUDGED: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

/// The byte target: the input as SQL text.
pub fn run(data: &[u8]) {
    if let Ok(sql) = std::str::from_utf8(data) {
        mediate(sql);
    }
}

/// The planning stage alone, under both scenarios: the check and the explanation (the
/// rewrite to bounded aggregates and the noise it would take), without executing or
/// charging. Neither fails other than by a refusal, and they agree: a text the check
/// refuses is refused by the explanation under the same rule.
pub fn plan(sql: &str) {
    let w = world::world();
    for (scenario, mode) in [(w.dp, Mode::Dp), (w.threshold, Mode::Threshold)] {
        let scenario = scenario.to_string();
        let checked = match mediate::check(&w.domain, DEVELOPER, &scenario, sql) {
            Ok(_) => None,
            Err(Error::Refused(r)) => Some(r.rule),
            Err(e) => panic!("checking {sql:?} failed other than by a refusal: {e:?}"),
        };
        match (
            mediate::explain(&w.domain, DEVELOPER, &scenario, sql, None),
            checked,
        ) {
            (Ok(explained), None) => {
                if mode == Mode::Dp {
                    assert!(
                        explained
                            .statistics
                            .iter()
                            .all(|s| s.scale.is_finite() && s.scale > 0.0 && s.epsilon > 0.0),
                        "{sql:?}: a statistic explained without noise: {explained:?}"
                    );
                }
            }
            (Ok(explained), Some(rule)) => {
                panic!("{sql:?}: refused by the check ({rule:?}), explained: {explained:?}")
            }
            (Err(Error::Refused(r)), Some(rule)) => assert_eq!(
                r.rule, rule,
                "{sql:?}: the check and the explanation refuse under different rules"
            ),
            // The explanation's own rules (group keys from the data without δ, ...).
            (Err(Error::Refused(_)), None) => {}
            (Err(e), _) => panic!("explaining {sql:?} failed other than by a refusal: {e:?}"),
        }
    }
}

/// Checks, answers and judges `sql` under both scenarios.
pub fn mediate(sql: &str) {
    let w = world::world();
    for (scenario, mode) in [(w.dp, Mode::Dp), (w.threshold, Mode::Threshold)] {
        match mediate::check(&w.domain, DEVELOPER, &scenario.to_string(), sql) {
            Ok(_) => {}
            Err(Error::Refused(_)) => continue,
            Err(e) => panic!("checking {sql:?} failed other than by a refusal: {e:?}"),
        }
        let request = QueryRequest {
            scenario_id: scenario,
            job_id: None,
            actor: DEVELOPER,
            sql,
            epsilon: None,
        };
        match mediate::answer(&w.domain, &request) {
            Ok(answer) => judge(sql, mode, &answer),
            // A refusal after the check (the threshold mode's own rules), or the engine's
            // failure after planning: reported to a module as one fixed message.
            Err(Error::Refused(_) | Error::Engine(_)) => {}
            Err(e) => panic!("answering {sql:?} failed with {e:?}"),
        }
    }
}

/// The incomes of `people` as stored (the CSV's six decimals, read back).
fn incomes() -> &'static [f64] {
    static INCOMES: OnceLock<Vec<f64>> = OnceLock::new();
    INCOMES.get_or_init(|| {
        (0..ROWS)
            .filter_map(|n| format!("{:.6}", world::income(n)).parse().ok())
            .collect()
    })
}

/// The oracle over one answer.
fn judge(sql: &str, mode: Mode, answer: &Answer) {
    JUDGED[usize::from(mode == Mode::Threshold)].fetch_add(1, Ordering::Relaxed);
    let leak = find_protected(&answer.batch, sql);
    assert!(
        leak.is_none(),
        "{sql:?} ({mode:?}) released a protected value: {leak:?}\n{:?}",
        answer.batch
    );
    if mode == Mode::Dp {
        for n in &answer.noise {
            assert!(
                n.scale.is_finite() && n.scale > 0.0,
                "{sql:?}: a statistic released without noise: {n:?}"
            );
        }
        assert!(
            answer.noise.is_empty() || answer.epsilon > 0.0,
            "{sql:?}: noise without a charge ({answer:?})"
        );
    }
}

/// A cell of `batch` that holds a protected value: a canary text (unless the query's own
/// text holds it: a literal is not a value read from the data, and a literal's quote is
/// written twice in the SQL), or a row's exact income.
pub fn find_protected(batch: &RecordBatch, sql: &str) -> Option<String> {
    let quoted = format!("{}\n{}", sql, sql.replace("''", "'")).to_uppercase();
    for column in batch.columns() {
        for row in 0..batch.num_rows() {
            let Ok(text) = array_value_to_string(column, row) else {
                continue;
            };
            let upper = text.to_uppercase();
            if upper.contains(CANARY) && !quoted.contains(&upper) {
                return Some(text);
            }
            if let Ok(x) = text.parse::<f64>()
                && incomes().iter().any(|c| (x - c).abs() < 5e-7)
            {
                return Some(text);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Float64Array, StringArray};

    use super::*;

    fn batch(text: &str, x: f64) -> RecordBatch {
        RecordBatch::try_from_iter([
            ("k", Arc::new(StringArray::from(vec![text])) as ArrayRef),
            ("x", Arc::new(Float64Array::from(vec![x])) as ArrayRef),
        ])
        .unwrap()
    }

    #[test]
    fn the_oracle_sees_a_canary_and_an_exact_income() {
        let income = incomes()[17];
        assert_eq!(find_protected(&batch("hexi", 1.5), "SELECT 1"), None);
        assert!(find_protected(&batch("CANARYNAME-3", 1.5), "SELECT 1").is_some());
        assert!(find_protected(&batch("王伟-canary-7", 1.5), "SELECT 1").is_some());
        assert!(find_protected(&batch("hexi", income), "SELECT 1").is_some());
        assert!(find_protected(&batch("hexi", income + 0.01), "SELECT 1").is_none());
        // The query's own literal is not a value of the data.
        assert_eq!(
            find_protected(&batch("CANARYNAME-3", 1.5), "SELECT 'CANARYNAME-3'"),
            None
        );
        // Nor is one with a quote in it, written twice in the SQL (the `sql` target's
        // oracle called it a leak at 7.08 million executions).
        assert_eq!(
            find_protected(
                &batch("it's CANARYNAME-3", 1.5),
                "SELECT 'it''s CANARYNAME-3'"
            ),
            None
        );
        assert!(find_protected(&batch("it's CANARYNAME-3", 1.5), "SELECT 'its'").is_some());
    }
}
