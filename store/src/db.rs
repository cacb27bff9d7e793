//! The store's one door to its database: the values a statement binds ([`Arg`]), the
//! columns a row gives back ([`Column`], [`Row`]) and the statements of [`Conn`]
//! (`execute`, `insert`, `query_row`, `rows`), in terms of this crate only.
//!
//! The modules of the store speak to the database through these and nothing else, so that
//! the backend behind a [`Conn`] is a matter of this module and [`crate::Conn`]'s
//! constructors: no table's code names the client library.

use crate::{Backend, Conn, Result};

/// A value bound to a statement's parameter, or read from a row's column.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    /// SQL `NULL`.
    Null,
    /// A 64-bit integer (every integer column).
    Int(i64),
    /// A double (every real column).
    Real(f64),
    /// Text.
    Text(&'a str),
    /// Bytes.
    Blob(&'a [u8]),
}

/// What a statement can bind: a value of one of the store's column types.
pub(crate) trait Arg {
    /// The value to bind.
    fn value(&self) -> Value<'_>;
}

macro_rules! int_arg {
    ($($t:ty),*) => {$(
        impl Arg for $t {
            fn value(&self) -> Value<'_> {
                Value::Int(i64::from(*self))
            }
        }
    )*};
}
int_arg!(i64, i32, u32, u16, u8, bool);

impl Arg for f64 {
    fn value(&self) -> Value<'_> {
        Value::Real(*self)
    }
}

impl Arg for str {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl Arg for String {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl Arg for [u8] {
    fn value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

impl<const N: usize> Arg for [u8; N] {
    fn value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

impl Arg for Vec<u8> {
    fn value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

impl<T: Arg + ?Sized> Arg for &T {
    fn value(&self) -> Value<'_> {
        (**self).value()
    }
}

impl<T: Arg> Arg for Option<T> {
    fn value(&self) -> Value<'_> {
        match self {
            Some(v) => v.value(),
            None => Value::Null,
        }
    }
}

/// The parameters of a statement, `?1`, `?2`, ... in order: `args![a, b, c]`.
macro_rules! args {
    () => {
        &[] as &[&dyn $crate::db::Arg]
    };
    ($($x:expr),+ $(,)?) => {
        &[$(&$x as &dyn $crate::db::Arg),+] as &[&dyn $crate::db::Arg]
    };
}
pub(crate) use args;

impl Value<'_> {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Int(_) => "an integer",
            Value::Real(_) => "a real",
            Value::Text(_) => "text",
            Value::Blob(_) => "bytes",
        }
    }
}

/// What a column can be read as.
pub(crate) trait Column: Sized {
    /// The type's name, for errors.
    const WHAT: &'static str;
    /// The value, or `None` when the column does not hold this type.
    fn from_value(value: Value<'_>) -> Option<Self>;
}

macro_rules! int_column {
    ($($t:ty),*) => {$(
        impl Column for $t {
            const WHAT: &'static str = stringify!($t);
            fn from_value(value: Value<'_>) -> Option<Self> {
                match value {
                    Value::Int(v) => <$t>::try_from(v).ok(),
                    _ => None,
                }
            }
        }
    )*};
}
int_column!(i64, i32, u32, u64, usize, u16, u8);

impl Column for bool {
    const WHAT: &'static str = "bool";
    fn from_value(value: Value<'_>) -> Option<Self> {
        match value {
            Value::Int(v) => Some(v != 0),
            _ => None,
        }
    }
}

impl Column for f64 {
    const WHAT: &'static str = "f64";
    fn from_value(value: Value<'_>) -> Option<Self> {
        match value {
            Value::Real(v) => Some(v),
            // SQLite keeps a real that is a whole number as given; both read back as f64.
            #[allow(clippy::cast_precision_loss)]
            Value::Int(v) => Some(v as f64),
            _ => None,
        }
    }
}

impl Column for String {
    const WHAT: &'static str = "text";
    fn from_value(value: Value<'_>) -> Option<Self> {
        match value {
            Value::Text(v) => Some(v.to_owned()),
            _ => None,
        }
    }
}

impl Column for Vec<u8> {
    const WHAT: &'static str = "bytes";
    fn from_value(value: Value<'_>) -> Option<Self> {
        match value {
            Value::Blob(v) => Some(v.to_vec()),
            _ => None,
        }
    }
}

impl<const N: usize> Column for [u8; N] {
    const WHAT: &'static str = "bytes of a fixed length";
    fn from_value(value: Value<'_>) -> Option<Self> {
        match value {
            Value::Blob(v) => v.try_into().ok(),
            _ => None,
        }
    }
}

impl<T: Column> Column for Option<T> {
    const WHAT: &'static str = T::WHAT;
    fn from_value(value: Value<'_>) -> Option<Self> {
        match value {
            Value::Null => Some(None),
            c => T::from_value(c).map(Some),
        }
    }
}

/// A database failure of the store's own making or the backend's.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite failed.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed.
    #[error("{}", postgres_message(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// A statement that must give one row gave none.
    #[error("no row")]
    NoRows,
    /// A column held another type than the store reads it as.
    #[error("column {index}: {found} where {expected} was expected")]
    Type {
        /// The column's index.
        index: usize,
        /// What was read.
        expected: &'static str,
        /// What was there.
        found: &'static str,
    },
}

/// What PostgreSQL said, with its error code (the client's own words are "db error").
fn postgres_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => {
            let mut m = format!("PostgreSQL: {} ({})", d.message(), d.code().code());
            if let Some(detail) = d.detail() {
                m.push_str(": ");
                m.push_str(detail);
            }
            m
        }
        None => match std::error::Error::source(e) {
            Some(source) => format!("PostgreSQL: {e}: {source}"),
            None => format!("PostgreSQL: {e}"),
        },
    }
}

/// One row of a result.
pub(crate) enum Row<'a> {
    /// SQLite's.
    Sqlite(&'a rusqlite::Row<'a>),
    /// PostgreSQL's.
    Postgres(&'a tokio_postgres::Row),
}

impl Row<'_> {
    /// Column `index` (from 0) as a `T`.
    pub(crate) fn get<T: Column>(&self, index: usize) -> Result<T> {
        use rusqlite::types::ValueRef;
        let inner = match self {
            Row::Sqlite(r) => r,
            Row::Postgres(r) => return read(pg_cell(r, index)?, index),
        };
        let value = match inner.get_ref(index).map_err(DbError::from)? {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(v) => Value::Int(v),
            ValueRef::Real(v) => Value::Real(v),
            ValueRef::Text(v) => {
                Value::Text(std::str::from_utf8(v).map_err(|_| DbError::Type {
                    index,
                    expected: T::WHAT,
                    found: "text that is not UTF-8",
                })?)
            }
            ValueRef::Blob(v) => Value::Blob(v),
        };
        read(value, index)
    }
}

/// Column `index`'s value as a `T`, or the type error that says what it held.
pub(crate) fn read<T: Column>(value: Value<'_>, index: usize) -> Result<T> {
    T::from_value(value).ok_or_else(|| {
        DbError::Type {
            index,
            expected: T::WHAT,
            found: value.kind(),
        }
        .into()
    })
}

/// `Option` from a statement that may give no row.
pub(crate) trait OptionalExt<T> {
    /// `None` for no row; other errors stay errors.
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExt<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(crate::Error::Db(DbError::NoRows)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Binds a value for SQLite.
struct Bind<'a>(&'a dyn Arg);

impl rusqlite::ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self.0.value() {
            Value::Null => ValueRef::Null,
            Value::Int(v) => ValueRef::Integer(v),
            Value::Real(v) => ValueRef::Real(v),
            Value::Text(v) => ValueRef::Text(v.as_bytes()),
            Value::Blob(v) => ValueRef::Blob(v),
        }))
    }
}

fn bound<'a>(args: &'a [&'a dyn Arg]) -> Vec<Bind<'a>> {
    args.iter().map(|a| Bind(*a)).collect()
}

fn sqlite_rows<T>(
    stmt: &mut rusqlite::Statement<'_>,
    args: &[&dyn Arg],
    mut f: impl FnMut(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let binds = bound(args);
    let mut rows = stmt
        .query(rusqlite::params_from_iter(binds.iter()))
        .map_err(DbError::from)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(DbError::from)? {
        out.push(f(&Row::Sqlite(r))?);
    }
    Ok(out)
}

impl Conn {
    /// Runs a statement; the number of rows it changed.
    pub(crate) fn execute(&self, sql: &str, args: &[&dyn Arg]) -> Result<usize> {
        let c = match &self.c {
            Backend::Sqlite(c) => c,
            Backend::Postgres(c) => return c.execute(sql, args),
        };
        let binds = bound(args);
        Ok(c.prepare_cached(sql)
            .and_then(|mut s| s.execute(rusqlite::params_from_iter(binds.iter())))
            .map_err(DbError::from)?)
    }

    /// Runs an `INSERT` into a table whose key is `id INTEGER PRIMARY KEY`; the new row's
    /// id.
    pub(crate) fn insert(&self, sql: &str, args: &[&dyn Arg]) -> Result<i64> {
        match &self.c {
            Backend::Sqlite(c) => {
                self.execute(sql, args)?;
                Ok(c.last_insert_rowid())
            }
            Backend::Postgres(c) => c.insert(sql, args),
        }
    }

    /// The first row of a statement through `f`; [`DbError::NoRows`] when there is none
    /// (see [`OptionalExt::optional`]).
    pub(crate) fn query_row<T>(
        &self,
        sql: &str,
        args: &[&dyn Arg],
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        let c = match &self.c {
            Backend::Sqlite(c) => c,
            Backend::Postgres(c) => return c.query_row(sql, args, f),
        };
        let mut stmt = c.prepare_cached(sql).map_err(DbError::from)?;
        let binds = bound(args);
        let mut rows = stmt
            .query(rusqlite::params_from_iter(binds.iter()))
            .map_err(DbError::from)?;
        match rows.next().map_err(DbError::from)? {
            Some(r) => f(&Row::Sqlite(r)),
            None => Err(DbError::NoRows.into()),
        }
    }

    /// Every row of a statement through `f`, in order.
    pub(crate) fn rows<T>(
        &self,
        sql: &str,
        args: &[&dyn Arg],
        f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let c = match &self.c {
            Backend::Sqlite(c) => c,
            Backend::Postgres(c) => return c.rows(sql, args, f),
        };
        let mut stmt = c.prepare_cached(sql).map_err(DbError::from)?;
        sqlite_rows(&mut stmt, args, f)
    }
}

/// Column `index` of a row PostgreSQL gave, as the store's [`Value`].
pub(crate) fn pg_cell(row: &tokio_postgres::Row, index: usize) -> Result<Value<'_>> {
    let ty = row
        .columns()
        .get(index)
        .ok_or(DbError::Type {
            index,
            expected: "a column",
            found: "no such column",
        })?
        .type_()
        .clone();
    let cell = match ty {
        tokio_postgres::types::Type::INT8 => row
            .try_get::<_, Option<i64>>(index)
            .map(|v| v.map_or(Value::Null, Value::Int)),
        tokio_postgres::types::Type::INT4 => row
            .try_get::<_, Option<i32>>(index)
            .map(|v| v.map_or(Value::Null, |v| Value::Int(v.into()))),
        tokio_postgres::types::Type::INT2 => row
            .try_get::<_, Option<i16>>(index)
            .map(|v| v.map_or(Value::Null, |v| Value::Int(v.into()))),
        tokio_postgres::types::Type::BOOL => row
            .try_get::<_, Option<bool>>(index)
            .map(|v| v.map_or(Value::Null, |v| Value::Int(v.into()))),
        tokio_postgres::types::Type::FLOAT8 => row
            .try_get::<_, Option<f64>>(index)
            .map(|v| v.map_or(Value::Null, Value::Real)),
        tokio_postgres::types::Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(index)
            .map(|v| v.map_or(Value::Null, |v| Value::Real(v.into()))),
        tokio_postgres::types::Type::TEXT
        | tokio_postgres::types::Type::VARCHAR
        | tokio_postgres::types::Type::BPCHAR
        | tokio_postgres::types::Type::NAME => row
            .try_get::<_, Option<&str>>(index)
            .map(|v| v.map_or(Value::Null, Value::Text)),
        tokio_postgres::types::Type::BYTEA => row
            .try_get::<_, Option<&[u8]>>(index)
            .map(|v| v.map_or(Value::Null, Value::Blob)),
        other => {
            return Err(DbError::Type {
                index,
                expected: "a column of the store's types",
                found: leak_free_name(&other),
            }
            .into());
        }
    };
    Ok(cell.map_err(DbError::from)?)
}

/// A type the store does not read, named for an error (PostgreSQL's names of the usual
/// ones; others as "another type").
fn leak_free_name(ty: &tokio_postgres::types::Type) -> &'static str {
    match *ty {
        tokio_postgres::types::Type::NUMERIC => "numeric (cast a SUM of integers to BIGINT)",
        tokio_postgres::types::Type::TIMESTAMP | tokio_postgres::types::Type::TIMESTAMPTZ => {
            "a timestamp"
        }
        tokio_postgres::types::Type::JSON | tokio_postgres::types::Type::JSONB => "JSON",
        _ => "another type",
    }
}
