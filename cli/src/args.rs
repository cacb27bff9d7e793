//! The grammar of the `sandbox` command line (clap): every command, its arguments and
//! their help. Running them is [`crate::commands`] (on a data directory) or
//! `crate::remote` (through a server, with `--server`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use sandbox_core::job::SubmittedLimits;

/// Sandbox: public data analysed without leaving its domain.
#[derive(Debug, Parser)]
#[command(name = "sandbox", version, about)]
pub struct Cli {
    /// Data directory.
    #[arg(
        long,
        global = true,
        env = "SANDBOX_DATA_DIR",
        default_value = "sandbox-data"
    )]
    pub data_dir: PathBuf,
    /// Principal to act as.
    #[arg(long = "as", global = true, env = "SANDBOX_AS")]
    pub actor: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Act through a Sandbox server at this URL (e.g. `https://sandbox.example:8443`)
    /// instead of on a local data directory; the principal is the token's.
    #[arg(long, global = true, env = "SANDBOX_SERVER")]
    pub server: Option<String>,
    /// API token for `--server` (`sbx_<id>_<secret>`; prefer the environment variable, so
    /// that the token stays out of the shell's history).
    #[arg(long, global = true, env = "SANDBOX_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Log format on standard error: `text` or `json` (one object per line).
    #[arg(
        long,
        global = true,
        env = "SANDBOX_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
    /// The language of messages: zh-CN or en (else the config file's, else `LC_ALL` /
    /// `LANG`, else English).
    #[arg(long, global = true, env = "SANDBOX_LANG", value_parser = parse_lang)]
    pub lang: Option<sandbox_core::Lang>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

fn parse_lang(s: &str) -> Result<sandbox_core::Lang, String> {
    sandbox_core::Lang::from_tag(s).ok_or_else(|| format!("`{s}`: zh-CN or en"))
}

/// The settings file (TOML): `data_dir`, `server`, `principal`, `language`. Read from
/// `SANDBOX_CONFIG`, else `$XDG_CONFIG_HOME/sandbox/config.toml`, else
/// `~/.config/sandbox/config.toml`; a flag or an environment variable wins over it.
#[derive(Debug, Default, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The data directory.
    pub data_dir: Option<PathBuf>,
    /// A server's URL.
    pub server: Option<String>,
    /// The principal to act as.
    pub principal: Option<String>,
    /// zh-CN or en.
    pub language: Option<String>,
}

impl ConfigFile {
    /// Where the settings file is looked for.
    pub fn path() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("SANDBOX_CONFIG") {
            return Some(PathBuf::from(p));
        }
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
        Some(base.join("sandbox").join("config.toml"))
    }

    /// The settings file, if there is one. A file named by `SANDBOX_CONFIG` must exist.
    pub fn load() -> sandbox_core::Result<ConfigFile> {
        let Some(path) = ConfigFile::path() else {
            return Ok(ConfigFile::default());
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && std::env::var_os("SANDBOX_CONFIG").is_none() =>
            {
                return Ok(ConfigFile::default());
            }
            Err(e) => {
                return Err(sandbox_core::Error::Input {
                    path: path.display().to_string(),
                    message: e.to_string(),
                });
            }
        };
        let config: ConfigFile = toml::from_str(&text).map_err(|e| sandbox_core::Error::Input {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        if let Some(l) = &config.language
            && sandbox_core::Lang::from_tag(l).is_none()
        {
            return Err(sandbox_core::Error::Input {
                path: path.display().to_string(),
                message: format!("language `{l}`: zh-CN or en"),
            });
        }
        Ok(config)
    }
}

impl Cli {
    /// Parses the command line, then fills in what neither a flag nor an environment
    /// variable gave from the settings file ([`ConfigFile`]).
    pub fn parse_with_config() -> sandbox_core::Result<Cli> {
        use clap::parser::ValueSource;
        use clap::{CommandFactory, FromArgMatches};
        let lang = Cli::language_before_parsing();
        let matches = match crate::help::localized(Cli::command(), lang).try_get_matches() {
            Ok(m) => m,
            Err(e) => match crate::help::parse_error(&e, lang) {
                Some(text) => {
                    eprintln!("{text}");
                    std::process::exit(2);
                }
                None => e.exit(),
            },
        };
        let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        let config = ConfigFile::load()?;
        cli.apply(
            &config,
            matches.value_source("data_dir") != Some(ValueSource::CommandLine)
                && matches.value_source("data_dir") != Some(ValueSource::EnvVariable),
        );
        Ok(cli)
    }

    /// Takes from `config` what the command line left out (`data_dir_default`: the data
    /// directory is the built-in default).
    pub fn apply(&mut self, config: &ConfigFile, data_dir_default: bool) {
        if data_dir_default && let Some(d) = &config.data_dir {
            self.data_dir = d.clone();
        }
        if self.server.is_none() {
            self.server = config.server.clone();
        }
        if self.actor.is_none() {
            self.actor = config.principal.clone();
        }
        if self.lang.is_none() {
            self.lang = config
                .language
                .as_deref()
                .and_then(sandbox_core::Lang::from_tag);
        }
    }

    /// The language help is shown in, before the command line is parsed (help ends the
    /// parse): `--lang` as written, else `SANDBOX_LANG`, else the settings file's, else the
    /// locale's.
    fn language_before_parsing() -> sandbox_core::Lang {
        let args: Vec<String> = std::env::args().collect();
        let written = args
            .iter()
            .enumerate()
            .find_map(|(i, a)| match a.strip_prefix("--lang") {
                Some("") => args.get(i + 1).cloned(),
                Some(rest) => rest.strip_prefix('=').map(str::to_string),
                None => None,
            });
        let chosen = written
            .or_else(|| std::env::var("SANDBOX_LANG").ok())
            .and_then(|t| sandbox_core::Lang::from_tag(&t))
            .or_else(|| {
                ConfigFile::load()
                    .ok()?
                    .language
                    .as_deref()
                    .and_then(sandbox_core::Lang::from_tag)
            });
        chosen.unwrap_or_else(locale_language)
    }

    /// The language messages are written in: `--lang`, `SANDBOX_LANG` or the settings
    /// file's, else the locale's (`LC_ALL`, `LC_MESSAGES`, `LANG`: `zh_CN.UTF-8` is
    /// Chinese), else English.
    pub fn language(&self) -> sandbox_core::Lang {
        self.lang.unwrap_or_else(locale_language)
    }
}

/// The locale's language (`LC_ALL`, `LC_MESSAGES`, `LANG`), else English.
fn locale_language() -> sandbox_core::Lang {
    for var in ["LC_ALL", "LC_MESSAGES", "LANG"] {
        if let Ok(v) = std::env::var(var)
            && !v.is_empty()
        {
            let tag = v.split(['.', '@']).next().unwrap_or("").replace('_', "-");
            return sandbox_core::Lang::from_tag(&tag)
                .or_else(|| tag.starts_with("zh").then_some(sandbox_core::Lang::ZhCn))
                .unwrap_or(sandbox_core::Lang::En);
        }
    }
    sandbox_core::Lang::En
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for log collectors).
    Json,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Who the command acts as (`--as`, or the token's principal with `--server`).
    Whoami,
    /// Create a data directory: metadata store, keys, folders.
    Init {
        /// Directory (defaults to --data-dir).
        dir: Option<PathBuf>,
        /// The language of people who choose none: zh-CN (Simplified Chinese) or en.
        #[arg(long, default_value = "zh-CN")]
        language: sandbox_core::Lang,
        /// The time zone times are shown in (an IANA name; stored times are UTC).
        #[arg(long, default_value = "Asia/Shanghai")]
        time_zone: String,
        /// The cryptographic suite, fixed for the domain's life: standard (SHA-256,
        /// Ed25519, AES-256-GCM) or gm (SM3, SM2, SM4-GCM: the commercial cryptography
        /// standards).
        #[arg(long, default_value = "standard")]
        crypto: sandbox_core::Suite,
        /// Where the master key is.
        #[command(flatten)]
        master: MasterKeyArgs,
        /// Keep the metadata (ledger, job queue, audit log, ...) in this empty PostgreSQL
        /// database, which several servers share, rather than in SQLite's file: the
        /// connection the servers use (a libpq string or a postgresql:// URL), as a role
        /// that owns nothing. Recorded in the data directory.
        #[arg(long, value_name = "CONNECTION", requires = "metadata_owner")]
        metadata: Option<String>,
        /// The PostgreSQL schema owner's connection, over which the schema is made (never
        /// recorded).
        #[arg(long, value_name = "CONNECTION", requires = "metadata")]
        metadata_owner: Option<String>,
    },
    /// Bring a PostgreSQL metadata store to this build's schema, over its owner's
    /// connection (servers connect as a role that cannot migrate).
    Migrate {
        /// The schema owner's connection.
        #[arg(long, value_name = "CONNECTION")]
        metadata_owner: String,
    },
    /// The domain's master key.
    #[command(subcommand)]
    Key(KeyCmd),
    /// Take a backup of the domain while it runs: the metadata database as one snapshot,
    /// the domain store, staged outputs, products, modules and keys, encrypted under the
    /// master key (operators and admins; recorded); or check one (`backup verify`).
    Backup(BackupArgs),
    /// Restore a backup into a new data directory: every file checked, the audit log and
    /// its checkpoints verified, and against a checkpoint kept elsewhere, whether the
    /// restored state was rolled back.
    Restore {
        /// The backup file.
        file: PathBuf,
        /// The new data directory.
        dir: PathBuf,
        /// A checkpoint kept elsewhere (the JSON `audit checkpoint --json` printed), to
        /// check the restored audit log against.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// The master key the backup was taken under.
        #[command(flatten)]
        key: BackupKeyArgs,
    },
    /// The domain's default language and time zone (operators and admins change them).
    Settings {
        /// The language of people who choose none: zh-CN or en.
        #[arg(long)]
        language: Option<sandbox_core::Lang>,
        /// The time zone times are shown in (an IANA name such as Asia/Shanghai).
        #[arg(long)]
        time_zone: Option<String>,
    },
    /// Principals and roles.
    #[command(subcommand)]
    Principal(PrincipalCmd),
    /// Datasets in the domain store.
    #[command(subcommand)]
    Dataset(DatasetCmd),
    /// Scenario agreements.
    #[command(subcommand)]
    Scenario(ScenarioCmd),
    /// Jobs.
    #[command(subcommand)]
    Job(JobCmd),
    /// Staged outputs and their review.
    #[command(subcommand)]
    Output(OutputCmd),
    /// Review requests: the outputs of a job decided together, and the thread between
    /// reviewers and the developer.
    #[command(subcommand)]
    Review(ReviewCmd),
    /// Released products: the catalog, downloads, grants and withdrawals.
    #[command(subcommand)]
    Product(ProductCmd),
    /// The register of organisations (QQHR Art. 14, 23).
    #[command(subcommand)]
    Org(OrgCmd),
    /// Compliance reports for supervisors (signed, verifiable offline).
    #[command(subcommand)]
    Report(ReportCmd),
    /// Incidents and what was done under them (operators and supervisors; QQHR Art. 20).
    #[command(subcommand)]
    Incident(IncidentCmd),
    /// Rectification orders (SYS Art. 31): supervisors issue and close, developers answer.
    #[command(subcommand)]
    Order(OrderCmd),
    /// Check a query against the policy without running it.
    #[command(subcommand)]
    Query(QueryCmd),
    /// Privacy budgets.
    #[command(subcommand)]
    Budget(BudgetCmd),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Emergency stops (supervisors and operators).
    #[command(subcommand)]
    Stop(StopCmd),
    /// Run the whole path end to end on synthetic data in a fresh data directory.
    Demo(crate::demo::DemoArgs),
    /// The developer's local loop on synthetic data.
    #[command(subcommand)]
    Dev(DevCmd),
    /// API tokens for the server (operators issue; operators or the holder revoke).
    #[command(subcommand)]
    Token(TokenCmd),
    /// Print a shell's completion script (bash, zsh, fish, elvish, powershell), e.g.
    /// `sandbox completions bash > /etc/bash_completion.d/sandbox`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the manual pages (`sandbox.1`, `sandbox-job-submit.1`, ...) into a folder.
    Man {
        /// Folder to write them into (created).
        #[arg(long)]
        out: PathBuf,
    },
    /// Serve the HTTP API and the review console over this data directory.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Jobs that may run at once.
        #[arg(long, default_value_t = 2)]
        jobs: usize,
        /// Jobs one developer may have waiting in the queue.
        #[arg(long, default_value_t = 20)]
        max_queued: i64,
        /// Mark the console's cookie `Secure` (when reached over HTTPS, e.g. behind a TLS
        /// proxy).
        #[arg(long)]
        secure_cookies: bool,
        /// Refused calls of callers who prove no one recorded one by one per address and
        /// minute; more are answered 429 and recorded as a count.
        #[arg(long, default_value_t = 60)]
        anonymous_refusals_per_minute: u32,
        /// Seconds a running job is leased at a time: its runner renews the lease, and a
        /// job whose lease lapsed (its server is gone) is failed by any server.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
        job_lease: u64,
        /// Run the mediator's scans on a DataFusion Ballista cluster inside the domain
        /// (its scheduler, `df://host:port`, started by `sandbox scheduler`); without it,
        /// everything runs in this process.
        #[arg(long)]
        engine: Option<String>,
        /// With `--engine`: datasets of fewer rows run in this process.
        #[arg(long, default_value_t = 1_000_000, requires = "engine")]
        engine_min_rows: u64,
        /// With `--engine`: partitions (tasks per stage) of a plan sent to the cluster.
        #[arg(long, default_value_t = 8, requires = "engine")]
        engine_partitions: usize,
        /// With `--engine`: the cluster CA's certificate (PEM); with the two below, every
        /// connection to the cluster is mutual TLS.
        #[arg(long, requires_all = ["engine", "engine_tls_cert", "engine_tls_key"])]
        engine_tls_ca: Option<PathBuf>,
        /// With `--engine-tls-ca`: this node's certificate, signed by the cluster CA (PEM).
        #[arg(long, requires = "engine_tls_ca")]
        engine_tls_cert: Option<PathBuf>,
        /// With `--engine-tls-ca`: this node's private key (PEM).
        #[arg(long, requires = "engine_tls_ca")]
        engine_tls_key: Option<PathBuf>,
        /// Memory the queries run in this process share, in MiB (beyond it they spill to
        /// `spill/` in the data directory); unbounded without it.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        memory_mib: Option<u64>,
    },
    /// Run a cluster scheduler for the mediator's plans (DataFusion Ballista, with the
    /// mediator's codecs; it holds no secret and opens no dataset). Runs until stopped.
    Scheduler {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:50050")]
        listen: std::net::SocketAddr,
        /// The cluster CA's certificate (PEM); with the two below, the node serves and
        /// connects only over mutual TLS, accepting peers the CA signed.
        #[arg(long, requires_all = ["tls_cert", "tls_key"])]
        tls_ca: Option<PathBuf>,
        /// With `--tls-ca`: this node's certificate, signed by the cluster CA (PEM), naming
        /// the host the others reach it at.
        #[arg(long, requires = "tls_ca")]
        tls_cert: Option<PathBuf>,
        /// With `--tls-ca`: this node's private key (PEM).
        #[arg(long, requires = "tls_ca")]
        tls_key: Option<PathBuf>,
    },
    /// Run a cluster executor of this data directory's domain (the same directory, or a
    /// read-only mount of it at the same path): it reads the dataset files the
    /// scheduler's tasks name with the domain's keys. Runs until stopped.
    Executor {
        /// The scheduler (`host:port`).
        #[arg(long)]
        scheduler: String,
        /// The host it binds and announces to the scheduler and the domain node.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port of its Arrow Flight service (results and shuffle data are read there).
        #[arg(long, default_value_t = 50051)]
        port: u16,
        /// Port of its gRPC service.
        #[arg(long, default_value_t = 50052)]
        grpc_port: u16,
        /// Its shuffle directory (intermediate rows of the datasets: keep it inside the
        /// domain).
        #[arg(long)]
        work_dir: PathBuf,
        /// Tasks it runs at once.
        #[arg(long, default_value_t = 2)]
        vcores: usize,
        /// Memory of its tasks in MiB (they spill to the work directory beyond it).
        #[arg(long)]
        memory_mib: Option<u64>,
        /// The cluster CA's certificate (PEM); with the two below, the node serves and
        /// connects only over mutual TLS, accepting peers the CA signed.
        #[arg(long, requires_all = ["tls_cert", "tls_key"])]
        tls_ca: Option<PathBuf>,
        /// With `--tls-ca`: this node's certificate, signed by the cluster CA (PEM), naming
        /// the host the others reach it at.
        #[arg(long, requires = "tls_ca")]
        tls_cert: Option<PathBuf>,
        /// With `--tls-ca`: this node's private key (PEM).
        #[arg(long, requires = "tls_ca")]
        tls_key: Option<PathBuf>,
    },
    /// Usage monitoring (Shuangyashan Art. 31).
    #[command(subcommand)]
    Usage(UsageCmd),
}

/// `usage` subcommands.
#[derive(Debug, Subcommand)]
pub enum UsageCmd {
    /// Every scenario's use: jobs, queries, refusals, budget, and what needs attention
    /// (idle, expiring, refusals, suspended). Records idle scenarios as flagged.
    Show,
    /// Show or change the settings (operators change them).
    Settings {
        /// Over-scope refusals that suspend a scenario (0: never).
        #[arg(long)]
        max_refusals: Option<u32>,
        /// Days without a job after which a scenario is flagged idle.
        #[arg(long)]
        idle_days: Option<u32>,
    },
}

/// `token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Issue a token for a principal (as an operator). The token is printed once.
    Issue {
        /// Principal name.
        name: String,
    },
    /// Revoke a token by its id.
    Revoke {
        /// Token id (the 16 hex digits after `sbx_`).
        id: String,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
    /// List tokens (ids, holders, revocation; never secrets).
    List {
        /// Only this principal's.
        #[arg(long)]
        principal: Option<String>,
    },
}

/// `dev` subcommands.
#[derive(Debug, Subcommand)]
pub enum DevCmd {
    /// Run a module against synthetic data generated from policies, in a throwaway domain
    /// (no real data, every output marked synthetic).
    Run(crate::dev::DevRunArgs),
}

/// `principal` subcommands.
#[derive(Debug, Subcommand)]
pub enum PrincipalCmd {
    /// Add a principal (the first must be an operator).
    Add {
        /// Name.
        name: String,
        /// provider, operator, developer, supervisor, data_user or admin.
        #[arg(long)]
        role: String,
        /// The unified social credit code of the registered organisation it belongs to.
        #[arg(long)]
        org: Option<String>,
    },
    /// List principals.
    List,
    /// Choose the language you read Sandbox in (the console and the CLI): zh-CN, en, or
    /// auto (the client's, else the domain's default).
    Language {
        /// zh-CN, en or auto.
        language: String,
    },
    /// Qualify a suspended principal again (as an operator).
    Qualify {
        /// Name.
        name: String,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
    /// Suspend a principal: refused everywhere until qualified again (as an operator).
    Suspend {
        /// Name.
        name: String,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
    /// Revoke a principal for good (as an operator).
    Revoke {
        /// Name.
        name: String,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
}

/// `dataset` subcommands.
#[derive(Debug, Subcommand)]
pub enum DatasetCmd {
    /// Register a CSV or Parquet file with its policy (as a provider).
    Add {
        /// Data file (.csv or .parquet).
        #[arg(long)]
        file: PathBuf,
        /// Policy (TOML).
        #[arg(long)]
        policy: PathBuf,
    },
    /// List the catalog.
    List,
    /// Show one dataset's catalog entry and policy.
    Show {
        /// Name.
        name: String,
    },
    /// Retire a dataset registered by mistake: kept and recorded, refused for new
    /// scenarios (its provider, or an operator).
    Retire {
        /// Name.
        name: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// What stands against a dataset version: objections, suspensions, the products whose
    /// numbers came from it.
    Version {
        /// Name.
        name: String,
        /// Version.
        version: i64,
    },
    /// Raise an objection against a dataset version (its provider, or an operator).
    Object {
        /// Name.
        name: String,
        /// Version.
        #[arg(long)]
        version: i64,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
    /// Suspend a dataset version: its queries are refused until it is reinstated or a new
    /// version replaces it (its provider, or an operator).
    Suspend {
        /// Name.
        name: String,
        /// Version.
        #[arg(long)]
        version: i64,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
    /// Lift a dataset version's suspension (its provider, or an operator).
    Reinstate {
        /// Name.
        name: String,
        /// Version.
        #[arg(long)]
        version: i64,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
    /// Decide that a dataset its policy marks not_shared may go into the named scenario
    /// (its provider, or a supervisor; SYS Art. 24).
    Share {
        /// Name.
        name: String,
        /// The scenario's name.
        #[arg(long)]
        scenario: String,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
    /// Destroy a dataset's files at the end of its authorization; the record of what was
    /// destroyed stays in the catalog (operators).
    Destroy {
        /// Name.
        name: String,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
    /// The record of a dataset's destruction.
    Destruction {
        /// Name.
        name: String,
    },
    /// Recall every product whose numbers came from a dataset version, in one step
    /// (operators and supervisors).
    Recall {
        /// Name.
        name: String,
        /// Version.
        #[arg(long)]
        version: i64,
        /// Why (recorded, and written in each withdrawal notice).
        #[arg(long)]
        reason: String,
    },
}

/// `scenario` subcommands.
#[derive(Debug, Subcommand)]
pub enum ScenarioCmd {
    /// Apply for a scenario (as a developer).
    Apply {
        /// Scenario (TOML).
        #[arg(long)]
        file: PathBuf,
    },
    /// Approve a pending scenario (as an operator).
    Approve {
        /// Id or name.
        scenario: String,
        /// Note.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Reject a pending scenario (as an operator).
    Reject {
        /// Id or name.
        scenario: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// List scenarios.
    List,
    /// Show one scenario.
    Show {
        /// Id or name.
        scenario: String,
    },
    /// Suspend an approved scenario: its jobs and queries are refused until reinstated
    /// (as an operator).
    Suspend {
        /// Id or name.
        scenario: String,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
    /// Reinstate a suspended scenario (as an operator).
    Reinstate {
        /// Id or name.
        scenario: String,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
    /// Revoke a scenario for good (as an operator).
    Revoke {
        /// Id or name.
        scenario: String,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
    /// Where a scenario's consents stand: each provider's and the supervisor's word, the
    /// objections and their answers.
    Consents {
        /// Id or name.
        scenario: String,
    },
    /// Record no objection to a pending scenario, or an objection with --object (as the
    /// provider of a dataset it uses, or a supervisor).
    Consent {
        /// Id or name.
        scenario: String,
        /// The dataset you speak for (default: every one of it you provide).
        #[arg(long)]
        dataset: Option<String>,
        /// Object, with these reasons: the scenario stays pending until answered and
        /// consented.
        #[arg(long)]
        object: Option<String>,
    },
    /// Answer an objection to your scenario (as its applicant).
    Answer {
        /// Id or name.
        scenario: String,
        /// Whose objection: provider or supervisor.
        #[arg(long, value_enum)]
        to: PartyArg,
        /// The dataset of the provider's objection.
        #[arg(long)]
        dataset: Option<String>,
        /// The answer.
        text: String,
    },
    /// Establish a scenario type from a scenario approved through the whole review: later
    /// scenarios of the type over the same datasets and columns need only the operator's
    /// approval (as an operator).
    TypeAdd {
        /// Type name.
        name: String,
        /// The scenario it is established from.
        #[arg(long)]
        from: String,
        /// What scenarios of the type do.
        #[arg(long)]
        description: String,
    },
    /// The established scenario types.
    Types,
}

/// Whose objection an answer is to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PartyArg {
    /// The provider of a dataset.
    Provider,
    /// The supervisor.
    Supervisor,
}

/// `job` subcommands.
#[derive(Debug, Subcommand)]
pub enum JobCmd {
    /// Submit a module to run under a scenario (as its developer). Locally it runs at
    /// once; through a server it is queued (`--wait` to wait for its end).
    Submit(SubmitArgs),
    /// A job's status, queue position or progress, and outputs.
    Status {
        /// Job id.
        id: String,
    },
    /// Jobs, newest first (a developer's own).
    List {
        /// Only jobs in this status.
        #[arg(long)]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// A job's log lines.
    Logs {
        /// Job id.
        id: String,
    },
    /// Cancel a queued or running job (its submitter, an operator or a supervisor).
    Cancel {
        /// Job id.
        id: String,
        /// Why (required for someone else's job).
        #[arg(long)]
        reason: Option<String>,
    },
}

/// Arguments of `job submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// Scenario id or name.
    #[arg(long)]
    pub scenario: String,
    /// Module (.wasm).
    #[arg(long)]
    pub module: PathBuf,
    /// Parameters, a JSON object.
    #[arg(long, default_value = "{}")]
    pub params: String,
    /// Fuel limit (each limit left out is what the scenario grants).
    #[arg(long)]
    pub fuel: Option<u64>,
    /// Wall-clock deadline in milliseconds.
    #[arg(long)]
    pub deadline_ms: Option<u64>,
    /// Memory limit in MiB.
    #[arg(long)]
    pub memory_mib: Option<usize>,
    /// Table elements.
    #[arg(long)]
    pub table_elements: Option<usize>,
    /// Queries the job may make.
    #[arg(long)]
    pub max_queries: Option<u32>,
    /// Outputs the job may stage.
    #[arg(long)]
    pub max_outputs: Option<u32>,
    /// Bytes of one output.
    #[arg(long)]
    pub max_output_bytes: Option<usize>,
    /// Bytes of all outputs.
    #[arg(long)]
    pub max_total_output_bytes: Option<usize>,
    /// Bytes of log text.
    #[arg(long)]
    pub max_log_bytes: Option<usize>,
    /// With `--server`: seconds to wait for the job to end (0: return once queued).
    #[arg(long, default_value_t = 0.0)]
    pub wait: f64,
    /// Answer a request for changes on this earlier job of yours: the review request's
    /// thread continues with the new job's outputs.
    #[arg(long, value_name = "JOB")]
    pub resubmits: Option<String>,
}

impl SubmitArgs {
    /// The limits asked for, as a submission writes them: each within what the scenario
    /// grants.
    pub fn limits(&self) -> SubmittedLimits {
        SubmittedLimits {
            fuel: self.fuel,
            deadline_ms: self.deadline_ms,
            memory_mib: self.memory_mib,
            table_elements: self.table_elements,
            max_queries: self.max_queries,
            max_outputs: self.max_outputs,
            max_output_bytes: self.max_output_bytes,
            max_total_output_bytes: self.max_total_output_bytes,
            max_log_bytes: self.max_log_bytes,
        }
    }
}

/// `output` subcommands.
#[derive(Debug, Subcommand)]
pub enum OutputCmd {
    /// List outputs.
    List,
    /// Approve an output (operator first, then supervisor; the supervisor's approval
    /// releases it).
    Approve {
        /// Output id.
        id: String,
        /// Reason; required to override a failed check.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Reject an output.
    Reject {
        /// Output id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Send an output back to its developer with a comment (it is not released).
    RequestChanges {
        /// Output id.
        id: String,
        /// What to change.
        #[arg(long)]
        reason: String,
    },
    /// Show an output's check results.
    Checks {
        /// Output id.
        id: String,
    },
    /// Write an output's staged file to a local file (operators and supervisors).
    Download {
        /// Output id.
        id: String,
        /// Where to write it (`.csv` or `.xlsx` writes a table in that format).
        #[arg(long)]
        out: PathBuf,
        /// arrow, csv or xlsx (default: from the file name; tables only convert).
        #[arg(long, value_enum)]
        format: Option<FormatArg>,
    },
    /// Print an output: a table as a grid (its first rows), text as written.
    Show {
        /// Output id.
        id: String,
        /// Rows of a table to print.
        #[arg(long, default_value_t = 50)]
        rows: usize,
    },
}

/// How a table is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// An Arrow IPC stream, as staged and signed.
    Arrow,
    /// Comma-separated values (UTF-8 with a byte-order mark, for Excel and WPS).
    Csv,
    /// An Excel workbook.
    Xlsx,
}

impl FormatArg {
    /// The export format.
    pub fn format(self) -> sandbox_runtime::export::Format {
        match self {
            FormatArg::Arrow => sandbox_runtime::export::Format::Arrow,
            FormatArg::Csv => sandbox_runtime::export::Format::Csv,
            FormatArg::Xlsx => sandbox_runtime::export::Format::Xlsx,
        }
    }

    /// Its name in URLs.
    pub fn as_str(self) -> &'static str {
        self.format().extension()
    }
}

/// A decision on a review request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DecisionArg {
    /// Approve (operator first, then supervisor; the supervisor's approval releases).
    Approve,
    /// Reject.
    Reject,
    /// Send back to the developer, who may answer and resubmit.
    RequestChanges,
}

impl DecisionArg {
    /// The review decision.
    pub fn decision(self) -> sandbox_core::Decision {
        match self {
            DecisionArg::Approve => sandbox_core::Decision::Approve,
            DecisionArg::Reject => sandbox_core::Decision::Reject,
            DecisionArg::RequestChanges => sandbox_core::Decision::RequestChanges,
        }
    }
}

/// `review` subcommands.
#[derive(Debug, Subcommand)]
pub enum ReviewCmd {
    /// The review request a job belongs to: its jobs and outputs, comments and decisions
    /// (developers read their own).
    Show {
        /// Job id (any job of the request).
        job: String,
    },
    /// Write to a review request's thread (reviewers, and the job's developer).
    Comment {
        /// Job id.
        job: String,
        /// What to say.
        text: String,
    },
    /// Decide on every output of a job that awaits your tier, together.
    Decide {
        /// Job id.
        job: String,
        /// approve, reject or request-changes.
        #[arg(value_enum)]
        decision: DecisionArg,
        /// Why: required to reject or request changes, and to approve a flagged output.
        #[arg(long)]
        reason: Option<String>,
    },
}

/// `product` subcommands.
#[derive(Debug, Subcommand)]
pub enum ProductCmd {
    /// The product catalog: every released product, whom it is for, and whether you may
    /// download it.
    List,
    /// One product: what it is, its scope, providers, dates, and any withdrawal.
    Show {
        /// Product id.
        id: String,
    },
    /// Withdraw a product (operators and supervisors): downloads are refused from then
    /// on; its holders are listed for notification.
    Withdraw {
        /// Product id.
        id: String,
        /// Why (recorded, and written in the signed notice).
        #[arg(long)]
        reason: String,
    },
    /// Grant a product to a data user or an organisation beyond its scope at release
    /// (operators).
    Grant {
        /// Product id.
        id: String,
        /// A data user's name, or `org:` and an organisation's unified social credit code.
        #[arg(long)]
        to: String,
    },
    /// Everyone who downloaded a file of a product (operators and supervisors).
    Holders {
        /// Product id.
        id: String,
    },
    /// Copy a released product (its files, manifest and signature) into a folder.
    Download {
        /// Product id.
        id: String,
        /// Folder to create.
        #[arg(long)]
        out: PathBuf,
        /// Also write each table as CSV or XLSX beside the signed files.
        #[arg(long, value_enum)]
        format: Option<FormatArg>,
    },
    /// Verify a product folder's signature and file hashes.
    Verify {
        /// Product folder.
        dir: PathBuf,
    },
}

/// `report` subcommands.
#[derive(Debug, Subcommand)]
pub enum ReportCmd {
    /// A compliance report over a period, for the domain or one scenario: each
    /// requirement's evidence from the audit log, written with its signature into a new
    /// folder (supervisors and operators).
    Compliance {
        /// First day (YYYY-MM-DD).
        #[arg(long)]
        from: chrono::NaiveDate,
        /// Last day (YYYY-MM-DD).
        #[arg(long)]
        to: chrono::NaiveDate,
        /// One scenario (id or name).
        #[arg(long)]
        scenario: Option<String>,
        /// Folder to create.
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify a report's signature and the signed checkpoint it cites.
    Verify {
        /// Report folder, or the signed JSON file the console or the API gives.
        dir: PathBuf,
    },
}

/// `incident` subcommands.
#[derive(Debug, Subcommand)]
pub enum IncidentCmd {
    /// Open an incident.
    Open {
        /// general, relatively_major, major or especially_major.
        #[arg(long)]
        grade: String,
        /// Title.
        #[arg(long)]
        title: String,
        /// What happened.
        #[arg(long)]
        description: String,
    },
    /// Add to an incident's timeline.
    Log {
        /// Incident id.
        id: i64,
        /// action, stop, suspension, withdrawal, report or notice.
        #[arg(long)]
        kind: String,
        /// A stop's id, a suspended principal or scenario, a withdrawn product.
        #[arg(long)]
        reference: Option<String>,
        /// To whom a report or a notice went.
        #[arg(long)]
        to: Option<String>,
        /// What was done.
        text: String,
    },
    /// Close an incident with a summary.
    Close {
        /// Incident id.
        id: i64,
        /// How it ended.
        #[arg(long)]
        summary: String,
    },
    /// Incidents, newest first.
    List,
    /// One incident and its timeline.
    Show {
        /// Incident id.
        id: i64,
    },
}

/// `order` subcommands.
#[derive(Debug, Subcommand)]
pub enum OrderCmd {
    /// Order a developer, an organisation or a scenario to rectify by a deadline
    /// (supervisors).
    Issue {
        /// principal, organisation or scenario.
        #[arg(long)]
        target_kind: String,
        /// The developer, the organisation's credit code, the scenario.
        #[arg(long)]
        target: String,
        /// What is to be rectified.
        #[arg(long)]
        requirement: String,
        /// By when: a date (YYYY-MM-DD, its end) or an RFC 3339 time.
        #[arg(long)]
        deadline: String,
    },
    /// Answer an order addressed to you (developers).
    Answer {
        /// Order id.
        id: i64,
        /// What was rectified.
        text: String,
    },
    /// Accept an answered order and close it (supervisors).
    Close {
        /// Order id.
        id: i64,
    },
    /// Orders (a developer's own); those past their deadline are enforced first.
    List,
}

/// `org` subcommands.
#[derive(Debug, Subcommand)]
pub enum OrgCmd {
    /// Enter an organisation in the register (operators and admins).
    Add {
        /// Unified social credit code (18 characters).
        code: String,
        /// Name.
        #[arg(long)]
        name: String,
        /// Its security officer.
        #[arg(long)]
        officer: String,
        /// How to reach the security officer.
        #[arg(long)]
        contact: String,
        /// Last day of its qualification (YYYY-MM-DD).
        #[arg(long)]
        qualified_until: String,
        /// The most ε its members' scenarios may spend together.
        #[arg(long)]
        epsilon_cap: Option<f64>,
    },
    /// The register.
    List,
    /// One organisation, with its members and the ε they have spent.
    Show {
        /// Unified social credit code.
        code: String,
    },
    /// Change an organisation's entry: renew or end its qualification, a new officer, a cap.
    Set {
        /// Unified social credit code.
        code: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// New security officer.
        #[arg(long)]
        officer: Option<String>,
        /// New contact.
        #[arg(long)]
        contact: Option<String>,
        /// New last day of its qualification (YYYY-MM-DD).
        #[arg(long)]
        qualified_until: Option<String>,
        /// New cap on ε across its members' scenarios.
        #[arg(long, conflicts_with = "no_epsilon_cap")]
        epsilon_cap: Option<f64>,
        /// Remove the cap.
        #[arg(long)]
        no_epsilon_cap: bool,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
    /// Place a principal in an organisation, or take it out with --none.
    Assign {
        /// Principal.
        principal: String,
        /// Unified social credit code.
        #[arg(required_unless_present = "none")]
        code: Option<String>,
        /// Take the principal out of its organisation.
        #[arg(long, conflicts_with = "code")]
        none: bool,
    },
    /// Write the register to a file (CSV for a spreadsheet, or JSON).
    Export {
        /// File to write (.csv or .json).
        #[arg(long)]
        out: PathBuf,
    },
}

/// Where the master key is: it wraps the domain's secrets and never lives in the data
/// directory.
#[derive(Debug, Clone, clap::Args)]
pub struct MasterKeyArgs {
    /// File for the master key, outside the data directory: a new key is written there
    /// (default: DIR.master-key beside the data directory).
    #[arg(long, conflicts_with = "master_key_env")]
    pub master_key_file: Option<PathBuf>,
    /// Use the key already in --master-key-file rather than making one.
    #[arg(long, requires = "master_key_file")]
    pub existing: bool,
    /// Environment variable holding the master key (64 hex digits), read at every start.
    #[arg(long)]
    pub master_key_env: Option<String>,
}

/// `backup`: take one, or a subcommand.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BackupArgs {
    /// Check a backup.
    #[command(subcommand)]
    pub cmd: Option<BackupCmd>,
    /// The new file to write the backup to (outside the data directory).
    #[arg(long, required = true)]
    pub out: Option<PathBuf>,
}

/// `backup` subcommands.
#[derive(Debug, Subcommand)]
pub enum BackupCmd {
    /// Check a backup whole: every chunk opens, every file matches its manifest, the
    /// audit log and its checkpoints verify (restored into a temporary folder, then
    /// removed).
    Verify {
        /// The backup file.
        file: PathBuf,
        /// The master key the backup was taken under.
        #[command(flatten)]
        key: BackupKeyArgs,
    },
}

/// The master key a backup opens with (default: the one the data directory names).
#[derive(Debug, clap::Args)]
pub struct BackupKeyArgs {
    /// File holding the master key the backup was taken under.
    #[arg(long, conflicts_with = "master_key_env")]
    pub master_key_file: Option<PathBuf>,
    /// Environment variable holding that master key (64 hex digits).
    #[arg(long)]
    pub master_key_env: Option<String>,
}

/// `key` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// Move the domain's secrets to a new master key: rewrapped, the old key's files
    /// removed, the rotation recorded; no data file is rewritten (operators and admins).
    Rotate {
        /// Where the new master key is.
        #[command(flatten)]
        master: MasterKeyArgs,
    },
    /// Protect a data directory made before encryption at rest: wrap its secrets under a
    /// master key and remove their clear copies, and encrypt its metadata database (run
    /// with the domain stopped).
    Protect {
        /// Where the master key is.
        #[command(flatten)]
        master: MasterKeyArgs,
    },
}

/// `query` subcommands.
#[derive(Debug, Subcommand)]
pub enum QueryCmd {
    /// Show how a query would be answered (clamp, bounding, noise and ε); nothing runs.
    Explain {
        /// Scenario id or name.
        #[arg(long)]
        scenario: String,
        /// ε to plan for (default: the scenario's per-query ε).
        #[arg(long)]
        epsilon: Option<f64>,
        /// SQL.
        sql: String,
    },
    /// Check SQL against a scenario's policy; nothing runs, nothing is charged.
    Check {
        /// Scenario id or name.
        #[arg(long)]
        scenario: String,
        /// SQL.
        sql: String,
    },
}

/// `budget` subcommands.
#[derive(Debug, Subcommand)]
pub enum BudgetCmd {
    /// Show a scenario's budget.
    Show {
        /// Scenario id or name.
        #[arg(long)]
        scenario: String,
    },
}

/// `stop` subcommands.
#[derive(Debug, Subcommand)]
pub enum StopCmd {
    /// Stop a scenario: its running jobs are interrupted, new jobs and queries refused.
    Scenario {
        /// Scenario id or name.
        scenario: String,
        /// Why (recorded in the audit log).
        #[arg(long)]
        reason: String,
    },
    /// Stop everything a developer runs.
    Developer {
        /// Principal name.
        name: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Stop the whole domain.
    Domain {
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// List the stops in force (newest first).
    List {
        /// Lifted stops too.
        #[arg(long)]
        all: bool,
    },
    /// Lift a stop.
    Lift {
        /// Stop id.
        id: i64,
        /// Why.
        #[arg(long)]
        reason: String,
    },
}

/// `audit` subcommands. Supervisors and operators read the log; nobody deletes from it.
#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Recompute the Merkle tree and the hash chain from the events and check every signed
    /// checkpoint against the domain key; report the first broken event or checkpoint.
    Verify,
    /// Sign a checkpoint of the log as it is now (supervisors and operators).
    Checkpoint,
    /// Print events (supervisors and operators).
    Log {
        /// First event.
        #[arg(long, default_value_t = 1)]
        from: i64,
        /// How many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Print a JSON proof against signed checkpoints: that event SEQ is in the log
    /// (inclusion), or with --from, that an earlier checkpoint's log is a prefix of a
    /// later one's (consistency). Supervisors and operators.
    Prove {
        /// The event to prove included.
        #[arg(required_unless_present = "from", conflicts_with = "from")]
        seq: Option<i64>,
        /// Size of the checkpoint to prove inclusion in (default: a checkpoint of the log
        /// as it is now).
        #[arg(long, conflicts_with = "from")]
        size: Option<i64>,
        /// Size of the earlier checkpoint of a consistency proof.
        #[arg(long)]
        from: Option<i64>,
        /// Size of the later checkpoint (default: a checkpoint of the log as it is now).
        #[arg(long, requires = "from")]
        to: Option<i64>,
    },
    /// Check a proof written by `audit prove` (needs no data directory).
    VerifyProof {
        /// The proof (JSON).
        file: PathBuf,
        /// The domain's public key (hex) the checkpoints must be signed by; without it the
        /// signing key is printed, to be compared with the domain's published key.
        #[arg(long)]
        key: Option<String>,
    },
    /// Export events with their leaf hashes, then the checkpoints, as JSON Lines
    /// (supervisors and operators; the export is audited).
    Export {
        /// First event.
        #[arg(long, default_value_t = 1)]
        from: i64,
        /// Last event (default: the last).
        #[arg(long)]
        to: Option<i64>,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Show the audit retention, or set it (supervisors and operators; at least 3 years).
    Retention {
        /// New retention in years.
        #[arg(long)]
        set: Option<i64>,
    },
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// A memory limit of nothing is refused before the server starts (it would fail every
    /// query); a limit is taken in MiB.
    #[test]
    fn serve_takes_a_memory_limit_of_at_least_one_mib() {
        assert!(Cli::try_parse_from(["sandbox", "serve", "--memory-mib", "0"]).is_err());
        let cli = Cli::try_parse_from(["sandbox", "serve", "--memory-mib", "2048"])
            .map_err(|e| e.to_string());
        assert!(
            matches!(
                cli.as_ref().map(|c| &c.command),
                Ok(Command::Serve {
                    memory_mib: Some(2048),
                    ..
                })
            ),
            "{cli:?}"
        );
    }
}
