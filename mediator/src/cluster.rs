//! Where the mediator's own plans run: on the domain node, or on a DataFusion Ballista
//! cluster inside the domain.
//!
//! The mediator plans every query on the domain node (the policy pass, the bounding and
//! clamping are in the plan it builds); with a cluster, the physical plan of its scan-heavy
//! parts (the bounded aggregate; threshold mode's unit contributions, hashed under the
//! differencing guard's key beside the rows and aggregated per cell there) is sent to the
//! cluster's scheduler ([`crate::codec`]: parameters, never the pseudonym secret), and what
//! comes back is the exact aggregate the mediator then noises or suppresses, and per cell
//! the guard's sketch and each sum's total and largest contributions.
//! Quantiles (their clamped values would travel row by row), the public cells (from
//! declared categories) and the module's post-processing stay local, as does every plan
//! over a dataset smaller than [`Cluster::min_rows`]. Between nodes, [`NodeTls`].
//!
//! A job on the cluster is cancelled when the query's future is dropped before it ends (a
//! refused charge drops it), and when [`Watch`] says the query is no longer wanted (its
//! job cancelled or stopped): no answer comes from a job that was not paid for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use ballista_core::client::BallistaClient;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_core::serde::protobuf::{
    CancelJobParams, ExecuteQueryParams, GetJobStatusParams, KeyValuePair, PartitionLocation,
    execute_query_params::Query, execute_query_result, job_status,
};
use datafusion::common::DataFusionError;
pub use datafusion::execution::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::AsExecutionPlan;
/// The plan messages a scheduler is typed by (the nodes name them through the mediator).
pub use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use futures::TryStreamExt;
use tonic::transport::Channel;

use crate::codec::{LogicalCodec, PhysicalCodec, wrap_scans};

mod tls;
pub use tls::NodeTls;

/// The largest message between the domain node and the cluster (a plan, a result batch).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;
/// How often the state of a job on the cluster is asked.
const POLL: Duration = Duration::from_millis(20);
/// How often [`Watch`] is asked whether the query is still wanted.
const WATCH: Duration = Duration::from_millis(250);
/// Plans over fewer rows than this run locally by default.
pub const DEFAULT_MIN_ROWS: u64 = 1_000_000;

/// Where the mediator's plans run.
#[derive(Debug, Clone, Default)]
pub enum Engine {
    /// In the mediator's own process (the embedded default).
    #[default]
    Local,
    /// On a Ballista cluster, for datasets of at least `min_rows` rows.
    Cluster(ClusterSettings),
}

/// A cluster as an operator configures it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// The scheduler, as `df://host:port`.
    pub url: String,
    /// Datasets with fewer rows run locally.
    pub min_rows: u64,
    /// Partitions of a plan sent to the cluster (tasks per stage).
    pub partitions: usize,
    /// How long a plan may run on the cluster before it is cancelled and the query fails.
    pub timeout: Duration,
    /// The domain node's TLS towards the cluster (mutual TLS, [`NodeTls`]); `None` for a
    /// cluster whose network is in the clear.
    pub tls: Option<NodeTls>,
}

impl ClusterSettings {
    /// The settings of a cluster whose scheduler is at `url` (`df://host:port`), with the
    /// defaults for the rest.
    pub fn parse(url: &str) -> sandbox_core::Result<ClusterSettings> {
        let rest = url.strip_prefix("df://").ok_or_else(|| {
            sandbox_core::Error::Invalid(format!(
                "a cluster is named `df://host:port`, not `{url}`"
            ))
        })?;
        let (host, port) = rest.rsplit_once(':').ok_or_else(|| {
            sandbox_core::Error::Invalid(format!("the cluster `{url}` names no port"))
        })?;
        let port_ok = port.parse::<u16>().is_ok_and(|p| p > 0);
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
        if !port_ok || !host_ok {
            return Err(sandbox_core::Error::Invalid(format!(
                "`{url}` is not a cluster address (`df://host:port`)"
            )));
        }
        Ok(ClusterSettings {
            url: format!("df://{host}:{port}"),
            min_rows: DEFAULT_MIN_ROWS,
            partitions: 8,
            timeout: Duration::from_secs(600),
            tls: None,
        })
    }

    /// The scheduler's endpoint, over TLS when the settings have it.
    fn endpoint(&self) -> crate::Result<tonic::transport::Endpoint> {
        let url = format!("http://{}", self.url.trim_start_matches("df://"));
        let endpoint = ballista_core::utils::create_grpc_client_endpoint(url, None)
            .map_err(|e| unreachable_cluster(self, &chain(&e)))?
            .connect_timeout(Duration::from_secs(10));
        match &self.tls {
            Some(tls) => tls
                .endpoint(endpoint)
                .map_err(|e| unreachable_cluster(self, &chain(&e))),
            None => Ok(endpoint),
        }
    }
}

/// Whether a query is still wanted while it runs on the cluster: `Err` with the reason
/// when its job was cancelled or stopped meanwhile.
pub type Watch<'a> = dyn Fn() -> sandbox_core::Result<()> + 'a;

/// The session of a cluster's scheduler: the mediator's codecs without a secret (it
/// decodes and re-encodes plans, cannot evaluate a keyed pseudonym, opens no file).
pub fn scheduler_state() -> SessionState {
    use ballista_core::extension::SessionConfigExt;
    let config = datafusion::prelude::SessionConfig::new_with_ballista()
        .with_ballista_logical_extension_codec(Arc::new(LogicalCodec::without_secret()))
        .with_ballista_physical_extension_codec(Arc::new(PhysicalCodec::without_secret()));
    datafusion::execution::SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .build()
}

/// The session of an executor of `store`'s domain: the mediator's codecs holding the
/// pseudonym secret (from the executor's own key source), and `keys` (the domain's dataset
/// keys, [`crate::atrest::DatasetKeys`], or a wrapper of them) as the Parquet encryption
/// factory the dataset scans name; its tasks spill into `spill` when given (the executor's
/// work directory, inside the domain like its shuffle files).
pub fn executor_state(
    store: &sandbox_store::Store,
    keys: Arc<dyn datafusion::execution::parquet_encryption::EncryptionFactory>,
    spill: Option<&std::path::Path>,
) -> crate::Result<SessionState> {
    use ballista_core::extension::SessionConfigExt;
    let secret = store.keys().pseudonym_secret()?.clone();
    let config = datafusion::prelude::SessionConfig::new_with_ballista()
        .with_ballista_logical_extension_codec(Arc::new(LogicalCodec::with_secret(secret.clone())))
        .with_ballista_physical_extension_codec(Arc::new(PhysicalCodec::with_secret(secret)));
    let mut runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new();
    if let Some(dir) = spill {
        runtime = runtime.with_temp_file_path(dir);
    }
    let runtime = runtime.build_arc()?;
    runtime.register_parquet_encryption_factory(crate::atrest::FACTORY_ID, keys);
    Ok(datafusion::execution::SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .build())
}

/// Where one query's plans run: the session it was planned in, and the cluster when the
/// mediator has one and the data is large enough.
pub struct Placement<'a> {
    /// The session holding the scenario's views (and the dataset keys).
    pub ctx: &'a datafusion::prelude::SessionContext,
    /// The cluster the scan-heavy plans go to, if any.
    pub cluster: Option<Arc<Cluster>>,
    /// Whether the query is still wanted while a plan runs on the cluster.
    pub watch: Box<Watch<'a>>,
}

impl Placement<'_> {
    /// Runs `plan` where this placement says: on the cluster, or locally.
    pub async fn collect(&self, plan: LogicalPlan) -> crate::Result<Vec<RecordBatch>> {
        match &self.cluster {
            Some(cluster) => {
                let state = self.ctx.state();
                let physical = cluster.plan(&state, &plan).await?;
                cluster.collect(&state, physical, &*self.watch).await
            }
            None => Ok(self.ctx.execute_logical_plan(plan).await?.collect().await?),
        }
    }
}

/// What became of a job the mediator sent to the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Submitted, not ended yet.
    Running,
    /// Ended, and its output read.
    Finished,
    /// Failed on the cluster (the reason as the scheduler gave it).
    Failed(String),
    /// Cancelled by the mediator: the query was no longer wanted (its future dropped, a
    /// refused charge among the reasons; its job cancelled or stopped; the timeout).
    Cancelled(String),
}

/// A job the mediator sent, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentJob {
    /// The scheduler's id of the job.
    pub job_id: String,
    /// What became of it.
    pub fate: Fate,
}

/// Jobs remembered per mediator (the most recent).
const REMEMBERED: usize = 256;

type Sent = Arc<std::sync::Mutex<std::collections::VecDeque<SentJob>>>;

fn record(sent: &Sent, job_id: &str, fate: Fate) {
    let Ok(mut sent) = sent.lock() else {
        return;
    };
    match sent.iter_mut().find(|j| j.job_id == job_id) {
        Some(job) => job.fate = fate,
        None => {
            if sent.len() == REMEMBERED {
                sent.pop_front();
            }
            sent.push_back(SentJob {
                job_id: job_id.to_string(),
                fate,
            });
        }
    }
}

/// The connection of one mediator to its cluster.
#[derive(Debug)]
pub struct Cluster {
    settings: ClusterSettings,
    codec: PhysicalCodec,
    session_id: String,
    sent: Sent,
    /// The channel to the scheduler, opened at the first plan and kept (it reconnects by
    /// itself): one TCP connection and TLS handshake per mediator, not per plan.
    channel: tokio::sync::OnceCell<Channel>,
}

impl Cluster {
    /// The cluster of `settings`; the codec of the domain node holds the pseudonym secret
    /// (the plans it encodes never carry it).
    pub fn new(settings: ClusterSettings, secret: sandbox_core::Secret) -> Cluster {
        Cluster {
            settings,
            codec: PhysicalCodec::with_secret(secret),
            session_id: sandbox_core::new_id("mediator"),
            sent: Sent::default(),
            channel: tokio::sync::OnceCell::new(),
        }
    }

    /// The most recent jobs this mediator sent, oldest first, with what became of each.
    pub fn sent(&self) -> Vec<SentJob> {
        self.sent
            .lock()
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The cluster's settings.
    pub fn settings(&self) -> &ClusterSettings {
        &self.settings
    }

    /// Plans over fewer rows than this run locally.
    pub fn min_rows(&self) -> u64 {
        self.settings.min_rows
    }

    /// The physical plan of `plan`, planned on this node for the cluster's partitions.
    pub async fn plan(
        &self,
        state: &SessionState,
        plan: &LogicalPlan,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        // A copy of the session (its catalog shared, its settings its own): rebuilding the
        // state would register a fresh default catalog in the shared catalog list.
        let mut state = state.clone();
        let options = state.config_mut().options_mut();
        options.execution.target_partitions = self.settings.partitions.max(1);
        // Every file is split by byte ranges over the partitions, however small.
        options.optimizer.repartition_file_min_size = 0;
        state.create_physical_plan(plan).await
    }

    /// The encoded form of `plan` as the scheduler receives it.
    pub fn encode(&self, plan: Arc<dyn ExecutionPlan>) -> datafusion::error::Result<Vec<u8>> {
        let plan = wrap_scans(plan)?;
        let node = PhysicalPlanNode::try_from_physical_plan(plan, &self.codec)?;
        let mut buf = Vec::new();
        node.try_encode(&mut buf)?;
        Ok(buf)
    }

    /// Runs `plan` on the cluster and collects its output, asking `watch` meanwhile.
    pub async fn collect(
        &self,
        state: &SessionState,
        plan: Arc<dyn ExecutionPlan>,
        watch: &Watch<'_>,
    ) -> crate::Result<Vec<RecordBatch>> {
        let buf = self.encode(plan)?;
        let settings = state
            .config()
            .options()
            .entries()
            .into_iter()
            .map(|e| KeyValuePair {
                key: e.key,
                value: e.value,
            })
            .collect();
        let mut scheduler = self.connect().await?;
        let mut request = tonic::Request::new(ExecuteQueryParams {
            session_id: self.session_id.clone(),
            settings,
            operation_id: sandbox_core::new_id("op"),
            query: Some(Query::PhysicalPlan(buf)),
        });
        ballista_core::version::insert_version_header(request.metadata_mut());
        let submitted = scheduler
            .execute_query(request)
            .await
            .map_err(|e| unreachable_cluster(&self.settings, &chain(&e)))?
            .into_inner();
        let job_id = match submitted.result {
            Some(execute_query_result::Result::Success(s)) => s.job_id,
            Some(execute_query_result::Result::Failure(f)) => {
                return Err(engine(format!("the cluster refused the plan: {f:?}")));
            }
            None => return Err(engine("the cluster answered no job".into())),
        };
        record(&self.sent, &job_id, Fate::Running);
        let mut job = RunningJob {
            scheduler: scheduler.clone(),
            job_id: Some(job_id.clone()),
            timeout: self.settings.timeout,
            sent: self.sent.clone(),
        };
        let locations = job.wait(watch).await?;
        let mut batches = Vec::new();
        for location in locations {
            batches.extend(fetch(location, self.settings.tls.as_ref()).await?);
        }
        job.finished();
        Ok(batches)
    }

    async fn connect(&self) -> crate::Result<SchedulerGrpcClient<Channel>> {
        let channel = self
            .channel
            .get_or_try_init(|| async {
                self.settings
                    .endpoint()?
                    .connect()
                    .await
                    .map_err(|e| unreachable_cluster(&self.settings, &chain(&e)))
            })
            .await?
            .clone();
        Ok(SchedulerGrpcClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE))
    }
}

fn engine(detail: String) -> crate::Error {
    crate::Error::Engine(DataFusionError::Execution(detail))
}

/// An error with its causes (a transport error says little by itself: the cause is a
/// refused certificate, a closed port, ...).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn unreachable_cluster(settings: &ClusterSettings, detail: &str) -> crate::Error {
    engine(format!(
        "the cluster at {} is unreachable: {detail}",
        settings.url
    ))
}

/// A job submitted to the cluster: cancelled there when dropped before it finished.
struct RunningJob {
    scheduler: SchedulerGrpcClient<Channel>,
    job_id: Option<String>,
    timeout: Duration,
    sent: Sent,
}

impl RunningJob {
    /// Waits for the job's result partitions; cancels the job when `watch` objects.
    async fn wait(&mut self, watch: &Watch<'_>) -> crate::Result<Vec<PartitionLocation>> {
        let job_id = self.job_id.clone().unwrap_or_default();
        let started = Instant::now();
        let mut watched = Instant::now();
        loop {
            if started.elapsed() >= self.timeout {
                let why = format!(
                    "the cluster's job {job_id} ran longer than {} s and was cancelled",
                    self.timeout.as_secs()
                );
                self.cancel(&why).await;
                return Err(engine(why));
            }
            if watched.elapsed() >= WATCH {
                watched = Instant::now();
                if let Err(e) = watch() {
                    self.cancel(&e.to_string()).await;
                    return Err(e.into());
                }
            }
            let status = self
                .scheduler
                .get_job_status(GetJobStatusParams {
                    job_id: job_id.clone(),
                })
                .await
                .map_err(|e| engine(format!("the cluster's job {job_id}: {e}")))?
                .into_inner()
                .status
                .and_then(|s| s.status);
            match status {
                Some(job_status::Status::Successful(done)) => {
                    return Ok(done.partition_location);
                }
                Some(job_status::Status::Failed(failed)) => {
                    self.job_id = None;
                    record(&self.sent, &job_id, Fate::Failed(failed.error.clone()));
                    return Err(engine(format!(
                        "the cluster's job {job_id} failed: {}",
                        failed.error
                    )));
                }
                _ => tokio::time::sleep(POLL).await,
            }
        }
    }

    async fn cancel(&mut self, why: &str) {
        let Some(job_id) = self.job_id.take() else {
            return;
        };
        record(&self.sent, &job_id, Fate::Cancelled(why.to_string()));
        if let Err(e) = self
            .scheduler
            .cancel_job(CancelJobParams {
                job_id: job_id.clone(),
            })
            .await
        {
            tracing::warn!(job = %job_id, error = %e, "the cluster's job could not be cancelled");
        }
    }

    /// The job ended and its output was read: nothing to cancel.
    fn finished(&mut self) {
        if let Some(job_id) = self.job_id.take() {
            record(&self.sent, &job_id, Fate::Finished);
        }
    }
}

impl Drop for RunningJob {
    fn drop(&mut self) {
        let Some(job_id) = self.job_id.take() else {
            return;
        };
        record(
            &self.sent,
            &job_id,
            Fate::Cancelled("the query was dropped before its job ended".into()),
        );
        let mut scheduler = self.scheduler.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    if let Err(e) = scheduler
                        .cancel_job(CancelJobParams {
                            job_id: job_id.clone(),
                        })
                        .await
                    {
                        tracing::warn!(job = %job_id, error = %e, "the cluster's job could not be cancelled");
                    }
                });
            }
            Err(_) => {
                tracing::warn!(job = %job_id, "a cluster job dropped outside a runtime is left to finish");
            }
        }
    }
}

/// Reads one result partition from the executor that holds it (over `tls` when given).
async fn fetch(
    location: PartitionLocation,
    tls: Option<&NodeTls>,
) -> crate::Result<Vec<RecordBatch>> {
    let layout = location.layout();
    let file_id = location.file_id;
    let executor = location
        .executor_meta
        .ok_or_else(|| engine("a result partition without its executor".into()))?;
    let partition_id = location
        .partition_id
        .ok_or_else(|| engine("a result partition without its id".into()))?;
    let port = u16::try_from(executor.port)
        .map_err(|_| engine(format!("an executor on port {}", executor.port)))?;
    let customize = tls.map(|tls| {
        Arc::new(ballista_core::extension::BallistaConfigGrpcEndpoint::new(
            tls.endpoint_override(),
        ))
    });
    let mut client = BallistaClient::try_new(
        &executor.host,
        port,
        MAX_MESSAGE,
        tls.is_some(),
        customize,
        3,
        100,
        0,
        0,
    )
    .await
    .map_err(|e| engine(format!("executor {}: {e}", executor.id)))?;
    let stream = client
        .fetch_partition(&executor.id, &partition_id.into(), file_id, layout, true)
        .await
        .map_err(|e| engine(format!("executor {}: {e}", executor.id)))?;
    Ok(stream.try_collect().await?)
}
