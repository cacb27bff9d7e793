//! The domain's cryptographic suite, fixed when the domain is made (`sandbox init
//! --crypto`): which hash builds the audit tree and the content hashes, which MAC makes
//! pseudonyms, which signature signs checkpoints and manifests, which cipher wraps keys.
//!
//! | suite      | hash    | MAC         | signature | key wrapping |
//! |------------|---------|-------------|-----------|--------------|
//! | `standard` | SHA-256 | HMAC-SHA256 | Ed25519   | AES-256-GCM  |
//! | `gm`       | SM3     | HMAC-SM3    | SM2       | SM4-GCM      |
//!
//! The `gm` suite is the commercial (national) cryptography Chinese platforms are assessed
//! against (GB/T 32905 SM3, GB/T 32918 SM2, GB/T 32907 SM4). Both hashes give 32 bytes, so
//! everything that stores a hash stores either. This module holds the hashes and MACs
//! (pure); the signatures and key wrapping live with the keys (`sandbox-store`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// A cryptographic suite.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Suite {
    /// SHA-256, HMAC-SHA256, Ed25519, AES-256-GCM (every domain made before the choice).
    #[default]
    Standard,
    /// SM3, HMAC-SM3, SM2 (default distinguishing identifier), SM4-GCM.
    Gm,
}

impl Suite {
    /// Every suite.
    pub const ALL: [Suite; 2] = [Suite::Standard, Suite::Gm];

    /// The suite's name as written (`standard`, `gm`).
    pub fn name(self) -> &'static str {
        match self {
            Suite::Standard => "standard",
            Suite::Gm => "gm",
        }
    }

    /// The hash's name, as the fields that hold its digests are named (`sha256`, `sm3`).
    pub fn hash_name(self) -> &'static str {
        match self {
            Suite::Standard => "sha256",
            Suite::Gm => "sm3",
        }
    }

    /// The signature scheme's name (`Ed25519`, `SM2`).
    pub fn signature_name(self) -> &'static str {
        match self {
            Suite::Standard => "Ed25519",
            Suite::Gm => "SM2",
        }
    }

    /// The key-wrapping cipher's name.
    pub fn wrapping_name(self) -> &'static str {
        match self {
            Suite::Standard => "AES-256-GCM",
            Suite::Gm => "SM4-GCM",
        }
    }

    /// The hash of the concatenation of `parts`.
    pub fn hash(self, parts: &[&[u8]]) -> [u8; 32] {
        match self {
            Suite::Standard => {
                use sha2::Digest as _;
                let mut h = sha2::Sha256::new();
                for p in parts {
                    h.update(p);
                }
                h.finalize().into()
            }
            Suite::Gm => {
                use sm3::Digest as _;
                let mut h = sm3::Sm3::new();
                for p in parts {
                    h.update(p);
                }
                h.finalize().into()
            }
        }
    }

    /// The hash of `bytes`, hex: the domain's content hash.
    pub fn hash_hex(self, bytes: &[u8]) -> String {
        hex::encode(self.hash(&[bytes]))
    }

    /// The hash of everything `readers` yield, one after the other, hex: the content hash
    /// of files too large to hold in memory (`hash_hex` of their concatenation).
    pub fn hash_hex_reading<R: std::io::Read>(
        self,
        readers: impl IntoIterator<Item = R>,
    ) -> std::io::Result<String> {
        enum Running {
            Standard(sha2::Sha256),
            Gm(sm3::Sm3),
        }
        let mut running = match self {
            Suite::Standard => Running::Standard(sha2::Digest::new()),
            Suite::Gm => Running::Gm(sm3::Digest::new()),
        };
        let mut buf = vec![0u8; 1 << 16];
        for mut reader in readers {
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                match &mut running {
                    Running::Standard(h) => sha2::Digest::update(h, &buf[..n]),
                    Running::Gm(h) => sm3::Digest::update(h, &buf[..n]),
                }
            }
        }
        let digest: [u8; 32] = match running {
            Running::Standard(h) => sha2::Digest::finalize(h).into(),
            Running::Gm(h) => sm3::Digest::finalize(h).into(),
        };
        Ok(hex::encode(digest))
    }

    /// The MAC of `data` under `key` (any length).
    pub fn mac(self, key: &[u8], data: &[u8]) -> [u8; 32] {
        Mac::new(self, key).of(data)
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Suite {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Suite> {
        Suite::ALL
            .into_iter()
            .find(|suite| suite.name() == s)
            .ok_or_else(|| {
                crate::Error::Invalid(format!(
                    "unknown cryptographic suite `{s}` (standard or gm)"
                ))
            })
    }
}

/// A MAC keyed once and applied to many messages (the key schedule is done at
/// [`Mac::new`]; each message starts from a copy of it).
#[derive(Clone)]
pub enum Mac {
    /// HMAC-SHA256.
    Sha256(hmac::Hmac<sha2::Sha256>),
    /// HMAC-SM3.
    Sm3(hmac_gm::Hmac<sm3::Sm3>),
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mac::Sha256(_) => "Mac(HMAC-SHA256)",
            Mac::Sm3(_) => "Mac(HMAC-SM3)",
        })
    }
}

impl Mac {
    /// The suite's MAC under `key` (HMAC takes a key of any length).
    pub fn new(suite: Suite, key: &[u8]) -> Mac {
        match suite {
            Suite::Standard => {
                use hmac::Mac as _;
                match hmac::Hmac::<sha2::Sha256>::new_from_slice(key) {
                    Ok(m) => Mac::Sha256(m),
                    Err(_) => unreachable!("HMAC takes a key of any length"),
                }
            }
            Suite::Gm => {
                use hmac_gm::KeyInit as _;
                match hmac_gm::Hmac::<sm3::Sm3>::new_from_slice(key) {
                    Ok(m) => Mac::Sm3(m),
                    Err(_) => unreachable!("HMAC takes a key of any length"),
                }
            }
        }
    }

    /// The MAC of `data`.
    pub fn of(&self, data: &[u8]) -> [u8; 32] {
        match self {
            Mac::Sha256(m) => {
                use hmac::Mac as _;
                let mut m = m.clone();
                m.update(data);
                m.finalize().into_bytes().into()
            }
            Mac::Sm3(m) => {
                use hmac_gm::Mac as _;
                let mut m = m.clone();
                m.update(data);
                m.finalize().into_bytes().into()
            }
        }
    }
}

/// The domain's pseudonym secret with its suite: keyed hashes of values (pseudonyms, value
/// sets, the differencing guard's key) are MACs under it, or under keys derived from it.
#[derive(Clone)]
pub struct Secret {
    suite: Suite,
    key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl Secret {
    /// The secret `key` of a domain of `suite`.
    pub fn new(suite: Suite, key: [u8; 32]) -> Secret {
        Secret {
            suite,
            key: Zeroizing::new(key),
        }
    }

    /// The suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The secret's bytes (to wrap it under another master key).
    pub fn bytes(&self) -> &[u8; 32] {
        &self.key
    }

    /// The MAC of `data` under the secret.
    pub fn mac(&self, data: &[u8]) -> [u8; 32] {
        self.suite.mac(&*self.key, data)
    }

    /// A MAC under the secret, keyed once for many messages.
    pub fn keyed(&self) -> Mac {
        Mac::new(self.suite, &*self.key)
    }

    /// A key of its own for `purpose`, derived from the secret (the MAC of the purpose).
    pub fn derive(&self, purpose: &str) -> Secret {
        Secret::new(self.suite, self.mac(purpose.as_bytes()))
    }

    /// The first 16 bytes of [`Secret::derive`]: a key for a 128-bit keyed hash.
    pub fn derive_16(&self, purpose: &str) -> [u8; 16] {
        let full = self.mac(purpose.as_bytes());
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GB/T 32905-2016 Annex A example 1, and FIPS 180-2's "abc".
    #[test]
    fn each_suite_hashes_with_its_standard() {
        assert_eq!(
            Suite::Gm.hash_hex(b"abc"),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
        assert_eq!(
            Suite::Standard.hash_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Suite::Gm.hash(&[b"a", b"bc"]), Suite::Gm.hash(&[b"abc"]));
    }

    /// Hashing readers one after the other is hashing their concatenation, in both suites,
    /// across the reading buffer's boundary.
    #[test]
    fn hashing_readers_is_hashing_their_concatenation() -> std::io::Result<()> {
        let long: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        for suite in Suite::ALL {
            let (a, b) = long.split_at(70_001);
            assert_eq!(
                suite.hash_hex_reading([a, b, &[][..]])?,
                suite.hash_hex(&long)
            );
            assert_eq!(
                suite.hash_hex_reading([&b"abc"[..]])?,
                suite.hash_hex(b"abc")
            );
            assert_ne!(suite.hash_hex_reading([b])?, suite.hash_hex(&long));
        }
        Ok(())
    }

    /// RFC 4231 test case 2 for HMAC-SHA256; HMAC-SM3 agrees with itself keyed once.
    #[test]
    fn macs_are_hmac() {
        assert_eq!(
            hex::encode(Suite::Standard.mac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let s = Secret::new(Suite::Gm, [7; 32]);
        assert_eq!(s.mac(b"x"), s.keyed().of(b"x"));
        assert_ne!(s.mac(b"x"), Secret::new(Suite::Standard, [7; 32]).mac(b"x"));
        assert_ne!(s.derive("a").mac(b"x"), s.derive("b").mac(b"x"));
    }

    #[test]
    fn suites_read_back_by_name() {
        for s in Suite::ALL {
            assert_eq!(s.name().parse::<Suite>().ok(), Some(s));
        }
        assert!("sm".parse::<Suite>().is_err());
    }
}
