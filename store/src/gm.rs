//! The commercial (national) cryptography suite's primitives (JZ Art. 8): SM3 hashes
//! (GB/T 32905), HMAC-SM3, SM2 signatures (GB/T 32918) with the standard default
//! distinguishing identifier, SM4 (GB/T 32907). RustCrypto's implementations, never
//! hand-written; checked here against the standards' known answers and, in the tests,
//! against OpenSSL 3 both ways. This is the primitive layer a domain made with the suite
//! (`init --crypto gm`) builds on: its hashes and MACs are [`Suite::Gm`]'s (in the core),
//! its signatures these, its key wrapping SM4-GCM ([`crate::master`]).

use sm2::dsa::signature::{Signer as _, Verifier as _};
use sm2::dsa::{DerSignature, Signature, SigningKey, VerifyingKey};
use sm2::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
use sm4::cipher::{BlockCipherEncrypt as _, KeyInit as _};
use zeroize::Zeroizing;

use sandbox_core::{Error, Result, Suite};

/// The distinguishing identifier GB/T 35276 gives as the default (the ASCII of
/// `1234567812345678`); OpenSSL needs it said (`-pkeyopt distid:1234567812345678`).
pub const DEFAULT_DISTID: &str = "1234567812345678";

/// SM3 of `data`.
pub fn sm3(data: &[u8]) -> [u8; 32] {
    Suite::Gm.hash(&[data])
}

/// HMAC-SM3 of `data` under `key`.
pub fn hmac_sm3(key: &[u8], data: &[u8]) -> [u8; 32] {
    Suite::Gm.mac(key, data)
}

/// SM4 of one 16-byte block under a 16-byte key (the cipher the suite wraps keys with).
pub fn sm4_encrypt_block(key: &[u8; 16], block: &[u8; 16]) -> [u8; 16] {
    let cipher = sm4::Sm4::new(key.into());
    let mut b = (*block).into();
    cipher.encrypt_block(&mut b);
    b.into()
}

/// An SM2 signing key with the default distinguishing identifier.
pub struct Sm2Key(SigningKey);

impl std::fmt::Debug for Sm2Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sm2Key")
    }
}

impl Sm2Key {
    /// The key of a 32-byte big-endian secret scalar (in [1, n−1]).
    pub fn from_bytes(secret: &[u8; 32]) -> Result<Sm2Key> {
        SigningKey::from_slice(DEFAULT_DISTID, secret)
            .map(Sm2Key)
            .map_err(|_| Error::Invalid("not an SM2 secret key".into()))
    }

    /// The public key, as an uncompressed SEC1 point (65 bytes, `04‖x‖y`).
    pub fn public_sec1(&self) -> Vec<u8> {
        self.0.verifying_key().to_sec1_bytes().to_vec()
    }

    /// The secret scalar, 32 bytes big-endian (what [`Sm2Key::from_bytes`] takes).
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&self.0.to_bytes());
        out
    }

    /// The public key as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), for OpenSSL and other
    /// tools to verify with.
    pub fn public_key_pem(&self) -> Result<String> {
        public_key_pem(&self.public_sec1())
    }

    /// The secret key as a PEM `PRIVATE KEY` (PKCS #8), for moving it to another tool.
    pub fn private_key_pem(&self) -> Result<Zeroizing<String>> {
        let secret = sm2::SecretKey::from_bytes(&self.0.to_bytes())
            .map_err(|_| Error::Internal("SM2 secret key".into()))?;
        let pem = secret
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| Error::Internal(format!("SM2 secret key PEM: {e}")))?;
        Ok(Zeroizing::new(pem.as_str().to_string()))
    }

    /// Signs `message` (SM3 over Z‖message, as the standard says), DER-encoded as OpenSSL
    /// writes it.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let sig: Signature = self.0.sign(message);
        sig.to_der().to_bytes().to_vec()
    }
}

/// Checks that `sec1` is an SM2 public key (a point on the curve).
pub fn check_public(sec1: &[u8]) -> Result<()> {
    sm2::PublicKey::from_sec1_bytes(sec1)
        .map(|_| ())
        .map_err(|_| Error::Verify("not an SM2 public key".into()))
}

/// An SM2 public key (SEC1) as a PEM `PUBLIC KEY`.
pub fn public_key_pem(sec1: &[u8]) -> Result<String> {
    let public = sm2::PublicKey::from_sec1_bytes(sec1)
        .map_err(|_| Error::Verify("not an SM2 public key".into()))?;
    public
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| Error::Internal(format!("SM2 public key PEM: {e}")))
}

/// Checks a DER-encoded SM2 signature of `message` by the public key `public_sec1`
/// (default distinguishing identifier).
pub fn sm2_verify(public_sec1: &[u8], message: &[u8], der: &[u8]) -> Result<()> {
    let key = VerifyingKey::from_sec1_bytes(DEFAULT_DISTID, public_sec1)
        .map_err(|_| Error::Verify("not an SM2 public key".into()))?;
    let der = DerSignature::from_bytes(der)
        .map_err(|_| Error::Verify("not a DER-encoded SM2 signature".into()))?;
    let sig = Signature::from_der(der.as_bytes())
        .map_err(|_| Error::Verify("not an SM2 signature".into()))?;
    key.verify(message, &sig)
        .map_err(|_| Error::Verify("the SM2 signature does not match".into()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// GB/T 32905-2016 Annex A: example 1 ("abc") and example 2 ("abcd" × 16).
    #[test]
    fn sm3_gives_the_standards_answers() {
        assert_eq!(
            hex::encode(sm3(b"abc")),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
        assert_eq!(
            hex::encode(sm3("abcd".repeat(16).as_bytes())),
            "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
        );
    }

    /// GB/T 32907-2016 Appendix A, example 1: key = plaintext = 0123456789abcdeffedcba9876543210.
    #[test]
    fn sm4_gives_the_standards_answer() {
        let k: [u8; 16] = hex::decode("0123456789abcdeffedcba9876543210")
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(
            hex::encode(sm4_encrypt_block(&k, &k)),
            "681edf34d206965e86b3e94f536e4246"
        );
    }

    #[test]
    fn hmac_sm3_is_keyed() {
        let a = hmac_sm3(b"key one", b"110101199003071234");
        assert_eq!(a, hmac_sm3(b"key one", b"110101199003071234"));
        assert_ne!(a, hmac_sm3(b"key two", b"110101199003071234"));
        assert_ne!(a, sm3(b"110101199003071234"));
    }

    #[test]
    fn an_sm2_signature_verifies_and_an_altered_one_does_not() {
        let key = Sm2Key::from_bytes(&[0x42; 32]).unwrap();
        assert_eq!(*key.secret_bytes(), [0x42; 32]);
        let public = key.public_sec1();
        let sig = key.sign(b"sandbox audit checkpoint");
        sm2_verify(&public, b"sandbox audit checkpoint", &sig).unwrap();
        assert!(sm2_verify(&public, b"sandbox audit checkpoinT", &sig).is_err());
        let other = Sm2Key::from_bytes(&[0x43; 32]).unwrap().public_sec1();
        assert!(sm2_verify(&other, b"sandbox audit checkpoint", &sig).is_err());
        assert!(Sm2Key::from_bytes(&[0; 32]).is_err());
    }
}
