//! DP auditing harness: a lower bound on the ε each of the mediator's mechanisms actually
//! spends, against the ε its answer claims (see `sandbox_benches::audit`).
//!
//! `cargo run --profile bench -p sandbox-benches --bin dp_audit -- [--trials 10000]`
//!
//! Prints a Markdown table (the one in ASSURANCE.md) and exits non-zero if any bound
//! exceeds its claim.

use anyhow::Context;
use sandbox_benches::audit;

fn main() -> anyhow::Result<()> {
    let mut trials = 10_000usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--trials" => {
                trials = args
                    .next()
                    .context("--trials needs a number")?
                    .parse()
                    .context("--trials needs a number")?;
            }
            other => anyhow::bail!("unknown argument `{other}` (expected --trials N)"),
        }
    }
    let started = std::time::Instant::now();
    let mut findings = audit::audit_mechanisms(trials, 0.95)?;
    findings.push(audit::audit_grouped_avg(trials, 0.95)?);
    println!("{}", audit::markdown(&findings));
    println!(
        "{trials} trials per input, bounds at 95 % confidence, {:.0} s",
        started.elapsed().as_secs_f64()
    );
    if findings.iter().any(|f| !f.holds()) {
        anyhow::bail!("a mechanism spends more than it claims");
    }
    Ok(())
}
