//! The domain's master key. It wraps the domain's other secrets (the signing key, the
//! pseudonym secret) and never lives in the data directory: the directory records only
//! where the key is (`keys/master.toml`: a key file outside it, or an environment
//! variable) and the key's id, so that a wrong key is named as such. A hardware security
//! module or a key management service implements [`KeyProvider`] and is handed to
//! `Store::open_with`; the key then never enters this process at all.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::TryRngCore;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use sandbox_core::{Error, Result, Suite};

use crate::Layout;

/// `N` bytes from the operating system's random source.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| Error::Internal(format!("operating system random source: {e}")))?;
    Ok(bytes)
}

/// Writes a new file (never over one), readable by its owner only, synced.
pub(crate) fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// The file in the keys folder that says where the master key is.
const CONFIG_FILE: &str = "master.toml";

/// The environment variable that, when set, names the master key file to use instead of
/// the one the data directory records (a restored domain on another machine, say).
pub const KEY_FILE_OVERRIDE: &str = "SANDBOX_MASTER_KEY_FILE";

/// Wraps and unwraps the domain's secrets. `context` binds a wrapped secret to its
/// purpose (authenticated, not secret): a wrapped signing key does not unwrap as a
/// pseudonym secret.
pub trait KeyProvider: Send + Sync + fmt::Debug {
    /// The key's id: recorded beside what it wrapped, not secret.
    fn key_id(&self) -> &str;
    /// The suite whose cipher it wraps with (AES-256-GCM, or SM4-GCM for `gm`): a domain
    /// refuses a provider of another suite than its own.
    fn suite(&self) -> Suite;
    /// Encrypts `plain` under the master key.
    fn wrap(&self, context: &str, plain: &[u8]) -> Result<Vec<u8>>;
    /// Decrypts what [`KeyProvider::wrap`] gave, or fails if it was altered, wrapped for
    /// another context or under another key.
    fn unwrap(&self, context: &str, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>>;
}

/// A master key held in this process: AES-256-GCM (the `standard` suite) or SM4-GCM
/// (`gm`), with a random 96-bit nonce per wrap.
pub struct LocalKey {
    id: String,
    cipher: Cipher,
}

/// SM4-GCM: GCM (NIST SP 800-38D, as GB/T 36624 adopts it for SM4) over the SM4 block
/// cipher, a 96-bit nonce and a 128-bit tag.
type Sm4Gcm = aes_gcm::AesGcm<sm4::Sm4, aes_gcm::aead::consts::U12>;

/// Boxed, as the two differ in size (a process holds one).
enum Cipher {
    Aes(Box<LessSafeKey>),
    Sm4(Box<Sm4Gcm>),
}

impl fmt::Debug for LocalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKey")
            .field("id", &self.id)
            .field("suite", &self.suite())
            .finish()
    }
}

/// The id of a 32-byte key: the first 16 hex digits of a domain-separated SHA-256 (SM3 in
/// the `gm` suite).
pub fn key_id_of(suite: Suite, key: &[u8; 32]) -> String {
    hex::encode(&suite.hash(&[b"sandbox master key id\0", key])[..8])
}

/// The 128-bit SM4 key of a 32-byte master key: HMAC-SM3 of a fixed label under it.
fn sm4_key(key: &[u8; 32]) -> Zeroizing<[u8; 16]> {
    let full = Zeroizing::new(Suite::Gm.mac(key, b"sandbox master key SM4-GCM"));
    let mut out = Zeroizing::new([0u8; 16]);
    out.copy_from_slice(&full[..16]);
    out
}

impl LocalKey {
    /// The key of a domain of `suite` from its 32 bytes.
    pub fn from_bytes(suite: Suite, bytes: &[u8; 32]) -> Result<LocalKey> {
        let cipher = match suite {
            Suite::Standard => Cipher::Aes(Box::new(LessSafeKey::new(
                UnboundKey::new(&AES_256_GCM, bytes)
                    .map_err(|_| Error::Internal("AES-256-GCM key".into()))?,
            ))),
            Suite::Gm => {
                use aes_gcm::KeyInit as _;
                let key = sm4_key(bytes);
                Cipher::Sm4(Box::new(Sm4Gcm::new(&(*key).into())))
            }
        };
        Ok(LocalKey {
            id: key_id_of(suite, bytes),
            cipher,
        })
    }

    /// The key, for a domain of `suite`, written as hex (a key file's or a variable's
    /// contents).
    pub fn from_hex(suite: Suite, text: &str, whence: &str) -> Result<LocalKey> {
        let bytes = Zeroizing::new(
            hex::decode(text.trim())
                .map_err(|_| Error::Invalid(format!("{whence}: the master key is not hex")))?,
        );
        let bytes: &[u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            Error::Invalid(format!(
                "{whence}: the master key is not 32 bytes (64 hex digits)"
            ))
        })?;
        LocalKey::from_bytes(suite, bytes)
    }
}

impl KeyProvider for LocalKey {
    fn key_id(&self) -> &str {
        &self.id
    }

    fn suite(&self) -> Suite {
        match self.cipher {
            Cipher::Aes(_) => Suite::Standard,
            Cipher::Sm4(_) => Suite::Gm,
        }
    }

    fn wrap(&self, context: &str, plain: &[u8]) -> Result<Vec<u8>> {
        let nonce: [u8; NONCE_LEN] = random_bytes()?;
        let sealed = match &self.cipher {
            Cipher::Aes(key) => {
                let mut out = plain.to_vec();
                key.seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(context.as_bytes()),
                    &mut out,
                )
                .map_err(|_| Error::Internal("wrapping a key".into()))?;
                out
            }
            Cipher::Sm4(key) => {
                use aes_gcm::aead::{Aead as _, Payload};
                key.encrypt(
                    &nonce.into(),
                    Payload {
                        msg: plain,
                        aad: context.as_bytes(),
                    },
                )
                .map_err(|_| Error::Internal("wrapping a key".into()))?
            }
        };
        let mut wrapped = nonce.to_vec();
        wrapped.extend_from_slice(&sealed);
        Ok(wrapped)
    }

    fn unwrap(&self, context: &str, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let refused = || {
            Error::Verify(format!(
                "a {context} that the master key {} did not wrap, or that was altered",
                self.id
            ))
        };
        if wrapped.len() < NONCE_LEN {
            return Err(refused());
        }
        let (nonce, sealed) = wrapped.split_at(NONCE_LEN);
        match &self.cipher {
            Cipher::Aes(key) => {
                let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| refused())?;
                let mut buf = Zeroizing::new(sealed.to_vec());
                let plain = key
                    .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
                    .map_err(|_| refused())?;
                Ok(Zeroizing::new(plain.to_vec()))
            }
            Cipher::Sm4(key) => {
                use aes_gcm::aead::{Aead as _, Payload};
                let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| refused())?;
                key.decrypt(
                    &nonce.into(),
                    Payload {
                        msg: sealed,
                        aad: context.as_bytes(),
                    },
                )
                .map(Zeroizing::new)
                .map_err(|_| refused())
            }
        }
    }
}

/// Where a domain's master key is (written in `keys/master.toml`; never the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A file outside the data directory holding the key as hex.
    File {
        /// Its absolute path.
        path: PathBuf,
    },
    /// An environment variable holding the key as hex.
    Env {
        /// The variable's name.
        var: String,
    },
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::File { path } => write!(f, "key file {}", path.display()),
            KeySource::Env { var } => write!(f, "environment variable {var}"),
        }
    }
}

/// What `keys/master.toml` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterConfig {
    /// Where the key is.
    pub source: KeySource,
    /// The id of the key that wrapped the domain's secrets.
    pub key_id: String,
}

/// `keys/master.toml` as written: flat, every field known.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    var: Option<String>,
    key_id: String,
}

/// The recorded source of the data directory's master key, if it has one.
pub fn config(layout: &Layout) -> Result<Option<MasterConfig>> {
    let path = layout.keys().join(CONFIG_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let bad = |why: String| Error::Invalid(format!("{}: {why}", path.display()));
    let file: ConfigFile = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let source = match (file.source.as_str(), file.path, file.var) {
        ("file", Some(path), None) => KeySource::File { path },
        ("env", None, Some(var)) => KeySource::Env { var },
        _ => {
            return Err(bad(
                "`source` is `file` with a `path`, or `env` with a `var`".into(),
            ));
        }
    };
    Ok(Some(MasterConfig {
        source,
        key_id: file.key_id,
    }))
}

/// Records where the master key is. Fails if a record exists.
pub fn write_config(layout: &Layout, config: &MasterConfig) -> Result<()> {
    write_config_at(&layout.keys().join(CONFIG_FILE), config)
}

fn write_config_at(path: &Path, config: &MasterConfig) -> Result<()> {
    let file = match &config.source {
        KeySource::File { path } => ConfigFile {
            source: "file".into(),
            path: Some(path.clone()),
            var: None,
            key_id: config.key_id.clone(),
        },
        KeySource::Env { var } => ConfigFile {
            source: "env".into(),
            path: None,
            var: Some(var.clone()),
            key_id: config.key_id.clone(),
        },
    };
    let text = toml::to_string(&file)
        .map_err(|e| Error::Internal(format!("writing {CONFIG_FILE}: {e}")))?;
    let text = format!("# Where this domain's master key is: never the key itself.\n{text}");
    write_new(path, text.as_bytes())
}

/// Replaces the record of where the master key is, atomically (a rotation's commit
/// point); returns the record it replaced, as written, to put back if what follows fails.
pub fn replace_config(layout: &Layout, config: &MasterConfig) -> Result<Option<Vec<u8>>> {
    let path = layout.keys().join(CONFIG_FILE);
    let before = match fs::read(&path) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    let next = layout.keys().join(format!("{CONFIG_FILE}.next"));
    if next.exists() {
        fs::remove_file(&next)?;
    }
    write_config_at(&next, config)?;
    fs::rename(&next, &path)?;
    if let Ok(d) = fs::File::open(layout.keys()) {
        let _ = d.sync_all();
    }
    Ok(before)
}

/// Puts back a record [`replace_config`] replaced.
pub fn restore_config(layout: &Layout, before: &[u8]) -> Result<()> {
    let path = layout.keys().join(CONFIG_FILE);
    let next = layout.keys().join(format!("{CONFIG_FILE}.next"));
    if next.exists() {
        fs::remove_file(&next)?;
    }
    write_new(&next, before)?;
    fs::rename(&next, &path)?;
    Ok(())
}

/// Reads the key, for a domain of `suite`, from its source.
pub fn load(suite: Suite, source: &KeySource) -> Result<LocalKey> {
    match source {
        KeySource::File { path } => read_key_file(suite, path),
        KeySource::Env { var } => {
            let text = Zeroizing::new(std::env::var(var).map_err(|_| {
                Error::Invalid(format!(
                    "the master key is in environment variable {var}, which is not set"
                ))
            })?);
            LocalKey::from_hex(suite, &text, var)
        }
    }
}

fn read_key_file(suite: Suite, path: &Path) -> Result<LocalKey> {
    let text = Zeroizing::new(fs::read_to_string(path).map_err(|e| {
        Error::Invalid(format!(
            "the master key file {} cannot be read: {e}",
            path.display()
        ))
    })?);
    LocalKey::from_hex(suite, &text, &path.display().to_string())
}

/// The data directory's master key, from where it says the key is, checked to be the one
/// that wrapped its secrets.
pub fn provider(layout: &Layout) -> Result<Arc<dyn KeyProvider>> {
    let Some(config) = config(layout)? else {
        return Err(Error::Invalid(format!(
            "{} records no master key: its keys predate encryption at rest \
             (`sandbox key protect --data-dir {} --master-key-file PATH` wraps them)",
            layout.root().display(),
            layout.root().display()
        )));
    };
    let suite = crate::crypto::suite(layout)?;
    let key = match std::env::var_os(KEY_FILE_OVERRIDE) {
        Some(path) => read_key_file(suite, Path::new(&path))?,
        None => load(suite, &config.source)?,
    };
    if key.key_id() != config.key_id {
        return Err(Error::Invalid(format!(
            "the master key from {} (id {}) is not this domain's (id {})",
            config.source,
            key.key_id(),
            config.key_id
        )));
    }
    Ok(Arc::new(key))
}

/// Makes a new master key for a domain of `suite` and writes it, as hex, to a new file at
/// `path` (readable by its owner only), which must be outside the data directory.
pub fn create_key_file(layout: &Layout, path: &Path, suite: Suite) -> Result<LocalKey> {
    let absolute = std::path::absolute(path)?;
    let root = std::path::absolute(layout.root())?;
    if absolute.starts_with(&root) {
        return Err(Error::Invalid(format!(
            "the master key file {} is inside the data directory {}: keep it elsewhere",
            absolute.display(),
            root.display()
        )));
    }
    let bytes = Zeroizing::new(random_bytes::<32>()?);
    if let Some(parent) = absolute.parent() {
        fs::create_dir_all(parent)?;
    }
    write_new(&absolute, hex::encode(*bytes).as_bytes())
        .map_err(|e| Error::Invalid(format!("the master key file {}: {e}", absolute.display())))?;
    LocalKey::from_bytes(suite, &bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_wrapped_secret_unwraps_only_under_its_key_and_context() {
        for suite in Suite::ALL {
            wraps_and_unwraps(suite);
        }
        // The same bytes make a different key in each suite; neither unwraps the other's.
        let aes = LocalKey::from_bytes(Suite::Standard, &[7u8; 32]).unwrap();
        let sm4 = LocalKey::from_bytes(Suite::Gm, &[7u8; 32]).unwrap();
        assert_ne!(aes.key_id(), sm4.key_id());
        let wrapped = aes.wrap("signing key", b"secret bytes").unwrap();
        assert!(sm4.unwrap("signing key", &wrapped).is_err());
    }

    /// SM4-GCM as the suite wraps keys with it (GCM over the RustCrypto SM4) gives the
    /// known answer of RFC 8998 Appendix A.1 (ciphertext ‖ tag).
    #[test]
    fn sm4_gcm_gives_openssls_answer() {
        use aes_gcm::KeyInit as _;
        use aes_gcm::aead::{Aead as _, Payload};
        let key: [u8; 16] = hex::decode("0123456789abcdeffedcba9876543210")
            .unwrap()
            .try_into()
            .unwrap();
        let nonce: [u8; 12] = hex::decode("00001234567800000000abcd")
            .unwrap()
            .try_into()
            .unwrap();
        let plain = hex::decode(SM4_GCM_PLAIN).unwrap();
        let sealed = Sm4Gcm::new(&key.into())
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: &plain,
                    aad: &hex::decode("feedfacedeadbeeffeedfacedeadbeefabaddad2").unwrap(),
                },
            )
            .unwrap();
        assert_eq!(
            hex::encode(sealed),
            "17f399f08c67d5ee19d0dc9969c4bb7d5fd46fd3756489069157b282bb200735\
             d82710ca5c22f0ccfa7cbf93d496ac15a56834cbcf98c397b4024a2691233b8d\
             83de3541e4c2b58177e065a9bf7b62ec"
        );
    }

    const SM4_GCM_PLAIN: &str = "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbccccccccccccccccdddddddddddddddd\
                                 eeeeeeeeeeeeeeeeffffffffffffffffeeeeeeeeeeeeeeeeaaaaaaaaaaaaaaaa";

    fn wraps_and_unwraps(suite: Suite) {
        let key = LocalKey::from_bytes(suite, &[7u8; 32]).unwrap();
        let other = LocalKey::from_bytes(suite, &[8u8; 32]).unwrap();
        assert_eq!(key.suite(), suite);
        let wrapped = key.wrap("signing key", b"secret bytes").unwrap();
        assert_eq!(
            key.unwrap("signing key", &wrapped).unwrap().as_slice(),
            b"secret bytes"
        );
        assert!(key.unwrap("pseudonym secret", &wrapped).is_err());
        assert!(other.unwrap("signing key", &wrapped).is_err());
        let mut altered = wrapped.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert!(key.unwrap("signing key", &altered).is_err());
        assert!(key.unwrap("signing key", &wrapped[..5]).is_err());
        // A fresh nonce each time: the same secret never wraps to the same bytes.
        assert_ne!(wrapped, key.wrap("signing key", b"secret bytes").unwrap());
        assert_ne!(key.key_id(), other.key_id());
    }

    #[test]
    fn a_key_file_inside_the_data_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().join("d"));
        let inside = dir.path().join("d").join("master.key");
        assert!(matches!(
            create_key_file(&layout, &inside, Suite::Standard),
            Err(Error::Invalid(_))
        ));
        let outside = dir.path().join("d.master-key");
        let key = create_key_file(&layout, &outside, Suite::Gm).unwrap();
        let again = load(Suite::Gm, &KeySource::File { path: outside }).unwrap();
        assert_eq!(key.key_id(), again.key_id());
    }
}
