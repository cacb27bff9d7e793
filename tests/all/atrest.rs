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
    let seed = *domain.keys().signing_seed().unwrap();
    let secret = *domain.keys().pseudonym_secret().unwrap().bytes();
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
    assert_eq!(*domain.keys().signing_seed().unwrap(), seed);
    assert_eq!(*domain.keys().pseudonym_secret().unwrap().bytes(), secret);
    drop(domain);

    // Another key handed in (as an HSM would be): nothing unwraps, the domain does not
    // open.
    let other: Arc<dyn KeyProvider> =
        Arc::new(LocalKey::from_bytes(sandbox_core::Suite::Standard, &[9u8; 32]).unwrap());
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
    fn suite(&self) -> sandbox_core::Suite {
        self.inner.suite()
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
    let key = LocalKey::from_hex(
        sandbox_core::Suite::Standard,
        &std::fs::read_to_string(&key_file).unwrap(),
        "test",
    )
    .unwrap();
    let provider = Arc::new(Counting {
        inner: key,
        unwraps: AtomicUsize::new(0),
    });
    let domain = Domain::open_with(&dir, provider.clone()).unwrap();
    for _ in 0..3 {
        audit::checkpoint_if_grown(&domain).unwrap();
        domain.keys().public_key().unwrap();
        domain.keys().pseudonym_secret().unwrap();
    }
    // The three (signing key, pseudonym secret, database key) at open, once.
    assert_eq!(provider.unwraps.load(Ordering::SeqCst), 3);

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
    let seed = *domain.keys().signing_seed().unwrap();
    let secret = *domain.keys().pseudonym_secret().unwrap().bytes();
    let public = sandbox_runtime::keys::public_key(domain.layout()).unwrap();
    assert!(audit::checkpoint_if_grown(&domain).unwrap().is_some());
    // As an earlier build left it: the database in the clear, the secrets too.
    drop(domain);
    decrypt_database(&dir);
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
    assert!(!database_in_clear(&dir), "the database is encrypted too");
    let domain = Domain::open(&dir).unwrap();
    assert_eq!(*domain.keys().signing_seed().unwrap(), seed);
    assert_eq!(*domain.keys().pseudonym_secret().unwrap().bytes(), secret);
    assert_eq!(
        sandbox_runtime::keys::public_key(domain.layout()).unwrap(),
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
    let details = sandbox_tests::event_details(&conn, "domain.master_key_rotated");
    assert!(details["from"].is_null(), "{details}");
    assert!(matches!(
        Domain::protect_keys(&dir, &MasterKey::New(tmp.path().join("again.key"))),
        Err(Error::Conflict(_))
    ));
    assert!(!tmp.path().join("again.key").exists());

    // As the build before the database's encryption left it: the secrets wrapped, the
    // database in the clear. It opens and works as it is; `key protect` encrypts the
    // database under the master key it already has (another key named is refused).
    drop(conn);
    drop(domain);
    decrypt_database(&dir);
    assert!(database_in_clear(&dir));
    let domain = Domain::open(&dir).unwrap();
    assert!(audit::verify_custodian(&domain).unwrap().checkpoints >= 2);
    drop(domain);
    let stranger = tmp.path().join("stranger.key");
    std::fs::write(&stranger, hex::encode([7u8; 32])).unwrap();
    assert!(matches!(
        Domain::protect_keys(&dir, &MasterKey::File(stranger)),
        Err(Error::Conflict(_))
    ));
    assert!(database_in_clear(&dir));
    let id = Domain::protect_keys(&dir, &MasterKey::beside(&dir)).unwrap();
    assert!(!database_in_clear(&dir));
    let domain = Domain::open(&dir).unwrap();
    assert_eq!(domain.keys().provider().key_id(), id);
    assert_eq!(*domain.keys().signing_seed().unwrap(), seed);
    assert!(audit::verify_custodian(&domain).unwrap().checkpoints >= 2);
    assert!(matches!(
        Domain::protect_keys(&dir, &MasterKey::beside(&dir)),
        Err(Error::Conflict(_))
    ));
}

/// Whether the metadata database of the data directory `dir` reads without a key.
fn database_in_clear(dir: &Path) -> bool {
    rusqlite::Connection::open(dir.join("sandbox.db"))
        .unwrap()
        .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .is_ok()
}

/// Turns a domain's metadata database back into the clear and removes its key, as a build
/// from before its encryption would have left it.
fn decrypt_database(dir: &Path) {
    let layout = sandbox_runtime::store::Layout::new(dir);
    let keys = sandbox_runtime::keys::Keyring::new(
        layout.clone(),
        sandbox_runtime::master::provider(&layout).unwrap(),
    )
    .unwrap();
    let db = layout.db();
    let plain = db.with_extension("plain");
    let conn = sandbox_tests::raw_keyed(&db, &keys);
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    conn.execute_batch(&format!(
        "ATTACH DATABASE '{}' AS plaintext KEY '';
         SELECT sqlcipher_export('plaintext');
         PRAGMA plaintext.user_version = {version};
         DETACH DATABASE plaintext;",
        plain.display()
    ))
    .unwrap();
    drop(conn);
    std::fs::rename(&plain, &db).unwrap();
    for side in ["sandbox.db-wal", "sandbox.db-shm"] {
        let _ = std::fs::remove_file(db.with_file_name(side));
    }
    for entry in std::fs::read_dir(layout.keys()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("domain.sqlcipher.")
        {
            std::fs::remove_file(path).unwrap();
        }
    }
}

/// Rotation (TJ-Sec Art. 10): an operator moves the secrets to a new master key; the same
/// secrets (the log's checkpoints verify, pseudonyms unchanged), the old key no longer
/// opens the domain, the rotation is recorded with both ids; a developer is refused, and
/// rotating to the key in use is refused with nothing changed.
#[test]
fn an_operator_rotates_the_master_key_and_the_secrets_stay_the_same() {
    let f = sandbox_tests::Fixture::new();
    let dir = f.domain.layout().root().to_path_buf();
    let seed = *f.domain.keys().signing_seed().unwrap();
    let secret = *f.domain.keys().pseudonym_secret().unwrap().bytes();
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
    assert_eq!(*reopened.keys().signing_seed().unwrap(), seed);
    assert_eq!(*reopened.keys().pseudonym_secret().unwrap().bytes(), secret);
    assert!(audit::verify_custodian(&reopened).unwrap().checkpoints >= 1);
    let wrapped: Vec<String> = std::fs::read_dir(dir.join("keys"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".wrapped"))
        .collect();
    assert_eq!(wrapped.len(), 3, "{wrapped:?}");
    assert!(wrapped.iter().all(|n| n.contains(&r.to)), "{wrapped:?}");
    // The old key opens nothing now.
    let old = LocalKey::from_hex(
        sandbox_core::Suite::Standard,
        &std::fs::read_to_string(&old_file).unwrap(),
        "old",
    )
    .unwrap();
    assert!(Domain::open_with(&dir, Arc::new(old)).is_err());
    let conn = sandbox_tests::raw(&reopened);
    let details = sandbox_tests::event_details(&conn, "domain.master_key_rotated").to_string();
    assert!(
        details.contains(&r.from) && details.contains(&r.to),
        "{details}"
    );
    let key = std::fs::read_to_string(&next).unwrap();
    assert!(!details.contains(key.trim()));
}

/// A dataset's file is Parquet with modular encryption: its footer encrypted (magic
/// `PARE`, no statistics in the clear), no protected value in its bytes, unreadable without
/// its key, and bound to its version: the file of version 1 put in version 2's place does
/// not decrypt. Its key is in the catalog, wrapped by the master key; a rotation rewraps it
/// without touching the file; destroying the dataset erases it.
#[test]
fn dataset_files_are_encrypted_bound_to_their_version_and_keyed_by_the_master_key() {
    let f = sandbox_tests::Fixture::new();
    let residents = sandbox_synth::residents(2000, 2026);
    let v1 =
        sandbox_runtime::catalog::get(&f.domain, sandbox_tests::OPERATOR, "residents").unwrap();
    let bytes = std::fs::read(v1.data_files()[0].as_path()).unwrap();
    assert_eq!(&bytes[..4], b"PARE", "an encrypted footer's magic");
    assert_eq!(&bytes[bytes.len() - 4..], b"PARE");
    for r in residents.iter().take(200) {
        for value in [&r.citizen_id, &r.phone, &r.district] {
            assert!(!contains(&bytes, value.as_bytes()), "{value} in the clear");
        }
    }
    // Without the key, no reader gets anywhere.
    let plain = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(v1.data_files()[0].as_path()).unwrap(),
    );
    assert!(plain.is_err(), "read without its key");
    // The mediator reads it: a query answers.
    assert!(f.ask("SELECT COUNT(*) FROM residents").is_ok());

    // A second version; then version 1's file in version 2's place.
    let tmp = tempfile::tempdir().unwrap();
    sandbox_tests::add_residents(&f.domain, tmp.path(), 300);
    let v2 =
        sandbox_runtime::catalog::get(&f.domain, sandbox_tests::OPERATOR, "residents").unwrap();
    assert_eq!(v2.version, 2);
    let keys = f.domain.mediator().dataset_keys();
    assert!(sandbox_mediator::ingest::stored_reader(keys, &v2, 0).is_ok());
    let v2_bytes = std::fs::read(v2.data_files()[0].as_path()).unwrap();
    std::fs::copy(v1.data_files()[0].as_path(), v2.data_files()[0].as_path()).unwrap();
    match sandbox_mediator::ingest::stored_reader(keys, &v2, 0) {
        Err(sandbox_mediator::Error::Domain(Error::Verify(m))) => {
            assert!(m.contains("version 2"), "{m}")
        }
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("version 1's file read as version 2"),
    }
    std::fs::write(v2.data_files()[0].as_path(), &v2_bytes).unwrap();
    assert!(sandbox_mediator::ingest::stored_reader(keys, &v2, 0).is_ok());

    // The keys are rows of the catalog, wrapped: neither key is in the metadata store.
    let conn = sandbox_tests::raw(&f.domain);
    assert_eq!(
        sandbox_tests::count(&conn, "SELECT COUNT(*) FROM data_keys"),
        2
    );
    let k1 = sandbox_store::datakeys::get(&f.domain.conn().unwrap(), "residents", 1)
        .unwrap()
        .unwrap();
    // SQLite's file holds it wrapped only (a PostgreSQL store keeps its files elsewhere).
    if !conn.is_postgres() {
        let db = std::fs::read(f.domain.layout().db()).unwrap();
        assert!(!contains(&db, k1.key()));
    }
    drop(conn);

    // A rotation rewraps the keys; the files stay as they were and read with the new key.
    let next = f.domain.layout().root().with_file_name("rotated.key");
    let r = sandbox_runtime::custody::rotate_master_key(
        &f.domain,
        sandbox_tests::OPERATOR,
        &MasterKey::New(next),
    )
    .unwrap();
    assert_eq!(std::fs::read(v1.data_files()[0].as_path()).unwrap(), bytes);
    let conn = sandbox_tests::raw(&f.domain);
    let masters: Vec<String> = conn
        .prepare("SELECT DISTINCT master_key FROM data_keys")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(masters, std::slice::from_ref(&r.to));
    let details = sandbox_tests::event_details(&conn, "domain.master_key_rotated");
    assert_eq!(details["data_keys"], 2, "{details}");
    drop(conn);
    // This process holds the retired key: it refuses to wrap a new file's key by it.
    let stale = tempfile::tempdir().unwrap();
    let csv = stale.path().join("residents.csv");
    std::fs::write(&csv, sandbox_synth::residents_csv(50, 1)).unwrap();
    match sandbox_runtime::catalog::add(
        &f.domain,
        sandbox_tests::PROVIDER,
        &csv,
        sandbox_cli::demo::RESIDENTS_POLICY,
    ) {
        Err(Error::Conflict(m)) => assert!(m.contains("restart"), "{m}"),
        other => panic!("{other:?}"),
    }
    let reopened = Domain::open(f.domain.layout().root()).unwrap();
    let v = sandbox_runtime::catalog::get(&reopened, sandbox_tests::OPERATOR, "residents").unwrap();
    assert_eq!(v.version, 2, "the refused registration left nothing");
    for v in [&v1, &v2] {
        assert!(
            sandbox_mediator::ingest::stored_reader(reopened.mediator().dataset_keys(), v, 0)
                .is_ok()
        );
    }
    let answer = sandbox_tests::ask_in(&reopened, f.scenario.id, "SELECT COUNT(*) FROM residents");
    assert!(answer.is_ok(), "{answer:?}");
}

/// The protected values of the demo's residents as a file in the clear would hold them:
/// each citizen id and phone number as text, each income as its row's text (`age,income`,
/// as a CSV copy has it), and the incomes of consecutive rows as the 16 bytes a column
/// stores them in (i64 and f64, little-endian).
struct Needles {
    by_length: std::collections::HashMap<usize, std::collections::HashMap<Vec<u8>, String>>,
}

impl Needles {
    fn of(residents: &[sandbox_synth::Resident]) -> Needles {
        let mut by_length: std::collections::HashMap<
            usize,
            std::collections::HashMap<Vec<u8>, String>,
        > = Default::default();
        let mut add = |what: String, bytes: Vec<u8>| {
            by_length
                .entry(bytes.len())
                .or_default()
                .insert(bytes, what);
        };
        for r in residents {
            add(
                format!("id {}", r.citizen_id),
                r.citizen_id.clone().into_bytes(),
            );
            add(format!("phone {}", r.phone), r.phone.clone().into_bytes());
            add(
                format!("income {} (text)", r.income),
                format!("{},{}", r.age, r.income).into_bytes(),
            );
        }
        for w in residents.windows(2) {
            let (a, b) = (w[0].income, w[1].income);
            add(
                format!("incomes {a}, {b} (i64)"),
                [(a as i64).to_le_bytes(), (b as i64).to_le_bytes()].concat(),
            );
            add(
                format!("incomes {a}, {b} (f64)"),
                [a.to_le_bytes(), b.to_le_bytes()].concat(),
            );
        }
        Needles { by_length }
    }

    /// What of them `bytes` holds (one window per length, looked up: linear in the bytes).
    fn found_in(&self, bytes: &[u8]) -> Vec<String> {
        let mut found = Vec::new();
        for (len, set) in &self.by_length {
            for w in bytes.windows(*len) {
                if let Some(what) = set.get(w) {
                    found.push(what.clone());
                }
            }
        }
        found
    }
}

/// The cells of a file that decodes without a key as Parquet or Arrow IPC (file or
/// stream), as text; `None` for a file that does not.
fn decoded_cells(bytes: &[u8]) -> Option<Vec<String>> {
    use arrow::array::RecordBatch;
    let batches: Vec<RecordBatch> = if bytes.starts_with(b"PAR1") {
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            bytes::Bytes::copy_from_slice(bytes),
        )
        .ok()?
        .build()
        .ok()?
        .collect::<Result<_, _>>()
        .ok()?
    } else if let Ok(r) = arrow::ipc::reader::FileReader::try_new(std::io::Cursor::new(bytes), None)
    {
        r.collect::<Result<_, _>>().ok()?
    } else if let Ok(r) = arrow::ipc::reader::StreamReader::try_new(bytes, None) {
        r.collect::<Result<_, _>>().ok()?
    } else {
        return None;
    };
    let mut cells = Vec::new();
    for b in &batches {
        for c in b.columns() {
            let text = arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8).ok()?;
            let text = text.as_any().downcast_ref::<arrow::array::StringArray>()?;
            cells.extend(text.iter().flatten().map(str::to_string));
        }
    }
    Some(cells)
}

/// After the demo (registration, refusals, a job, reviews, a release, a checkpoint), no
/// file under the data directory holds a protected value in the clear: no citizen id, no
/// phone number, no income. Two searches: the values' bytes in every file, and the cells
/// of every file that decodes without a key (Parquet compresses: the first search alone
/// finds only some ids in the same rows written as Parquet in the clear, which is why the
/// second is there; both are shown to find them in that file). The metadata database is
/// encrypted: without its key it is not a database.
#[test]
fn no_protected_value_is_in_the_clear_under_the_data_directory_after_the_demo() {
    let module = sandbox_tests::guest_module("income_by_district");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    sandbox_cli::demo::run_in(
        &dir,
        &module,
        3000,
        sandbox_core::Suite::Standard,
        sandbox_core::Lang::En,
        &mut Vec::new(),
    )
    .unwrap();
    let residents = sandbox_synth::residents(3000, 2026);
    let needles = Needles::of(&residents);

    // The control: the residents as Parquet in the clear, compressed as ingest compresses.
    let batch = arrow::array::RecordBatch::try_from_iter([
        (
            "citizen_id",
            std::sync::Arc::new(arrow::array::StringArray::from_iter_values(
                residents.iter().map(|r| r.citizen_id.as_str()),
            )) as arrow::array::ArrayRef,
        ),
        (
            "phone",
            std::sync::Arc::new(arrow::array::StringArray::from_iter_values(
                residents.iter().map(|r| r.phone.as_str()),
            )) as _,
        ),
        (
            "income",
            std::sync::Arc::new(arrow::array::Int64Array::from_iter_values(
                residents.iter().map(|r| r.income as i64),
            )) as _,
        ),
    ])
    .unwrap();
    let mut clear = Vec::new();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(&mut clear, batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    assert!(!needles.found_in(&clear).is_empty());
    let protected: std::collections::HashSet<String> = residents
        .iter()
        .flat_map(|r| [r.citizen_id.clone(), r.phone.clone(), r.income.to_string()])
        .collect();
    let cells = decoded_cells(&clear).unwrap();
    assert_eq!(
        cells.iter().filter(|c| protected.contains(*c)).count(),
        3 * residents.len()
    );

    let files = files(&dir);
    assert!(files.len() > 10, "{} files", files.len());
    let mut found = Vec::new();
    let mut decoded = 0;
    for (path, bytes) in &files {
        for what in needles.found_in(bytes) {
            found.push(format!("{what} in {}", path.display()));
        }
        if let Some(cells) = decoded_cells(bytes) {
            decoded += 1;
            for c in cells.iter().filter(|c| protected.contains(*c)) {
                found.push(format!("the cell {c} in {}", path.display()));
            }
        }
    }
    // The outputs (staged and released) decode: aggregates, no protected value.
    assert!(decoded >= 2, "{decoded} files decode");
    assert!(found.is_empty(), "{}", found.join("\n"));
    // The metadata database does not open without its key.
    let db = rusqlite::Connection::open(dir.join("sandbox.db")).unwrap();
    let plain: rusqlite::Result<i64> =
        db.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0));
    assert!(plain.is_err(), "the metadata database read without its key");
    let domain = Domain::open(&dir).unwrap();
    let db = sandbox_tests::raw(&domain);
    assert!(sandbox_tests::count(&db, "SELECT COUNT(*) FROM audit_events") > 10);
    assert!(!sandbox_runtime::store::cipher_version().unwrap().is_empty());
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

/// The cells of column `column` of a version's stored file, as text (absent: `None`).
fn stored_column(domain: &Domain, dataset: &str, column: &str) -> Option<Vec<String>> {
    let v = sandbox_runtime::catalog::get(domain, sandbox_tests::OPERATOR, dataset).unwrap();
    let reader =
        sandbox_mediator::ingest::stored_reader(domain.mediator().dataset_keys(), &v, 0).unwrap();
    let i = reader.schema().index_of(column).ok()?;
    let mut cells = Vec::new();
    for batch in reader.build().unwrap() {
        let batch = batch.unwrap();
        let text =
            arrow::compute::cast(batch.column(i), &arrow::datatypes::DataType::Utf8).unwrap();
        let text = text
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap();
        cells.extend(text.iter().map(|c| c.unwrap_or_default().to_string()));
    }
    Some(cells)
}

/// Ingest stores only what a query can ever see: a column with access `none` (the
/// residents' phone numbers) is not in the stored file, and under `store_desensitized` a
/// desensitized column (the citizen id, a keyed pseudonym) is stored as its pseudonym, so
/// its raw values never reach the domain store. Queries answer the same either way, the
/// registration records what was left out, and the rare-value sets still cover the phone
/// numbers (built from the raw values at ingest, from a file removed before the version
/// moves into place).
#[test]
fn ingest_stores_only_what_a_query_can_see() {
    let residents = sandbox_synth::residents(400, 2026);
    let csv_text = sandbox_synth::residents_csv(400, 2026);
    let threshold =
        sandbox_cli::demo::RESIDENTS_POLICY.replace("mode = \"dp\"", "mode = \"threshold\"");
    let hashed = threshold.replace(
        "mode = \"threshold\"",
        "mode = \"threshold\"\nstore_desensitized = true",
    );
    let sql = "SELECT district, COUNT(*) AS n, SUM(income) AS s, SUM(age) AS a FROM residents \
               WHERE age >= 30 GROUP BY district ORDER BY district";
    let mut answers = Vec::new();
    let mut dirs = Vec::new();
    for policy in [&threshold, &hashed] {
        let (dir, domain) = sandbox_tests::empty_domain();
        let csv = dir.path().join("residents.csv");
        std::fs::write(&csv, &csv_text).unwrap();
        let v =
            sandbox_runtime::catalog::add(&domain, sandbox_tests::PROVIDER, &csv, policy).unwrap();
        // The phone numbers are not stored; the other columns and the rank are.
        let reader =
            sandbox_mediator::ingest::stored_reader(domain.mediator().dataset_keys(), &v, 0)
                .unwrap();
        let names: Vec<String> = reader
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(
            names,
            ["citizen_id", "district", "age", "income", "__sandbox_rank"]
        );
        assert!(stored_column(&domain, "residents", "phone").is_none());
        // Nothing but the data file and the value sets is left in the version's folder.
        let mut left: Vec<String> = std::fs::read_dir(v.path.clone())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["data.parquet", "values"]);
        // The phone numbers' value set is there all the same: every number is rare.
        let sets = sandbox_mediator::values::load("residents", &v.path).unwrap();
        let phones = sets.iter().find(|s| s.column == "phone").unwrap();
        let distinct: std::collections::HashSet<&str> =
            residents.iter().map(|r| r.phone.as_str()).collect();
        assert_eq!(phones.len(), distinct.len());
        let hasher =
            sandbox_mediator::values::ValueHasher::new(domain.keys().pseudonym_secret().unwrap())
                .unwrap();
        assert!(phones.contains(&hasher, &residents[7].phone));
        // The registration says what was left out and what was stored desensitized.
        let db = sandbox_tests::raw(&domain);
        let details = sandbox_tests::event_details(&db, "dataset.registered");
        assert_eq!(
            details["report"]["columns_not_stored"],
            serde_json::json!(["phone"])
        );
        let ids = stored_column(&domain, "residents", "citizen_id").unwrap();
        let secret = domain.keys().pseudonym_secret().unwrap();
        if std::ptr::eq(policy, &hashed) {
            assert_eq!(
                details["report"]["columns_stored_desensitized"],
                serde_json::json!(["citizen_id"])
            );
            // Each id is stored as its keyed pseudonym, the value every view shows (so
            // joins with datasets stored raw still match), and no raw id is stored.
            let expected: std::collections::HashSet<String> = residents
                .iter()
                .map(|r| sandbox_mediator::views::keyed_hash(secret, &r.citizen_id))
                .collect();
            let stored: std::collections::HashSet<String> = ids.iter().cloned().collect();
            assert_eq!(stored, expected);
            assert!(residents.iter().all(|r| !stored.contains(&r.citizen_id)));
        } else {
            assert_eq!(
                details["report"]["columns_stored_desensitized"],
                serde_json::json!([])
            );
            assert!(ids.contains(&residents[0].citizen_id));
        }
        let scenario = sandbox_tests::approved_scenario(
            &domain,
            "stored",
            "residents",
            &["citizen_id", "district", "age", "income"],
            "threshold",
            1.0,
        );
        let a = sandbox_tests::ask_in(&domain, scenario, sql).unwrap();
        answers.push(a.batch);
        dirs.push((dir, domain));
    }
    // The same exact answers, whichever way the columns are stored.
    assert_eq!(answers[0].columns(), answers[1].columns());
    assert!(answers[0].num_rows() >= 3, "{:?}", answers[0]);
}

/// A domain made with the national suite (`init --crypto gm`) runs the whole demo on it:
/// SM3 builds its audit tree and content hashes, SM2 signs its checkpoints and manifests
/// (OpenSSL 3 verifies both), HMAC-SM3 keys its pseudonyms, SM4-GCM wraps its secrets.
/// The suite is named in every checkpoint and manifest; `product verify` and `audit
/// verify-proof` check a gm product and proof, and refuse one claimed for the other suite.
#[test]
fn a_gm_domain_runs_the_demo_on_the_national_suite() {
    use sandbox_core::Suite;
    use sandbox_runtime::keys::PublicKey;
    use sandbox_store::audit::merkle;
    use sandbox_store::gm;
    let module = sandbox_tests::guest_module("income_by_district");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let summary = sandbox_cli::demo::run_in(
        &dir,
        &module,
        2000,
        Suite::Gm,
        sandbox_core::Lang::En,
        &mut Vec::new(),
    )
    .unwrap();

    // The suite is recorded at init, with an SM2 key; nothing of Ed25519 is there.
    let keys = dir.join("keys");
    let recorded = std::fs::read_to_string(keys.join("crypto.toml")).unwrap();
    assert!(recorded.contains("suite = \"gm\""), "{recorded}");
    assert!(!keys.join("domain.ed25519.pub").exists());
    let public_hex = std::fs::read_to_string(keys.join("domain.sm2.pub")).unwrap();
    assert_eq!(public_hex.trim().len(), 130, "an uncompressed SM2 point");
    let domain = Domain::open(&dir).unwrap();
    assert_eq!(domain.keys().suite(), Suite::Gm);
    assert_eq!(
        domain.keys().pseudonym_secret().unwrap().suite(),
        Suite::Gm,
        "pseudonyms are HMAC-SM3"
    );
    let key = sandbox_runtime::keys::public_key(domain.layout()).unwrap();
    assert!(matches!(key, PublicKey::Sm2(_)));
    let init = sandbox_tests::event_details(&sandbox_tests::raw(&domain), "domain.init");
    assert_eq!(init["suite"], "gm");
    assert_eq!(init["public_key"], public_hex.trim());

    // The product: SM3 content hashes under their own names, the suite named, the SM2
    // signature verified here and by OpenSSL.
    let dirp = &summary.product_dir;
    let manifest = sandbox_runtime::review::verify_product(dirp, Some(&key)).unwrap();
    assert_eq!(manifest["suite"], "gm");
    let file = &manifest["files"][0];
    let bytes = std::fs::read(dirp.join(file["name"].as_str().unwrap())).unwrap();
    assert_eq!(file["sm3"], hex::encode(gm::sm3(&bytes)));
    assert!(file.get("sha256").is_none(), "{file}");
    assert_eq!(manifest["job"]["module_sm3"], hex::encode(gm::sm3(&module)));
    assert!(manifest["job"].get("module_sha256").is_none());
    assert!(manifest["datasets"][0]["content_sm3"].is_string());
    assert!(manifest["datasets"][0]["policy_sm3"].is_string());
    let manifest_bytes = std::fs::read(dirp.join("manifest.json")).unwrap();
    let signature = std::fs::read_to_string(dirp.join("manifest.sig")).unwrap();
    openssl_sm2_verifies(&key, &manifest_bytes, &signature, tmp.path());

    // The audit log: an SM3 tree, SM2 checkpoints naming the suite (OpenSSL verifies one).
    let v = audit::verify(&domain, "sup-chen").unwrap();
    assert!(v.checkpoints >= 3, "{v:?}");
    let proof = audit::prove_inclusion(&domain, "sup-chen", 1, None).unwrap();
    assert_eq!(proof.checkpoint.suite, Suite::Gm);
    let text = proof.checkpoint.signed_text();
    assert!(
        text.starts_with("sandbox audit checkpoint\nsuite gm\n"),
        "{text}"
    );
    openssl_sm2_verifies(
        &key,
        text.as_bytes(),
        &proof.checkpoint.signature,
        tmp.path(),
    );
    let leaf = proof.event.leaf_hash(Suite::Gm).unwrap();
    assert_eq!(merkle::to_hex(&leaf), proof.leaf_hash);
    assert_eq!(
        leaf,
        gm::sm3(&[&[0u8][..], &proof.event.canonical_bytes().unwrap()].concat()),
        "leaf = SM3(0x00 ‖ event)"
    );
    assert_ne!(leaf, proof.event.leaf_hash(Suite::Standard).unwrap());
    let json = serde_json::to_string(&proof).unwrap();
    let check = audit::verify_proof(&json, Some(&key)).unwrap();
    assert_eq!((check.kind, check.suite), ("inclusion", Suite::Gm));
    // The same proof claimed for the other suite, or checked against another domain's
    // key: refused.
    let mut claimed: serde_json::Value = serde_json::from_str(&json).unwrap();
    claimed["checkpoint"]["suite"] = "standard".into();
    assert!(audit::verify_proof(&claimed.to_string(), None).is_err());
    let (_other_dir, other) = sandbox_tests::empty_domain();
    let standard_key = sandbox_runtime::keys::public_key(other.layout()).unwrap();
    assert_eq!(standard_key.suite(), Suite::Standard);
    assert!(audit::verify_proof(&json, Some(&standard_key)).is_err());
    assert!(sandbox_runtime::review::verify_product(dirp, Some(&standard_key)).is_err());
    // A manifest that claims the other suite no longer verifies.
    let copy = tmp.path().join("claimed");
    std::fs::create_dir(&copy).unwrap();
    for entry in std::fs::read_dir(dirp).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
    }
    let mut m: serde_json::Value = serde_json::from_slice(&manifest_bytes).unwrap();
    m["suite"] = "standard".into();
    std::fs::write(
        copy.join("manifest.json"),
        serde_json::to_vec_pretty(&m).unwrap(),
    )
    .unwrap();
    let refused = sandbox_runtime::review::verify_product(&copy, None).unwrap_err();
    assert!(refused.to_string().contains("suite"), "{refused}");

    // The secrets are wrapped with SM4-GCM: the same master key taken as an AES key is
    // refused by name, before anything is unwrapped.
    drop(domain);
    let key_text = std::fs::read_to_string(tmp.path().join("d.master-key")).unwrap();
    let aes: Arc<dyn KeyProvider> =
        Arc::new(LocalKey::from_hex(Suite::Standard, &key_text, "test").unwrap());
    match Domain::open_with(&dir, aes) {
        Err(Error::Invalid(m)) => assert!(m.contains("SM4-GCM"), "{m}"),
        other => panic!("{other:?}"),
    }

    // A backup of the domain names its suite and restores under the same key.
    let domain = Domain::open(&dir).unwrap();
    let backup = tmp.path().join("gm.backup");
    sandbox_runtime::backup::backup(&domain, "ops-li", &backup).unwrap();
    drop(domain);
    let restored = sandbox_runtime::backup::restore(
        &backup,
        &tmp.path().join("restored"),
        &MasterKey::File(tmp.path().join("d.master-key")),
        None,
    )
    .unwrap();
    assert!(restored.checkpoints >= 3);
    let again = Domain::open(&tmp.path().join("restored")).unwrap();
    assert_eq!(again.keys().suite(), Suite::Gm);
    assert_eq!(
        sandbox_runtime::keys::public_key(again.layout()).unwrap(),
        key
    );
    drop(again);

    // A rotation gives a new SM4 master key: the secrets and the data files' keys rewrapped,
    // the signing key the same, the data still answering.
    let domain = Domain::open(&dir).unwrap();
    let seed = *domain.keys().signing_seed().unwrap();
    let next = tmp.path().join("next.master-key");
    sandbox_runtime::custody::rotate_master_key(&domain, "ops-li", &MasterKey::New(next.clone()))
        .unwrap();
    drop(domain);
    let domain = Domain::open(&dir).unwrap();
    assert_eq!(domain.keys().provider().suite(), Suite::Gm);
    assert_eq!(*domain.keys().signing_seed().unwrap(), seed);
    let v = sandbox_runtime::catalog::get(&domain, "ops-li", "residents").unwrap();
    let reader =
        sandbox_mediator::ingest::stored_reader(domain.mediator().dataset_keys(), &v, 0).unwrap();
    assert!(
        reader.build().unwrap().next().is_some(),
        "the data file opens"
    );
    audit::verify(&domain, "sup-chen").unwrap();
}

/// OpenSSL 3 verifies `signature` (hex DER) of `message` by the SM2 key `key`, with the
/// default distinguishing identifier.
fn openssl_sm2_verifies(
    key: &sandbox_runtime::keys::PublicKey,
    message: &[u8],
    signature: &str,
    scratch: &Path,
) {
    let at = |name: &str| scratch.join(name).to_string_lossy().to_string();
    std::fs::write(at("sm2.pub.pem"), key.to_pem().unwrap()).unwrap();
    std::fs::write(at("sm2.msg"), message).unwrap();
    std::fs::write(at("sm2.sig"), hex::decode(signature.trim()).unwrap()).unwrap();
    let out = std::process::Command::new("openssl")
        .args([
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            &at("sm2.pub.pem"),
            "-rawin",
            "-digest",
            "sm3",
            "-pkeyopt",
            "distid:1234567812345678",
            "-in",
            &at("sm2.msg"),
            "-sigfile",
            &at("sm2.sig"),
        ])
        .output()
        .unwrap_or_else(|e| panic!("openssl (scripts/openssl.sh installs it): {e}"));
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
