//! Dataset files encrypted at rest: Parquet modular encryption (AES-256-GCM) with a fresh
//! key per file, the footer encrypted (a clear footer would show each row group's minimum
//! and maximum), and every module bound to the dataset, the version and the file
//! ([`sandbox_store::datakeys::aad_prefix`]).
//!
//! Every read of a version's file goes through [`DatasetKeys`]: DataFusion's scans find it
//! as the encryption factory registered on the mediator's sessions (their format options
//! carry the dataset and the version, never a key), the mediator's own readers ask it
//! directly. Writes take their properties from [`encryption`]. A version registered before
//! encryption at rest has no key and is read in the clear.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use datafusion::common::config::{
    EncryptionFactoryOptions, ParquetEncryptionOptions, TableParquetOptions,
};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::execution::parquet_encryption::EncryptionFactory;
use parquet::encryption::decrypt::FileDecryptionProperties;
use parquet::encryption::encrypt::FileEncryptionProperties;
use sandbox_store::Store;
use sandbox_store::datakeys;
pub use sandbox_store::datakeys::DataKey;

use crate::{DomainError as Error, Result};

/// The id the mediator's sessions know [`DatasetKeys`] by.
pub const FACTORY_ID: &str = "sandbox_dataset_keys";
const DATASET_OPTION: &str = "dataset";
const VERSION_OPTION: &str = "version";

/// Properties that encrypt a new data file number `part` of `dataset` version `version`
/// with `key`: every column and the footer under the one key, the AAD prefix (which names
/// the part) not stored in the file.
pub fn encryption(
    dataset: &str,
    version: i64,
    key: &DataKey,
    part: u32,
) -> Result<Arc<FileEncryptionProperties>> {
    FileEncryptionProperties::builder(key.key().to_vec())
        .with_plaintext_footer(false)
        .with_aad_prefix(datakeys::aad_prefix(dataset, version, key.file_id(), part))
        .with_aad_prefix_storage(false)
        .build()
        .map_err(|e| Error::Internal(format!("parquet encryption properties: {e}")).into())
}

/// Properties that decrypt the data file number `part` that `key` encrypts as `dataset`
/// version `version`.
pub fn decryption(
    dataset: &str,
    version: i64,
    key: &DataKey,
    part: u32,
) -> Result<Arc<FileDecryptionProperties>> {
    FileDecryptionProperties::builder(key.key().to_vec())
        .with_aad_prefix(datakeys::aad_prefix(dataset, version, key.file_id(), part))
        .build()
        .map_err(|e| Error::Internal(format!("parquet decryption properties: {e}")).into())
}

/// The Parquet format of a version's file in a scan: it asks [`DatasetKeys`] (by
/// [`FACTORY_ID`]) for the file's decryption, naming the version.
pub fn parquet_format(dataset: &str, version: i64) -> ParquetFormat {
    ParquetFormat::default().with_options(TableParquetOptions {
        crypto: scan_crypto(dataset, version),
        ..Default::default()
    })
}

/// The encryption options of a scan of `dataset` version `version`: [`DatasetKeys`] by
/// [`FACTORY_ID`], with the dataset and version as its options (never a key).
pub fn scan_crypto(dataset: &str, version: i64) -> ParquetEncryptionOptions {
    ParquetEncryptionOptions {
        factory_id: Some(FACTORY_ID.to_string()),
        factory_options: EncryptionFactoryOptions {
            options: HashMap::from([
                (DATASET_OPTION.to_string(), dataset.to_string()),
                (VERSION_OPTION.to_string(), version.to_string()),
            ]),
        },
        ..Default::default()
    }
}

/// The dataset and version a scan's encryption options name, when they are
/// [`scan_crypto`]'s.
pub fn scanned_version(crypto: &ParquetEncryptionOptions) -> Option<(String, i64)> {
    if crypto.factory_id.as_deref() != Some(FACTORY_ID) {
        return None;
    }
    let options = &crypto.factory_options.options;
    let dataset = options.get(DATASET_OPTION)?;
    let version = options.get(VERSION_OPTION)?.parse().ok()?;
    Some((dataset.clone(), version))
}

/// A table over files of a version (its data files, or a file written beside them under
/// the same key), its schema read from the first, for a session that has the domain's
/// [`DatasetKeys`] registered (every [`crate::Mediator::session`] has).
pub async fn file_table(
    state: &datafusion::execution::SessionState,
    (dataset, version): (&str, i64),
    files: &[std::path::PathBuf],
) -> Result<datafusion::datasource::listing::ListingTable> {
    use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig};
    let urls = file_urls((dataset, version), files)?;
    let first = urls
        .first()
        .ok_or_else(|| Error::Internal(format!("`{dataset}` version {version}: no files")))?;
    let options = ListingOptions::new(Arc::new(parquet_format(dataset, version)))
        .with_file_extension(".parquet");
    let schema = options.infer_schema(state, first).await?;
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(ListingTable::try_new(config)?)
}

/// The listing URLs of files of `dataset` version `version`, in order. Each must be there:
/// a listing of a path that is not would be empty, and a scan would read the version's
/// other files as if they were all of it.
pub fn file_urls(
    (dataset, version): (&str, i64),
    files: &[std::path::PathBuf],
) -> Result<Vec<datafusion::datasource::listing::ListingTableUrl>> {
    files_present((dataset, version), files)?;
    files
        .iter()
        .map(|f| {
            datafusion::datasource::listing::ListingTableUrl::parse(f.to_string_lossy())
                .map_err(Into::into)
        })
        .collect()
}

/// Fails, naming the first, when a file of `dataset` version `version` is not there. A
/// table over a version lists its files at every scan, and a file that is not there lists
/// as nothing: every query checks this before it reads.
pub fn files_present((dataset, version): (&str, i64), files: &[std::path::PathBuf]) -> Result<()> {
    match files.iter().find(|f| !f.is_file()) {
        None => Ok(()),
        Some(missing) => Err(Error::Verify(format!(
            "the stored file {} of `{dataset}` version {version} is missing",
            missing
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ))
        .into()),
    }
}

type Cached = Option<Arc<FileDecryptionProperties>>;

/// Each version's key (`None`: stored in the clear), by dataset and version.
type Keys = HashMap<(String, i64), Option<Arc<DataKey>>>;

/// The keys of the domain's dataset files, unwrapped from the catalog by the master key on
/// first use and kept for the process.
pub struct DatasetKeys {
    store: Store,
    cache: Mutex<Keys>,
}

impl std::fmt::Debug for DatasetKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatasetKeys").finish_non_exhaustive()
    }
}

impl DatasetKeys {
    /// The keys of `store`'s domain.
    pub fn new(store: Store) -> DatasetKeys {
        DatasetKeys {
            store,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cache(&self) -> Result<std::sync::MutexGuard<'_, Keys>> {
        self.cache
            .lock()
            .map_err(|_| Error::Internal("dataset key cache poisoned".into()).into())
    }

    /// How to decrypt data file number `part` of `dataset` version `version`: `None` when
    /// the version is stored in the clear. Fails when its key cannot be unwrapped (another
    /// master key, a row edited).
    pub fn decryption(&self, dataset: &str, version: i64, part: u32) -> Result<Cached> {
        let id = (dataset.to_string(), version);
        let cached = self.cache()?.get(&id).cloned();
        let key = match cached {
            Some(key) => key,
            None => {
                let conn = self.store.conn()?;
                let key = datakeys::get(&conn, dataset, version)?.map(Arc::new);
                self.cache()?.insert(id, key.clone());
                key
            }
        };
        key.map(|key| decryption(dataset, version, &key, part))
            .transpose()
    }

    /// Makes a file written under `key` readable as `dataset` version `version` before its
    /// key is recorded (ingest reads the files it has just written).
    pub(crate) fn remember(&self, dataset: &str, version: i64, key: &DataKey) -> Result<()> {
        self.cache()?
            .insert((dataset.to_string(), version), Some(Arc::new(key.clone())));
        Ok(())
    }

    /// Forgets a version's key (an ingest that failed, a version destroyed).
    pub fn forget(&self, dataset: &str, version: i64) {
        if let Ok(mut cache) = self.cache() {
            cache.remove(&(dataset.to_string(), version));
        }
    }
}

fn option<'a>(
    config: &'a EncryptionFactoryOptions,
    name: &str,
) -> datafusion::error::Result<&'a str> {
    config.options.get(name).map(String::as_str).ok_or_else(|| {
        datafusion::error::DataFusionError::Internal(format!(
            "a dataset scan without its `{name}` option"
        ))
    })
}

#[async_trait::async_trait]
impl EncryptionFactory for DatasetKeys {
    async fn get_file_encryption_properties(
        &self,
        _config: &EncryptionFactoryOptions,
        _schema: &SchemaRef,
        _file_path: &datafusion::object_store::path::Path,
    ) -> datafusion::error::Result<Option<Arc<FileEncryptionProperties>>> {
        // The mediator writes dataset files itself, at ingest; nothing writes them
        // through a session.
        Err(datafusion::error::DataFusionError::Plan(
            "dataset files are not written through a session".into(),
        ))
    }

    async fn get_file_decryption_properties(
        &self,
        config: &EncryptionFactoryOptions,
        file_path: &datafusion::object_store::path::Path,
    ) -> datafusion::error::Result<Option<Arc<FileDecryptionProperties>>> {
        let dataset = option(config, DATASET_OPTION)?;
        let version: i64 = option(config, VERSION_OPTION)?.parse().map_err(|_| {
            datafusion::error::DataFusionError::Internal(
                "a dataset scan's version is not a number".into(),
            )
        })?;
        // Which of the version's files this is, by its name: a file in another's place is
        // decrypted as the file it claims to be, and fails.
        let part = file_path
            .filename()
            .map_or(0, sandbox_store::catalog::data_file_part);
        self.decryption(dataset, version, part).map_err(|e| {
            datafusion::error::DataFusionError::External(Box::new(sandbox_core::Error::from(e)))
        })
    }
}
