//! PostgreSQL behind the store's statements: a connection whose `execute`, `insert`,
//! `query_row` and `rows` take the same SQL, [`Arg`]s and row readers as SQLite's.
//!
//! The store is synchronous (its callers hold a connection for a transaction and run on
//! the blocking pool or their own threads), tokio-postgres is not: each connection's I/O
//! task runs on one small runtime of the store's own (`sandbox-pg`, one thread), and a
//! statement is a future of the client that the calling thread blocks on. That thread may
//! be a worker of another runtime (the server's), which it blocks as a SQLite statement
//! does; it never blocks the thread that drives the socket, so no statement waits on
//! itself.
//!
//! The SQL is the store's, written for SQLite; [`translate`] makes PostgreSQL's of it:
//! `?N` parameters become `$N`, `INSERT OR IGNORE` becomes `INSERT ... ON CONFLICT DO
//! NOTHING`. Types line up by the schema: integers are `BIGINT`, reals `DOUBLE
//! PRECISION`, text `TEXT`, bytes `BYTEA`; a value is bound as the type the server infers
//! for its parameter (an integer bound to a `DOUBLE PRECISION` is converted, a text to a
//! `BIGINT` is refused as a type error).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::OnceLock;

use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use crate::db::{Arg, DbError, OptionalExt, Row, Value};
use crate::{Begin, Result};

/// The advisory lock every writer holds: exclusively ([`Begin::Write`]) or shared
/// ([`Begin::Shared`]); the key is "SANDBOX" and 1.
const WRITE_LOCK: i64 = 0x5341_4e44_424f_5801;

/// The advisory lock migrations hold.
const MIGRATION_LOCK: i64 = 0x5341_4e44_424f_5802;

/// The PostgreSQL schema as SQLite's stands at version 27: the baseline a PostgreSQL store
/// starts from (later migrations numbered alike in both), run by the schema's owner.
pub(crate) const BASELINE: &str = include_str!("postgres/0027_baseline.sql");

/// The runtime that drives every PostgreSQL connection's socket.
pub(crate) fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<std::io::Result<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("sandbox-pg")
                .enable_all()
                .build()
        })
        .as_ref()
        .map_err(|e| {
            crate::DomainError::Internal(format!("the PostgreSQL client's runtime: {e}")).into()
        })
}

/// Runs a client future to its end on the calling thread.
fn wait<T>(
    f: impl std::future::Future<Output = std::result::Result<T, tokio_postgres::Error>>,
) -> Result<T> {
    Ok(futures::executor::block_on(f).map_err(DbError::from)?)
}

/// A connection to PostgreSQL, with the statements it prepared (by their translated SQL).
pub(crate) struct PgConn {
    client: tokio_postgres::Client,
    prepared: RefCell<HashMap<String, tokio_postgres::Statement>>,
    in_transaction: Cell<bool>,
}

impl PgConn {
    /// Connects with a libpq connection string (`host=/run/pg user=sandbox_app
    /// dbname=sandbox`, or a `postgresql://` URL).
    pub(crate) fn connect(conninfo: &str) -> Result<PgConn> {
        let rt = runtime()?;
        let conninfo = conninfo.to_owned();
        let connected =
            futures::executor::block_on(rt.spawn(async move {
                tokio_postgres::connect(&conninfo, tokio_postgres::NoTls).await
            }))
            .map_err(|e| crate::DomainError::Internal(format!("connecting to PostgreSQL: {e}")))?;
        let (client, connection) = connected.map_err(DbError::from)?;
        // The socket's task ends when the client is dropped or the server goes; a statement
        // then fails with the client's "connection closed".
        rt.spawn(connection);
        Ok(PgConn {
            client,
            prepared: RefCell::default(),
            in_transaction: Cell::new(false),
        })
    }

    /// Whether the connection is gone (the server restarted, say): a pool drops it.
    pub(crate) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Whether a transaction this connection began is open.
    pub(crate) fn in_transaction(&self) -> bool {
        self.in_transaction.get()
    }

    /// Begins a transaction: a writer takes the domain's write lock (exclusive, or shared
    /// for a writer that locks its own rows) in the same round trip; a reader takes one
    /// snapshot (`REPEATABLE READ`, read-only).
    pub(crate) fn begin(&self, mode: Begin) -> Result<()> {
        let sql = match mode {
            Begin::Write => format!("BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})"),
            Begin::Shared => format!("BEGIN; SELECT pg_advisory_xact_lock_shared({WRITE_LOCK})"),
            Begin::Read => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY".to_owned(),
        };
        self.in_transaction.set(true);
        let begun = self.batch(&sql);
        if begun.is_err() {
            let _ = self.rollback();
        }
        begun
    }

    /// Commits (a failed transaction's `COMMIT` rolls it back: either way it ends).
    pub(crate) fn commit(&self) -> Result<()> {
        let done = self.batch("COMMIT");
        self.in_transaction.set(false);
        done
    }

    /// Rolls back.
    pub(crate) fn rollback(&self) -> Result<()> {
        let done = self.batch("ROLLBACK");
        self.in_transaction.set(false);
        done
    }

    /// Refuses a connection a server must not serve with: a superuser, or the owner of
    /// the schema (either could switch the append-only triggers off), or a store whose
    /// schema is not this build's.
    pub(crate) fn check_serving(&self, connection: &str) -> Result<()> {
        self.check_role(connection, None)?;
        let who = crate::metadata::redact(connection);
        let version: Option<i64> = self
            .query_row("SELECT version FROM sandbox_schema", &[], |r| r.get(0))
            .map(Some)
            .or_else(|e| match e {
                crate::Error::Db(DbError::NoRows) => Ok(None),
                crate::Error::Db(DbError::Postgres(ref p))
                    if p.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) =>
                {
                    Ok(None)
                }
                e => Err(e),
            })?;
        match version {
            Some(v) if v == crate::SCHEMA_VERSION => Ok(()),
            Some(v) if v > crate::SCHEMA_VERSION => Err(crate::DomainError::Conflict(format!(
                "metadata schema version {v} is newer than this build's {}",
                crate::SCHEMA_VERSION
            ))
            .into()),
            Some(v) => Err(crate::DomainError::Conflict(format!(
                "the metadata schema at `{who}` is at version {v} and this build needs {}: run `sandbox migrate` with the schema owner's connection",
                crate::SCHEMA_VERSION
            ))
            .into()),
            None => Err(crate::DomainError::NotFound(format!(
                "no Sandbox store in the database of `{who}` (`sandbox init --metadata` makes one)"
            ))
            .into()),
        }
    }

    /// This connection's role: its name, and whether it is a superuser.
    pub(crate) fn role(&self) -> Result<(String, bool)> {
        self.query_row(
            "SELECT rolname::TEXT, rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// Refuses serving over this connection (`connection`, for the message) when its role
    /// is a superuser, owns the schema, or is `owner` (the schema owner's role, before
    /// the schema exists): any of them could switch the append-only rules off.
    pub(crate) fn check_role(&self, connection: &str, owner: Option<&str>) -> Result<()> {
        let (role, superuser) = self.role()?;
        let owns: bool = self.query_row(
            "SELECT COALESCE(bool_or(pg_has_role(current_user, tableowner, 'USAGE')), FALSE)
             FROM pg_tables WHERE schemaname = 'public' AND tablename = 'ledger'",
            &[],
            |r| r.get(0),
        )?;
        if superuser || owns || owner == Some(role.as_str()) {
            return Err(crate::DomainError::Forbidden(format!(
                "the metadata connection `{}` is {}: a server connects as a role that owns nothing, so that it can neither switch off the append-only rules nor truncate (migrations run as the owner with `sandbox migrate`)",
                crate::metadata::redact(connection),
                if superuser { "a superuser's" } else { "the schema owner's" }
            ))
            .into());
        }
        Ok(())
    }

    /// Whether the database holds a Sandbox store (of any version).
    pub(crate) fn has_store(&self) -> Result<bool> {
        self.query_row(
            "SELECT to_regclass('sandbox_schema') IS NOT NULL",
            &[],
            |r| r.get(0),
        )
    }

    /// Takes the migration lock until the transaction it begins ends.
    pub(crate) fn begin_migration(&self) -> Result<()> {
        self.in_transaction.set(true);
        let begun = self.batch(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"
        ));
        if begun.is_err() {
            let _ = self.rollback();
        }
        begun
    }

    /// Runs SQL that takes no parameters and gives no rows (DDL, `BEGIN`, `COMMIT`).
    pub(crate) fn batch(&self, sql: &str) -> Result<()> {
        wait(self.client.batch_execute(sql))
    }

    fn statement(&self, sql: &str) -> Result<tokio_postgres::Statement> {
        if let Some(s) = self.prepared.borrow().get(sql) {
            return Ok(s.clone());
        }
        let translated = translate(sql);
        let stmt = wait(self.client.prepare(&translated))?;
        self.prepared
            .borrow_mut()
            .insert(sql.to_owned(), stmt.clone());
        Ok(stmt)
    }

    fn query(&self, sql: &str, args: &[&dyn Arg]) -> Result<Vec<tokio_postgres::Row>> {
        let stmt = self.statement(sql)?;
        let binds: Vec<Bind<'_>> = args.iter().map(|a| Bind(a.value())).collect();
        let refs: Vec<&(dyn ToSql + Sync)> =
            binds.iter().map(|b| b as &(dyn ToSql + Sync)).collect();
        wait(self.client.query(&stmt, &refs))
    }

    /// Runs a statement; the number of rows it changed.
    pub(crate) fn execute(&self, sql: &str, args: &[&dyn Arg]) -> Result<usize> {
        let stmt = self.statement(sql)?;
        let binds: Vec<Bind<'_>> = args.iter().map(|a| Bind(a.value())).collect();
        let refs: Vec<&(dyn ToSql + Sync)> =
            binds.iter().map(|b| b as &(dyn ToSql + Sync)).collect();
        let n = wait(self.client.execute(&stmt, &refs))?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Runs an `INSERT` into a table keyed by `id`; the new row's id (`RETURNING id`).
    pub(crate) fn insert(&self, sql: &str, args: &[&dyn Arg]) -> Result<i64> {
        let rows = self.query(&format!("{sql} RETURNING id"), args)?;
        let row = rows.first().ok_or(DbError::NoRows)?;
        Row::Postgres(row).get(0)
    }

    /// Every row of a statement through `f`, in order.
    pub(crate) fn rows<T>(
        &self,
        sql: &str,
        args: &[&dyn Arg],
        mut f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.query(sql, args)?
            .iter()
            .map(|r| f(&Row::Postgres(r)))
            .collect()
    }

    /// The first row of a statement through `f`; [`DbError::NoRows`] when there is none.
    pub(crate) fn query_row<T>(
        &self,
        sql: &str,
        args: &[&dyn Arg],
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        let rows = self.query(sql, args)?;
        match rows.first() {
            Some(r) => f(&Row::Postgres(r)),
            None => Err(DbError::NoRows.into()),
        }
    }
}

/// A value bound as the type the server inferred for its parameter.
#[derive(Debug)]
struct Bind<'a>(Value<'a>);

impl ToSql for Bind<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match (self.0, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Int(v), &Type::INT8) => v.to_sql(ty, out),
            (Value::Int(v), &Type::INT4) => i32::try_from(v)?.to_sql(ty, out),
            (Value::Int(v), &Type::INT2) => i16::try_from(v)?.to_sql(ty, out),
            (Value::Int(v), &Type::BOOL) => (v != 0).to_sql(ty, out),
            #[allow(clippy::cast_precision_loss)]
            (Value::Int(v), &Type::FLOAT8) => (v as f64).to_sql(ty, out),
            (Value::Real(v), &Type::FLOAT8) => v.to_sql(ty, out),
            (Value::Text(v), &Type::TEXT | &Type::VARCHAR | &Type::BPCHAR | &Type::NAME) => {
                v.to_sql(ty, out)
            }
            (Value::Blob(v), &Type::BYTEA) => v.to_sql(ty, out),
            (v, ty) => Err(format!("cannot bind {v:?} as a parameter of type {ty}").into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// PostgreSQL's SQL for a statement of the store: `?N` becomes `$N` (outside string
/// literals and quoted names) and `INSERT OR IGNORE INTO` becomes `INSERT INTO` with
/// `ON CONFLICT DO NOTHING` at the end.
pub(crate) fn translate(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 24);
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    // A doubled quote inside a literal is the quote itself.
                    if chars.peek() == Some(&q) {
                        if let Some(d) = chars.next() {
                            out.push(d);
                        }
                    } else {
                        quote = None;
                    }
                }
            }
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    out.push(c);
                }
                '?' if chars.peek().is_some_and(char::is_ascii_digit) => out.push('$'),
                _ => out.push(c),
            },
        }
    }
    const OR_IGNORE: &str = "INSERT OR IGNORE INTO";
    if let Some(at) = out.find(OR_IGNORE) {
        out.replace_range(at..at + OR_IGNORE.len(), "INSERT INTO");
        let end = out.trim_end().trim_end_matches(';').len();
        out.truncate(end);
        out.push_str(" ON CONFLICT DO NOTHING");
    }
    out
}

/// Brings a PostgreSQL store to this build's schema over the schema owner's connection, in
/// one transaction under the migration lock: the baseline on an empty database, then
/// every later migration it has not seen. Returns whether the database was empty.
pub(crate) fn migrate(c: &PgConn) -> Result<bool> {
    c.begin_migration()?;
    let migrated = (|| -> Result<bool> {
        c.batch("CREATE TABLE IF NOT EXISTS sandbox_schema (version BIGINT NOT NULL)")?;
        let current: Option<i64> = c
            .query_row("SELECT version FROM sandbox_schema", &[], |r| r.get(0))
            .optional()?;
        let fresh = current.is_none();
        let mut version = match current {
            Some(v) => v,
            None => {
                c.batch(BASELINE)?;
                c.execute(
                    "INSERT INTO sandbox_schema (version) VALUES (?1)",
                    crate::db::args![crate::schema::POSTGRES_BASELINE_VERSION],
                )?;
                crate::schema::POSTGRES_BASELINE_VERSION
            }
        };
        if version > crate::SCHEMA_VERSION {
            return Err(crate::DomainError::Conflict(format!(
                "metadata schema version {version} is newer than this build's {}",
                crate::SCHEMA_VERSION
            ))
            .into());
        }
        for (i, sql) in crate::schema::POSTGRES_MIGRATIONS.iter().enumerate() {
            let next = crate::schema::POSTGRES_BASELINE_VERSION + 1 + i as i64;
            if next <= version {
                continue;
            }
            c.batch(sql)?;
            version = next;
        }
        c.execute(
            "UPDATE sandbox_schema SET version = ?1",
            crate::db::args![version],
        )?;
        Ok(fresh)
    })();
    match migrated {
        Ok(fresh) => {
            c.commit()?;
            Ok(fresh)
        }
        Err(e) => {
            let _ = c.rollback();
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{OptionalExt, args};

    #[test]
    fn parameters_and_or_ignore_are_translated_outside_literals() {
        assert_eq!(
            translate("SELECT a FROM t WHERE b = ?1 AND c = '?2' AND \"d?3\" = ?12"),
            "SELECT a FROM t WHERE b = $1 AND c = '?2' AND \"d?3\" = $12"
        );
        assert_eq!(translate("SELECT 'it''s ?1', ?2"), "SELECT 'it''s ?1', $2");
        assert_eq!(
            translate("INSERT OR IGNORE INTO t (a, b)\n VALUES (?1, ?2)"),
            "INSERT INTO t (a, b)\n VALUES ($1, $2) ON CONFLICT DO NOTHING"
        );
    }

    /// A throwaway PostgreSQL in a temporary folder (the cluster stopped before the folder
    /// goes: fields drop in order).
    struct Server {
        pg: crate::throwaway::Throwaway,
        _dir: tempfile::TempDir,
    }

    impl Server {
        fn start() -> Server {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
            let pg = crate::throwaway::Throwaway::start(&dir.path().join("pg"))
                .unwrap_or_else(|e| panic!("{e}"));
            Server { pg, _dir: dir }
        }
    }

    impl std::ops::Deref for Server {
        type Target = crate::throwaway::Throwaway;
        fn deref(&self) -> &crate::throwaway::Throwaway {
            &self.pg
        }
    }

    #[test]
    fn a_new_store_refuses_the_owners_role_for_its_servers_and_makes_nothing() -> Result<()> {
        let server = Server::start();
        let dir = tempfile::tempdir()?;
        let layout = crate::Layout::new(dir.path());
        let master: std::sync::Arc<dyn crate::master::KeyProvider> = std::sync::Arc::new(
            crate::master::LocalKey::from_bytes(sandbox_core::Suite::Standard, &[1u8; 32])
                .unwrap_or_else(|_| unreachable!()),
        );
        // The servers' connection as the schema's owner.
        let refused =
            crate::create_on_postgres(&layout, master.clone(), &server.owner, &server.owner);
        assert!(
            matches!(&refused, Err(crate::Error::Domain(sandbox_core::Error::Forbidden(m))) if m.contains("the schema owner's")),
            "{refused:?}"
        );
        assert!(!crate::metadata::Metadata::exists(&layout));
        assert!(!PgConn::connect(&server.owner)?.has_store()?);
        // A database that holds a store already is refused before anything changes.
        migrate(&PgConn::connect(&server.owner)?)?;
        let again = crate::create_on_postgres(&layout, master, &server.owner, &server.app);
        assert!(
            matches!(
                &again,
                Err(crate::Error::Domain(sandbox_core::Error::Conflict(_)))
            ),
            "{again:?}"
        );
        assert!(!crate::metadata::Metadata::exists(&layout));
        Ok(())
    }

    #[test]
    fn statements_bind_and_read_the_store_types_on_a_real_server() -> Result<()> {
        let server = Server::start();
        let c = PgConn::connect(&server.owner)?;
        c.batch(
            "CREATE TABLE t (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                 name TEXT NOT NULL UNIQUE, n BIGINT, x DOUBLE PRECISION, b BYTEA)",
        )?;
        let id = c.insert(
            "INSERT INTO t (name, n, x, b) VALUES (?1, ?2, ?3, ?4)",
            args!["a", 7i64, 0.25f64, vec![1u8, 2, 3]],
        )?;
        assert_eq!(id, 1);
        // NULLs of every type, and an integer into a double.
        let id = c.insert(
            "INSERT INTO t (name, n, x, b) VALUES (?1, ?2, ?3, ?4)",
            args!["b", None::<i64>, 3i64, None::<Vec<u8>>],
        )?;
        assert_eq!(id, 2);
        // Ignored on conflict, as SQLite's INSERT OR IGNORE.
        let n = c.execute(
            "INSERT OR IGNORE INTO t (name, n) VALUES (?1, ?2)",
            args!["a", 9i64],
        )?;
        assert_eq!(n, 0);
        type Stored = (i64, String, Option<i64>, f64, Option<Vec<u8>>);
        let rows: Vec<Stored> = c.rows(
            "SELECT id, name, n, x, b FROM t WHERE id >= ?1 ORDER BY id",
            args![1i64],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
        assert_eq!(
            rows,
            vec![
                (1, "a".into(), Some(7), 0.25, Some(vec![1, 2, 3])),
                (2, "b".into(), None, 3.0, None),
            ]
        );
        // A parameter used twice, and NULL for "any".
        let named: Vec<String> = c.rows(
            "SELECT name FROM t WHERE ?1::TEXT IS NULL OR name = ?1 ORDER BY id",
            args![None::<String>],
            |r| r.get(0),
        )?;
        assert_eq!(named, ["a", "b"]);
        // No row: NoRows, which `optional` makes None.
        let none: Option<String> = c
            .query_row("SELECT name FROM t WHERE id = ?1", args![99i64], |r| {
                r.get(0)
            })
            .optional()?;
        assert_eq!(none, None);
        // Reading a column as another type is a typed error, not a panic.
        let wrong = c.query_row("SELECT name FROM t WHERE id = 1", args![], |r| {
            r.get::<i64>(0)
        });
        assert!(
            matches!(wrong, Err(crate::Error::Db(DbError::Type { index: 0, .. }))),
            "{wrong:?}"
        );
        // So is binding text where the server wants an integer.
        let wrong = c.execute("UPDATE t SET n = ?1 WHERE id = 1", args!["seven"]);
        assert!(
            matches!(wrong, Err(crate::Error::Db(DbError::Postgres(_)))),
            "{wrong:?}"
        );
        // The statement cache keys on the store's SQL; a changed table re-prepares.
        let n: i64 = c.query_row("SELECT COUNT(*) FROM t", args![], |r| r.get(0))?;
        assert_eq!(n, 2);
        Ok(())
    }

    /// The refusal a statement met, as PostgreSQL words it.
    fn refusal(r: Result<usize>) -> String {
        match r {
            Err(crate::Error::Db(DbError::Postgres(e))) => e
                .as_db_error()
                .map(|d| d.message().to_owned())
                .unwrap_or_else(|| e.to_string()),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn the_baseline_holds_the_append_only_rules_against_the_servers_role() -> Result<()> {
        let server = Server::start();
        PgConn::connect(&server.owner)?.batch(BASELINE)?;
        let app = PgConn::connect(&server.app)?;
        app.execute(
            "INSERT INTO principals (name, role, created_at) VALUES (?1, 'developer', ?2)",
            args!["dev", "t"],
        )?;
        let scenario = app.insert(
            "INSERT INTO scenarios (name, developer, spec_toml, status, epsilon_total, delta_total, created_at)
             VALUES ('s', 'dev', '', 'approved', ?1, 0, 't')",
            args![1.0f64],
        )?;
        let charge = |query: &str| -> Result<i64> {
            app.query_row(
                "INSERT INTO ledger (scenario_id, query_id, epsilon, delta, created_at)
                 VALUES (?1, ?2, 0.25, 0, 't') RETURNING seq",
                args![scenario, query],
                |r| r.get(0),
            )
        };
        let seq = charge("q")?;
        assert_eq!(charge("q2")?, seq + 1);
        app.execute(
            "INSERT INTO audit_events (seq, ts, actor, action, subject, details, prev_hash, hash)
             VALUES (1, 't', 'dev', 'a', 's', '{}', '', 'h')",
            args![],
        )?;
        // Rows the rules keep as written.
        for (sql, refused) in [
            (
                "UPDATE ledger SET epsilon = 0",
                "the privacy-budget ledger is append-only",
            ),
            (
                "DELETE FROM ledger",
                "the privacy-budget ledger is append-only",
            ),
            (
                "UPDATE audit_events SET actor = 'x'",
                "audit events are append-only",
            ),
            ("DELETE FROM audit_events", "audit events are append-only"),
            (
                "DELETE FROM scenarios",
                "scenarios are revoked, not deleted",
            ),
            (
                "INSERT INTO meta (key, value) VALUES ('audit_retention_years', '2')",
                "audit retention is at least 3 years",
            ),
        ] {
            assert_eq!(refusal(app.execute(sql, args![])), refused, "{sql}");
        }
        // The budget's CHECK, and a revocation that stays.
        assert!(
            refusal(app.execute("UPDATE scenarios SET epsilon_spent = 2", args![]))
                .contains("check constraint")
        );
        app.execute("UPDATE scenarios SET status = 'revoked'", args![])?;
        assert_eq!(
            refusal(app.execute("UPDATE scenarios SET status = 'approved'", args![])),
            "a revoked scenario stays revoked"
        );
        // The server's role can neither truncate nor switch a rule off; the owner's
        // TRUNCATE meets the statement trigger.
        assert_eq!(
            refusal(app.execute("TRUNCATE ledger", args![])),
            "permission denied for table ledger"
        );
        assert_eq!(
            refusal(app.execute(
                "ALTER TABLE ledger DISABLE TRIGGER ledger_no_update",
                args![]
            )),
            "must be owner of table ledger"
        );
        let owner = PgConn::connect(&server.owner)?;
        assert_eq!(
            refusal(owner.execute("TRUNCATE audit_events", args![])),
            "audit events are append-only"
        );
        let rows: i64 = app.query_row("SELECT COUNT(*) FROM ledger", args![], |r| r.get(0))?;
        assert_eq!(rows, 2);
        // The queue's order of insertion, as SQLite's rowid gave it.
        let n: i64 = app.query_row(
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_name = 'jobs' AND column_name = 'rowid'",
            args![],
            |r| r.get(0),
        )?;
        assert_eq!(n, 1);
        Ok(())
    }

    #[test]
    fn migrations_give_every_table_and_column_of_sqlites_schema_at_its_version() -> Result<()> {
        assert_eq!(
            crate::schema::MIGRATIONS.len(),
            crate::schema::POSTGRES_BASELINE_VERSION as usize
                + crate::schema::POSTGRES_MIGRATIONS.len(),
            "every migration has its PostgreSQL form"
        );
        let sqlite = rusqlite::Connection::open_in_memory()?;
        for sql in crate::schema::MIGRATIONS {
            sqlite.execute_batch(sql)?;
        }
        let mut expected = std::collections::BTreeSet::new();
        let mut tables = sqlite.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )?;
        for table in tables.query_map([], |r| r.get::<_, String>(0))? {
            let table = table?;
            let mut columns = sqlite.prepare("SELECT name FROM pragma_table_info(?1)")?;
            for column in columns.query_map([&table], |r| r.get::<_, String>(0))? {
                expected.insert((table.clone(), column?));
            }
        }
        let server = Server::start();
        let owner = PgConn::connect(&server.owner)?;
        assert!(migrate(&owner)?, "an empty database");
        assert!(!migrate(&owner)?, "migrated once");
        let found: std::collections::BTreeSet<(String, String)> = owner
            .rows(
                "SELECT table_name::TEXT, column_name::TEXT FROM information_schema.columns
                 WHERE table_schema = 'public'",
                args![],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .into_iter()
            .collect();
        let missing: Vec<_> = expected.difference(&found).collect();
        assert!(
            missing.is_empty(),
            "not in the PostgreSQL baseline: {missing:?}"
        );
        // PostgreSQL's own: the queue's order of insertion and the audit lock row.
        let extra: Vec<_> = found.difference(&expected).collect();
        assert_eq!(
            extra,
            [
                &("audit_lock".to_string(), "id".to_string()),
                &("jobs".to_string(), "rowid".to_string()),
                &("sandbox_schema".to_string(), "version".to_string())
            ]
        );
        Ok(())
    }
}
