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

/// Properties that encrypt a new file of `dataset` version `version` with `key`: every
/// column and the footer under the one key, the AAD prefix not stored in the file.
pub fn encryption(
    dataset: &str,
    version: i64,
    key: &DataKey,
) -> Result<Arc<FileEncryptionProperties>> {
    FileEncryptionProperties::builder(key.key().to_vec())
        .with_plaintext_footer(false)
        .with_aad_prefix(datakeys::aad_prefix(dataset, version, key.file_id()))
        .with_aad_prefix_storage(false)
        .build()
        .map_err(|e| Error::Internal(format!("parquet encryption properties: {e}")).into())
}

/// Properties that decrypt the file `key` encrypts as `dataset` version `version`.
pub fn decryption(
    dataset: &str,
    version: i64,
    key: &DataKey,
) -> Result<Arc<FileDecryptionProperties>> {
    FileDecryptionProperties::builder(key.key().to_vec())
        .with_aad_prefix(datakeys::aad_prefix(dataset, version, key.file_id()))
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

/// A table over one file of a version (its data file, or a file written beside it under
/// the same key), its schema read from the file, for a session that has the domain's
/// [`DatasetKeys`] registered (every [`crate::Mediator::session`] has).
pub async fn file_table(
    state: &datafusion::execution::SessionState,
    (dataset, version): (&str, i64),
    file: &std::path::Path,
) -> Result<datafusion::datasource::listing::ListingTable> {
    use datafusion::datasource::listing::{
        ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
    };
    let url = ListingTableUrl::parse(file.to_string_lossy())?;
    let options = ListingOptions::new(Arc::new(parquet_format(dataset, version)))
        .with_file_extension(".parquet");
    let schema = options.infer_schema(state, &url).await?;
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(ListingTable::try_new(config)?)
}

type Cached = Option<Arc<FileDecryptionProperties>>;

/// The keys of the domain's dataset files, unwrapped from the catalog by the master key on
/// first use and kept for the process.
pub struct DatasetKeys {
    store: Store,
    cache: Mutex<HashMap<(String, i64), Cached>>,
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

    fn cache(&self) -> Result<std::sync::MutexGuard<'_, HashMap<(String, i64), Cached>>> {
        self.cache
            .lock()
            .map_err(|_| Error::Internal("dataset key cache poisoned".into()).into())
    }

    /// How to decrypt `dataset` version `version`'s file: `None` when it is stored in the
    /// clear. Fails when its key cannot be unwrapped (another master key, a row edited).
    pub fn decryption(&self, dataset: &str, version: i64) -> Result<Cached> {
        let id = (dataset.to_string(), version);
        if let Some(found) = self.cache()?.get(&id) {
            return Ok(found.clone());
        }
        let conn = self.store.conn()?;
        let found = match datakeys::get(&conn, dataset, version)? {
            Some(key) => Some(decryption(dataset, version, &key)?),
            None => None,
        };
        self.cache()?.insert(id, found.clone());
        Ok(found)
    }

    /// Makes a file written under `key` readable as `dataset` version `version` before its
    /// key is recorded (ingest reads the file it has just written).
    pub(crate) fn remember(&self, dataset: &str, version: i64, key: &DataKey) -> Result<()> {
        let props = decryption(dataset, version, key)?;
        self.cache()?
            .insert((dataset.to_string(), version), Some(props));
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
        _file_path: &datafusion::object_store::path::Path,
    ) -> datafusion::error::Result<Option<Arc<FileDecryptionProperties>>> {
        let dataset = option(config, DATASET_OPTION)?;
        let version: i64 = option(config, VERSION_OPTION)?.parse().map_err(|_| {
            datafusion::error::DataFusionError::Internal(
                "a dataset scan's version is not a number".into(),
            )
        })?;
        self.decryption(dataset, version).map_err(|e| {
            datafusion::error::DataFusionError::External(Box::new(sandbox_core::Error::from(e)))
        })
    }
}
