//! Identifiers, hashes and file names: small pure helpers every layer shares.

/// A short random id with a prefix, e.g. `job-3f9c2a71d0b4`.
pub fn new_id(prefix: &str) -> String {
    use rand::Rng;
    let n: u64 = rand::rng().random();
    format!("{prefix}-{n:016x}")
}

/// Little-endian u64s packed in a byte string (trailing bytes that do not fill one are
/// ignored; callers check the length where it matters).
pub fn u64s_le(bytes: &[u8]) -> Vec<u64> {
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

/// 32 bytes (or `N`) from the operating system's random source.
pub fn random<const N: usize>() -> crate::Result<[u8; N]> {
    use rand::TryRngCore;
    let mut bytes = [0u8; N];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| crate::Error::Internal(format!("operating system random source: {e}")))?;
    Ok(bytes)
}
