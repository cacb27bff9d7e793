//! The console's pages: pure functions from what the handlers read to HTML (maud escapes
//! every value). No scripts; one stylesheet from the server; forms post back with the
//! session's CSRF secret.

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use sandbox_core::Role;
use sandbox_runtime::audit::Event;
use sandbox_runtime::scenarios::Usage;
use sandbox_runtime::sessions::Session;

pub use sandbox_runtime::review::view::{Content, OutputView, Pending, QueryLine, ReviewLine};

/// Rows of a table shown on a page; the rest is counted.
pub const MAX_SHOWN_ROWS: usize = 500;

/// The stylesheet.
pub const CSS: &str = r#"
:root { color-scheme: light; --ink: #1b1f24; --muted: #5b6570; --line: #d6dbe1; --pass: #1a7f37; --review: #9a6700; --fail: #cf222e; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, "Noto Sans CJK SC", "PingFang SC", sans-serif; color: var(--ink); background: #f6f8fa; }
header { display: flex; gap: 1.5rem; align-items: center; padding: .6rem 1.5rem; background: #24292f; color: #fff; }
header a { color: #fff; text-decoration: none; }
header .who { margin-left: auto; color: #d0d7de; }
header form { margin: 0; }
main { max-width: 72rem; margin: 1.5rem auto; padding: 0 1.5rem; }
h1 { font-size: 1.4rem; margin: 0 0 1rem; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { border: 1px solid var(--line); padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #eef1f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: var(--pass); font-weight: 600; }
.review { color: var(--review); font-weight: 600; }
.fail { color: var(--fail); font-weight: 600; }
.box { background: #fff; border: 1px solid var(--line); padding: 1rem; margin: 1rem 0; }
.error { border-color: var(--fail); color: var(--fail); }
.notice { border-color: var(--pass); }
pre { white-space: pre-wrap; word-break: break-word; margin: 0; }
textarea { width: 100%; min-height: 5rem; font: inherit; }
button { font: inherit; padding: .35rem .9rem; margin-right: .5rem; cursor: pointer; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; }
img.chart { max-width: 100%; background: #fff; border: 1px solid var(--line); }
meter { width: 10rem; }
.muted { color: var(--muted); }
"#;

/// The frame of every page.
pub fn layout(title: &str, session: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Sandbox review console" }
                link rel="stylesheet" href="/console/static/console.css";
            }
            body {
                header {
                    strong { "Sandbox review console" }
                    @if let Some(s) = session {
                        a href="/console/" { "Pending" }
                        a href="/console/scenarios" { "Scenarios and budgets" }
                        a href="/console/products" { "Products" }
                        a href="/console/audit" { "Audit trail" }
                        span.who id="who" { (s.principal.name) " (" (s.principal.role) ")" }
                        form method="post" action="/console/logout" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            button type="submit" id="sign-out" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The sign-in page.
pub fn login(error: Option<&str>) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            h1 { "Sign in" }
            p.muted { "Operators and supervisors sign in with the API token an operator issued them (" code { "sandbox token issue NAME" } "). The token is not kept in the browser; a session cookie is." }
            @if let Some(e) = error {
                div.box.error id="error" { (e) }
            }
            form.box method="post" action="/console/login" {
                label for="token" { "API token" }
                br;
                input type="password" id="token" name="token" autocomplete="off" size="90" required;
                p { button type="submit" id="sign-in" { "Sign in" } }
            }
        },
    )
}

fn outcome_class(outcome: &str) -> &'static str {
    match outcome {
        "pass" => "pass",
        "review" => "review",
        _ => "fail",
    }
}

fn checks_summary(checks: Option<&Value>) -> Markup {
    let results = checks
        .and_then(|c| c["results"].as_array())
        .cloned()
        .unwrap_or_default();
    let n = |o: &str| results.iter().filter(|r| r["outcome"] == o).count();
    html! {
        span.pass title="passed" { "✓ " (n("pass")) }
        " "
        span.review title="for review" { "? " (n("review")) }
        " "
        span.fail title="failed" { "✗ " (n("fail")) }
    }
}

fn pending_table(rows: &[Pending]) -> Markup {
    html! {
        table {
            thead { tr { th { "Output" } th { "Kind" } th { "Status" } th { "Checks" } th { "Scenario" } th { "Submitted by" } th { "Staged" } } }
            tbody {
                @for p in rows {
                    tr.output data-id=(p.id) {
                        td { a href={ "/console/outputs/" (p.id) } { (p.name) } br; span.muted { (p.id) } }
                        td { (p.kind) }
                        td.status { (p.status) }
                        td { (checks_summary(p.checks.as_ref())) }
                        td { (p.scenario) }
                        td { (p.submitter) }
                        td { (p.created_at) }
                    }
                }
            }
        }
    }
}

/// The pending outputs: those awaiting the caller's tier first, then the others.
pub fn dashboard(session: &Session, mine: &[Pending], others: &[Pending]) -> Markup {
    let tier = match session.principal.role {
        Role::Supervisor => "supervisor",
        _ => "operator",
    };
    layout(
        "Pending outputs",
        Some(session),
        html! {
            h1 { "Outputs awaiting review" }
            h2 { "Awaiting your decision (" (tier) " review)" }
            @if mine.is_empty() {
                p.muted id="none-pending" { "Nothing awaits you." }
            } @else {
                (pending_table(mine))
            }
            @if !others.is_empty() {
                h2 { "Awaiting the other tier" }
                (pending_table(others))
            }
        },
    )
}

fn table(batches: &[RecordBatch]) -> Markup {
    let total: usize = batches.iter().map(|b| b.num_rows()).sum();
    let Some(first) = batches.first() else {
        return html! { p.muted { "An empty table." } };
    };
    let schema = first.schema();
    let options = FormatOptions::default().with_null("");
    // (text, numeric) per cell, for at most MAX_SHOWN_ROWS rows.
    let mut rows: Vec<Vec<(String, bool)>> = Vec::new();
    'batches: for batch in batches {
        let formatters: Vec<Option<ArrayFormatter<'_>>> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).ok())
            .collect();
        for row in 0..batch.num_rows() {
            if rows.len() >= MAX_SHOWN_ROWS {
                break 'batches;
            }
            rows.push(
                formatters
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        let text = f
                            .as_ref()
                            .map_or_else(|| "?".to_string(), |f| f.value(row).to_string());
                        (text, batch.column(i).data_type().is_numeric())
                    })
                    .collect(),
            );
        }
    }
    html! {
        table id="content-table" {
            thead { tr { @for f in schema.fields() { th { (f.name()) } } } }
            tbody {
                @for row in &rows {
                    tr {
                        @for (cell, numeric) in row {
                            @if *numeric { td.num { (cell) } } @else { td { (cell) } }
                        }
                    }
                }
            }
        }
        @if total > MAX_SHOWN_ROWS {
            p.muted { "The first " (MAX_SHOWN_ROWS) " of " (total) " rows are shown; the product holds all of them." }
        } @else {
            p.muted { (total) " rows." }
        }
    }
}

/// One output with its checks, provenance, content and the decision form.
pub fn output(session: &Session, v: &OutputView, message: Option<(&str, bool)>) -> Markup {
    let o = &v.output;
    let decidable = match session.principal.role {
        Role::Operator => matches!(o.status.as_str(), "checked" | "flagged"),
        Role::Supervisor => o.status == "operator_approved",
        _ => false,
    };
    let results = o
        .checks
        .as_ref()
        .and_then(|c| c["results"].as_array())
        .cloned()
        .unwrap_or_default();
    layout(
        &o.name,
        Some(session),
        html! {
            h1 { "Output " (o.name) }
            @if let Some((text, error)) = message {
                @if error { div.box.error id="error" { (text) } } @else { div.box.notice id="notice" { (text) } }
            }
            div.box {
                dl {
                    dt { "Status" } dd id="status" { (o.status) }
                    dt { "Output id" } dd { (o.id) }
                    dt { "Kind" } dd { (o.kind) " · " (o.bytes) " bytes · sha256 " code { (o.sha256) } }
                    dt { "Scenario" } dd { (v.scenario.1) " (" (v.scenario.0) "): " (v.scenario.2) }
                    dt { "Datasets" } dd { (v.datasets.join(", ")) }
                    dt { "Job" } dd { (o.job_id) ", submitted by " (v.submitter) }
                    dt { "Module" } dd { code { (v.module_sha256) } }
                }
            }
            h2 { "Automated checks" }
            table id="checks" {
                thead { tr { th { "Check" } th { "Outcome" } th { "Why" } } }
                tbody {
                    @for r in &results {
                        @let outcome = r["outcome"].as_str().unwrap_or("?");
                        tr { td { (r["check"].as_str().unwrap_or("?")) } td class=(outcome_class(outcome)) { (outcome) } td { (r["reason"].as_str().unwrap_or("")) } }
                    }
                }
            }
            h2 { "Provenance: the queries this job made" }
            @if v.queries.is_empty() {
                p.muted { "No queries." }
            } @else {
                table id="queries" {
                    thead { tr { th { "SQL" } th { "Answer" } th { "ε" } th { "δ" } th { "Mechanism or rule" } } }
                    tbody {
                        @for q in &v.queries {
                            tr {
                                td { code { (q.sql) } }
                                td { (q.status) }
                                td.num { (q.epsilon) }
                                td.num { (q.delta) }
                                td { (q.mechanism.as_deref().or(q.rule.as_deref()).unwrap_or("")) }
                            }
                        }
                    }
                }
                p.muted { "ε spent by this job: " (v.queries.iter().map(|q| q.epsilon).sum::<f64>()) }
            }
            h2 { "As it would be released" }
            div.box id="content" {
                @match &v.content {
                    Content::Table(batches) => { (table(batches)) }
                    Content::Text(text) => { pre id="content-text" { (text) } }
                    Content::Image => { img.chart id="content-image" src={ "/console/outputs/" (o.id) "/file" } alt={ "chart " (o.name) }; }
                    Content::Unreadable(why) => { p.error { "The file cannot be shown: " (why) } }
                }
            }
            h2 { "Decisions" }
            @if v.reviews.is_empty() {
                p.muted { "None yet." }
            } @else {
                table id="reviews" {
                    thead { tr { th { "When" } th { "Who" } th { "Tier" } th { "Decision" } th { "Reason" } } }
                    tbody {
                        @for r in &v.reviews {
                            tr { td { (r.created_at) } td { (r.reviewer) } td { (r.tier) } td { (r.decision) } td { (r.reason.as_deref().unwrap_or("")) } }
                        }
                    }
                }
            }
            @if decidable {
                form.box method="post" action={ "/console/outputs/" (o.id) "/decide" } id="decide" {
                    input type="hidden" name="csrf" value=(session.csrf);
                    label for="reason" { "Comment (required to reject, to request changes, to override a failed check, and for an operator to pass a finding for review)" }
                    textarea id="reason" name="reason" {}
                    p {
                        button type="submit" name="decision" value="approve" id="approve" { "Approve" }
                        button type="submit" name="decision" value="request_changes" id="request-changes" { "Request changes" }
                        button type="submit" name="decision" value="reject" id="reject" { "Reject" }
                    }
                }
            } @else {
                p.muted id="not-yours" { "This output does not await your tier's decision." }
            }
        },
    )
}

/// A page of the audit trail.
pub fn audit(
    session: &Session,
    events: &[Event],
    size: i64,
    from: i64,
    limit: i64,
    verified: Option<Result<String, String>>,
) -> Markup {
    layout(
        "Audit trail",
        Some(session),
        html! {
            h1 { "Audit trail" }
            p { (size) " events. Every action in the domain is one of them, in a Merkle tree whose roots the domain key signs. " a href={ "/console/audit?from=" (from) "&verify=1" } id="verify" { "Verify the whole log" } }
            @match &verified {
                Some(Ok(text)) => { div.box.notice id="verified" { (text) } }
                Some(Err(text)) => { div.box.error id="verified" { (text) } }
                None => {}
            }
            p {
                @if from > 1 { a href={ "/console/audit?from=" ((from - limit).max(1)) } { "← earlier" } " " }
                @if from + limit <= size { a href={ "/console/audit?from=" (from + limit) } { "later →" } }
            }
            table id="events" {
                thead { tr { th { "#" } th { "When" } th { "Actor" } th { "Action" } th { "Subject" } th { "Details" } } }
                tbody {
                    @for e in events {
                        @let details = e.details.to_string();
                        tr {
                            td.num { (e.seq) }
                            td { (e.ts) }
                            td { (e.actor) }
                            td { (e.action) }
                            td { (e.subject) }
                            td { code { @if details.len() > 300 { (details.chars().take(300).collect::<String>()) "…" } @else { (details) } } }
                        }
                    }
                }
            }
        },
    )
}

/// A released product as listed.
#[derive(Debug, Clone)]
pub struct ProductLine {
    /// Product id.
    pub id: String,
    /// The output's name.
    pub name: String,
    /// Scenario name.
    pub scenario: String,
    /// Who released it.
    pub released_by: String,
    /// When.
    pub released_at: String,
    /// Its files.
    pub files: Vec<String>,
}

/// The product registry (SYS Art. 50).
pub fn products(session: &Session, list: &[ProductLine]) -> Markup {
    layout(
        "Products",
        Some(session),
        html! {
            h1 { "Product registry" }
            @if list.is_empty() {
                p.muted id="no-products" { "No product has been released." }
            } @else {
                table id="products" {
                    thead { tr { th { "Product" } th { "Output" } th { "Scenario" } th { "Released by" } th { "Released" } th { "Files" } } }
                    tbody {
                        @for p in list {
                            tr.product data-id=(p.id) {
                                td { a href={ "/console/products/" (p.id) } { (p.id) } }
                                td { (p.name) }
                                td { (p.scenario) }
                                td { (p.released_by) }
                                td { (p.released_at) }
                                td { @for f in &p.files { a href={ "/console/products/" (p.id) "/files/" (f) } { (f) } " " } }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// One product's manifest and signature.
pub fn product(session: &Session, id: &str, manifest: &Value, signature: &str) -> Markup {
    let pretty = serde_json::to_string_pretty(manifest).unwrap_or_default();
    layout(
        id,
        Some(session),
        html! {
            h1 { "Product " (id) }
            p { "The manifest below is signed by the domain key; " code { "sandbox product verify" } " checks it and every file." }
            h2 { "Signature (Ed25519, hex)" }
            div.box { code id="signature" { (signature) } }
            h2 { "Manifest" }
            div.box { pre id="manifest" { (pretty) } }
        },
    )
}

/// Each scenario's standing and budget.
pub fn scenarios(session: &Session, usage: &[Usage]) -> Markup {
    layout(
        "Scenarios and budgets",
        Some(session),
        html! {
            h1 { "Scenarios and their budgets" }
            table id="scenarios" {
                thead { tr { th { "Scenario" } th { "Developer" } th { "Status" } th { "Valid until" } th { "ε spent / granted" } th { "Jobs" } th { "Queries answered / refused" } th { "Attention" } } }
                tbody {
                    @for u in usage {
                        tr.scenario data-id=(u.id) {
                            td { (u.name) " " span.muted { "(" (u.id) ")" } }
                            td { (u.developer) }
                            td { (u.status.as_str()) @if let Some(r) = &u.status_reason { br; span.muted { (r) } } }
                            td { (u.valid_until.to_string()) }
                            td.num {
                                meter min="0" max=(u.epsilon_total) value=(u.epsilon_spent) {}
                                " " (format!("{:.3}", u.epsilon_spent)) " / " (u.epsilon_total)
                            }
                            td.num { (u.jobs) }
                            td.num { (u.answered) " / " (u.refused) }
                            td { (u.flags.join(", ")) }
                        }
                    }
                }
            }
        },
    )
}

/// A page for a refusal or a missing thing.
pub fn problem(session: Option<&Session>, title: &str, message: &str) -> Markup {
    layout(
        title,
        session,
        html! {
            h1 { (title) }
            div.box.error id="error" { (message) }
        },
    )
}
