//! Principals: named identities with one role each, and a status (Qiqihar Art. 14, 23).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// What a principal does in the domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Registers datasets and their policies.
    Provider,
    /// Runs the platform: approves scenarios, first-tier review.
    Operator,
    /// Writes modules, applies for scenarios, submits jobs.
    Developer,
    /// Second-tier review, audit.
    Supervisor,
    /// Receives the released products granted to it (or to its organisation) and nothing
    /// else (TJ-Sec Art. 9, 11; SYS Art. 33): no dataset, scenario, job or output.
    DataUser,
    /// Identity administration only: the first principal of a domain may be one (to
    /// bootstrap it); adds principals, issues and revokes tokens, qualifies, suspends and
    /// revokes principals. Decides nothing else and sees no scenario, job or output.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 6] = [
        Role::Provider,
        Role::Operator,
        Role::Developer,
        Role::Supervisor,
        Role::DataUser,
        Role::Admin,
    ];

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Provider => "provider",
            Role::Operator => "operator",
            Role::Developer => "developer",
            Role::Supervisor => "supervisor",
            Role::DataUser => "data_user",
            Role::Admin => "admin",
        }
    }

    /// Whether the role administers identities (adds principals, issues tokens, changes a
    /// principal's status).
    pub fn administers_identities(self) -> bool {
        matches!(self, Role::Operator | Role::Admin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Role> {
        match s {
            "provider" => Ok(Role::Provider),
            "operator" => Ok(Role::Operator),
            "developer" => Ok(Role::Developer),
            "supervisor" => Ok(Role::Supervisor),
            "data_user" => Ok(Role::DataUser),
            "admin" => Ok(Role::Admin),
            other => Err(Error::Forbidden(format!(
                "unknown role `{other}` (provider, operator, developer, supervisor, data_user, admin)"
            ))),
        }
    }
}

/// Whether a principal may act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// May act in its role.
    Active,
    /// Refused everywhere until qualified again.
    Suspended,
    /// Refused everywhere, for good.
    Revoked,
}

impl Status {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Suspended => "suspended",
            Status::Revoked => "revoked",
        }
    }

    /// The status a stored name stands for.
    pub fn parse(s: &str) -> Result<Status> {
        match s {
            "active" => Ok(Status::Active),
            "suspended" => Ok(Status::Suspended),
            "revoked" => Ok(Status::Revoked),
            other => Err(Error::Internal(format!("principal status `{other}`"))),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A named identity. Its fields are in alphabetical order: the CLI prints a server's
/// answer (a JSON object, whose keys it reads sorted) as it prints its own.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Principal {
    /// The language it reads Sandbox in, if it chose one (else the client's, else the
    /// domain's default).
    pub language: Option<crate::Lang>,
    /// Unique name.
    pub name: String,
    /// The unified social credit code of its organisation, if it belongs to one.
    pub organisation: Option<String>,
    /// Role.
    pub role: Role,
    /// Whether it may act.
    pub status: Status,
}

/// An organisation principals belong to (QQHR Art. 14, 23): the register's entry. Fields in
/// alphabetical order, like [`Principal`]'s.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Organisation {
    /// When it was registered.
    pub created_at: String,
    /// Who registered it.
    pub created_by: String,
    /// Unified social credit code (统一社会信用代码, GB 32100-2015).
    pub credit_code: String,
    /// The most ε its members' scenarios may spend together, if capped.
    pub epsilon_cap: Option<f64>,
    /// The ε its members' scenarios have spent together.
    pub epsilon_spent: f64,
    /// Its principals.
    pub members: Vec<String>,
    /// Name.
    pub name: String,
    /// Last day of its qualification (YYYY-MM-DD): after it, its developers' work is
    /// refused as a suspension's is.
    pub qualified_until: String,
    /// How to reach its security officer.
    pub security_contact: String,
    /// Its security officer (数据安全负责人).
    pub security_officer: String,
    /// When it was last changed.
    pub updated_at: String,
}
