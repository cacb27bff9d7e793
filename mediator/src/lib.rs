//! The mediator: the only path from a module's SQL to data, and the only code that opens
//! a protected dataset's files.
//!
//! - [`query`]: plan (DataFusion's SQL planner, DDL, DML and statements off, against views
//!   holding the scenario's columns only) → the policy pass ([`analyze`], an allow-list on
//!   the unoptimized plan) → the budget charge (the store's ledger) while the clamped,
//!   bounded aggregate runs ([`execute`]) → OpenDP noise ([`privacy`]) or threshold
//!   suppression → the module's post-processing over the released table;
//! - [`views`]: each column as its policy shows it (keyed pseudonyms, masks, bands, ...);
//! - [`ingest`]: CSV or Parquet into the domain store, with the per-unit ranks, the bounds
//!   check and the rare-value sets ([`values`]) recorded at registration.
//!
//! **Architecture invariant:** this crate is the only one of Sandbox's that depends on
//! DataFusion or Parquet (the dependency test keeps it so); a module reaches it only
//! through [`Mediator`]'s [`QueryPort`], and nothing it computes from the data leaves
//! before the charge for it is durable.

#![forbid(unsafe_code)]

pub mod accuracy;
pub mod analyze;
pub mod atrest;
pub mod cluster;
pub mod codec;
pub mod contain;
pub mod differencing;
mod execute;
pub mod ingest;
pub mod privacy;
pub mod query;
pub mod total;
pub mod values;
pub mod views;

use std::path::Path;
use std::sync::Arc;

use sandbox_core::job::{Interrupt, StopTarget};
use sandbox_core::port::{Asker, Interrupter, QueryPort};
use sandbox_store::{Layout, Pooled, Store};

pub use execute::NoisyAnswer;
pub use query::{Answer, Explanation, QueryRequest, batch_to_json};
pub use sandbox_core::refusal::{Refusal, Rule};

pub(crate) use sandbox_core::Error as DomainError;

/// What the mediator's functions fail with: a domain error, or the engine's.
/// Converts into [`sandbox_core::Error`] (the engine's as [`sandbox_core::Error::Engine`]:
/// its detail stays in the domain's log).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A domain error (a refusal, not found, a bad input, ...).
    #[error(transparent)]
    Domain(#[from] sandbox_core::Error),
    /// DataFusion failed.
    #[error("query engine: {0}")]
    Engine(#[from] datafusion::error::DataFusionError),
    /// Arrow failed.
    #[error("query engine: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

impl From<Error> for sandbox_core::Error {
    fn from(e: Error) -> sandbox_core::Error {
        match e {
            Error::Domain(e) => e,
            Error::Engine(e) => sandbox_core::Error::Engine(e.to_string()),
            Error::Arrow(e) => sandbox_core::Error::Engine(e.to_string()),
        }
    }
}

impl From<sandbox_store::Error> for Error {
    fn from(e: sandbox_store::Error) -> Self {
        Error::Domain(e.into())
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Domain(e.into())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Domain(e.into())
    }
}

/// `Result` with the mediator's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Folder of the data directory that local plans spill to under a memory pool
/// ([`Mediator::set_memory_pool`]).
pub const SPILL_DIR: &str = "spill";

/// A runtime for the mediator's sessions: a memory pool of `bytes` (unbounded when
/// `None`), spilling into `spill` (when given), and `keys` as the Parquet encryption
/// factory.
fn query_env(
    keys: &Arc<atrest::DatasetKeys>,
    bytes: Option<usize>,
    spill: Option<std::path::PathBuf>,
) -> Result<Arc<datafusion::execution::runtime_env::RuntimeEnv>> {
    let mut builder = datafusion::execution::runtime_env::RuntimeEnvBuilder::new();
    if let Some(dir) = spill {
        builder = builder.with_temp_file_path(dir);
    }
    if let Some(bytes) = bytes {
        builder = builder.with_memory_pool(Arc::new(
            datafusion::execution::memory_pool::FairSpillPool::new(bytes),
        ));
    }
    let env = builder.build_arc()?;
    env.register_parquet_encryption_factory(atrest::FACTORY_ID, keys.clone());
    Ok(env)
}

/// The mediator of one domain: its store, the engine's runtime, the prepared scenarios,
/// and the way to the jobs a suspension interrupts.
pub struct Mediator {
    store: Store,
    runtime: tokio::runtime::Runtime,
    cache: query::Cache,
    interrupter: Arc<dyn Interrupter>,
    dataset_keys: Arc<atrest::DatasetKeys>,
    /// The cluster the scan-heavy plans go to, when the operator configured one.
    cluster: std::sync::RwLock<Option<Arc<cluster::Cluster>>>,
    /// Rows per data file of the versions this mediator registers.
    file_rows: std::sync::atomic::AtomicUsize,
    /// The runtime its sessions run in: the memory pool local plans share (they spill
    /// beyond it) and the dataset keys as the Parquet encryption factory.
    query_env: std::sync::RwLock<Arc<datafusion::execution::runtime_env::RuntimeEnv>>,
}

impl std::fmt::Debug for Mediator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mediator")
            .field("root", &self.store.layout().root())
            .finish()
    }
}

impl Mediator {
    /// The mediator of `store`'s domain; `interrupter` reaches the jobs running in this
    /// process when usage monitoring suspends a scenario.
    pub fn new(store: Store, interrupter: Arc<dyn Interrupter>) -> sandbox_core::Result<Mediator> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sandbox-query")
            .enable_all()
            .build()?;
        let dataset_keys = Arc::new(atrest::DatasetKeys::new(store.clone()));
        let query_env = std::sync::RwLock::new(query_env(&dataset_keys, None, None)?);
        Ok(Mediator {
            dataset_keys,
            query_env,
            store,
            runtime,
            cache: query::Cache::default(),
            interrupter,
            cluster: std::sync::RwLock::new(None),
            file_rows: std::sync::atomic::AtomicUsize::new(sandbox_store::catalog::FILE_ROWS),
        })
    }

    /// The memory the local plans of the queries asked from now on share: `None` (the
    /// default) unbounded, `Some(bytes)` a pool that operators beyond it spill to disk to
    /// stay within (or fail when they cannot). Spill files hold the rows a plan reads, in
    /// the clear: they go to [`SPILL_DIR`] in the data directory, inside the domain.
    pub fn set_memory_pool(&self, bytes: Option<usize>) -> sandbox_core::Result<()> {
        let spill = match bytes {
            Some(_) => {
                let dir = self.layout().root().join(SPILL_DIR);
                std::fs::create_dir_all(&dir)?;
                Some(dir)
            }
            None => None,
        };
        let env = query_env(&self.dataset_keys, bytes, spill).map_err(sandbox_core::Error::from)?;
        *self
            .query_env
            .write()
            .map_err(|_| sandbox_core::Error::Internal("query runtime poisoned".into()))? = env;
        // The prepared scenarios' sessions were made in the runtime before.
        self.cache.clear();
        Ok(())
    }

    /// The runtime the sessions made now run in (its memory pool, its disk manager).
    pub(crate) fn query_env(&self) -> Arc<datafusion::execution::runtime_env::RuntimeEnv> {
        match self.query_env.read() {
            Ok(env) => env.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Rows per data file of the versions registered from now on (at least 1; by default
    /// [`sandbox_store::catalog::FILE_ROWS`]). Versions already stored keep their files.
    pub fn set_file_rows(&self, rows: usize) {
        self.file_rows
            .store(rows.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// Rows per data file of the versions registered from now on.
    pub fn file_rows(&self) -> usize {
        self.file_rows.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Where this mediator's plans run from now on: locally, or on a cluster (for datasets
    /// of its `min_rows` rows or more).
    pub fn use_engine(&self, engine: cluster::Engine) -> sandbox_core::Result<()> {
        let next = match engine {
            cluster::Engine::Local => None,
            cluster::Engine::Cluster(settings) => Some(Arc::new(cluster::Cluster::new(
                settings,
                self.keys().pseudonym_secret()?.clone(),
            ))),
        };
        *self
            .cluster
            .write()
            .map_err(|_| sandbox_core::Error::Internal("engine setting poisoned".into()))? = next;
        Ok(())
    }

    /// The cluster this mediator sends plans to, if it has one.
    pub fn cluster(&self) -> Option<Arc<cluster::Cluster>> {
        self.cluster.read().ok()?.clone()
    }

    /// The cluster a plan over `rows` rows goes to: none when the mediator runs locally or
    /// the data is below the cluster's `min_rows`.
    pub(crate) fn cluster_for(&self, rows: u64) -> Option<Arc<cluster::Cluster>> {
        let cluster = self.cluster.read().ok()?.clone()?;
        (rows >= cluster.min_rows()).then_some(cluster)
    }

    /// The keys of the domain's dataset files (every read of one goes through them).
    pub fn dataset_keys(&self) -> &Arc<atrest::DatasetKeys> {
        &self.dataset_keys
    }

    /// A session for reading the domain's datasets: [`total::session`] (total casts),
    /// with the dataset keys as its Parquet encryption factory.
    pub fn session(
        &self,
        config: datafusion::prelude::SessionConfig,
    ) -> datafusion::prelude::SessionContext {
        total::session_in(config, self.query_env())
    }

    /// The async runtime the query engine runs on.
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    pub(crate) fn layout(&self) -> &Layout {
        self.store.layout()
    }

    /// The domain's keys.
    pub(crate) fn keys(&self) -> &sandbox_store::keys::Keyring {
        self.store.keys()
    }

    /// A connection from the store's pool.
    pub(crate) fn conn(&self) -> sandbox_store::Result<Pooled> {
        self.store.pooled()
    }

    pub(crate) fn mediate_cache(&self) -> &query::Cache {
        &self.cache
    }

    /// Interrupts the jobs of this domain running in this process that `target` covers;
    /// called after the transaction that suspended them has committed.
    pub(crate) fn interrupt(&self, target: &StopTarget, why: Interrupt) {
        let root: &Path = self.layout().root();
        if let Err(e) = self.interrupter.interrupt(root, target, why) {
            tracing::error!(error = %e, "running jobs could not be interrupted");
        }
    }
}

impl QueryPort for Mediator {
    fn query(
        &self,
        asker: &Asker,
        sql: &str,
        epsilon: Option<f64>,
    ) -> sandbox_core::Result<Vec<u8>> {
        let answer = query::answer(
            self,
            &QueryRequest {
                scenario_id: asker.scenario_id,
                job_id: Some(&asker.job_id),
                actor: &asker.actor,
                sql,
                epsilon,
            },
        )?;
        Ok(encode_ipc(&answer.batch)?)
    }
}

/// Encodes a batch as an Arrow IPC stream.
pub fn encode_ipc(batch: &arrow::array::RecordBatch) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    {
        let mut w = arrow::ipc::writer::StreamWriter::try_new(&mut buf, &batch.schema())?;
        w.write(batch)?;
        w.finish()?;
    }
    Ok(buf)
}
