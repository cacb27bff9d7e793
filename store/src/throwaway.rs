//! Throwaway PostgreSQL clusters for tests and benchmarks (`scripts/postgres.sh`).

use crate::Result;

/// A throwaway PostgreSQL cluster made by `scripts/postgres.sh` in a folder of its own
/// (Unix socket only, the owner and app roles, a `sandbox` database), stopped and removed
/// on drop: for tests and benchmarks.
pub struct Throwaway {
    dir: std::path::PathBuf,
    /// The schema owner's connection to its `sandbox` database.
    pub owner: String,
    /// The servers' connection to it (a role that owns nothing).
    pub app: String,
}

fn script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/postgres.sh")
}

/// Runs `scripts/postgres.sh` with `args`; the `owner=` and `app=` lines it printed.
fn run_script(args: &[&std::ffi::OsStr]) -> Result<(String, String)> {
    let out = std::process::Command::new("bash")
        .arg(script())
        .args(args)
        .output()?;
    if !out.status.success() {
        return Err(crate::DomainError::Internal(format!(
            "scripts/postgres.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
        .into());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::to_owned)
            .ok_or_else(|| {
                crate::Error::from(crate::DomainError::Internal(format!(
                    "scripts/postgres.sh printed no `{prefix}` line"
                )))
            })
    };
    Ok((line("owner=")?, line("app=")?))
}

impl Throwaway {
    /// Starts a cluster in `dir` (which must not hold one).
    pub fn start(dir: &std::path::Path) -> Result<Throwaway> {
        let (owner, app) = run_script(&["start".as_ref(), dir.as_os_str()])?;
        Ok(Throwaway {
            dir: dir.to_path_buf(),
            owner,
            app,
        })
    }

    /// Makes one more database `name`, set up as `sandbox` is, in the cluster running in
    /// `dir`: the owner's and the servers' connections to it.
    pub fn database(dir: &std::path::Path, name: &str) -> Result<(String, String)> {
        run_script(&["database".as_ref(), dir.as_os_str(), name.as_ref()])
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}
