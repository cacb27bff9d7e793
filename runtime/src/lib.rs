//! Sandbox runtime: public data analysed without leaving its domain.
//!
//! This crate is the composition root. A [`Domain`] is one data directory and the layers
//! that work on it: the metadata store ([`sandbox_store`]), the WASM host
//! ([`sandbox_host`]) and the mediator ([`sandbox_mediator`]), wired so that a job's only
//! way to data is the mediator's query port. Everything a person does goes through the
//! domain functions here, and each of them authorizes through the one path
//! (`sandbox_store::authz::authorize`, deciding with the core's one table):
//!
//! - [`catalog`]: providers register datasets with their [`sandbox_policies::Policy`];
//! - [`scenarios`]: developers apply for scenarios, operators decide; usage monitoring;
//! - [`jobs`]: a developer's module runs in the host; its only way to data is the
//!   [`mediate`] query path, which charges the budget ledger before it answers;
//! - [`review`]: staged outputs are checked, reviewed twice, and released as products;
//! - [`audit`]: every step is an event, a leaf of an RFC 6962 Merkle tree with signed
//!   checkpoints;
//! - [`identity`], [`tokens`], [`stops`]: principals, API tokens, emergency stops.
//!
//! See ARCHITECTURE.md for the invariants and where each is enforced.

#![forbid(unsafe_code)]

pub mod audit;
pub mod backup;
pub mod catalog;
pub mod consent;
pub mod custody;
pub mod disclosure;
pub mod export;
pub mod gauges;
pub mod identity;
pub mod incidents;
pub mod jobs;
pub mod mediate;
pub mod organisations;
pub mod report;
pub mod review;
pub mod scenarios;
pub mod sessions;
pub mod settings;
pub mod stops;
pub mod tokens;
pub mod versions;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sandbox_store::master::KeyProvider as _;

use sandbox_core::audit::{EventKind, Subject};
use sandbox_core::job::{Interrupt, StopTarget};
use sandbox_host::Host;
use sandbox_mediator::Mediator;
use sandbox_store::metadata::Create;
use sandbox_store::{Layout, Store};
use serde_json::json;

pub use sandbox_core::{Error, Result, Suite, new_id, plain_file_name, sha256_hex};
pub use sandbox_mediator::cluster::{ClusterSettings, Engine, NodeTls};

/// The domain's keys (signing key, pseudonym secret), kept in its data directory wrapped
/// by its master key.
pub mod keys {
    pub use sandbox_store::keys::*;
}

/// The domain's master key: where it is, and the provider trait an HSM or a KMS implements.
pub mod master {
    pub use sandbox_store::master::*;
}

/// The data directory's layout and the metadata store's types.
pub mod store {
    pub use sandbox_store::{Conn, DB_FILE, Layout, SCHEMA_VERSION, Tx, cipher_version, now};
    /// Where the metadata store is: SQLite's file, or PostgreSQL.
    pub mod metadata {
        pub use sandbox_store::metadata::*;
    }
    pub use sandbox_store::migrate_postgres;
}

/// The budget ledger.
pub mod privacy {
    /// Charges and balances.
    pub mod ledger {
        pub use sandbox_store::ledger::*;
    }
}

/// The WASM host's types a caller meets.
pub mod wasm {
    pub use sandbox_host::{
        ALLOWED_IMPORTS, CleanPng, Host, Interrupt, JobContext, JobLimits, LogLine,
        MAX_MODULE_BYTES, OutputKind, ProgressReport, StagedOutput, StopTarget, check_svg,
        decode_ipc, reencode_png, validate,
    };
}

/// One domain: a data directory and the engines that work on it. Cheap to clone.
#[derive(Clone)]
pub struct Domain {
    store: Store,
    host: Arc<Host>,
    mediator: Arc<Mediator>,
    job_lease: std::time::Duration,
}

impl std::fmt::Debug for Domain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Domain")
            .field("root", &self.store.layout().root())
            .finish()
    }
}

/// Where a new domain's master key comes from. It never lives in the data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKey {
    /// A new key, written to a new file at this path (outside the data directory).
    New(PathBuf),
    /// The key in this existing file.
    File(PathBuf),
    /// The key in this environment variable (64 hex digits), read at every start.
    Env(String),
}

impl MasterKey {
    /// A new key in a new file beside the data directory: `DIR.master-key`.
    pub fn beside(dir: &Path) -> MasterKey {
        let mut name = dir.file_name().unwrap_or_default().to_os_string();
        name.push(".master-key");
        MasterKey::New(dir.with_file_name(name))
    }

    /// The key, and the source to record; `created` is set to a key file made here (to be
    /// removed if what follows fails).
    pub(crate) fn resolve(
        &self,
        layout: &Layout,
        created: &mut Option<PathBuf>,
    ) -> Result<(
        sandbox_store::master::LocalKey,
        sandbox_store::master::KeySource,
    )> {
        use sandbox_store::master::{self, KeySource};
        // The key is of the suite the data directory records (at init, written first).
        let suite = keys::suite(layout)?;
        let outside = |path: &Path| -> Result<PathBuf> {
            let absolute = std::path::absolute(path)?;
            if absolute.starts_with(std::path::absolute(layout.root())?) {
                return Err(Error::Invalid(format!(
                    "the master key file {} is inside the data directory: keep it elsewhere",
                    absolute.display()
                )));
            }
            Ok(absolute)
        };
        Ok(match self {
            MasterKey::New(path) => {
                let path = outside(path)?;
                if path.exists() {
                    return Err(Error::Conflict(format!(
                        "{} exists: name another file for the new master key, or use that key (--master-key-file PATH --existing)",
                        path.display()
                    )));
                }
                let key = master::create_key_file(layout, &path, suite)?;
                *created = Some(path.clone());
                (key, KeySource::File { path })
            }
            MasterKey::File(path) => {
                let source = KeySource::File {
                    path: outside(path)?,
                };
                (master::load(suite, &source)?, source)
            }
            MasterKey::Env(var) => {
                let source = KeySource::Env { var: var.clone() };
                (master::load(suite, &source)?, source)
            }
        })
    }
}

impl Domain {
    /// Creates a new data directory at `dir` (which must not exist or be empty): folders,
    /// metadata store, keys. Nothing is left behind if a step fails.
    pub fn init(dir: &Path) -> Result<Domain> {
        Domain::init_with(dir, &settings::Settings::default())
    }

    /// Creates a data directory whose people read it in `settings.default_language` and
    /// see its times in `settings.time_zone` (an IANA name), its master key made in a new
    /// file beside it ([`MasterKey::beside`]).
    pub fn init_with(dir: &Path, settings: &settings::Settings) -> Result<Domain> {
        Domain::init_keyed(dir, settings, &MasterKey::beside(dir))
    }

    /// [`Domain::init_with`], its master key from `master`.
    pub fn init_keyed(
        dir: &Path,
        settings: &settings::Settings,
        master: &MasterKey,
    ) -> Result<Domain> {
        Domain::init_crypto(dir, settings, master, Suite::Standard)
    }

    /// [`Domain::init_keyed`] with the cryptographic suite `suite` (fixed for the domain's
    /// life: its audit tree, content hashes, pseudonyms, signatures and key wrapping).
    pub fn init_crypto(
        dir: &Path,
        settings: &settings::Settings,
        master: &MasterKey,
        suite: Suite,
    ) -> Result<Domain> {
        Domain::init_on(dir, settings, master, suite, &Create::Sqlite)
    }

    /// [`Domain::init_crypto`] with the metadata store where `metadata` says: the
    /// embedded SQLite file, or an empty PostgreSQL database several servers share.
    pub fn init_on(
        dir: &Path,
        settings: &settings::Settings,
        master: &MasterKey,
        suite: Suite,
        metadata: &Create,
    ) -> Result<Domain> {
        if sandbox_i18n::time_zone(&settings.time_zone).is_none() {
            return Err(Error::Invalid(format!(
                "unknown time zone `{}` (an IANA name such as Asia/Shanghai)",
                settings.time_zone
            )));
        }
        if dir.exists() {
            let mut entries = fs::read_dir(dir)?;
            if entries.next().is_some() {
                return Err(Error::Conflict(format!(
                    "{} exists and is not empty",
                    dir.display()
                )));
            }
        }
        let created_dir = !dir.exists();
        let mut created_key = None;
        let result = (|| -> Result<()> {
            let layout = Layout::new(dir);
            fs::create_dir_all(dir)?;
            for folder in layout.folders() {
                fs::create_dir_all(folder)?;
            }
            keys::write_suite(&layout, suite)?;
            let (provider, source) = master.resolve(&layout, &mut created_key)?;
            sandbox_store::master::write_config(
                &layout,
                &sandbox_store::master::MasterConfig {
                    source,
                    key_id: provider.key_id().to_string(),
                },
            )?;
            keys::create(&layout, &provider)?;
            let provider_id = provider.key_id().to_string();
            let conn = sandbox_store::create_with(&layout, Arc::new(provider), metadata)?;
            sandbox_store::settings::init(&conn, settings)?;
            let public = keys::public_key(&layout)?.to_hex();
            sandbox_store::audit::append(
                &conn,
                "system",
                EventKind::DomainInit,
                &Subject::Domain,
                json!({
                    "public_key": public,
                    "suite": suite,
                    "master_key": provider_id,
                    "schema_version": sandbox_store::SCHEMA_VERSION,
                    "default_language": settings.default_language,
                    "time_zone": settings.time_zone,
                }),
            )?;
            Ok(())
        })();
        if let Err(e) = result {
            if let Some(key) = created_key {
                let _ = fs::remove_file(key);
            }
            if created_dir {
                let _ = fs::remove_dir_all(dir);
            } else if let Ok(entries) = fs::read_dir(dir) {
                for entry in entries.flatten() {
                    let _ =
                        fs::remove_dir_all(entry.path()).or_else(|_| fs::remove_file(entry.path()));
                }
            }
            return Err(e);
        }
        Domain::open(dir)
    }

    /// Opens an existing data directory, its secrets unwrapped by the master key it names.
    pub fn open(dir: &Path) -> Result<Domain> {
        Domain::from_store(Store::open(Layout::new(dir))?)
    }

    /// Opens an existing data directory, its secrets unwrapped by `provider` (a hardware
    /// security module or a key management service holding the master key).
    pub fn open_with(
        dir: &Path,
        provider: Arc<dyn sandbox_store::master::KeyProvider>,
    ) -> Result<Domain> {
        Domain::from_store(Store::open_with(Layout::new(dir), provider)?)
    }

    /// Protects a data directory made before encryption at rest: its secrets in the clear
    /// are wrapped by a master key from `master` (and where that key is recorded), and its
    /// metadata database in the clear is encrypted. For a directory whose secrets are
    /// wrapped already, only the database is left to do, under the master key it names
    /// (`master` must be that key, or the default). Refused when nothing is left to do.
    /// The domain must not be open elsewhere.
    pub fn protect_keys(dir: &Path, master: &MasterKey) -> Result<String> {
        let layout = Layout::new(dir);
        if !layout.db().exists() {
            return Err(Error::NotFound(format!(
                "no Sandbox data directory at {}",
                dir.display()
            )));
        }
        if !keys::legacy(&layout) || sandbox_store::master::config(&layout)?.is_some() {
            if !sandbox_store::database_in_clear(&layout)? {
                return Err(Error::Conflict(format!(
                    "the keys of {} are wrapped by a master key already, and its metadata database is encrypted",
                    dir.display()
                )));
            }
            let provider = sandbox_store::master::provider(&layout)?;
            if !matches!(master, MasterKey::New(_)) {
                let (given, _) = master.resolve(&layout, &mut None)?;
                if given.key_id() != provider.key_id() {
                    return Err(Error::Conflict(format!(
                        "the secrets of {} are wrapped by master key {}, not by {}",
                        dir.display(),
                        provider.key_id(),
                        given.key_id()
                    )));
                }
            }
            let id = provider.key_id().to_string();
            sandbox_store::encrypt_database(&layout, provider.clone())?;
            let store = Store::open_with(layout.clone(), provider)?;
            let mut conn = store.pooled()?;
            let tx = conn.write()?;
            sandbox_store::audit::append(
                &tx,
                "system",
                EventKind::DatabaseEncrypted,
                &Subject::Domain,
                json!({"master_key": id}),
            )?;
            tx.commit()?;
            return Ok(id);
        }
        let mut created_key = None;
        let done = (|| -> Result<String> {
            let (provider, source) = master.resolve(&layout, &mut created_key)?;
            keys::protect_legacy(&layout, &provider)?;
            let provider: Arc<dyn sandbox_store::master::KeyProvider> = Arc::new(provider);
            sandbox_store::master::write_config(
                &layout,
                &sandbox_store::master::MasterConfig {
                    source: source.clone(),
                    key_id: provider.key_id().to_string(),
                },
            )?;
            // Recorded like a rotation, from secrets that were in the clear.
            let id = provider.key_id().to_string();
            sandbox_store::encrypt_database(&layout, provider.clone())?;
            let store = Store::open_with(layout.clone(), provider)?;
            let mut conn = store.pooled()?;
            let tx = conn.write()?;
            for (kind, details) in [
                (
                    EventKind::MasterKeyRotated,
                    json!({"from": null, "to": id, "source": source.to_string()}),
                ),
                (EventKind::DatabaseEncrypted, json!({"master_key": id})),
            ] {
                sandbox_store::audit::append(&tx, "system", kind, &Subject::Domain, details)?;
            }
            tx.commit()?;
            Ok(id)
        })();
        if done.is_err()
            && keys::legacy(&layout)
            && let Some(key) = created_key
        {
            let _ = fs::remove_file(key);
        }
        done
    }

    fn from_store(store: Store) -> Result<Domain> {
        let host = Host::shared()?;
        let mediator = Arc::new(Mediator::new(store.clone(), host.clone())?);
        Ok(Domain {
            store,
            host,
            mediator,
            job_lease: jobs::JOB_LEASE,
        })
    }

    /// This domain with running jobs leased for `lease` at a time ([`jobs::JOB_LEASE`]
    /// unless set): a runner renews its lease every third of it, and a job whose lease
    /// lapsed is failed by whichever server looks first.
    pub fn with_job_lease(mut self, lease: std::time::Duration) -> Domain {
        self.job_lease = lease.max(std::time::Duration::from_millis(300));
        self
    }

    /// How long a running job is leased at a time.
    pub fn job_lease(&self) -> std::time::Duration {
        self.job_lease
    }

    /// The data directory's layout.
    pub fn layout(&self) -> &Layout {
        self.store.layout()
    }

    /// The domain's keys, unwrapped by its master key.
    pub fn keys(&self) -> &keys::Keyring {
        self.store.keys()
    }

    /// A connection to the metadata store, from the store's pool (it goes back on drop;
    /// opening one reads the whole schema, about half a millisecond).
    pub fn conn(&self) -> Result<sandbox_store::Pooled> {
        Ok(self.store.pooled()?)
    }

    /// The async runtime the query engine runs on.
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        self.mediator.runtime()
    }

    /// The WASM host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The mediator.
    pub fn mediator(&self) -> &Arc<Mediator> {
        &self.mediator
    }

    /// Where the mediator's plans run from now on: locally (the default), or on a
    /// DataFusion Ballista cluster for datasets of at least the cluster's `min_rows` rows.
    pub fn use_engine(&self, engine: Engine) -> Result<()> {
        self.mediator.use_engine(engine)
    }

    /// The running jobs of this domain in this process that `target` covers (recorded in
    /// the event of the change that interrupts them).
    pub(crate) fn covered(&self, target: &StopTarget) -> Vec<String> {
        self.host.covered(self.layout().root(), target)
    }

    /// Commits `tx`, which recorded a stop, a suspension or a cancel, and only then
    /// interrupts the running jobs `target` covers: the one way the domain functions
    /// interrupt jobs. A change that does not commit interrupts nothing. On PostgreSQL the
    /// change is announced to the other servers in the same transaction, and they
    /// interrupt the jobs it covers that they run ([`jobs::follow_interrupts`]).
    pub(crate) fn commit_interrupting(
        &self,
        tx: sandbox_store::Tx<'_>,
        target: &StopTarget,
        why: Interrupt,
    ) -> Result<Vec<String>> {
        self.commit_interrupting_all(tx, std::slice::from_ref(target), why)
    }

    /// [`Domain::commit_interrupting`] for a change that covers several targets (the
    /// developers of an organisation, say).
    pub(crate) fn commit_interrupting_all(
        &self,
        tx: sandbox_store::Tx<'_>,
        targets: &[StopTarget],
        why: Interrupt,
    ) -> Result<Vec<String>> {
        // Announced to the other servers of the store (PostgreSQL), on commit.
        for target in targets {
            sandbox_store::signals::notify(&tx, &jobs::announcement(target, why))?;
        }
        tx.commit()?;
        Ok(targets
            .iter()
            .flat_map(|t| self.host.interrupt(self.layout().root(), t, why))
            .collect())
    }
}
