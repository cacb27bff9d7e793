//! What running a command on a data directory and through a server share: reading an
//! input file, writing a folder all at once, the text of a scenario, of the domain's
//! settings and of a language choice.

use std::fs;
use std::path::PathBuf;

use sandbox_core::{Error, Result};

/// `scenario show` as text, from the scenario's JSON form: the same on the data
/// directory and through a server.
pub(crate) fn scenario_details(r: &serde_json::Value) -> String {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_string();
    let number = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0);
    format!(
        "scenario {} `{}` ({}), developer {}\npurpose: {}\nvalid {} to {}\nε {:.3} spent of {}",
        r["id"],
        text(&r["spec"]["name"]),
        text(&r["status"]),
        text(&r["developer"]),
        text(&r["spec"]["purpose"]),
        text(&r["spec"]["valid_from"]),
        text(&r["spec"]["valid_until"]),
        number(&r["epsilon_spent"]),
        number(&r["spec"]["budget"]["epsilon"]),
    )
}

pub(crate) fn read_text(path: &PathBuf) -> Result<String> {
    fs::read_to_string(path).map_err(|e| Error::Input {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Writes files into a new folder `out`: into a temporary folder beside it first, renamed
/// into place once every file is there (nothing half-written is left behind).
pub(crate) fn write_folder(
    out: &std::path::Path,
    names: &[String],
    mut bytes: impl FnMut(&str) -> Result<Vec<u8>>,
) -> Result<()> {
    if out.exists() {
        return Err(Error::Conflict(format!("{} exists", out.display())));
    }
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".product-")
        .tempdir_in(parent)?;
    for name in names {
        if !sandbox_core::plain_file_name(name) {
            return Err(Error::Verify(format!("the manifest names `{name}`")));
        }
        fs::write(tmp.path().join(name), bytes(name)?)?;
    }
    fs::rename(tmp.keep(), out)?;
    Ok(())
}

/// `zh-CN`, `en`, or `auto` (none: the client's, else the domain's default).
pub fn parse_language_choice(text: &str) -> Result<Option<sandbox_core::Lang>> {
    if text.eq_ignore_ascii_case("auto") {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        Error::Invalid(format!(
            "unknown language `{text}` (zh-CN, en, or auto for the client's)"
        ))
    })
}

/// A principal's language choice, as a line.
pub fn language_text(name: &str, language: Option<sandbox_core::Lang>) -> String {
    match language {
        Some(l) => format!("{name} reads Sandbox in {} ({l})", l.native_name()),
        None => format!("{name} reads Sandbox in the client's language, else the domain's"),
    }
}

/// The domain's settings, as lines.
pub fn settings_text(s: &sandbox_runtime::settings::Settings) -> String {
    format!(
        "default language  {} ({})\ntime zone         {}",
        s.default_language.native_name(),
        s.default_language,
        s.time_zone
    )
}

/// How a submitted job's command ends once its report is printed: a job that did not
/// succeed ends it with an error (a non-zero exit status, for scripts), as does a job
/// still waiting or running when `--wait` ran out.
pub fn job_ended(id: &str, status: &str, error: Option<&str>, waited: Option<f64>) -> Result<()> {
    let why = error.map(|e| format!(": {e}")).unwrap_or_default();
    match status {
        "succeeded" => Ok(()),
        "cancelled" => Err(Error::Cancelled(format!("job {id} was cancelled{why}"))),
        "queued" | "running" => match waited {
            Some(seconds) if seconds > 0.0 => Err(Error::Busy(format!(
                "job {id} is still {status} after {seconds} s; `sandbox job status {id}` tells when it ends"
            ))),
            _ => Ok(()),
        },
        other => Err(Error::Guest(format!("job {id} {other}{why}"))),
    }
}
