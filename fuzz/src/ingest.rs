//! CSV and Parquet ingest: any file registers as a new version, or is refused with a
//! typed input error (bad data, a policy the file does not fit) and leaves nothing
//! behind: no version recorded, no folder in the domain store.

use std::sync::Arc;

use sandbox_runtime::{Domain, Error, catalog};

use crate::world::{self, PROVIDER};

struct Ingest {
    dir: tempfile::TempDir,
    domain: Domain,
    policy: String,
}

fn ingest() -> Arc<Ingest> {
    // Every file accepted is a version kept in the domain store: a fresh domain every
    // few thousand inputs.
    static INGEST: world::Recycled<Ingest> = world::Recycled::new(
        || {
            let (dir, domain) = world::principals_domain();
            Ingest {
                dir,
                domain,
                policy: world::people_policy("upload", "dp"),
            }
        },
        5_000,
    );
    INGEST.get()
}

/// The target: the first byte chooses CSV or Parquet, the rest is the file.
pub fn run(data: &[u8]) {
    let Some((&which, file)) = data.split_first() else {
        return;
    };
    register(if which % 2 == 0 { "csv" } else { "parquet" }, file);
}

/// Registers `bytes` as a file with extension `ext` under the `people` policy, and judges
/// what happened.
pub fn register(ext: &str, bytes: &[u8]) {
    let i = ingest();
    let path = i.dir.path().join(format!("upload.{ext}"));
    if let Err(e) = std::fs::write(&path, bytes) {
        panic!("writing the input: {e}");
    }
    let versions = || {
        i.domain
            .conn()
            .and_then(|c| Ok(sandbox_store::catalog::current_version(&c, "upload")?))
            .unwrap_or_else(|e| panic!("reading the catalog: {e}"))
    };
    let before = versions();
    match catalog::add(&i.domain, PROVIDER, &path, &i.policy) {
        Ok(v) => {
            assert_eq!(
                Some(v.version),
                versions(),
                "the new version is not current"
            );
            assert!(
                v.data_files().iter().all(|f| f.is_file()),
                "the new version lacks a data file"
            );
        }
        Err(Error::Input { .. } | Error::Policy(_) | Error::Invalid(_)) => {
            assert_eq!(before, versions(), "a refused file left a version");
            let store = i.domain.layout().domain().to_path_buf();
            assert!(
                !world::holds(&store, ".ingest-"),
                "a refused file left a temporary folder in {}",
                store.display()
            );
        }
        Err(e) => panic!("ingest failed other than by a typed input error: {e:?}"),
    }
}

/// The stage target: registration's first stage alone (`sandbox_mediator::ingest::examine`:
/// decoding, the policy's column checks, bounding and the written file), without value
/// sets or a commit, so that its runs reach the executions the whole path cannot. It
/// answers or fails by a typed input error, and leaves the scratch folder empty.
pub fn run_inspect(data: &[u8]) {
    let Some((&which, file)) = data.split_first() else {
        return;
    };
    let i = ingest();
    let path = i.dir.path().join(if which % 2 == 0 {
        "inspect.csv"
    } else {
        "inspect.parquet"
    });
    if let Err(e) = std::fs::write(&path, file) {
        panic!("writing the input: {e}");
    }
    let scratch = i.dir.path().join("scratch");
    if let Err(e) = std::fs::create_dir_all(&scratch) {
        panic!("making the scratch folder: {e}");
    }
    match sandbox_mediator::ingest::examine(&path, &i.policy, &scratch).map_err(Error::from) {
        Ok(found) => assert!(
            found.rows >= 0 && found.rows_dropped >= 0 && found.max_unit_rows <= found.rows.max(0),
            "inconsistent counts: {found:?}"
        ),
        Err(Error::Input { .. } | Error::Policy(_) | Error::Invalid(_)) => {}
        Err(e) => panic!("inspecting failed other than by a typed input error: {e:?}"),
    }
    let left = std::fs::read_dir(&scratch).map(|d| d.count()).unwrap_or(0);
    assert_eq!(
        left, 0,
        "inspecting left {left} files in the scratch folder"
    );
}
