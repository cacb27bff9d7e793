//! The domain's keys: an Ed25519 signing key for checkpoints, manifests and reports, and a
//! secret for keyed pseudonyms. Both are made at `init` from the operating system's random
//! source and stored wrapped by the domain's master key ([`crate::master`]); only the
//! public key is stored in the clear. A [`Keyring`] unwraps them once per process and
//! keeps them in memory (zeroed on drop).

use std::fs;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use rand::TryRngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use sandbox_core::{Error, Result};

use crate::Layout;
use crate::master::KeyProvider;

/// The signing key as the domains made before encryption at rest stored it: in the clear.
const LEGACY_SIGNING_FILE: &str = "domain.ed25519";
/// The pseudonym secret, likewise.
const LEGACY_SECRET_FILE: &str = "domain.hmac";
const SIGNING_FILE: &str = "domain.ed25519.wrapped";
const PUBLIC_FILE: &str = "domain.ed25519.pub";
const SECRET_FILE: &str = "domain.hmac.wrapped";
const SIGNING_CONTEXT: &str = "sandbox domain signing key";
const SECRET_CONTEXT: &str = "sandbox domain pseudonym secret";

/// `N` bytes from the operating system's random source.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| Error::Internal(format!("operating system random source: {e}")))?;
    Ok(bytes)
}

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
    let w: Wrapped = serde_json::from_slice(&fs::read(path)?).map_err(|e| bad(e.to_string()))?;
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
    write_wrapped(&dir.join(SIGNING_FILE), provider, SIGNING_CONTEXT, &*seed)?;
    write_new(
        &dir.join(PUBLIC_FILE),
        hex::encode(signing.verifying_key().to_bytes()).as_bytes(),
    )?;
    let secret = Zeroizing::new(random_bytes::<32>()?);
    write_wrapped(&dir.join(SECRET_FILE), provider, SECRET_CONTEXT, &*secret)?;
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
        let target = dir.join(wrapped);
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
        }
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
            &self.layout.keys().join(SIGNING_FILE),
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
            &self.layout.keys().join(SECRET_FILE),
            &*self.provider,
            SECRET_CONTEXT,
        )?;
        Ok(self.secret.get_or_init(|| secret))
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
