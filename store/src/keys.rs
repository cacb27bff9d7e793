//! The domain's keys: an Ed25519 signing key for manifests and a secret for keyed
//! pseudonyms. Both are made at `init` from the operating system's random source and
//! never leave the data directory.

use std::fs;
use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use rand::TryRngCore;

use sandbox_core::{Error, Result};

use crate::Layout;

const SIGNING_FILE: &str = "domain.ed25519";
const PUBLIC_FILE: &str = "domain.ed25519.pub";
const SECRET_FILE: &str = "domain.hmac";

fn random_32() -> Result<[u8; 32]> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| Error::Internal(format!("operating system random source: {e}")))?;
    Ok(bytes)
}

/// Creates the domain's keys. Fails if they exist.
pub fn create(layout: &Layout) -> Result<()> {
    let dir = layout.keys();
    fs::create_dir_all(&dir)?;
    let signing = SigningKey::from_bytes(&random_32()?);
    write_new(
        &dir.join(SIGNING_FILE),
        hex::encode(signing.to_bytes()).as_bytes(),
    )?;
    write_new(
        &dir.join(PUBLIC_FILE),
        hex::encode(signing.verifying_key().to_bytes()).as_bytes(),
    )?;
    write_new(&dir.join(SECRET_FILE), hex::encode(random_32()?).as_bytes())?;
    Ok(())
}

fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
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
    let text = fs::read_to_string(path)?;
    let bytes = hex::decode(text.trim())
        .map_err(|e| Error::Verify(format!("{}: not hex: {e}", path.display())))?;
    bytes
        .try_into()
        .map_err(|_| Error::Verify(format!("{}: not 32 bytes", path.display())))
}

/// The domain's signing key.
pub fn signing_key(layout: &Layout) -> Result<SigningKey> {
    Ok(SigningKey::from_bytes(&read_hex32(
        &layout.keys().join(SIGNING_FILE),
    )?))
}

/// The domain's public key.
pub fn verifying_key(layout: &Layout) -> Result<VerifyingKey> {
    VerifyingKey::from_bytes(&read_hex32(&layout.keys().join(PUBLIC_FILE))?)
        .map_err(|e| Error::Verify(format!("domain public key: {e}")))
}

/// The domain's secret for keyed pseudonyms.
pub fn pseudonym_secret(layout: &Layout) -> Result<[u8; 32]> {
    read_hex32(&layout.keys().join(SECRET_FILE))
}

/// Signs `message`, returning the signature as hex.
pub fn sign(layout: &Layout, message: &[u8]) -> Result<String> {
    Ok(hex::encode(signing_key(layout)?.sign(message).to_bytes()))
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
