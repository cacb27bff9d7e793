//! The domain's cryptographic suite as the data directory records it (`keys/crypto.toml`),
//! written first at `init` and read before anything else opens: the master key's cipher,
//! the signing key's scheme and every hash follow it. A directory without the record is of
//! the `standard` suite, as every domain made before the choice.

use std::fs;

use serde::{Deserialize, Serialize};

use sandbox_core::{Error, Result, Suite};

use crate::Layout;

/// Where the suite is recorded, in the keys folder.
const SUITE_FILE: &str = "crypto.toml";

/// `keys/crypto.toml` as written.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    suite: Suite,
}

/// The data directory's cryptographic suite (`standard` where none is recorded).
pub fn suite(layout: &Layout) -> Result<Suite> {
    let path = layout.keys().join(SUITE_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Suite::Standard),
        Err(e) => return Err(e.into()),
    };
    let file: SuiteFile =
        toml::from_str(&text).map_err(|e| Error::Verify(format!("{}: {e}", path.display())))?;
    Ok(file.suite)
}

/// Records the data directory's suite (at `init`). Fails if one is recorded.
pub fn write_suite(layout: &Layout, suite: Suite) -> Result<()> {
    fs::create_dir_all(layout.keys())?;
    let text = toml::to_string(&SuiteFile { suite })
        .map_err(|e| Error::Internal(format!("writing {SUITE_FILE}: {e}")))?;
    let text = format!("# This domain's cryptographic suite, fixed when it was made.\n{text}");
    // A new file (never over one: the suite is fixed), synced before the keys are made.
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(layout.keys().join(SUITE_FILE))?;
    std::io::Write::write_all(&mut file, text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}
