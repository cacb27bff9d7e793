//! The metadata store and the data directory.
//!
//! ```text
//! <data-dir>/sandbox.db                SQLite: principals, tokens, console sessions, catalog,
//!                                      scenarios, stops, modules, jobs, queries, ledger,
//!                                      outputs, reviews, products, audit log, meta
//! <data-dir>/domain/<dataset>/<v>/     Parquet files of a dataset version (written and read
//!                                      by the mediator only)
//! <data-dir>/modules/<sha256>.wasm     submitted modules
//! <data-dir>/staging/<job-id>/         candidate outputs
//! <data-dir>/products/<product-id>/    released files, manifest.json, manifest.sig
//! <data-dir>/keys/                     the domain's signing key and secret
//! ```
//!
//! **Architecture invariant:** every SQL statement of Sandbox is in this crate. The layers
//! above hold a [`Conn`] or a [`Tx`] and call the functions of the table they mean; none of
//! them sees SQLite. Every write that changes state records its audit event
//! ([`audit::append`]) in the same transaction.

#![forbid(unsafe_code)]

pub mod audit;
pub mod authz;
pub mod backup;
pub mod catalog;
pub mod consents;
pub mod crypto;
pub mod datakeys;
mod db;
pub mod gm;
pub mod incidents;
pub mod jobs;
pub mod keys;
pub mod ledger;
pub mod master;
pub mod meta;
pub mod metadata;
pub mod organisations;
pub mod outputs;
mod pg;
pub mod principals;
pub mod products;
pub mod queries;
pub mod reviews;
pub mod scenarios;
mod schema;
pub mod sessions;
pub mod settings;
pub mod signals;
pub mod stops;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(any(test, feature = "testing"))]
mod throwaway;
pub mod tokens;
pub mod versions;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

pub use db::DbError;
pub use schema::SCHEMA_VERSION;

/// What the store's functions fail with: a domain error, or one of the database's own.
/// Converts into [`sandbox_core::Error`] (the database's as [`sandbox_core::Error::Store`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A domain error (not found, a refusal, a verification failure, ...).
    #[error(transparent)]
    Domain(#[from] sandbox_core::Error),
    /// The database failed.
    #[error("store: {0}")]
    Db(#[from] DbError),
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Db(DbError::Sqlite(e))
    }
}

impl From<Error> for sandbox_core::Error {
    fn from(e: Error) -> sandbox_core::Error {
        match e {
            Error::Domain(e) => e,
            Error::Db(DbError::Sqlite(e)) => match Unwritable::of(&e) {
                Some(what) => {
                    sandbox_core::Error::Store(sandbox_core::StoreError::new(Unwritable {
                        what,
                        source: e,
                    }))
                }
                None => sandbox_core::Error::Store(sandbox_core::StoreError::new(e)),
            },
            Error::Db(e) => sandbox_core::Error::Store(sandbox_core::StoreError::new(e)),
        }
    }
}

/// A database failure that is the data directory's, said so: SQLite's own words ("disk
/// I/O error", "unable to open database file") do not tell an operator that the disk is
/// full or mounted read-only.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
struct Unwritable {
    what: &'static str,
    source: rusqlite::Error,
}

impl Unwritable {
    fn of(e: &rusqlite::Error) -> Option<&'static str> {
        use rusqlite::ErrorCode;
        match e.sqlite_error_code()? {
            ErrorCode::DiskFull => Some("the data directory's disk is full"),
            ErrorCode::SystemIoFailure => {
                Some("the data directory could not be written (its disk may be full or failing)")
            }
            ErrorCode::ReadOnly => Some("the data directory is read-only"),
            ErrorCode::CannotOpen => Some(
                "the metadata database cannot be opened (is the data directory read-only or missing?)",
            ),
            _ => None,
        }
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

/// `Result` with the store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) use sandbox_core::Error as DomainError;

/// File name of the metadata database inside a data directory.
pub const DB_FILE: &str = "sandbox.db";

/// Paths of a data directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Layout { root: root.into() }
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The SQLite file.
    pub fn db(&self) -> PathBuf {
        self.root.join(DB_FILE)
    }

    /// Folder of all dataset versions.
    pub fn domain(&self) -> PathBuf {
        self.root.join("domain")
    }

    /// Folder of one dataset version.
    pub fn dataset_version(&self, dataset: &str, version: i64) -> PathBuf {
        self.domain().join(dataset).join(version.to_string())
    }

    /// Folder of stored modules.
    pub fn modules(&self) -> PathBuf {
        self.root.join("modules")
    }

    /// Folder of staged outputs.
    pub fn staging(&self) -> PathBuf {
        self.root.join("staging")
    }

    /// Folder of released products.
    pub fn products(&self) -> PathBuf {
        self.root.join("products")
    }

    /// Folder of keys.
    pub fn keys(&self) -> PathBuf {
        self.root.join("keys")
    }

    /// Every folder the layout needs.
    pub fn folders(&self) -> Vec<PathBuf> {
        vec![
            self.domain(),
            self.modules(),
            self.staging(),
            self.products(),
            self.keys(),
        ]
    }
}

/// The database behind a [`Conn`].
pub(crate) enum Backend {
    /// The embedded default: `sandbox.db` in the data directory.
    Sqlite(Connection),
    /// A PostgreSQL server several Sandbox servers share (`metadata.toml`).
    Postgres(pg::PgConn),
}

/// How a transaction begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Begin {
    /// A writer that excludes every other writer until it ends, so that what it reads
    /// stays true until it commits (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: the domain's
    /// write lock, exclusive).
    Write,
    /// A writer that locks the rows it depends on itself (a charge locks its scenario):
    /// on SQLite as [`Begin::Write`]; on PostgreSQL it holds the domain's write lock
    /// shared, so such writers run beside each other, never beside a [`Begin::Write`].
    Shared,
    /// One snapshot for several reads.
    Read,
}

/// A connection to the metadata store. Reads go through it; writes through a [`Tx`].
pub struct Conn {
    c: Backend,
    layout: Layout,
    keys: Arc<keys::Keyring>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("store::Conn")
    }
}

impl Conn {
    /// The layout of the data directory this connection's store belongs to.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The domain's keys.
    pub fn keys(&self) -> &keys::Keyring {
        &self.keys
    }

    /// Opens a write transaction that excludes every other writer ([`Begin::Write`]):
    /// what it reads stays true until it commits. Dropped without [`Tx::commit`], it
    /// rolls back.
    pub fn write(&mut self) -> Result<Tx<'_>> {
        Tx::begin(self, Begin::Write)
    }

    /// Opens a read transaction: one snapshot for several reads.
    pub fn snapshot(&mut self) -> Result<Tx<'_>> {
        Tx::begin(self, Begin::Read)
    }

    /// Opens a write transaction for a writer whose store calls lock the rows they depend
    /// on (a charge its scenario, a claim its job `SKIP LOCKED`): such writers run beside
    /// each other on PostgreSQL, never beside a [`Conn::write`] ([`Begin::Shared`]).
    pub fn write_shared(&mut self) -> Result<Tx<'_>> {
        Tx::begin(self, Begin::Shared)
    }

    /// Whether no transaction is open on this connection.
    pub fn idle(&self) -> bool {
        match &self.c {
            Backend::Sqlite(c) => c.is_autocommit(),
            Backend::Postgres(c) => !c.in_transaction(),
        }
    }

    /// Whether the metadata store is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self.c, Backend::Postgres(_))
    }

    pub(crate) fn begin(&self, mode: Begin) -> Result<()> {
        match &self.c {
            Backend::Sqlite(c) => Ok(c.execute_batch(match mode {
                Begin::Write | Begin::Shared => "BEGIN IMMEDIATE",
                Begin::Read => "BEGIN DEFERRED",
            })?),
            Backend::Postgres(c) => c.begin(mode),
        }
    }

    pub(crate) fn commit(&self) -> Result<()> {
        match &self.c {
            Backend::Sqlite(c) => Ok(c.execute_batch("COMMIT")?),
            Backend::Postgres(c) => c.commit(),
        }
    }

    pub(crate) fn rollback(&self) -> Result<()> {
        match &self.c {
            Backend::Sqlite(c) => Ok(c.execute_batch("ROLLBACK")?),
            Backend::Postgres(c) => c.rollback(),
        }
    }

    /// Runs `sql`, a `SELECT ... FOR UPDATE` of the rows a [`Begin::Shared`] writer
    /// depends on, which PostgreSQL locks until the transaction ends; on SQLite, whose
    /// writers exclude each other already, nothing.
    pub(crate) fn lock(&self, sql: &str, args: &[&dyn db::Arg]) -> Result<()> {
        match &self.c {
            Backend::Sqlite(_) => Ok(()),
            Backend::Postgres(c) => c.execute(sql, args).map(drop),
        }
    }

    /// Whether commits wait for the disk (they do unless set otherwise for a while).
    pub(crate) fn set_synchronous(&self, synchronous: bool) -> Result<()> {
        match &self.c {
            Backend::Sqlite(c) => Ok(c.pragma_update(
                None,
                "synchronous",
                if synchronous { "FULL" } else { "NORMAL" },
            )?),
            Backend::Postgres(c) => c.batch(if synchronous {
                "SET synchronous_commit TO on"
            } else {
                "SET synchronous_commit TO off"
            }),
        }
    }

    /// The SQLite connection, for what only SQLite does (its migrations, its backups).
    pub(crate) fn sqlite(&self) -> Result<&Connection> {
        match &self.c {
            Backend::Sqlite(c) => Ok(c),
            Backend::Postgres(_) => Err(DomainError::Conflict(
                "this operation is the embedded SQLite store's; the metadata of this domain is in PostgreSQL".into(),
            )
            .into()),
        }
    }
}

/// A transaction on a [`Conn`]; every store function reads and writes through it as
/// through the connection (`&tx` is a `&Conn`). Dropped without [`Tx::commit`] (or
/// when the commit fails), it rolls back.
pub struct Tx<'c> {
    conn: &'c Conn,
}

impl<'c> Tx<'c> {
    pub(crate) fn begin(conn: &'c Conn, mode: Begin) -> Result<Tx<'c>> {
        conn.begin(mode)?;
        Ok(Tx { conn })
    }

    /// Commits.
    pub fn commit(self) -> Result<()> {
        self.conn.commit()
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if !self.conn.idle() {
            let _ = self.conn.rollback();
        }
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn
    }
}

/// The metadata store of one data directory: its layout and a pool of connections for
/// the hot query path (opening one costs about half a millisecond). Cheap to clone.
#[derive(Clone)]
pub struct Store {
    layout: Layout,
    keys: Arc<keys::Keyring>,
    pool: Arc<Mutex<Vec<Conn>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.layout.root())
            .finish()
    }
}

/// Connections kept open in a [`Store`]'s pool.
const POOLED_CONNECTIONS: usize = 8;

impl Store {
    /// The store of the data directory at `layout`; fails with a clear message when the
    /// directory holds none. Migrations run forward on the first connection.
    pub fn open(layout: Layout) -> Result<Store> {
        if !metadata::Metadata::exists(&layout) {
            return Err(missing(&layout));
        }
        let provider = master::provider(&layout)?;
        Store::open_with(layout, provider)
    }

    /// [`Store::open`], its secrets unwrapped by `provider` (a hardware security module or
    /// a key management service, say) rather than the key the data directory names.
    pub fn open_with(layout: Layout, provider: Arc<dyn master::KeyProvider>) -> Result<Store> {
        let keys = Arc::new(keys::Keyring::new(layout.clone(), provider)?);
        // Unwrapped now: a wrong key fails here, and a later rotation (which removes the
        // old key's files) cannot strand this process.
        keys.public_key()?;
        keys.pseudonym_secret()?;
        keys.database_key()?;
        drop(connect(&layout, &keys)?);
        Ok(Store {
            layout,
            keys,
            pool: Arc::default(),
        })
    }

    /// The data directory's layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The domain's keys.
    pub fn keys(&self) -> &keys::Keyring {
        &self.keys
    }

    /// A new connection.
    pub fn conn(&self) -> Result<Conn> {
        connect(&self.layout, &self.keys)
    }

    /// A connection from the pool (opened if none is free); it goes back on drop.
    pub fn pooled(&self) -> Result<Pooled> {
        let pooled = self
            .pool
            .lock()
            .map_err(|_| DomainError::Internal("connection pool poisoned".into()))?
            .pop();
        let conn = match pooled {
            Some(c) => c,
            None => connect(&self.layout, &self.keys)?,
        };
        Ok(Pooled {
            conn: Some(conn),
            pool: self.pool.clone(),
        })
    }
}

/// A connection borrowed from a [`Store`]'s pool; it goes back on drop unless a
/// transaction is left open or its PostgreSQL connection is gone.
pub struct Pooled {
    conn: Option<Conn>,
    pool: Arc<Mutex<Vec<Conn>>>,
}

impl std::ops::Deref for Pooled {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        // Present from creation until drop.
        self.conn
            .as_ref()
            .unwrap_or_else(|| unreachable!("pooled connection taken"))
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .unwrap_or_else(|| unreachable!("pooled connection taken"))
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && conn.idle()
            && !matches!(&conn.c, Backend::Postgres(c) if c.is_closed())
            && let Ok(mut pool) = self.pool.lock()
            && pool.len() < POOLED_CONNECTIONS
        {
            pool.push(conn);
        }
    }
}

fn missing(layout: &Layout) -> Error {
    DomainError::NotFound(format!(
        "no Sandbox data directory at {} (run `sandbox init {}`)",
        layout.root().display(),
        layout.root().display()
    ))
    .into()
}

/// Opens a connection to the metadata store with the settings every caller needs.
fn connect(layout: &Layout, keys: &Arc<keys::Keyring>) -> Result<Conn> {
    if let metadata::Metadata::Postgres { connection } = metadata::Metadata::of(layout)? {
        let c = pg::PgConn::connect(&connection)?;
        c.check_serving(&connection)?;
        return Ok(Conn {
            c: Backend::Postgres(c),
            layout: layout.clone(),
            keys: keys.clone(),
        });
    }
    let path = layout.db();
    if !path.exists() {
        return Err(missing(layout));
    }
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    unlock(&conn, keys)?;
    configure(&conn)?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(DomainError::Conflict(format!(
            "metadata schema version {version} is newer than this build's {SCHEMA_VERSION}"
        ))
        .into());
    }
    let conn = Conn {
        c: Backend::Sqlite(conn),
        layout: layout.clone(),
        keys: keys.clone(),
    };
    if version < SCHEMA_VERSION {
        // Forward migrations, each in its own transaction.
        schema::migrate(&conn)?;
    }
    Ok(conn)
}

/// Gives a new connection the metadata database's key (SQLCipher, a raw 256-bit key: no
/// derivation per connection), before any other statement; then reads the database, so
/// that a wrong key, or a key for a database in the clear, fails here and says so.
fn unlock(conn: &Connection, keys: &keys::Keyring) -> Result<()> {
    let keyed = give_key(conn, keys)?;
    match conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)) {
        Ok(_) => Ok(()),
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) => {
            Err(DomainError::Verify(match keyed {
                true => format!(
                    "the metadata database {} does not open with its key (encrypted by another, or in the clear: `sandbox key protect` encrypts one in the clear)",
                    keys.layout().db().display()
                ),
                false => format!(
                    "the metadata database {} is encrypted, and this data directory has no key for it",
                    keys.layout().db().display()
                ),
            })
            .into())
        }
        Err(e) => Err(e.into()),
    }
}

/// Gives a connection the database key `keys` holds, if any, before any other statement
/// (the one place the key pragma is written); returns whether there was one.
fn give_key(conn: &Connection, keys: &keys::Keyring) -> Result<bool> {
    let Some(key) = keys.database_key()? else {
        return Ok(false);
    };
    let pragma = zeroize::Zeroizing::new(format!("PRAGMA key = \"x'{}'\";", hex::encode(key)));
    conn.execute_batch(&pragma)?;
    Ok(true)
}

/// Whether the metadata database at `layout` is in the clear (made before the database
/// was encrypted, or left so by an encryption a crash interrupted).
pub fn database_in_clear(layout: &Layout) -> Result<bool> {
    let conn = Connection::open_with_flags(layout.db(), OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    match conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(_) => Ok(true),
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Encrypts a metadata database in the clear under a new database key wrapped by
/// `provider` (the key made first if it is not there yet): the database is exported into
/// an encrypted copy (`sqlcipher_export`, the schema version carried over), synced, moved
/// over the original (the commit point), and the clear write-ahead log removed. The
/// domain must not be open in another process.
pub fn encrypt_database(layout: &Layout, provider: Arc<dyn master::KeyProvider>) -> Result<()> {
    if !database_in_clear(layout)? {
        return Err(DomainError::Conflict(format!(
            "the metadata database {} is encrypted already",
            layout.db().display()
        ))
        .into());
    }
    let probe = keys::Keyring::new(layout.clone(), provider.clone())?;
    if probe.database_key()?.is_none() {
        keys::create_database_key(layout, &*provider)?;
    }
    let keys = keys::Keyring::new(layout.clone(), provider)?;
    let key = keys
        .database_key()?
        .ok_or_else(|| DomainError::Internal("the database key just made is missing".into()))?;
    let db = layout.db();
    let copy = db.with_extension("db.encrypting");
    match std::fs::remove_file(&copy) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let plain = Connection::open(&db)?;
    plain.busy_timeout(Duration::from_secs(30))?;
    plain.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    let version: i64 = plain.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let target = copy.to_string_lossy().replace('\'', "''");
    let export = zeroize::Zeroizing::new(format!(
        "ATTACH DATABASE '{target}' AS encrypted KEY \"x'{}'\";
         SELECT sqlcipher_export('encrypted');
         PRAGMA encrypted.user_version = {version};
         DETACH DATABASE encrypted;",
        hex::encode(key)
    ));
    plain.execute_batch(&export)?;
    drop(plain);
    std::fs::File::open(&copy)?.sync_all()?;
    std::fs::rename(&copy, &db)?;
    for suffix in ["-wal", "-shm"] {
        let mut side = db.clone().into_os_string();
        side.push(suffix);
        match std::fs::remove_file(&side) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(dir) = db.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    // It opens with its key.
    drop(connect(layout, &Arc::new(keys))?);
    Ok(())
}

/// Which SQLCipher this build links (`PRAGMA cipher_version`): empty without it.
pub fn cipher_version() -> Result<String> {
    let conn = Connection::open_in_memory()?;
    Ok(conn
        .query_row("PRAGMA cipher_version", [], |r| r.get::<_, String>(0))
        .optional()?
        .unwrap_or_default())
}

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Creates the database at `layout` and applies the migrations; `provider` is the master
/// key that wrapped the domain's secrets. The metadata store is SQLite's file in the
/// data directory.
pub fn create(layout: &Layout, provider: Arc<dyn master::KeyProvider>) -> Result<Conn> {
    let keys = Arc::new(keys::Keyring::new(layout.clone(), provider)?);
    let conn = Connection::open(layout.db())?;
    unlock(&conn, &keys)?;
    configure(&conn)?;
    let conn = Conn {
        c: Backend::Sqlite(conn),
        layout: layout.clone(),
        keys,
    };
    schema::migrate(&conn)?;
    Ok(conn)
}

/// Creates the metadata store of a new data directory where `metadata` says.
pub fn create_with(
    layout: &Layout,
    provider: Arc<dyn master::KeyProvider>,
    metadata: &metadata::Create,
) -> Result<Conn> {
    match metadata {
        metadata::Create::Sqlite => create(layout, provider),
        metadata::Create::Postgres { owner, serving } => {
            create_on_postgres(layout, provider, owner, serving)
        }
    }
}

/// Makes the store of the data directory at `layout` in an empty PostgreSQL database:
/// the schema made (or brought forward) over `owner`, the schema's owner's connection,
/// and where the servers connect (`metadata.connection`, a role that owns nothing)
/// recorded in the data directory. Returns a connection as the servers make it.
pub fn create_on_postgres(
    layout: &Layout,
    provider: Arc<dyn master::KeyProvider>,
    owner: &str,
    serving: &str,
) -> Result<Conn> {
    metadata::check_connection(owner)?;
    metadata::check_connection(serving)?;
    // Everything that can be refused is, before anything is made.
    let owning = pg::PgConn::connect(owner)?;
    let (owner_role, _) = owning.role()?;
    pg::PgConn::connect(serving)?.check_role(serving, Some(&owner_role))?;
    if owning.has_store()? {
        return Err(DomainError::Conflict(format!(
            "the PostgreSQL database of `{}` holds a Sandbox store already: a new domain needs an empty one",
            metadata::redact(owner)
        ))
        .into());
    }
    let keys = Arc::new(keys::Keyring::new(layout.clone(), provider)?);
    pg::migrate(&owning)?;
    metadata::Metadata::Postgres {
        connection: serving.to_owned(),
    }
    .record(layout)?;
    connect(layout, &keys)
}

/// Brings the PostgreSQL store at `owner` (the schema's owner's connection) to this
/// build's schema; returns whether it was empty before. Migrations serialize on an
/// advisory lock, so servers upgraded together apply each once.
pub fn migrate_postgres(owner: &str) -> Result<bool> {
    metadata::check_connection(owner)?;
    let c = pg::PgConn::connect(owner)?;
    pg::migrate(&c)
}

/// Now, as RFC 3339 UTC text with microseconds (sortable).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Runs `f` on `conn` within a write transaction: the caller's, if one is open, else one
/// of its own ([`Begin::Write`], committed when `f` succeeds, rolled back otherwise).
pub(crate) fn in_write_tx<T>(conn: &Conn, f: impl FnOnce() -> Result<T>) -> Result<T> {
    if !conn.idle() {
        return f();
    }
    let tx = Tx::begin(conn, Begin::Write)?;
    let v = f()?;
    tx.commit()?;
    Ok(v)
}

/// Rows of `(key, count)` from a `GROUP BY` statement of this crate.
pub(crate) fn count_by(conn: &Conn, sql: &str) -> Result<Vec<(String, i64)>> {
    conn.rows(sql, db::args![], |r| Ok((r.get(0)?, r.get(1)?)))
}
