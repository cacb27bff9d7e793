//! The register of organisations (QQHR Art. 14, 23): every principal may belong to one, by
//! its unified social credit code, with its security officer and the last day of its
//! qualification. An organisation whose qualification has ended has its developers' work
//! refused as a suspension's is (the one authorization path reads it), and its cap on ε,
//! if set, holds across all its members' scenarios (the ledger's charge reads it). Operators
//! and admins keep the register; operators, supervisors and admins read and export it.

use sandbox_core::audit::{EventKind, Subject};
use sandbox_core::authz::Action;
use sandbox_policies::check_credit_code;
use sandbox_store::authz::{self, On};
use sandbox_store::organisations::{self, OrganisationFields};
use sandbox_store::{audit, principals};
use serde_json::json;

pub use sandbox_core::principal::Organisation;

use crate::{Domain, Error, Result};

/// An organisation's entry as a caller writes it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganisationEntry {
    /// Name.
    pub name: String,
    /// Its security officer (数据安全负责人).
    pub security_officer: String,
    /// How to reach the security officer (a telephone number or an address).
    pub security_contact: String,
    /// Last day of its qualification, YYYY-MM-DD.
    pub qualified_until: String,
    /// The most ε its members' scenarios may spend together (none: no cap).
    #[serde(default)]
    pub epsilon_cap: Option<f64>,
}

impl OrganisationEntry {
    fn check(&self) -> Result<()> {
        for (field, value, most) in [
            ("name", &self.name, 200),
            ("security_officer", &self.security_officer, 100),
            ("security_contact", &self.security_contact, 200),
        ] {
            let n = value.trim().chars().count();
            if n == 0 || n > most {
                return Err(Error::Invalid(format!("{field}: 1 to {most} characters")));
            }
        }
        if chrono::NaiveDate::parse_from_str(&self.qualified_until, "%Y-%m-%d").is_err() {
            return Err(Error::Invalid(format!(
                "qualified_until `{}`: a date, YYYY-MM-DD",
                self.qualified_until
            )));
        }
        if let Some(cap) = self.epsilon_cap
            && !(cap.is_finite() && cap > 0.0)
        {
            return Err(Error::Invalid(format!(
                "epsilon_cap {cap}: a positive number"
            )));
        }
        Ok(())
    }

    fn fields(&self) -> OrganisationFields<'_> {
        OrganisationFields {
            name: self.name.trim(),
            security_officer: self.security_officer.trim(),
            security_contact: self.security_contact.trim(),
            qualified_until: &self.qualified_until,
            epsilon_cap: self.epsilon_cap,
        }
    }
}

fn code_of(code: &str) -> Result<String> {
    let code = code.trim().to_ascii_uppercase();
    check_credit_code(&code).map_err(|e| Error::Invalid(e.to_string()))?;
    Ok(code)
}

/// Enters an organisation in the register.
pub fn register(
    domain: &Domain,
    actor: &str,
    credit_code: &str,
    entry: &OrganisationEntry,
) -> Result<Organisation> {
    let code = code_of(credit_code)?;
    entry.check()?;
    let mut conn = domain.conn()?;
    let tx = conn.write()?;
    authz::authorize(&tx, actor, Action::OrganisationManage, On::Domain)?;
    if organisations::get(&tx, &code)?.is_some() {
        return Err(Error::Conflict(format!(
            "organisation {code} is registered"
        )));
    }
    organisations::insert(&tx, &code, &entry.fields(), actor, &sandbox_store::now())?;
    audit::append(
        &tx,
        actor,
        EventKind::OrganisationRegistered,
        &Subject::Organisation(code.clone()),
        json!({"name": entry.name.trim(), "security_officer": entry.security_officer.trim(),
               "security_contact": entry.security_contact.trim(),
               "qualified_until": entry.qualified_until, "epsilon_cap": entry.epsilon_cap}),
    )?;
    let o = found(&tx, &code)?;
    tx.commit()?;
    Ok(o)
}

/// Changes an organisation's entry (its qualification renewed or ended, a new officer, a
/// cap), with a written reason; the event records what it was and what it is.
pub fn change(
    domain: &Domain,
    actor: &str,
    credit_code: &str,
    entry: &OrganisationEntry,
    reason: &str,
) -> Result<Organisation> {
    let code = code_of(credit_code)?;
    entry.check()?;
    if reason.trim().is_empty() {
        return Err(Error::Invalid(format!(
            "changing organisation {code} needs a reason"
        )));
    }
    let mut conn = domain.conn()?;
    let tx = conn.write()?;
    authz::authorize(&tx, actor, Action::OrganisationManage, On::Domain)?;
    let before = found(&tx, &code)?;
    organisations::update(&tx, &code, &entry.fields(), &sandbox_store::now())?;
    let after = found(&tx, &code)?;
    audit::append(
        &tx,
        actor,
        EventKind::OrganisationChanged,
        &Subject::Organisation(code.clone()),
        json!({"reason": reason.trim(), "from": entry_json(&before), "to": entry_json(&after)}),
    )?;
    tx.commit()?;
    Ok(after)
}

fn entry_json(o: &Organisation) -> serde_json::Value {
    json!({"name": o.name, "security_officer": o.security_officer,
           "security_contact": o.security_contact, "qualified_until": o.qualified_until,
           "epsilon_cap": o.epsilon_cap})
}

fn found(conn: &sandbox_store::Conn, code: &str) -> Result<Organisation> {
    organisations::get(conn, code)?.ok_or_else(|| Error::NotFound(format!("organisation {code}")))
}

/// Places a principal in an organisation, or (`None`) takes it out of its own.
pub fn assign(
    domain: &Domain,
    actor: &str,
    principal: &str,
    credit_code: Option<&str>,
) -> Result<crate::identity::Principal> {
    let code = credit_code.map(code_of).transpose()?;
    let mut conn = domain.conn()?;
    let tx = conn.write()?;
    authz::authorize(&tx, actor, Action::OrganisationManage, On::Domain)?;
    let p = principals::lookup(&tx, principal)?
        .ok_or_else(|| Error::NotFound(format!("principal `{principal}`")))?;
    if let Some(code) = &code {
        found(&tx, code)?;
    }
    if p.organisation == code {
        return Err(Error::Conflict(match &code {
            Some(c) => format!("principal `{principal}` belongs to {c} already"),
            None => format!("principal `{principal}` belongs to no organisation"),
        }));
    }
    organisations::set_member(&tx, principal, code.as_deref())?;
    audit::append(
        &tx,
        actor,
        EventKind::PrincipalOrganisationSet,
        &Subject::Principal(principal.to_string()),
        json!({"from": p.organisation, "to": code}),
    )?;
    tx.commit()?;
    Ok(crate::identity::Principal {
        organisation: code,
        ..p
    })
}

/// The register.
pub fn list(domain: &Domain, actor: &str) -> Result<Vec<Organisation>> {
    let conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::OrganisationRead, On::Domain)?;
    Ok(organisations::list(&conn)?)
}

/// One organisation of the register.
pub fn get(domain: &Domain, actor: &str, credit_code: &str) -> Result<Organisation> {
    let code = code_of(credit_code)?;
    let conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::OrganisationRead, On::Domain)?;
    found(&conn, &code)
}

/// How the register is exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RegisterFormat {
    /// JSON: the entries as the API answers them.
    Json,
    /// CSV with a header row, UTF-8 with a byte-order mark (Excel and WPS read Chinese
    /// text right).
    Csv,
}

/// The register as a file, recorded as an `organisation.exported` event with the hash of
/// what left.
pub fn export(domain: &Domain, actor: &str, format: RegisterFormat) -> Result<Vec<u8>> {
    let mut conn = domain.conn()?;
    let tx = conn.write()?;
    authz::authorize(&tx, actor, Action::OrganisationRead, On::Domain)?;
    let all = organisations::list(&tx)?;
    let bytes = match format {
        RegisterFormat::Json => serde_json::to_vec_pretty(&all)?,
        RegisterFormat::Csv => register_csv(&all).into_bytes(),
    };
    audit::append(
        &tx,
        actor,
        EventKind::OrganisationsExported,
        &Subject::Domain,
        json!({"organisations": all.len(), "format": match format { RegisterFormat::Json => "json", RegisterFormat::Csv => "csv" },
               domain.keys().suite().hash_name(): domain.keys().suite().hash_hex(&bytes)}),
    )?;
    tx.commit()?;
    Ok(bytes)
}

fn register_csv(all: &[Organisation]) -> String {
    fn field(s: &str) -> String {
        // A leading formula character is quoted so a spreadsheet shows it as text.
        let s = if s.starts_with(['=', '+', '-', '@']) {
            format!("'{s}")
        } else {
            s.to_string()
        };
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s
        }
    }
    let mut out = String::from(
        "\u{feff}credit_code,name,security_officer,security_contact,qualified_until,epsilon_cap,epsilon_spent,members,created_by,created_at,updated_at\r\n",
    );
    for o in all {
        let row = [
            o.credit_code.clone(),
            o.name.clone(),
            o.security_officer.clone(),
            o.security_contact.clone(),
            o.qualified_until.clone(),
            o.epsilon_cap.map(|c| c.to_string()).unwrap_or_default(),
            o.epsilon_spent.to_string(),
            o.members.join(" "),
            o.created_by.clone(),
            o.created_at.clone(),
            o.updated_at.clone(),
        ];
        out.push_str(&row.iter().map(|f| field(f)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}
