//! For tests and benchmarks (feature `testing`; no server path uses it): direct SQL on a
//! PostgreSQL metadata store, to inspect it or tamper with it as someone with access to
//! the database would (SQLite's tests open the file with rusqlite themselves), and
//! throwaway PostgreSQL clusters.

use crate::Result;
use crate::db::{Arg, Row, Value};
use crate::pg::PgConn;

/// A value bound to, or read from, a statement.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    /// `NULL`.
    Null,
    /// An integer.
    Int(i64),
    /// A real.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

impl Arg for RawValue {
    fn value(&self) -> Value<'_> {
        match self {
            RawValue::Null => Value::Null,
            RawValue::Int(v) => Value::Int(*v),
            RawValue::Real(v) => Value::Real(*v),
            RawValue::Text(v) => Value::Text(v),
            RawValue::Blob(v) => Value::Blob(v),
        }
    }
}

fn raw(value: Value<'_>) -> RawValue {
    match value {
        Value::Null => RawValue::Null,
        Value::Int(v) => RawValue::Int(v),
        Value::Real(v) => RawValue::Real(v),
        Value::Text(v) => RawValue::Text(v.to_owned()),
        Value::Blob(v) => RawValue::Blob(v.to_vec()),
    }
}

/// A connection to a PostgreSQL store that runs any SQL (`?N` parameters, as the store's).
pub struct RawPg(PgConn);

impl RawPg {
    /// Connects with a connection string.
    pub fn connect(connection: &str) -> Result<RawPg> {
        Ok(RawPg(PgConn::connect(connection)?))
    }

    /// Every row of `sql`, each as its values.
    pub fn rows(&self, sql: &str, args: &[RawValue]) -> Result<Vec<Vec<RawValue>>> {
        let args: Vec<&dyn Arg> = args.iter().map(|a| a as &dyn Arg).collect();
        self.0.rows(sql, &args, |r| {
            let Row::Postgres(row) = r else {
                return Ok(Vec::new());
            };
            (0..row.len())
                .map(|i| crate::db::pg_cell(row, i).map(raw))
                .collect()
        })
    }

    /// Runs `sql`; the rows it changed.
    pub fn execute(&self, sql: &str, args: &[RawValue]) -> Result<usize> {
        let args: Vec<&dyn Arg> = args.iter().map(|a| a as &dyn Arg).collect();
        self.0.execute(sql, &args)
    }

    /// Runs statements that take no parameters.
    pub fn batch(&self, sql: &str) -> Result<()> {
        self.0.batch(sql)
    }
}

pub use crate::throwaway::Throwaway;
