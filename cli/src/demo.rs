//! `sandbox demo`: the whole path on synthetic data, told so a person can follow it.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use sandbox_core::{Decision, Error, Result, Role};
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
pub fn run(args: &DemoArgs, out: &mut dyn Write) -> Result<()> {
    let module = std::fs::read(&args.module).map_err(|e| Error::Input {
        path: args.module.display().to_string(),
        message: format!("{e} (build the example modules first: scripts/build-guests.sh)"),
    })?;
    let tmp;
    let dir = match &args.keep {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().join("domain")
        }
    };
    run_in(&dir, &module, args.residents, out).map(|_| ())
}

/// Runs the demo in `dir` (created) with `module`.
pub fn run_in(
    dir: &std::path::Path,
    module: &[u8],
    residents: usize,
    out: &mut dyn Write,
) -> Result<DemoSummary> {
    let started = std::time::Instant::now();
    writeln!(
        out,
        "Sandbox demo: raw data does not leave the domain; data is usable but not visible.\n"
    )?;
    let domain = Domain::init(dir)?;
    writeln!(
        out,
        "1. Operating institution initialises a domain at {}",
        dir.display()
    )?;
    writeln!(
        out,
        "   (SQLite metadata, Ed25519 signing key, domain store folders)"
    )?;
    add_principals(&domain, out)?;
    register_dataset(&domain, residents, out)?;
    let s = approve_scenario(&domain, out)?;
    let refusals = show_refusals(&domain, s.id, out)?;
    let (report, balance) = run_job(&domain, &s.spec.name, s.id, module, out)?;
    show_outputs(&domain, &report, out)?;
    let table = report
        .outputs
        .iter()
        .find(|o| o.kind == "table")
        .ok_or_else(|| Error::Internal("the demo module emitted no table".into()))?;
    review_table(&domain, &table.id, out)?;
    let product = show_product(&domain, &table.id, out)?;
    audit::checkpoint(&domain, "sup-chen")?;
    let v = audit::verify(&domain, "sup-chen")?;
    writeln!(
        out,
        "\n9. Audit log: {} events, Merkle tree and hash chain verified, {} signed checkpoint(s) (root {}…)",
        v.events,
        v.checkpoints,
        &v.root[..16]
    )?;
    writeln!(
        out,
        "\nDone in {:.1} s. Data directory: {}",
        started.elapsed().as_secs_f64(),
        dir.display()
    )?;
    Ok(DemoSummary {
        data_dir: dir.to_path_buf(),
        product_dir: product.path,
        epsilon_spent: balance.epsilon_spent,
        refusals,
    })
}

/// Step 1: the operator adds the other principals.
fn add_principals(domain: &Domain, out: &mut dyn Write) -> Result<()> {
    identity::add(domain, None, "ops-li", Role::Operator)?;
    identity::add(domain, Some("ops-li"), "psb-wang", Role::Provider)?;
    identity::add(domain, Some("ops-li"), "dev-zhao", Role::Developer)?;
    identity::add(domain, Some("ops-li"), "sup-chen", Role::Supervisor)?;
    writeln!(
        out,
        "   principals: ops-li (operator), psb-wang (provider), dev-zhao (developer), sup-chen (supervisor)\n"
    )?;

    Ok(())
}

/// Step 2: the provider registers the synthetic residents.
fn register_dataset(domain: &Domain, residents: usize, out: &mut dyn Write) -> Result<()> {
    let csv_dir = tempfile::tempdir()?;
    let csv = csv_dir.path().join("residents.csv");
    std::fs::write(&csv, sandbox_synth::residents_csv(residents, 2026))?;
    let v = catalog::add(domain, "psb-wang", &csv, RESIDENTS_POLICY)?;
    writeln!(
        out,
        "2. Provider psb-wang registers `{}`: {} rows, stored as Parquet in the domain",
        v.name, v.row_count
    )?;
    for c in &v.policy.columns {
        writeln!(
            out,
            "     {:<11} level {}  access {}",
            c.name, c.level, c.access
        )?;
    }
    writeln!(out)?;

    Ok(())
}

/// Step 3: the developer applies for the scenario and the operator approves it.
fn approve_scenario(domain: &Domain, out: &mut dyn Write) -> Result<scenarios::ScenarioRecord> {
    let today = chrono::Utc::now().date_naive();
    let s = scenarios::apply(domain, "dev-zhao", &scenario_text(today))?;
    let s = scenarios::decide(
        domain,
        "ops-li",
        &s.id.to_string(),
        true,
        Some("purpose and columns are the minimum necessary"),
    )?;
    writeln!(
        out,
        "3. Developer dev-zhao applies for scenario `{}`; operator ops-li approves it",
        s.spec.name
    )?;
    writeln!(out, "   purpose: {}", s.spec.purpose)?;
    writeln!(
        out,
        "   budget: ε {} in total, {} per query; valid {} to {}\n",
        s.spec.budget.epsilon,
        s.spec.budget.epsilon_per_query,
        s.spec.valid_from,
        s.spec.valid_until
    )?;

    Ok(s)
}

/// Step 4: queries that would expose raw data, each refused.
fn show_refusals(
    domain: &Domain,
    scenario_id: i64,
    out: &mut dyn Write,
) -> Result<Vec<mediate::Refusal>> {
    writeln!(
        out,
        "4. The mediator refuses what would expose raw data (each refusal is audited):"
    )?;
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
                writeln!(out, "   ✗ {sql}\n       {r}")?;
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
        "5. dev-zhao submits the module income_by_district.wasm ({} bytes) as job {}",
        module.len(),
        report.id
    )?;
    writeln!(
        out,
        "   it ran in wasmtime with no I/O: {} quer{}, {} fuel; status {}",
        report.queries,
        if report.queries == 1 { "y" } else { "ies" },
        report.fuel_used,
        report.status
    )?;
    for l in &report.logs {
        writeln!(out, "   module log: {}", l.text)?;
    }
    if let Some(e) = &report.error {
        return Err(Error::Guest(format!("demo job failed: {e}")));
    }
    let balance = scenarios::budget(domain, "dev-zhao", &scenario_id.to_string())?;
    writeln!(
        out,
        "   ε spent {:.2} of {:.2}; {:.2} left\n",
        balance.epsilon_spent,
        balance.epsilon_total,
        balance.epsilon_remaining()
    )?;

    Ok((report, balance))
}

/// Step 6: the outputs as staged, with their automated checks.
fn show_outputs(domain: &Domain, report: &jobs::JobReport, out: &mut dyn Write) -> Result<()> {
    writeln!(out, "6. Outputs are staged and checked automatically:")?;
    for o in &report.outputs {
        writeln!(
            out,
            "   `{}` ({}, {} bytes): {}",
            o.name, o.kind, o.bytes, o.status
        )?;
        if let Some(results) = o.checks.as_ref().and_then(|c| c["results"].as_array()) {
            for r in results {
                writeln!(
                    out,
                    "       {} {}: {}",
                    match r["outcome"].as_str() {
                        Some("pass") => "✓",
                        Some("review") => "?",
                        _ => "✗",
                    },
                    r["check"].as_str().unwrap_or(""),
                    r["reason"].as_str().unwrap_or("")
                )?;
            }
        }
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
fn review_table(domain: &Domain, output_id: &str, out: &mut dyn Write) -> Result<()> {
    let refused_release = review::release(domain, "ops-li", output_id);
    writeln!(
        out,
        "7. Review: releasing before any approval is refused: {}",
        match &refused_release {
            Err(e) => e.to_string(),
            Ok(_) =>
                return Err(Error::Internal(
                    "release without approvals succeeded".into()
                )),
        }
    )?;
    let self_review = review::decide(domain, "dev-zhao", output_id, Decision::Approve, None);
    writeln!(
        out,
        "   the developer approving their own output is refused: {}",
        match &self_review {
            Err(e) => e.to_string(),
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
    writeln!(out, "   operator ops-li approves")?;
    review::decide(
        domain,
        "sup-chen",
        output_id,
        Decision::Approve,
        Some("no disclosure risk found"),
    )?;
    writeln!(out, "   supervisor sup-chen approves → released\n")?;

    Ok(())
}

/// Step 8: the released product, its manifest verified.
fn show_product(domain: &Domain, output_id: &str, out: &mut dyn Write) -> Result<review::Product> {
    let product = review::products(domain, "sup-chen")?
        .into_iter()
        .find(|p| p.output_id == output_id)
        .ok_or_else(|| Error::Internal("no product after release".into()))?;
    let key = keys::verifying_key(domain.layout())?;
    let manifest = review::verify_product(&product.path, Some(&key))?;
    writeln!(
        out,
        "8. Product {} at {}",
        product.id,
        product.path.display()
    )?;
    writeln!(
        out,
        "   manifest.json signed by the domain key; verified: signature and file hashes match"
    )?;
    writeln!(
        out,
        "   sources: {}",
        manifest["datasets"]
            .as_array()
            .map(|ds| ds
                .iter()
                .map(|d| format!(
                    "{} v{} from {} (obtained {})",
                    d["name"].as_str().unwrap_or(""),
                    d["version"],
                    d["provider"].as_str().unwrap_or(""),
                    d["obtained_at"].as_str().unwrap_or("")
                ))
                .collect::<Vec<_>>()
                .join("; "))
            .unwrap_or_default()
    )?;
    writeln!(
        out,
        "   module sha256 {}",
        manifest["job"]["module_sha256"].as_str().unwrap_or("")
    )?;

    Ok(product)
}
