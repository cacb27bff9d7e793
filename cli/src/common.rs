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
    let mut out = format!(
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
    );
    if let Some(per_query) = r["spec"]["budget"]["epsilon_per_query"].as_f64() {
        out.push_str(&format!(", at most {per_query} per query"));
    }
    let datasets = r["spec"]["datasets"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    if !datasets.is_empty() {
        out.push_str("\ndatasets and columns:");
        for d in datasets {
            let columns: Vec<String> = d["columns"]
                .as_array()
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .map(&text)
                .collect();
            out.push_str(&format!("\n  {}: {}", text(&d["name"]), columns.join(", ")));
        }
    }
    out
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

/// A table file's bytes converted to `format`.
pub fn converted(
    name: &str,
    bytes: Vec<u8>,
    format: Option<sandbox_runtime::export::Format>,
) -> Result<Vec<u8>> {
    match format {
        Some(f) => Ok(sandbox_runtime::export::convert(name, bytes, f)?.1),
        None => Ok(bytes),
    }
}

/// A registered dataset version as text: what was stored, then what ingest found.
pub fn dataset_added_text(v: &serde_json::Value) -> String {
    let mut out = format!(
        "registered {} version {}: {} rows, sha256 {}",
        v["name"].as_str().unwrap_or(""),
        v["version"],
        v["row_count"],
        v["content_sha256"].as_str().unwrap_or("")
    );
    out.push_str(&ingest_report_text(&v["report"]));
    out
}

/// What ingest found (`report` of a dataset version), as lines after a registration.
pub fn ingest_report_text(r: &serde_json::Value) -> String {
    if r.is_null() {
        return String::new();
    }
    let n = |k: &str| r[k].as_i64().unwrap_or(0);
    let mut out = format!(
        "\ningest report: {} rows read, {} stored",
        n("rows_read"),
        n("rows_stored")
    );
    if n("rows_without_unit") > 0 {
        out.push_str(&format!(
            "\n  {} rows without a privacy unit left out",
            n("rows_without_unit")
        ));
    }
    if let Some(units) = r["units"].as_i64() {
        out.push_str(&format!("\n  {units} privacy units"));
        if n("units_over_max_rows") > 0 {
            out.push_str(&format!(
                "; {} have more rows than max_rows_per_unit ({} rows beyond it are never read)",
                n("units_over_max_rows"),
                n("rows_over_max_rows")
            ));
        }
    }
    let columns = r["columns"].as_array().map_or(&[][..], Vec::as_slice);
    let rule = r["out_of_range"].as_str().unwrap_or("keep");
    for c in columns {
        let mut found = Vec::new();
        let k = |key: &str| c[key].as_i64().unwrap_or(0);
        if k("nulls") > 0 {
            found.push(format!("{} NULL", k("nulls")));
        }
        if k("below_bounds") > 0 {
            found.push(format!("{} below its bounds", k("below_bounds")));
        }
        if k("above_bounds") > 0 {
            found.push(format!("{} above its bounds", k("above_bounds")));
        }
        if k("outside_categories") > 0 {
            found.push(format!(
                "{} outside its categories",
                k("outside_categories")
            ));
        }
        out.push_str(&format!(
            "\n  column {}: {}",
            c["name"].as_str().unwrap_or(""),
            found.join(", ")
        ));
    }
    let outside = columns.iter().any(|c| {
        ["below_bounds", "above_bounds", "outside_categories"]
            .iter()
            .any(|k| c[*k].as_i64().unwrap_or(0) > 0)
    });
    if outside {
        out.push_str(&match rule {
            "drop" => format!(
                "\n  out of range: {} rows left out (the policy's out_of_range is `drop`)",
                n("rows_dropped_out_of_range")
            ),
            _ => "\n  out of range: kept, and clamped to the bounds by every query (the policy's out_of_range is `keep`)".to_string(),
        });
    }
    if columns.is_empty() && n("rows_without_unit") == 0 && n("units_over_max_rows") == 0 {
        out.push_str(
            "\n  nothing to report: no NULLs, every value within its bounds and categories",
        );
    }
    out
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

/// The stops of `stop list` as text: a header, then one line each.
pub fn stops_text(list: &[serde_json::Value]) -> String {
    if list.is_empty() {
        return "no stops in force".to_string();
    }
    let mut out = format!(
        "{:<5} {:<10} {:<20} {:<16} {:<20} {}",
        "ID", "SCOPE", "TARGET", "BY", "SINCE", "REASON"
    );
    for s in list {
        let text = |k: &str| s[k].as_str().unwrap_or("").to_string();
        let lifted = match s["lifted_at"].as_str() {
            Some(at) => format!(" (lifted {at} by {})", text("lifted_by")),
            None => String::new(),
        };
        out.push_str(&format!(
            "\n{:<5} {:<10} {:<20} {:<16} {:<20} {}{lifted}",
            s["id"].as_i64().unwrap_or(0),
            text("scope"),
            text("target"),
            text("stopped_by"),
            text("created_at"),
            text("reason"),
        ));
    }
    out
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

/// A review request's thread (`review show`, `comment`) as text.
pub fn thread_text(t: &serde_json::Value) -> String {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    let awaiting: Vec<String> = t["awaiting"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|a| match a.as_str() {
            Some("developer") => "the developer (changes requested)".to_string(),
            Some(tier) => format!("a {tier}'s decision"),
            None => String::new(),
        })
        .collect();
    let awaiting = if awaiting.is_empty() {
        "nothing (decided)".to_string()
    } else {
        awaiting.join(" and ")
    };
    let mut out = format!(
        "review request of {} under scenario {}; awaiting {awaiting}",
        text(&t["developer"]),
        t["scenario_id"]
    );
    for job in t["jobs"].as_array().map_or(&[][..], Vec::as_slice) {
        out.push_str(&format!(
            "\njob {} ({}, submitted {})",
            text(&job["id"]),
            text(&job["status"]),
            text(&job["created_at"])
        ));
        let outputs = job["outputs"].as_array().map_or(&[][..], Vec::as_slice);
        if outputs.is_empty() {
            out.push_str("\n  no outputs");
            continue;
        }
        out.push_str(&format!(
            "\n  {:<28} {:<24} {:<6} {}",
            "OUTPUT", "NAME", "KIND", "STATUS"
        ));
        for o in outputs {
            out.push_str(&format!(
                "\n  {:<28} {:<24} {:<6} {}",
                text(&o["id"]),
                text(&o["name"]),
                text(&o["kind"]),
                text(&o["status"])
            ));
        }
    }
    let entries = t["entries"].as_array().map_or(&[][..], Vec::as_slice);
    if entries.is_empty() {
        out.push_str("\nno comments or decisions yet");
    }
    for e in entries {
        let what = match e["kind"].as_str() {
            Some("decision") => format!(
                "{} ({}) on {}",
                text(&e["decision"]).replace('_', " "),
                text(&e["tier"]),
                text(&e["output_id"])
            ),
            _ => "comment".to_string(),
        };
        out.push_str(&format!(
            "\n{}  {}  {what}",
            text(&e["at"]),
            text(&e["author"])
        ));
        if let Some(body) = e["text"].as_str() {
            for line in body.lines() {
                out.push_str(&format!("\n    {line}"));
            }
        }
    }
    out
}

/// Outputs decided together (`review decide`) as text.
pub fn decided_text(list: &[serde_json::Value]) -> String {
    list.iter()
        .map(|o| {
            format!(
                "output {} ({}): {}",
                o["id"].as_str().unwrap_or(""),
                o["name"].as_str().unwrap_or(""),
                o["status"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
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
