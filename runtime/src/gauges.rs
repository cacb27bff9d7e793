//! The domain's state in numbers, for monitoring (the server's `/metrics`): jobs,
//! scenarios and outputs by status, every scenario's budget, the audit log's size and the
//! products released. Operators and supervisors read them.

use sandbox_core::authz::Action;
use sandbox_store::authz::{self, On};
use sandbox_store::{audit, jobs, outputs, scenarios};

use crate::{Domain, Result};

/// The domain's gauges as they are now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gauges {
    /// Jobs by status (statuses with none are left out).
    pub jobs_by_status: Vec<(String, i64)>,
    /// Scenarios by status.
    pub scenarios_by_status: Vec<(String, i64)>,
    /// Outputs by status.
    pub outputs_by_status: Vec<(String, i64)>,
    /// Every scenario's (id, ε spent, ε granted).
    pub budgets: Vec<(i64, f64, f64)>,
    /// Events in the audit log.
    pub audit_events: i64,
    /// Products released.
    pub products: i64,
}

/// Reads the gauges (one snapshot of the store).
pub fn read(domain: &Domain, actor: &str) -> Result<Gauges> {
    let mut conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::UsageRead, On::Domain)?;
    let tx = conn.snapshot()?;
    let gauges = Gauges {
        jobs_by_status: jobs::count_by_status(&tx)?,
        scenarios_by_status: scenarios::count_by_status(&tx)?,
        outputs_by_status: outputs::count_by_status(&tx)?,
        budgets: scenarios::budgets(&tx)?,
        audit_events: audit::log_size(&tx)?,
        products: outputs::products(&tx)?.len() as i64,
    };
    tx.commit()?;
    Ok(gauges)
}
