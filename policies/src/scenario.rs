//! The scenario: one agreement for one use of data (QQHR Art. 15, 16).

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::error::{PolicyError, Result};
use crate::level::Access;
use crate::policy::{Mode, Policy, check_identifier};

/// Longest validity window of an authorization: five years (JZ Art. 9).
pub const MAX_VALIDITY_DAYS: i64 = 5 * 366;

/// Resource limits of every job of a scenario, as the operator approved them. A job may
/// ask for less, never for more; a limit not given here is the host's default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Fuel (roughly, WebAssembly instructions).
    #[serde(default)]
    pub fuel: Option<u64>,
    /// Wall-clock deadline in milliseconds (at most one hour).
    #[serde(default)]
    pub deadline_ms: Option<u64>,
    /// Linear memory in MiB (at most 1024).
    #[serde(default)]
    pub memory_mib: Option<u64>,
    /// Queries per job.
    #[serde(default)]
    pub max_queries: Option<u32>,
    /// Outputs per job.
    #[serde(default)]
    pub max_outputs: Option<u32>,
    /// Bytes of one output.
    #[serde(default)]
    pub max_output_bytes: Option<u64>,
    /// Bytes of log text.
    #[serde(default)]
    pub max_log_bytes: Option<u64>,
}

impl LimitsSpec {
    fn validate(&self) -> Result<()> {
        let checks: [(&str, Option<u64>, u64); 7] = [
            ("limits.fuel", self.fuel, u64::MAX / 2),
            ("limits.deadline_ms", self.deadline_ms, 3_600_000),
            ("limits.memory_mib", self.memory_mib, 1024),
            (
                "limits.max_queries",
                self.max_queries.map(u64::from),
                10_000,
            ),
            ("limits.max_outputs", self.max_outputs.map(u64::from), 1_000),
            ("limits.max_output_bytes", self.max_output_bytes, 256 << 20),
            ("limits.max_log_bytes", self.max_log_bytes, 64 << 20),
        ];
        for (field, value, max) in checks {
            if let Some(v) = value
                && (v == 0 || v > max)
            {
                return Err(PolicyError::invalid(
                    field,
                    format!("must be between 1 and {max}"),
                ));
            }
        }
        Ok(())
    }
}

/// The privacy budget of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetSpec {
    /// Total ε over the scenario's life.
    pub epsilon: f64,
    /// Total δ (0 for pure DP).
    #[serde(default)]
    pub delta: f64,
    /// ε one query spends unless the module asks for less; also the cap per query.
    pub epsilon_per_query: f64,
    /// δ a query may spend to release group keys found in the data (τ-thresholding). 0
    /// (the default) allows only the policy's declared public categories as keys.
    #[serde(default)]
    pub delta_per_query: f64,
    /// How queries compose: `pure` (ε adds up, Laplace noise) or `zcdp` (zero-concentrated
    /// DP: a query of ε costs ρ = ε²/2, Gaussian noise, and the total ρ is held to what
    /// (`epsilon`, `delta`) allow).
    #[serde(default)]
    pub accounting: Accounting,
}

/// Composition of a scenario's queries.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Accounting {
    /// Basic composition of pure ε-DP.
    #[default]
    Pure,
    /// Zero-concentrated DP, converted to (ε, δ) for the scenario's budget.
    Zcdp,
}

impl BudgetSpec {
    /// The ρ a query of `epsilon` costs under zCDP: an ε-DP release is ε²/2-zCDP.
    pub fn rho_of(epsilon: f64) -> f64 {
        epsilon * epsilon / 2.0
    }

    /// The largest total ρ whose (ε, δ) conversion, ε = ρ + 2·sqrt(ρ·ln(1/δ)), stays
    /// within this budget. 0 under pure accounting or without δ.
    pub fn rho_total(&self) -> f64 {
        if self.accounting != Accounting::Zcdp || self.delta <= 0.0 {
            return 0.0;
        }
        let l = (1.0 / self.delta).ln();
        ((l + self.epsilon).sqrt() - l.sqrt()).powi(2)
    }

    /// The ε that a total ρ amounts to at this budget's δ.
    pub fn epsilon_of_rho(&self, rho: f64) -> f64 {
        if self.delta <= 0.0 {
            return f64::INFINITY;
        }
        rho + 2.0 * (rho * (1.0 / self.delta).ln()).sqrt()
    }
}

/// A dataset and the columns of it that a scenario needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioDataset {
    /// Registered dataset name.
    pub name: String,
    /// Columns asked for (minimum necessary).
    pub columns: Vec<String>,
}

/// The terms of a scenario agreement beyond its purpose, data, term and budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgreementTerms {
    /// The parties' rights and obligations.
    pub rights_and_obligations: String,
    /// The security requirements the developer undertakes.
    pub security_requirements: String,
    /// The legal basis of the use.
    pub legal_basis: String,
    /// What follows a breach (suspension, revocation, liability).
    pub breach: String,
}

/// A scenario application, as written by a developer in TOML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name: lowercase letters, digits, `_` and `-`.
    pub name: String,
    /// Purpose of the use, stated in the agreement.
    pub purpose: String,
    /// First day the scenario is valid.
    #[serde(with = "date")]
    #[schemars(with = "String")]
    pub valid_from: NaiveDate,
    /// Last day the scenario is valid.
    #[serde(with = "date")]
    #[schemars(with = "String")]
    pub valid_until: NaiveDate,
    /// Processing mode.
    #[serde(default)]
    pub mode: Mode,
    /// Its scenario type (QQHR Art. 15, "one type of scenario, one review"): a scenario of
    /// a type the domain has established, over the same datasets and columns in the same
    /// mode, needs no consents of its own, only the operator's approval.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub scenario_type: Option<String>,
    /// Privacy budget.
    pub budget: BudgetSpec,
    /// Resource limits of its jobs (host defaults where absent).
    #[serde(default)]
    pub limits: LimitsSpec,
    /// Datasets and columns.
    #[serde(rename = "dataset")]
    pub datasets: Vec<ScenarioDataset>,
    /// The response plan for a security incident in this use (QQHR Art. 20; JZ Art. 21): who
    /// is called, what is stopped, whom the developer notifies. Every application names
    /// one; `None` only in agreements stored before it was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_plan: Option<String>,
    /// The agreement's remaining terms (QQHR Art. 16; SYS Art. 27): rights and
    /// obligations, security requirements, legal basis, breach. Its term is the validity
    /// window. Every application carries them; `None` only in agreements stored before
    /// they were asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<AgreementTerms>,
    /// Who receives the scenario's products (TJ-Sec Art. 9, 11): data users by name, or
    /// `org:` and an organisation's unified social credit code. A product's scope at
    /// release; operators may grant it to others later, recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<crate::Grantee>,
}

impl Scenario {
    /// Parses a scenario application and checks the rules that need no catalog, the
    /// agreement's terms and the response plan included.
    pub fn from_toml_str(text: &str) -> Result<Scenario> {
        let s = Scenario::from_stored_toml(text)?;
        s.agreement_complete()?;
        Ok(s)
    }

    /// Parses a stored agreement: the rules of [`Scenario::validate`], not the ones added
    /// since it was approved (an agreement stored before its terms and response plan were
    /// asked for stays readable and usable until it ends).
    pub fn from_stored_toml(text: &str) -> Result<Scenario> {
        let s: Scenario = toml::from_str(text).map_err(|e| PolicyError::Parse {
            what: "scenario",
            message: e.to_string(),
        })?;
        s.validate()?;
        Ok(s)
    }

    /// An application's agreement is whole (QQHR Art. 16, 20; SYS Art. 27): the remaining
    /// terms and the response plan are given.
    pub fn agreement_complete(&self) -> Result<()> {
        match &self.response_plan {
            Some(plan) if plan.trim().chars().count() >= 10 => {}
            _ => {
                return Err(PolicyError::invalid(
                    "response_plan",
                    "name the response plan for a security incident: who is called, what is stopped, whom the developer notifies (at least 10 characters)",
                ));
            }
        }
        if self.agreement.is_none() {
            return Err(PolicyError::invalid(
                "agreement",
                "give the agreement's terms: rights_and_obligations, security_requirements, legal_basis and breach",
            ));
        }
        Ok(())
    }

    /// Checks names, window and budget.
    pub fn validate(&self) -> Result<()> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .chars()
                .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'));
        if !name_ok {
            return Err(PolicyError::invalid(
                "name",
                "1-64 characters of lowercase letters, digits, `_` and `-`",
            ));
        }
        if let Some(t) = &self.scenario_type
            && !(!t.is_empty()
                && t.len() <= 64
                && t.chars()
                    .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-')))
        {
            return Err(PolicyError::invalid(
                "type",
                "1-64 characters of lowercase letters, digits, `_` and `-`",
            ));
        }
        self.limits.validate()?;
        if self.purpose.trim().len() < 10 {
            return Err(PolicyError::invalid(
                "purpose",
                "state the purpose of the use (at least 10 characters)",
            ));
        }
        if self.valid_until < self.valid_from {
            return Err(PolicyError::invalid(
                "valid_until",
                "must not be before valid_from",
            ));
        }
        if (self.valid_until - self.valid_from).num_days() > MAX_VALIDITY_DAYS {
            return Err(PolicyError::invalid(
                "valid_until",
                "an authorization lasts at most five years (JZ Art. 9)",
            ));
        }
        let b = &self.budget;
        if !(b.epsilon.is_finite() && b.epsilon > 0.0 && b.epsilon <= 100.0) {
            return Err(PolicyError::invalid(
                "budget.epsilon",
                "must be in (0, 100]",
            ));
        }
        if !(b.epsilon_per_query.is_finite()
            && b.epsilon_per_query > 0.0
            && b.epsilon_per_query <= b.epsilon)
        {
            return Err(PolicyError::invalid(
                "budget.epsilon_per_query",
                "must be in (0, budget.epsilon]",
            ));
        }
        if !(b.delta.is_finite() && (0.0..1e-3).contains(&b.delta)) {
            return Err(PolicyError::invalid(
                "budget.delta",
                "must be in [0, 0.001)",
            ));
        }
        if b.accounting == Accounting::Zcdp && b.delta <= 0.0 {
            return Err(PolicyError::invalid(
                "budget.delta",
                "zCDP accounting converts to (ε, δ): give a δ above 0",
            ));
        }
        if self.datasets.is_empty() {
            return Err(PolicyError::invalid("dataset", "name at least one dataset"));
        }
        if let Some(a) = &self.agreement {
            for (field, text) in [
                (
                    "agreement.rights_and_obligations",
                    &a.rights_and_obligations,
                ),
                ("agreement.security_requirements", &a.security_requirements),
                ("agreement.legal_basis", &a.legal_basis),
                ("agreement.breach", &a.breach),
            ] {
                if text.trim().is_empty() {
                    return Err(PolicyError::invalid(field, "must not be empty"));
                }
            }
        }
        let mut seen = BTreeSet::new();
        for r in &self.recipients {
            if !seen.insert(r) {
                return Err(PolicyError::invalid(
                    "recipients",
                    format!("`{r}` is listed twice"),
                ));
            }
        }
        let mut names = BTreeSet::new();
        for d in &self.datasets {
            check_identifier("dataset.name", &d.name)?;
            if !names.insert(&d.name) {
                return Err(PolicyError::invalid(
                    "dataset.name",
                    format!("`{}` is listed twice", d.name),
                ));
            }
            if d.columns.is_empty() {
                return Err(PolicyError::invalid(
                    format!("dataset `{}` columns", d.name),
                    "name at least one column",
                ));
            }
            let mut cols = BTreeSet::new();
            for c in &d.columns {
                if !cols.insert(c) {
                    return Err(PolicyError::invalid(
                        format!("dataset `{}` columns", d.name),
                        format!("`{c}` is listed twice"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks the scenario against the registered policies: datasets exist, columns exist
    /// and are usable, the mode fits.
    pub fn validate_against<'a>(
        &self,
        policy_of: impl Fn(&str) -> Option<&'a Policy>,
    ) -> Result<()> {
        self.validate()?;
        for d in &self.datasets {
            let policy = policy_of(&d.name).ok_or_else(|| PolicyError::UnknownDataset {
                dataset: d.name.clone(),
            })?;
            if policy.dataset.mode != self.mode {
                return Err(PolicyError::invalid(
                    "mode",
                    format!(
                        "dataset `{}` is released in `{}` mode, the scenario asks for `{}`",
                        d.name, policy.dataset.mode, self.mode
                    ),
                ));
            }
            for c in &d.columns {
                let col = policy
                    .column(c)
                    .ok_or_else(|| PolicyError::ScenarioColumn {
                        dataset: d.name.clone(),
                        column: c.clone(),
                        message: "the dataset has no such column".into(),
                    })?;
                if col.access == Access::None {
                    return Err(PolicyError::ScenarioColumn {
                        dataset: d.name.clone(),
                        column: c.clone(),
                        message: "its access is `none`: no scenario may use it".into(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Whether the scenario is valid on `day`.
    pub fn is_valid_on(&self, day: NaiveDate) -> bool {
        self.valid_from <= day && day <= self.valid_until
    }

    /// The columns of `dataset` that the scenario may touch.
    pub fn columns_of(&self, dataset: &str) -> Option<&[String]> {
        self.datasets
            .iter()
            .find(|d| d.name == dataset)
            .map(|d| d.columns.as_slice())
    }
}

/// Dates as TOML dates (`2026-01-01`) or strings (`"2026-01-01"`).
mod date {
    use chrono::NaiveDate;
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Toml(toml::value::Datetime),
    }

    pub fn serialize<S: Serializer>(d: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&d.format("%Y-%m-%d").to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
        let text = match Raw::deserialize(d)? {
            Raw::Text(t) => t,
            Raw::Toml(dt) => dt.to_string(),
        };
        NaiveDate::parse_from_str(&text, "%Y-%m-%d").map_err(|e| {
            serde::de::Error::custom(format!("`{text}` is not a date YYYY-MM-DD: {e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SCENARIO: &str = r#"
name = "income-2026"
purpose = "Average income by district for the city's annual report"
valid_from = 2026-01-01
valid_until = 2026-12-31
response_plan = "call the operator's duty officer; the job is stopped; the developer notifies the data bureau"

[budget]
epsilon = 3.0
epsilon_per_query = 1.0

[[dataset]]
name = "residents"
columns = ["district", "income"]

[agreement]
rights_and_obligations = "the developer uses the data for the report only"
security_requirements = "no attempt to re-identify anyone"
legal_basis = "the data bureau's authorization"
breach = "suspension, revocation and liability"
"#;

    #[test]
    fn parses_and_validates() {
        let s = Scenario::from_toml_str(SCENARIO).unwrap();
        assert_eq!(s.budget.delta, 0.0);
        assert!(s.is_valid_on(NaiveDate::from_ymd_opt(2026, 6, 1).unwrap()));
        assert!(!s.is_valid_on(NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()));
    }

    #[test]
    fn an_application_names_its_response_plan_and_terms_a_stored_agreement_need_not() {
        let no_plan = SCENARIO.replace("response_plan =", "# response_plan =");
        let no_terms = SCENARIO.split("[agreement]").next().unwrap().to_string();
        let short_plan = SCENARIO.replace(
            "call the operator's duty officer; the job is stopped; the developer notifies the data bureau",
            " call ",
        );
        for (text, field) in [
            (&no_plan, "response_plan"),
            (&short_plan, "response_plan"),
            (&no_terms, "agreement"),
        ] {
            match Scenario::from_toml_str(text) {
                Err(PolicyError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{other:?}"),
            }
            let stored = Scenario::from_stored_toml(text).unwrap();
            assert_eq!(stored.name, "income-2026");
        }
    }

    #[test]
    fn zcdp_budget_converts_to_epsilon_delta() {
        let text = SCENARIO.replace("epsilon = 3.0", "epsilon = 10.0").replace(
            "epsilon_per_query = 1.0",
            "epsilon_per_query = 0.1\ndelta = 1e-6\naccounting = \"zcdp\"",
        );
        let s = Scenario::from_toml_str(&text).unwrap();
        let rho = s.budget.rho_total();
        assert!(rho > 0.0);
        assert!((s.budget.epsilon_of_rho(rho) - 10.0).abs() < 1e-9);
        // Many small queries: ε 0.1 costs ρ 0.005, and more than twice as many fit as the
        // 100 that basic composition allows.
        assert!(rho / BudgetSpec::rho_of(0.1) > 200.0, "{rho}");
        let no_delta = SCENARIO.replace(
            "epsilon_per_query = 1.0",
            "epsilon_per_query = 1.0\naccounting = \"zcdp\"",
        );
        assert!(Scenario::from_toml_str(&no_delta).is_err());
    }

    #[test]
    fn window_over_five_years_is_refused() {
        let text = SCENARIO.replace("valid_until = 2026-12-31", "valid_until = 2032-12-31");
        assert!(matches!(
            Scenario::from_toml_str(&text).unwrap_err(),
            PolicyError::Invalid { ref field, .. } if field == "valid_until"
        ));
    }

    #[test]
    fn per_query_above_total_is_refused() {
        let text = SCENARIO.replace("epsilon_per_query = 1.0", "epsilon_per_query = 5.0");
        assert!(Scenario::from_toml_str(&text).is_err());
    }

    #[test]
    fn unknown_dataset_and_hidden_column_are_refused() {
        let s = Scenario::from_toml_str(SCENARIO).unwrap();
        assert_eq!(
            s.validate_against(|_| None).unwrap_err(),
            PolicyError::UnknownDataset {
                dataset: "residents".into()
            }
        );
        let policy = Policy::from_toml_str(
            r#"
[dataset]
name = "residents"
summary = "r"
provider = "p"
row_privacy = true
[[column]]
name = "district"
level = 2
access = "group"
[[column]]
name = "income"
level = 4
access = "none"
"#,
        )
        .unwrap();
        let err = s.validate_against(|_| Some(&policy)).unwrap_err();
        assert!(
            matches!(err, PolicyError::ScenarioColumn { ref column, .. } if column == "income")
        );
    }
}
