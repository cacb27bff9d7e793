//! Shared fixtures for Sandbox's end-to-end tests.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::new_without_default,
    missing_docs
)]

use std::path::{Path, PathBuf};

use sandbox_runtime::identity::{self, Role};
use sandbox_runtime::scenarios::{self, ScenarioRecord};
use sandbox_runtime::{Domain, catalog};

/// A domain with principals, the residents dataset and an approved scenario.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub domain: Domain,
    pub scenario: ScenarioRecord,
}

pub const OPERATOR: &str = "ops-li";
pub const PROVIDER: &str = "psb-wang";
pub const DEVELOPER: &str = "dev-zhao";
pub const SUPERVISOR: &str = "sup-chen";
pub const OPERATOR2: &str = "ops-zhou";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The environment variable that puts the tests' domains on PostgreSQL: the folder of a
/// running throwaway cluster (`scripts/postgres.sh start DIR`), in which each domain gets
/// a database of its own. Unset, domains are on SQLite.
pub const POSTGRES_ENV: &str = "SANDBOX_TEST_POSTGRES";

/// Where a test's new domain keeps its metadata: a new database in the cluster
/// [`POSTGRES_ENV`] names, or SQLite.
pub fn test_metadata() -> sandbox_runtime::store::metadata::Create {
    use sandbox_runtime::store::metadata::Create;
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let Some(cluster) = std::env::var_os(POSTGRES_ENV).filter(|v| !v.is_empty()) else {
        return Create::Sqlite;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = format!(
        "t{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let (owner, serving) =
        sandbox_store::testing::Throwaway::database(std::path::Path::new(&cluster), &name).unwrap();
    Create::Postgres { owner, serving }
}

/// A new domain at `dir` as `Domain::init` makes it, its metadata where
/// [`test_metadata`] says.
pub fn init_domain(dir: &Path) -> Domain {
    Domain::init_on(
        dir,
        &sandbox_runtime::settings::Settings::default(),
        &sandbox_runtime::MasterKey::beside(dir),
        sandbox_runtime::Suite::Standard,
        &test_metadata(),
    )
    .unwrap()
}

/// A domain with principals only.
pub fn empty_domain() -> (tempfile::TempDir, Domain) {
    let dir = tempfile::tempdir().unwrap();
    let domain = init_domain(&dir.path().join("domain"));
    identity::add(&domain, None, OPERATOR, Role::Operator).unwrap();
    identity::add(&domain, Some(OPERATOR), OPERATOR2, Role::Operator).unwrap();
    identity::add(&domain, Some(OPERATOR), PROVIDER, Role::Provider).unwrap();
    identity::add(&domain, Some(OPERATOR), DEVELOPER, Role::Developer).unwrap();
    identity::add(&domain, Some(OPERATOR), SUPERVISOR, Role::Supervisor).unwrap();
    (dir, domain)
}

/// Scenario text for the residents dataset valid from today, with a budget.
pub fn scenario_text(name: &str, epsilon: f64, per_query: f64) -> String {
    let today = chrono_today();
    format!(
        r#"name = "{name}"
purpose = "Average yearly income by district for the annual report"
valid_from = "{today}"
valid_until = "{until}"
response_plan = "the operator's duty officer is called; the scenario's jobs are stopped; the developer notifies the data bureau within the hour"
[budget]
epsilon = {epsilon}
epsilon_per_query = {per_query}
[[dataset]]
name = "residents"
columns = ["citizen_id", "district", "age", "income"]
[agreement]
rights_and_obligations = "the developer uses the data for the stated purpose only and keeps the products' scope"
security_requirements = "no attempt to re-identify anyone; credentials kept by the named developer only"
legal_basis = "the data bureau's authorization of the public data operation"
breach = "suspension of the scenario, revocation of the authorization and liability under the agreement"
"#,
        until = today.succ_opt().unwrap().succ_opt().unwrap()
    )
}

fn chrono_today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

/// Registers the synthetic residents (n rows) as `residents`.
pub fn add_residents(domain: &Domain, dir: &Path, n: usize) {
    let csv = dir.join("residents.csv");
    std::fs::write(&csv, sandbox_synth::residents_csv(n, 2026)).unwrap();
    catalog::add(domain, PROVIDER, &csv, sandbox_cli::demo::RESIDENTS_POLICY).unwrap();
}

impl Fixture {
    /// The standard fixture: 2000 residents, a scenario with ε 3 (1 per query).
    pub fn new() -> Fixture {
        Fixture::with_budget(3.0, 1.0)
    }

    pub fn with_budget(epsilon: f64, per_query: f64) -> Fixture {
        let (dir, domain) = empty_domain();
        add_residents(&domain, dir.path(), 2000);
        let s = scenarios::apply(
            &domain,
            DEVELOPER,
            &scenario_text("income-test", epsilon, per_query),
        )
        .unwrap();
        let scenario = approve(&domain, &s.id.to_string()).unwrap();
        Fixture {
            dir,
            domain,
            scenario,
        }
    }
}

/// The built example module `name`, or a panic telling how to build it.
pub fn guest_module(name: &str) -> Vec<u8> {
    let path = repo_root()
        .join("examples/modules/target/wasm32-unknown-unknown/release")
        .join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}. Build the example modules first: scripts/build-guests.sh (./dev test does it)",
            path.display()
        )
    })
}

/// Compiles WebAssembly text to a binary module.
pub fn wat(text: &str) -> Vec<u8> {
    ::wat::parse_str(text).unwrap()
}

/// A module that emits `bytes` as one output of `kind` (1 table, 2 text, 3 SVG chart,
/// 4 PNG chart) named `name`, and returns emit's status.
pub fn emit_module(kind: i32, name: &str, bytes: &[u8]) -> Vec<u8> {
    let escaped: String = bytes.iter().map(|b| format!("\\{b:02x}")).collect();
    wat(&format!(
        r#"(module
        (import "sandbox" "emit" (func $emit (param i32 i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (data (i32.const 0) "{name}")
        (data (i32.const 128) "{escaped}")
        (func (export "run") (result i32)
          (call $emit (i32.const {kind}) (i32.const 0) (i32.const {name_len}) (i32.const 128) (i32.const {len}))))"#,
        name_len = name.len(),
        len = bytes.len()
    ))
}

/// A module that emits one Markdown text output named `note` and returns emit's status.
pub fn text_module(text: &str) -> Vec<u8> {
    emit_module(2, "note", text.as_bytes())
}

/// The PUMS test data shipped beside the repository.
pub fn pums_dir() -> PathBuf {
    repo_root().join("../shared/data/pums")
}

/// A domain with `pums` (PUMS_pid.csv, one row per person) and `pums_dup` (PUMS_dup.csv,
/// persons repeated) registered with SmartNoise's bounds, and a scenario over both with a
/// large budget (ε 1 per query).
pub fn pums_fixture() -> Fixture {
    let (dir, domain) = empty_domain();
    for (file, policy) in [
        ("PUMS_pid.csv", "pums.toml"),
        ("PUMS_dup.csv", "pums_dup.toml"),
        ("PUMS_null.csv", "pums_null.toml"),
    ] {
        let text =
            std::fs::read_to_string(repo_root().join("examples/policies").join(policy)).unwrap();
        catalog::add(&domain, PROVIDER, &pums_dir().join(file), &text).unwrap();
    }
    let scenario = pums_scenario(&domain, "pums-study", "dp");
    Fixture {
        dir,
        domain,
        scenario,
    }
}

/// Applies for and approves a scenario named `name` over the PUMS datasets (their seven
/// columns), in `mode` (`dp` or `threshold`), with a large budget (ε 1 per query).
pub fn pums_scenario(domain: &Domain, name: &str, mode: &str) -> scenarios::ScenarioRecord {
    let today = chrono_today();
    let columns = r#"["pid", "age", "sex", "educ", "race", "income", "married"]"#;
    let text = format!(
        r#"name = "{name}"
mode = "{mode}"
purpose = "Income and education statistics from the census sample"
valid_from = "{today}"
valid_until = "{until}"
response_plan = "the operator's duty officer is called; the scenario's jobs are stopped; the developer notifies the data bureau within the hour"
[budget]
epsilon = 100.0
epsilon_per_query = 1.0
[[dataset]]
name = "pums"
columns = {columns}
[[dataset]]
name = "pums_dup"
columns = {columns}
[[dataset]]
name = "pums_null"
columns = {columns}
[agreement]
rights_and_obligations = "the developer uses the data for the stated purpose only and keeps the products' scope"
security_requirements = "no attempt to re-identify anyone; credentials kept by the named developer only"
legal_basis = "the data bureau's authorization of the public data operation"
breach = "suspension of the scenario, revocation of the authorization and liability under the agreement"
"#,
        until = today.succ_opt().unwrap()
    );
    let s = scenarios::apply(domain, DEVELOPER, &text).unwrap();
    approve(domain, &s.id.to_string()).unwrap()
}

/// Asks a query as the developer under a scenario.
pub fn ask_in(
    domain: &Domain,
    scenario_id: i64,
    sql: &str,
) -> sandbox_runtime::Result<sandbox_runtime::mediate::Answer> {
    sandbox_runtime::mediate::answer(
        domain,
        &sandbox_runtime::mediate::QueryRequest {
            scenario_id,
            job_id: None,
            actor: DEVELOPER,
            sql,
            epsilon: None,
        },
    )
}

impl Fixture {
    /// Asks a query as the developer under the fixture's scenario.
    pub fn ask(&self, sql: &str) -> sandbox_runtime::Result<sandbox_runtime::mediate::Answer> {
        ask_in(&self.domain, self.scenario.id, sql)
    }
}

/// A connection of the test's own to a domain's metadata store, for reading and tampering
/// with what the domain functions wrote: SQLite's file, or (the domain on PostgreSQL) the
/// database as its schema's owner, who can do what someone with the database's files can.
pub fn raw(domain: &Domain) -> Raw {
    use sandbox_runtime::store::metadata::Metadata;
    match Metadata::of(domain.layout()).unwrap() {
        Metadata::Sqlite => Raw::Sqlite(raw_keyed(&domain.layout().db(), domain.keys())),
        Metadata::Postgres { connection } => Raw::Postgres(
            sandbox_store::testing::RawPg::connect(
                &connection.replace("user=sandbox_app", "user=sandbox_owner"),
            )
            .unwrap(),
        ),
    }
}

/// A connection of the test's own to the SQLite metadata database at `db`, unlocked with
/// the database key `keys` holds (SQLCipher).
pub fn raw_keyed(db: &Path, keys: &sandbox_store::keys::Keyring) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(db).unwrap();
    if let Some(key) = keys.database_key().unwrap() {
        conn.execute_batch(&format!("PRAGMA key = \"x'{}'\";", hex::encode(key)))
            .unwrap();
    }
    conn
}

/// A test's own connection to a metadata store of either kind, with the calls of
/// rusqlite's the tests make (`?N` parameters; on PostgreSQL the SQL is translated as the
/// store's is).
pub enum Raw {
    /// SQLite's file.
    Sqlite(rusqlite::Connection),
    /// PostgreSQL.
    Postgres(sandbox_store::testing::RawPg),
}

/// A failed statement of a [`Raw`] connection, or a column read as another type.
#[derive(Debug)]
pub enum RawError {
    Sqlite(rusqlite::Error),
    Store(sandbox_store::Error),
    Type(String),
}

impl std::fmt::Display for RawError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RawError::Sqlite(e) => write!(f, "{e}"),
            RawError::Store(e) => write!(f, "{e}"),
            RawError::Type(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for RawError {}

impl From<rusqlite::Error> for RawError {
    fn from(e: rusqlite::Error) -> Self {
        RawError::Sqlite(e)
    }
}

impl From<sandbox_store::Error> for RawError {
    fn from(e: sandbox_store::Error) -> Self {
        RawError::Store(e)
    }
}

pub use sandbox_store::testing::RawValue;

fn raw_value(v: rusqlite::types::ValueRef<'_>) -> RawValue {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => RawValue::Null,
        ValueRef::Integer(v) => RawValue::Int(v),
        ValueRef::Real(v) => RawValue::Real(v),
        ValueRef::Text(v) => RawValue::Text(String::from_utf8_lossy(v).into_owned()),
        ValueRef::Blob(v) => RawValue::Blob(v.to_vec()),
    }
}

fn sqlite_value(v: &RawValue) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match v {
        RawValue::Null => Value::Null,
        RawValue::Int(v) => Value::Integer(*v),
        RawValue::Real(v) => Value::Real(*v),
        RawValue::Text(v) => Value::Text(v.clone()),
        RawValue::Blob(v) => Value::Blob(v.clone()),
    }
}

/// The parameters of a [`Raw`] statement: `[]`, `[a, b]`, `params![a, b]`.
pub trait RawParams {
    fn values(self) -> Vec<RawValue>;
}

fn to_raw(p: &dyn rusqlite::ToSql) -> RawValue {
    use rusqlite::types::ToSqlOutput;
    match p.to_sql().unwrap() {
        ToSqlOutput::Borrowed(v) => raw_value(v),
        ToSqlOutput::Owned(v) => raw_value((&v).into()),
        other => panic!("a parameter the tests do not bind: {other:?}"),
    }
}

impl RawParams for &[&dyn rusqlite::ToSql] {
    fn values(self) -> Vec<RawValue> {
        self.iter().map(|p| to_raw(*p)).collect()
    }
}

impl RawParams for [&dyn rusqlite::ToSql; 0] {
    fn values(self) -> Vec<RawValue> {
        Vec::new()
    }
}

macro_rules! raw_params_array {
    ($($n:literal),*) => {$(
        impl<T: rusqlite::ToSql> RawParams for [T; $n] {
            fn values(self) -> Vec<RawValue> {
                self.iter().map(|p| to_raw(p)).collect()
            }
        }
    )*};
}
raw_params_array!(1, 2, 3, 4, 5, 6, 7, 8);

/// What a column can be read as.
pub trait FromRaw: Sized {
    fn from_raw(v: RawValue) -> Option<Self>;
}

macro_rules! from_raw_int {
    ($($t:ty),*) => {$(
        impl FromRaw for $t {
            fn from_raw(v: RawValue) -> Option<Self> {
                match v {
                    RawValue::Int(i) => <$t>::try_from(i).ok(),
                    _ => None,
                }
            }
        }
    )*};
}
from_raw_int!(i64, i32, u32, u64, usize);

impl FromRaw for bool {
    fn from_raw(v: RawValue) -> Option<Self> {
        match v {
            RawValue::Int(i) => Some(i != 0),
            _ => None,
        }
    }
}

impl FromRaw for f64 {
    fn from_raw(v: RawValue) -> Option<Self> {
        match v {
            RawValue::Real(r) => Some(r),
            RawValue::Int(i) => Some(i as f64),
            _ => None,
        }
    }
}

impl FromRaw for String {
    fn from_raw(v: RawValue) -> Option<Self> {
        match v {
            RawValue::Text(t) => Some(t),
            _ => None,
        }
    }
}

impl FromRaw for Vec<u8> {
    fn from_raw(v: RawValue) -> Option<Self> {
        match v {
            RawValue::Blob(b) => Some(b),
            _ => None,
        }
    }
}

impl<T: FromRaw> FromRaw for Option<T> {
    fn from_raw(v: RawValue) -> Option<Self> {
        match v {
            RawValue::Null => Some(None),
            v => T::from_raw(v).map(Some),
        }
    }
}

/// One row of a [`Raw`] statement.
pub struct RawRow(Vec<RawValue>);

impl RawRow {
    /// Column `i` as a `T`.
    pub fn get<T: FromRaw>(&self, i: usize) -> Result<T, RawError> {
        let v = self
            .0
            .get(i)
            .cloned()
            .ok_or_else(|| RawError::Type(format!("no column {i}")))?;
        T::from_raw(v.clone()).ok_or_else(|| {
            RawError::Type(format!(
                "column {i} holds {v:?}, not a {}",
                std::any::type_name::<T>()
            ))
        })
    }
}

impl Raw {
    /// Whether this is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Raw::Postgres(_))
    }

    fn all(&self, sql: &str, params: Vec<RawValue>) -> Result<Vec<RawRow>, RawError> {
        match self {
            Raw::Sqlite(c) => {
                let mut stmt = c.prepare(sql)?;
                let width = stmt.column_count();
                let values: Vec<rusqlite::types::Value> = params.iter().map(sqlite_value).collect();
                let mut rows = stmt.query(rusqlite::params_from_iter(values))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    let mut row = Vec::with_capacity(width);
                    for i in 0..width {
                        row.push(raw_value(r.get_ref(i)?));
                    }
                    out.push(RawRow(row));
                }
                Ok(out)
            }
            Raw::Postgres(c) => Ok(c.rows(sql, &params)?.into_iter().map(RawRow).collect()),
        }
    }

    /// The first row of `sql` through `f`; an error when there is none.
    pub fn query_row<T>(
        &self,
        sql: &str,
        params: impl RawParams,
        f: impl FnOnce(&RawRow) -> Result<T, RawError>,
    ) -> Result<T, RawError> {
        match self.all(sql, params.values())?.first() {
            Some(r) => f(r),
            None => Err(RawError::Type("no row".into())),
        }
    }

    /// Runs `sql`; the rows it changed.
    pub fn execute(&self, sql: &str, params: impl RawParams) -> Result<usize, RawError> {
        let params = params.values();
        match self {
            Raw::Sqlite(c) => {
                let values: Vec<rusqlite::types::Value> = params.iter().map(sqlite_value).collect();
                Ok(c.execute(sql, rusqlite::params_from_iter(values))?)
            }
            Raw::Postgres(c) => Ok(c.execute(sql, &params)?),
        }
    }

    /// Runs statements without parameters.
    pub fn execute_batch(&self, sql: &str) -> Result<(), RawError> {
        match self {
            Raw::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Raw::Postgres(c) => Ok(c.batch(sql)?),
        }
    }

    /// Drops trigger `trigger` of `table`, as someone with the database's files can.
    pub fn drop_trigger(&self, trigger: &str, table: &str) {
        match self {
            Raw::Sqlite(c) => c.execute_batch(&format!("DROP TRIGGER {trigger}")).unwrap(),
            Raw::Postgres(c) => c
                .batch(&format!("DROP TRIGGER {trigger} ON {table}"))
                .unwrap(),
        }
    }

    /// The SQL expression of field `field` of the JSON text in `column`.
    pub fn json_field(&self, column: &str, field: &str) -> String {
        match self {
            Raw::Sqlite(_) => format!("json_extract({column}, '$.{field}')"),
            Raw::Postgres(_) => format!("({column}::jsonb ->> '{field}')"),
        }
    }

    /// A statement to map rows of.
    pub fn prepare<'a>(&'a self, sql: &str) -> Result<RawStatement<'a>, RawError> {
        Ok(RawStatement {
            conn: self,
            sql: sql.to_owned(),
        })
    }
}

/// A statement of a [`Raw`] connection.
pub struct RawStatement<'a> {
    conn: &'a Raw,
    sql: String,
}

impl RawStatement<'_> {
    /// Every row through `f`.
    pub fn query_map<T>(
        &mut self,
        params: impl RawParams,
        f: impl FnMut(&RawRow) -> Result<T, RawError>,
    ) -> Result<std::vec::IntoIter<Result<T, RawError>>, RawError> {
        Ok(self
            .conn
            .all(&self.sql, params.values())?
            .iter()
            .map(f)
            .collect::<Vec<_>>()
            .into_iter())
    }
}

/// The details of the (first) audit event of `action`, as JSON.
pub fn event_details(conn: &Raw, action: &str) -> serde_json::Value {
    let text: String = conn
        .query_row(
            "SELECT details FROM audit_events WHERE action = ?1 ORDER BY seq LIMIT 1",
            [action],
            |r| r.get(0),
        )
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The single integer a SQL statement on the metadata store returns.
pub fn count(conn: &Raw, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Column `i` of a batch as integers.
pub fn ints(batch: &arrow::array::RecordBatch, i: usize) -> Vec<i64> {
    batch
        .column(i)
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap()
        .values()
        .to_vec()
}

impl Fixture {
    /// Submits a module as the developer under the fixture's scenario.
    pub fn submit(
        &self,
        module: &[u8],
        params_json: &str,
        limits: impl Into<sandbox_core::job::LimitRequest>,
    ) -> sandbox_runtime::Result<sandbox_runtime::jobs::JobReport> {
        sandbox_runtime::jobs::submit(
            &self.domain,
            DEVELOPER,
            &sandbox_runtime::jobs::Submission {
                scenario: &self.scenario.spec.name,
                module,
                params_json,
                limits: limits.into(),
                resubmits: None,
            },
        )
    }
}

/// A server on a real loopback port over a fixture's domain, with a token for each of the
/// standard principals; stopped (gracefully) on drop.
pub struct LiveServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    server: sandbox_server::Background,
    fixture: Fixture,
    tokens: std::collections::HashMap<String, String>,
}

impl LiveServer {
    /// Starts serving `fixture`'s domain.
    pub fn start(fixture: Fixture, config: sandbox_server::Config) -> LiveServer {
        // The server's log in the test's output, as `RUST_LOG` asks (nothing unset).
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .try_init();
        let mut tokens = std::collections::HashMap::new();
        for name in [OPERATOR, PROVIDER, DEVELOPER, SUPERVISOR] {
            let t = sandbox_runtime::tokens::issue(&fixture.domain, OPERATOR, name).unwrap();
            tokens.insert(name.to_string(), t.token);
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = sandbox_server::Background::start(&fixture.domain, listener, config).unwrap();
        LiveServer {
            url: server.url().to_string(),
            server,
            fixture,
            tokens,
        }
    }

    /// The token of a standard principal.
    pub fn token(&self, name: &str) -> &str {
        &self.tokens[name]
    }

    /// The domain served.
    pub fn domain(&self) -> &Domain {
        &self.fixture.domain
    }

    /// Stops the server and waits until it has: running jobs end, a last checkpoint is
    /// signed.
    pub fn stop(&mut self) {
        self.server.stop().unwrap();
    }
}

/// Headless Chromium over WebDriver (Debian's chromium and chromedriver).
pub mod browser {
    use std::net::TcpStream;
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use fantoccini::{Client, ClientBuilder, Locator};
    use serde_json::json;

    fn find(names: &[&str]) -> Option<PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        for name in names {
            for dir in std::env::split_paths(&path).chain([
                PathBuf::from("/usr/bin"),
                PathBuf::from("/usr/lib/chromium"),
            ]) {
                let candidate = dir.join(name);
                if candidate.is_file() {
                    return Some(candidate);
                }
            }
        }
        None
    }

    /// A chromedriver process on a free port; killed on drop.
    pub struct Driver {
        child: Child,
        url: String,
        chromium: PathBuf,
        profile: tempfile::TempDir,
    }

    impl Driver {
        /// Starts chromedriver, or `None` when `SANDBOX_SKIP_BROWSER=1` says to skip.
        /// Panics, saying how to install them, when chromium or chromedriver is missing.
        pub fn start() -> Option<Driver> {
            if std::env::var("SANDBOX_SKIP_BROWSER").as_deref() == Ok("1") {
                eprintln!("SANDBOX_SKIP_BROWSER=1: browser test skipped");
                return None;
            }
            let install = "install Debian's chromium and chromium-driver (scripts/browser.sh; ./dev test and CI do it), or set SANDBOX_SKIP_BROWSER=1";
            let driver =
                find(&["chromedriver"]).unwrap_or_else(|| panic!("no chromedriver: {install}"));
            let chromium = find(&["chromium", "chromium-browser"])
                .unwrap_or_else(|| panic!("no chromium: {install}"));
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let child = Command::new(driver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let start = Instant::now();
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "chromedriver did not start"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            Some(Driver {
                child,
                url: format!("http://127.0.0.1:{port}"),
                chromium,
                profile: tempfile::tempdir().unwrap(),
            })
        }

        /// A new browser session: headless, no sandbox (root in CI), none of Chromium's own
        /// network traffic (this machine's network is closed), asking for English.
        pub async fn client(&self) -> Client {
            let mut caps = serde_json::Map::new();
            caps.insert(
                "goog:chromeOptions".into(),
                json!({
                    "binary": self.chromium,
                    "args": [
                        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--disable-quic", "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--lang=en-US",
                        format!("--user-data-dir={}", self.profile.path().display()),
                    ],
                    // The browser asks for English (`Accept-Language`), whatever the
                    // machine's locale.
                    "prefs": {"intl.accept_languages": "en-US,en"},
                }),
            );
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps)
                .connect(&self.url)
                .await
                .unwrap()
        }
    }

    impl Drop for Driver {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// Waits (up to 20 s) until the element's text is `expected`.
    pub async fn wait_text(c: &Client, css: &str, expected: &str) {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < Duration::from_secs(20) {
            if let Ok(e) = c.find(Locator::Css(css)).await
                && let Ok(text) = e.text().await
            {
                if text.trim() == expected {
                    return;
                }
                last = text;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let url = c
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        panic!("{css} is `{last}`, not `{expected}`, at {url}");
    }

    /// Clicks the element `css` selects.
    pub async fn click(c: &Client, css: &str) {
        c.find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Signs in on the console's sign-in page (where the console sends a caller without a
    /// session).
    pub async fn sign_in(c: &Client, token: &str) {
        let input = c.wait().for_element(Locator::Id("token")).await.unwrap();
        input.send_keys(token).await.unwrap();
        c.find(Locator::Id("sign-in"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }
}

pub use sandbox_fuzz::world::test_policy;

/// The whole review of a pending scenario: every provider of its datasets and the
/// supervisor record no objection (JZ Art. 11), then the operator approves, which makes it
/// usable. Returns the operator's decision.
pub fn approve(domain: &Domain, key: &str) -> sandbox_runtime::Result<scenarios::ScenarioRecord> {
    consent_all(domain, key)?;
    scenarios::decide(domain, OPERATOR, key, true, None)
}

/// Every consent a pending scenario awaits, each by the party it is asked of.
pub fn consent_all(domain: &Domain, key: &str) -> sandbox_runtime::Result<()> {
    use sandbox_runtime::consent::{self, ConsentState, Party};
    let awaited = consent::consents(domain, OPERATOR, key)?;
    for item in awaited.items {
        if item.state == ConsentState::NoObjection {
            continue;
        }
        match (item.party, item.dataset) {
            (Party::Supervisor, _) => {
                consent::consent(domain, SUPERVISOR, key, None, None)?;
            }
            (Party::Provider, Some(dataset)) => {
                let provider = sandbox_store::catalog::get(&*domain.conn()?, &dataset)
                    .map_err(sandbox_runtime::Error::from)?
                    .registered_by;
                consent::consent(domain, &provider, key, Some(&dataset), None)?;
            }
            (Party::Provider, None) => {}
        }
    }
    Ok(())
}

/// Applies for and approves a scenario of the developer over `dataset`'s `columns`, valid
/// from today, in `mode`, with ε `epsilon` (1 per query). Returns its id.
pub fn approved_scenario(
    domain: &Domain,
    name: &str,
    dataset: &str,
    columns: &[&str],
    mode: &str,
    epsilon: f64,
) -> i64 {
    let columns: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
    let text = scenario_text(name, epsilon, 1.0)
        .replace("name = \"residents\"", &format!("name = \"{dataset}\""))
        .replace(
            "columns = [\"citizen_id\", \"district\", \"age\", \"income\"]",
            &format!("columns = [{}]", columns.join(", ")),
        )
        .replace("[budget]", &format!("mode = \"{mode}\"\n[budget]"));
    let s = scenarios::apply(domain, DEVELOPER, &text).unwrap();
    approve(domain, &s.id.to_string()).unwrap().id
}
