//! Data at rest, the master key: the domain's secrets are stored wrapped by a key that
//! never lives in the data directory (TJ-Sec Art. 10; SYS Art. 18).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sandbox_runtime::master::{KeyProvider, LocalKey};
use sandbox_runtime::{Domain, Error, MasterKey, audit};

/// Every file under `dir`, with its bytes.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The domain's secrets (signing key, pseudonym secret) appear nowhere under the data
/// directory, as bytes or as hex; the master key is in a file beside it, which the
/// directory names; without it, or with another key, the domain does not open.
#[test]
fn a_domains_secrets_are_wrapped_by_a_master_key_kept_outside_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let domain = Domain::init(&dir).unwrap();
    let seed = domain.keys().signing_key().unwrap().to_bytes();
    let secret = *domain.keys().pseudonym_secret().unwrap();
    assert!(audit::checkpoint_if_grown(&domain).unwrap().is_some());
    drop(domain);
    for (path, bytes) in files(&dir) {
        for s in [&seed[..], &secret[..]] {
            assert!(!contains(&bytes, s), "{} holds a secret", path.display());
            assert!(
                !contains(&bytes, hex::encode(s).as_bytes()),
                "{} holds a secret as hex",
                path.display()
            );
        }
    }
    let key_file = tmp.path().join("d.master-key");
    assert!(key_file.exists());
    let config = std::fs::read_to_string(dir.join("keys/master.toml")).unwrap();
    assert!(config.contains(&key_file.display().to_string()), "{config}");
    for (path, bytes) in files(&dir) {
        let key = std::fs::read(&key_file).unwrap();
        assert!(
            !contains(&bytes, &key),
            "{} holds the master key",
            path.display()
        );
    }

    // Reopened with its key: the same secrets.
    let domain = Domain::open(&dir).unwrap();
    assert_eq!(domain.keys().signing_key().unwrap().to_bytes(), seed);
    assert_eq!(*domain.keys().pseudonym_secret().unwrap(), secret);
    drop(domain);

    // Another key handed in (as an HSM would be): nothing unwraps, the domain does not
    // open.
    let other: Arc<dyn KeyProvider> = Arc::new(LocalKey::from_bytes(&[9u8; 32]).unwrap());
    match Domain::open_with(&dir, other) {
        Err(Error::Verify(m)) => assert!(m.contains("wrapped by master key"), "{m}"),
        other => panic!("{other:?}"),
    }

    // The key file gone: the domain does not open, and says where it looked.
    let moved = tmp.path().join("elsewhere.key");
    std::fs::rename(&key_file, &moved).unwrap();
    match Domain::open(&dir) {
        Err(Error::Invalid(m)) => assert!(m.contains("d.master-key"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Another key in the named file: refused by its id before anything is unwrapped.
    std::fs::write(&key_file, hex::encode([5u8; 32])).unwrap();
    match Domain::open(&dir) {
        Err(Error::Invalid(m)) => assert!(m.contains("is not this domain's"), "{m}"),
        other => panic!("{other:?}"),
    }
}

/// A provider that holds the key where this process cannot read it: here, a wrapper that
/// counts what it is asked to do, standing for an HSM or a KMS.
#[derive(Debug)]
struct Counting {
    inner: LocalKey,
    unwraps: AtomicUsize,
}

impl KeyProvider for Counting {
    fn key_id(&self) -> &str {
        self.inner.key_id()
    }
    fn wrap(&self, context: &str, plain: &[u8]) -> sandbox_runtime::Result<Vec<u8>> {
        self.inner.wrap(context, plain)
    }
    fn unwrap(
        &self,
        context: &str,
        wrapped: &[u8],
    ) -> sandbox_runtime::Result<zeroize::Zeroizing<Vec<u8>>> {
        self.unwraps.fetch_add(1, Ordering::SeqCst);
        self.inner.unwrap(context, wrapped)
    }
}

/// A key provider handed to the domain does the unwrapping, once per secret per process;
/// a domain's key file may be one made before (`--existing`) or an environment variable.
#[test]
fn a_key_provider_unwraps_each_secret_once() {
    let tmp = tempfile::tempdir().unwrap();
    let key_file = tmp.path().join("keys").join("ops.key");
    let dir = tmp.path().join("d");
    drop(Domain::init_keyed(&dir, &Default::default(), &MasterKey::New(key_file.clone())).unwrap());
    let key = LocalKey::from_hex(&std::fs::read_to_string(&key_file).unwrap(), "test").unwrap();
    let provider = Arc::new(Counting {
        inner: key,
        unwraps: AtomicUsize::new(0),
    });
    let domain = Domain::open_with(&dir, provider.clone()).unwrap();
    for _ in 0..3 {
        audit::checkpoint_if_grown(&domain).unwrap();
        domain.keys().signing_key().unwrap();
        domain.keys().pseudonym_secret().unwrap();
    }
    // Both at open, once.
    assert_eq!(provider.unwraps.load(Ordering::SeqCst), 2);

    // A second domain on the same key file, made beforehand.
    let second = tmp.path().join("e");
    let d = Domain::init_keyed(
        &second,
        &Default::default(),
        &MasterKey::File(key_file.clone()),
    )
    .unwrap();
    assert_eq!(d.keys().provider().key_id(), provider.key_id());
}

/// Nothing is left behind when the master key cannot be had: a key file inside the data
/// directory, a new key over an existing file, an unset variable.
#[test]
fn init_refuses_a_master_key_it_cannot_keep_apart_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let settings = Default::default();
    match Domain::init_keyed(&dir, &settings, &MasterKey::New(dir.join("master.key"))) {
        Err(Error::Invalid(m)) => assert!(m.contains("inside the data directory"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(!dir.exists());
    let taken = tmp.path().join("taken.key");
    std::fs::write(&taken, "x").unwrap();
    assert!(matches!(
        Domain::init_keyed(&dir, &settings, &MasterKey::New(taken.clone())),
        Err(Error::Conflict(_))
    ));
    assert_eq!(std::fs::read_to_string(&taken).unwrap(), "x");
    assert!(!dir.exists());
    assert!(matches!(
        Domain::init_keyed(
            &dir,
            &settings,
            &MasterKey::Env("SANDBOX_TEST_MASTER_KEY_NEVER_SET".into())
        ),
        Err(Error::Invalid(_))
    ));
    assert!(!dir.exists());
    // A failure after the key file was made removes it too: a directory that is not empty.
    std::fs::create_dir_all(dir.join("x")).unwrap();
    let fresh = tmp.path().join("fresh.key");
    assert!(Domain::init_keyed(&dir, &settings, &MasterKey::New(fresh.clone())).is_err());
    assert!(!fresh.exists());
}

/// A data directory made before encryption at rest (its secrets in the clear) is refused
/// with the command that protects it; protected, it opens with the same keys and no clear
/// copy is left.
#[test]
fn a_domain_from_before_encryption_at_rest_is_protected_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let domain = Domain::init(&dir).unwrap();
    let seed = domain.keys().signing_key().unwrap().to_bytes();
    let secret = *domain.keys().pseudonym_secret().unwrap();
    let public = sandbox_runtime::keys::verifying_key(domain.layout()).unwrap();
    assert!(audit::checkpoint_if_grown(&domain).unwrap().is_some());
    drop(domain);
    // As an earlier build left it.
    let keys = dir.join("keys");
    std::fs::write(keys.join("domain.ed25519"), hex::encode(seed)).unwrap();
    std::fs::write(keys.join("domain.hmac"), hex::encode(secret)).unwrap();
    for entry in std::fs::read_dir(&keys).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with(".wrapped") || name == "master.toml" {
            std::fs::remove_file(path).unwrap();
        }
    }
    std::fs::remove_file(tmp.path().join("d.master-key")).unwrap();
    match Domain::open(&dir) {
        Err(Error::Invalid(m)) => assert!(m.contains("sandbox key protect"), "{m}"),
        other => panic!("{other:?}"),
    }
    let key_file = tmp.path().join("protected.key");
    Domain::protect_keys(&dir, &MasterKey::New(key_file.clone())).unwrap();
    assert!(!keys.join("domain.ed25519").exists() && !keys.join("domain.hmac").exists());
    let domain = Domain::open(&dir).unwrap();
    assert_eq!(domain.keys().signing_key().unwrap().to_bytes(), seed);
    assert_eq!(*domain.keys().pseudonym_secret().unwrap(), secret);
    assert_eq!(
        sandbox_runtime::keys::verifying_key(domain.layout()).unwrap(),
        public
    );
    // The log's checkpoint, signed before, still verifies; a new one is signed.
    sandbox_runtime::identity::add(
        &domain,
        None,
        sandbox_tests::OPERATOR,
        sandbox_core::Role::Operator,
    )
    .unwrap();
    assert!(audit::checkpoint_if_grown(&domain).unwrap().is_some());
    let verified = audit::verify_custodian(&domain).unwrap();
    assert_eq!(verified.checkpoints, 2);
    let conn = sandbox_tests::raw(&domain);
    let details: String = conn
        .query_row(
            "SELECT details FROM audit_events WHERE action = 'domain.master_key_rotated'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(details.contains("\"from\":null"), "{details}");
    assert!(matches!(
        Domain::protect_keys(&dir, &MasterKey::New(tmp.path().join("again.key"))),
        Err(Error::Conflict(_))
    ));
    assert!(!tmp.path().join("again.key").exists());
}

/// Rotation (TJ-Sec Art. 10): an operator moves the secrets to a new master key; the same
/// secrets (the log's checkpoints verify, pseudonyms unchanged), the old key no longer
/// opens the domain, the rotation is recorded with both ids; a developer is refused, and
/// rotating to the key in use is refused with nothing changed.
#[test]
fn an_operator_rotates_the_master_key_and_the_secrets_stay_the_same() {
    let f = sandbox_tests::Fixture::new();
    let dir = f.domain.layout().root().to_path_buf();
    let seed = f.domain.keys().signing_key().unwrap().to_bytes();
    let secret = *f.domain.keys().pseudonym_secret().unwrap();
    let old_file = dir.with_file_name("domain.master-key");
    assert!(old_file.exists());
    let next = dir.with_file_name("rotated.key");
    assert!(matches!(
        sandbox_runtime::custody::rotate_master_key(
            &f.domain,
            sandbox_tests::DEVELOPER,
            &MasterKey::New(next.clone())
        ),
        Err(Error::Forbidden(_))
    ));
    assert!(!next.exists());
    assert!(matches!(
        sandbox_runtime::custody::rotate_master_key(
            &f.domain,
            sandbox_tests::OPERATOR,
            &MasterKey::File(old_file.clone())
        ),
        Err(Error::Conflict(_))
    ));
    let r = sandbox_runtime::custody::rotate_master_key(
        &f.domain,
        sandbox_tests::OPERATOR,
        &MasterKey::New(next.clone()),
    )
    .unwrap();
    assert_ne!(r.from, r.to);
    // This process goes on signing with the secrets it holds.
    sandbox_runtime::identity::add(
        &f.domain,
        Some(sandbox_tests::OPERATOR),
        "dev-qian",
        sandbox_core::Role::Developer,
    )
    .unwrap();
    assert!(audit::checkpoint_if_grown(&f.domain).unwrap().is_some());
    // The next opens with the new key: the same secrets; only its files are left.
    let reopened = Domain::open(&dir).unwrap();
    assert_eq!(reopened.keys().signing_key().unwrap().to_bytes(), seed);
    assert_eq!(*reopened.keys().pseudonym_secret().unwrap(), secret);
    assert!(audit::verify_custodian(&reopened).unwrap().checkpoints >= 1);
    let wrapped: Vec<String> = std::fs::read_dir(dir.join("keys"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".wrapped"))
        .collect();
    assert_eq!(wrapped.len(), 2, "{wrapped:?}");
    assert!(wrapped.iter().all(|n| n.contains(&r.to)), "{wrapped:?}");
    // The old key opens nothing now.
    let old = LocalKey::from_hex(&std::fs::read_to_string(&old_file).unwrap(), "old").unwrap();
    assert!(Domain::open_with(&dir, Arc::new(old)).is_err());
    let conn = sandbox_tests::raw(&reopened);
    let details: String = conn
        .query_row(
            "SELECT details FROM audit_events WHERE action = 'domain.master_key_rotated'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        details.contains(&r.from) && details.contains(&r.to),
        "{details}"
    );
    let key = std::fs::read_to_string(&next).unwrap();
    assert!(!details.contains(key.trim()));
}

/// The national suite's SM2 signatures agree with OpenSSL 3 both ways (JZ Art. 8): ours
/// verified by `openssl pkeyutl`, OpenSSL's by ours, with the default distinguishing
/// identifier on both sides; an altered message fails on both.
#[test]
fn sm2_signatures_cross_check_with_openssl() {
    use sandbox_store::gm::{self, Sm2Key};
    use std::process::Command;
    let openssl = |args: &[&str]| {
        Command::new("openssl")
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("openssl (scripts/openssl.sh installs it): {e}"))
    };
    let tmp = tempfile::tempdir().unwrap();
    let at = |name: &str| tmp.path().join(name).to_string_lossy().to_string();
    let key = Sm2Key::from_bytes(&[0x5a; 32]).unwrap();
    std::fs::write(at("pub.pem"), key.public_key_pem().unwrap()).unwrap();
    std::fs::write(at("key.pem"), key.private_key_pem().unwrap().as_bytes()).unwrap();
    let message = b"sandbox audit checkpoint\n04ab\n7\n12\nroot\n2026-12-07T00:00:00Z\n";
    std::fs::write(at("msg"), message).unwrap();
    std::fs::write(at("msg2"), b"sandbox audit checkpoint, altered").unwrap();
    let distid = "distid:1234567812345678";

    // Ours, verified by OpenSSL.
    std::fs::write(at("ours.sig"), key.sign(message)).unwrap();
    let verify = |msg: &str| {
        openssl(&[
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            &at("pub.pem"),
            "-rawin",
            "-digest",
            "sm3",
            "-pkeyopt",
            distid,
            "-in",
            &at(msg),
            "-sigfile",
            &at("ours.sig"),
        ])
    };
    let out = verify("msg");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Signature Verified Successfully"));
    assert!(!verify("msg2").status.success());

    // OpenSSL's, verified by ours.
    let out = openssl(&[
        "pkeyutl",
        "-sign",
        "-inkey",
        &at("key.pem"),
        "-rawin",
        "-digest",
        "sm3",
        "-pkeyopt",
        distid,
        "-in",
        &at("msg"),
        "-out",
        &at("theirs.sig"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = std::fs::read(at("theirs.sig")).unwrap();
    gm::sm2_verify(&key.public_sec1(), message, &theirs).unwrap();
    assert!(
        gm::sm2_verify(
            &key.public_sec1(),
            b"sandbox audit checkpoint, altered",
            &theirs
        )
        .is_err()
    );

    // SM3 as OpenSSL computes it.
    let out = openssl(&["dgst", "-sm3", "-hex", &at("msg")]);
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        said.trim().ends_with(&hex::encode(gm::sm3(message))),
        "{said}"
    );
}
