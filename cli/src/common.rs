//! What running a command on a data directory and through a server share: reading an
//! input file, writing a file or a folder all at once, converting a product's tables, how
//! a job's command ends, and the closest name to a mistyped one.

use std::fs;
use std::path::PathBuf;

use sandbox_core::{Error, Lang, Result};
use sandbox_i18n::t;

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
pub fn parse_language_choice(lang: Lang, text: &str) -> Result<Option<Lang>> {
    if text.eq_ignore_ascii_case("auto") {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| Error::Invalid(t!(lang, "cli-unknown-language", text = text)))
}

/// Writes `bytes` to `path` through a temporary file beside it, renamed into place: a
/// failed write leaves nothing half-written.
pub fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(parent)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(path).map_err(|e| Error::Io(e.error))?;
    Ok(())
}

/// The copies a product download adds in `format`: for each table file, its converted
/// name and the file it is made from.
pub fn converted_names(
    names: &[String],
    format: Option<sandbox_runtime::export::Format>,
) -> Vec<(String, String)> {
    let Some(format) = format.filter(|f| *f != sandbox_runtime::export::Format::Arrow) else {
        return Vec::new();
    };
    names
        .iter()
        .filter(|n| sandbox_runtime::export::is_table(n))
        .map(|n| {
            (
                format!("{}.{}", n.trim_end_matches(".arrow"), format.extension()),
                n.clone(),
            )
        })
        .collect()
}

/// How a submitted job's command ends once its report is printed: a job that did not
/// succeed ends it with an error (a non-zero exit status, for scripts), as does a job
/// still waiting or running when `--wait` ran out.
pub fn job_ended(
    lang: Lang,
    id: &str,
    status: &str,
    error: Option<&str>,
    waited: Option<f64>,
) -> Result<()> {
    let why = error.map(|e| format!(": {e}")).unwrap_or_default();
    let status_word = sandbox_i18n::word(lang, "job-status", status);
    match status {
        "succeeded" => Ok(()),
        "cancelled" => Err(Error::Cancelled(format!(
            "{}{why}",
            t!(lang, "cli-job-cancelled", id = id)
        ))),
        "queued" | "running" => match waited {
            Some(seconds) if seconds > 0.0 => Err(Error::Busy(t!(
                lang,
                "cli-job-still",
                id = id,
                status = status_word,
                seconds = seconds
            ))),
            _ => Ok(()),
        },
        _ => Err(Error::Guest(format!(
            "{}{why}",
            t!(lang, "cli-job", id = id, status = status_word)
        ))),
    }
}

/// The candidate closest to `typed` by edit distance, if it is close: at most a third of
/// the longer name's characters apart, or one for short names (and not `typed` itself).
pub fn closest<'a>(typed: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let typed_chars: Vec<char> = typed.chars().collect();
    candidates
        .filter(|c| *c != typed)
        .map(|c| {
            let chars: Vec<char> = c.chars().collect();
            (edit_distance(&typed_chars, &chars), c, chars.len())
        })
        .filter(|(d, _, len)| *d <= ((*len).max(typed_chars.len()) / 3).max(1))
        .min_by_key(|(d, _, _)| *d)
        .map(|(_, c, _)| c)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1)
                .min(row[j] + 1)
                .min(prev + usize::from(ca != cb));
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The entry `org set` writes: the organisation's entry as it is (`current`, its API
/// JSON), with the fields the command gives changed.
pub(crate) fn changed_entry(
    cmd: &crate::args::OrgCmd,
    current: &serde_json::Value,
) -> Result<sandbox_runtime::organisations::OrganisationEntry> {
    let crate::args::OrgCmd::Set {
        name,
        officer,
        contact,
        qualified_until,
        epsilon_cap,
        no_epsilon_cap,
        ..
    } = cmd
    else {
        return Err(Error::Internal("changed_entry of another command".into()));
    };
    let text = |v: &Option<String>, key: &str| {
        v.clone()
            .unwrap_or_else(|| current[key].as_str().unwrap_or_default().to_string())
    };
    Ok(sandbox_runtime::organisations::OrganisationEntry {
        name: text(name, "name"),
        security_officer: text(officer, "security_officer"),
        security_contact: text(contact, "security_contact"),
        qualified_until: text(qualified_until, "qualified_until"),
        epsilon_cap: if *no_epsilon_cap {
            None
        } else {
            epsilon_cap.or(current["epsilon_cap"].as_f64())
        },
    })
}

/// The register's format a file name asks for: `.csv` CSV, anything else JSON.
pub(crate) fn register_format(
    path: &std::path::Path,
) -> sandbox_runtime::organisations::RegisterFormat {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("csv") => {
            sandbox_runtime::organisations::RegisterFormat::Csv
        }
        _ => sandbox_runtime::organisations::RegisterFormat::Json,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn closest_names_are_suggested_and_far_ones_are_not() {
        let names = ["ops-li", "dev-zhao", "王伟"];
        assert_eq!(
            super::closest("dev-zaho", names.into_iter()),
            Some("dev-zhao")
        );
        assert_eq!(super::closest("ops-lu", names.into_iter()), Some("ops-li"));
        assert_eq!(super::closest("王韦", names.into_iter()), Some("王伟"));
        assert_eq!(super::closest("someone", names.into_iter()), None);
    }
}
