//! Desensitized views: what a query sees of a dataset (QQHR Art. 5, 10; SYS Art. 10).
//!
//! Every dataset in a scenario is registered as a view: the scenario's columns, each
//! passed through its policy's desensitization. The mediator's own aggregate reads the
//! same expressions, so what the module plans against and what is computed agree, and a
//! raw value of a desensitized column is never reachable by SQL.

use std::sync::Arc;

use arrow::array::{Array, StringArray};
use arrow::datatypes::DataType;
use datafusion::common::{Column, DataFusionError, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility, cast,
    col, lit,
};
use sandbox_core::Secret;
use sandbox_policies::{ColumnPolicy, Desensitize, Policy, Stored};

/// A desensitization function over text, applied value by value (nulls stay null): a
/// type with its parameters, so that a plan sent to a cluster carries the parameters and
/// each node rebuilds the function ([`crate::codec`]). The keyed pseudonym's secret is
/// never a parameter: a node holds it from its own key source, or cannot evaluate it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Desensitizer {
    /// The MAC of the value under the domain's pseudonym secret ([`keyed_hash`]).
    KeyedHash,
    /// `***` over all but `prefix` leading and `suffix` trailing characters ([`mask`]).
    Mask {
        /// Characters kept at the start.
        prefix: usize,
        /// Characters kept at the end.
        suffix: usize,
    },
    /// The first `length` characters.
    Prefix {
        /// Characters kept.
        length: usize,
    },
}

impl Desensitizer {
    /// The function's name in plans.
    pub fn name(&self) -> &'static str {
        match self {
            Desensitizer::KeyedHash => "sandbox_keyed_hash",
            Desensitizer::Mask { .. } => "sandbox_mask",
            Desensitizer::Prefix { .. } => "sandbox_prefix",
        }
    }

    /// The function, evaluated with `secret` (a keyed pseudonym without one fails when it
    /// is evaluated: the scheduler of a cluster holds none).
    pub fn udf(self, secret: Option<&Secret>) -> ScalarUDF {
        ScalarUDF::new_from_impl(DesensitizeUdf {
            secret_id: secret.map(|s| s.derive_16("sandbox desensitization function")),
            secret: secret.cloned(),
            signature: Signature::exact(vec![DataType::Utf8], Volatility::Immutable),
            kind: self,
        })
    }

    fn apply(&self, secret: Option<&Secret>, value: &str) -> datafusion::error::Result<String> {
        Ok(match self {
            Desensitizer::KeyedHash => {
                let secret = secret.ok_or_else(|| {
                    DataFusionError::Execution(
                        "a keyed pseudonym is computed only where the domain's secret is".into(),
                    )
                })?;
                keyed_hash(secret, value)
            }
            Desensitizer::Mask { prefix, suffix } => mask(value, *prefix, *suffix),
            Desensitizer::Prefix { length } => value.chars().take(*length).collect(),
        })
    }
}

/// A [`Desensitizer`] as a DataFusion scalar function.
#[derive(Debug)]
pub struct DesensitizeUdf {
    kind: Desensitizer,
    secret: Option<Secret>,
    /// Which secret (a key derived from it, never the secret): two functions are one only
    /// under the same secret.
    secret_id: Option<[u8; 16]>,
    signature: Signature,
}

impl DesensitizeUdf {
    /// What the function does, with its parameters.
    pub fn kind(&self) -> &Desensitizer {
        &self.kind
    }
}

impl PartialEq for DesensitizeUdf {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.secret_id == other.secret_id
    }
}

impl Eq for DesensitizeUdf {}

impl std::hash::Hash for DesensitizeUdf {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
        self.secret_id.hash(state);
    }
}

impl ScalarUDFImpl for DesensitizeUdf {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let input = arrays
            .first()
            .and_then(|a| a.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| DataFusionError::Internal("desensitization input is not text".into()))?;
        let out: StringArray = input
            .iter()
            .map(|v| {
                v.map(|v| self.kind.apply(self.secret.as_ref(), v))
                    .transpose()
            })
            .collect::<datafusion::error::Result<_>>()?;
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// The MAC of a value under the domain's pseudonym secret (HMAC-SHA256, or HMAC-SM3 in
/// the `gm` suite), hex-encoded.
pub fn keyed_hash(secret: &Secret, value: &str) -> String {
    hex::encode(secret.mac(value.as_bytes()))
}

/// `***` over all but `prefix` leading and `suffix` trailing characters.
pub fn mask(value: &str, prefix: usize, suffix: usize) -> String {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < prefix || i + suffix >= n {
                *c
            } else {
                '*'
            }
        })
        .collect()
}

/// The expression a view uses for `column` of a version registered under `policy`, over
/// the version's stored file (whose type of the column is `data_type`), named as the
/// column: the desensitization of a column stored raw, the stored value of one stored
/// desensitized ([`Policy::stored`]). Every read of a dataset's columns goes through it.
pub fn view_expr(
    policy: &Policy,
    column: &ColumnPolicy,
    data_type: &DataType,
    secret: &Secret,
) -> Expr {
    match policy.stored(&column.name) {
        Stored::Desensitized => col(Column::new_unqualified(column.name.clone())),
        Stored::Raw | Stored::Not => desensitized(column, data_type, secret),
    }
}

/// A raw column desensitized as its policy says, named as the column: what a view shows
/// of it, and what ingest stores of it under `store_desensitized`.
pub fn desensitized(policy: &ColumnPolicy, data_type: &DataType, secret: &Secret) -> Expr {
    let name = policy.name.clone();
    let c = col(Column::new_unqualified(name.clone()));
    let e = match &policy.desensitize {
        None => return c,
        Some(Desensitize::KeyedHash) => Desensitizer::KeyedHash
            .udf(Some(secret))
            .call(vec![cast(c, DataType::Utf8)]),
        Some(Desensitize::Mask {
            keep_prefix,
            keep_suffix,
        }) => Desensitizer::Mask {
            prefix: *keep_prefix as usize,
            suffix: *keep_suffix as usize,
        }
        .udf(Some(secret))
        .call(vec![cast(c, DataType::Utf8)]),
        Some(Desensitize::Prefix { length }) => Desensitizer::Prefix {
            length: *length as usize,
        }
        .udf(Some(secret))
        .call(vec![cast(c, DataType::Utf8)]),
        Some(Desensitize::Band { width }) => cast(
            datafusion::functions::math::expr_fn::floor(cast(c, DataType::Float64) / lit(*width))
                * lit(*width),
            data_type.clone(),
        ),
        Some(Desensitize::TruncateDate { to }) => cast(
            datafusion::functions::datetime::expr_fn::date_trunc(lit(to.as_str()), c),
            data_type.clone(),
        ),
        Some(Desensitize::Suppress) => cast(lit(ScalarValue::Null), data_type.clone()),
    };
    e.alias(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_keeps_prefix_and_suffix() {
        assert_eq!(mask("13812345678", 3, 4), "138****5678");
        assert_eq!(mask("abc", 3, 4), "abc");
        assert_eq!(mask("abcdef", 0, 0), "******");
        assert_eq!(mask("区域代码", 1, 1), "区**码");
    }

    #[test]
    fn keyed_hash_depends_on_the_secret() {
        use sandbox_core::Suite;
        let one = Secret::new(Suite::Standard, [1; 32]);
        let a = keyed_hash(&one, "11010519491231002X");
        let b = keyed_hash(&Secret::new(Suite::Standard, [2; 32]), "11010519491231002X");
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(a, keyed_hash(&one, "11010519491231002X"));
        // The gm suite's pseudonyms are HMAC-SM3: another value under the same secret.
        let gm = keyed_hash(&Secret::new(Suite::Gm, [1; 32]), "11010519491231002X");
        assert_eq!(gm.len(), 64);
        assert_ne!(gm, a);
    }
}
