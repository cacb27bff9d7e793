//! The domain's keys: a signing key for checkpoints, manifests and reports (Ed25519, or SM2
//! in the `gm` suite), and a secret for keyed pseudonyms. Both are made at `init` from the
//! operating system's random source and stored wrapped by the domain's master key
//! ([`crate::master`]); only the public key is stored in the clear. A [`Keyring`] unwraps
//! them once per process and keeps them in memory (zeroed on drop).
//!
//! The domain's cryptographic suite ([`Suite`]) is fixed at `init` and recorded in
//! `keys/crypto.toml` (a domain without the file is of the `standard` suite, as every
//! domain made before the choice); every key here, and the master key's cipher, is of it.

use std::fs;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use ed25519_dalek::{Signature, Signer, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use sandbox_core::{Error, Result, Secret, Suite};

use crate::Layout;
pub use crate::crypto::{suite, write_suite};
use crate::gm::{self, Sm2Key};
use crate::master::{KeyProvider, random_bytes, write_new};

/// The signing key as the domains made before encryption at rest stored it: in the clear.
const LEGACY_SIGNING_FILE: &str = "domain.ed25519";
/// The pseudonym secret, likewise.
const LEGACY_SECRET_FILE: &str = "domain.hmac";
const SECRET_FILE: &str = "domain.hmac";

/// The signing key's file (wrapped; one per master key) in a domain of `suite`.
fn signing_file(suite: Suite) -> &'static str {
    match suite {
        Suite::Standard => "domain.ed25519",
        Suite::Gm => "domain.sm2",
    }
}

/// The public key's file (hex, in the clear) in a domain of `suite`.
fn public_file(suite: Suite) -> &'static str {
    match suite {
        Suite::Standard => "domain.ed25519.pub",
        Suite::Gm => "domain.sm2.pub",
    }
}

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

/// Creates the domain's keys, of the suite the data directory records, wrapped by
/// `provider`. Fails if they exist.
pub fn create(layout: &Layout, provider: &dyn KeyProvider) -> Result<()> {
    let dir = layout.keys();
    fs::create_dir_all(&dir)?;
    let suite = suite(layout)?;
    check_provider(suite, provider)?;
    let (seed, signing) = loop {
        let seed = Zeroizing::new(random_bytes::<32>()?);
        // An SM2 secret is a scalar in [1, n−1]: a draw outside (probability ~2^-32) is
        // drawn again.
        if let Ok(key) = SigningKey::from_seed(suite, &seed) {
            break (seed, key);
        }
    };
    let id = provider.key_id();
    write_wrapped(
        &wrapped_path(layout, signing_file(suite), id),
        provider,
        SIGNING_CONTEXT,
        &*seed,
    )?;
    write_new(
        &dir.join(public_file(suite)),
        signing.public_key().to_hex().as_bytes(),
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
    check_provider(keyring.suite, next)?;
    let seed = keyring.signing_key()?.seed();
    let secret = Zeroizing::new(*keyring.pseudonym_secret()?.bytes());
    let mut secrets = vec![
        (signing_file(keyring.suite), SIGNING_CONTEXT, &seed),
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
            .or_else(|| name.strip_prefix("domain.sm2."))
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
        (
            LEGACY_SIGNING_FILE,
            signing_file(Suite::Standard),
            SIGNING_CONTEXT,
        ),
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
pub fn public_key(layout: &Layout) -> Result<PublicKey> {
    let path = layout.keys().join(public_file(suite(layout)?));
    let text =
        fs::read_to_string(&path).map_err(|e| Error::Verify(format!("{}: {e}", path.display())))?;
    PublicKey::parse(&text).map_err(|e| Error::Verify(format!("domain public key: {e}")))
}

/// A domain's public key, of either suite: an Ed25519 key (32 bytes, 64 hex digits) or an
/// SM2 key (an uncompressed SEC1 point, 65 bytes, 130 hex digits). Its form names its
/// suite, so a key of one suite never checks a signature of the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// Ed25519 (`standard`).
    Ed25519(VerifyingKey),
    /// SM2 with the default distinguishing identifier (`gm`), SEC1 uncompressed.
    Sm2(Vec<u8>),
}

impl PublicKey {
    /// The key from hex: 64 digits are an Ed25519 key, 130 an SM2 point.
    pub fn parse(hex_key: &str) -> Result<PublicKey> {
        let bytes = hex::decode(hex_key.trim())
            .map_err(|_| Error::Verify("public key is not hex".into()))?;
        match bytes.len() {
            32 => {
                let mut b = [0u8; 32];
                b.copy_from_slice(&bytes);
                VerifyingKey::from_bytes(&b)
                    .map(PublicKey::Ed25519)
                    .map_err(|e| Error::Verify(format!("public key: {e}")))
            }
            65 => {
                gm::check_public(&bytes)?;
                Ok(PublicKey::Sm2(bytes))
            }
            n => Err(Error::Verify(format!(
                "public key is {n} bytes: neither an Ed25519 key (32) nor an SM2 key (65)"
            ))),
        }
    }

    /// The suite of a key written in hex, from its length alone (130 digits: SM2; any
    /// other: standard), without checking it is a key ([`PublicKey::parse`] does).
    pub fn suite_of_hex(hex_key: &str) -> Suite {
        if hex_key.trim().len() == 130 {
            Suite::Gm
        } else {
            Suite::Standard
        }
    }

    /// The suite whose signatures it checks.
    pub fn suite(&self) -> Suite {
        match self {
            PublicKey::Ed25519(_) => Suite::Standard,
            PublicKey::Sm2(_) => Suite::Gm,
        }
    }

    /// The key in hex, as checkpoints and manifests name it.
    pub fn to_hex(&self) -> String {
        match self {
            PublicKey::Ed25519(k) => hex::encode(k.to_bytes()),
            PublicKey::Sm2(k) => hex::encode(k),
        }
    }

    /// The key as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), for other tools (OpenSSL) to
    /// verify with.
    pub fn to_pem(&self) -> Result<String> {
        use ed25519_dalek::pkcs8::EncodePublicKey as _;
        match self {
            PublicKey::Ed25519(k) => k
                .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
                .map_err(|e| Error::Internal(format!("Ed25519 public key PEM: {e}"))),
            PublicKey::Sm2(k) => gm::public_key_pem(k),
        }
    }

    /// Checks a hex signature of `message` (Ed25519's 64 bytes, or SM2's DER).
    pub fn verify(&self, message: &[u8], signature_hex: &str) -> Result<()> {
        let bytes = hex::decode(signature_hex.trim())
            .map_err(|e| Error::Verify(format!("signature is not hex: {e}")))?;
        match self {
            PublicKey::Ed25519(key) => {
                let sig = Signature::from_slice(&bytes)
                    .map_err(|e| Error::Verify(format!("signature: {e}")))?;
                key.verify(message, &sig)
                    .map_err(|_| Error::Verify("signature does not match the domain key".into()))
            }
            PublicKey::Sm2(key) => gm::sm2_verify(key, message, &bytes)
                .map_err(|_| Error::Verify("signature does not match the domain key".into())),
        }
    }
}

/// The domain's signing key, of its suite.
enum SigningKey {
    Ed25519(ed25519_dalek::SigningKey, Zeroizing<[u8; 32]>),
    Sm2(Sm2Key),
}

impl SigningKey {
    /// The key of 32 secret bytes (Ed25519's seed, or SM2's scalar).
    fn from_seed(suite: Suite, seed: &[u8; 32]) -> Result<SigningKey> {
        Ok(match suite {
            Suite::Standard => SigningKey::Ed25519(
                ed25519_dalek::SigningKey::from_bytes(seed),
                Zeroizing::new(*seed),
            ),
            Suite::Gm => SigningKey::Sm2(Sm2Key::from_bytes(seed)?),
        })
    }

    fn seed(&self) -> Zeroizing<[u8; 32]> {
        match self {
            SigningKey::Ed25519(_, seed) => seed.clone(),
            SigningKey::Sm2(k) => k.secret_bytes(),
        }
    }

    fn public_key(&self) -> PublicKey {
        match self {
            SigningKey::Ed25519(k, _) => PublicKey::Ed25519(k.verifying_key()),
            SigningKey::Sm2(k) => PublicKey::Sm2(k.public_sec1()),
        }
    }

    fn sign(&self, message: &[u8]) -> String {
        match self {
            SigningKey::Ed25519(k, _) => hex::encode(k.sign(message).to_bytes()),
            SigningKey::Sm2(k) => hex::encode(k.sign(message)),
        }
    }
}

/// Refuses a master key provider whose cipher is not the domain suite's.
fn check_provider(suite: Suite, provider: &dyn KeyProvider) -> Result<()> {
    if provider.suite() != suite {
        return Err(Error::Invalid(format!(
            "this domain's cryptographic suite is {suite}: its master key wraps with {}, \
             and master key {} wraps with {}",
            suite.wrapping_name(),
            provider.key_id(),
            provider.suite().wrapping_name()
        )));
    }
    Ok(())
}

/// The domain's secrets, unwrapped by its master key on first use.
pub struct Keyring {
    layout: Layout,
    suite: Suite,
    provider: Arc<dyn KeyProvider>,
    signing: OnceLock<SigningKey>,
    secret: OnceLock<Secret>,
    database: OnceLock<Option<Zeroizing<[u8; 32]>>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("suite", &self.suite)
            .field("master_key", &self.provider.key_id())
            .finish()
    }
}

impl Keyring {
    /// The keyring of the data directory at `layout`, unwrapped by `provider`, which must
    /// be of the directory's suite.
    pub fn new(layout: Layout, provider: Arc<dyn KeyProvider>) -> Result<Keyring> {
        let suite = suite(&layout)?;
        check_provider(suite, &*provider)?;
        Ok(Keyring {
            layout,
            suite,
            provider,
            signing: OnceLock::new(),
            secret: OnceLock::new(),
            database: OnceLock::new(),
        })
    }

    /// The domain's cryptographic suite.
    pub fn suite(&self) -> Suite {
        self.suite
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
    fn signing_key(&self) -> Result<&SigningKey> {
        if let Some(k) = self.signing.get() {
            return Ok(k);
        }
        let seed = read_wrapped(
            &wrapped_path(
                &self.layout,
                signing_file(self.suite),
                self.provider.key_id(),
            ),
            &*self.provider,
            SIGNING_CONTEXT,
        )?;
        let key = SigningKey::from_seed(self.suite, &seed)?;
        Ok(self.signing.get_or_init(|| key))
    }

    /// The signing key's 32 secret bytes (Ed25519's seed, or SM2's scalar), to move it to
    /// another holder (a hardware security module) or to look for it where it must not be.
    pub fn signing_seed(&self) -> Result<Zeroizing<[u8; 32]>> {
        Ok(self.signing_key()?.seed())
    }

    /// The public key of the domain's signing key (as unwrapped, not as the public file
    /// says).
    pub fn public_key(&self) -> Result<PublicKey> {
        Ok(self.signing_key()?.public_key())
    }

    /// The domain's secret for keyed pseudonyms, with its suite.
    pub fn pseudonym_secret(&self) -> Result<&Secret> {
        if let Some(s) = self.secret.get() {
            return Ok(s);
        }
        let secret = read_wrapped(
            &wrapped_path(&self.layout, SECRET_FILE, self.provider.key_id()),
            &*self.provider,
            SECRET_CONTEXT,
        )?;
        Ok(self.secret.get_or_init(|| Secret::new(self.suite, *secret)))
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

    /// Signs `message` with the domain key, returning the signature as hex (Ed25519's 64
    /// bytes, or SM2's DER as OpenSSL writes it).
    pub fn sign(&self, message: &[u8]) -> Result<String> {
        Ok(self.signing_key()?.sign(message))
    }
}

/// Checks a hex signature of `message` against a domain's public key.
pub fn verify(key: &PublicKey, message: &[u8], signature_hex: &str) -> Result<()> {
    key.verify(message, signature_hex)
}
