//! `sandbox demo`: the whole path on synthetic data, told so a person can follow it.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use sandbox_core::{Decision, Error, Lang, Result, Role, Suite};
use sandbox_i18n::t;
use sandbox_runtime::identity;
use sandbox_runtime::jobs::{self, Submission};
use sandbox_runtime::mediate::{self, QueryRequest};
use sandbox_runtime::{Domain, audit, catalog, keys, review, scenarios};

/// The demo dataset's policy.
pub const RESIDENTS_POLICY: &str = include_str!("../../examples/policies/residents.toml");
/// The demo scenario (its window is moved to start today).
pub const INCOME_SCENARIO: &str = include_str!("../../examples/scenarios/income-by-district.toml");

/// Arguments of `sandbox demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// The analysis module to run.
    #[arg(
        long,
        default_value = "examples/modules/target/wasm32-unknown-unknown/release/income_by_district.wasm"
    )]
    pub module: PathBuf,
    /// Keep the data directory here instead of a temporary one.
    #[arg(long)]
    pub keep: Option<PathBuf>,
    /// Number of synthetic residents.
    #[arg(long, default_value_t = 5000)]
    pub residents: usize,
    /// The domain's cryptographic suite: standard or gm (SM3, SM2, SM4-GCM).
    #[arg(long, default_value = "standard")]
    pub crypto: Suite,
}

/// The demo scenario with its validity window starting today.
pub fn scenario_text(today: chrono::NaiveDate) -> String {
    let until = today + chrono::Days::new(365);
    INCOME_SCENARIO
        .lines()
        .map(|l| {
            if l.starts_with("valid_from") {
                format!("valid_from = {today}")
            } else if l.starts_with("valid_until") {
                format!("valid_until = {until}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What the demo produced, for tests.
#[derive(Debug, Clone)]
pub struct DemoSummary {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The product folder.
    pub product_dir: PathBuf,
    /// ε spent.
    pub epsilon_spent: f64,
    /// Refused queries shown.
    pub refusals: Vec<mediate::Refusal>,
}

/// Runs the demo, printing to `out`.
pub fn run(args: &DemoArgs, lang: Lang, out: &mut dyn Write) -> Result<()> {
    let module = std::fs::read(&args.module).map_err(|e| Error::Input {
        path: args.module.display().to_string(),
        message: format!("{e} ({})", t!(lang, "demo-build-first")),
    })?;
    let tmp;
    let dir = match &args.keep {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().join("domain")
        }
    };
    run_in(&dir, &module, args.residents, args.crypto, lang, out).map(|_| ())
}

/// Runs the demo in `dir` (created, of the cryptographic suite `suite`) with `module`.
pub fn run_in(
    dir: &std::path::Path,
    module: &[u8],
    residents: usize,
    suite: Suite,
    lang: Lang,
    out: &mut dyn Write,
) -> Result<DemoSummary> {
    let started = std::time::Instant::now();
    writeln!(out, "{}\n", t!(lang, "demo-title"))?;
    let domain = Domain::init_crypto(
        dir,
        &Default::default(),
        &sandbox_runtime::MasterKey::beside(dir),
        suite,
    )?;
    writeln!(
        out,
        "{}",
        t!(
            lang,
            "demo-init",
            dir = dir.display().to_string(),
            suite = suite.name(),
            signature = suite.signature_name()
        )
    )?;
    add_principals(&domain, lang, out)?;
    register_dataset(&domain, residents, lang, out)?;
    let s = approve_scenario(&domain, lang, out)?;
    let refusals = show_refusals(&domain, s.id, lang, out)?;
    let (report, balance) = run_job(&domain, &s.spec.name, s.id, module, lang, out)?;
    show_outputs(&domain, &report, lang, out)?;
    let table = report
        .outputs
        .iter()
        .find(|o| o.kind == "table")
        .ok_or_else(|| Error::Internal("the demo module emitted no table".into()))?;
    review_table(&domain, &table.id, lang, out)?;
    let product = show_product(&domain, &table.id, lang, out)?;
    audit::checkpoint(&domain, "sup-chen")?;
    let v = audit::verify(&domain, "sup-chen")?;
    writeln!(
        out,
        "\n{}",
        t!(
            lang,
            "demo-audit",
            events = v.events,
            checkpoints = v.checkpoints,
            root = v.root.get(..16).unwrap_or(&v.root)
        )
    )?;
    writeln!(
        out,
        "\n{}",
        t!(
            lang,
            "demo-done",
            seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
            dir = dir.display().to_string()
        )
    )?;
    Ok(DemoSummary {
        data_dir: dir.to_path_buf(),
        product_dir: product.path,
        epsilon_spent: balance.epsilon_spent,
        refusals,
    })
}

/// Step 1: the operator adds the other principals.
fn add_principals(domain: &Domain, lang: Lang, out: &mut dyn Write) -> Result<()> {
    identity::add(domain, None, "ops-li", Role::Operator)?;
    identity::add(domain, Some("ops-li"), "psb-wang", Role::Provider)?;
    identity::add(domain, Some("ops-li"), "dev-zhao", Role::Developer)?;
    identity::add(domain, Some("ops-li"), "sup-chen", Role::Supervisor)?;
    let principals: Vec<String> = [
        ("ops-li", Role::Operator),
        ("psb-wang", Role::Provider),
        ("dev-zhao", Role::Developer),
        ("sup-chen", Role::Supervisor),
    ]
    .iter()
    .map(|(name, role)| {
        t!(
            lang,
            "demo-principal",
            name = *name,
            role = sandbox_i18n::role(lang, *role)
        )
    })
    .collect();
    writeln!(
        out,
        "   {}\n",
        t!(
            lang,
            "demo-principals",
            principals = principals.join(&t!(lang, "list-separator"))
        )
    )?;

    Ok(())
}

/// Step 2: the provider registers the synthetic residents.
fn register_dataset(
    domain: &Domain,
    residents: usize,
    lang: Lang,
    out: &mut dyn Write,
) -> Result<()> {
    let csv_dir = tempfile::tempdir()?;
    let csv = csv_dir.path().join("residents.csv");
    std::fs::write(&csv, sandbox_synth::residents_csv(residents, 2026))?;
    let v = catalog::add(domain, "psb-wang", &csv, RESIDENTS_POLICY)?;
    writeln!(
        out,
        "{}",
        t!(
            lang,
            "demo-dataset",
            name = v.name.as_str(),
            rows = v.row_count
        )
    )?;
    let rows: Vec<Vec<String>> = v
        .policy
        .columns
        .iter()
        .map(|c| {
            vec![
                format!("     {}", c.name),
                c.level.to_string(),
                sandbox_i18n::word(lang, "access", &c.access.to_string()),
            ]
        })
        .collect();
    let header = [
        format!("     {}", t!(lang, "cli-col-column")),
        t!(lang, "cli-col-level"),
        t!(lang, "cli-col-access"),
    ];
    writeln!(out, "{}", crate::lists::table(&header, &rows, ""))?;
    writeln!(out)?;

    Ok(())
}

/// Step 3: the developer applies for the scenario and the operator approves it.
fn approve_scenario(
    domain: &Domain,
    lang: Lang,
    out: &mut dyn Write,
) -> Result<scenarios::ScenarioRecord> {
    let today = chrono::Utc::now().date_naive();
    let s = scenarios::apply(domain, "dev-zhao", &scenario_text(today))?;
    // Consent before use (JZ Art. 11): the dataset's provider and the data bureau's
    // supervisor record no objection; the operator's approval then makes it usable.
    sandbox_runtime::consent::consent(domain, "psb-wang", &s.id.to_string(), None, None)?;
    sandbox_runtime::consent::consent(domain, "sup-chen", &s.id.to_string(), None, None)?;
    let s = scenarios::decide(
        domain,
        "ops-li",
        &s.id.to_string(),
        true,
        Some("purpose and columns are the minimum necessary"),
    )?;
    writeln!(
        out,
        "{}\n",
        t!(
            lang,
            "demo-scenario",
            name = s.spec.name.as_str(),
            purpose = s.spec.purpose.as_str(),
            epsilon = s.spec.budget.epsilon,
            per_query = s.spec.budget.epsilon_per_query,
            from = s.spec.valid_from.to_string(),
            until = s.spec.valid_until.to_string()
        )
    )?;

    Ok(s)
}

/// Step 4: queries that would expose raw data, each refused.
fn show_refusals(
    domain: &Domain,
    scenario_id: i64,
    lang: Lang,
    out: &mut dyn Write,
) -> Result<Vec<mediate::Refusal>> {
    writeln!(out, "{}", t!(lang, "demo-refusals"))?;
    let sample_id = sandbox_synth::residents(1, 2026)
        .first()
        .map(|r| r.citizen_id.clone())
        .unwrap_or_default();
    let attempts = [
        "SELECT * FROM residents".to_string(),
        "SELECT income FROM residents".to_string(),
        format!("SELECT AVG(income) FROM residents WHERE citizen_id = '{sample_id}'"),
        "SELECT COUNT(*) FROM residents GROUP BY phone".to_string(),
        "SELECT array_agg(income) FROM residents".to_string(),
    ];
    let mut refusals = Vec::new();
    for sql in &attempts {
        match mediate::answer(
            domain,
            &QueryRequest {
                scenario_id,
                job_id: None,
                actor: "dev-zhao",
                sql,
                epsilon: None,
            },
        ) {
            Err(Error::Refused(r)) => {
                let why = sandbox_i18n::error(lang, &Error::Refused(r.clone()));
                writeln!(out, "   ✗ {sql}\n       {why}")?;
                refusals.push(r);
            }
            Ok(_) => {
                return Err(Error::Internal(format!(
                    "demo query was not refused: {sql}"
                )));
            }
            Err(e) => return Err(e),
        }
    }
    writeln!(out)?;

    Ok(refusals)
}

/// Step 5: the developer submits the module as a job.
fn run_job(
    domain: &Domain,
    scenario: &str,
    scenario_id: i64,
    module: &[u8],
    lang: Lang,
    out: &mut dyn Write,
) -> Result<(jobs::JobReport, scenarios::Balance)> {
    let report = jobs::submit(
        domain,
        "dev-zhao",
        &Submission {
            scenario,
            module,
            params_json: "{}",
            limits: Default::default(),
            resubmits: None,
        },
    )?;
    writeln!(
        out,
        "{}",
        t!(
            lang,
            "demo-job",
            bytes = module.len(),
            job = report.id.as_str(),
            queries = report.queries,
            fuel = report.fuel_used,
            status = sandbox_i18n::word(lang, "job-status", report.status.as_str())
        )
    )?;
    for l in &report.logs {
        writeln!(
            out,
            "   {}",
            t!(lang, "demo-module-log", text = l.text.as_str())
        )?;
    }
    if let Some(e) = &report.error {
        return Err(Error::Guest(format!("demo job failed: {e}")));
    }
    let balance = scenarios::budget(domain, "dev-zhao", &scenario_id.to_string())?;
    writeln!(
        out,
        "   {}\n",
        t!(
            lang,
            "demo-budget",
            spent = format!("{:.2}", balance.epsilon_spent),
            total = format!("{:.2}", balance.epsilon_total),
            left = format!("{:.2}", balance.epsilon_remaining())
        )
    )?;

    Ok((report, balance))
}

/// Step 6: the outputs as staged, with their automated checks.
fn show_outputs(
    domain: &Domain,
    report: &jobs::JobReport,
    lang: Lang,
    out: &mut dyn Write,
) -> Result<()> {
    writeln!(out, "{}", t!(lang, "demo-outputs"))?;
    for o in &report.outputs {
        let ui = crate::texts::Ui::new(lang, None);
        let value = serde_json::to_value(o)?;
        writeln!(
            out,
            "   {}",
            crate::texts::staged_output(&ui, &value, "       ")
        )?;
        if o.kind == "table" {
            let bytes =
                std::fs::read(domain.layout().staging().join(&o.job_id).join(&o.file_name))?;
            let batches = sandbox_runtime::wasm::decode_ipc(&bytes)?;
            let text = arrow::util::pretty::pretty_format_batches(&batches)
                .map_err(|e| Error::Internal(format!("table: {e}")))?
                .to_string();
            for line in text.lines() {
                writeln!(out, "       {line}")?;
            }
        }
    }
    writeln!(out)?;

    Ok(())
}

/// Step 7: release before approval and self-approval are refused; operator and
/// supervisor approve.
fn review_table(domain: &Domain, output_id: &str, lang: Lang, out: &mut dyn Write) -> Result<()> {
    let refused_release = review::release(domain, "ops-li", output_id);
    writeln!(
        out,
        "{}",
        match &refused_release {
            Err(e) => t!(
                lang,
                "demo-release-refused",
                error = sandbox_i18n::error(lang, e)
            ),
            Ok(_) =>
                return Err(Error::Internal(
                    "release without approvals succeeded".into()
                )),
        }
    )?;
    let self_review = review::decide(domain, "dev-zhao", output_id, Decision::Approve, None);
    writeln!(
        out,
        "   {}",
        match &self_review {
            Err(e) => t!(
                lang,
                "demo-self-review-refused",
                error = sandbox_i18n::error(lang, e)
            ),
            Ok(_) => return Err(Error::Internal("self-approval succeeded".into())),
        }
    )?;
    review::decide(
        domain,
        "ops-li",
        output_id,
        Decision::Approve,
        Some("aggregates only, checks passed"),
    )?;
    writeln!(out, "   {}", t!(lang, "demo-operator-approves"))?;
    review::decide(
        domain,
        "sup-chen",
        output_id,
        Decision::Approve,
        Some("no disclosure risk found"),
    )?;
    writeln!(out, "   {}\n", t!(lang, "demo-supervisor-approves"))?;

    Ok(())
}

/// Step 8: the released product, its manifest verified.
fn show_product(
    domain: &Domain,
    output_id: &str,
    lang: Lang,
    out: &mut dyn Write,
) -> Result<review::Product> {
    let product = review::products(domain, "sup-chen")?
        .into_iter()
        .find(|p| p.output_id == output_id)
        .ok_or_else(|| Error::Internal("no product after release".into()))?;
    let key = keys::public_key(domain.layout())?;
    let manifest = review::verify_product(&product.path, Some(&key))?;
    let sources: Vec<String> = manifest["datasets"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|d| {
            t!(
                lang,
                "demo-source",
                name = d["name"].as_str().unwrap_or(""),
                version = d["version"].to_string(),
                provider = d["provider"].as_str().unwrap_or(""),
                obtained = d["obtained_at"].as_str().unwrap_or("")
            )
        })
        .collect();
    writeln!(
        out,
        "{}",
        t!(
            lang,
            "demo-product",
            id = product.id.as_str(),
            path = product.path.display().to_string(),
            sources = sources.join("; "),
            hash = domain.keys().suite().hash_name(),
            module = manifest["job"][format!("module_{}", domain.keys().suite().hash_name())]
                .as_str()
                .unwrap_or("")
        )
    )?;

    Ok(product)
}
