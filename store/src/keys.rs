//! The domain's keys: an Ed25519 signing key for checkpoints, manifests and reports, and a
//! secret for keyed pseudonyms. Both are made at `init` from the operating system's random
//! source and stored wrapped by the domain's master key ([`crate::master`]); only the
//! public key is stored in the clear. A [`Keyring`] unwraps them once per process and
//! keeps them in memory (zeroed on drop).

use std::fs;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use sandbox_core::{Error, Result};

use crate::Layout;
use crate::master::{KeyProvider, random_bytes, write_new};

/// The signing key as the domains made before encryption at rest stored it: in the clear.
const LEGACY_SIGNING_FILE: &str = "domain.ed25519";
/// The pseudonym secret, likewise.
const LEGACY_SECRET_FILE: &str = "domain.hmac";
const SIGNING_FILE: &str = "domain.ed25519";
const PUBLIC_FILE: &str = "domain.ed25519.pub";
const SECRET_FILE: &str = "domain.hmac";
/// The metadata database's key (SQLCipher); absent for a database in the clear (a domain
/// made before the database was encrypted, until `key protect`).
const DATABASE_FILE: &str = "domain.sqlcipher";

/// Where a secret wrapped by the master key `key_id` is stored: each generation of the
/// master key has its own files, so that a rotation commits by replacing one record
/// (`keys/master.toml`) and a crash on either side of it leaves a key and its files.
fn wrapped_path(layout: &Layout, secret: &str, key_id: &str) -> std::path::PathBuf {
    layout.keys().join(format!("{secret}.{key_id}.wrapped"))
}
const SIGNING_CONTEXT: &str = "sandbox domain signing key";
const SECRET_CONTEXT: &str = "sandbox domain pseudonym secret";
const DATABASE_CONTEXT: &str = "sandbox domain metadata database key";

/// A wrapped secret as stored: the id of the master key that wrapped it, and the bytes.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wrapped {
    key_id: String,
    wrapped: String,
}

fn write_wrapped(
    path: &Path,
    provider: &dyn KeyProvider,
    context: &str,
    plain: &[u8],
) -> Result<()> {
    let w = Wrapped {
        key_id: provider.key_id().to_string(),
        wrapped: hex::encode(provider.wrap(context, plain)?),
    };
    write_new(path, &serde_json::to_vec_pretty(&w)?)
}

fn read_wrapped(
    path: &Path,
    provider: &dyn KeyProvider,
    context: &str,
) -> Result<Zeroizing<[u8; 32]>> {
    let bad = |why: String| Error::Verify(format!("{}: {why}", path.display()));
    let text = match fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Named by another key's id, or not there at all.
            let others: Vec<String> = fs::read_dir(path.parent().unwrap_or(Path::new(".")))?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter_map(|n| {
                    n.strip_suffix(".wrapped")
                        .and_then(|r| r.rsplit('.').next())
                        .map(str::to_string)
                })
                .collect();
            return Err(Error::Verify(match others.first() {
                Some(id) => format!(
                    "the domain's secrets are wrapped by master key {id}, not by {}",
                    provider.key_id()
                ),
                None => format!("{}: missing", path.display()),
            }));
        }
        Err(e) => return Err(e.into()),
    };
    let w: Wrapped = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
    if w.key_id != provider.key_id() {
        return Err(bad(format!(
            "wrapped by master key {}, not by {}",
            w.key_id,
            provider.key_id()
        )));
    }
    let bytes = hex::decode(&w.wrapped).map_err(|e| bad(e.to_string()))?;
    let plain = provider.unwrap(context, &bytes)?;
    let mut out = Zeroizing::new([0u8; 32]);
    if plain.len() != 32 {
        return Err(bad("not 32 bytes".into()));
    }
    out.copy_from_slice(&plain);
    Ok(out)
}

/// Creates the domain's keys, wrapped by `provider`. Fails if they exist.
pub fn create(layout: &Layout, provider: &dyn KeyProvider) -> Result<()> {
    let dir = layout.keys();
    fs::create_dir_all(&dir)?;
    let seed = Zeroizing::new(random_bytes::<32>()?);
    let signing = SigningKey::from_bytes(&seed);
    let id = provider.key_id();
    write_wrapped(
        &wrapped_path(layout, SIGNING_FILE, id),
        provider,
        SIGNING_CONTEXT,
        &*seed,
    )?;
    write_new(
        &dir.join(PUBLIC_FILE),
        hex::encode(signing.verifying_key().to_bytes()).as_bytes(),
    )?;
    let secret = Zeroizing::new(random_bytes::<32>()?);
    write_wrapped(
        &wrapped_path(layout, SECRET_FILE, id),
        provider,
        SECRET_CONTEXT,
        &*secret,
    )?;
    create_database_key(layout, provider)
}

/// Makes the metadata database's key, wrapped by `provider` (at `init`, or before a
/// database in the clear is encrypted). Fails if it exists.
pub fn create_database_key(layout: &Layout, provider: &dyn KeyProvider) -> Result<()> {
    let key = Zeroizing::new(random_bytes::<32>()?);
    write_wrapped(
        &wrapped_path(layout, DATABASE_FILE, provider.key_id()),
        provider,
        DATABASE_CONTEXT,
        &*key,
    )
}

/// Whether any master key has wrapped a database key in this data directory.
fn database_key_stored(layout: &Layout) -> Result<bool> {
    let entries = match fs::read_dir(layout.keys()) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().to_string();
        if name.starts_with("domain.sqlcipher.") && name.ends_with(".wrapped") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Wraps the secrets `keyring` holds by `next` as well, in that key's own files (the
/// first step of a rotation: nothing reads them until `keys/master.toml` names `next`).
pub fn rewrap(keyring: &Keyring, next: &dyn KeyProvider) -> Result<()> {
    let layout = &keyring.layout;
    let seed = Zeroizing::new(keyring.signing_key()?.to_bytes());
    let secret = Zeroizing::new(*keyring.pseudonym_secret()?);
    let mut secrets = vec![
        (SIGNING_FILE, SIGNING_CONTEXT, &seed),
        (SECRET_FILE, SECRET_CONTEXT, &secret),
    ];
    let database = keyring.database_key()?.map(|k| Zeroizing::new(*k));
    if let Some(key) = &database {
        secrets.push((DATABASE_FILE, DATABASE_CONTEXT, key));
    }
    for (name, context, plain) in secrets {
        let path = wrapped_path(layout, name, next.key_id());
        if path.exists() {
            fs::remove_file(&path)?;
        }
        write_wrapped(&path, next, context, &**plain)?;
    }
    Ok(())
}

/// Removes the wrapped secrets of every master key but `current` (left by a rotation).
pub fn sweep(layout: &Layout, current: &str) -> Result<()> {
    for entry in fs::read_dir(layout.keys())? {
        let name = entry?.file_name().to_string_lossy().to_string();
        if let Some(rest) = name
            .strip_prefix("domain.ed25519.")
            .or_else(|| name.strip_prefix("domain.hmac."))
            .or_else(|| name.strip_prefix("domain.sqlcipher."))
            && let Some(id) = rest.strip_suffix(".wrapped")
            && id != current
        {
            fs::remove_file(layout.keys().join(&name))?;
        }
    }
    Ok(())
}

/// Whether the data directory's secrets are stored in the clear, as before encryption at
/// rest.
pub fn legacy(layout: &Layout) -> bool {
    layout.keys().join(LEGACY_SIGNING_FILE).exists()
}

/// Wraps the secrets of a data directory made before encryption at rest by `provider`,
/// then removes the clear copies. The wrapped files are written (and synced) before the
/// clear ones go, so a crash leaves the secrets readable one way or the other.
pub fn protect_legacy(layout: &Layout, provider: &dyn KeyProvider) -> Result<()> {
    let dir = layout.keys();
    for (legacy, wrapped, context) in [
        (LEGACY_SIGNING_FILE, SIGNING_FILE, SIGNING_CONTEXT),
        (LEGACY_SECRET_FILE, SECRET_FILE, SECRET_CONTEXT),
    ] {
        let plain = Zeroizing::new(read_hex32(&dir.join(legacy))?);
        let target = wrapped_path(layout, wrapped, provider.key_id());
        if target.exists() {
            fs::remove_file(&target)?;
        }
        write_wrapped(&target, provider, context, &*plain)?;
    }
    for legacy in [LEGACY_SIGNING_FILE, LEGACY_SECRET_FILE] {
        fs::remove_file(dir.join(legacy))?;
    }
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn read_hex32(path: &Path) -> Result<[u8; 32]> {
    let text = Zeroizing::new(fs::read_to_string(path)?);
    let bytes = Zeroizing::new(
        hex::decode(text.trim())
            .map_err(|e| Error::Verify(format!("{}: not hex: {e}", path.display())))?,
    );
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| Error::Verify(format!("{}: not 32 bytes", path.display())))
}

/// The domain's public key (stored in the clear: anyone may verify).
pub fn verifying_key(layout: &Layout) -> Result<VerifyingKey> {
    VerifyingKey::from_bytes(&read_hex32(&layout.keys().join(PUBLIC_FILE))?)
        .map_err(|e| Error::Verify(format!("domain public key: {e}")))
}

/// The domain's secrets, unwrapped by its master key on first use.
pub struct Keyring {
    layout: Layout,
    provider: Arc<dyn KeyProvider>,
    signing: OnceLock<SigningKey>,
    secret: OnceLock<Zeroizing<[u8; 32]>>,
    database: OnceLock<Option<Zeroizing<[u8; 32]>>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("master_key", &self.provider.key_id())
            .finish()
    }
}

impl Keyring {
    /// The keyring of the data directory at `layout`, unwrapped by `provider`.
    pub fn new(layout: Layout, provider: Arc<dyn KeyProvider>) -> Keyring {
        Keyring {
            layout,
            provider,
            signing: OnceLock::new(),
            secret: OnceLock::new(),
            database: OnceLock::new(),
        }
    }

    /// The data directory whose keys these are.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The master key's provider.
    pub fn provider(&self) -> &Arc<dyn KeyProvider> {
        &self.provider
    }

    /// The domain's signing key.
    pub fn signing_key(&self) -> Result<&SigningKey> {
        if let Some(k) = self.signing.get() {
            return Ok(k);
        }
        let seed = read_wrapped(
            &wrapped_path(&self.layout, SIGNING_FILE, self.provider.key_id()),
            &*self.provider,
            SIGNING_CONTEXT,
        )?;
        Ok(self.signing.get_or_init(|| SigningKey::from_bytes(&seed)))
    }

    /// The domain's secret for keyed pseudonyms.
    pub fn pseudonym_secret(&self) -> Result<&[u8; 32]> {
        if let Some(s) = self.secret.get() {
            return Ok(s);
        }
        let secret = read_wrapped(
            &wrapped_path(&self.layout, SECRET_FILE, self.provider.key_id()),
            &*self.provider,
            SECRET_CONTEXT,
        )?;
        Ok(self.secret.get_or_init(|| secret))
    }

    /// The metadata database's key (SQLCipher), or `None` for a database in the clear.
    pub fn database_key(&self) -> Result<Option<&[u8; 32]>> {
        if let Some(k) = self.database.get() {
            return Ok(k.as_deref());
        }
        let path = wrapped_path(&self.layout, DATABASE_FILE, self.provider.key_id());
        let key = if path.exists() || database_key_stored(&self.layout)? {
            // Read even when only another key's file exists: its error names that key.
            Some(read_wrapped(&path, &*self.provider, DATABASE_CONTEXT)?)
        } else {
            None
        };
        Ok(self.database.get_or_init(|| key).as_deref())
    }

    /// Signs `message`, returning the signature as hex.
    pub fn sign(&self, message: &[u8]) -> Result<String> {
        Ok(hex::encode(self.signing_key()?.sign(message).to_bytes()))
    }
}

/// Checks a hex signature of `message` against the domain's public key.
pub fn verify(key: &VerifyingKey, message: &[u8], signature_hex: &str) -> Result<()> {
    let bytes = hex::decode(signature_hex.trim())
        .map_err(|e| Error::Verify(format!("signature is not hex: {e}")))?;
    let sig =
        Signature::from_slice(&bytes).map_err(|e| Error::Verify(format!("signature: {e}")))?;
    key.verify(message, &sig)
        .map_err(|_| Error::Verify("signature does not match the domain key".into()))
}
