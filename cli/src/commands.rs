//! Running a command on a local data directory: every command acts as one principal
//! (`--as NAME`) through the runtime's domain functions.

use std::fs;
use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use sandbox_i18n::t;

use sandbox_core::{Decision, Error, JobStatus, Result, Role};
use sandbox_runtime::identity;
use sandbox_runtime::jobs::{self, Submission};
use sandbox_runtime::{
    Domain, MasterKey, audit, catalog, consent, keys, mediate, organisations, review, scenarios,
    stops, tokens,
};

use crate::args::{
    AuditCmd, BudgetCmd, Cli, Command, DatasetCmd, DevCmd, JobCmd, KeyCmd, OrgCmd, OutputCmd,
    PrincipalCmd, ProductCmd, QueryCmd, ReviewCmd, ScenarioCmd, StopCmd, TokenCmd, UsageCmd,
};
use crate::common::{read_text, write_folder};
use crate::{remote, texts};

/// A cluster node's TLS from its three files (clap has them all or none).
fn node_tls(
    ca: &Option<PathBuf>,
    cert: &Option<PathBuf>,
    key: &Option<PathBuf>,
) -> Result<Option<sandbox_runtime::NodeTls>> {
    match (ca, cert, key) {
        (Some(ca), Some(cert), Some(key)) => {
            Ok(Some(sandbox_runtime::NodeTls::from_files(ca, cert, key)?))
        }
        (None, None, None) => Ok(None),
        _ => Err(Error::Invalid(
            "the cluster's TLS takes a CA, a certificate and a key".into(),
        )),
    }
}

fn actor(cli: &Cli) -> Result<&str> {
    cli.actor
        .as_deref()
        .ok_or_else(|| Error::Forbidden(t!(cli.language(), "cli-need-actor")))
}

/// The reader of this domain's texts: the CLI's language, the domain's time zone.
fn local_ui(lang: sandbox_core::Lang, domain: &Domain) -> texts::Ui {
    let settings = sandbox_runtime::settings::for_display(domain).ok();
    texts::Ui::new(lang, settings.as_ref().map(|s| s.time_zone.as_str()))
}

/// A record as the JSON the API answers with, which the texts read.
fn json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
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
    let lang = cli.language();
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
                || {
                    t!(
                        lang,
                        "cli-man-wrote",
                        pages = pages,
                        dir = out.display().to_string()
                    )
                },
            );
        }
        Command::Scheduler {
            listen,
            tls_ca,
            tls_cert,
            tls_key,
        } => {
            return Ok(sandbox_cluster::scheduler(
                sandbox_cluster::SchedulerSettings {
                    bind: *listen,
                    tls: node_tls(tls_ca, tls_cert, tls_key)?,
                },
            )?);
        }
        Command::Executor {
            scheduler,
            host,
            port,
            grpc_port,
            work_dir,
            vcores,
            memory_mib,
            tls_ca,
            tls_cert,
            tls_key,
        } => {
            let (scheduler_host, scheduler_port) = scheduler
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
                .ok_or_else(|| {
                    Error::Invalid(format!("--scheduler `{scheduler}` is not host:port"))
                })?;
            return Ok(sandbox_cluster::executor(
                &cli.data_dir,
                sandbox_cluster::ExecutorSettings {
                    scheduler_host,
                    scheduler_port,
                    host: host.clone(),
                    port: *port,
                    grpc_port: *grpc_port,
                    work_dir: work_dir.clone(),
                    vcores: *vcores,
                    memory_pool: memory_mib.map(|m| m.saturating_mul(1024 * 1024)),
                    tls: node_tls(tls_ca, tls_cert, tls_key)?,
                },
            )?);
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
            crypto,
            master,
            metadata,
            metadata_owner,
        } => {
            let dir = dir.clone().unwrap_or_else(|| cli.data_dir.clone());
            let settings = sandbox_runtime::settings::Settings {
                default_language: *language,
                time_zone: time_zone.clone(),
            };
            let store = match (metadata, metadata_owner) {
                (Some(serving), Some(owner)) => {
                    sandbox_runtime::store::metadata::Create::Postgres {
                        owner: owner.clone(),
                        serving: serving.clone(),
                    }
                }
                _ => sandbox_runtime::store::metadata::Create::Sqlite,
            };
            let domain =
                Domain::init_on(&dir, &settings, &master_key(master, &dir), *crypto, &store)?;
            audit::checkpoint_if_grown(&domain)?;
            let shown = std::path::absolute(&dir).unwrap_or_else(|_| dir.clone());
            let source = sandbox_runtime::master::config(domain.layout())?
                .map(|c| c.source.to_string())
                .unwrap_or_default();
            let key_id = domain.keys().provider().key_id().to_string();
            print(
                cli.json,
                &serde_json::json!({"data_dir": shown, "settings": settings, "suite": crypto,
                                    "master_key": {"source": source, "key_id": key_id}}),
                || {
                    format!(
                        "{}\n{}\n{}",
                        t!(lang, "cli-init-done", dir = shown.display().to_string()),
                        t!(
                            lang,
                            "cli-init-suite",
                            suite = crypto.name(),
                            hash = crypto.hash_name(),
                            signature = crypto.signature_name(),
                            wrapping = crypto.wrapping_name()
                        ),
                        t!(
                            lang,
                            "cli-init-master",
                            source = source.as_str(),
                            id = key_id.as_str()
                        )
                    )
                },
            )
        }
        Command::Key(KeyCmd::Protect { master }) => {
            let dir = &cli.data_dir;
            let key_id = Domain::protect_keys(dir, &master_key(master, dir))?;
            let domain = Domain::open(dir)?;
            let source = sandbox_runtime::master::config(domain.layout())?
                .map(|c| c.source.to_string())
                .unwrap_or_default();
            print(
                cli.json,
                &serde_json::json!({"master_key": {"source": source, "key_id": key_id}}),
                || {
                    t!(
                        lang,
                        "cli-key-protected",
                        source = source.as_str(),
                        id = key_id.as_str()
                    )
                },
            )
        }
        Command::Demo(args) => crate::demo::run(args, lang, &mut std::io::stdout().lock()),
        Command::Dev(DevCmd::Run(args)) => {
            crate::dev::run(args, lang, &mut std::io::stdout().lock())
        }
        Command::Audit(AuditCmd::VerifyProof { file, key }) => verify_proof(&cli, file, key),
        Command::Backup(crate::args::BackupArgs {
            cmd: Some(crate::args::BackupCmd::Verify { file, key }),
            ..
        }) => {
            let r = sandbox_runtime::backup::verify(file, &backup_key(key, &cli.data_dir)?)?;
            print(cli.json, &r, || {
                t!(
                    lang,
                    "cli-backup-verified",
                    id = r.backup_id.as_str(),
                    taken = r.created_at.as_str(),
                    files = r.files,
                    events = r.events,
                    checkpoints = r.checkpoints
                )
            })
        }
        Command::Migrate { metadata_owner } => {
            let fresh = sandbox_runtime::store::migrate_postgres(metadata_owner)?;
            let version = sandbox_runtime::store::SCHEMA_VERSION;
            print(
                cli.json,
                &serde_json::json!({"schema_version": version, "created": fresh}),
                || {
                    t!(
                        lang,
                        "cli-migrated",
                        version = version,
                        created = if fresh { "yes" } else { "no" }
                    )
                },
            )
        }
        Command::Restore {
            file,
            dir,
            checkpoint,
            key,
        } => {
            let checkpoint: Option<audit::Checkpoint> = checkpoint
                .as_ref()
                .map(|path| {
                    serde_json::from_str(&read_text(path)?).map_err(|e| Error::Input {
                        path: path.display().to_string(),
                        message: format!("not a checkpoint: {e}"),
                    })
                })
                .transpose()?;
            let r = sandbox_runtime::backup::restore(
                file,
                dir,
                &backup_key(key, &cli.data_dir)?,
                checkpoint.as_ref(),
            )?;
            print(cli.json, &r, || {
                let mut text = t!(
                    lang,
                    "cli-restored",
                    id = r.backup_id.as_str(),
                    taken = r.created_at.as_str(),
                    dir = r.dir.display().to_string(),
                    files = r.files,
                    events = r.events,
                    checkpoints = r.checkpoints
                );
                use sandbox_runtime::backup::Standing;
                let standing = match &r.standing {
                    None => None,
                    Some(Standing::Holds { log, checkpoint }) => Some(t!(
                        lang,
                        "cli-restored-holds",
                        log = *log,
                        checkpoint = *checkpoint
                    )),
                    Some(Standing::RolledBack { log, checkpoint }) => Some(t!(
                        lang,
                        "cli-restored-rolled-back",
                        log = *log,
                        checkpoint = *checkpoint
                    )),
                    Some(Standing::Diverged { checkpoint }) => {
                        Some(t!(lang, "cli-restored-diverged", checkpoint = *checkpoint))
                    }
                };
                if let Some(s) = standing {
                    text.push('\n');
                    text.push_str(&s);
                }
                text
            })
        }
        cmd => {
            let domain = Domain::open(&cli.data_dir)?;
            let result = run_in(&cli, cmd, &domain).map_err(|e| did_you_mean(&domain, lang, e));
            // Every command that added events ends with a signed checkpoint of the log.
            if let Err(e) = audit::checkpoint_if_grown(&domain) {
                tracing::warn!(error = %e, "no audit checkpoint written");
                eprintln!(
                    "{}",
                    t!(lang, "cli-checkpoint-warning", error = e.to_string())
                );
            }
            result
        }
    }
}

/// An unknown principal named on the command line gets the closest known name, if one is
/// close (on this machine the names are the data directory's to read anyway).
fn did_you_mean(domain: &Domain, lang: sandbox_core::Lang, e: Error) -> Error {
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
        Some(best) => Error::Forbidden(format!(
            "{message}; {}",
            t!(lang, "cli-did-you-mean", name = best)
        )),
        None => e,
    }
}

fn verify_proof(cli: &Cli, file: &PathBuf, key: &Option<String>) -> Result<()> {
    let key = key.as_deref().map(audit::PublicKey::parse).transpose()?;
    let check = audit::verify_proof(&read_text(file)?, key.as_ref())?;
    print(cli.json, &check, || {
        texts::proof_verified(
            &texts::Ui::new(cli.language(), None),
            &json(&check),
            key.is_some(),
        )
    })
}

/// A command on a local data directory: one function per command family, each calling
/// the same domain functions as the server, which authorize `--as` through the one path.
fn run_in(cli: &Cli, cmd: &Command, domain: &Domain) -> Result<()> {
    let lang = cli.language();
    let ui = local_ui(lang, domain);
    match cmd {
        Command::Key(KeyCmd::Rotate { master }) => {
            let r = sandbox_runtime::custody::rotate_master_key(
                domain,
                actor(cli)?,
                &master_key(master, domain.layout().root()),
            )?;
            print(cli.json, &r, || {
                t!(
                    lang,
                    "cli-key-rotated",
                    from = r.from.as_str(),
                    to = r.to.as_str(),
                    source = r.source.as_str()
                )
            })
        }
        Command::Backup(args) => {
            let Some(out) = &args.out else {
                return Err(Error::Invalid("backup: --out FILE".into()));
            };
            let r = sandbox_runtime::backup::backup(domain, actor(cli)?, out)?;
            print(cli.json, &r, || {
                t!(
                    lang,
                    "cli-backup-done",
                    file = r.file.display().to_string(),
                    id = r.backup_id.as_str(),
                    files = r.files,
                    bytes = r.bytes,
                    events = r.log.size
                )
            })
        }
        Command::Init { .. }
        | Command::Migrate { .. }
        | Command::Restore { .. }
        | Command::Key(_)
        | Command::Demo(_)
        | Command::Dev(_)
        | Command::Completions { .. }
        | Command::Man { .. }
        | Command::Scheduler { .. }
        | Command::Executor { .. } => Ok(()),
        Command::Whoami => {
            let p = identity::whoami(domain, actor(cli)?)?;
            print(cli.json, &p, || texts::whoami(&ui, &json(&p)))
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
            print(cli.json, &settings, || texts::settings(&ui, &settings))
        }
        Command::Token(c) => token_cmd(cli, c, domain),
        Command::Dataset(c) => dataset_cmd(cli, c, domain),
        Command::Scenario(c) => scenario_cmd(cli, c, domain),
        Command::Usage(c) => usage_cmd(cli, c, domain),
        Command::Job(c) => job_cmd(cli, c, domain),
        Command::Output(c) => output_cmd(cli, c, domain),
        Command::Review(c) => review_cmd(cli, c, domain),
        Command::Product(c) => product_cmd(cli, c, domain),
        Command::Org(c) => org_cmd(cli, c, domain),
        Command::Incident(c) => incident_cmd(cli, c, domain),
        Command::Report(c) => report_cmd(cli, c, domain),
        Command::Order(c) => order_cmd(cli, c, domain),
        Command::Query(c) => query_cmd(cli, c, domain),
        Command::Budget(BudgetCmd::Show { scenario }) => {
            let b = scenarios::budget(domain, actor(cli)?, scenario)?;
            print(cli.json, &b, || texts::budget(&ui, &json(&b)))
        }
        Command::Stop(c) => stop_cmd(cli, c, domain),
        Command::Audit(c) => audit_cmd(cli, c, domain),
        Command::Serve {
            listen,
            jobs,
            max_queued,
            secure_cookies,
            anonymous_refusals_per_minute,
            job_lease,
            engine,
            engine_min_rows,
            engine_partitions,
            engine_tls_ca,
            engine_tls_cert,
            engine_tls_key,
            memory_mib,
        } => {
            if let Some(mib) = memory_mib {
                let bytes = usize::try_from(mib.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX);
                domain.mediator().set_memory_pool(Some(bytes))?;
            }
            if let Some(url) = engine {
                let mut settings = sandbox_runtime::ClusterSettings::parse(url)?;
                settings.min_rows = *engine_min_rows;
                settings.partitions = (*engine_partitions).max(1);
                settings.tls = node_tls(engine_tls_ca, engine_tls_cert, engine_tls_key)?;
                domain.use_engine(sandbox_runtime::Engine::Cluster(settings))?;
            }
            sandbox_server::serve(
                domain,
                *listen,
                sandbox_server::Config {
                    job_slots: *jobs,
                    max_queued_per_developer: *max_queued,
                    secure_cookies: *secure_cookies,
                    anonymous_refusals_per_minute: *anonymous_refusals_per_minute,
                    job_lease: std::time::Duration::from_secs(*job_lease),
                    ..Default::default()
                },
            )
        }
    }
}

fn principal_cmd(cli: &Cli, cmd: &PrincipalCmd, domain: &Domain) -> Result<()> {
    let lang = cli.language();
    let ui = local_ui(lang, domain);
    match cmd {
        PrincipalCmd::Add { name, role, org } => {
            let role: Role = role.parse()?;
            let p = identity::add_to(domain, cli.actor.as_deref(), name, role, org.as_deref())?;
            print(cli.json, &p, || texts::principal_added(&ui, &json(&p)))
        }
        PrincipalCmd::Language { language } => {
            let chosen = crate::common::parse_language_choice(lang, language)?;
            let actor = actor(cli)?;
            sandbox_runtime::settings::set_language(domain, actor, chosen)?;
            let p = identity::whoami(domain, actor)?;
            print(cli.json, &p, || {
                texts::language_choice(&ui, &p.name, p.language)
            })
        }
        PrincipalCmd::List => {
            let list = identity::list(domain, actor(cli)?)?;
            print(cli.json, &list, || {
                crate::lists::principals(&json(&list), &ui)
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
            print(cli.json, &p, || texts::principal_status(&ui, &json(&p)))
        }
    }
}

fn token_cmd(cli: &Cli, cmd: &TokenCmd, domain: &Domain) -> Result<()> {
    let lang = cli.language();
    let ui = local_ui(lang, domain);
    match cmd {
        TokenCmd::Issue { name } => {
            let issued = tokens::issue(domain, actor(cli)?, name)?;
            print(cli.json, &issued, || {
                texts::token_issued(&ui, &json(&issued))
            })
        }
        TokenCmd::Revoke { id, reason } => {
            let t = tokens::revoke(domain, actor(cli)?, id, reason)?;
            print(cli.json, &t, || texts::token_revoked(&ui, &json(&t)))
        }
        TokenCmd::List { principal } => {
            let list = tokens::list(domain, actor(cli)?, principal.as_deref())?;
            print(cli.json, &list, || crate::lists::tokens(&json(&list), &ui))
        }
    }
}

fn dataset_cmd(cli: &Cli, cmd: &DatasetCmd, domain: &Domain) -> Result<()> {
    let lang = cli.language();
    let ui = local_ui(lang, domain);
    match cmd {
        DatasetCmd::Add { file, policy } => {
            let text = read_text(policy)?;
            let who = actor(cli)?;
            let v = {
                // A bar over the file's bytes as ingest reads them.
                let read = catalog::ReadCounter::default();
                let size = fs::metadata(file).map_or(0, |m| m.len());
                let _p = crate::progress::Progress::following(
                    t!(
                        lang,
                        "cli-progress-registering",
                        file = file.display().to_string()
                    ),
                    size,
                    read.clone(),
                    cli.json,
                );
                catalog::add_counted(domain, who, file, &text, Some(read))?
            };
            print(cli.json, &v, || texts::dataset_added(&ui, &json(&v)))
        }
        DatasetCmd::List => {
            let list = catalog::list(domain, actor(cli)?)?;
            print(cli.json, &list, || {
                crate::lists::datasets(&json(&list), &ui)
            })
        }
        DatasetCmd::Show { name } => {
            let v = catalog::get(domain, actor(cli)?, name)?;
            print(cli.json, &v, || texts::dataset(&ui, &json(&v)))
        }
        DatasetCmd::Retire { name, reason } => {
            let v = catalog::retire(domain, actor(cli)?, name, reason)?;
            print(cli.json, &v, || texts::dataset_retired(&ui, &json(&v)))
        }
        DatasetCmd::Share {
            name,
            scenario,
            reason,
        } => {
            let d = sandbox_runtime::versions::decide_sharing(
                domain,
                actor(cli)?,
                name,
                scenario,
                reason,
            )?;
            print(cli.json, &d, || texts::sharing_decided(&ui, &json(&d)))
        }
        DatasetCmd::Destroy { name, reason } => {
            let d = sandbox_runtime::versions::destroy(domain, actor(cli)?, name, reason)?;
            print(cli.json, &d, || texts::destruction(&ui, &json(&d)))
        }
        DatasetCmd::Destruction { name } => {
            let d = sandbox_runtime::versions::destruction(domain, actor(cli)?, name)?;
            print(cli.json, &d, || texts::destruction(&ui, &json(&d)))
        }
        DatasetCmd::Version { name, version } => {
            let s = sandbox_runtime::versions::show(domain, actor(cli)?, name, *version)?;
            print(cli.json, &s, || texts::version_standing(&ui, &json(&s)))
        }
        DatasetCmd::Object {
            name,
            version,
            reason,
        } => {
            let s = sandbox_runtime::versions::object(domain, actor(cli)?, name, *version, reason)?;
            print(cli.json, &s, || texts::version_standing(&ui, &json(&s)))
        }
        DatasetCmd::Suspend {
            name,
            version,
            reason,
        } => {
            let s =
                sandbox_runtime::versions::suspend(domain, actor(cli)?, name, *version, reason)?;
            print(cli.json, &s, || texts::version_standing(&ui, &json(&s)))
        }
        DatasetCmd::Reinstate {
            name,
            version,
            reason,
        } => {
            let s =
                sandbox_runtime::versions::reinstate(domain, actor(cli)?, name, *version, reason)?;
            print(cli.json, &s, || texts::version_standing(&ui, &json(&s)))
        }
        DatasetCmd::Recall {
            name,
            version,
            reason,
        } => {
            let w = sandbox_runtime::versions::recall(domain, actor(cli)?, name, *version, reason)?;
            print(cli.json, &w, || texts::recalled(&ui, &json(&w)))
        }
    }
}

fn scenario_cmd(cli: &Cli, cmd: &ScenarioCmd, domain: &Domain) -> Result<()> {
    let lang = cli.language();
    let ui = local_ui(lang, domain);
    match cmd {
        ScenarioCmd::Apply { file } => {
            let r = scenarios::apply(domain, actor(cli)?, &read_text(file)?)?;
            print(cli.json, &r, || texts::scenario_status(&ui, &json(&r)))
        }
        ScenarioCmd::Approve { scenario, reason } => {
            let r = scenarios::decide(domain, actor(cli)?, scenario, true, reason.as_deref())?;
            print(cli.json, &r, || texts::scenario_status(&ui, &json(&r)))
        }
        ScenarioCmd::Reject { scenario, reason } => {
            let r = scenarios::decide(domain, actor(cli)?, scenario, false, Some(reason))?;
            print(cli.json, &r, || texts::scenario_status(&ui, &json(&r)))
        }
        ScenarioCmd::Consents { scenario } => {
            let c = consent::consents(domain, actor(cli)?, scenario)?;
            print(cli.json, &c, || texts::consents(&ui, &json(&c)))
        }
        ScenarioCmd::Consent {
            scenario,
            dataset,
            object,
        } => {
            let c = consent::consent(
                domain,
                actor(cli)?,
                scenario,
                dataset.as_deref(),
                object.as_deref(),
            )?;
            print(cli.json, &c, || texts::consents(&ui, &json(&c)))
        }
        ScenarioCmd::Answer {
            scenario,
            to,
            dataset,
            text,
        } => {
            let party = match to {
                crate::args::PartyArg::Provider => consent::Party::Provider,
                crate::args::PartyArg::Supervisor => consent::Party::Supervisor,
            };
            let c = consent::answer(
                domain,
                actor(cli)?,
                scenario,
                party,
                dataset.as_deref(),
                text,
            )?;
            print(cli.json, &c, || texts::consents(&ui, &json(&c)))
        }
        ScenarioCmd::TypeAdd {
            name,
            from,
            description,
        } => {
            let t = consent::establish_type(domain, actor(cli)?, name, from, description)?;
            print(cli.json, &t, || texts::scenario_type(&ui, &json(&t)))
        }
        ScenarioCmd::Types => {
            let list = consent::types(domain, actor(cli)?)?;
            print(cli.json, &list, || {
                crate::lists::scenario_types(&json(&list), &ui)
            })
        }
        ScenarioCmd::List => {
            let list = scenarios::list(domain, actor(cli)?)?;
            print(cli.json, &list, || {
                crate::lists::scenarios(&json(&list), &ui)
            })
        }
        ScenarioCmd::Show { scenario } => {
            let r = scenarios::show(domain, actor(cli)?, scenario)?;
            print(cli.json, &r, || texts::scenario_details(&ui, &json(&r)))
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
            print(cli.json, &r, || texts::scenario_status(&ui, &json(&r)))
        }
    }
}

fn usage_cmd(cli: &Cli, cmd: &UsageCmd, domain: &Domain) -> Result<()> {
    let lang = cli.language();
    let ui = local_ui(lang, domain);
    match cmd {
        UsageCmd::Show => {
            let who = actor(cli)?;
            let today = chrono::Utc::now().date_naive();
            // Authorized first: only a reader of usage makes the idle check run.
            scenarios::usage_settings(domain, who)?;
            scenarios::flag_idle(domain, today)?;
            let list = scenarios::usage(domain, who, today)?;
            print(cli.json, &list, || texts::usage(&ui, &json(&list)))
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
                texts::usage_settings(&ui, &json(&settings))
            })
        }
    }
}

fn job_cmd(cli: &Cli, cmd: &JobCmd, domain: &Domain) -> Result<()> {
    let lang = cli.language();
    let ui = local_ui(lang, domain);
    match cmd {
        JobCmd::Submit(args) => {
            let module = fs::read(&args.module).map_err(|e| Error::Input {
                path: args.module.display().to_string(),
                message: e.to_string(),
            })?;
            let running = crate::progress::Progress::start(
                t!(
                    lang,
                    "cli-progress-running",
                    module = args.module.display().to_string()
                ),
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
            print(cli.json, &report, || texts::job(&ui, &json(&report)))?;
            crate::common::job_ended(
                lang,
                &report.id,
                report.status.as_str(),
                report.error.as_deref(),
                None,
            )
        }
        JobCmd::Status { id } => {
            let j = jobs::job(domain, actor(cli)?, id)?;
            print(cli.json, &j, || texts::job(&ui, &json(&j)))
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
            print(cli.json, &list, || crate::lists::jobs(&json(&list), &ui))
        }
        JobCmd::Logs { id } => {
            let lines = jobs::logs(domain, actor(cli)?, id)?;
            print(cli.json, &lines, || texts::log_lines(&json(&lines)))
        }
        JobCmd::Cancel { id, reason } => {
            let j = jobs::cancel(domain, actor(cli)?, id, reason.as_deref())?;
            print(cli.json, &j, || texts::job(&ui, &json(&j)))
        }
    }
}

fn review_cmd(cli: &Cli, cmd: &ReviewCmd, domain: &Domain) -> Result<()> {
    let lang = cli.language();
    let ui = local_ui(lang, domain);
    let who = actor(cli)?;
    match cmd {
        ReviewCmd::Show { job } => {
            let t = review::thread::thread(domain, who, job)?;
            print(cli.json, &t, || texts::thread(&ui, &json(&t)))
        }
        ReviewCmd::Comment { job, text } => {
            let t = review::thread::comment(domain, who, job, text)?;
            print(cli.json, &t, || texts::thread(&ui, &json(&t)))
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
            print(cli.json, &decided, || texts::decided(&ui, &json(&decided)))
        }
    }
}

fn output_cmd(cli: &Cli, cmd: &OutputCmd, domain: &Domain) -> Result<()> {
    let lang = cli.language();
    let ui = local_ui(lang, domain);
    let decided = |o: jobs::OutputRecord| -> Result<()> {
        // A release names the product it made and where it is.
        let product = if o.status == sandbox_core::OutputStatus::Released {
            review::products(domain, actor(cli)?)?
                .into_iter()
                .find(|p| p.output_id == o.id)
        } else {
            None
        };
        print(cli.json, &o, || {
            let at = product.as_ref().map(|p| p.path.display().to_string());
            texts::output_decided(
                &ui,
                &json(&o),
                product.as_ref().map(json).as_ref(),
                at.as_deref(),
            )
        })
    };
    match cmd {
        OutputCmd::List => {
            let list = jobs::all_outputs(domain, actor(cli)?)?;
            print(cli.json, &list, || crate::lists::outputs(&json(&list), &ui))
        }
        OutputCmd::Approve { id, reason } => {
            // A supervisor's approval writes and signs the product.
            let deciding =
                crate::progress::Progress::start(t!(lang, "cli-progress-deciding"), cli.json);
            let o = review::decide(
                domain,
                actor(cli)?,
                id,
                Decision::Approve,
                reason.as_deref(),
            )?;
            drop(deciding);
            decided(o)
        }
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
            print(cli.json, &o.checks, || texts::output_checks(&ui, &json(&o)))
        }
        OutputCmd::Show { id, rows } => {
            let o = jobs::output(domain, actor(cli)?, id)?;
            let bytes = jobs::staged_file(domain, &o)?;
            let shown = sandbox_runtime::export::show(&o.file_name, &bytes, *rows, lang)?;
            print(cli.json, &o, || texts::output_shown(&ui, &json(&o), &shown))
        }
        OutputCmd::Download { id, out, format } => {
            let format = format.map_or_else(
                || sandbox_runtime::export::Format::of_path(out),
                crate::args::FormatArg::format,
            );
            let (_, bytes) = jobs::download_output(domain, actor(cli)?, id, format)?;
            crate::common::write_file(out, &bytes)?;
            let o = jobs::output(domain, actor(cli)?, id)?;
            print(cli.json, &o, || texts::wrote_file(&ui, out, bytes.len()))
        }
    }
}

fn product_cmd(cli: &Cli, cmd: &ProductCmd, domain: &Domain) -> Result<()> {
    let lang = cli.language();
    let ui = local_ui(lang, domain);
    match cmd {
        ProductCmd::List => {
            let list = review::catalog(domain, actor(cli)?)?;
            print(cli.json, &list, || {
                crate::lists::products(&json(&list), &ui)
            })
        }
        ProductCmd::Show { id } => {
            let e = review::catalog_entry(domain, actor(cli)?, id)?;
            print(cli.json, &e, || texts::product_shown(&ui, &json(&e)))
        }
        ProductCmd::Withdraw { id, reason } => {
            let w = review::withdraw(domain, actor(cli)?, id, reason)?;
            print(cli.json, &w, || texts::product_withdrawn(&ui, &json(&w)))
        }
        ProductCmd::Grant { id, to } => {
            let grantee: review::Grantee = to
                .parse()
                .map_err(|e: sandbox_policies::PolicyError| Error::Invalid(e.to_string()))?;
            let grants = review::grant(domain, actor(cli)?, id, &grantee)?;
            print(cli.json, &grants, || {
                texts::product_granted(&ui, id, &json(&grants))
            })
        }
        ProductCmd::Holders { id } => {
            let h = review::holders(domain, actor(cli)?, id)?;
            print(cli.json, &h, || crate::lists::holders(&json(&h), &ui))
        }
        ProductCmd::Download { id, out, format } => {
            let who = actor(cli)?;
            let p = review::product(domain, who, id)?;
            let mut names = p.file_names()?;
            let format = format.map(crate::args::FormatArg::format);
            let copies = crate::common::converted_names(&names, format);
            names.extend(copies.iter().map(|(copy, _)| copy.clone()));
            let bar = crate::progress::Progress::bar(
                t!(lang, "cli-progress-downloading", id = id.as_str()),
                names.len() as u64,
                false,
                cli.json,
            );
            write_folder(out, &names, |name| {
                bar.step();
                let (file, format) = match copies.iter().find(|(copy, _)| copy == name) {
                    Some((_, of)) => (of.as_str(), format),
                    None => (name, None),
                };
                Ok(review::download_product_file(domain, who, id, file, format)?.1)
            })?;
            drop(bar);
            print(cli.json, &names, || {
                texts::product_downloaded(&ui, id, names.len(), out)
            })
        }
        ProductCmd::Verify { dir } => {
            let key = keys::public_key(domain.layout())?;
            let manifest = review::verify_product(dir, Some(&key))?;
            let withdrawal = review::verify_withdrawal(dir, &manifest)?;
            print(cli.json, &manifest, || {
                texts::product_verified(&ui, &manifest, withdrawal.as_ref())
            })
        }
    }
}

fn report_cmd(cli: &Cli, cmd: &crate::args::ReportCmd, domain: &Domain) -> Result<()> {
    use crate::args::ReportCmd;
    use sandbox_runtime::report;
    let ui = local_ui(cli.language(), domain);
    match cmd {
        ReportCmd::Compliance {
            from,
            to,
            scenario,
            out,
        } => {
            let scope = match scenario {
                Some(s) => report::Scope::Scenario(s.clone()),
                None => report::Scope::Domain,
            };
            let (r, signature) = report::compliance(domain, actor(cli)?, &scope, *from, *to)?;
            report::write(out, &r, &signature)?;
            print(cli.json, &r, || texts::report(&ui, &r, Some(out)))
        }
        ReportCmd::Verify { dir } => {
            let key = keys::public_key(domain.layout())?;
            let r = report::verify(dir, Some(&key))?;
            print(cli.json, &r, || texts::report(&ui, &r, None))
        }
    }
}

/// Where the master key of a domain being made (or protected) comes from.
/// The master key a backup opens with: the one named, or the one the data directory's
/// record names.
fn backup_key(args: &crate::args::BackupKeyArgs, dir: &std::path::Path) -> Result<MasterKey> {
    match (&args.master_key_file, &args.master_key_env) {
        (Some(path), _) => Ok(MasterKey::File(path.clone())),
        (None, Some(var)) => Ok(MasterKey::Env(var.clone())),
        (None, None) => {
            let layout = sandbox_runtime::store::Layout::new(dir);
            match sandbox_runtime::master::config(&layout)?.map(|c| c.source) {
                Some(sandbox_runtime::master::KeySource::File { path }) => {
                    Ok(MasterKey::File(path))
                }
                Some(sandbox_runtime::master::KeySource::Env { var }) => Ok(MasterKey::Env(var)),
                None => Err(Error::Invalid(
                    "the backup's master key: --master-key-file FILE or --master-key-env VAR"
                        .into(),
                )),
            }
        }
    }
}

fn master_key(args: &crate::args::MasterKeyArgs, dir: &std::path::Path) -> MasterKey {
    match (&args.master_key_file, args.existing, &args.master_key_env) {
        (Some(path), true, _) => MasterKey::File(path.clone()),
        (Some(path), false, _) => MasterKey::New(path.clone()),
        (None, _, Some(var)) => MasterKey::Env(var.clone()),
        (None, _, None) => MasterKey::beside(dir),
    }
}

fn incident_cmd(cli: &Cli, cmd: &crate::args::IncidentCmd, domain: &Domain) -> Result<()> {
    use crate::args::IncidentCmd;
    use sandbox_runtime::incidents;
    let ui = local_ui(cli.language(), domain);
    let who = actor(cli)?;
    let i = match cmd {
        IncidentCmd::Open {
            grade,
            title,
            description,
        } => incidents::open(domain, who, grade, title, description)?,
        IncidentCmd::Log {
            id,
            kind,
            reference,
            to,
            text,
        } => incidents::log(
            domain,
            who,
            *id,
            kind,
            reference.as_deref(),
            to.as_deref(),
            text,
        )?,
        IncidentCmd::Close { id, summary } => incidents::close(domain, who, *id, summary)?,
        IncidentCmd::Show { id } => incidents::get(domain, who, *id)?,
        IncidentCmd::List => {
            let list = incidents::list(domain, who)?;
            return print(cli.json, &list, || {
                crate::lists::incidents(&json(&list), &ui)
            });
        }
    };
    print(cli.json, &i, || texts::incident(&ui, &json(&i)))
}

fn order_cmd(cli: &Cli, cmd: &crate::args::OrderCmd, domain: &Domain) -> Result<()> {
    use crate::args::OrderCmd;
    use sandbox_runtime::incidents;
    let ui = local_ui(cli.language(), domain);
    let who = actor(cli)?;
    let o = match cmd {
        OrderCmd::Issue {
            target_kind,
            target,
            requirement,
            deadline,
        } => incidents::issue(domain, who, target_kind, target, requirement, deadline)?,
        OrderCmd::Answer { id, text } => incidents::answer(domain, who, *id, text)?,
        OrderCmd::Close { id } => incidents::close_order(domain, who, *id)?,
        OrderCmd::List => {
            let list = incidents::orders(domain, who)?;
            return print(cli.json, &list, || crate::lists::orders(&json(&list), &ui));
        }
    };
    print(cli.json, &o, || texts::order(&ui, &json(&o)))
}

fn org_cmd(cli: &Cli, cmd: &OrgCmd, domain: &Domain) -> Result<()> {
    let lang = cli.language();
    let ui = local_ui(lang, domain);
    match cmd {
        OrgCmd::Add {
            code,
            name,
            officer,
            contact,
            qualified_until,
            epsilon_cap,
        } => {
            let entry = organisations::OrganisationEntry {
                name: name.clone(),
                security_officer: officer.clone(),
                security_contact: contact.clone(),
                qualified_until: qualified_until.clone(),
                epsilon_cap: *epsilon_cap,
            };
            let o = organisations::register(domain, actor(cli)?, code, &entry)?;
            print(cli.json, &o, || texts::organisation(&ui, &json(&o)))
        }
        OrgCmd::List => {
            let list = organisations::list(domain, actor(cli)?)?;
            print(cli.json, &list, || {
                crate::lists::organisations(&json(&list), &ui)
            })
        }
        OrgCmd::Show { code } => {
            let o = organisations::get(domain, actor(cli)?, code)?;
            print(cli.json, &o, || texts::organisation(&ui, &json(&o)))
        }
        OrgCmd::Set { code, reason, .. } => {
            let who = actor(cli)?;
            let current = organisations::get(domain, who, code)?;
            let entry = crate::common::changed_entry(cmd, &json(&current))?;
            let o = organisations::change(domain, who, code, &entry, reason)?;
            print(cli.json, &o, || texts::organisation(&ui, &json(&o)))
        }
        OrgCmd::Assign {
            principal,
            code,
            none,
        } => {
            let code = if *none { None } else { code.as_deref() };
            let p = organisations::assign(domain, actor(cli)?, principal, code)?;
            print(cli.json, &p, || texts::principal_assigned(&ui, &json(&p)))
        }
        OrgCmd::Export { out } => {
            let bytes =
                organisations::export(domain, actor(cli)?, crate::common::register_format(out))?;
            crate::common::write_file(out, &bytes)?;
            print(
                cli.json,
                &serde_json::json!({"file": out, "bytes": bytes.len()}),
                || texts::wrote_file(&ui, out, bytes.len()),
            )
        }
    }
}

fn query_cmd(cli: &Cli, cmd: &QueryCmd, domain: &Domain) -> Result<()> {
    let lang = cli.language();
    let ui = local_ui(lang, domain);
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
                    texts::query_accepted(
                        &ui,
                        accepted.requested.len(),
                        &accepted.datasets(),
                        &keys,
                    )
                },
            )
        }
    }
}

fn stop_cmd(cli: &Cli, cmd: &StopCmd, domain: &Domain) -> Result<()> {
    let lang = cli.language();
    let ui = local_ui(lang, domain);
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
            return print(cli.json, &list, || texts::stops(&ui, &json(&list)));
        }
        StopCmd::Lift { id, reason } => {
            stops::lift(domain, who, *id, reason)?;
            let lifted = serde_json::json!({"lifted": true});
            return print(cli.json, &lifted, || texts::stop(&ui, &lifted));
        }
    };
    let stop = stops::stop(domain, who, scope, reason)?;
    print(cli.json, &stop, || texts::stop(&ui, &json(&stop)))
}

fn audit_cmd(cli: &Cli, cmd: &AuditCmd, domain: &Domain) -> Result<()> {
    let lang = cli.language();
    let ui = local_ui(lang, domain);
    match cmd {
        AuditCmd::Verify => {
            // With `--as`, a principal's check; without, the custodian's on the machine.
            let v = match cli.actor.as_deref() {
                Some(who) => audit::verify(domain, who)?,
                None => audit::verify_custodian(domain)?,
            };
            print(cli.json, &v, || {
                texts::audit_verified(&ui, &json(&v), false)
            })
        }
        AuditCmd::Checkpoint => {
            let c = audit::checkpoint(domain, actor(cli)?)?;
            print(cli.json, &c, || texts::checkpoint(&ui, &json(&c)))
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
                    return Err(Error::Invalid(t!(lang, "cli-prove-what")));
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
                    let exporting = crate::progress::Progress::start(
                        t!(
                            lang,
                            "cli-progress-exporting",
                            path = path.display().to_string()
                        ),
                        cli.json,
                    );
                    let summary = audit::export(domain, who, *from, *to, &mut file)?;
                    drop(exporting);
                    print(cli.json, &summary, || {
                        texts::exported(&ui, &json(&summary), path)
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
                || texts::retention(&ui, years, audit::MIN_RETENTION_YEARS),
            )
        }
        AuditCmd::Log { from, limit } => {
            let (events, size) = audit::page(domain, actor(cli)?, *from, *limit)?;
            let next = events.last().map(|e| e.seq + 1).filter(|n| *n <= size);
            let page = serde_json::json!({"events": events, "size": size, "next": next});
            print(cli.json, &events, || crate::lists::audit_page(&page, &ui))
        }
    }
}
