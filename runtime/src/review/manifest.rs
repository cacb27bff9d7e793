//! The product manifest: what a released product is, where it came from, who approved it
//! and where its history is in the audit log. Signed by the domain key; its JSON Schema is
//! served with the OpenAPI document.

use sandbox_core::Suite;
use sandbox_policies::Mode;
use sandbox_store::audit::Checkpoint;
use sandbox_store::jobs::JobRecord;
use sandbox_store::keys::PublicKey;
use sandbox_store::outputs::{Approval, OutputRecord};
use sandbox_store::queries::QueryEntry;
use sandbox_store::{Conn, audit, catalog, queries, scenarios};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Result;

/// Format name of a manifest.
pub const FORMAT: &str = "sandbox-product-manifest/1";

/// A product's `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// The product's id.
    pub product_id: String,
    /// When it was released, RFC 3339 UTC.
    pub released_at: String,
    /// Who released it (the supervisor whose approval released it).
    pub released_by: String,
    /// Its files, with their hashes.
    pub files: Vec<ManifestFile>,
    /// The output it releases.
    pub output: ManifestOutput,
    /// The job that made it.
    pub job: ManifestJob,
    /// The scenario it was made under.
    pub scenario: ManifestScenario,
    /// Whom it is granted to at release (the scenario's recipients): data users by name,
    /// organisations as `org:` and their credit code (TJ-Sec Art. 9, 11). Operators,
    /// supervisors and the job's developer have it besides; grants made later are in the
    /// catalog.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub scope: Vec<sandbox_policies::Grantee>,
    /// The dataset versions the job's answers read (SYS Art. 41).
    pub datasets: Vec<ManifestDataset>,
    /// Every query of the job, with ε.
    pub queries: Vec<QueryEntry>,
    /// The privacy budget.
    pub privacy: ManifestPrivacy,
    /// The automated checks' results.
    pub checks: Option<Value>,
    /// The approvals it was released on.
    pub approvals: Vec<Approval>,
    /// Where its history is in the audit log, and the signed checkpoint it was checked
    /// against.
    pub audit: ManifestAudit,
    /// The domain's cryptographic suite: its content hashes are the suite's (named
    /// `sha256`, or `sm3` in the `gm` suite), its signature and checkpoint the suite's
    /// (Ed25519, or SM2). A manifest written before the choice names none: `standard`.
    #[serde(default)]
    pub suite: Suite,
    /// The domain's public key, hex (Ed25519, or SM2 in the `gm` suite): the manifest's
    /// signature is checked with it.
    pub domain_public_key: String,
}

/// Declares a content hash's fields: one per suite's hash, named by it (`…sha256` or
/// `…sm3`), exactly one present.
macro_rules! content_hash {
    ($(#[$doc:meta])* $name:ident { $sha:ident, $sm3:ident }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
        pub struct $name {
            /// SHA-256, hex (the `standard` suite).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub $sha: Option<String>,
            /// SM3, hex (the `gm` suite).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub $sm3: Option<String>,
        }

        impl $name {
            /// The hash `hex` of `suite`, under its name.
            pub fn new(suite: Suite, hex: String) -> $name {
                match suite {
                    Suite::Standard => $name { $sha: Some(hex), $sm3: None },
                    Suite::Gm => $name { $sha: None, $sm3: Some(hex) },
                }
            }

            /// The hash of `suite`, if given.
            pub fn of(&self, suite: Suite) -> Option<&str> {
                match suite {
                    Suite::Standard => self.$sha.as_deref(),
                    Suite::Gm => self.$sm3.as_deref(),
                }
            }
        }
    };
}

content_hash!(
    /// A file's hash (`sha256` or `sm3`).
    FileHash { sha256, sm3 }
);
content_hash!(
    /// A module's hash (`module_sha256` or `module_sm3`).
    ModuleHash { module_sha256, module_sm3 }
);
content_hash!(
    /// A dataset version's stored data's hash (`content_sha256` or `content_sm3`).
    ContentHash { content_sha256, content_sm3 }
);
content_hash!(
    /// A policy text's hash (`policy_sha256` or `policy_sm3`).
    PolicyHash { policy_sha256, policy_sm3 }
);

/// A file of a product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ManifestFile {
    /// Plain file name in the product folder.
    pub name: String,
    /// `table`, `text` or `chart`.
    pub kind: String,
    /// The suite's hash of its bytes, hex.
    #[serde(flatten)]
    pub hash: FileHash,
    /// Its size.
    pub bytes: i64,
}

/// The output a product releases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ManifestOutput {
    /// Output id.
    pub id: String,
    /// Its name, as the module gave it.
    pub name: String,
}

/// The job that made a product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ManifestJob {
    /// Job id.
    pub id: String,
    /// Who submitted it.
    pub submitter: String,
    /// The suite's hash of the module.
    #[serde(flatten)]
    pub module_hash: ModuleHash,
    /// Its parameters.
    pub params: Value,
    /// When it was submitted.
    pub submitted_at: String,
}

/// The scenario a product was made under.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ManifestScenario {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Purpose.
    pub purpose: String,
    /// First day valid.
    #[schemars(with = "String")]
    pub valid_from: chrono::NaiveDate,
    /// Last day valid.
    #[schemars(with = "String")]
    pub valid_until: chrono::NaiveDate,
    /// `dp` or `threshold`.
    pub mode: Mode,
    /// The operator who approved it.
    pub approved_by: Option<String>,
}

/// A dataset version a product's numbers came from (read by its job's answered queries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ManifestDataset {
    /// Name.
    pub name: String,
    /// Version.
    pub version: i64,
    /// Provider.
    pub provider: String,
    /// Provider's organisation code.
    pub provider_code: Option<String>,
    /// When the domain obtained it.
    pub obtained_at: String,
    /// The suite's hash of the stored data.
    #[serde(flatten)]
    pub content_hash: ContentHash,
    /// The suite's hash of its policy's text.
    #[serde(flatten)]
    pub policy_hash: PolicyHash,
    /// The columns the scenario uses.
    pub columns: Vec<String>,
}

/// A product's privacy budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ManifestPrivacy {
    /// ε the job's queries spent.
    pub epsilon_job: f64,
    /// ε the scenario has spent.
    pub epsilon_scenario_spent: f64,
    /// ε the scenario was granted.
    pub epsilon_scenario_total: f64,
}

/// An event of a product's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ManifestEvent {
    /// Position in the log.
    pub seq: i64,
    /// Its kind.
    pub action: String,
}

/// Where a product's history is in the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ManifestAudit {
    /// The job's, its queries', the output's events.
    pub events: Vec<ManifestEvent>,
    /// The signed checkpoint the release was checked against: its number.
    pub checkpoint: i64,
    /// Its size.
    pub size: i64,
    /// Its root, hex.
    pub root: String,
    /// When it was signed.
    pub ts: String,
    /// Its signature, hex.
    pub signature: String,
}

/// What a release knows when it writes the manifest.
pub(crate) struct Release<'a> {
    pub product_id: &'a str,
    pub released_at: &'a str,
    pub released_by: &'a str,
    pub output: &'a OutputRecord,
    pub job: &'a JobRecord,
    pub approvals: Vec<Approval>,
    pub checkpoint: &'a Checkpoint,
    pub domain_key: &'a PublicKey,
}

/// The manifest of a release.
pub(crate) fn build(conn: &Conn, r: &Release<'_>) -> Result<Manifest> {
    let suite = conn.keys().suite();
    let record = scenarios::get(conn, r.job.scenario_id)?;
    // The versions the job's answers read, as recorded with each charge (none for a job
    // that asked nothing); a job answered before they were recorded names the versions
    // current at release.
    let read = queries::versions_read(conn, &r.output.job_id)?;
    let queries = queries::of_job(conn, &r.output.job_id)?;
    let legacy = read.is_empty() && queries.iter().any(|q| q.status == "answered");
    let mut datasets = Vec::new();
    for d in &record.spec.datasets {
        let versions: Vec<catalog::DatasetVersion> = if legacy {
            vec![catalog::get(conn, &d.name)?]
        } else {
            read.iter()
                .filter(|(name, _)| *name == d.name)
                .map(|(name, version)| catalog::get_version(conn, name, *version))
                .collect::<std::result::Result<_, _>>()?
        };
        for v in versions {
            let policy_toml = catalog::policy_toml(conn, &v.name, v.version)?;
            datasets.push(ManifestDataset {
                policy_hash: PolicyHash::new(suite, suite.hash_hex(policy_toml.as_bytes())),
                name: v.name,
                version: v.version,
                provider: v.policy.dataset.provider,
                provider_code: v.policy.dataset.provider_code,
                obtained_at: v.obtained_at,
                content_hash: ContentHash::new(suite, v.content_sha256),
                columns: d.columns.clone(),
            });
        }
    }
    let epsilon_job: f64 = queries.iter().map(|q| q.epsilon).sum();
    let events = audit::positions(conn, &r.output.job_id, &r.output.id)?
        .into_iter()
        .map(|(seq, action)| ManifestEvent { seq, action })
        .collect();
    Ok(Manifest {
        format: FORMAT.to_string(),
        product_id: r.product_id.to_string(),
        released_at: r.released_at.to_string(),
        released_by: r.released_by.to_string(),
        files: vec![ManifestFile {
            name: r.output.file_name.clone(),
            kind: r.output.kind.clone(),
            hash: FileHash::new(suite, r.output.sha256.clone()),
            bytes: r.output.bytes,
        }],
        output: ManifestOutput {
            id: r.output.id.clone(),
            name: r.output.name.clone(),
        },
        job: ManifestJob {
            id: r.output.job_id.clone(),
            submitter: r.job.submitter.clone(),
            module_hash: ModuleHash::new(suite, r.job.module_sha256.clone()),
            params: serde_json::from_str(&r.job.params_json).unwrap_or(Value::Null),
            submitted_at: r.job.created_at.clone(),
        },
        scenario: ManifestScenario {
            id: record.id,
            name: record.spec.name.clone(),
            purpose: record.spec.purpose.clone(),
            valid_from: record.spec.valid_from,
            valid_until: record.spec.valid_until,
            mode: record.spec.mode,
            approved_by: record.decided_by.clone(),
        },
        scope: record.spec.recipients.clone(),
        datasets,
        queries,
        privacy: ManifestPrivacy {
            epsilon_job,
            epsilon_scenario_spent: record.epsilon_spent,
            epsilon_scenario_total: record.spec.budget.epsilon,
        },
        checks: r.output.checks.clone(),
        approvals: r.approvals.clone(),
        audit: ManifestAudit {
            events,
            checkpoint: r.checkpoint.number,
            size: r.checkpoint.size,
            root: r.checkpoint.root.clone(),
            ts: r.checkpoint.ts.clone(),
            signature: r.checkpoint.signature.clone(),
        },
        suite,
        domain_public_key: r.domain_key.to_hex(),
    })
}
