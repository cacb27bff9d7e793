//! Backups (TJ-Sec Art. 10; SYS Art. 18, 60): the metadata database snapshotted with
//! SQLite's backup API (one step, so one consistent state, while the domain keeps
//! working), and the archive every backup is: a sealed stream of entries.
//!
//! The archive is `MAGIC`, one JSON header line ([`Header`]: the backup's id, when, the
//! master key's id and the archive key wrapped by it), then the entries (`u32` path length,
//! the path, `u64` size, the bytes; a zero length ends them) sealed in chunks of at most
//! [`CHUNK`] bytes with AES-256-GCM under the archive key: each chunk's nonce is its
//! number with a flag on the last one, and its associated data the header's hash, so that
//! a chunk reordered, dropped, cut short or moved to another backup fails to open.

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::master::{KeyProvider, random_bytes};
use crate::{Conn, DomainError, Result};

/// The first bytes of every backup.
pub const MAGIC: &[u8] = b"SANDBOX BACKUP 1\n";
/// Plaintext bytes per sealed chunk.
pub const CHUNK: usize = 1 << 20;
const TAG: usize = 16;

/// What a backup says of itself, in the clear.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// The backup's id.
    pub backup_id: String,
    /// When it was taken, RFC 3339 UTC.
    pub created_at: String,
    /// The id of the master key that wraps its key.
    pub master_key: String,
    /// The archive key, wrapped by that master key (hex).
    pub wrapped_key: String,
    /// The domain's cryptographic suite, whose cipher the master key wraps with
    /// (`standard` in a backup taken before the choice).
    #[serde(default)]
    pub suite: sandbox_core::Suite,
}

fn context(backup_id: &str) -> String {
    format!("sandbox backup archive key\0{backup_id}")
}

fn nonce(counter: u64, last: bool) -> Nonce {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    Nonce::assume_unique_for_key(n)
}

fn sealing_key(key: &[u8]) -> Result<LessSafeKey> {
    let unbound = UnboundKey::new(&AES_256_GCM, key)
        .map_err(|_| DomainError::Internal("backup key".into()))?;
    Ok(LessSafeKey::new(unbound))
}

fn bad(why: impl std::fmt::Display) -> crate::Error {
    DomainError::Verify(format!("backup: {why}")).into()
}

/// Writes a backup's entries, sealed.
pub struct ArchiveWriter<W: Write> {
    out: W,
    key: LessSafeKey,
    aad: [u8; 32],
    counter: u64,
    buf: Vec<u8>,
}

impl<W: Write> ArchiveWriter<W> {
    /// Starts a backup into `out` under a new archive key wrapped by `provider`.
    pub fn new(mut out: W, backup_id: &str, provider: &dyn KeyProvider) -> Result<Self> {
        let key = Zeroizing::new(random_bytes::<32>()?);
        let header = Header {
            backup_id: backup_id.to_string(),
            created_at: crate::now(),
            master_key: provider.key_id().to_string(),
            wrapped_key: hex::encode(provider.wrap(&context(backup_id), &key[..])?),
            suite: provider.suite(),
        };
        let mut line = serde_json::to_vec(&header)?;
        line.push(b'\n');
        out.write_all(MAGIC)?;
        out.write_all(&line)?;
        Ok(ArchiveWriter {
            out,
            key: sealing_key(&key[..])?,
            aad: Sha256::digest(&line).into(),
            counter: 0,
            buf: Vec::with_capacity(CHUNK),
        })
    }

    fn push(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            let room = CHUNK - self.buf.len();
            let n = room.min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() == CHUNK {
                self.seal(false)?;
            }
        }
        Ok(())
    }

    fn seal(&mut self, last: bool) -> Result<()> {
        let mut chunk = std::mem::take(&mut self.buf);
        self.key
            .seal_in_place_append_tag(nonce(self.counter, last), Aad::from(self.aad), &mut chunk)
            .map_err(|_| DomainError::Internal("sealing a backup chunk".into()))?;
        self.counter += 1;
        self.out.write_all(&(chunk.len() as u32).to_be_bytes())?;
        self.out.write_all(&chunk)?;
        self.buf = Vec::with_capacity(CHUNK);
        Ok(())
    }

    /// Adds the file `source` as `path`; returns its size and SHA-256 (hex).
    pub fn add_file(&mut self, path: &str, source: &Path) -> Result<(u64, String)> {
        let mut file = fs::File::open(source)?;
        let size = file.metadata()?.len();
        self.push(&(path.len() as u32).to_be_bytes())?;
        self.push(path.as_bytes())?;
        self.push(&size.to_be_bytes())?;
        let mut hasher = Sha256::new();
        let mut left = size;
        let mut buf = vec![0u8; 256 * 1024];
        while left > 0 {
            let want = buf.len().min(left as usize);
            file.read_exact(&mut buf[..want]).map_err(|e| {
                DomainError::Conflict(format!("{path} changed while it was backed up: {e}"))
            })?;
            hasher.update(&buf[..want]);
            self.push(&buf[..want])?;
            left -= want as u64;
        }
        Ok((size, hex::encode(hasher.finalize())))
    }

    /// Adds `bytes` as `path`.
    pub fn add_bytes(&mut self, path: &str, bytes: &[u8]) -> Result<()> {
        self.push(&(path.len() as u32).to_be_bytes())?;
        self.push(path.as_bytes())?;
        self.push(&(bytes.len() as u64).to_be_bytes())?;
        self.push(bytes)
    }

    /// Ends the entries and seals the last chunk; returns the output.
    pub fn finish(mut self) -> Result<W> {
        self.push(&0u32.to_be_bytes())?;
        self.seal(true)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Reads a backup's header (in the clear; nothing checked but its form).
pub fn read_header(input: &mut impl io::BufRead) -> Result<Header> {
    let mut magic = vec![0u8; MAGIC.len()];
    input
        .read_exact(&mut magic)
        .map_err(|_| bad("not a Sandbox backup (too short)"))?;
    if magic != MAGIC {
        return Err(bad("not a Sandbox backup"));
    }
    let mut line = Vec::new();
    input.read_until(b'\n', &mut line)?;
    serde_json::from_slice(&line).map_err(|e| bad(format!("its header: {e}")))
}

/// Reads a backup's entries, opening each chunk (a chunk that does not open, or an
/// archive cut short, is an error).
pub struct ArchiveReader<R: Read> {
    input: R,
    key: LessSafeKey,
    aad: [u8; 32],
    counter: u64,
    plain: Vec<u8>,
    at: usize,
    ended: bool,
}

impl<R: io::BufRead> ArchiveReader<R> {
    /// Opens the backup in `input` with `provider` (the master key its header names).
    pub fn open(mut input: R, provider: &dyn KeyProvider) -> Result<(Self, Header)> {
        let header = read_header(&mut input)?;
        if header.master_key != provider.key_id() {
            return Err(bad(format!(
                "its key is wrapped by master key {}, not by {}",
                header.master_key,
                provider.key_id()
            )));
        }
        let wrapped = hex::decode(&header.wrapped_key).map_err(bad)?;
        let key = provider.unwrap(&context(&header.backup_id), &wrapped)?;
        let mut line = serde_json::to_vec(&header)?;
        line.push(b'\n');
        Ok((
            ArchiveReader {
                input,
                key: sealing_key(&key)?,
                aad: Sha256::digest(&line).into(),
                counter: 0,
                plain: Vec::new(),
                at: 0,
                ended: false,
            },
            header,
        ))
    }
}

impl<R: Read> ArchiveReader<R> {
    fn next_chunk(&mut self) -> Result<bool> {
        if self.ended {
            return Ok(false);
        }
        let mut len = [0u8; 4];
        self.input
            .read_exact(&mut len)
            .map_err(|_| bad("it is cut short"))?;
        let len = u32::from_be_bytes(len) as usize;
        if !(TAG..=CHUNK + TAG).contains(&len) {
            return Err(bad("a chunk of an impossible length"));
        }
        let mut chunk = vec![0u8; len];
        self.input
            .read_exact(&mut chunk)
            .map_err(|_| bad("it is cut short"))?;
        // The last chunk is the one that opens with the last flag.
        let mut last = false;
        let opened = match self.key.open_in_place(
            nonce(self.counter, false),
            Aad::from(self.aad),
            &mut chunk.clone(),
        ) {
            Ok(p) => p.to_vec(),
            Err(_) => {
                last = true;
                self.key
                    .open_in_place(nonce(self.counter, true), Aad::from(self.aad), &mut chunk)
                    .map_err(|_| {
                        bad(format!(
                            "chunk {} does not open (altered, or another key)",
                            self.counter
                        ))
                    })?
                    .to_vec()
            }
        };
        self.counter += 1;
        self.plain = opened;
        self.at = 0;
        if last {
            self.ended = true;
            let mut rest = [0u8; 1];
            if self.input.read(&mut rest)? != 0 {
                return Err(bad("bytes after its last chunk"));
            }
        }
        Ok(true)
    }

    fn read_exact_plain(&mut self, mut out: &mut [u8]) -> Result<()> {
        while !out.is_empty() {
            if self.at == self.plain.len() && !self.next_chunk()? {
                return Err(bad("its entries end before their end mark"));
            }
            let n = (self.plain.len() - self.at).min(out.len());
            out[..n].copy_from_slice(&self.plain[self.at..self.at + n]);
            self.at += n;
            out = &mut out[n..];
        }
        Ok(())
    }

    /// The next entry's path and size, or `None` at the end mark.
    pub fn next_entry(&mut self) -> Result<Option<(String, u64)>> {
        let mut len = [0u8; 4];
        self.read_exact_plain(&mut len)?;
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 {
            // Nothing may follow the end mark.
            if self.at != self.plain.len() || self.next_chunk()? {
                return Err(bad("entries after its end mark"));
            }
            return Ok(None);
        }
        if len > 4096 {
            return Err(bad("an entry's path is too long"));
        }
        let mut path = vec![0u8; len];
        self.read_exact_plain(&mut path)?;
        let path = String::from_utf8(path).map_err(|_| bad("an entry's path is not UTF-8"))?;
        let mut size = [0u8; 8];
        self.read_exact_plain(&mut size)?;
        Ok(Some((path, u64::from_be_bytes(size))))
    }

    /// Copies the current entry's `size` bytes to `out`; returns their SHA-256 (hex).
    pub fn copy_entry(&mut self, size: u64, out: &mut impl Write) -> Result<String> {
        let mut hasher = Sha256::new();
        let mut left = size;
        while left > 0 {
            if self.at == self.plain.len() && !self.next_chunk()? {
                return Err(bad("an entry ends before its size"));
            }
            let n = ((self.plain.len() - self.at) as u64).min(left) as usize;
            let piece = &self.plain[self.at..self.at + n];
            hasher.update(piece);
            out.write_all(piece)?;
            self.at += n;
            left -= n as u64;
        }
        Ok(hex::encode(hasher.finalize()))
    }
}

/// The audit log of a database snapshot at the moment it was taken.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogState {
    /// Events.
    pub size: i64,
    /// Merkle root of them (hex).
    pub root: String,
}

/// Copies the metadata database `conn` is on into a new file `dest` in one step of
/// SQLite's backup API (one consistent state, however busy the domain is), encrypted
/// with the same key; returns the state of its audit log.
pub fn snapshot_database(conn: &Conn, dest: &Path) -> Result<LogState> {
    let from = conn.sqlite()?;
    let mut to = Connection::open(dest)?;
    crate::give_key(&to, conn.keys())?;
    {
        use rusqlite::backup::StepResult;
        let backup = rusqlite::backup::Backup::new(from, &mut to)?;
        // Every page in one step: the copy is of one state of the database (a writer that
        // commits meanwhile makes SQLite start again).
        loop {
            match backup.step(-1)? {
                StepResult::Done => break,
                StepResult::More => {}
                _ => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
    }
    let snapshot = Conn {
        c: crate::Backend::Sqlite(to),
        layout: conn.layout().clone(),
        keys: conn.keys.clone(),
    };
    let size = crate::audit::log_size(&snapshot)?;
    let root = if size > 0 {
        hex::encode(crate::audit::root_at(&snapshot, size)?)
    } else {
        String::new()
    };
    Ok(LogState { size, root })
}
