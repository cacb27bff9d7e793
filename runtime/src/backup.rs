//! Backup and restore (TJ-Sec Art. 10; SYS Art. 18, 60; QQHR Art. 19): a consistent,
//! encrypted copy of a running domain, checked and restored elsewhere; a restored domain
//! verifies its audit log and every signed checkpoint, and against a checkpoint kept
//! elsewhere tells whether it was rolled back to an older state.
//!
//! A backup holds the metadata database as one snapshot (SQLite's backup API: the state at
//! one instant, however busy the domain), then the files of the domain store, the staged
//! outputs, the products, the modules and the keys (wrapped; the master key is never in
//! it), then a manifest of every file with its size and hash and the audit log's size and
//! root at the snapshot. The archive is sealed ([`sandbox_store::backup`]) under a key the
//! master key wraps: restoring needs the master key.

use std::fs;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;

use sandbox_core::audit::{EventKind, Subject};
use sandbox_core::authz::Action;
use sandbox_store::audit::Checkpoint;
use sandbox_store::authz::{self, On};
use sandbox_store::backup::{ArchiveReader, ArchiveWriter, LogState};
use sandbox_store::master::{self, KeyProvider};
use sandbox_store::{DB_FILE, Layout, audit as log};

use crate::{Domain, Error, MasterKey, Result};

const MANIFEST: &str = "MANIFEST.json";
/// Folders of the data directory a backup holds, besides the database.
const FOLDERS: [&str; 5] = ["domain", "staging", "products", "modules", "keys"];

/// One file of a backup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    /// Path inside the data directory.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256, hex.
    pub sha256: String,
}

/// What a backup holds: its last entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// The backup's id.
    pub backup_id: String,
    /// When it was taken.
    pub created_at: String,
    /// The audit log in the database snapshot.
    pub log: LogState,
    /// Every file, the database snapshot first.
    pub files: Vec<FileEntry>,
}

/// What `backup` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    /// The backup's file.
    pub file: PathBuf,
    /// Its id.
    pub backup_id: String,
    /// Files in it.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// The audit log it holds.
    pub log: LogState,
}

/// Every file under the folder `dir` of the data directory, as paths relative to `root`;
/// the work folders of operations under way (dot names: an ingest, an upload, a
/// destruction) are left out.
fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mut entries: Vec<_> = entries.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(root, &path, out)?;
        } else {
            let rel = path.strip_prefix(root).map_err(|_| {
                Error::Internal(format!("{} outside the data directory", path.display()))
            })?;
            out.push(rel.to_string_lossy().to_string());
        }
    }
    Ok(())
}

/// Takes a backup of the running domain into `out` (a new file), for an operator or an
/// admin; recorded in the audit log (the event is in the backup). Written beside `out`
/// and moved into place when whole.
pub fn backup(domain: &Domain, actor: &str, out: &Path) -> Result<BackupReport> {
    let mut conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::SettingsSet, On::Domain)?;
    if out.exists() {
        return Err(Error::Conflict(format!("{} exists", out.display())));
    }
    let root = domain.layout().root();
    if std::path::absolute(out)?.starts_with(std::path::absolute(root)?) {
        return Err(Error::Invalid(format!(
            "{}: a backup goes outside the data directory",
            out.display()
        )));
    }
    let backup_id = sandbox_core::new_id("bk");
    let tx = conn.write()?;
    log::append(
        &tx,
        actor,
        EventKind::BackupTaken,
        &Subject::Domain,
        json!({"backup_id": backup_id}),
    )?;
    tx.commit()?;
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let work = tempfile::Builder::new()
        .prefix(".sandbox-backup-")
        .tempdir_in(parent)?;
    let snapshot = work.path().join(DB_FILE);
    let state = sandbox_store::backup::snapshot_database(&conn, &snapshot)?;
    drop(conn);
    let partial = work.path().join("backup.partial");
    let file = BufWriter::new(fs::File::create_new(&partial)?);
    let mut writer = ArchiveWriter::new(file, &backup_id, domain.keys().provider().as_ref())?;
    let mut files = Vec::new();
    let (size, sha256) = writer.add_file(DB_FILE, &snapshot)?;
    files.push(FileEntry {
        path: DB_FILE.to_string(),
        size,
        sha256,
    });
    let mut paths = Vec::new();
    for folder in FOLDERS {
        walk(root, &root.join(folder), &mut paths)?;
    }
    for path in paths {
        let (size, sha256) = match writer.add_file(&path, &root.join(&path)) {
            Ok(done) => done,
            Err(e) => {
                return Err(Error::Conflict(format!(
                    "{path} changed while the backup was taken ({e}): take it again"
                )));
            }
        };
        files.push(FileEntry { path, size, sha256 });
    }
    let manifest = Manifest {
        backup_id: backup_id.clone(),
        created_at: sandbox_store::now(),
        log: state.clone(),
        files,
    };
    writer.add_bytes(MANIFEST, &serde_json::to_vec_pretty(&manifest)?)?;
    let file = writer.finish()?;
    file.into_inner()
        .map_err(|e| Error::Internal(format!("backup: {e}")))?
        .sync_all()?;
    fs::rename(&partial, out)?;
    Ok(BackupReport {
        file: out.to_path_buf(),
        backup_id,
        files: manifest.files.len(),
        bytes: manifest.files.iter().map(|f| f.size).sum(),
        log: state,
    })
}

/// Where the master key of a backup is, for `verify` and `restore`.
fn provider_of(
    master: &MasterKey,
    suite: sandbox_core::Suite,
) -> Result<(Arc<dyn KeyProvider>, master::KeySource)> {
    let source = match master {
        MasterKey::File(path) => master::KeySource::File {
            path: std::path::absolute(path)?,
        },
        MasterKey::Env(var) => master::KeySource::Env { var: var.clone() },
        MasterKey::New(_) => {
            return Err(Error::Invalid(
                "a backup opens with the master key it was taken under: name its file or its variable".into(),
            ));
        }
    };
    let key = master::load(suite, &source)?;
    Ok((Arc::new(key), source))
}

/// How a domain's audit log stands against a checkpoint kept elsewhere.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "standing", rename_all = "snake_case")]
pub enum Standing {
    /// The log holds the checkpoint's events, with the same root.
    Holds {
        /// Events in the log.
        log: i64,
        /// Events the checkpoint covers.
        checkpoint: i64,
    },
    /// The log has fewer events than the checkpoint covers: it was rolled back to an older
    /// state (what happened after is not in it).
    RolledBack {
        /// Events in the log.
        log: i64,
        /// Events the checkpoint covers.
        checkpoint: i64,
    },
    /// The log's first events are not the checkpoint's: it was rewritten.
    Diverged {
        /// Events the checkpoint covers.
        checkpoint: i64,
    },
}

/// Checks the domain's audit log against `checkpoint` (signed by this domain's key, kept
/// elsewhere: exported by `audit checkpoint` earlier).
pub fn stand_against(domain: &Domain, checkpoint: &Checkpoint) -> Result<Standing> {
    let conn = domain.conn()?;
    let public = sandbox_store::keys::public_key(domain.layout())?.to_hex();
    if checkpoint.public_key != public {
        return Err(Error::Verify(format!(
            "the checkpoint is signed by {}, not by this domain's key {public}",
            checkpoint.public_key
        )));
    }
    checkpoint.verify_signature(None)?;
    let size = log::log_size(&conn)?;
    if size < checkpoint.size {
        return Ok(Standing::RolledBack {
            log: size,
            checkpoint: checkpoint.size,
        });
    }
    if hex::encode(log::root_at(&conn, checkpoint.size)?) != checkpoint.root {
        return Ok(Standing::Diverged {
            checkpoint: checkpoint.size,
        });
    }
    Ok(Standing::Holds {
        log: size,
        checkpoint: checkpoint.size,
    })
}

/// What `restore` did.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    /// The restored data directory.
    pub dir: PathBuf,
    /// The backup's id.
    pub backup_id: String,
    /// When it was taken.
    pub created_at: String,
    /// Files restored.
    pub files: usize,
    /// Events of the restored log (verified, with every signed checkpoint).
    pub events: i64,
    /// Signed checkpoints verified.
    pub checkpoints: i64,
    /// Against the checkpoint kept elsewhere, when one was given.
    pub standing: Option<Standing>,
}

/// Restores the backup `file` into `dir` (which must not exist) with the master key it
/// was taken under: every chunk opened, every file checked against the manifest, the
/// metadata database's snapshot checked to be the one the manifest names, the keys' record
/// pointed at `master`; then the domain opened, its audit log and every signed checkpoint
/// verified, and, given a `checkpoint` kept elsewhere, how the log stands against it. The
/// restore is recorded in the restored log. Whatever fails leaves no `dir`.
pub fn restore(
    file: &Path,
    dir: &Path,
    master: &MasterKey,
    checkpoint: Option<&Checkpoint>,
) -> Result<Restored> {
    if dir.exists() {
        return Err(Error::Conflict(format!("{} exists", dir.display())));
    }
    // The header names the suite whose cipher the master key wraps the archive key with.
    let suite = {
        let mut input = BufReader::new(fs::File::open(file).map_err(|e| Error::Input {
            path: file.display().to_string(),
            message: e.to_string(),
        })?);
        sandbox_store::backup::read_header(&mut input)?.suite
    };
    let (provider, source) = provider_of(master, suite)?;
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent)?;
    let work = tempfile::Builder::new()
        .prefix(".sandbox-restore-")
        .tempdir_in(parent)?;
    let target = work.path().join("d");
    let (manifest, files) = unpack(file, &target, provider.as_ref())?;
    // The record of where the master key is, as it is here.
    let layout = Layout::new(&target);
    master::replace_config(
        &layout,
        &master::MasterConfig {
            source: source.clone(),
            key_id: provider.key_id().to_string(),
        },
    )?;
    let domain = Domain::open_with(&target, provider.clone())?;
    let state = {
        let conn = domain.conn()?;
        let size = log::log_size(&conn)?;
        LogState {
            size,
            root: if size > 0 {
                hex::encode(log::root_at(&conn, size)?)
            } else {
                String::new()
            },
        }
    };
    if state != manifest.log {
        return Err(Error::Verify(format!(
            "the restored audit log ({} events) is not the one the backup recorded ({})",
            state.size, manifest.log.size
        )));
    }
    let verified = crate::audit::verify_custodian(&domain)?;
    let standing = checkpoint.map(|c| stand_against(&domain, c)).transpose()?;
    {
        let mut conn = domain.conn()?;
        let tx = conn.write()?;
        log::append(
            &tx,
            "system",
            EventKind::DomainRestored,
            &Subject::Domain,
            json!({"backup_id": manifest.backup_id, "taken_at": manifest.created_at,
                   "events": state.size, "standing": standing}),
        )?;
        tx.commit()?;
    }
    drop(domain);
    fs::rename(&target, dir)?;
    Ok(Restored {
        dir: dir.to_path_buf(),
        backup_id: manifest.backup_id,
        created_at: manifest.created_at,
        files,
        events: verified.events,
        checkpoints: verified.checkpoints,
        standing,
    })
}

/// Checks the backup `file` whole with the master key it was taken under: it is restored
/// into a temporary folder (every chunk, every file's hash, the log and its checkpoints
/// verified) and removed.
pub fn verify(file: &Path, master: &MasterKey) -> Result<Restored> {
    let work = tempfile::Builder::new()
        .prefix(".sandbox-verify-")
        .tempdir()?;
    let restored = restore(file, &work.path().join("d"), master, None)?;
    Ok(restored)
}

/// Writes every entry of the backup into `target`, checking each against the manifest
/// (the last entry); returns the manifest and how many files.
fn unpack(file: &Path, target: &Path, provider: &dyn KeyProvider) -> Result<(Manifest, usize)> {
    let input = BufReader::new(fs::File::open(file).map_err(|e| Error::Input {
        path: file.display().to_string(),
        message: e.to_string(),
    })?);
    let (mut reader, header) = ArchiveReader::open(input, provider)?;
    fs::create_dir_all(target)?;
    let mut written: Vec<FileEntry> = Vec::new();
    let mut manifest: Option<Manifest> = None;
    while let Some((path, size)) = reader.next_entry()? {
        if manifest.is_some() {
            return Err(Error::Verify("backup: an entry after its manifest".into()));
        }
        if path == MANIFEST {
            let mut bytes = Vec::new();
            reader.copy_entry(size, &mut bytes)?;
            manifest = Some(
                serde_json::from_slice(&bytes)
                    .map_err(|e| Error::Verify(format!("backup: its manifest: {e}")))?,
            );
            continue;
        }
        let rel = Path::new(&path);
        let plain = rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        let allowed = path == DB_FILE || FOLDERS.iter().any(|f| rel.starts_with(f));
        if !plain || !allowed {
            return Err(Error::Verify(format!("backup: an entry named `{path}`")));
        }
        let dest = target.join(rel);
        if let Some(p) = dest.parent() {
            fs::create_dir_all(p)?;
        }
        let mut out = BufWriter::new(fs::File::create_new(&dest)?);
        let sha256 = reader.copy_entry(size, &mut out)?;
        out.into_inner()
            .map_err(|e| Error::Internal(format!("restore: {e}")))?
            .sync_all()?;
        written.push(FileEntry { path, size, sha256 });
    }
    let manifest = manifest.ok_or_else(|| Error::Verify("backup: no manifest".into()))?;
    if manifest.backup_id != header.backup_id {
        return Err(Error::Verify(
            "backup: its manifest is another backup's".into(),
        ));
    }
    if manifest.files != written {
        return Err(Error::Verify(
            "backup: its files are not the ones its manifest lists".into(),
        ));
    }
    Ok((manifest, written.len()))
}
