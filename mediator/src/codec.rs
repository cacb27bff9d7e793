//! The mediator's plans as they travel between a cluster's nodes (DataFusion Ballista).
//!
//! A plan leaves the domain node serialized with [`PhysicalCodec`] (and a logical plan,
//! should one be sent, with [`LogicalCodec`]); every node decodes it with its own instance
//! of the same codec. What the codecs add to DataFusion's and Ballista's own serialization:
//!
//! - **Functions with parameters, never a secret.** A desensitization function
//!   ([`Desensitizer`]), the total form of a function ([`Total`]) and an arithmetic
//!   operator as a function ([`Arithmetic`]) travel as their kind and parameters. A keyed
//!   pseudonym is rebuilt with the secret of the node that decodes it: an executor holds
//!   the domain's secret from its own key source; the scheduler's codec has none, so the
//!   scheduler cannot evaluate one.
//! - **Scans of encrypted dataset files.** DataFusion's serialization of a Parquet scan
//!   drops its encryption options; [`wrap_scans`] puts each scan of a dataset version
//!   under a [`DatasetScanExec`] naming the dataset and the version, and decoding puts the
//!   options back, so an executor reads the file through its own [`crate::atrest::DatasetKeys`].

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::physical_plan::{FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{AggregateUDF, Extension, LogicalPlan, Operator, ScalarUDF};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use sandbox_core::Secret;
use serde::{Deserialize, Serialize};

use crate::differencing::{GuardAggregate, GuardAggregateUdf, GuardHash, GuardHashUdf, GuardKey};
use crate::total::{Arithmetic, Total};
use crate::views::{DesensitizeUdf, Desensitizer};

/// The first byte of what the mediator's codecs encode themselves.
const OURS: u8 = b'S';
/// The first byte of what Ballista's codec encoded for them.
const BALLISTA: u8 = b'B';

/// A function of the mediator's, as it travels: kind and parameters.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "function", rename_all = "snake_case")]
enum Function {
    /// A desensitization function.
    Desensitize {
        /// What it does, with its parameters.
        desensitizer: Desensitizer,
    },
    /// An arithmetic operator (`+ - * / %`).
    Arithmetic {
        /// The operator as SQL writes it.
        op: String,
    },
    /// One of the differencing guard's keyed hashes.
    GuardHash {
        /// Which.
        hash: GuardHash,
    },
    /// The total form of `inner`: DataFusion's function of that name, or (with
    /// `definition`) one of these.
    Total {
        /// The function made total.
        inner: String,
        /// How to build it when it is the mediator's own.
        definition: Option<Box<Function>>,
    },
}

fn operator(op: &str) -> Result<Operator> {
    Ok(match op {
        "+" => Operator::Plus,
        "-" => Operator::Minus,
        "*" => Operator::Multiply,
        "/" => Operator::Divide,
        "%" => Operator::Modulo,
        other => {
            return Err(DataFusionError::Internal(format!(
                "an arithmetic function of an unknown operator `{other}`"
            )));
        }
    })
}

/// `udf` as a [`Function`], when it is one of the mediator's.
fn describe(udf: &ScalarUDF) -> Option<Function> {
    let inner = udf.inner().as_ref() as &dyn Any;
    if let Some(d) = inner.downcast_ref::<DesensitizeUdf>() {
        return Some(Function::Desensitize {
            desensitizer: d.kind().clone(),
        });
    }
    if let Some(g) = inner.downcast_ref::<GuardHashUdf>() {
        return Some(Function::GuardHash { hash: g.hash() });
    }
    if let Some(a) = inner.downcast_ref::<Arithmetic>() {
        return Some(Function::Arithmetic {
            op: a.op().to_string(),
        });
    }
    if let Some(t) = inner.downcast_ref::<Total>() {
        let function = t.function();
        return Some(Function::Total {
            inner: function.name().to_string(),
            definition: describe(function).map(Box::new),
        });
    }
    None
}

/// DataFusion's own scalar functions by name (and alias): what a [`Function::Total`]
/// without a definition wraps.
fn builtin(name: &str) -> Result<Arc<ScalarUDF>> {
    static FUNCTIONS: OnceLock<HashMap<String, Arc<ScalarUDF>>> = OnceLock::new();
    let functions = FUNCTIONS.get_or_init(|| {
        let mut map = HashMap::new();
        for f in datafusion::execution::SessionStateDefaults::default_scalar_functions() {
            for alias in f.aliases() {
                map.insert(alias.clone(), Arc::clone(&f));
            }
            map.insert(f.name().to_string(), f);
        }
        map
    });
    functions
        .get(name)
        .cloned()
        .ok_or_else(|| DataFusionError::Plan(format!("no scalar function `{name}` here")))
}

/// Builds `function` on this node, a keyed pseudonym with `secret` when it has one.
fn build(function: Function, secret: Option<&Secret>) -> Result<Arc<ScalarUDF>> {
    Ok(match function {
        Function::Desensitize { desensitizer } => Arc::new(desensitizer.udf(secret)),
        Function::GuardHash { hash } => Arc::new(hash.udf(secret.map(GuardKey::derive))),
        Function::Arithmetic { op } => Arithmetic::udf(operator(&op)?),
        Function::Total { inner, definition } => {
            let inner = match definition {
                Some(definition) => build(*definition, secret)?,
                None => builtin(&inner)?,
            };
            Total::wrap(inner)
        }
    })
}

fn encode_function(udf: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
    if let Some(function) = describe(udf) {
        buf.push(OURS);
        serde_json::to_writer(buf, &function)
            .map_err(|e| DataFusionError::Internal(format!("encoding a function: {e}")))?;
    }
    Ok(())
}

fn decode_function(name: &str, buf: &[u8], secret: Option<&Secret>) -> Result<Arc<ScalarUDF>> {
    match buf.split_first() {
        Some((&OURS, body)) => {
            let function: Function = serde_json::from_slice(body).map_err(|e| {
                DataFusionError::Internal(format!("decoding the function `{name}`: {e}"))
            })?;
            build(function, secret)
        }
        _ => Err(DataFusionError::Internal(format!(
            "the function `{name}` is not one of the mediator's"
        ))),
    }
}

/// The mediator's aggregate functions as they travel: the guard's aggregates, by kind and
/// parameters (they need no key); DataFusion's own travel by name.
fn encode_aggregate(udaf: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
    let inner = udaf.inner().as_ref() as &dyn Any;
    if let Some(g) = inner.downcast_ref::<GuardAggregateUdf>() {
        buf.push(OURS);
        serde_json::to_writer(buf, &g.aggregate())
            .map_err(|e| DataFusionError::Internal(format!("encoding an aggregate: {e}")))?;
    }
    Ok(())
}

fn decode_aggregate(name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
    match buf.split_first() {
        Some((&OURS, body)) => {
            let aggregate: GuardAggregate = serde_json::from_slice(body).map_err(|e| {
                DataFusionError::Internal(format!("decoding the aggregate `{name}`: {e}"))
            })?;
            Ok(Arc::new(aggregate.udaf()))
        }
        _ => Err(DataFusionError::Internal(format!(
            "the aggregate `{name}` is not one of the mediator's"
        ))),
    }
}

/// A node's key material for the functions it rebuilds: the pseudonym secret, or none (the
/// scheduler, a client). Never printed.
#[derive(Clone, Default)]
struct NodeSecret(Option<Secret>);

impl fmt::Debug for NodeSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "NodeSecret(held)"
        } else {
            "NodeSecret(none)"
        })
    }
}

/// The physical plan codec of every node: Ballista's own nodes through Ballista's codec,
/// the mediator's functions and dataset scans through its own encoding.
#[derive(Debug, Default)]
pub struct PhysicalCodec {
    secret: NodeSecret,
    ballista: BallistaPhysicalExtensionCodec,
}

impl PhysicalCodec {
    /// The codec of a node that holds the pseudonym secret (an executor, the domain node).
    pub fn with_secret(secret: Secret) -> PhysicalCodec {
        PhysicalCodec {
            secret: NodeSecret(Some(secret)),
            ballista: BallistaPhysicalExtensionCodec::default(),
        }
    }

    /// The codec of a node that holds no secret (the scheduler): it decodes and re-encodes
    /// plans, and cannot evaluate a keyed pseudonym.
    pub fn without_secret() -> PhysicalCodec {
        PhysicalCodec::default()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct ScanSpec {
    dataset: String,
    version: i64,
}

impl PhysicalExtensionCodec for PhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match buf.split_first() {
            Some((&OURS, body)) => {
                let spec: ScanSpec = serde_json::from_slice(body).map_err(|e| {
                    DataFusionError::Internal(format!("decoding a dataset scan: {e}"))
                })?;
                let [input] = inputs else {
                    return Err(DataFusionError::Internal(
                        "a dataset scan without its one input".into(),
                    ));
                };
                DatasetScanExec::attach(spec.dataset, spec.version, Arc::clone(input), ctx)
            }
            Some((&BALLISTA, body)) => self.ballista.try_decode(body, inputs, ctx, proto_converter),
            _ => Err(DataFusionError::Internal(
                "a plan node no codec of this node encoded".into(),
            )),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        if let Some(scan) = node.downcast_ref::<DatasetScanExec>() {
            buf.push(OURS);
            return serde_json::to_writer(
                buf,
                &ScanSpec {
                    dataset: scan.dataset.clone(),
                    version: scan.version,
                },
            )
            .map_err(|e| DataFusionError::Internal(format!("encoding a dataset scan: {e}")));
        }
        let mut body = Vec::new();
        self.ballista.try_encode(node, &mut body, proto_converter)?;
        buf.push(BALLISTA);
        buf.extend_from_slice(&body);
        Ok(())
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        decode_function(name, buf, self.secret.0.as_ref())
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        encode_function(node, buf)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        decode_aggregate(name, buf)
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        encode_aggregate(node, buf)
    }
}

/// The logical plan codec of every node: Ballista's, with the mediator's functions as
/// [`PhysicalCodec`] sends them. The mediator itself sends physical plans (planned on the
/// domain node); a logical plan decoded here reads a dataset only through a node that
/// lists and decrypts its files, which the scheduler cannot.
#[derive(Debug, Default)]
pub struct LogicalCodec {
    secret: NodeSecret,
    ballista: BallistaLogicalExtensionCodec,
}

impl LogicalCodec {
    /// The codec of a node that holds the pseudonym secret.
    pub fn with_secret(secret: Secret) -> LogicalCodec {
        LogicalCodec {
            secret: NodeSecret(Some(secret)),
            ballista: BallistaLogicalExtensionCodec::default(),
        }
    }

    /// The codec of a node that holds no secret.
    pub fn without_secret() -> LogicalCodec {
        LogicalCodec::default()
    }
}

impl LogicalExtensionCodec for LogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        self.ballista.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.ballista.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &datafusion::common::TableReference,
        schema: datafusion::arrow::datatypes::SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn datafusion::catalog::TableProvider>> {
        self.ballista
            .try_decode_table_provider(buf, table_ref, schema, ctx)
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &datafusion::common::TableReference,
        node: Arc<dyn datafusion::catalog::TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        self.ballista
            .try_encode_table_provider(table_ref, node, buf)
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn datafusion::datasource::file_format::FileFormatFactory>> {
        self.ballista.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn datafusion::datasource::file_format::FileFormatFactory>,
    ) -> Result<()> {
        self.ballista.try_encode_file_format(buf, node)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        decode_function(name, buf, self.secret.0.as_ref())
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        encode_function(node, buf)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        decode_aggregate(name, buf)
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        encode_aggregate(node, buf)
    }
}

/// A scan of one dataset version's file, named so that the node that runs it reads the
/// file through its own dataset keys: DataFusion's serialization of the scan below it
/// keeps everything but the encryption options, which decoding restores from the name.
#[derive(Debug)]
pub struct DatasetScanExec {
    dataset: String,
    version: i64,
    input: Arc<dyn ExecutionPlan>,
}

impl DatasetScanExec {
    /// `input`, a Parquet scan, with the encryption options of `dataset` version
    /// `version` restored, and the dataset keys of `ctx`'s node as its decryption (a node
    /// without them, the scheduler, can pass the scan on but not read it).
    fn attach(
        dataset: String,
        version: i64,
        input: Arc<dyn ExecutionPlan>,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let exec = input.downcast_ref::<DataSourceExec>().ok_or_else(|| {
            DataFusionError::Internal("a dataset scan over something else than a file scan".into())
        })?;
        let (config, parquet) =
            exec.downcast_to_file_source::<ParquetSource>()
                .ok_or_else(|| {
                    DataFusionError::Internal(
                        "a dataset scan of something else than Parquet".into(),
                    )
                })?;
        let mut options = parquet.table_parquet_options().clone();
        options.crypto = crate::atrest::scan_crypto(&dataset, version);
        let mut source = parquet.clone().with_table_parquet_options(options);
        if let Ok(keys) = ctx
            .runtime_env()
            .parquet_encryption_factory(crate::atrest::FACTORY_ID)
        {
            source = source.with_encryption_factory(keys);
        }
        let config = FileScanConfigBuilder::from(config.clone())
            .with_source(Arc::new(source))
            .build();
        let input: Arc<dyn ExecutionPlan> = DataSourceExec::from_data_source(config);
        Ok(Arc::new(DatasetScanExec {
            dataset,
            version,
            input,
        }))
    }
}

impl DisplayAs for DatasetScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DatasetScanExec: dataset={}, version={}",
            self.dataset, self.version
        )
    }
}

impl ExecutionPlan for DatasetScanExec {
    fn name(&self) -> &str {
        "DatasetScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let [input] = <[Arc<dyn ExecutionPlan>; 1]>::try_from(children).map_err(|_| {
            DataFusionError::Internal("a dataset scan takes exactly one input".into())
        })?;
        Ok(Arc::new(DatasetScanExec {
            dataset: self.dataset.clone(),
            version: self.version,
            input,
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }
}

/// `plan` with every Parquet scan of a dataset version under a [`DatasetScanExec`]: the
/// form in which the mediator's plans leave the domain node.
pub fn wrap_scans(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let named = node
            .downcast_ref::<DataSourceExec>()
            .and_then(|exec| exec.downcast_to_file_source::<ParquetSource>())
            .and_then(|(_, parquet)| {
                crate::atrest::scanned_version(&parquet.table_parquet_options().crypto)
            });
        Ok(match named {
            Some((dataset, version)) => Transformed::yes(Arc::new(DatasetScanExec {
                dataset,
                version,
                input: node,
            }) as Arc<dyn ExecutionPlan>),
            None => Transformed::no(node),
        })
    })
    .map(|t| t.data)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use datafusion::arrow::array::{Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::datasource::MemTable;
    use datafusion::logical_expr::{cast, col};
    use datafusion::prelude::SessionContext;
    use datafusion_proto::logical_plan::AsLogicalPlan;
    use datafusion_proto::physical_plan::AsExecutionPlan;
    use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
    use sandbox_core::Suite;

    const SECRET: [u8; 32] = *b"the domain's pseudonym secret!!!";

    fn secret() -> Secret {
        Secret::new(Suite::Standard, SECRET)
    }

    /// The expressions the views use over `id`: keyed pseudonyms, masks and prefixes,
    /// some in total form.
    fn shown() -> Vec<datafusion::logical_expr::Expr> {
        let id = || cast(col("id"), DataType::Utf8);
        vec![
            Desensitizer::KeyedHash
                .udf(Some(&secret()))
                .call(vec![id()])
                .alias("pseudonym"),
            Total::wrap(Arc::new(
                Desensitizer::Mask {
                    prefix: 3,
                    suffix: 4,
                }
                .udf(Some(&secret())),
            ))
            .call(vec![id()])
            .alias("masked"),
            Desensitizer::Prefix { length: 6 }
                .udf(Some(&secret()))
                .call(vec![id()])
                .alias("region"),
            Total::wrap(builtin("upper").unwrap())
                .call(vec![id()])
                .alias("upper"),
            GuardHash::Row
                .udf(Some(guard_key()))
                .call(vec![
                    GuardHash::Unit.udf(Some(guard_key())).call(vec![id()]),
                ])
                .alias("guard"),
        ]
    }

    fn guard_key() -> GuardKey {
        GuardKey::derive(&secret())
    }

    /// A session over a table of identity numbers, and the plan that shows them as the
    /// views do.
    async fn plan() -> (SessionContext, LogicalPlan) {
        let ctx = SessionContext::new();
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, true)]));
        let ids = StringArray::from(vec![
            Some("11010519491231002X"),
            None,
            Some("440524188001010014"),
        ]);
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(ids)]).unwrap();
        ctx.register_table(
            "t",
            Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap()),
        )
        .unwrap();
        let plan = ctx
            .table("t")
            .await
            .unwrap()
            .select(shown())
            .unwrap()
            .into_optimized_plan()
            .unwrap();
        (ctx, plan)
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    fn assert_no_secret(bytes: &[u8]) {
        let s = secret();
        assert!(!contains(bytes, &SECRET), "the secret in the encoded plan");
        assert!(!contains(bytes, hex::encode(SECRET).as_bytes()));
        // Nor a key derived from it (the functions' identity is one).
        for derived in [
            s.derive_16("sandbox desensitization function"),
            guard_key().bytes(),
        ] {
            assert!(!contains(bytes, &derived));
            assert!(!contains(bytes, hex::encode(derived).as_bytes()));
        }
    }

    async fn run(ctx: &SessionContext, plan: Arc<dyn ExecutionPlan>) -> Result<Vec<RecordBatch>> {
        datafusion::physical_plan::collect(plan, ctx.task_ctx()).await
    }

    #[tokio::test]
    async fn a_physical_plan_travels_with_parameters_and_never_the_secret() {
        let (ctx, logical) = plan().await;
        let physical = ctx.state().create_physical_plan(&logical).await.unwrap();
        let expected = run(&ctx, Arc::clone(&physical)).await.unwrap();

        let codec = PhysicalCodec::with_secret(secret());
        let node = PhysicalPlanNode::try_from_physical_plan(physical, &codec).unwrap();
        let mut bytes = Vec::new();
        node.try_encode(&mut bytes).unwrap();
        assert_no_secret(&bytes);
        assert!(contains(&bytes, b"keyed_hash"));
        assert!(contains(&bytes, b"guard_hash"));

        // An executor (the secret from its own key source) computes what the domain node
        // would have.
        let decoded = PhysicalPlanNode::try_decode(&bytes).unwrap();
        let executor = decoded
            .try_into_physical_plan(&ctx.task_ctx(), &PhysicalCodec::with_secret(secret()))
            .unwrap();
        assert_eq!(run(&ctx, executor).await.unwrap(), expected);

        // The scheduler decodes it too, but cannot evaluate a keyed pseudonym.
        let scheduler = decoded
            .try_into_physical_plan(&ctx.task_ctx(), &PhysicalCodec::without_secret())
            .unwrap();
        let e = run(&ctx, scheduler).await.unwrap_err().to_string();
        assert!(e.contains("domain's secret"), "{e}");

        // A node with another secret computes other pseudonyms: nothing of the secret
        // travelled.
        let other = decoded
            .try_into_physical_plan(
                &ctx.task_ctx(),
                &PhysicalCodec::with_secret(Secret::new(Suite::Standard, [7; 32])),
            )
            .unwrap();
        let got = run(&ctx, other).await.unwrap();
        assert_ne!(got[0].column(0), expected[0].column(0));
        assert_eq!(got[0].column(1), expected[0].column(1));
    }

    #[tokio::test]
    async fn a_logical_plan_travels_with_parameters_and_never_the_secret() {
        let ctx = SessionContext::new();
        let values = datafusion::logical_expr::LogicalPlanBuilder::values(vec![vec![
            datafusion::logical_expr::lit("11010519491231002X"),
        ]])
        .unwrap()
        .project(vec![col("column1").alias("id")])
        .unwrap()
        .project(shown())
        .unwrap()
        .build()
        .unwrap();
        let codec = LogicalCodec::with_secret(secret());
        let node = LogicalPlanNode::try_from_logical_plan(&values, &codec).unwrap();
        let mut bytes = Vec::new();
        node.try_encode(&mut bytes).unwrap();
        assert_no_secret(&bytes);
        assert!(contains(&bytes, b"keyed_hash"));
        let decoded = LogicalPlanNode::try_decode(&bytes)
            .unwrap()
            .try_into_logical_plan(&ctx.task_ctx(), &LogicalCodec::with_secret(secret()))
            .unwrap();
        let local = ctx
            .execute_logical_plan(values)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let remote = ctx
            .execute_logical_plan(decoded)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        assert_eq!(local, remote);
        let pseudonym = remote[0]
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .value(0)
            .to_string();
        assert_eq!(
            pseudonym,
            crate::views::keyed_hash(&secret(), "11010519491231002X")
        );
        // Decoded where no secret is, the plan cannot be evaluated.
        let blind = LogicalPlanNode::try_decode(&bytes)
            .unwrap()
            .try_into_logical_plan(&ctx.task_ctx(), &LogicalCodec::without_secret())
            .unwrap();
        let e = ctx
            .execute_logical_plan(blind)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("domain's secret"), "{e}");
    }

    #[test]
    fn an_unknown_function_or_node_is_refused() {
        assert!(decode_function("x", b"Snot json", None).is_err());
        assert!(decode_function("x", b"", None).is_err());
        assert!(decode_function("x", br#"S{"function":"arithmetic","op":"<<"}"#, None).is_err());
        assert!(
            decode_function(
                "x",
                br#"S{"function":"total","inner":"no_such_function","definition":null}"#,
                None
            )
            .is_err()
        );
    }
}
