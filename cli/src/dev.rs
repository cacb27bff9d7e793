//! The developer's local loop (like OpenSAFELY's dummy data): `sandbox dev run` runs a
//! module against synthetic data generated from the policies' schemas (categories, bounds,
//! the privacy unit), in a throwaway domain. No real domain is opened, no budget is spent
//! on real data, and every output is written under a name that says it is synthetic.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use sandbox_policies::{Desensitize, Policy};

use sandbox_core::{Error, Result, Role};
use sandbox_i18n::t;
use sandbox_runtime::{Domain, catalog, identity, jobs, scenarios};

/// `sandbox dev run` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct DevRunArgs {
    /// The analysis module (.wasm).
    pub module: PathBuf,
    /// Policy of a dataset the module reads (repeat for several).
    #[arg(long = "policy", required = true)]
    pub policies: Vec<PathBuf>,
    /// Job parameters (JSON object).
    #[arg(long, default_value = "{}")]
    pub params: String,
    /// Privacy units to generate per dataset.
    #[arg(long, default_value_t = 1000)]
    pub units: usize,
    /// Seed of the synthetic data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where the (synthetic) outputs are written.
    #[arg(long, default_value = "dev-run-output")]
    pub out: PathBuf,
}

const OPERATOR: &str = "dev-operator";
const PROVIDER: &str = "dev-provider";
const DEVELOPER: &str = "dev-developer";
const SUPERVISOR: &str = "dev-supervisor";

/// Synthetic CSV for a policy: each privacy unit gets 1 to `max_rows_per_unit` rows; a
/// column with categories takes one of them, a column with bounds a number within them
/// (integers when both bounds are whole), a date-truncated column a date, anything else a
/// placeholder text.
pub fn synthetic_csv(policy: &Policy, units: usize, seed: u64) -> String {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let names: Vec<&str> = policy.columns.iter().map(|c| c.name.as_str()).collect();
    let mut csv = names.join(",");
    csv.push('\n');
    let k = policy.dataset.max_rows_per_unit.max(1) as usize;
    let mut row = 0usize;
    for u in 0..units.max(1) {
        let rows = if policy.dataset.privacy_unit.is_some() {
            rng.random_range(1..=k)
        } else {
            1
        };
        for _ in 0..rows {
            let cells: Vec<String> = policy
                .columns
                .iter()
                .map(|c| {
                    if policy.dataset.privacy_unit.as_deref() == Some(c.name.as_str()) {
                        return format!("U{u:07}");
                    }
                    if let Some(cats) = c.categories.as_ref().filter(|v| !v.is_empty()) {
                        return cats[rng.random_range(0..cats.len())].clone();
                    }
                    if let Some((lo, hi)) = c.bounds() {
                        if lo.fract() == 0.0 && hi.fract() == 0.0 && hi - lo < 1e15 {
                            return format!("{}", rng.random_range(lo as i64..=hi as i64));
                        }
                        return format!("{:.2}", rng.random_range(lo..=hi));
                    }
                    if matches!(c.desensitize, Some(Desensitize::TruncateDate { .. })) {
                        return format!(
                            "2025-{:02}-{:02}",
                            rng.random_range(1..=12),
                            rng.random_range(1..=28)
                        );
                    }
                    format!("synthetic-{}-{row}", c.name)
                })
                .map(|v| {
                    if v.contains([',', '"', '\n']) {
                        format!("\"{}\"", v.replace('"', "\"\""))
                    } else {
                        v
                    }
                })
                .collect();
            csv.push_str(&cells.join(","));
            csv.push('\n');
            row += 1;
        }
    }
    csv
}

/// Runs a module against synthetic data in a temporary domain and writes its outputs to
/// `args.out`, each file name starting with `SYNTHETIC-`.
pub fn run(args: &DevRunArgs, lang: sandbox_core::Lang, out: &mut dyn Write) -> Result<()> {
    let module = std::fs::read(&args.module).map_err(|e| Error::Input {
        path: args.module.display().to_string(),
        message: e.to_string(),
    })?;
    let tmp = tempfile::tempdir()?;
    let domain = Domain::init(&tmp.path().join("domain"))?;
    {
        identity::add(&domain, None, OPERATOR, Role::Operator)?;
        identity::add(&domain, Some(OPERATOR), PROVIDER, Role::Provider)?;
        identity::add(&domain, Some(OPERATOR), DEVELOPER, Role::Developer)?;
        identity::add(&domain, Some(OPERATOR), SUPERVISOR, Role::Supervisor)?;
    }
    let mut datasets = String::new();
    for (i, path) in args.policies.iter().enumerate() {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Input {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let policy = Policy::from_toml_str(&text)?;
        let csv = tmp.path().join(format!("{}.csv", policy.dataset.name));
        std::fs::write(
            &csv,
            synthetic_csv(&policy, args.units, args.seed.wrapping_add(i as u64)),
        )?;
        catalog::add(&domain, PROVIDER, &csv, &text)?;
        let columns: Vec<String> = policy
            .columns
            .iter()
            .filter(|c| c.access != sandbox_policies::Access::None)
            .map(|c| format!("\"{}\"", c.name))
            .collect();
        let _ = writeln!(
            datasets,
            "[[dataset]]\nname = \"{}\"\ncolumns = [{}]",
            policy.dataset.name,
            columns.join(", ")
        );
    }
    let today = chrono::Utc::now().date_naive();
    let scenario = format!(
        "name = \"dev-run\"\npurpose = \"local development on synthetic data\"\nvalid_from = \"{today}\"\nvalid_until = \"{}\"\nresponse_plan = \"the run stops; nothing leaves the developer's machine\"\n[budget]\nepsilon = 100\nepsilon_per_query = 10\ndelta = 0.0001\ndelta_per_query = 0.000001\n{datasets}[agreement]\nrights_and_obligations = \"local development on synthetic data\"\nsecurity_requirements = \"synthetic data only\"\nlegal_basis = \"none needed: no real data\"\nbreach = \"none: no real data\"\n",
        today + chrono::Days::new(1)
    );
    let s = scenarios::apply(&domain, DEVELOPER, &scenario)?;
    // The whole review, on synthetic data: the provider's and the supervisor's consent,
    // then the operator's approval.
    let key = s.id.to_string();
    sandbox_runtime::consent::consent(&domain, PROVIDER, &key, None, None)?;
    sandbox_runtime::consent::consent(&domain, SUPERVISOR, &key, None, None)?;
    scenarios::decide(&domain, OPERATOR, &key, true, None)?;
    let report = jobs::submit(
        &domain,
        DEVELOPER,
        &jobs::Submission {
            scenario: "dev-run",
            module: &module,
            params_json: &args.params,
            limits: Default::default(),
            resubmits: None,
        },
    )?;
    writeln!(out, "{}", t!(lang, "cli-dev-synthetic", units = args.units))?;
    for line in &report.logs {
        writeln!(out, "log[{}] {}", line.level, line.text)?;
    }
    if report.status != "succeeded" {
        writeln!(
            out,
            "{}",
            t!(
                lang,
                "cli-dev-failed",
                kind = report.error_kind.as_deref().unwrap_or("?"),
                error = report.error.as_deref().unwrap_or("")
            )
        )?;
        return Err(Error::Guest(report.error.unwrap_or_default()));
    }
    std::fs::create_dir_all(&args.out)?;
    let staged = domain.layout().staging().join(&report.id);
    for o in &report.outputs {
        let target = args.out.join(format!("SYNTHETIC-{}", o.file_name));
        std::fs::copy(staged.join(&o.file_name), &target)?;
        let ui = crate::texts::Ui::new(lang, None);
        writeln!(
            out,
            "{}\n    {}",
            crate::texts::staged_output(&ui, &serde_json::to_value(o)?, "    "),
            t!(lang, "cli-dev-written", path = display(&target))
        )?;
    }
    // The marker says it in both languages, whoever reads the folder later.
    let marker: String = sandbox_i18n::SOURCES
        .iter()
        .map(|(l, _)| format!("{}\n", t!(*l, "cli-dev-marker")))
        .collect();
    std::fs::write(args.out.join("SYNTHETIC.txt"), marker)?;
    Ok(())
}

fn display(p: &Path) -> String {
    p.display().to_string()
}
