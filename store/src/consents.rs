//! Tables `scenario_consents` and `scenario_types`: the providers' and the supervisor's word
//! on a scenario before it is used (JZ Art. 11; SYS Art. 43; TJ-Sec Art. 7), the applicant's
//! answers to objections, and the scenario types a whole review established (QQHR Art. 15).

use crate::db::{OptionalExt, args};

use crate::{Conn, Result};

/// One recorded word on a scenario.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct ConsentRow {
    /// `provider` or `supervisor`.
    pub party: String,
    /// The dataset a provider speaks for (none for the supervisor).
    pub dataset: Option<String>,
    /// Who.
    pub actor: String,
    /// `no_objection`, `objection` or `answer` (the applicant's, to an objection).
    pub decision: String,
    /// An objection's reasons, or an answer.
    pub text: Option<String>,
    /// When.
    pub created_at: String,
}

/// Records a word on a scenario.
pub fn record(
    conn: &Conn,
    scenario_id: i64,
    party: &str,
    dataset: Option<&str>,
    actor: &str,
    decision: &str,
    text: Option<&str>,
) -> Result<()> {
    conn.execute(
        "INSERT INTO scenario_consents (scenario_id, party, dataset, actor, decision, text, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        args![scenario_id, party, dataset, actor, decision, text, crate::now()],
    )?;
    Ok(())
}

/// Every word on a scenario, in the order recorded.
pub fn of_scenario(conn: &Conn, scenario_id: i64) -> Result<Vec<ConsentRow>> {
    conn.rows(
        "SELECT party, dataset, actor, decision, text, created_at FROM scenario_consents
             WHERE scenario_id = ?1 ORDER BY id",
        args![scenario_id],
        |r| {
            Ok(ConsentRow {
                party: r.get(0)?,
                dataset: r.get(1)?,
                actor: r.get(2)?,
                decision: r.get(3)?,
                text: r.get(4)?,
                created_at: r.get(5)?,
            })
        },
    )
}

/// A scenario type as established.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct ScenarioType {
    /// Name (what a scenario's `type` names).
    pub name: String,
    /// What scenarios of the type do.
    pub description: String,
    /// The scenario whose whole review established it.
    pub scenario_id: i64,
    /// Its datasets with their columns, and its mode, as JSON.
    pub shape: serde_json::Value,
    /// Who established it (an operator).
    pub created_by: String,
    /// When.
    pub created_at: String,
}

/// Records a scenario type.
pub fn insert_type(conn: &Conn, t: &ScenarioType) -> Result<()> {
    conn.execute(
        "INSERT INTO scenario_types (name, description, scenario_id, shape_json, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        args![
            t.name,
            t.description,
            t.scenario_id,
            t.shape.to_string(),
            t.created_by,
            t.created_at
        ],
    )?;
    Ok(())
}

fn type_row(r: &crate::db::Row<'_>) -> crate::Result<(ScenarioType, String)> {
    Ok((
        ScenarioType {
            name: r.get(0)?,
            description: r.get(1)?,
            scenario_id: r.get(2)?,
            shape: serde_json::Value::Null,
            created_by: r.get(4)?,
            created_at: r.get(5)?,
        },
        r.get(3)?,
    ))
}

fn with_shape((mut t, shape): (ScenarioType, String)) -> Result<ScenarioType> {
    t.shape = serde_json::from_str(&shape)
        .map_err(|e| sandbox_core::Error::Internal(format!("scenario type {}: {e}", t.name)))?;
    Ok(t)
}

/// A scenario type by name.
pub fn get_type(conn: &Conn, name: &str) -> Result<Option<ScenarioType>> {
    conn.query_row(
        "SELECT name, description, scenario_id, shape_json, created_by, created_at
         FROM scenario_types WHERE name = ?1",
        args![name],
        type_row,
    )
    .optional()?
    .map(with_shape)
    .transpose()
}

/// Every scenario type, by name.
pub fn types(conn: &Conn) -> Result<Vec<ScenarioType>> {
    let rows: Vec<(ScenarioType, String)> = conn.rows(
        "SELECT name, description, scenario_id, shape_json, created_by, created_at
             FROM scenario_types ORDER BY name",
        args![],
        type_row,
    )?;
    rows.into_iter().map(with_shape).collect()
}
