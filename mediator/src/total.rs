//! Total forms of the allowed scalar functions: whether an accepted query fails must never
//! depend on the data.
//!
//! A function that fails on some input (`abs` of the smallest integer, `power` of zero to a
//! negative exponent, `substr` with a negative length read from a column, ...) would make a query
//! over raw rows fail only when some row holds that value: a one-bit answer that no noise
//! covers and no budget pays for, and with a filter it singles a person out. The policy
//! pass refuses the expressions that can fail whatever the function (a `CAST` of raw
//! values, a division by anything but a positive literal); every allowed scalar function
//! that reads raw rows is wrapped here in [`Total`], whose value is NULL where the
//! function's would be an error. [`totalize`] is the one place that wraps them; the policy
//! pass calls it on everything it accepts, so every plan the mediator builds from an
//! accepted query runs total forms.
//!
//! The row-by-row retry costs time only on a batch where the function fails, so a query's
//! running time still depends on the data there; a module has no clock, but a job's
//! wall-clock deadline does. Functions with a native total form are the way to close that.

use std::any::Any;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, new_null_array};
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    ColumnarValue, Expr, Operator, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature,
};

/// A scalar function whose failure on a row is that row's NULL.
///
/// On a batch the function evaluates as it is; only when that fails is the batch evaluated
/// again row by row, each failing row giving NULL. Names, signature and types are the
/// function's own, so labels and plans read as the query wrote them.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Total {
    inner: Arc<ScalarUDF>,
}

impl Total {
    /// `inner`, made total. A function already total is returned as it is.
    pub fn wrap(inner: Arc<ScalarUDF>) -> Arc<ScalarUDF> {
        if (inner.inner().as_ref() as &dyn Any).is::<Total>() {
            return inner;
        }
        Arc::new(ScalarUDF::new_from_impl(Total { inner }))
    }

    /// The function made total.
    pub fn function(&self) -> &Arc<ScalarUDF> {
        &self.inner
    }

    /// Evaluates row `row` alone; an error gives NULL.
    fn one_row(&self, args: &ScalarFunctionArgs, row: usize) -> Result<ArrayRef> {
        let one = args
            .args
            .iter()
            .map(|a| match a {
                ColumnarValue::Array(a) => ColumnarValue::Array(a.slice(row, 1)),
                ColumnarValue::Scalar(s) => ColumnarValue::Scalar(s.clone()),
            })
            .collect();
        let result = self.inner.invoke_with_args(ScalarFunctionArgs {
            args: one,
            arg_fields: args.arg_fields.clone(),
            number_rows: 1,
            return_field: Arc::clone(&args.return_field),
            config_options: Arc::clone(&args.config_options),
        });
        match result.and_then(|v| v.into_array(1)) {
            Ok(a) if a.len() == 1 && a.data_type() == args.return_field.data_type() => Ok(a),
            _ => Ok(new_null_array(args.return_field.data_type(), 1)),
        }
    }
}

impl ScalarUDFImpl for Total {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        self.inner.inner().schema_name(args)
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        // NULL where the function fails: the result is nullable whatever the function says.
        let field = self.inner.return_field_from_args(args)?;
        Ok(Arc::new(field.as_ref().clone().with_nullable(true)))
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn is_strict(&self) -> bool {
        self.inner.inner().is_strict()
    }

    fn short_circuits(&self) -> bool {
        self.inner.short_circuits()
    }

    // `simplify` is left at its default on purpose: a function's own simplification may
    // rewrite the call into other calls that would not be wrapped.

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let first = self.inner.invoke_with_args(ScalarFunctionArgs {
            args: args.args.clone(),
            arg_fields: args.arg_fields.clone(),
            number_rows: args.number_rows,
            return_field: Arc::clone(&args.return_field),
            config_options: Arc::clone(&args.config_options),
        });
        if let Ok(value) = first {
            return Ok(value);
        }
        let all_scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        if all_scalar {
            // Literals only: the same for every row, so not a property of the data.
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from(
                args.return_field.data_type(),
            )?));
        }
        let rows = (0..args.number_rows)
            .map(|row| self.one_row(&args, row))
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&dyn Array> = rows.iter().map(|a| a.as_ref()).collect();
        if refs.is_empty() {
            return Ok(ColumnarValue::Array(new_null_array(
                args.return_field.data_type(),
                0,
            )));
        }
        Ok(ColumnarValue::Array(datafusion::arrow::compute::concat(
            &refs,
        )?))
    }
}

/// An arithmetic operator (`+ - * / %`) as a scalar function, evaluated exactly as
/// DataFusion evaluates the operator on its (already coerced) operands, so that [`Total`]
/// can make it total: a date plus an interval past the end of the calendar, a decimal past
/// its precision, an integer divided by a zero read from the data.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Arithmetic {
    op: Operator,
    name: String,
    signature: Signature,
}

impl Arithmetic {
    /// The operator `op` as a function.
    pub fn udf(op: Operator) -> Arc<ScalarUDF> {
        Arc::new(ScalarUDF::new_from_impl(Arithmetic {
            op,
            name: format!("sandbox_arithmetic({op})"),
            signature: Signature::user_defined(datafusion::logical_expr::Volatility::Immutable),
        }))
    }

    /// The operator.
    pub fn op(&self) -> Operator {
        self.op
    }

    fn is_arithmetic(op: &Operator) -> bool {
        matches!(
            op,
            Operator::Plus
                | Operator::Minus
                | Operator::Multiply
                | Operator::Divide
                | Operator::Modulo
        )
    }
}

impl ScalarUDFImpl for Arithmetic {
    fn name(&self) -> &str {
        &self.name
    }

    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        // Read as the operator it is.
        match args {
            [l, r] => Ok(format!(
                "{} {} {}",
                l.schema_name(),
                self.op,
                r.schema_name()
            )),
            _ => Ok(self.name.clone()),
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [l, r] => datafusion::logical_expr::type_coercion::binary::BinaryTypeCoercer::new(
                l, &self.op, r,
            )
            .get_result_type(),
            _ => datafusion::common::plan_err!("{} takes two operands", self.name),
        }
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        // The operands are coerced as the operator's would be (an integer beside a float
        // becomes a float, ...), so the kernel sees the types it expects.
        match arg_types {
            [l, r] => {
                let (l, r) =
                    datafusion::logical_expr::type_coercion::binary::BinaryTypeCoercer::new(
                        l, &self.op, r,
                    )
                    .get_input_types()?;
                Ok(vec![l, r])
            }
            _ => datafusion::common::plan_err!("{} takes two operands", self.name),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use datafusion::arrow::datatypes::{Field, Schema};
        use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
        use datafusion::physical_expr::PhysicalExpr;
        use datafusion::physical_expr::expressions::{BinaryExpr, Column};
        let [l, r] = args.args.as_slice() else {
            return datafusion::common::exec_err!("{} takes two operands", self.name);
        };
        let n = args.number_rows;
        let (la, ra) = (l.to_array(n)?, r.to_array(n)?);
        let schema = Arc::new(Schema::new(vec![
            Field::new("l", la.data_type().clone(), true),
            Field::new("r", ra.data_type().clone(), true),
        ]));
        let batch = RecordBatch::try_new_with_options(
            schema,
            vec![la, ra],
            &RecordBatchOptions::new().with_row_count(Some(n)),
        )?;
        let expr = BinaryExpr::new(
            Arc::new(Column::new("l", 0)),
            self.op,
            Arc::new(Column::new("r", 1)),
        );
        let value = expr.evaluate(&batch)?;
        if matches!(l, ColumnarValue::Scalar(_)) && matches!(r, ColumnarValue::Scalar(_)) {
            // Scalars in, a scalar out.
            let a = value.into_array(n)?;
            if a.is_empty() {
                return Ok(ColumnarValue::Scalar(ScalarValue::try_from(a.data_type())?));
            }
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&a, 0)?));
        }
        Ok(value)
    }
}

/// `e` with every scalar function call replaced by its [`Total`] form, and every
/// arithmetic operator by the [`Total`] form of its [`Arithmetic`] function.
pub fn totalize(e: Expr) -> Result<Expr> {
    e.transform_up(|node| match node {
        // Literals alone fail, if at all, whatever the data: left as they are.
        Expr::BinaryExpr(datafusion::logical_expr::BinaryExpr { left, op, right })
            if Arithmetic::is_arithmetic(&op)
                && (reads_columns(&left) || reads_columns(&right)) =>
        {
            Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction {
                func: Total::wrap(Arithmetic::udf(op)),
                args: vec![*left, *right],
            })))
        }
        // `-x` fails on the smallest integer: in total form it is `0 - x` (which wraps, as
        // subtraction does) and NULL where even that fails.
        Expr::Negative(x) if reads_columns(&x) => {
            Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction {
                func: Total::wrap(Arithmetic::udf(Operator::Minus)),
                args: vec![datafusion::logical_expr::lit(0i64), *x],
            })))
        }
        Expr::ScalarFunction(ScalarFunction { func, args }) => {
            let wrapped = Total::wrap(Arc::clone(&func));
            let changed = !Arc::ptr_eq(&wrapped, &func);
            let node = Expr::ScalarFunction(ScalarFunction {
                func: wrapped,
                args,
            });
            Ok(if changed {
                Transformed::yes(node)
            } else {
                Transformed::no(node)
            })
        }
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
}

/// Whether `e` reads a column (rather than literals only).
fn reads_columns(e: &Expr) -> bool {
    e.exists(|e| Ok(matches!(e, Expr::Column(_))))
        .unwrap_or(true)
}

/// The analyzer rule that turns every `CAST` left in a plan into `TRY_CAST`.
///
/// The policy pass refuses a module's own `CAST` over raw rows; what remains are the casts
/// DataFusion's type coercion inserts (a string argument of `coalesce` beside an integer, an
/// `Int64` scale of `round` narrowed to `Int32`), which fail on some values only. Run after
/// coercion, this rule makes each of them NULL where it would fail. It is registered on
/// every session the mediator reads a dataset with ([`session`]).
#[derive(Debug, Default)]
pub struct TotalCasts;

impl datafusion::optimizer::AnalyzerRule for TotalCasts {
    fn analyze(
        &self,
        plan: datafusion::logical_expr::LogicalPlan,
        _config: &datafusion::config::ConfigOptions,
    ) -> Result<datafusion::logical_expr::LogicalPlan> {
        use datafusion::logical_expr::{Cast, TryCast};
        plan.transform_up_with_subqueries(|node| {
            let node = node.map_expressions(|e| {
                e.transform_up(|e| match e {
                    Expr::Cast(Cast { expr, field }) => {
                        Ok(Transformed::yes(Expr::TryCast(TryCast { expr, field })))
                    }
                    other => Ok(Transformed::no(other)),
                })
            })?;
            if node.transformed {
                let plan = node.data.recompute_schema()?;
                Ok(Transformed::yes(plan))
            } else {
                Ok(node)
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "sandbox_total_casts"
    }
}

/// A session for reading protected data: `config`, with [`TotalCasts`] after DataFusion's
/// own analyzer rules.
pub fn session(config: datafusion::prelude::SessionConfig) -> datafusion::prelude::SessionContext {
    session_in(config, Arc::default())
}

/// [`session`] in the runtime `env` (its memory pool, its spill directory, its
/// registries).
pub fn session_in(
    config: datafusion::prelude::SessionConfig,
    env: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
) -> datafusion::prelude::SessionContext {
    let ctx = datafusion::prelude::SessionContext::new_with_config_rt(config, env);
    ctx.add_analyzer_rule(Arc::new(TotalCasts));
    ctx
}
