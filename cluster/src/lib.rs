//! The nodes of a cluster that runs the mediator's plans inside the domain: DataFusion
//! Ballista's scheduler and executors, started with the mediator's codecs and sessions
//! ([`sandbox_mediator::cluster::scheduler_state`], [`sandbox_mediator::cluster::executor_state`]),
//! which the stock binaries do not know.
//!
//! - The **scheduler** decodes the physical plans the domain node sends, splits them into
//!   stages and hands tasks to executors. Its codecs hold no secret: it cannot evaluate a
//!   keyed pseudonym, and it never opens a dataset's file.
//! - An **executor** opens the domain's store (the same data directory; on another host a
//!   shared read-only mount at the same path) for two things only: the pseudonym secret its
//!   codec rebuilds the desensitization functions with, and the dataset keys (unwrapped by
//!   the master key from its own key source) through which it reads the encrypted files
//!   the plans name.
//!
//! Scheduler, executors, their shuffle directories (clamped rows of the datasets) and the
//! network between them are inside the domain. With [`NodeTls`] every connection between
//! nodes is mutual TLS under the domain's cluster CA: the scheduler's gRPC service and each
//! executor's Flight service accept only peers the CA signed, and every endpoint a node
//! dials is made `https` (Ballista 55's push-staged registration dials executors in the
//! clear, so a TLS cluster's executors poll the scheduler for tasks instead).
//!
//! **Architecture invariant:** this crate starts nodes and nothing else. It does not
//! depend on DataFusion: what a plan may contain, how it travels and how a node reads a
//! dataset are the mediator's.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ballista_core::config::TaskSchedulingPolicy;
use ballista_core::error::BallistaError;
use ballista_core::extension::SessionConfigExt;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_core::serde::protobuf::scheduler_grpc_server::SchedulerGrpcServer;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use sandbox_mediator::atrest::DatasetKeys;
pub use sandbox_mediator::cluster::NodeTls;
use sandbox_mediator::cluster::{
    LogicalPlanNode, PhysicalPlanNode, SessionState, executor_state, scheduler_state,
};
use sandbox_store::Store;

/// What starting or running a node fails with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The domain's store, keys or engine.
    #[error(transparent)]
    Domain(#[from] sandbox_core::Error),
    /// Ballista failed.
    #[error("cluster: {0}")]
    Ballista(String),
    /// A socket or a directory.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<ballista_core::error::BallistaError> for Error {
    fn from(e: ballista_core::error::BallistaError) -> Self {
        Error::Ballista(e.to_string())
    }
}

impl From<sandbox_store::Error> for Error {
    fn from(e: sandbox_store::Error) -> Self {
        Error::Domain(e.into())
    }
}

impl From<sandbox_mediator::Error> for Error {
    fn from(e: sandbox_mediator::Error) -> Self {
        Error::Domain(e.into())
    }
}

impl From<Error> for sandbox_core::Error {
    fn from(e: Error) -> sandbox_core::Error {
        match e {
            Error::Domain(e) => e,
            other => sandbox_core::Error::Engine(other.to_string()),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The domain's dataset keys, read from `store`: what an executor decrypts files with.
pub fn dataset_keys(store: &Store) -> Arc<DatasetKeys> {
    Arc::new(DatasetKeys::new(store.clone()))
}

/// A scheduler and executors in this process, on loopback ports the system picks (for
/// tests and a single machine): one executor per session of `executors` (each an
/// [`executor_state`]), each running `vcores` tasks at once. Returns the scheduler's
/// address.
pub async fn standalone(executors: &[SessionState], vcores: usize) -> Result<SocketAddr> {
    let addr =
        ballista_scheduler::standalone::new_standalone_scheduler_from_state(&scheduler_state())
            .await?;
    for state in executors {
        let scheduler = SchedulerGrpcClient::connect(format!("http://{addr}"))
            .await
            .map_err(|e| Error::Ballista(e.to_string()))?;
        ballista_executor::new_standalone_executor_from_state(scheduler, vcores, state).await?;
    }
    Ok(addr)
}

/// How a scheduler process is started (`sandbox scheduler`).
#[derive(Debug, Clone)]
pub struct SchedulerSettings {
    /// Where it listens.
    pub bind: SocketAddr,
    /// Its TLS (mutual, under the cluster CA); `None` serves in the clear.
    pub tls: Option<NodeTls>,
}

/// Runs a scheduler until the process is stopped.
pub async fn run_scheduler(settings: SchedulerSettings) -> Result<()> {
    let state = scheduler_state();
    let session_config = state.config().clone();
    let config = SchedulerConfig {
        bind_host: settings.bind.ip().to_string(),
        bind_port: settings.bind.port(),
        external_host: settings.bind.ip().to_string(),
        override_logical_codec: Some(session_config.ballista_logical_extension_codec()),
        override_physical_codec: Some(session_config.ballista_physical_extension_codec()),
        override_config_producer: Some({
            let config = session_config.clone();
            Arc::new(move || config.clone())
        }),
        override_session_builder: Some(Arc::new(move |_| Ok(state.clone()))),
        // An executor that stops sending heartbeats (every 2 s) is taken out after 10 s
        // and its tasks run again elsewhere.
        executor_timeout_seconds: 10,
        expire_dead_executor_interval_seconds: 2,
        no_executors_grace_period_seconds: 10,
        ..SchedulerConfig::default()
    };
    let Some(tls) = settings.tls else {
        let cluster = BallistaCluster::new_from_config(&config).await?;
        ballista_scheduler::scheduler_process::start_server(
            cluster,
            settings.bind,
            Arc::new(config),
        )
        .await?;
        return Ok(());
    };
    let config = Arc::new(SchedulerConfig {
        scheduling_policy: TaskSchedulingPolicy::PullStaged,
        use_tls: true,
        override_create_grpc_client_endpoint: Some(tls.endpoint_override()),
        ..config
    });
    let cluster = BallistaCluster::new_from_config(&config).await?;
    let scheduler = ballista_scheduler::scheduler_process::create_scheduler::<
        LogicalPlanNode,
        PhysicalPlanNode,
    >(cluster, Arc::clone(&config))
    .await?;
    tracing::info!(address = %settings.bind, "scheduler listening (mutual TLS)");
    // Only the scheduler's gRPC service: no REST API, no Flight proxy.
    let service = SchedulerGrpcServer::new(scheduler)
        .max_encoding_message_size(config.grpc_server_max_encoding_message_size as usize)
        .max_decoding_message_size(config.grpc_server_max_decoding_message_size as usize);
    tonic::transport::Server::builder()
        .tls_config(tls.server())
        .map_err(|e| Error::Ballista(format!("the scheduler's TLS: {e}")))?
        .add_service(service)
        .serve(settings.bind)
        .await
        .map_err(|e| Error::Ballista(format!("the scheduler's service: {e}")))?;
    Ok(())
}

/// How an executor process is started (`sandbox executor`).
#[derive(Debug, Clone)]
pub struct ExecutorSettings {
    /// The scheduler's host.
    pub scheduler_host: String,
    /// The scheduler's port.
    pub scheduler_port: u16,
    /// The host it binds and announces.
    pub host: String,
    /// Its Arrow Flight port (results and shuffle data are fetched there).
    pub port: u16,
    /// Its gRPC port.
    pub grpc_port: u16,
    /// Its shuffle directory (intermediate rows: inside the domain).
    pub work_dir: PathBuf,
    /// Tasks it runs at once.
    pub vcores: usize,
    /// The memory pool of its tasks, in bytes (they spill beyond it).
    pub memory_pool: Option<u64>,
    /// Its TLS (mutual, under the cluster CA); `None` serves and dials in the clear.
    pub tls: Option<NodeTls>,
}

/// Runs an executor of `store`'s domain until the process is stopped.
pub async fn run_executor(store: &Store, settings: ExecutorSettings) -> Result<()> {
    std::fs::create_dir_all(&settings.work_dir)?;
    let state = executor_state(store, dataset_keys(store), Some(&settings.work_dir))?;
    let runtime = Arc::clone(state.runtime_env());
    let mut session_config = state.config().clone();
    if let Some(tls) = &settings.tls {
        // Shuffle reads from other executors go over the same TLS.
        session_config = session_config
            .with_ballista_use_tls(true)
            .with_ballista_override_create_grpc_client_endpoint(tls.endpoint_override());
    }
    let mut config = ExecutorProcessConfig {
        bind_host: settings.host.clone(),
        external_host: Some(settings.host.clone()),
        port: settings.port,
        grpc_port: settings.grpc_port,
        scheduler_host: settings.scheduler_host.clone(),
        scheduler_port: settings.scheduler_port,
        vcores: settings.vcores,
        work_dir: Some(settings.work_dir.to_string_lossy().into_owned()),
        memory_pool_size: settings.memory_pool,
        executor_heartbeat_interval_seconds: 2,
        override_logical_codec: Some(session_config.ballista_logical_extension_codec()),
        override_physical_codec: Some(session_config.ballista_physical_extension_codec()),
        override_runtime_producer: Some(Arc::new(move |_| Ok(Arc::clone(&runtime)))),
        override_config_producer: Some(Arc::new(move || session_config.clone())),
        ..ExecutorProcessConfig::default()
    };
    if let Some(tls) = settings.tls {
        config.task_scheduling_policy = TaskSchedulingPolicy::PullStaged;
        config.override_create_grpc_client_endpoint = Some(tls.endpoint_override());
        config.override_arrow_flight_service = Some(tls_flight_service(tls));
    }
    start_executor_process(Arc::new(config)).await?;
    Ok(())
}

/// An executor's Flight service (where results and shuffle partitions are read) served
/// over mutual TLS.
fn tls_flight_service(tls: NodeTls) -> Arc<ballista_executor::ArrowFlightServerProvider> {
    Arc::new(move |work_dir, address, mut shutdown, grpc| {
        let server = tls.server();
        tokio::spawn(async move {
            tracing::info!(%address, "executor's Flight service listening (mutual TLS)");
            let service = arrow_flight::flight_service_server::FlightServiceServer::new(
                ballista_executor::flight_service::BallistaFlightService::new(work_dir),
            )
            .max_decoding_message_size(FLIGHT_MESSAGE)
            .max_encoding_message_size(FLIGHT_MESSAGE);
            tonic::transport::Server::builder()
                .tls_config(server)
                .map_err(BallistaError::TonicError)?
                .timeout(std::time::Duration::from_secs(grpc.timeout_seconds))
                .tcp_nodelay(true)
                .add_service(service)
                .serve_with_shutdown(address, shutdown.recv())
                .await
                .map_err(BallistaError::TonicError)
        })
    })
}

/// The largest Flight message of an executor (Ballista's default).
const FLIGHT_MESSAGE: usize = 16 * 1024 * 1024;

fn node_runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .thread_name("sandbox-cluster")
        .enable_all()
        .build()?)
}

/// `sandbox scheduler`: runs a scheduler in a runtime of its own until the process is
/// stopped.
pub fn scheduler(settings: SchedulerSettings) -> Result<()> {
    node_runtime()?.block_on(run_scheduler(settings))
}

/// `sandbox executor`: runs an executor of the domain in `data_dir` (its store opened
/// with the master key it names) until the process is stopped.
pub fn executor(data_dir: &std::path::Path, settings: ExecutorSettings) -> Result<()> {
    let store = Store::open(sandbox_store::Layout::new(data_dir))?;
    node_runtime()?.block_on(run_executor(&store, settings))
}
