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
    ColumnarValue, Expr, ScalarUDF, Volatility, cast, col, create_udf, lit,
};
use sandbox_core::Secret;
use sandbox_policies::{ColumnPolicy, Desensitize, Policy, Stored};

/// A scalar function over text, applied value by value (nulls stay null).
fn text_udf(name: &str, f: impl Fn(&str) -> String + Send + Sync + 'static) -> ScalarUDF {
    let fun = Arc::new(
        move |args: &[ColumnarValue]| -> datafusion::error::Result<ColumnarValue> {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let input = arrays
                .first()
                .and_then(|a| a.as_any().downcast_ref::<StringArray>())
                .ok_or_else(|| {
                    DataFusionError::Internal("desensitization input is not text".into())
                })?;
            let out: StringArray = input.iter().map(|v| v.map(&f)).collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        },
    );
    create_udf(
        name,
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        fun,
    )
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
        Some(Desensitize::KeyedHash) => {
            let secret = secret.clone();
            text_udf("sandbox_keyed_hash", move |v| keyed_hash(&secret, v))
                .call(vec![cast(c, DataType::Utf8)])
        }
        Some(Desensitize::Mask {
            keep_prefix,
            keep_suffix,
        }) => {
            let (p, s) = (*keep_prefix as usize, *keep_suffix as usize);
            text_udf("sandbox_mask", move |v| mask(v, p, s)).call(vec![cast(c, DataType::Utf8)])
        }
        Some(Desensitize::Prefix { length }) => {
            let n = *length as usize;
            text_udf("sandbox_prefix", move |v| v.chars().take(n).collect())
                .call(vec![cast(c, DataType::Utf8)])
        }
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
