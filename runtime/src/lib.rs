//! Sandbox runtime: public data analysed without leaving its domain.
//!
//! A [`Domain`] is one data directory: the domain store (Parquet), the metadata store
//! (SQLite), the keys. Everything a person does goes through it:
//!
//! - [`catalog`]: providers register datasets with their [`sandbox_policies::Policy`];
//! - [`scenarios`]: developers apply for scenarios, operators decide;
//! - [`jobs`]: a developer's WASM module runs in the [`wasm`] host; its only way to data is
//!   the [`mediate`] query path, which charges the [`privacy`] ledger before it answers;
//! - [`review`]: staged outputs are checked, reviewed twice, and released as products;
//! - [`audit`]: every step is an event, a leaf of an RFC 6962 Merkle tree with signed checkpoints;
//! - [`server`]: the HTTP API over the same domain, for principals holding [`tokens`].
//!
//! See ARCHITECTURE.md for the invariants and where each is enforced.

#![forbid(unsafe_code)]

pub mod audit;
pub mod catalog;
pub mod cli;
pub mod demo;
pub mod dev;
mod error;
pub mod identity;
pub mod jobs;
pub mod keys;
pub mod mediate;
pub mod privacy;
pub mod review;
pub mod scenarios;
pub mod server;
pub mod stops;
pub mod store;
pub mod tokens;
pub mod wasm;

use std::fs;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;

pub use error::{Error, Result};

use store::Layout;

/// One domain: a data directory and the engines that work on it. Cheap to clone.
#[derive(Clone)]
pub struct Domain {
    layout: Layout,
    runtime: Arc<tokio::runtime::Runtime>,
    host: Arc<wasm::Host>,
    mediate_cache: Arc<mediate::Cache>,
    pool: Arc<std::sync::Mutex<Vec<rusqlite::Connection>>>,
}

/// Connections kept open for the query path (opening one costs about half a millisecond).
const POOLED_CONNECTIONS: usize = 8;

/// A metadata-store connection borrowed from the domain's pool; it goes back on drop
/// (a transaction left open is rolled back by rusqlite before that).
pub struct PooledConn {
    conn: Option<rusqlite::Connection>,
    pool: Arc<std::sync::Mutex<Vec<rusqlite::Connection>>>,
}

impl std::ops::Deref for PooledConn {
    type Target = rusqlite::Connection;
    fn deref(&self) -> &rusqlite::Connection {
        // Present from creation until drop.
        self.conn
            .as_ref()
            .unwrap_or_else(|| unreachable!("pooled connection taken"))
    }
}

impl std::ops::DerefMut for PooledConn {
    fn deref_mut(&mut self) -> &mut rusqlite::Connection {
        self.conn
            .as_mut()
            .unwrap_or_else(|| unreachable!("pooled connection taken"))
    }
}

impl Drop for PooledConn {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && conn.is_autocommit()
            && let Ok(mut pool) = self.pool.lock()
            && pool.len() < POOLED_CONNECTIONS
        {
            pool.push(conn);
        }
    }
}

impl std::fmt::Debug for Domain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Domain")
            .field("root", &self.layout.root())
            .finish()
    }
}

impl Domain {
    /// Creates a new data directory at `dir` (which must not exist or be empty): folders,
    /// metadata store, keys. Nothing is left behind if a step fails.
    pub fn init(dir: &Path) -> Result<Domain> {
        if dir.exists() {
            let mut entries = fs::read_dir(dir)?;
            if entries.next().is_some() {
                return Err(Error::Conflict(format!(
                    "{} exists and is not empty",
                    dir.display()
                )));
            }
        }
        let created_dir = !dir.exists();
        let result = (|| {
            let layout = Layout::new(dir);
            fs::create_dir_all(dir)?;
            for folder in layout.folders() {
                fs::create_dir_all(folder)?;
            }
            keys::create(&layout)?;
            let conn = store::create(&layout)?;
            let public = hex::encode(keys::verifying_key(&layout)?.to_bytes());
            audit::append(
                &conn,
                "system",
                "domain.init",
                "domain",
                json!({"public_key": public, "schema_version": store::SCHEMA_VERSION}),
            )?;
            Ok(())
        })();
        if let Err(e) = result {
            if created_dir {
                let _ = fs::remove_dir_all(dir);
            } else if let Ok(entries) = fs::read_dir(dir) {
                for entry in entries.flatten() {
                    let _ =
                        fs::remove_dir_all(entry.path()).or_else(|_| fs::remove_file(entry.path()));
                }
            }
            return Err(e);
        }
        Domain::open(dir)
    }

    /// Opens an existing data directory.
    pub fn open(dir: &Path) -> Result<Domain> {
        let layout = Layout::new(dir);
        // Fails early with a clear message when the directory is not a domain.
        drop(store::connect(&layout)?);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sandbox-query")
            .enable_all()
            .build()?;
        Ok(Domain {
            layout,
            runtime: Arc::new(runtime),
            host: wasm::Host::shared()?,
            mediate_cache: Arc::default(),
            pool: Arc::default(),
        })
    }

    /// The data directory's layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// A new connection to the metadata store.
    pub fn conn(&self) -> Result<rusqlite::Connection> {
        store::connect(&self.layout)
    }

    /// A connection from the domain's pool (for the hot query path), opened if none is free.
    pub fn pooled_conn(&self) -> Result<PooledConn> {
        let pooled = self
            .pool
            .lock()
            .map_err(|_| Error::Internal("connection pool poisoned".into()))?
            .pop();
        let conn = match pooled {
            Some(c) => c,
            None => store::connect(&self.layout)?,
        };
        Ok(PooledConn {
            conn: Some(conn),
            pool: self.pool.clone(),
        })
    }

    /// The mediator's prepared scenarios.
    pub(crate) fn mediate_cache(&self) -> &mediate::Cache {
        &self.mediate_cache
    }

    /// The async runtime the query engine runs on.
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    /// The WASM host.
    pub fn host(&self) -> &wasm::Host {
        &self.host
    }
}

/// A short random id with a prefix, e.g. `job-3f9c2a71d0b4`.
pub fn new_id(prefix: &str) -> String {
    use rand::Rng;
    let n: u64 = rand::rng().random();
    format!("{prefix}-{n:016x}")
}

/// Little-endian u64s packed in a byte string (trailing bytes that do not fill one are
/// ignored; callers check the length where it matters).
pub(crate) fn u64s_le(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            u64::from_le_bytes(b)
        })
        .collect()
}

/// Whether `name` is one plain file name: no separators, no `..`. The store's file names
/// (staged outputs, product files) are checked with it before they are joined to a path.
pub fn plain_file_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && !name.contains('\\') && !name.contains("..")
}

/// Hex SHA-256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}
