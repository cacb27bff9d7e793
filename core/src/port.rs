//! The traits through which the layers talk without depending on each other.
//!
//! - [`QueryPort`]: the WASM host's only way to data. The host holds one per job and
//!   knows nothing else of the domain: no store, no files, no engine.
//! - [`Interrupter`]: how a layer that records a stop, a suspension or a cancel reaches
//!   the jobs running in this process, without depending on the host.

use std::path::Path;

use crate::Result;
use crate::job::{Interrupt, StopTarget};

/// Who asks a query: the job, its scenario and its submitter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asker {
    /// The scenario paying and scoping.
    pub scenario_id: i64,
    /// The job asking.
    pub job_id: String,
    /// The job's submitter.
    pub actor: String,
}

/// Answers a job's queries. Implemented by the mediator.
pub trait QueryPort: Send + Sync {
    /// Answers `sql` for `asker` at `epsilon` (the scenario's ε per query when `None`):
    /// the answer as an Arrow IPC stream, or why not ([`crate::Error::Refused`], with
    /// [`crate::refusal::Rule::BudgetExhausted`] when the budget cannot pay, or a failure
    /// whose detail stays in the domain).
    fn query(&self, asker: &Asker, sql: &str, epsilon: Option<f64>) -> Result<Vec<u8>>;
}

/// Interrupts the jobs running in this process. Implemented by the WASM host.
pub trait Interrupter: Send + Sync {
    /// The running jobs of the domain at `domain` that `target` covers, without touching
    /// them (to record before the change that interrupts them commits).
    fn covered(&self, domain: &Path, target: &StopTarget) -> Result<Vec<String>>;

    /// Interrupts the running jobs of the domain at `domain` that `target` covers, each
    /// ending with the error `why` gives; returns their ids.
    fn interrupt(&self, domain: &Path, target: &StopTarget, why: Interrupt) -> Result<Vec<String>>;
}
