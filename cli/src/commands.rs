//! Running a command on a local data directory: every command acts as one principal
//! (`--as NAME`) through the runtime's domain functions.

use std::fs;
use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use sandbox_core::{Decision, Error, JobStatus, Result, Role};
use sandbox_runtime::identity;
use sandbox_runtime::jobs::{self, Submission};
use sandbox_runtime::{Domain, audit, catalog, keys, mediate, review, scenarios, stops, tokens};

use crate::args::{
    AuditCmd, BudgetCmd, Cli, Command, DatasetCmd, DevCmd, JobCmd, OutputCmd, PrincipalCmd,
    ProductCmd, QueryCmd, ReviewCmd, ScenarioCmd, StopCmd, TokenCmd, UsageCmd,
};
use crate::common::{read_text, scenario_details, write_folder};
use crate::remote;

fn actor(cli: &Cli) -> Result<&str> {
    cli.actor
        .as_deref()
        .ok_or_else(|| Error::Forbidden("say who acts: --as NAME (or SANDBOX_AS)".into()))
}

fn print<T: Serialize>(json: bool, value: &T, text: impl FnOnce() -> String) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(value)?)?;
    } else {
        writeln!(out, "{}", text())?;
    }
    Ok(())
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    // What needs neither a domain nor a server.
    match &cli.command {
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut command, "sandbox", &mut std::io::stdout());
            return Ok(());
        }
        Command::Man { out } => {
            let command = <Cli as clap::CommandFactory>::command();
            fs::create_dir_all(out)?;
            clap_mangen::generate_to(command, out)?;
            let pages = fs::read_dir(out)?.count();
            return print(
                cli.json,
                &serde_json::json!({"dir": out, "pages": pages}),
                || format!("wrote {pages} manual pages to {}", out.display()),
            );
        }
        _ => {}
    }
    if let Some(url) = &cli.server {
        return remote::run(&cli, url);
    }
    match &cli.command {
        Command::Init {
            dir,
            language,
            time_zone,
        } => {
            let dir = dir.clone().unwrap_or_else(|| cli.data_dir.clone());
            let settings = sandbox_runtime::settings::Settings {
                default_language: *language,
                time_zone: time_zone.clone(),
            };
            let domain = Domain::init_with(&dir, &settings)?;
            audit::checkpoint_if_grown(&domain)?;
            let shown = std::path::absolute(&dir).unwrap_or_else(|_| dir.clone());
            print(
                cli.json,
                &serde_json::json!({"data_dir": shown, "settings": settings}),
                || {
                    format!(
                        "initialised {dir}\nlater commands act on it with --data-dir {dir}, or after\n  export SANDBOX_DATA_DIR={dir}\nthe first principal is an operator or an admin:\n  sandbox --data-dir {dir} principal add NAME --role operator",
                        dir = shown.display()
                    )
                },
            )
        }
        Command::Demo(args) => crate::demo::run(args, &mut std::io::stdout().lock()),
        Command::Dev(DevCmd::Run(args)) => crate::dev::run(args, &mut std::io::stdout().lock()),
        Command::Audit(AuditCmd::VerifyProof { file, key }) => verify_proof(&cli, file, key),
        cmd => {
            let domain = Domain::open(&cli.data_dir)?;
            let result = run_in(&cli, cmd, &domain).map_err(|e| did_you_mean(&domain, e));
            // Every command that added events ends with a signed checkpoint of the log.
            if let Err(e) = audit::checkpoint_if_grown(&domain) {
                tracing::warn!(error = %e, "no audit checkpoint written");
                eprintln!("warning: no audit checkpoint written: {e}");
            }
            result
        }
    }
}

/// An unknown principal named on the command line gets the closest known name, if one is
/// close (on this machine the names are the data directory's to read anyway).
fn did_you_mean(domain: &Domain, e: Error) -> Error {
    let Error::Forbidden(message) = &e else {
        return e;
    };
    let Some(name) = message
        .strip_prefix("unknown principal `")
        .and_then(|m| m.strip_suffix('`'))
    else {
        return e;
    };
    let Ok(known) = sandbox_runtime::identity::names(domain) else {
        return e;
    };
    match crate::common::closest(name, known.iter().map(String::as_str)) {
        Some(best) => Error::Forbidden(format!("{message}; did you mean `{best}`?")),
        None => e,
    }
}

fn verify_proof(cli: &Cli, file: &PathBuf, key: &Option<String>) -> Result<()> {
    let key = key.as_deref().map(audit::parse_key).transpose()?;
    let check = audit::verify_proof(&read_text(file)?, key.as_ref())?;
    print(cli.json, &check, || {
        let by = if key.is_some() {
            "the given key".to_string()
        } else {
            format!("key {} (compare it with the domain's)", check.public_key)
        };
        format!(
            "{} proof verified: {}; signed by {by}",
            check.kind, check.statement
        )
    })
}

fn job_line(j: &jobs::JobRecord) -> String {
    let mut s = format!("job {} {}", j.id, j.status);
    if let Some(p) = j.queue_position {
        s.push_str(&format!(" ({p} ahead in the queue)"));
    }
    if let Some(p) = &j.progress {
        s.push_str(&format!(
            " ({} ms of {}, {} queries, fuel {} of {})",
            p.elapsed_ms, p.deadline_ms, p.queries, p.fuel_used, p.fuel_limit
        ));
    }
    if let Some(e) = &j.error {
        s.push_str(&format!(": {e}"));
    }
    for o in &j.outputs {
        s.push_str(&format!(
            "\n  output {} `{}` ({}) {}",
            o.id, o.name, o.kind, o.status
        ));
    }
    s
}

fn usage_lines(list: &[scenarios::Usage]) -> String {
    list.iter()
        .map(|u| {
            format!(
                "{:>4} {:<28} {:<10} jobs {:>4}  idle {:>5}  answered {:>5}  refused {:>4} ({} counted)  ε {:.3}/{:.3}  {}",
                u.id,
                u.name,
                u.status.as_str(),
                u.jobs,
                u.idle_days.map_or_else(|| "-".into(), |d| format!("{d}d")),
                u.answered,
                u.refused,
                u.counted_refusals,
                u.epsilon_spent,
                u.epsilon_total,
                u.flags.join(",")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A command on a local data directory: one function per command family, each calling
/// the same domain functions as the server, which authorize `--as` through the one path.
fn run_in(cli: &Cli, cmd: &Command, domain: &Domain) -> Result<()> {
    match cmd {
        Command::Init { .. }
        | Command::Demo(_)
        | Command::Dev(_)
        | Command::Completions { .. }
        | Command::Man { .. } => Ok(()),
        Command::Whoami => {
            let p = identity::whoami(domain, actor(cli)?)?;
            print(cli.json, &p, || {
                format!("{} ({}, {})", p.name, p.role, p.status)
            })
        }
        Command::Principal(c) => principal_cmd(cli, c, domain),
        Command::Settings {
            language,
            time_zone,
        } => {
            let actor = actor(cli)?;
            let mut settings = sandbox_runtime::settings::get(domain, actor)?;
            if language.is_some() || time_zone.is_some() {
                if let Some(l) = language {
                    settings.default_language = *l;
                }
                if let Some(tz) = time_zone {
                    settings.time_zone = tz.clone();
                }
                settings = sandbox_runtime::settings::set(domain, actor, &settings)?;
            }
            print(cli.json, &settings, || {
                crate::common::settings_text(&settings)
            })
        }
        Command::Token(c) => token_cmd(cli, c, domain),
        Command::Dataset(c) => dataset_cmd(cli, c, domain),
        Command::Scenario(c) => scenario_cmd(cli, c, domain),
        Command::Usage(c) => usage_cmd(cli, c, domain),
        Command::Job(c) => job_cmd(cli, c, domain),
        Command::Output(c) => output_cmd(cli, c, domain),
        Command::Review(c) => review_cmd(cli, c, domain),
        Command::Product(c) => product_cmd(cli, c, domain),
        Command::Query(c) => query_cmd(cli, c, domain),
        Command::Budget(BudgetCmd::Show { scenario }) => {
            let b = scenarios::budget(domain, actor(cli)?, scenario)?;
            print(cli.json, &b, || budget_text(&b))
        }
        Command::Stop(c) => stop_cmd(cli, c, domain),
        Command::Audit(c) => audit_cmd(cli, c, domain),
        Command::Serve {
            listen,
            jobs,
            max_queued,
            secure_cookies,
            anonymous_refusals_per_minute,
        } => sandbox_server::serve(
            domain,
            *listen,
            sandbox_server::Config {
                job_slots: *jobs,
                max_queued_per_developer: *max_queued,
                secure_cookies: *secure_cookies,
                anonymous_refusals_per_minute: *anonymous_refusals_per_minute,
                ..Default::default()
            },
        ),
    }
}

fn budget_text(b: &scenarios::Balance) -> String {
    let mut text = format!(
        "scenario {}: ε spent {:.4} of {:.4}, {:.4} left",
        b.scenario_id,
        b.epsilon_spent,
        b.epsilon_total,
        b.epsilon_remaining()
    );
    if b.rho_total > 0.0 {
        text.push_str(&format!(
            "\n  zCDP: ρ spent {:.6} of {:.6} (δ {:e})",
            b.rho_spent, b.rho_total, b.delta_total
        ));
    } else if b.delta_total > 0.0 {
        text.push_str(&format!(
            "\n  δ spent {:e} of {:e}",
            b.delta_spent, b.delta_total
        ));
    }
    text
}

fn principal_cmd(cli: &Cli, cmd: &PrincipalCmd, domain: &Domain) -> Result<()> {
    match cmd {
        PrincipalCmd::Add { name, role } => {
            let role: Role = role.parse()?;
            let p = identity::add(domain, cli.actor.as_deref(), name, role)?;
            print(cli.json, &p, || format!("added {} ({})", p.name, p.role))
        }
        PrincipalCmd::Language { language } => {
            let chosen = crate::common::parse_language_choice(language)?;
            let actor = actor(cli)?;
            sandbox_runtime::settings::set_language(domain, actor, chosen)?;
            let p = identity::whoami(domain, actor)?;
            print(cli.json, &p, || {
                crate::common::language_text(&p.name, p.language)
            })
        }
        PrincipalCmd::List => {
            let list = identity::list(domain, actor(cli)?)?;
            print(cli.json, &list, || {
                crate::lists::principals(
                    &serde_json::to_value(&list).unwrap_or_default(),
                    cli.language(),
                )
            })
        }
        PrincipalCmd::Qualify { name, reason }
        | PrincipalCmd::Suspend { name, reason }
        | PrincipalCmd::Revoke { name, reason } => {
            let status = match cmd {
                PrincipalCmd::Qualify { .. } => identity::Status::Active,
                PrincipalCmd::Suspend { .. } => identity::Status::Suspended,
                _ => identity::Status::Revoked,
            };
            let p = identity::set_status(domain, actor(cli)?, name, status, reason)?;
            print(cli.json, &p, || {
                format!("{} ({}) is {}", p.name, p.role, p.status)
            })
        }
    }
}

fn token_cmd(cli: &Cli, cmd: &TokenCmd, domain: &Domain) -> Result<()> {
    match cmd {
        TokenCmd::Issue { name } => {
            let issued = tokens::issue(domain, actor(cli)?, name)?;
            print(cli.json, &issued, || {
                format!(
                    "token {} for {} (shown once; only its hash is kept):\n{}",
                    issued.id, issued.principal, issued.token
                )
            })
        }
        TokenCmd::Revoke { id, reason } => {
            let t = tokens::revoke(domain, actor(cli)?, id, reason)?;
            print(cli.json, &t, || {
                format!("token {} of {} revoked", t.id, t.principal)
            })
        }
        TokenCmd::List { principal } => {
            let list = tokens::list(domain, actor(cli)?, principal.as_deref())?;
            print(cli.json, &list, || {
                crate::lists::tokens(
                    &serde_json::to_value(&list).unwrap_or_default(),
                    cli.language(),
                )
            })
        }
    }
}

fn dataset_cmd(cli: &Cli, cmd: &DatasetCmd, domain: &Domain) -> Result<()> {
    match cmd {
        DatasetCmd::Add { file, policy } => {
            let text = read_text(policy)?;
            let who = actor(cli)?;
            let v = {
                let _p = crate::progress::Progress::start(
                    format!("registering {}", file.display()),
                    cli.json,
                );
                catalog::add(domain, who, file, &text)?
            };
            let value = serde_json::to_value(&v)?;
            print(cli.json, &v, || crate::common::dataset_added_text(&value))
        }
        DatasetCmd::List => {
            let list = catalog::list(domain, actor(cli)?)?;
            print(cli.json, &list, || {
                crate::lists::datasets(
                    &serde_json::to_value(&list).unwrap_or_default(),
                    cli.language(),
                )
            })
        }
        DatasetCmd::Show { name } => {
            let v = catalog::get(domain, actor(cli)?, name)?;
            print(cli.json, &v, || {
                let mut s = format!(
                    "{} v{} — {}\nprovider: {}\nrows: {}  obtained: {}\ncolumns:\n",
                    v.name,
                    v.version,
                    v.policy.dataset.summary,
                    v.policy.dataset.provider,
                    v.row_count,
                    v.obtained_at
                );
                for c in &v.policy.columns {
                    s.push_str(&format!(
                        "  {:<16} level {}  {}\n",
                        c.name, c.level, c.access
                    ));
                }
                if let Some(r) = &v.retired {
                    s.push_str(&format!("retired {} by {}: {}\n", r.at, r.by, r.reason));
                }
                s.push_str(
                    crate::common::ingest_report_text(
                        &serde_json::to_value(&v.report).unwrap_or_default(),
                    )
                    .trim_start_matches('\n'),
                );
                s
            })
        }
        DatasetCmd::Retire { name, reason } => {
            let v = catalog::retire(domain, actor(cli)?, name, reason)?;
            print(cli.json, &v, || {
                format!("dataset {} is retired: refused for new scenarios", v.name)
            })
        }
    }
}

fn scenario_cmd(cli: &Cli, cmd: &ScenarioCmd, domain: &Domain) -> Result<()> {
    match cmd {
        ScenarioCmd::Apply { file } => {
            let r = scenarios::apply(domain, actor(cli)?, &read_text(file)?)?;
            print(cli.json, &r, || {
                format!("scenario {} `{}` is pending", r.id, r.spec.name)
            })
        }
        ScenarioCmd::Approve { scenario, reason } => {
            let r = scenarios::decide(domain, actor(cli)?, scenario, true, reason.as_deref())?;
            print(cli.json, &r, || {
                format!("scenario {} `{}` approved", r.id, r.spec.name)
            })
        }
        ScenarioCmd::Reject { scenario, reason } => {
            let r = scenarios::decide(domain, actor(cli)?, scenario, false, Some(reason))?;
            print(cli.json, &r, || {
                format!("scenario {} `{}` rejected", r.id, r.spec.name)
            })
        }
        ScenarioCmd::List => {
            let list = scenarios::list(domain, actor(cli)?)?;
            print(cli.json, &list, || {
                crate::lists::scenarios(
                    &serde_json::to_value(&list).unwrap_or_default(),
                    cli.language(),
                )
            })
        }
        ScenarioCmd::Show { scenario } => {
            let r = scenarios::show(domain, actor(cli)?, scenario)?;
            let v = serde_json::to_value(&r)?;
            print(cli.json, &r, || scenario_details(&v))
        }
        ScenarioCmd::Suspend { scenario, reason }
        | ScenarioCmd::Reinstate { scenario, reason }
        | ScenarioCmd::Revoke { scenario, reason } => {
            let change = match cmd {
                ScenarioCmd::Suspend { .. } => scenarios::Change::Suspend,
                ScenarioCmd::Reinstate { .. } => scenarios::Change::Reinstate,
                _ => scenarios::Change::Revoke,
            };
            let r = scenarios::change(domain, actor(cli)?, scenario, change, reason)?;
            print(cli.json, &r, || {
                format!(
                    "scenario {} `{}` is {}",
                    r.id,
                    r.spec.name,
                    r.status.as_str()
                )
            })
        }
    }
}

fn usage_cmd(cli: &Cli, cmd: &UsageCmd, domain: &Domain) -> Result<()> {
    match cmd {
        UsageCmd::Show => {
            let who = actor(cli)?;
            let today = chrono::Utc::now().date_naive();
            // Authorized first: only a reader of usage makes the idle check run.
            scenarios::usage_settings(domain, who)?;
            scenarios::flag_idle(domain, today)?;
            let list = scenarios::usage(domain, who, today)?;
            print(cli.json, &list, || usage_lines(&list))
        }
        UsageCmd::Settings {
            max_refusals,
            idle_days,
        } => {
            let current = scenarios::usage_settings(domain, actor(cli)?)?;
            let settings = if max_refusals.is_some() || idle_days.is_some() {
                scenarios::set_usage_settings(
                    domain,
                    actor(cli)?,
                    scenarios::UsageSettings {
                        max_refusals: max_refusals.unwrap_or(current.max_refusals),
                        idle_days: idle_days.unwrap_or(current.idle_days),
                    },
                )?
            } else {
                current
            };
            print(cli.json, &settings, || {
                format!(
                    "a scenario is suspended at {} over-scope refusals (0: never) and flagged idle after {} days",
                    settings.max_refusals, settings.idle_days
                )
            })
        }
    }
}

fn job_cmd(cli: &Cli, cmd: &JobCmd, domain: &Domain) -> Result<()> {
    match cmd {
        JobCmd::Submit(args) => {
            let module = fs::read(&args.module).map_err(|e| Error::Input {
                path: args.module.display().to_string(),
                message: e.to_string(),
            })?;
            let running = crate::progress::Progress::start(
                format!("running {}", args.module.display()),
                cli.json,
            );
            let report = jobs::submit(
                domain,
                actor(cli)?,
                &Submission {
                    scenario: &args.scenario,
                    module: &module,
                    params_json: &args.params,
                    limits: args.limits().request(),
                    resubmits: args.resubmits.as_deref(),
                },
            )?;
            drop(running);
            print(cli.json, &report, || {
                let mut s = format!("job {} {}", report.id, report.status);
                if let Some(e) = &report.error {
                    s.push_str(&format!(": {e}"));
                }
                for o in &report.outputs {
                    s.push_str(&format!(
                        "\n  output {} `{}` ({}) {}",
                        o.id, o.name, o.kind, o.status
                    ));
                }
                s
            })?;
            crate::common::job_ended(
                &report.id,
                report.status.as_str(),
                report.error.as_deref(),
                None,
            )
        }
        JobCmd::Status { id } => {
            let j = jobs::job(domain, actor(cli)?, id)?;
            print(cli.json, &j, || job_line(&j))
        }
        JobCmd::List { status, limit } => {
            let status = status.as_deref().map(JobStatus::parse).transpose()?;
            let list = jobs::list(
                domain,
                actor(cli)?,
                &jobs::JobFilter {
                    submitter: None,
                    scenario_id: None,
                    status,
                    limit: Some(*limit),
                },
            )?;
            print(cli.json, &list, || {
                crate::lists::jobs(
                    &serde_json::to_value(&list).unwrap_or_default(),
                    cli.language(),
                )
            })
        }
        JobCmd::Logs { id } => {
            let lines = jobs::logs(domain, actor(cli)?, id)?;
            print(cli.json, &lines, || {
                lines
                    .iter()
                    .map(|l| format!("[{}] {}", l.level, l.text))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        JobCmd::Cancel { id, reason } => {
            let j = jobs::cancel(domain, actor(cli)?, id, reason.as_deref())?;
            print(cli.json, &j, || job_line(&j))
        }
    }
}

fn review_cmd(cli: &Cli, cmd: &ReviewCmd, domain: &Domain) -> Result<()> {
    let who = actor(cli)?;
    match cmd {
        ReviewCmd::Show { job } => {
            let t = review::thread::thread(domain, who, job)?;
            let v = serde_json::to_value(&t)?;
            print(cli.json, &t, || crate::common::thread_text(&v))
        }
        ReviewCmd::Comment { job, text } => {
            let t = review::thread::comment(domain, who, job, text)?;
            let v = serde_json::to_value(&t)?;
            print(cli.json, &t, || crate::common::thread_text(&v))
        }
        ReviewCmd::Decide {
            job,
            decision,
            reason,
        } => {
            let decided = review::thread::decide_request(
                domain,
                who,
                job,
                decision.decision(),
                reason.as_deref(),
            )?;
            let v = serde_json::to_value(&decided)?;
            print(cli.json, &decided, || {
                crate::common::decided_text(v.as_array().map_or(&[][..], Vec::as_slice))
            })
        }
    }
}

fn output_cmd(cli: &Cli, cmd: &OutputCmd, domain: &Domain) -> Result<()> {
    let decided = |o: jobs::OutputRecord| -> Result<()> {
        // A release names the product it made and where it is.
        let product = if o.status == sandbox_core::OutputStatus::Released {
            review::products(domain, actor(cli)?)?
                .into_iter()
                .find(|p| p.output_id == o.id)
        } else {
            None
        };
        print(cli.json, &o, || match &product {
            Some(p) => format!(
                "output {} is released as product {}\nat {}",
                o.id,
                p.id,
                p.path.display()
            ),
            None => format!("output {} is {}", o.id, o.status),
        })
    };
    match cmd {
        OutputCmd::List => {
            let list = jobs::all_outputs(domain, actor(cli)?)?;
            print(cli.json, &list, || {
                crate::lists::outputs(
                    &serde_json::to_value(&list).unwrap_or_default(),
                    cli.language(),
                )
            })
        }
        OutputCmd::Approve { id, reason } => decided(review::decide(
            domain,
            actor(cli)?,
            id,
            Decision::Approve,
            reason.as_deref(),
        )?),
        OutputCmd::Reject { id, reason } => decided(review::decide(
            domain,
            actor(cli)?,
            id,
            Decision::Reject,
            Some(reason),
        )?),
        OutputCmd::RequestChanges { id, reason } => decided(review::decide(
            domain,
            actor(cli)?,
            id,
            Decision::RequestChanges,
            Some(reason),
        )?),
        OutputCmd::Checks { id } => {
            let o = jobs::output(domain, actor(cli)?, id)?;
            print(cli.json, &o.checks, || {
                let results = o
                    .checks
                    .as_ref()
                    .and_then(|c| c.get("results"))
                    .and_then(serde_json::Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let mut lines = vec![format!("output {} ({}) is {}", o.id, o.name, o.status)];
                for r in results {
                    lines.push(format!(
                        "  {:<14} {:<7} {}",
                        r["check"].as_str().unwrap_or(""),
                        r["outcome"].as_str().unwrap_or(""),
                        r["reason"].as_str().unwrap_or("")
                    ));
                }
                lines.join("\n")
            })
        }
        OutputCmd::Show { id, rows } => {
            let o = jobs::output(domain, actor(cli)?, id)?;
            let bytes = jobs::staged_file(domain, &o)?;
            let shown = sandbox_runtime::export::show(&o.file_name, &bytes, *rows)?;
            print(cli.json, &o, || {
                format!(
                    "output {} `{}` ({}, {})\n{shown}",
                    o.id, o.name, o.kind, o.status
                )
            })
        }
        OutputCmd::Download { id, out, format } => {
            let o = jobs::output(domain, actor(cli)?, id)?;
            let bytes = jobs::staged_file(domain, &o)?;
            let format = format.map_or_else(
                || sandbox_runtime::export::Format::of_path(out),
                crate::args::FormatArg::format,
            );
            let (_, bytes) = sandbox_runtime::export::convert(&o.file_name, bytes, format)?;
            crate::common::write_file(out, &bytes)?;
            print(cli.json, &o, || {
                format!("wrote {} ({} bytes)", out.display(), bytes.len())
            })
        }
    }
}

fn product_cmd(cli: &Cli, cmd: &ProductCmd, domain: &Domain) -> Result<()> {
    match cmd {
        ProductCmd::List => {
            let list = review::products(domain, actor(cli)?)?;
            print(cli.json, &list, || {
                crate::lists::products(
                    &serde_json::to_value(&list).unwrap_or_default(),
                    cli.language(),
                )
            })
        }
        ProductCmd::Download { id, out, format } => {
            let p = review::product(domain, actor(cli)?, id)?;
            let mut names = p.file_names()?;
            let format = format.map(crate::args::FormatArg::format);
            let copies = crate::common::converted_names(&names, format);
            names.extend(copies.iter().map(|(copy, _)| copy.clone()));
            write_folder(out, &names, |name| {
                match copies.iter().find(|(copy, _)| copy == name) {
                    Some((_, of)) => crate::common::converted(of, p.file(of)?, format),
                    None => p.file(name),
                }
            })?;
            print(cli.json, &names, || {
                format!(
                    "copied {} file(s) of product {id} to {}",
                    names.len(),
                    out.display()
                )
            })
        }
        ProductCmd::Verify { dir } => {
            let key = keys::verifying_key(domain.layout())?;
            let manifest = review::verify_product(dir, Some(&key))?;
            print(cli.json, &manifest, || {
                format!(
                    "product {} verified: signature and {} file(s) match",
                    manifest["product_id"].as_str().unwrap_or("?"),
                    manifest["files"].as_array().map_or(0, Vec::len)
                )
            })
        }
    }
}

fn query_cmd(cli: &Cli, cmd: &QueryCmd, domain: &Domain) -> Result<()> {
    match cmd {
        QueryCmd::Explain {
            scenario,
            epsilon,
            sql,
        } => {
            let e = mediate::explain(domain, actor(cli)?, scenario, sql, *epsilon)?;
            print(cli.json, &e, || e.to_string())
        }
        QueryCmd::Check { scenario, sql } => {
            let accepted = mediate::check(domain, actor(cli)?, scenario, sql)?;
            let keys: Vec<String> = accepted.group_keys.iter().map(|g| g.label()).collect();
            print(
                cli.json,
                &serde_json::json!({"accepted": true, "datasets": accepted.datasets(), "group_keys": keys}),
                || {
                    format!(
                        "accepted: {} aggregate(s) over `{}`, grouped by {:?}",
                        accepted.requested.len(),
                        accepted.datasets(),
                        keys
                    )
                },
            )
        }
    }
}

fn stop_cmd(cli: &Cli, cmd: &StopCmd, domain: &Domain) -> Result<()> {
    let who = actor(cli)?;
    let (scope, reason) = match cmd {
        StopCmd::Scenario { scenario, reason } => (
            stops::Scope::Scenario(scenarios::show(domain, who, scenario)?.id),
            reason,
        ),
        StopCmd::Developer { name, reason } => (stops::Scope::Developer(name.clone()), reason),
        StopCmd::Domain { reason } => (stops::Scope::Domain, reason),
        StopCmd::List { all } => {
            let list = stops::list(domain, who, *all)?;
            let values = serde_json::to_value(&list)?;
            return print(cli.json, &list, || {
                crate::common::stops_text(values.as_array().map_or(&[][..], Vec::as_slice))
            });
        }
        StopCmd::Lift { id, reason } => {
            stops::lift(domain, who, *id, reason)?;
            return print(cli.json, &serde_json::json!({"lifted": true}), || {
                "stop lifted".to_string()
            });
        }
    };
    let stop = stops::stop(domain, who, scope, reason)?;
    print(cli.json, &stop, || {
        format!(
            "stop {} in force; {} running job(s) interrupted",
            stop.id,
            stop.interrupted.len()
        )
    })
}

fn audit_cmd(cli: &Cli, cmd: &AuditCmd, domain: &Domain) -> Result<()> {
    match cmd {
        AuditCmd::Verify => {
            // With `--as`, a principal's check; without, the custodian's on the machine.
            let v = match cli.actor.as_deref() {
                Some(who) => audit::verify(domain, who)?,
                None => audit::verify_custodian(domain)?,
            };
            print(cli.json, &v, || {
                let last = v.last_checkpoint.as_ref().map_or_else(
                    || "no checkpoint yet".to_string(),
                    |c| {
                        format!(
                            "last checkpoint {} of {} events at {}",
                            c.number, c.size, c.ts
                        )
                    },
                );
                format!(
                    "audit log verified: {} events, root {}, {} signed checkpoint(s) ({last})",
                    v.events, v.root, v.checkpoints
                )
            })
        }
        AuditCmd::Checkpoint => {
            let c = audit::checkpoint(domain, actor(cli)?)?;
            print(cli.json, &c, || {
                format!(
                    "checkpoint {}: {} events, root {}, signed at {}",
                    c.number, c.size, c.root, c.ts
                )
            })
        }
        AuditCmd::Prove {
            seq,
            size,
            from,
            to,
        } => {
            let who = actor(cli)?;
            let proof = match (seq, from) {
                (Some(seq), _) => {
                    serde_json::to_value(audit::prove_inclusion(domain, who, *seq, *size)?)?
                }
                (None, Some(from)) => {
                    serde_json::to_value(audit::prove_consistency(domain, who, *from, *to)?)?
                }
                (None, None) => {
                    return Err(Error::Invalid(
                        "say what to prove: SEQ, or --from M [--to N]".into(),
                    ));
                }
            };
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", serde_json::to_string_pretty(&proof)?)?;
            Ok(())
        }
        AuditCmd::VerifyProof { .. } => Ok(()),
        AuditCmd::Export { from, to, out } => {
            let who = actor(cli)?;
            match out {
                Some(path) => {
                    let mut file = std::io::BufWriter::new(fs::File::create(path)?);
                    let summary = audit::export(domain, who, *from, *to, &mut file)?;
                    print(cli.json, &summary, || {
                        format!(
                            "exported events {}..={} ({} events, {} checkpoints) to {}",
                            summary.from,
                            summary.to,
                            summary.events,
                            summary.checkpoints,
                            path.display()
                        )
                    })
                }
                None => {
                    let mut stdout = std::io::stdout().lock();
                    audit::export(domain, who, *from, *to, &mut stdout)?;
                    Ok(())
                }
            }
        }
        AuditCmd::Retention { set } => {
            let years = match set {
                Some(years) => audit::set_retention_years(domain, actor(cli)?, *years)?,
                None => audit::retention_years(domain)?,
            };
            print(
                cli.json,
                &serde_json::json!({"audit_retention_years": years}),
                || {
                    format!(
                        "audit retention: {years} years (at least {}; events are never deleted)",
                        audit::MIN_RETENTION_YEARS
                    )
                },
            )
        }
        AuditCmd::Log { from, limit } => {
            let (events, size) = audit::page(domain, actor(cli)?, *from, *limit)?;
            let next = events.last().map(|e| e.seq + 1).filter(|n| *n <= size);
            let page = serde_json::json!({"events": events, "size": size, "next": next});
            print(cli.json, &events, || {
                crate::lists::audit_page(&page, cli.language())
            })
        }
    }
}
