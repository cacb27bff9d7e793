//! Lists as text: a header, then one aligned row per item, the same whether the command
//! ran on the data directory or through a server (both render the JSON the API answers
//! with). Columns are aligned by display width, so names in Chinese line up too.

use sandbox_core::Lang;
use serde_json::Value;
use unicode_width::UnicodeWidthStr;

/// A column header (or an empty list's line) in `lang`.
fn h(lang: Lang, id: &str) -> String {
    sandbox_i18n::message(lang, &format!("cli-col-{id}"), None)
}

/// Rows under a header, columns separated by two spaces and padded to their widest cell
/// (the last column is not padded). `empty` is said instead when there are no rows.
pub fn table<H: AsRef<str>>(headers: &[H], rows: &[Vec<String>], empty: &str) -> String {
    if rows.is_empty() {
        return empty.to_string();
    }
    let mut widths: Vec<usize> = headers.iter().map(|h| h.as_ref().width()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.width());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            out.push_str(cell);
            if i + 1 < widths.len() {
                out.push_str(&" ".repeat(w.saturating_sub(cell.width())));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = line(&mut headers.iter().map(AsRef::as_ref));
    for row in rows {
        out.push('\n');
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

/// A JSON value as a cell: strings as they are, numbers and booleans as written, null
/// as nothing.
pub fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A stable identifier as the catalogue's word for it (`job-status` and `succeeded`).
pub fn word(lang: Lang, family: &str, v: &Value) -> String {
    sandbox_i18n::word(lang, family, &cell(v))
}

/// A time that may be missing (a token not revoked): empty then.
fn time_or_empty(ui: &crate::reader::Ui, v: &Value) -> String {
    if v.is_null() {
        String::new()
    } else {
        ui.time(v)
    }
}

fn items(list: &Value) -> &[Value] {
    list.as_array().map_or(&[][..], Vec::as_slice)
}

/// `principal list`.
pub fn principals(list: &Value, ui: &crate::reader::Ui) -> String {
    let lang = ui.lang;
    let rows: Vec<Vec<String>> = items(list)
        .iter()
        .map(|p| {
            vec![
                cell(&p["name"]),
                word(lang, "role", &p["role"]),
                word(lang, "principal-status", &p["status"]),
                cell(&p["language"]),
            ]
        })
        .collect();
    table(
        &[
            h(lang, "name"),
            h(lang, "role"),
            h(lang, "status"),
            h(lang, "language"),
        ],
        &rows,
        &h(lang, "empty-principals"),
    )
}

/// `token list`.
pub fn tokens(list: &Value, ui: &crate::reader::Ui) -> String {
    let lang = ui.lang;
    let rows: Vec<Vec<String>> = items(list)
        .iter()
        .map(|t| {
            vec![
                cell(&t["id"]),
                cell(&t["principal"]),
                ui.time(&t["created_at"]),
                cell(&t["issued_by"]),
                time_or_empty(ui, &t["revoked_at"]),
            ]
        })
        .collect();
    table(
        &[
            h(lang, "id"),
            h(lang, "principal"),
            h(lang, "issued"),
            h(lang, "by"),
            h(lang, "revoked"),
        ],
        &rows,
        &h(lang, "empty-tokens"),
    )
}

/// `dataset list`.
pub fn datasets(list: &Value, ui: &crate::reader::Ui) -> String {
    let lang = ui.lang;
    let rows: Vec<Vec<String>> = items(list)
        .iter()
        .map(|v| {
            vec![
                cell(&v["name"]),
                cell(&v["version"]),
                cell(&v["row_count"]),
                cell(&v["policy"]["dataset"]["provider"]),
                cell(&v["policy"]["dataset"]["summary"]),
            ]
        })
        .collect();
    table(
        &[
            h(lang, "name"),
            h(lang, "version"),
            h(lang, "rows"),
            h(lang, "provider"),
            h(lang, "summary"),
        ],
        &rows,
        &h(lang, "empty-datasets"),
    )
}

/// `scenario list`.
pub fn scenarios(list: &Value, ui: &crate::reader::Ui) -> String {
    let lang = ui.lang;
    let number = |v: &Value| v.as_f64().map_or_else(|| cell(v), |x| format!("{x:.3}"));
    let rows: Vec<Vec<String>> = items(list)
        .iter()
        .map(|x| {
            vec![
                cell(&x["id"]),
                cell(&x["spec"]["name"]),
                word(lang, "scenario-status", &x["status"]),
                cell(&x["developer"]),
                format!(
                    "{} / {}",
                    number(&x["epsilon_spent"]),
                    number(&x["spec"]["budget"]["epsilon"])
                ),
            ]
        })
        .collect();
    table(
        &[
            h(lang, "id"),
            h(lang, "name"),
            h(lang, "status"),
            h(lang, "developer"),
            h(lang, "epsilon"),
        ],
        &rows,
        &h(lang, "empty-scenarios"),
    )
}

/// `job list`.
pub fn jobs(list: &Value, ui: &crate::reader::Ui) -> String {
    let lang = ui.lang;
    let rows: Vec<Vec<String>> = items(list)
        .iter()
        .map(|j| {
            vec![
                cell(&j["id"]),
                word(lang, "job-status", &j["status"]),
                ui.time(&j["created_at"]),
                cell(&j["submitter"]),
            ]
        })
        .collect();
    table(
        &[
            h(lang, "id"),
            h(lang, "status"),
            h(lang, "submitted"),
            h(lang, "by"),
        ],
        &rows,
        &h(lang, "empty-jobs"),
    )
}

/// `output list`.
pub fn outputs(list: &Value, ui: &crate::reader::Ui) -> String {
    let lang = ui.lang;
    let rows: Vec<Vec<String>> = items(list)
        .iter()
        .map(|o| {
            vec![
                cell(&o["id"]),
                cell(&o["name"]),
                word(lang, "kind", &o["kind"]),
                word(lang, "output-status", &o["status"]),
                cell(&o["job_id"]),
            ]
        })
        .collect();
    table(
        &[
            h(lang, "id"),
            h(lang, "name"),
            h(lang, "kind"),
            h(lang, "status"),
            h(lang, "job"),
        ],
        &rows,
        &h(lang, "empty-outputs"),
    )
}

/// A grant as words: a data user's name, or an organisation by its code.
pub fn grantee(lang: Lang, v: &Value) -> String {
    let text = cell(v);
    match text.strip_prefix("org:") {
        Some(code) => sandbox_i18n::t!(lang, "product-scope-organisation", code = code),
        None => text,
    }
}

/// The product catalog (`product list`): every product, what it is, whom it is for,
/// when, and whether the reader may download it.
pub fn products(list: &Value, ui: &crate::reader::Ui) -> String {
    let lang = ui.lang;
    let rows: Vec<Vec<String>> = items(list)
        .iter()
        .map(|p| {
            let status = if let Some(at) = p["withdrawal"]["withdrawn_at"].as_str() {
                sandbox_i18n::t!(lang, "product-withdrawn-on", at = ui.time(&Value::from(at)))
            } else if p["entitlement"].is_null() {
                sandbox_i18n::message(lang, "product-not-granted", None)
            } else {
                sandbox_i18n::message(lang, "product-available", None)
            };
            vec![
                cell(&p["id"]),
                cell(&p["name"]),
                cell(&p["scenario"]),
                items(&p["scope"])
                    .iter()
                    .map(|g| grantee(lang, &g["grantee"]))
                    .collect::<Vec<_>>()
                    .join(", "),
                ui.time(&p["released_at"]),
                status,
            ]
        })
        .collect();
    table(
        &[
            h(lang, "id"),
            h(lang, "output"),
            h(lang, "scenario"),
            h(lang, "scope"),
            h(lang, "released"),
            h(lang, "status"),
        ],
        &rows,
        &h(lang, "empty-products"),
    )
}

/// `product holders`: who downloaded a product's files, how often, the last time.
pub fn holders(list: &Value, ui: &crate::reader::Ui) -> String {
    let lang = ui.lang;
    let rows: Vec<Vec<String>> = items(list)
        .iter()
        .map(|h| {
            vec![
                cell(&h["principal"]),
                word(lang, "role", &h["role"]),
                cell(&h["organisation"]),
                cell(&h["downloads"]),
                ui.time(&h["last_at"]),
            ]
        })
        .collect();
    table(
        &[
            h(lang, "principal"),
            h(lang, "role"),
            h(lang, "organisation"),
            h(lang, "downloads"),
            h(lang, "last-download"),
        ],
        &rows,
        &h(lang, "empty-holders"),
    )
}

/// The established scenario types (`scenario types`).
pub fn scenario_types(list: &Value, ui: &crate::reader::Ui) -> String {
    let lang = ui.lang;
    let rows: Vec<Vec<String>> = items(list)
        .iter()
        .map(|t| {
            vec![
                cell(&t["name"]),
                cell(&t["scenario_id"]),
                cell(&t["created_by"]),
                ui.time(&t["created_at"]),
                cell(&t["description"]),
            ]
        })
        .collect();
    table(
        &[
            h(lang, "name"),
            h(lang, "scenario"),
            h(lang, "by"),
            h(lang, "since"),
            h(lang, "summary"),
        ],
        &rows,
        &h(lang, "empty-types"),
    )
}

/// `incident list`.
pub fn incidents(list: &Value, ui: &crate::reader::Ui) -> String {
    let lang = ui.lang;
    let rows: Vec<Vec<String>> = items(list)
        .iter()
        .map(|i| {
            vec![
                cell(&i["id"]),
                word(lang, "incident-grade", &i["grade"]),
                cell(&i["title"]),
                ui.time(&i["opened_at"]),
                if i["closed_at"].is_null() {
                    sandbox_i18n::message(lang, "incident-open", None)
                } else {
                    sandbox_i18n::message(lang, "incident-closed", None)
                },
            ]
        })
        .collect();
    table(
        &[
            h(lang, "id"),
            h(lang, "grade"),
            h(lang, "summary"),
            h(lang, "since"),
            h(lang, "status"),
        ],
        &rows,
        &h(lang, "empty-incidents"),
    )
}

/// `order list`.
pub fn orders(list: &Value, ui: &crate::reader::Ui) -> String {
    let lang = ui.lang;
    let rows: Vec<Vec<String>> = items(list)
        .iter()
        .map(|o| {
            vec![
                cell(&o["id"]),
                format!("{} {}", cell(&o["target_kind"]), cell(&o["target"])),
                ui.time(&o["deadline"]),
                word(lang, "order-status", &o["status"]),
                cell(&o["requirement"]),
            ]
        })
        .collect();
    table(
        &[
            h(lang, "id"),
            h(lang, "target"),
            h(lang, "deadline"),
            h(lang, "status"),
            h(lang, "summary"),
        ],
        &rows,
        &h(lang, "empty-orders"),
    )
}

/// The register of organisations (`org list`).
pub fn organisations(list: &Value, ui: &crate::reader::Ui) -> String {
    let lang = ui.lang;
    let rows: Vec<Vec<String>> = items(list)
        .iter()
        .map(|o| {
            vec![
                cell(&o["credit_code"]),
                cell(&o["name"]),
                cell(&o["security_officer"]),
                cell(&o["qualified_until"]),
                match o["epsilon_cap"].as_f64() {
                    Some(cap) => {
                        format!("{:.3} / {cap}", o["epsilon_spent"].as_f64().unwrap_or(0.0))
                    }
                    None => format!("{:.3}", o["epsilon_spent"].as_f64().unwrap_or(0.0)),
                },
                items(&o["members"]).len().to_string(),
            ]
        })
        .collect();
    table(
        &[
            h(lang, "credit-code"),
            h(lang, "name"),
            h(lang, "security-officer"),
            h(lang, "qualified-until"),
            h(lang, "epsilon-cap"),
            h(lang, "members"),
        ],
        &rows,
        &h(lang, "empty-organisations"),
    )
}

/// A page of `audit log`: its events, and where the next page starts when the log goes on
/// (`page` is the API's `{events, size, next}`).
pub fn audit_page(page: &Value, ui: &crate::reader::Ui) -> String {
    let lang = ui.lang;
    let events = items(&page["events"]);
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                cell(&e["seq"]),
                ui.time(&e["ts"]),
                cell(&e["actor"]),
                cell(&e["action"]),
                cell(&e["subject"]),
            ]
        })
        .collect();
    let mut out = table(
        &[
            h(lang, "seq"),
            sandbox_i18n::t!(lang, "cli-col-time", zone = ui.tz.name()),
            h(lang, "actor"),
            h(lang, "action"),
            h(lang, "subject"),
        ],
        &rows,
        &h(lang, "empty-events"),
    );
    if let (Some(next), Some(first), Some(size)) = (
        page["next"].as_i64(),
        events.first().and_then(|e| e["seq"].as_i64()),
        page["size"].as_i64(),
    ) {
        let mut args = sandbox_i18n::Args::new();
        args.set("first", first);
        args.set("last", next - 1);
        args.set("size", size);
        args.set("next", next);
        out.push('\n');
        out.push_str(&sandbox_i18n::message(lang, "cli-audit-more", Some(&args)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_by_display_width() {
        let rows = vec![
            vec!["王伟".to_string(), "developer".to_string(), "x".to_string()],
            vec![
                "ops-li".to_string(),
                "operator".to_string(),
                "y".to_string(),
            ],
        ];
        let t = table(&["NAME", "ROLE", "NOTE"], &rows, "none");
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "NAME    ROLE       NOTE");
        assert_eq!(lines[1], "王伟    developer  x");
        assert_eq!(lines[2], "ops-li  operator   y");
        assert_eq!(table(&["A"], &[], "nothing here"), "nothing here");
    }
}
