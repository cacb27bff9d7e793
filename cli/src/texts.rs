//! What a command prints as text, in the reader's language: one function per kind of
//! answer, reading the answer's JSON form (the API's). Commands on a data directory and
//! through a server render through the same functions, so the two say the same thing;
//! every sentence comes from the message catalogue (`cli-*` in `i18n/locales`), and
//! stable identifiers (statuses, kinds, roles) are shown as the catalogue's words.

use sandbox_core::Lang;
use sandbox_i18n::t;
use serde_json::Value;

use crate::lists::{cell, table, word};
pub use crate::reader::Ui;

/// A JSON value as text: strings as they are, null as `-`.
fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        other => cell(other),
    }
}

fn items(v: &Value) -> &[Value] {
    v.as_array().map_or(&[][..], Vec::as_slice)
}

/// `whoami`.
pub fn whoami(ui: &Ui, p: &Value) -> String {
    let lang = ui.lang;
    t!(
        lang,
        "cli-whoami",
        name = s(&p["name"]),
        role = word(lang, "role", &p["role"]),
        status = word(lang, "principal-status", &p["status"])
    )
}

/// `principal add`.
pub fn principal_added(ui: &Ui, p: &Value) -> String {
    let lang = ui.lang;
    t!(
        lang,
        "cli-principal-added",
        name = s(&p["name"]),
        role = word(lang, "role", &p["role"])
    )
}

/// `principal qualify|suspend|revoke`.
pub fn principal_status(ui: &Ui, p: &Value) -> String {
    let lang = ui.lang;
    t!(
        lang,
        "cli-principal-status",
        name = s(&p["name"]),
        role = word(lang, "role", &p["role"]),
        status = word(lang, "principal-status", &p["status"])
    )
}

/// A principal's language choice.
pub fn language_choice(ui: &Ui, name: &str, language: Option<Lang>) -> String {
    let lang = ui.lang;
    match language {
        Some(l) => t!(
            lang,
            "cli-language-chosen",
            name = name,
            language = l.native_name(),
            tag = l.tag()
        ),
        None => t!(lang, "cli-language-auto", name = name),
    }
}

/// The domain's settings.
pub fn settings(ui: &Ui, s: &sandbox_runtime::settings::Settings) -> String {
    let lang = ui.lang;
    t!(
        lang,
        "cli-settings",
        language = s.default_language.native_name(),
        tag = s.default_language.tag(),
        zone = s.time_zone.as_str()
    )
}

/// `token issue`.
pub fn token_issued(ui: &Ui, v: &Value) -> String {
    let lang = ui.lang;
    t!(
        lang,
        "cli-token-issued",
        id = s(&v["id"]),
        principal = s(&v["principal"]),
        token = s(&v["token"])
    )
}

/// `token revoke`.
pub fn token_revoked(ui: &Ui, v: &Value) -> String {
    let lang = ui.lang;
    t!(
        lang,
        "cli-token-revoked",
        id = s(&v["id"]),
        principal = s(&v["principal"])
    )
}

/// A registered dataset version: what was stored, then what ingest found.
pub fn dataset_added(ui: &Ui, v: &Value) -> String {
    let lang = ui.lang;
    let mut out = t!(
        lang,
        "cli-dataset-added",
        name = s(&v["name"]),
        version = s(&v["version"]),
        rows = s(&v["row_count"]),
        sha256 = s(&v["content_sha256"])
    );
    out.push_str(&ingest_report(ui, &v["report"]));
    out
}

/// `dataset show`: the version, its columns and rules, a retirement, the ingest report.
pub fn dataset(ui: &Ui, v: &Value) -> String {
    let lang = ui.lang;
    let dataset = &v["policy"]["dataset"];
    let mut out = t!(
        lang,
        "cli-dataset-show",
        name = s(&v["name"]),
        version = s(&v["version"]),
        summary = s(&dataset["summary"]),
        provider = s(&dataset["provider"]),
        rows = s(&v["row_count"]),
        obtained = ui.time(&v["obtained_at"])
    );
    let columns: Vec<Vec<String>> = items(&v["policy"]["column"])
        .iter()
        .map(|c| {
            vec![
                format!("  {}", s(&c["name"])),
                s(&c["level"]),
                word(lang, "access", &c["access"]),
            ]
        })
        .collect();
    out.push('\n');
    out.push_str(&table(
        &[
            format!("  {}", t!(lang, "cli-col-column")),
            t!(lang, "cli-col-level"),
            t!(lang, "cli-col-access"),
        ],
        &columns,
        "",
    ));
    if v["retired"].is_object() {
        let r = &v["retired"];
        out.push('\n');
        out.push_str(&t!(
            lang,
            "cli-dataset-retired-at",
            at = ui.time(&r["at"]),
            by = s(&r["by"]),
            reason = s(&r["reason"])
        ));
    }
    out.push_str(&ingest_report(ui, &v["report"]));
    out
}

/// `dataset retire`.
pub fn dataset_retired(ui: &Ui, v: &Value) -> String {
    let lang = ui.lang;
    t!(lang, "cli-dataset-retired", name = s(&v["name"]))
}

/// What ingest found (`report` of a dataset version), as lines after a registration.
pub fn ingest_report(ui: &Ui, r: &Value) -> String {
    let lang = ui.lang;
    if r.is_null() {
        return String::new();
    }
    let n = |k: &str| r[k].as_i64().unwrap_or(0);
    let mut out = String::from("\n");
    out.push_str(&t!(
        lang,
        "cli-ingest-read",
        read = n("rows_read"),
        stored = n("rows_stored")
    ));
    if n("rows_without_unit") > 0 {
        out.push_str("\n  ");
        out.push_str(&t!(
            lang,
            "cli-ingest-without-unit",
            rows = n("rows_without_unit")
        ));
    }
    if let Some(units) = r["units"].as_i64() {
        out.push_str("\n  ");
        out.push_str(&t!(lang, "cli-ingest-units", units = units));
        if n("units_over_max_rows") > 0 {
            out.push_str(&t!(
                lang,
                "cli-ingest-over-max-rows",
                units = n("units_over_max_rows"),
                rows = n("rows_over_max_rows")
            ));
        }
    }
    for (key, id) in [
        ("columns_not_stored", "cli-ingest-not-stored"),
        (
            "columns_stored_desensitized",
            "cli-ingest-stored-desensitized",
        ),
    ] {
        let names: Vec<String> = items(&r[key]).iter().map(s).collect();
        if !names.is_empty() {
            let mut args = sandbox_i18n::Args::new();
            args.set("columns", names.join(&t!(lang, "list-separator")));
            out.push_str("\n  ");
            out.push_str(&sandbox_i18n::message(lang, id, Some(&args)));
        }
    }
    let columns = items(&r["columns"]);
    for c in columns {
        let k = |key: &str| c[key].as_i64().unwrap_or(0);
        let found: Vec<String> = [
            ("nulls", "cli-ingest-nulls"),
            ("below_bounds", "cli-ingest-below"),
            ("above_bounds", "cli-ingest-above"),
            ("outside_categories", "cli-ingest-outside"),
        ]
        .iter()
        .filter(|(key, _)| k(key) > 0)
        .map(|(key, id)| sandbox_i18n::message(lang, id, Some(&count_args(k(key)))))
        .collect();
        out.push_str("\n  ");
        out.push_str(&t!(
            lang,
            "cli-ingest-column",
            name = s(&c["name"]),
            found = found.join(&t!(lang, "list-separator"))
        ));
    }
    let outside = columns.iter().any(|c| {
        ["below_bounds", "above_bounds", "outside_categories"]
            .iter()
            .any(|k| c[*k].as_i64().unwrap_or(0) > 0)
    });
    if outside {
        out.push_str("\n  ");
        out.push_str(&match r["out_of_range"].as_str() {
            Some("drop") => t!(
                lang,
                "cli-ingest-dropped",
                rows = n("rows_dropped_out_of_range")
            ),
            _ => t!(lang, "cli-ingest-kept"),
        });
    }
    if columns.is_empty() && n("rows_without_unit") == 0 && n("units_over_max_rows") == 0 {
        out.push_str("\n  ");
        out.push_str(&t!(lang, "cli-ingest-clean"));
    }
    out
}

fn count_args(count: i64) -> sandbox_i18n::Args<'static> {
    let mut args = sandbox_i18n::Args::new();
    args.set("count", count);
    args
}

/// A scenario's status after a command (`apply`, `approve`, `suspend`, ...).
pub fn scenario_status(ui: &Ui, r: &Value) -> String {
    let lang = ui.lang;
    if r["status"] == "pending"
        && let Some(by) = r["decided_by"].as_str()
    {
        return t!(
            lang,
            "cli-scenario-awaits-consents",
            id = s(&r["id"]),
            name = s(&r["spec"]["name"]),
            who = by
        );
    }
    t!(
        lang,
        "cli-scenario-status",
        id = s(&r["id"]),
        name = s(&r["spec"]["name"]),
        status = word(lang, "scenario-status", &r["status"])
    )
}

/// `scenario consents|consent|answer`: what the scenario awaits, each party's word.
pub fn consents(ui: &Ui, c: &Value) -> String {
    let lang = ui.lang;
    let mut out = if let Some(t) = c["covered_by_type"].as_str() {
        t!(
            lang,
            "cli-consents-by-type",
            id = s(&c["scenario_id"]),
            kind = t
        )
    } else if c["complete"].as_bool() == Some(true) {
        t!(lang, "cli-consents-complete", id = s(&c["scenario_id"]))
    } else {
        t!(lang, "cli-consents-awaited", id = s(&c["scenario_id"]))
    };
    for i in items(&c["items"]) {
        let party = match i["dataset"].as_str() {
            Some(d) => t!(lang, "cli-consent-provider", dataset = d),
            None => sandbox_i18n::message(lang, "cli-consent-supervisor", None),
        };
        out.push_str("\n  ");
        out.push_str(&match i["state"].as_str() {
            Some("no_objection") => t!(
                lang,
                "cli-consent-no-objection",
                party = party,
                who = s(&i["by"]),
                at = ui.time(&i["at"])
            ),
            Some("objection") => t!(
                lang,
                "cli-consent-objection",
                party = party,
                who = s(&i["by"]),
                at = ui.time(&i["at"]),
                reasons = s(&i["reasons"])
            ),
            _ => t!(lang, "cli-consent-awaited", party = party),
        });
        if let Some(answer) = i["answer"].as_str() {
            out.push_str("\n    ");
            out.push_str(&t!(
                lang,
                "cli-consent-answer",
                at = ui.time(&i["answered_at"]),
                answer = answer
            ));
        }
    }
    if c["status"] == "pending" {
        out.push('\n');
        out.push_str(&match c["approved_by"].as_str() {
            Some(by) => t!(lang, "cli-consents-operator-approved", who = by),
            None => sandbox_i18n::message(lang, "cli-consents-operator-awaited", None),
        });
    }
    out
}

/// `dataset version|object|suspend|reinstate`: what stands against a version.
pub fn version_standing(ui: &Ui, v: &Value) -> String {
    let lang = ui.lang;
    let mut out = match v["suspended"].is_null() {
        true => t!(
            lang,
            "cli-version-in-use",
            name = s(&v["dataset"]),
            version = s(&v["version"])
        ),
        false => t!(
            lang,
            "cli-version-suspended",
            name = s(&v["dataset"]),
            version = s(&v["version"]),
            who = s(&v["suspended"]["suspended_by"]),
            at = ui.time(&v["suspended"]["suspended_at"]),
            reason = s(&v["suspended"]["reason"])
        ),
    };
    for o in items(&v["objections"]) {
        out.push_str("\n  ");
        out.push_str(&t!(
            lang,
            "cli-version-objection",
            who = s(&o["raised_by"]),
            at = ui.time(&o["created_at"]),
            reason = s(&o["reason"])
        ));
    }
    out.push_str("\n  ");
    out.push_str(&t!(
        lang,
        "cli-version-products",
        count = items(&v["products"]).len(),
        products = items(&v["products"])
            .iter()
            .map(cell)
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out
}

/// `dataset share`.
pub fn sharing_decided(ui: &Ui, d: &Value) -> String {
    t!(
        ui.lang,
        "cli-sharing-decided",
        name = s(&d["dataset"]),
        scenario = s(&d["scenario"]),
        who = s(&d["decided_by"])
    )
}

/// `dataset destroy|destruction`: the record of what was destroyed.
pub fn destruction(ui: &Ui, d: &Value) -> String {
    let lang = ui.lang;
    if d.is_null() {
        return sandbox_i18n::message(lang, "cli-not-destroyed", None);
    }
    let mut out = t!(
        lang,
        "cli-destroyed",
        name = s(&d["dataset"]),
        who = s(&d["destroyed_by"]),
        at = ui.time(&d["destroyed_at"]),
        reason = s(&d["reason"])
    );
    for v in items(&d["record"]["versions"]) {
        for f in items(&v["files"]) {
            out.push_str(&format!(
                "\n  {}  {}  {}",
                cell(&f["path"]),
                cell(&f["bytes"]),
                // Named by the domain suite's hash (`sha256`, or `sm3`).
                cell(if f["sm3"].is_null() {
                    &f["sha256"]
                } else {
                    &f["sm3"]
                })
            ));
        }
    }
    out
}

/// `dataset recall`: the products withdrawn.
pub fn recalled(ui: &Ui, w: &Value) -> String {
    let lang = ui.lang;
    let ids: Vec<String> = items(w).iter().map(|x| cell(&x["product"]["id"])).collect();
    t!(
        lang,
        "cli-recalled",
        count = ids.len(),
        products = ids.join(", ")
    )
}

/// `scenario type-add`.
pub fn scenario_type(ui: &Ui, t: &Value) -> String {
    t!(
        ui.lang,
        "cli-scenario-type",
        name = s(&t["name"]),
        id = s(&t["scenario_id"]),
        description = s(&t["description"])
    )
}

/// `scenario show`.
pub fn scenario_details(ui: &Ui, r: &Value) -> String {
    let lang = ui.lang;
    let number = |v: &Value| v.as_f64().unwrap_or(0.0);
    let mut out = t!(
        lang,
        "cli-scenario-show",
        id = s(&r["id"]),
        name = s(&r["spec"]["name"]),
        status = word(lang, "scenario-status", &r["status"]),
        developer = s(&r["developer"]),
        purpose = s(&r["spec"]["purpose"]),
        from = s(&r["spec"]["valid_from"]),
        until = s(&r["spec"]["valid_until"]),
        spent = format!("{:.3}", number(&r["epsilon_spent"])),
        total = s(&r["spec"]["budget"]["epsilon"])
    );
    if let Some(per_query) = r["spec"]["budget"]["epsilon_per_query"].as_f64() {
        out.push_str(&t!(lang, "cli-scenario-per-query", epsilon = per_query));
    }
    let datasets = items(&r["spec"]["datasets"]);
    if !datasets.is_empty() {
        out.push('\n');
        out.push_str(&t!(lang, "cli-scenario-columns"));
        for d in datasets {
            let columns: Vec<String> = items(&d["columns"]).iter().map(s).collect();
            out.push_str(&format!(
                "\n  {}: {}",
                s(&d["name"]),
                columns.join(&t!(lang, "list-separator"))
            ));
        }
    }
    let spec = &r["spec"];
    if let Some(plan) = spec["response_plan"].as_str() {
        out.push('\n');
        out.push_str(&t!(lang, "cli-scenario-response-plan", plan = plan));
    }
    if spec["agreement"].is_object() {
        let a = &spec["agreement"];
        out.push('\n');
        out.push_str(&t!(
            lang,
            "cli-scenario-agreement",
            rights = s(&a["rights_and_obligations"]),
            security = s(&a["security_requirements"]),
            basis = s(&a["legal_basis"]),
            breach = s(&a["breach"])
        ));
    }
    out
}

/// `budget show`.
pub fn budget(ui: &Ui, b: &Value) -> String {
    let lang = ui.lang;
    let f = |k: &str| b[k].as_f64().unwrap_or(0.0);
    let mut out = t!(
        lang,
        "cli-budget",
        scenario = s(&b["scenario_id"]),
        spent = format!("{:.4}", f("epsilon_spent")),
        total = format!("{:.4}", f("epsilon_total")),
        left = format!("{:.4}", (f("epsilon_total") - f("epsilon_spent")).max(0.0))
    );
    if f("rho_total") > 0.0 {
        out.push_str("\n  ");
        out.push_str(&t!(
            lang,
            "cli-budget-rho",
            spent = format!("{:.6}", f("rho_spent")),
            total = format!("{:.6}", f("rho_total")),
            delta = format!("{:e}", f("delta_total"))
        ));
    } else if f("delta_total") > 0.0 {
        out.push_str("\n  ");
        out.push_str(&t!(
            lang,
            "cli-budget-delta",
            spent = format!("{:e}", f("delta_spent")),
            total = format!("{:e}", f("delta_total"))
        ));
    }
    out
}

/// `usage show`: one row per scenario.
pub fn usage(ui: &Ui, list: &Value) -> String {
    let lang = ui.lang;
    let rows: Vec<Vec<String>> = items(list)
        .iter()
        .map(|u| {
            let flags: Vec<String> = items(&u["flags"])
                .iter()
                .map(|f| word(lang, "flag", f))
                .collect();
            vec![
                s(&u["id"]),
                s(&u["name"]),
                word(lang, "scenario-status", &u["status"]),
                s(&u["jobs"]),
                u["idle_days"]
                    .as_i64()
                    .map_or_else(|| "-".into(), |d| t!(lang, "cli-days", days = d)),
                s(&u["answered"]),
                t!(
                    lang,
                    "cli-usage-refused",
                    refused = s(&u["refused"]),
                    counted = s(&u["counted_refusals"])
                ),
                format!(
                    "{:.3} / {:.3}",
                    u["epsilon_spent"].as_f64().unwrap_or(0.0),
                    u["epsilon_total"].as_f64().unwrap_or(0.0)
                ),
                flags.join(&t!(lang, "list-separator")),
            ]
        })
        .collect();
    let h = |id: &str| sandbox_i18n::message(lang, &format!("cli-col-{id}"), None);
    table(
        &[
            h("id"),
            h("name"),
            h("status"),
            h("jobs"),
            h("idle"),
            h("answered"),
            h("refused"),
            h("epsilon"),
            h("flags"),
        ],
        &rows,
        &h("empty-scenarios"),
    )
}

/// The monitoring settings of `usage settings`.
pub fn usage_settings(ui: &Ui, v: &Value) -> String {
    let lang = ui.lang;
    t!(
        lang,
        "cli-usage-settings",
        refusals = s(&v["max_refusals"]),
        days = s(&v["idle_days"])
    )
}

/// A job: its status, where it stands while it runs, its error, its outputs.
pub fn job(ui: &Ui, j: &Value) -> String {
    let lang = ui.lang;
    let mut out = t!(
        lang,
        "cli-job",
        id = s(&j["id"]),
        status = word(lang, "job-status", &j["status"])
    );
    if let Some(ahead) = j["queue_position"].as_i64() {
        out.push(' ');
        out.push_str(&t!(lang, "cli-job-queued", ahead = ahead));
    }
    if j["progress"].is_object() {
        let p = &j["progress"];
        out.push(' ');
        out.push_str(&t!(
            lang,
            "cli-job-progress",
            elapsed = s(&p["elapsed_ms"]),
            deadline = s(&p["deadline_ms"]),
            queries = s(&p["queries"]),
            fuel = s(&p["fuel_used"]),
            limit = s(&p["fuel_limit"])
        ));
    }
    if let Some(e) = j["error"].as_str() {
        out.push_str(&format!(": {e}"));
    }
    for o in items(&j["outputs"]) {
        out.push_str("\n  ");
        out.push_str(&t!(
            lang,
            "cli-job-output",
            id = s(&o["id"]),
            name = s(&o["name"]),
            kind = word(lang, "kind", &o["kind"]),
            status = word(lang, "output-status", &o["status"])
        ));
    }
    out
}

/// A job's log lines.
pub fn log_lines(lines: &Value) -> String {
    items(lines)
        .iter()
        .map(|l| format!("[{}] {}", s(&l["level"]), s(&l["text"])))
        .collect::<Vec<_>>()
        .join("\n")
}

/// An output after a decision; a release names its product and where to get it (`at`: the
/// folder, on the domain's machine).
pub fn output_decided(ui: &Ui, o: &Value, product: Option<&Value>, at: Option<&str>) -> String {
    let lang = ui.lang;
    match product {
        Some(p) => {
            let mut out = t!(
                lang,
                "cli-output-released",
                id = s(&o["id"]),
                product = s(&p["id"])
            );
            out.push('\n');
            out.push_str(&match at {
                Some(path) => t!(lang, "cli-product-at", path = path),
                None => t!(lang, "cli-product-fetch", product = s(&p["id"])),
            });
            out
        }
        None => t!(
            lang,
            "cli-output-status",
            id = s(&o["id"]),
            status = word(lang, "output-status", &o["status"])
        ),
    }
}

/// A staged output as a line (name, kind, size, status), then a line per automated check
/// (`✓`, `?` for review, `✗`), the checks indented by `indent` more.
pub fn staged_output(ui: &Ui, o: &Value, indent: &str) -> String {
    let lang = ui.lang;
    let mut out = t!(
        lang,
        "cli-staged-output",
        name = s(&o["name"]),
        kind = word(lang, "kind", &o["kind"]),
        bytes = s(&o["bytes"]),
        status = word(lang, "output-status", &o["status"])
    );
    for r in items(&o["checks"]["results"]) {
        let mark = match r["outcome"].as_str() {
            Some("pass") => "✓",
            Some("review") => "?",
            _ => "✗",
        };
        out.push('\n');
        out.push_str(indent);
        out.push_str(&t!(
            lang,
            "cli-check-line",
            mark = mark,
            check = word(lang, "check", &r["check"]),
            reason = sandbox_runtime::disclosure::reason_in(lang, r)
        ));
    }
    out
}

/// `output checks`: the output, then one row per automated check.
pub fn output_checks(ui: &Ui, o: &Value) -> String {
    let lang = ui.lang;
    let rows: Vec<Vec<String>> = items(&o["checks"]["results"])
        .iter()
        .map(|r| {
            vec![
                format!("  {}", word(lang, "check", &r["check"])),
                word(lang, "outcome", &r["outcome"]),
                sandbox_runtime::disclosure::reason_in(lang, r),
            ]
        })
        .collect();
    let mut out = t!(
        lang,
        "cli-output-named",
        id = s(&o["id"]),
        name = s(&o["name"]),
        status = word(lang, "output-status", &o["status"])
    );
    if !rows.is_empty() {
        out.push('\n');
        out.push_str(&table(
            &[
                format!("  {}", t!(lang, "cli-col-check")),
                t!(lang, "cli-col-outcome"),
                t!(lang, "cli-col-reason"),
            ],
            &rows,
            "",
        ));
    }
    out
}

/// `output show`: the output, then its content as a table or text.
pub fn output_shown(ui: &Ui, o: &Value, shown: &str) -> String {
    let lang = ui.lang;
    let mut out = t!(
        lang,
        "cli-output-shown",
        id = s(&o["id"]),
        name = s(&o["name"]),
        kind = word(lang, "kind", &o["kind"]),
        status = word(lang, "output-status", &o["status"])
    );
    out.push('\n');
    out.push_str(shown);
    out
}

/// A file written (`output download`, `man`).
pub fn wrote_file(ui: &Ui, path: &std::path::Path, bytes: usize) -> String {
    let lang = ui.lang;
    t!(
        lang,
        "cli-wrote-file",
        path = path.display().to_string(),
        bytes = bytes
    )
}

/// `product download`.
pub fn product_downloaded(ui: &Ui, id: &str, files: usize, dir: &std::path::Path) -> String {
    let lang = ui.lang;
    t!(
        lang,
        "cli-product-downloaded",
        id = id,
        files = files,
        dir = dir.display().to_string()
    )
}

/// `product verify`: the signature and hashes hold; a withdrawal notice, if the folder
/// holds one, is said.
pub fn product_verified(ui: &Ui, manifest: &Value, withdrawal: Option<&Value>) -> String {
    let lang = ui.lang;
    let mut out = t!(
        lang,
        "cli-product-verified",
        id = s(&manifest["product_id"]),
        files = items(&manifest["files"]).len()
    );
    if let Some(w) = withdrawal {
        out.push('\n');
        out.push_str(&withdrawal_line(ui, w));
    }
    out
}

fn withdrawal_line(ui: &Ui, w: &Value) -> String {
    t!(
        ui.lang,
        "cli-product-withdrawal",
        who = s(&w["withdrawn_by"]),
        at = ui.time(&w["withdrawn_at"]),
        reason = s(&w["reason"])
    )
}

/// `product show`: a catalog entry.
pub fn product_shown(ui: &Ui, e: &Value) -> String {
    let lang = ui.lang;
    let scope: Vec<String> = items(&e["scope"])
        .iter()
        .map(|g| {
            let who = crate::lists::grantee(lang, &g["grantee"]);
            if g["at_release"].as_bool() == Some(false) {
                format!(
                    "{who} ({})",
                    t!(
                        lang,
                        "product-granted-later",
                        who = s(&g["granted_by"]),
                        at = ui.time(&g["granted_at"])
                    )
                )
            } else {
                who
            }
        })
        .collect();
    let mut out = t!(
        lang,
        "cli-product-shown",
        id = s(&e["id"]),
        name = s(&e["name"]),
        scenario = s(&e["scenario"]),
        purpose = s(&e["purpose"]),
        providers = items(&e["providers"])
            .iter()
            .map(cell)
            .collect::<Vec<_>>()
            .join(", "),
        datasets = items(&e["datasets"])
            .iter()
            .map(cell)
            .collect::<Vec<_>>()
            .join(", "),
        released = ui.time(&e["released_at"]),
        by = s(&e["released_by"]),
        scope = if scope.is_empty() {
            sandbox_i18n::message(lang, "product-scope-none", None)
        } else {
            scope.join(", ")
        }
    );
    out.push('\n');
    if !e["withdrawal"].is_null() {
        out.push_str(&withdrawal_line(ui, &e["withdrawal"]));
    } else if e["entitlement"].is_null() {
        out.push_str(&sandbox_i18n::message(
            lang,
            "product-not-granted-long",
            None,
        ));
    } else {
        out.push_str(&t!(
            lang,
            "cli-product-files",
            files = items(&e["files"])
                .iter()
                .map(cell)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out
}

/// `product withdraw`: done, and the holders to notify.
pub fn product_withdrawn(ui: &Ui, w: &Value) -> String {
    let lang = ui.lang;
    let holders: Vec<String> = items(&w["holders"])
        .iter()
        .map(|h| cell(&h["principal"]))
        .collect();
    t!(
        lang,
        "cli-product-withdrawn",
        id = s(&w["product"]["id"]),
        count = holders.len(),
        holders = holders.join(", ")
    )
}

/// `product grant`: the product's grants now.
pub fn product_granted(ui: &Ui, id: &str, grants: &Value) -> String {
    let lang = ui.lang;
    t!(
        lang,
        "cli-product-granted",
        id = id,
        scope = items(grants)
            .iter()
            .map(|g| crate::lists::grantee(lang, &g["grantee"]))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// `report compliance|verify`: each requirement and its evidence.
pub fn report(ui: &Ui, r: &Value, written: Option<&std::path::Path>) -> String {
    let lang = ui.lang;
    let scope = match r["scope"]["scenario"]["name"].as_str() {
        Some(name) => t!(lang, "cli-report-scenario", name = name),
        None => sandbox_i18n::message(lang, "cli-report-domain", None),
    };
    let mut out = t!(
        lang,
        "cli-report",
        scope = scope,
        from = s(&r["period"]["from"]),
        to = s(&r["period"]["to"]),
        size = s(&r["audit"]["size"])
    );
    for section in items(&r["sections"]) {
        out.push_str(&format!(
            "\n  {:<14} {:>5}  {}  ({})",
            cell(&section["id"]),
            cell(&section["evidence"]),
            cell(&section["title"]),
            cell(&section["articles"])
        ));
    }
    if let Some(dir) = written {
        out.push('\n');
        out.push_str(&t!(
            lang,
            "cli-report-written",
            dir = dir.display().to_string()
        ));
    }
    out
}

/// `incident ...`: an incident and its timeline.
pub fn incident(ui: &Ui, i: &Value) -> String {
    let lang = ui.lang;
    let mut out = t!(
        lang,
        "cli-incident",
        id = s(&i["id"]),
        grade = word(lang, "incident-grade", &i["grade"]),
        title = s(&i["title"]),
        who = s(&i["opened_by"]),
        at = ui.time(&i["opened_at"]),
        description = s(&i["description"])
    );
    for e in items(&i["entries"]) {
        out.push_str("\n  ");
        out.push_str(&t!(
            lang,
            "cli-incident-entry",
            at = ui.time(&e["at"]),
            who = s(&e["by"]),
            kind = word(lang, "incident-entry", &e["kind"]),
            reference = s(&e["reference"]),
            to = s(&e["recipient"]),
            text = s(&e["text"])
        ));
    }
    if !i["closed_at"].is_null() {
        out.push('\n');
        out.push_str(&t!(
            lang,
            "cli-incident-closed",
            who = s(&i["closed_by"]),
            at = ui.time(&i["closed_at"]),
            summary = s(&i["summary"])
        ));
    }
    out
}

/// `order ...`: one rectification order.
pub fn order(ui: &Ui, o: &Value) -> String {
    let lang = ui.lang;
    let mut out = t!(
        lang,
        "cli-order",
        id = s(&o["id"]),
        status = word(lang, "order-status", &o["status"]),
        kind = s(&o["target_kind"]),
        target = s(&o["target"]),
        deadline = ui.time(&o["deadline"]),
        requirement = s(&o["requirement"])
    );
    if let Some(a) = o["answer"].as_str() {
        out.push_str("\n  ");
        out.push_str(&t!(
            lang,
            "cli-order-answer",
            who = s(&o["answered_by"]),
            at = ui.time(&o["answered_at"]),
            answer = a
        ));
    }
    out
}

/// `org add|show|set`: an organisation's entry.
pub fn organisation(ui: &Ui, o: &Value) -> String {
    let lang = ui.lang;
    t!(
        lang,
        "cli-organisation",
        code = s(&o["credit_code"]),
        name = s(&o["name"]),
        officer = s(&o["security_officer"]),
        contact = s(&o["security_contact"]),
        until = s(&o["qualified_until"]),
        spent = format!("{:.4}", o["epsilon_spent"].as_f64().unwrap_or(0.0)),
        cap = o["epsilon_cap"]
            .as_f64()
            .map_or_else(|| "-".to_string(), |c| c.to_string()),
        members = items(&o["members"])
            .iter()
            .map(cell)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// `org assign`: a principal's organisation now.
pub fn principal_assigned(ui: &Ui, p: &Value) -> String {
    let lang = ui.lang;
    match p["organisation"].as_str() {
        Some(code) => t!(
            lang,
            "cli-principal-in-organisation",
            name = s(&p["name"]),
            code = code
        ),
        None => t!(
            lang,
            "cli-principal-in-no-organisation",
            name = s(&p["name"])
        ),
    }
}

/// `stop ...`: the stop in force and the jobs it interrupted, or a lifted stop.
pub fn stop(ui: &Ui, v: &Value) -> String {
    let lang = ui.lang;
    match v["id"].as_i64() {
        Some(id) if v.get("lifted").is_none() => t!(
            lang,
            "cli-stop-in-force",
            id = id,
            interrupted = items(&v["interrupted"]).len()
        ),
        _ => t!(lang, "cli-stop-lifted"),
    }
}

/// The stops of `stop list`: a header, then one row each.
pub fn stops(ui: &Ui, list: &Value) -> String {
    let lang = ui.lang;
    let rows: Vec<Vec<String>> = items(list)
        .iter()
        .map(|x| {
            let mut reason = s(&x["reason"]);
            if x["lifted_at"].is_string() {
                reason.push(' ');
                reason.push_str(&t!(
                    lang,
                    "cli-stop-was-lifted",
                    at = ui.time(&x["lifted_at"]),
                    by = s(&x["lifted_by"])
                ));
            }
            vec![
                s(&x["id"]),
                word(lang, "stop-scope", &x["scope"]),
                cell(&x["target"]),
                s(&x["stopped_by"]),
                ui.time(&x["created_at"]),
                reason,
            ]
        })
        .collect();
    let h = |id: &str| sandbox_i18n::message(lang, &format!("cli-col-{id}"), None);
    table(
        &[
            h("id"),
            h("scope"),
            h("target"),
            h("by"),
            h("since"),
            h("reason"),
        ],
        &rows,
        &h("empty-stops"),
    )
}

/// `audit verify`: on this machine (`by_server` false) or by the server.
pub fn audit_verified(ui: &Ui, v: &Value, by_server: bool) -> String {
    let lang = ui.lang;
    let c = &v["last_checkpoint"];
    let last = if c.is_object() {
        t!(
            lang,
            "cli-audit-last-checkpoint",
            number = s(&c["number"]),
            size = s(&c["size"]),
            at = ui.time(&c["ts"])
        )
    } else {
        t!(lang, "cli-audit-no-checkpoint")
    };
    let id = if by_server {
        "cli-audit-verified-by-server"
    } else {
        "cli-audit-verified"
    };
    let mut args = sandbox_i18n::Args::new();
    args.set("events", s(&v["events"]));
    args.set("root", s(&v["root"]));
    args.set("checkpoints", s(&v["checkpoints"]));
    args.set("last", last);
    sandbox_i18n::message(lang, id, Some(&args))
}

/// `audit checkpoint`.
pub fn checkpoint(ui: &Ui, c: &Value) -> String {
    let lang = ui.lang;
    t!(
        lang,
        "cli-audit-checkpoint",
        number = s(&c["number"]),
        size = s(&c["size"]),
        root = s(&c["root"]),
        at = ui.time(&c["ts"])
    )
}

/// `audit export --out FILE`.
pub fn exported(ui: &Ui, v: &Value, path: &std::path::Path) -> String {
    let lang = ui.lang;
    t!(
        lang,
        "cli-audit-exported",
        from = s(&v["from"]),
        to = s(&v["to"]),
        events = s(&v["events"]),
        checkpoints = s(&v["checkpoints"]),
        path = path.display().to_string()
    )
}

/// `audit retention`.
pub fn retention(ui: &Ui, years: i64, least: i64) -> String {
    let lang = ui.lang;
    t!(lang, "cli-audit-retention", years = years, least = least)
}

/// `audit verify-proof`.
pub fn proof_verified(ui: &Ui, v: &Value, key_given: bool) -> String {
    let lang = ui.lang;
    let by = if key_given {
        t!(lang, "cli-proof-given-key")
    } else {
        t!(lang, "cli-proof-own-key", key = s(&v["public_key"]))
    };
    t!(
        lang,
        "cli-proof-verified",
        kind = s(&v["kind"]),
        suite = s(&v["suite"]),
        statement = s(&v["statement"]),
        by = by
    )
}

/// `query check`.
pub fn query_accepted(ui: &Ui, aggregates: usize, datasets: &str, keys: &[String]) -> String {
    let lang = ui.lang;
    let keys = if keys.is_empty() {
        t!(lang, "cli-query-no-keys")
    } else {
        keys.join(&t!(lang, "list-separator"))
    };
    t!(
        lang,
        "cli-query-accepted",
        aggregates = aggregates,
        datasets = datasets,
        keys = keys
    )
}

/// A review request's thread (`review show`, `comment`).
pub fn thread(ui: &Ui, v: &Value) -> String {
    let lang = ui.lang;
    let awaiting: Vec<String> = items(&v["awaiting"])
        .iter()
        .map(|a| word(lang, "awaiting", a))
        .collect();
    let awaiting = if awaiting.is_empty() {
        word(lang, "awaiting", &Value::from("none"))
    } else {
        awaiting.join(&t!(lang, "cli-and"))
    };
    let mut out = t!(
        lang,
        "cli-thread",
        developer = s(&v["developer"]),
        scenario = s(&v["scenario_id"]),
        awaiting = awaiting
    );
    for job in items(&v["jobs"]) {
        out.push('\n');
        out.push_str(&t!(
            lang,
            "cli-thread-job",
            id = s(&job["id"]),
            status = word(lang, "job-status", &job["status"]),
            at = ui.time(&job["created_at"])
        ));
        let outputs: Vec<Vec<String>> = items(&job["outputs"])
            .iter()
            .map(|o| {
                vec![
                    format!("  {}", s(&o["id"])),
                    s(&o["name"]),
                    word(lang, "kind", &o["kind"]),
                    word(lang, "output-status", &o["status"]),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&table(
            &[
                format!("  {}", t!(lang, "cli-col-output")),
                t!(lang, "cli-col-name"),
                t!(lang, "cli-col-kind"),
                t!(lang, "cli-col-status"),
            ],
            &outputs,
            &format!("  {}", t!(lang, "cli-col-empty-outputs")),
        ));
    }
    let entries = items(&v["entries"]);
    if entries.is_empty() {
        out.push('\n');
        out.push_str(&t!(lang, "thread-empty"));
    }
    for e in entries {
        let what = match e["kind"].as_str() {
            Some("decision") => t!(
                lang,
                "cli-thread-decision",
                decision = word(lang, "decision", &e["decision"]),
                tier = word(lang, "tier", &e["tier"]),
                output = s(&e["output_id"])
            ),
            _ => t!(lang, "thread-comment"),
        };
        out.push_str(&format!(
            "\n{}  {}  {what}",
            ui.time(&e["at"]),
            s(&e["author"])
        ));
        if let Some(body) = e["text"].as_str() {
            for line in body.lines() {
                out.push_str(&format!("\n    {line}"));
            }
        }
    }
    out
}

/// Outputs decided together (`review decide`).
pub fn decided(ui: &Ui, list: &Value) -> String {
    let lang = ui.lang;
    items(list)
        .iter()
        .map(|o| {
            t!(
                lang,
                "cli-output-named",
                id = s(&o["id"]),
                name = s(&o["name"]),
                status = word(lang, "output-status", &o["status"])
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_job_reads_in_either_language_with_its_statuses_as_words() {
        let j = json!({
            "id": "j1", "status": "succeeded", "error": null,
            "outputs": [{"id": "o1", "name": "t", "kind": "table", "status": "operator_approved"}]
        });
        let en = job(&Ui::new(Lang::En, None), &j);
        assert_eq!(
            en,
            "job j1 succeeded\n  output o1 `t` (table) approved by the operator"
        );
        let zh = job(&Ui::new(Lang::ZhCn, None), &j);
        assert!(zh.contains("成功") && zh.contains("运营机构已批准"), "{zh}");
        assert!(!zh.contains("succeeded") && !zh.contains("operator_approved"));
    }

    #[test]
    fn an_identifier_without_words_is_shown_as_it_is() {
        assert_eq!(word(Lang::En, "job-status", &json!("mystery")), "mystery");
    }
}
