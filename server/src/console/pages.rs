//! The console's pages: pure functions from what the handlers read to HTML (maud escapes
//! every value). No scripts; one stylesheet from the server; forms post back with the
//! session's CSRF secret. Every sentence comes from the message catalogue
//! (`sandbox-i18n`) in the page's language ([`Ui`]); times are shown in the domain's time
//! zone; stable identifiers (statuses, rules, checks) are shown as words with the
//! identifier beside them where a reviewer may need it.

use std::collections::HashMap;

use arrow::array::{Array, RecordBatch};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use sandbox_core::{Lang, Role};
use sandbox_i18n::{Tz, t};
use sandbox_runtime::audit::Event;
use sandbox_runtime::review::CatalogEntry;
use sandbox_runtime::scenarios::Usage;
use sandbox_runtime::sessions::Session;

pub use sandbox_runtime::jobs::JobRecord;
pub use sandbox_runtime::review::thread::Thread;
pub use sandbox_runtime::review::view::{Content, OutputView, Pending, QueryLine, ReviewLine};
pub use sandbox_runtime::scenarios::ScenarioRecord;

/// Rows of a table shown on a page; the rest is counted.
pub const MAX_SHOWN_ROWS: usize = 500;

/// The stylesheet.
pub const CSS: &str = r#"
:root { color-scheme: light; --ink: #1b1f24; --muted: #5b6570; --line: #d6dbe1; --pass: #1a7f37; --review: #9a6700; --fail: #cf222e; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, "Noto Sans CJK SC", "PingFang SC", sans-serif; color: var(--ink); background: #f6f8fa; }
header { display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; align-items: center; padding: .6rem 1.5rem; background: #24292f; color: #fff; }
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
header nav { display: flex; gap: 1rem; flex-wrap: wrap; }
.lang { display: flex; gap: .5rem; align-items: center; }
.lang button { background: none; border: 1px solid #57606a; color: #fff; padding: .1rem .5rem; }
.lang a { color: #d0d7de; }
@media (max-width: 40rem) {
  header, main { padding-left: .75rem; padding-right: .75rem; }
  header .who { margin-left: 0; }
  dl { grid-template-columns: 1fr; }
  dd { margin-bottom: .4rem; }
  meter { width: 6rem; }
}
code { word-break: break-all; }
.scroll { overflow-x: auto; }
button.approve { background: var(--pass); border: 1px solid var(--pass); color: #fff; }
button.changes { background: #fff8c5; border: 1px solid var(--review); color: var(--ink); }
button.reject { background: #fff; border: 2px solid var(--fail); color: var(--fail); }
.confirm { margin: .5rem 0; }
tr.level4 td { background: #ffebe9; }
td.small { background: #fff8c5; outline: 2px solid var(--review); }
ol.thread { padding-left: 1.2rem; }
ol.thread li { margin: .4rem 0; }
.said { white-space: pre-wrap; overflow-wrap: anywhere; margin: .2rem 0 0; }
.markdown { overflow-wrap: anywhere; }
.markdown table { width: auto; }
details { margin-top: .75rem; }
"#;

/// How a page speaks: its language and the time zone its times are shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ui {
    /// The language.
    pub lang: Lang,
    /// The domain's time zone.
    pub tz: Tz,
}

impl Ui {
    /// A message of the catalogue.
    pub fn t(&self, id: &str) -> String {
        sandbox_i18n::message(self.lang, id, None)
    }

    /// A stored time, in the domain's time zone, to the second.
    pub fn time(&self, stored: &str) -> String {
        sandbox_i18n::local_time(stored, self.tz)
    }

    /// A stable identifier shown as words (`output-status-checked` for `checked`), or the
    /// identifier itself when the catalogue has no words for it.
    pub fn word(&self, family: &str, id: &str) -> String {
        sandbox_i18n::word(self.lang, family, id)
    }
}

/// The frame of every page.
pub fn layout(ui: Ui, title: &str, session: Option<&Session>, body: Markup) -> Markup {
    let app = t!(ui.lang, "console-name");
    html! {
        (DOCTYPE)
        html lang=(ui.lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (app) }
                link rel="stylesheet" href="/console/static/console.css";
            }
            body {
                header {
                    strong { (app) }
                    @if let Some(s) = session {
                        nav {
                            @if s.principal.role == Role::Developer {
                                a href="/console/" { (ui.t("nav-my-jobs")) }
                                a href="/console/products" { (ui.t("nav-products")) }
                            } @else if s.principal.role == Role::DataUser {
                                a href="/console/products" { (ui.t("nav-products")) }
                            } @else if s.principal.role == Role::Provider {
                                a href="/console/scenarios" { (ui.t("nav-scenarios")) }
                                a href="/console/datasets" { (ui.t("nav-datasets")) }
                                a href="/console/products" { (ui.t("nav-products")) }
                            } @else {
                                a href="/console/" { (ui.t("nav-pending")) }
                                a href="/console/scenarios" { (ui.t("nav-scenarios")) }
                                a href="/console/products" { (ui.t("nav-products")) }
                                a href="/console/audit" { (ui.t("nav-audit")) }
                                a href="/console/reports" { (ui.t("nav-reports")) }
                                a href="/console/oversight" { (ui.t("nav-oversight")) }
                                a href="/console/datasets" { (ui.t("nav-datasets")) }
                            }
                        }
                        span.who id="who" { (s.principal.name) " (" (sandbox_i18n::role(ui.lang, s.principal.role)) ")" }
                        form.lang method="post" action="/console/language" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            @for lang in Lang::ALL {
                                @if lang != ui.lang {
                                    button type="submit" name="lang" value=(lang.tag()) id={ "lang-" (lang.tag()) } lang=(lang.tag()) { (lang.native_name()) }
                                }
                            }
                        }
                        form method="post" action="/console/logout" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            button type="submit" id="sign-out" { (ui.t("sign-out")) }
                        }
                    } @else {
                        span.lang.who {
                            @for lang in Lang::ALL {
                                @if lang != ui.lang {
                                    a href={ "/console/login?lang=" (lang.tag()) } id={ "lang-" (lang.tag()) } lang=(lang.tag()) { (lang.native_name()) }
                                }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The sign-in page.
pub fn login(ui: Ui, error: Option<&str>) -> Markup {
    layout(
        ui,
        &ui.t("sign-in"),
        None,
        html! {
            h1 { (ui.t("sign-in")) }
            p.muted { (ui.t("sign-in-help")) " " code { "sandbox token issue NAME" } }
            @if let Some(e) = error {
                div.box.error id="error" { (e) }
            }
            form.box method="post" action="/console/login" {
                label for="token" { (ui.t("sign-in-token")) }
                br;
                input type="password" id="token" name="token" autocomplete="off" size="60" style="max-width: 100%" required;
                p { button type="submit" id="sign-in" { (ui.t("sign-in")) } }
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

fn checks_summary(ui: Ui, checks: Option<&Value>) -> Markup {
    let results = checks
        .and_then(|c| c["results"].as_array())
        .cloned()
        .unwrap_or_default();
    let n = |o: &str| results.iter().filter(|r| r["outcome"] == o).count();
    html! {
        span.pass title=(ui.word("outcome", "pass")) { "✓ " (n("pass")) }
        " "
        span.review title=(ui.word("outcome", "review")) { "? " (n("review")) }
        " "
        span.fail title=(ui.word("outcome", "fail")) { "✗ " (n("fail")) }
    }
}

fn pending_table(ui: Ui, rows: &[Pending]) -> Markup {
    html! {
        div.scroll {
            table {
                thead { tr {
                    th { (ui.t("col-output")) } th { (ui.t("col-kind")) } th { (ui.t("col-status")) }
                    th { (ui.t("col-checks")) } th { (ui.t("col-scenario")) } th { (ui.t("col-submitted-by")) }
                    th { (ui.t("col-staged")) } th { (ui.t("col-request")) }
                } }
                tbody {
                    @for p in rows {
                        tr.output data-id=(p.id) {
                            td { a href={ "/console/outputs/" (p.id) } { (p.name) } br; span.muted { (p.id) } }
                            td { (ui.word("kind", &p.kind)) }
                            td.status data-status=(p.status.as_str()) { (ui.word("output-status", p.status.as_str())) }
                            td { (checks_summary(ui, p.checks.as_ref())) }
                            td { (p.scenario) }
                            td { (p.submitter) }
                            td { (ui.time(&p.created_at)) }
                            td { a.job href={ "/console/jobs/" (p.job_id) } { (ui.t("open-request")) } }
                        }
                    }
                }
            }
        }
    }
}

/// The pending outputs: those awaiting the caller's tier first, then the others.
pub fn dashboard(ui: Ui, session: &Session, mine: &[Pending], others: &[Pending]) -> Markup {
    let tier = match session.principal.role {
        Role::Supervisor => "supervisor",
        _ => "operator",
    };
    layout(
        ui,
        &ui.t("dashboard-title"),
        Some(session),
        html! {
            h1 { (ui.t("dashboard-heading")) }
            h2 { (t!(ui.lang, "dashboard-yours", tier = ui.word("tier", tier))) }
            @if mine.is_empty() {
                p.muted id="none-pending" { (ui.t("dashboard-none")) }
            } @else {
                (pending_table(ui, mine))
            }
            @if !others.is_empty() {
                h2 { (ui.t("dashboard-others")) }
                (pending_table(ui, others))
            }
        },
    )
}

/// A developer's own jobs, newest first, each with where its review stands.
pub fn my_jobs(
    ui: Ui,
    session: &Session,
    jobs: &[(JobRecord, Vec<String>)],
    orders: &[sandbox_runtime::incidents::Order],
    message: Option<(&str, bool)>,
) -> Markup {
    layout(
        ui,
        &ui.t("my-jobs-title"),
        Some(session),
        html! {
            @if let Some((text, error)) = message {
                @if error { p.box.error id="error" { (text) } } @else { p.box.notice id="notice" { (text) } }
            }
            @if !orders.is_empty() {
                h1 { (ui.t("my-orders-title")) }
                @for o in orders {
                    div.box.order data-id=(o.id) data-status=(o.status) {
                        strong { "#" (o.id) " · " (ui.word("order-status", &o.status)) " · " (ui.t("oversight-deadline")) " " (ui.time(&o.deadline)) }
                        p { (o.requirement) br; span.muted { (o.issued_by) " · " (ui.time(&o.issued_at)) } }
                        @if let Some(a) = &o.answer { p.said { (a) } }
                        @if o.status == "open" {
                            form method="post" action={ "/console/orders/" (o.id) "/answer" } {
                                input type="hidden" name="csrf" value=(session.csrf);
                                label for={ "order-answer-" (o.id) } { (ui.t("order-answer")) }
                                textarea id={ "order-answer-" (o.id) } name="reason" required {}
                                p { button.approve type="submit" name="decision" value="answer" id={ "order-answer-submit-" (o.id) } { (ui.t("order-answer")) } }
                            }
                        }
                    }
                }
            }
            h1 { (ui.t("my-jobs-title")) }
            p.muted { (ui.t("my-jobs-intro")) }
            @if jobs.is_empty() {
                p.muted id="no-jobs" { (ui.t("my-jobs-none")) }
            } @else {
                div.scroll {
                    table id="my-jobs" {
                        thead { tr { th { (ui.t("col-job")) } th { (ui.t("col-status")) } th { (ui.t("col-outputs")) } th { (ui.t("request-awaiting")) } th { (ui.t("col-staged")) } } }
                        tbody {
                            @for (j, awaiting) in jobs {
                                tr.job data-id=(j.id) {
                                    td { a href={ "/console/jobs/" (j.id) } { (j.id) } }
                                    td { (ui.word("job-status", j.status.as_str())) }
                                    td.num { (j.outputs.len()) }
                                    td data-awaiting=(awaiting.join(" ")) {
                                        @if awaiting.is_empty() { span.muted { (ui.word("awaiting", "none")) } }
                                        @else { (awaiting.iter().map(|a| ui.word("awaiting", a)).collect::<Vec<_>>().join(" · ")) }
                                    }
                                    td { (ui.time(&j.created_at)) }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// The half-width of the 95 % interval of each column name the job's answers gave one to
/// (when every answer that names the column agrees), to show beside an output's columns.
fn intervals(queries: &[QueryLine]) -> HashMap<String, f64> {
    let mut seen: HashMap<String, Option<f64>> = HashMap::new();
    for a in queries.iter().flat_map(|q| &q.accuracy) {
        if let Some(h) = a.ci95 {
            seen.entry(a.column.clone())
                .and_modify(|e| {
                    if *e != Some(h) {
                        *e = None;
                    }
                })
                .or_insert(Some(h));
        }
    }
    seen.into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
        .collect()
}

/// How a query's noisy columns can be trusted, in a line each.
fn accuracy_lines(ui: Ui, q: &QueryLine) -> Markup {
    html! {
        @for a in &q.accuracy {
            div.accuracy {
                code { (a.column) } " "
                @if let Some(h) = a.ci95 { "±" (plain(h)) }
                @if let Some(u) = a.rounding { " · " (t!(ui.lang, "accuracy-rounded", unit = plain(u))) }
                @if let Some(w) = a.withheld { " · " (t!(ui.lang, "accuracy-withheld", count = w)) }
            }
        }
    }
}

/// Markdown as HTML a reviewer can read, safely: raw HTML in it is shown as text, links
/// are their text only (a link would carry the output's content to wherever it points
/// before the output is released) and images their description; nothing loads.
pub fn markdown(text: &str) -> maud::PreEscaped<String> {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    let events = Parser::new_ext(text, options).filter_map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Some(Event::Text(raw)),
        Event::Start(Tag::Link { .. } | Tag::Image { .. }) => None,
        Event::End(TagEnd::Link | TagEnd::Image) => None,
        Event::FootnoteReference(r) => Some(Event::Text(r)),
        other => Some(other),
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    maud::PreEscaped(html)
}

/// A number as plainly as it reads (no float residue).
fn plain(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

fn table(
    ui: Ui,
    batches: &[RecordBatch],
    intervals: &HashMap<String, f64>,
    min_group_size: i64,
) -> Markup {
    let total: usize = batches.iter().map(|b| b.num_rows()).sum();
    let Some(first) = batches.first() else {
        return html! { p.muted { (ui.t("table-empty")) } };
    };
    let schema = first.schema();
    let options = FormatOptions::default().with_null("—");
    // (text, numeric, a count below the smallest group) per cell, for at most
    // MAX_SHOWN_ROWS rows.
    let mut rows: Vec<Vec<(String, bool, bool)>> = Vec::new();
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
                        let column = batch.column(i);
                        let small = column.data_type().is_integer()
                            && !column.is_null(row)
                            && arrow::compute::cast(column, &arrow::datatypes::DataType::Int64)
                                .ok()
                                .and_then(|c| {
                                    c.as_any()
                                        .downcast_ref::<arrow::array::Int64Array>()
                                        .map(|a| a.value(row))
                                })
                                .is_some_and(|v| v > 0 && v < min_group_size);
                        (text, column.data_type().is_numeric(), small)
                    })
                    .collect(),
            );
        }
    }
    html! {
        div.scroll {
            table id="content-table" {
                thead { tr { @for f in schema.fields() { th {
                    (f.name())
                    @if let Some(h) = intervals.get(f.name()) {
                        br; span.muted.interval title=(ui.t("interval-title")) { "±" (plain(*h)) }
                    }
                } } } }
                tbody {
                    @for row in &rows {
                        tr {
                            @for (cell, numeric, small) in row {
                                @if *small { td.num.small title=(t!(ui.lang, "small-cell", min = min_group_size)) { (cell) } }
                                @else if *numeric { td.num { (cell) } } @else { td { (cell) } }
                            }
                        }
                    }
                }
            }
        }
        @if total > MAX_SHOWN_ROWS {
            p.muted { (t!(ui.lang, "table-first-rows", shown = MAX_SHOWN_ROWS, total = total)) }
        } @else {
            p.muted { (t!(ui.lang, "table-rows", total = total)) }
        }
    }
}

/// One output with its checks, provenance, content and the decision form.
pub fn output(ui: Ui, session: &Session, v: &OutputView, message: Option<(&str, bool)>) -> Markup {
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
        ui,
        &o.name,
        Some(session),
        html! {
            h1 { (t!(ui.lang, "output-heading", name = o.name.as_str())) }
            @if let Some((text, error)) = message {
                @if error { div.box.error id="error" { (text) } } @else { div.box.notice id="notice" { (text) } }
            }
            div.box {
                dl {
                    dt { (ui.t("col-status")) } dd id="status" data-status=(o.status) { (ui.word("output-status", o.status.as_str())) }
                    dt { (ui.t("output-id")) } dd { (o.id) }
                    dt { (ui.t("col-kind")) } dd { (ui.word("kind", &o.kind)) " · " (t!(ui.lang, "bytes", n = o.bytes)) " · sha256 " code { (o.sha256) } }
                    dt { (ui.t("col-scenario")) } dd { (v.scenario.1) " (" (v.scenario.0) "): " (v.scenario.2) }
                    dt { (ui.t("output-datasets")) } dd { (v.datasets.join(", ")) }
                    dt { (ui.t("output-job")) } dd { (t!(ui.lang, "output-job-by", job = o.job_id.as_str(), submitter = v.submitter.as_str())) }
                    dt { (ui.t("output-module")) } dd { code { (v.module_sha256) } }
                    dt { (ui.t("output-params")) } dd { code id="params" { (v.params_json) } }
                    dt { (ui.t("col-request")) } dd { a id="open-request" href={ "/console/jobs/" (o.job_id) } { (ui.t("open-request")) } }
                }
            }
            h2 { (ui.t("checks-heading")) }
            div.scroll {
                table id="checks" {
                    thead { tr { th { (ui.t("col-check")) } th { (ui.t("col-outcome")) } th { (ui.t("col-why")) } } }
                    tbody {
                        @for r in &results {
                            @let outcome = r["outcome"].as_str().unwrap_or("?");
                            @let check = r["check"].as_str().unwrap_or("?");
                            tr {
                                td { (ui.word("check", check)) br; span.muted { code { (check) } } }
                                td class=(outcome_class(outcome)) data-outcome=(outcome) { (ui.word("outcome", outcome)) }
                                td { (sandbox_runtime::disclosure::reason_in(ui.lang, r)) }
                            }
                        }
                    }
                }
            }
            h2 { (ui.t("queries-heading")) }
            @if v.queries.is_empty() {
                p.muted { (ui.t("queries-none")) }
            } @else {
                div.scroll {
                    table id="queries" {
                        thead { tr { th { "SQL" } th { (ui.t("col-answer")) } th { "ε" } th { "δ" } th { (ui.t("col-mechanism")) } th { (ui.t("col-accuracy")) } } }
                        tbody {
                            @for q in &v.queries {
                                tr {
                                    td { code { (q.sql) } }
                                    td { (ui.word("query-status", &q.status)) }
                                    td.num { (q.epsilon) }
                                    td.num { (q.delta) }
                                    td {
                                        @if let Some(m) = &q.mechanism { (m) }
                                        @else if let Some(rule) = &q.rule { (ui.word("rule", rule)) br; span.muted { code { (rule) } } }
                                    }
                                    td { (accuracy_lines(ui, q)) }
                                }
                            }
                        }
                    }
                }
                p.muted { (t!(ui.lang, "queries-epsilon", epsilon = v.queries.iter().map(|q| q.epsilon).sum::<f64>())) }
            }
            h2 { (ui.t("content-heading")) }
            div.box id="content" {
                @match &v.content {
                    Content::Table(batches) => {
                        (table(ui, batches, &intervals(&v.queries), v.min_group_size))
                        p.muted { (ui.t("table-interval-note")) " " (t!(ui.lang, "small-cell-note", min = v.min_group_size)) }
                        p.downloads {
                            (ui.t("download-as")) " "
                            a id="download-csv" href={ "/console/outputs/" (o.id) "/file?format=csv" } { "CSV" } " · "
                            a id="download-xlsx" href={ "/console/outputs/" (o.id) "/file?format=xlsx" } { "XLSX" }
                        }
                    }
                    Content::Text(text) => {
                        div.markdown id="content-rendered" { (markdown(text)) }
                        details {
                            summary { (ui.t("content-as-written")) }
                            pre id="content-text" { (text) }
                        }
                    }
                    Content::Image => { img.chart id="content-image" src={ "/console/outputs/" (o.id) "/file" } alt=(t!(ui.lang, "content-chart", name = o.name.as_str())); }
                    Content::Unreadable(why) => { p.error { (t!(ui.lang, "content-unreadable", why = why.as_str())) } }
                }
            }
            h2 { (ui.t("decisions-heading")) }
            @if v.reviews.is_empty() {
                p.muted { (ui.t("decisions-none")) }
            } @else {
                div.scroll {
                    table id="reviews" {
                        thead { tr { th { (ui.t("col-when")) } th { (ui.t("col-who")) } th { (ui.t("col-tier")) } th { (ui.t("col-decision")) } th { (ui.t("col-reason")) } } }
                        tbody {
                            @for r in &v.reviews {
                                tr { td { (ui.time(&r.created_at)) } td { (r.reviewer) } td { (ui.word("tier", &r.tier)) } td data-decision=(r.decision) { (ui.word("decision", &r.decision)) } td { (r.reason.as_deref().unwrap_or("")) } }
                            }
                        }
                    }
                }
            }
            @if decidable {
                form.box method="post" action={ "/console/outputs/" (o.id) "/decide" } id="decide" {
                    input type="hidden" name="csrf" value=(session.csrf);
                    label for="reason" { (ui.t("decide-comment")) }
                    textarea id="reason" name="reason" {}
                    (decision_buttons(ui, ""))
                }
            } @else {
                p.muted id="not-yours" { (ui.t("decide-not-yours")) }
            }
        },
    )
}

/// Approve, request changes and reject: each its own colour, behind a confirmation the
/// browser requires ticked. `prefix` tells a request's buttons from an output's.
fn decision_buttons(ui: Ui, prefix: &str) -> Markup {
    html! {
        p.confirm {
            input type="checkbox" id={ (prefix) "confirm" } name="confirm" value="yes" required;
            " "
            label for={ (prefix) "confirm" } { (ui.t("decide-confirm")) }
        }
        p {
            button.approve type="submit" name="decision" value="approve" id={ (prefix) "approve" } { (ui.t("decision-approve")) }
            button.changes type="submit" name="decision" value="request_changes" id={ (prefix) "request-changes" } { (ui.t("decision-request-changes")) }
            button.reject type="submit" name="decision" value="reject" id={ (prefix) "reject" } { (ui.t("decision-reject")) }
        }
    }
}

/// A review request: the jobs of one developer's request (first submitted first) with
/// their outputs, the thread of comments and decisions, a comment form, and the decision
/// on every output that awaits the viewer's tier.
pub fn request(
    ui: Ui,
    session: &Session,
    job_id: &str,
    t: &Thread,
    message: Option<(&str, bool)>,
) -> Markup {
    let tier = match session.principal.role {
        Role::Supervisor => "supervisor",
        Role::Operator => "operator",
        _ => "",
    };
    let decidable = t.awaiting.iter().any(|a| a == tier) && t.developer != session.principal.name;
    let awaiting = if t.awaiting.is_empty() {
        ui.word("awaiting", "none")
    } else {
        t.awaiting
            .iter()
            .map(|a| ui.word("awaiting", a))
            .collect::<Vec<_>>()
            .join(" · ")
    };
    layout(
        ui,
        &t!(ui.lang, "request-title", job = job_id),
        Some(session),
        html! {
            h1 { (t!(ui.lang, "request-title", job = job_id)) }
            @if let Some((text, error)) = message {
                @if error { p.box.error id="error" { (text) } } @else { p.box.notice id="notice" { (text) } }
            }
            dl {
                dt { (ui.t("col-developer")) } dd id="developer" { (t.developer) }
                dt { (ui.t("col-scenario")) } dd { (t.scenario_id) }
                dt { (ui.t("request-awaiting")) } dd id="awaiting" data-awaiting=(t.awaiting.join(" ")) { (awaiting) }
            }
            @for j in &t.jobs {
                h2 { (t!(ui.lang, "request-job", job = j.id.as_str())) " " span.muted { (ui.word("job-status", &j.status)) " · " (ui.time(&j.created_at)) } }
                @if j.outputs.is_empty() {
                    p.muted { (ui.t("request-no-outputs")) }
                } @else {
                    div.scroll {
                        table.outputs {
                            thead { tr { th { (ui.t("col-output")) } th { (ui.t("col-kind")) } th { (ui.t("col-status")) } } }
                            tbody {
                                @for o in &j.outputs {
                                    tr.output data-id=(o.id) {
                                        td {
                                            @if session.principal.role == Role::Developer { (o.name) } @else { a href={ "/console/outputs/" (o.id) } { (o.name) } }
                                            br; span.muted { (o.id) }
                                        }
                                        td { (ui.word("kind", &o.kind)) }
                                        td.status data-status=(o.status) { (ui.word("output-status", &o.status)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 { (ui.t("thread-heading")) }
            @if t.entries.is_empty() {
                p.muted id="thread-empty" { (ui.t("thread-empty")) }
            } @else {
                ol.thread id="thread" {
                    @for e in &t.entries {
                        li.entry data-kind=(e.kind) {
                            span.muted { (ui.time(&e.at)) } " · " strong { (e.author) } " · "
                            @if let (Some(d), Some(tier)) = (&e.decision, &e.tier) {
                                span data-decision=(d) { (ui.word("decision", d)) } " (" (ui.word("tier", tier)) ")"
                            } @else {
                                (ui.t("thread-comment"))
                            }
                            @if let Some(text) = &e.text { div.said { (text) } }
                        }
                    }
                }
            }
            form.box method="post" action={ "/console/jobs/" (job_id) "/comment" } id="comment-form" {
                input type="hidden" name="csrf" value=(session.csrf);
                label for="comment" { (ui.t("thread-write")) }
                textarea id="comment" name="body" required maxlength="4000" {}
                p { button type="submit" id="post-comment" { (ui.t("thread-post")) } }
            }
            @if decidable {
                form.box method="post" action={ "/console/jobs/" (job_id) "/decide" } id="decide-request" {
                    input type="hidden" name="csrf" value=(session.csrf);
                    p { (ui.t("request-decide-all")) }
                    label for="request-reason" { (ui.t("decide-comment")) }
                    textarea id="request-reason" name="reason" {}
                    (decision_buttons(ui, "request-"))
                }
            }
        },
    )
}

/// A page of the audit trail.
pub fn audit(
    ui: Ui,
    session: &Session,
    events: &[Event],
    size: i64,
    from: i64,
    limit: i64,
    verified: Option<Result<String, String>>,
) -> Markup {
    layout(
        ui,
        &ui.t("audit-title"),
        Some(session),
        html! {
            h1 { (ui.t("audit-title")) }
            p { (t!(ui.lang, "audit-intro", size = size)) " " a href={ "/console/audit?from=" (from) "&verify=1" } id="verify" { (ui.t("audit-verify")) } }
            @match &verified {
                Some(Ok(text)) => { div.box.notice id="verified" { (text) } }
                Some(Err(text)) => { div.box.error id="verified" { (text) } }
                None => {}
            }
            p {
                @if from > 1 { a href={ "/console/audit?from=" ((from - limit).max(1)) } { (ui.t("audit-earlier")) } " " }
                @if from + limit <= size { a href={ "/console/audit?from=" (from + limit) } { (ui.t("audit-later")) } }
            }
            div.scroll {
                table id="events" {
                    thead { tr { th { "#" } th { (ui.t("col-when")) } th { (ui.t("col-actor")) } th { (ui.t("col-action")) } th { (ui.t("col-subject")) } th { (ui.t("col-details")) } } }
                    tbody {
                        @for e in events {
                            @let details = e.details.to_string();
                            tr {
                                td.num { (e.seq) }
                                td { (ui.time(&e.ts)) }
                                td { (e.actor) }
                                td { (e.action) }
                                td { (e.subject) }
                                td { code { @if details.len() > 300 { (details.chars().take(300).collect::<String>()) "…" } @else { (details) } } }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// A grant or a recipient as words: a data user's name, or an organisation's code.
fn grantee(ui: Ui, g: &sandbox_runtime::review::Grantee) -> String {
    match g {
        sandbox_runtime::review::Grantee::Principal(n) => n.clone(),
        sandbox_runtime::review::Grantee::Organisation(c) => {
            t!(ui.lang, "product-scope-organisation", code = c.as_str())
        }
    }
}

/// The product catalog (SYS Art. 50): every product's content, scope, providers and dates
/// for everyone who reads products; its files to those entitled; a withdrawal shown.
pub fn products(ui: Ui, session: &Session, list: &[CatalogEntry]) -> Markup {
    layout(
        ui,
        &ui.t("products-title"),
        Some(session),
        html! {
            h1 { (ui.t("products-heading")) }
            @if list.is_empty() {
                p.muted id="no-products" { (ui.t("products-none")) }
            } @else {
                div.scroll {
                    table id="products" {
                        thead { tr { th { (ui.t("col-product")) } th { (ui.t("col-output")) } th { (ui.t("col-scenario")) } th { (ui.t("col-providers")) } th { (ui.t("col-scope")) } th { (ui.t("col-released")) } th { (ui.t("col-product-status")) } th { (ui.t("col-files")) } } }
                        tbody {
                            @for p in list {
                                tr.product data-id=(p.id) {
                                    td { a href={ "/console/products/" (p.id) } { (p.id) } }
                                    td { (p.name) }
                                    td { (p.scenario) br; span.muted { (p.purpose) } }
                                    td { (p.providers.join(", ")) }
                                    td.scope { (p.scope.iter().map(|g| grantee(ui, &g.grantee)).collect::<Vec<_>>().join(", ")) }
                                    td { (ui.time(&p.released_at)) }
                                    td.status {
                                        @if let Some(w) = &p.withdrawal {
                                            span.withdrawn { (t!(ui.lang, "product-withdrawn-on", at = ui.time(&w.withdrawn_at))) }
                                        } @else if p.entitlement.is_some() {
                                            (ui.t("product-available"))
                                        } @else {
                                            span.muted { (ui.t("product-not-granted")) }
                                        }
                                    }
                                    td { @if p.downloadable() { @for f in &p.files { a href={ "/console/products/" (p.id) "/files/" (f) } { (f) } " " } } }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// What the product page shows.
pub struct ProductPage<'a> {
    /// The catalog's entry.
    pub entry: &'a CatalogEntry,
    /// Manifest and signature, for a caller entitled to them.
    pub signed: Option<(&'a Value, &'a str)>,
    /// The holders, for operators and supervisors.
    pub holders: &'a [sandbox_runtime::review::Holder],
}

/// One product: its catalog entry, its withdrawal if any; to those entitled its files,
/// manifest and signature; to operators and supervisors its holders and the withdrawal.
pub fn product(
    ui: Ui,
    session: &Session,
    p: &ProductPage<'_>,
    message: Option<(&str, bool)>,
) -> Markup {
    let e = p.entry;
    let id = e.id.as_str();
    let overseer = matches!(session.principal.role, Role::Operator | Role::Supervisor);
    layout(
        ui,
        id,
        Some(session),
        html! {
            h1 { (t!(ui.lang, "product-heading", id = id)) }
            @if let Some((text, error)) = message {
                @if error { p.box.error id="error" { (text) } } @else { p.box.notice id="notice" { (text) } }
            }
            @if let Some(w) = &e.withdrawal {
                div.box.error id="withdrawal" {
                    strong { (t!(ui.lang, "product-withdrawn-by", who = w.withdrawn_by.as_str(), at = ui.time(&w.withdrawn_at))) }
                    p id="withdrawal-reason" { (w.reason) }
                }
            }
            dl {
                dt { (ui.t("col-output")) } dd { (e.name) }
                dt { (ui.t("col-scenario")) } dd { (e.scenario) " · " (e.purpose) }
                dt { (ui.t("col-providers")) } dd { (e.providers.join(", ")) }
                dt { (ui.t("col-datasets")) } dd { (e.datasets.join(", ")) }
                dt { (ui.t("col-released")) } dd { (ui.time(&e.released_at)) " · " (e.released_by) }
                dt { (ui.t("col-scope")) }
                dd id="scope" {
                    @if e.scope.is_empty() { span.muted { (ui.t("product-scope-none")) } }
                    @for g in &e.scope {
                        span.grant { (grantee(ui, &g.grantee)) }
                        @if !g.at_release { " (" (t!(ui.lang, "product-granted-later", who = g.granted_by.as_str(), at = ui.time(&g.granted_at))) ")" }
                        " "
                    }
                }
            }
            @match p.signed {
                None => {
                    p.box id="not-granted" { (ui.t("product-not-granted-long")) }
                }
                Some((manifest, signature)) => {
                    p { (ui.t("product-signed")) " " code { "sandbox product verify" } }
                    h2 { (ui.t("product-files")) }
                    @if e.withdrawal.is_some() {
                        p.muted id="files-withdrawn" { (ui.t("product-files-withdrawn")) }
                    } @else {
                        ul id="files" {
                            @for f in manifest["files"].as_array().map_or(&[][..], Vec::as_slice) {
                                @let name = f["name"].as_str().unwrap_or("");
                                li {
                                    a href={ "/console/products/" (id) "/files/" (name) } { (name) }
                                    @if sandbox_runtime::export::is_table(name) {
                                        " · " a.csv href={ "/console/products/" (id) "/files/" (name) "?format=csv" } { "CSV" }
                                        " · " a.xlsx href={ "/console/products/" (id) "/files/" (name) "?format=xlsx" } { "XLSX" }
                                    }
                                }
                            }
                        }
                    }
                    h2 { (ui.t("product-signature")) }
                    div.box { code id="signature" { (signature) } }
                    h2 { (ui.t("product-manifest")) }
                    div.box { pre id="manifest" { (serde_json::to_string_pretty(manifest).unwrap_or_default()) } }
                }
            }
            @if overseer {
                h2 { (ui.t("product-holders")) }
                @if p.holders.is_empty() {
                    p.muted id="no-holders" { (ui.t("product-holders-none")) }
                } @else {
                    div.scroll { table id="holders" {
                        thead { tr { th { (ui.t("col-principal")) } th { (ui.t("col-organisation")) } th { (ui.t("col-downloads")) } th { (ui.t("col-last-download")) } } }
                        tbody {
                            @for h in p.holders {
                                tr.holder { td { (h.principal) } td { (h.organisation.as_deref().unwrap_or("")) } td { (h.downloads) } td { (ui.time(&h.last_at)) } }
                            }
                        }
                    } }
                }
                @if e.withdrawal.is_none() {
                    form.box method="post" action={ "/console/products/" (id) "/withdraw" } id="withdraw-product" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        label for="withdraw-reason" { (ui.t("product-withdraw-reason")) }
                        textarea id="withdraw-reason" name="reason" required {}
                        p.confirm {
                            input type="checkbox" id="withdraw-confirm" name="confirm" value="yes" required;
                            " "
                            label for="withdraw-confirm" { (ui.t("product-withdraw-confirm")) }
                        }
                        p { button.reject type="submit" id="withdraw" { (ui.t("product-withdraw")) } }
                    }
                }
            }
        },
    )
}

/// Each scenario's standing and budget.
pub fn scenarios(ui: Ui, session: &Session, usage: &[Usage]) -> Markup {
    layout(
        ui,
        &ui.t("scenarios-title"),
        Some(session),
        html! {
            h1 { (ui.t("scenarios-heading")) }
            div.scroll {
                table id="scenarios" {
                    thead { tr {
                        th { (ui.t("col-scenario")) } th { (ui.t("col-developer")) } th { (ui.t("col-status")) }
                        th { (ui.t("col-valid-until")) } th { (ui.t("col-epsilon")) } th { (ui.t("col-jobs")) }
                        th { (ui.t("col-queries")) } th { (ui.t("col-attention")) }
                    } }
                    tbody {
                        @for u in usage {
                            tr.scenario data-id=(u.id) {
                                td { a href={ "/console/scenarios/" (u.id) } { (u.name) } " " span.muted { "(" (u.id) ")" } }
                                td { (u.developer) }
                                td data-status=(u.status.as_str()) { (ui.word("scenario-status", u.status.as_str())) @if let Some(r) = &u.status_reason { br; span.muted { (r) } } }
                                td { (u.valid_until.to_string()) }
                                td.num {
                                    // Spent is not good: half is "suboptimal", nine tenths
                                    // and beyond "even less good" (browsers draw them amber
                                    // and red), never a full green bar.
                                    meter min="0" max=(u.epsilon_total) low=(u.epsilon_total * 0.5) high=(u.epsilon_total * 0.9) optimum="0" value=(u.epsilon_spent) {}
                                    " " (format!("{:.3}", u.epsilon_spent)) " / " (u.epsilon_total)
                                }
                                td.num { (u.jobs) }
                                td.num { (u.answered) " / " (u.refused) }
                                td { (u.flags.iter().map(|f| ui.word("flag", f)).collect::<Vec<_>>().join(", ")) }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// A provider's scenarios: those over a dataset it registered, with its word on each.
pub fn provider_scenarios(
    ui: Ui,
    session: &Session,
    rows: &[(
        ScenarioRecord,
        sandbox_runtime::consent::Consents,
        Vec<String>,
    )],
) -> Markup {
    use sandbox_runtime::consent::ConsentState;
    layout(
        ui,
        &ui.t("scenarios-title"),
        Some(session),
        html! {
            h1 { (ui.t("scenarios-heading")) }
            p.muted { (ui.t("provider-scenarios-intro")) }
            div.scroll {
                table id="scenarios" {
                    thead { tr {
                        th { (ui.t("col-scenario")) } th { (ui.t("col-developer")) } th { (ui.t("col-status")) }
                        th { (ui.t("col-valid-until")) } th { (ui.t("col-dataset")) } th { (ui.t("provider-your-word")) }
                    } }
                    tbody {
                        @for (r, consents, mine) in rows {
                            @let word = consents.items.iter().filter(|i| i.dataset.as_ref().is_some_and(|d| mine.contains(d))).map(|i| i.state).max_by_key(|s| match s { ConsentState::Objection => 2, ConsentState::Awaited => 1, ConsentState::NoObjection => 0 });
                            @let word = word.and_then(|w| serde_json::to_value(w).ok()).and_then(|v| v.as_str().map(str::to_string));
                            tr.scenario data-id=(r.id) data-word=(word.as_deref().unwrap_or("")) {
                                td { a href={ "/console/scenarios/" (r.id) } { (r.spec.name) } " " span.muted { "(" (r.id) ")" } }
                                td { (r.developer) }
                                td data-status=(r.status.as_str()) { (ui.word("scenario-status", r.status.as_str())) }
                                td { (r.spec.valid_until.to_string()) }
                                td { (mine.join(", ")) }
                                td {
                                    @match (&consents.covered_by_type, word.as_deref()) {
                                        (Some(kind), _) => { (t!(ui.lang, "consents-by-type", kind = kind.as_str())) }
                                        (None, Some(w)) => { (ui.word("consent-state", w)) }
                                        (None, None) => { "—" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// A column a scenario asks for, with its classification.
#[derive(Debug, Clone)]
pub struct AskedColumn {
    /// Dataset.
    pub dataset: String,
    /// Column.
    pub name: String,
    /// Classification level (1–4).
    pub level: u8,
    /// What queries may do with it.
    pub access: String,
    /// Its desensitization, if any.
    pub desensitized: Option<String>,
    /// What it holds.
    pub description: Option<String>,
}

/// A scenario: its agreement, the columns it asks for with their levels (level-4 columns
/// marked), and for an operator while it is pending, the decision.
pub fn scenario(
    ui: Ui,
    session: &Session,
    r: &ScenarioRecord,
    columns: &[AskedColumn],
    consents: &sandbox_runtime::consent::Consents,
    mine: &[String],
    message: Option<(&str, bool)>,
) -> Markup {
    use sandbox_runtime::consent::ConsentState;
    let pending =
        r.status == sandbox_core::ScenarioStatus::Pending && consents.covered_by_type.is_none();
    // The party whose word is still awaited or an objection: a supervisor for the data
    // bureau, a provider for the datasets of it that it registered.
    let may_consent = pending
        && match session.principal.role {
            Role::Supervisor => consents
                .items
                .iter()
                .any(|i| i.dataset.is_none() && i.state != ConsentState::NoObjection),
            Role::Provider => consents.items.iter().any(|i| {
                i.dataset.as_ref().is_some_and(|d| mine.contains(d))
                    && i.state != ConsentState::NoObjection
            }),
            _ => false,
        };
    let decidable = session.principal.role == Role::Operator
        && r.status == sandbox_core::ScenarioStatus::Pending
        && r.decided_by.is_none()
        && r.developer != session.principal.name;
    let level4 = columns.iter().filter(|c| c.level >= 4).count();
    layout(
        ui,
        &r.spec.name,
        Some(session),
        html! {
            h1 { (t!(ui.lang, "scenario-heading", name = r.spec.name.as_str())) }
            @if let Some((text, error)) = message {
                @if error { p.box.error id="error" { (text) } } @else { p.box.notice id="notice" { (text) } }
            }
            dl {
                dt { (ui.t("col-status")) } dd id="status" data-status=(r.status.as_str()) { (ui.word("scenario-status", r.status.as_str())) }
                dt { (ui.t("col-developer")) } dd { (r.developer) }
                dt { (ui.t("scenario-purpose")) } dd id="purpose" { (r.spec.purpose) }
                dt { (ui.t("scenario-valid")) } dd { (r.spec.valid_from.to_string()) " – " (r.spec.valid_until.to_string()) }
                dt { (ui.t("scenario-mode")) } dd { (r.spec.mode.to_string()) }
                dt { "ε" } dd { (format!("{:.3}", r.epsilon_spent)) " / " (r.spec.budget.epsilon) " · " (t!(ui.lang, "scenario-per-query", epsilon = r.spec.budget.epsilon_per_query)) }
            }
            h2 { (ui.t("agreement-heading")) }
            dl id="agreement" {
                dt { (ui.t("agreement-response-plan")) } dd id="response-plan" { (r.spec.response_plan.as_deref().unwrap_or("—")) }
                @if let Some(a) = &r.spec.agreement {
                    dt { (ui.t("agreement-rights")) } dd { (a.rights_and_obligations) }
                    dt { (ui.t("agreement-security")) } dd { (a.security_requirements) }
                    dt { (ui.t("agreement-legal-basis")) } dd id="legal-basis" { (a.legal_basis) }
                    dt { (ui.t("agreement-breach")) } dd { (a.breach) }
                } @else {
                    dt { (ui.t("agreement-terms")) } dd { (ui.t("agreement-before-terms")) }
                }
            }
            h2 { (ui.t("scenario-columns")) }
            @if level4 > 0 {
                p.box.error id="level4-warning" { (t!(ui.lang, "scenario-level4", count = level4)) }
            }
            p.muted { (t!(ui.lang, "scenario-purpose-check", count = columns.len())) }
            div.scroll {
                table id="columns" {
                    thead { tr { th { (ui.t("col-dataset")) } th { (ui.t("col-column")) } th { (ui.t("col-level")) } th { (ui.t("col-access")) } th { (ui.t("col-description")) } } }
                    tbody {
                        @for c in columns {
                            tr.column data-level=(c.level) class=@if c.level >= 4 { "level4" } {
                                td { (c.dataset) }
                                td { code { (c.name) } }
                                td.num { (c.level) }
                                td { (ui.word("access", &c.access)) @if let Some(d) = &c.desensitized { br; span.muted { (d) } } }
                                td { (c.description.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
            h2 { (ui.t("consents-heading")) }
            @if let Some(kind) = &consents.covered_by_type {
                p id="consents-by-type" { (t!(ui.lang, "consents-by-type", kind = kind.as_str())) }
            } @else {
                div.scroll { table id="consents" {
                    thead { tr { th { (ui.t("consents-party")) } th { (ui.t("col-status")) } th { (ui.t("col-who")) } th { (ui.t("col-why")) } th { (ui.t("consents-answer")) } } }
                    tbody {
                        @for i in &consents.items {
                            tr.consent data-state=(serde_json::to_value(i.state).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()) {
                                td { @match &i.dataset { Some(d) => { (t!(ui.lang, "consents-provider", dataset = d.as_str())) } None => { (ui.t("consents-supervisor")) } } }
                                td.state { (ui.word("consent-state", &serde_json::to_value(i.state).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default())) }
                                td { (i.by.as_deref().unwrap_or("")) @if let Some(at) = &i.at { " · " (ui.time(at)) } }
                                td { (i.reasons.as_deref().unwrap_or("")) }
                                td { (i.answer.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                } }
            }
            @if r.status == sandbox_core::ScenarioStatus::Pending {
                p.muted id="operator-approval" {
                    @match &r.decided_by {
                        Some(by) => { (t!(ui.lang, "consents-operator-approved", who = by.as_str())) }
                        None => { (ui.t("consents-operator-awaited")) }
                    }
                }
            }
            @if may_consent {
                form.box method="post" action={ "/console/scenarios/" (r.id) "/consent" } id="consent-scenario" {
                    input type="hidden" name="csrf" value=(session.csrf);
                    label for="consent-reason" { (ui.t("consents-reasons")) }
                    textarea id="consent-reason" name="reason" {}
                    p.confirm {
                        input type="checkbox" id="consent-confirm" name="confirm" value="yes" required;
                        " "
                        label for="consent-confirm" { (ui.t("consents-confirm")) }
                    }
                    p {
                        button.approve type="submit" name="decision" value="no_objection" id="consent-no-objection" { (ui.t("consent-state-no-objection")) }
                        button.reject type="submit" name="decision" value="objection" id="consent-objection" { (ui.t("consent-state-objection")) }
                    }
                }
            }
            @if decidable {
                form.box method="post" action={ "/console/scenarios/" (r.id) "/decide" } id="decide-scenario" {
                    input type="hidden" name="csrf" value=(session.csrf);
                    label for="scenario-reason" { (ui.t("scenario-reason")) }
                    textarea id="scenario-reason" name="reason" {}
                    p.confirm {
                        input type="checkbox" id="scenario-confirm" name="confirm" value="yes" required;
                        " "
                        label for="scenario-confirm" { (ui.t("scenario-confirm")) }
                    }
                    p {
                        button.approve type="submit" name="decision" value="approve" id="scenario-approve" { (ui.t("decision-approve")) }
                        button.reject type="submit" name="decision" value="reject" id="scenario-reject" { (ui.t("decision-reject")) }
                    }
                }
            }
        },
    )
}

/// The catalog: every dataset's current version.
pub fn datasets(
    ui: Ui,
    session: &Session,
    list: &[sandbox_runtime::catalog::DatasetVersion],
) -> Markup {
    layout(
        ui,
        &ui.t("datasets-title"),
        Some(session),
        html! {
            h1 { (ui.t("datasets-title")) }
            div.scroll { table id="datasets" {
                thead { tr { th { (ui.t("col-dataset")) } th { (ui.t("datasets-version")) } th { (ui.t("col-providers")) } th { (ui.t("datasets-share")) } th { (ui.t("datasets-authorized")) } th { (ui.t("col-status")) } } }
                tbody {
                    @for v in list {
                        tr.dataset data-name=(v.name) {
                            td { a href={ "/console/datasets/" (v.name) "/" (v.version) } { (v.name) } }
                            td.num { (v.version) }
                            td { (v.policy.dataset.provider) }
                            td { (format!("{:?}", v.policy.dataset.share_type).to_lowercase()) }
                            td { (v.authorized_scenarios.join(", ")) }
                            td { @if let Some(r) = &v.retired { (ui.t("datasets-retired")) ": " (r.reason) } }
                        }
                    }
                }
            } }
        },
    )
}

/// A dataset version: what stands against it, the products it fed, and (operators,
/// supervisors) suspension and recall.
pub fn version(
    ui: Ui,
    session: &Session,
    v: &sandbox_runtime::versions::Standing,
    message: Option<(&str, bool)>,
) -> Markup {
    let operator = session.principal.role == Role::Operator;
    // The provider who registered it objects to it, suspends and reinstates it (QQHR
    // Art. 20; SYS Art. 40) as an operator does; operators and supervisors recall what it
    // fed.
    let its_provider =
        session.principal.role == Role::Provider && v.registered_by == session.principal.name;
    let overseer =
        matches!(session.principal.role, Role::Operator | Role::Supervisor) || its_provider;
    let base = format!("/console/datasets/{}/{}", v.dataset, v.version);
    layout(
        ui,
        &v.dataset,
        Some(session),
        html! {
            h1 { (t!(ui.lang, "version-heading", name = v.dataset.as_str(), version = v.version)) }
            @if let Some((text, error)) = message {
                @if error { p.box.error id="error" { (text) } } @else { p.box.notice id="notice" { (text) } }
            }
            @if let Some(s) = &v.suspended {
                div.box.error id="suspended" { (t!(ui.lang, "version-suspended", who = s.suspended_by.as_str(), at = ui.time(&s.suspended_at))) ": " (s.reason) }
            }
            h2 { (ui.t("version-objections")) }
            @if v.objections.is_empty() { p.muted { (ui.t("version-no-objections")) } }
            ul id="objections" {
                @for o in &v.objections { li { span.muted { (ui.time(&o.created_at)) " · " (o.raised_by) } ": " (o.reason) } }
            }
            h2 { (ui.t("version-products")) }
            ul id="derived" {
                @for p in &v.products { li { a href={ "/console/products/" (p) } { (p) } } }
            }
            @if overseer {
                form.box method="post" action={ (base) "/act" } id="version-act" {
                    input type="hidden" name="csrf" value=(session.csrf);
                    label for="version-reason" { (ui.t("version-reason")) }
                    textarea id="version-reason" name="reason" required {}
                    p.confirm {
                        input type="checkbox" id="version-confirm" name="confirm" value="yes" required;
                        " " label for="version-confirm" { (ui.t("version-confirm")) }
                    }
                    p {
                        @if its_provider {
                            button type="submit" name="decision" value="object" id="version-object" { (ui.t("version-object")) }
                            " "
                        }
                        @if operator || its_provider {
                            @if v.suspended.is_some() {
                                button type="submit" name="decision" value="reinstate" id="version-reinstate" { (ui.t("version-reinstate")) }
                            } @else {
                                button.reject type="submit" name="decision" value="suspend" id="version-suspend" { (ui.t("version-suspend")) }
                            }
                        }
                        @if !v.products.is_empty() && !its_provider {
                            " " button.reject type="submit" name="decision" value="recall" id="version-recall" { (ui.t("version-recall")) }
                        }
                    }
                }
            }
        },
    )
}

/// Incidents with their timelines, rectification orders, the register of organisations.
pub fn oversight(
    ui: Ui,
    session: &Session,
    incidents: &[sandbox_runtime::incidents::Incident],
    orders: &[sandbox_runtime::incidents::Order],
    organisations: &[sandbox_runtime::organisations::Organisation],
    message: Option<(&str, bool)>,
) -> Markup {
    use sandbox_runtime::incidents::{ENTRY_KINDS, GRADES};
    let supervisor = session.principal.role == Role::Supervisor;
    let operator = session.principal.role == Role::Operator;
    let act = "/console/oversight/act";
    layout(
        ui,
        &ui.t("oversight-title"),
        Some(session),
        html! {
            h1 { (ui.t("oversight-incidents")) }
            @if let Some((text, error)) = message {
                @if error { p.box.error id="error" { (text) } } @else { p.box.notice id="notice" { (text) } }
            }
            details id="open-incident" {
                summary { (ui.t("incident-open")) }
                form.box method="post" action=(act) {
                    input type="hidden" name="csrf" value=(session.csrf);
                    input type="hidden" name="action" value="open";
                    label for="incident-grade" { (ui.t("incident-grade")) }
                    select id="incident-grade" name="grade" {
                        @for g in GRADES { option value=(g) { (ui.word("incident-grade", g)) } }
                    }
                    label for="incident-title" { (ui.t("incident-title")) }
                    input type="text" id="incident-title" name="title" required;
                    label for="incident-description" { (ui.t("incident-description")) }
                    textarea id="incident-description" name="text" required {}
                    p { button type="submit" id="incident-submit" { (ui.t("incident-open")) } }
                }
            }
            @if incidents.is_empty() { p.muted id="no-incidents" { (ui.t("oversight-no-incidents")) } }
            @for i in incidents {
                div.box.incident data-id=(i.id) {
                    strong { "#" (i.id) " · " (ui.word("incident-grade", &i.grade)) " · " (i.title) }
                    p { (i.description) br; span.muted { (i.opened_by) " · " (ui.time(&i.opened_at)) } }
                    @if !i.entries.is_empty() {
                        ul.timeline {
                            @for e in &i.entries {
                                li {
                                    span.muted { (ui.time(&e.at)) " · " (e.by) } " · "
                                    (ui.word("incident-entry", &e.kind))
                                    @if let Some(r) = &e.reference { " " code { (r) } }
                                    @if let Some(to) = &e.recipient { " → " (to) }
                                    ": " (e.text)
                                }
                            }
                        }
                    }
                    @if let Some(summary) = &i.summary {
                        p.closed { (ui.t("incident-closed")) ": " (summary) " · " span.muted { (i.closed_by.as_deref().unwrap_or("")) } }
                    } @else {
                        details.log-entry {
                            summary { (ui.t("incident-log")) }
                            form method="post" action=(act) {
                                input type="hidden" name="csrf" value=(session.csrf);
                                input type="hidden" name="action" value="log";
                                input type="hidden" name="id" value=(i.id);
                                label for={ "entry-kind-" (i.id) } { (ui.t("incident-entry-kind")) }
                                select id={ "entry-kind-" (i.id) } name="kind" {
                                    @for k in ENTRY_KINDS { option value=(k) { (ui.word("incident-entry", k)) } }
                                }
                                label for={ "entry-reference-" (i.id) } { (ui.t("incident-entry-reference")) }
                                input type="text" id={ "entry-reference-" (i.id) } name="reference";
                                label for={ "entry-recipient-" (i.id) } { (ui.t("incident-entry-recipient")) }
                                input type="text" id={ "entry-recipient-" (i.id) } name="recipient";
                                label for={ "entry-text-" (i.id) } { (ui.t("incident-entry-text")) }
                                textarea id={ "entry-text-" (i.id) } name="text" required {}
                                p { button type="submit" id={ "entry-submit-" (i.id) } { (ui.t("incident-log")) } }
                            }
                        }
                        details.close-incident {
                            summary { (ui.t("incident-close")) }
                            form method="post" action=(act) {
                                input type="hidden" name="csrf" value=(session.csrf);
                                input type="hidden" name="action" value="close";
                                input type="hidden" name="id" value=(i.id);
                                label for={ "close-summary-" (i.id) } { (ui.t("incident-summary")) }
                                textarea id={ "close-summary-" (i.id) } name="text" required {}
                                p { button type="submit" id={ "close-submit-" (i.id) } { (ui.t("incident-close")) } }
                            }
                        }
                    }
                }
            }
            h2 { (ui.t("oversight-orders")) }
            @if supervisor {
                details id="issue-order" {
                    summary { (ui.t("order-issue")) }
                    form.box method="post" action=(act) {
                        input type="hidden" name="csrf" value=(session.csrf);
                        input type="hidden" name="action" value="issue";
                        label for="order-kind" { (ui.t("oversight-target")) }
                        select id="order-kind" name="kind" {
                            @for k in ["principal", "organisation", "scenario"] { option value=(k) { (ui.word("order-target", k)) } }
                        }
                        label for="order-target" { (ui.t("order-target-name")) }
                        input type="text" id="order-target" name="target" required;
                        label for="order-deadline" { (ui.t("oversight-deadline")) }
                        input type="date" id="order-deadline" name="deadline" required;
                        label for="order-requirement" { (ui.t("oversight-requirement")) }
                        textarea id="order-requirement" name="text" required {}
                        p { button type="submit" id="order-submit" { (ui.t("order-issue")) } }
                    }
                }
            }
            @if orders.is_empty() { p.muted id="no-orders" { (ui.t("oversight-no-orders")) } } @else {
                div.scroll { table id="orders" {
                    thead { tr { th { "#" } th { (ui.t("oversight-target")) } th { (ui.t("oversight-deadline")) } th { (ui.t("col-status")) } th { (ui.t("oversight-requirement")) } th { (ui.t("consents-answer")) } } }
                    tbody {
                        @for o in orders {
                            tr.order data-id=(o.id) data-status=(o.status) {
                                td { (o.id) }
                                td { (ui.word("order-target", &o.target_kind)) " " (o.target) }
                                td { (ui.time(&o.deadline)) }
                                td.status { (ui.word("order-status", &o.status)) }
                                td { (o.requirement) }
                                td {
                                    (o.answer.as_deref().unwrap_or(""))
                                    @if supervisor && o.status == "answered" {
                                        form method="post" action=(act) {
                                            input type="hidden" name="csrf" value=(session.csrf);
                                            input type="hidden" name="action" value="close_order";
                                            input type="hidden" name="id" value=(o.id);
                                            button.approve type="submit" id={ "order-close-" (o.id) } { (ui.t("order-close")) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                } }
            }
            h2 { (ui.t("oversight-organisations")) }
            @if operator {
                details id="add-organisation" {
                    summary { (ui.t("org-add")) }
                    form.box method="post" action=(act) {
                        input type="hidden" name="csrf" value=(session.csrf);
                        input type="hidden" name="action" value="org_add";
                        label for="org-code" { (ui.t("oversight-credit-code")) }
                        input type="text" id="org-code" name="code" required maxlength="18";
                        (org_fields(ui, "org-new", None))
                        p { button type="submit" id="org-add-submit" { (ui.t("org-add")) } }
                    }
                }
            }
            @if organisations.is_empty() { p.muted id="no-organisations" { (ui.t("oversight-no-organisations")) } } @else {
                div.scroll { table id="organisations" {
                    thead { tr { th { (ui.t("oversight-credit-code")) } th { (ui.t("oversight-name")) } th { (ui.t("oversight-officer")) } th { (ui.t("oversight-qualified-until")) } th { (ui.t("col-epsilon")) } th { (ui.t("oversight-members")) } } }
                    tbody {
                        @for o in organisations {
                            tr.organisation data-code=(o.credit_code) {
                                td { code { (o.credit_code) } }
                                td { (o.name) }
                                td { (o.security_officer) br; span.muted { (o.security_contact) } }
                                td { (o.qualified_until) }
                                td.num { (format!("{:.3}", o.epsilon_spent)) @if let Some(cap) = o.epsilon_cap { " / " (cap) } }
                                td { (o.members.join(", ")) }
                            }
                        }
                    }
                } }
                @if operator {
                    @for o in organisations {
                        details.change-organisation data-code=(o.credit_code) {
                            summary { (t!(ui.lang, "org-change", code = o.credit_code.as_str())) }
                            form.box method="post" action=(act) {
                                input type="hidden" name="csrf" value=(session.csrf);
                                input type="hidden" name="action" value="org_set";
                                input type="hidden" name="code" value=(o.credit_code);
                                (org_fields(ui, &format!("org-{}", o.credit_code), Some(o)))
                                label for={ "org-" (o.credit_code) "-reason" } { (ui.t("org-reason")) }
                                textarea id={ "org-" (o.credit_code) "-reason" } name="text" required {}
                                p { button type="submit" id={ "org-set-" (o.credit_code) } { (ui.t("org-save")) } }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// An organisation's entry as form fields, filled with its present values when it has one.
fn org_fields(
    ui: Ui,
    prefix: &str,
    o: Option<&sandbox_runtime::organisations::Organisation>,
) -> Markup {
    let cap = o.and_then(|o| o.epsilon_cap).map(|c| c.to_string());
    html! {
        label for={ (prefix) "-name" } { (ui.t("oversight-name")) }
        input type="text" id={ (prefix) "-name" } name="name" required value=(o.map_or("", |o| o.name.as_str()));
        label for={ (prefix) "-officer" } { (ui.t("oversight-officer")) }
        input type="text" id={ (prefix) "-officer" } name="officer" required value=(o.map_or("", |o| o.security_officer.as_str()));
        label for={ (prefix) "-contact" } { (ui.t("org-contact")) }
        input type="text" id={ (prefix) "-contact" } name="contact" required value=(o.map_or("", |o| o.security_contact.as_str()));
        label for={ (prefix) "-until" } { (ui.t("oversight-qualified-until")) }
        input type="date" id={ (prefix) "-until" } name="qualified_until" required value=(o.map_or("", |o| o.qualified_until.as_str()));
        label for={ (prefix) "-cap" } { (ui.t("org-cap")) }
        input type="number" step="any" min="0" id={ (prefix) "-cap" } name="epsilon_cap" value=(cap.as_deref().unwrap_or(""));
    }
}

/// Compliance reports: the form, and a report's requirements with their evidence.
pub fn reports(
    ui: Ui,
    session: &Session,
    q: &super::ReportForm,
    report: Option<(&Value, &str)>,
    error: Option<&str>,
) -> Markup {
    layout(
        ui,
        &ui.t("reports-title"),
        Some(session),
        html! {
            h1 { (ui.t("reports-heading")) }
            @if let Some(e) = error { p.box.error id="error" { (e) } }
            form.box method="get" action="/console/reports" id="report-form" {
                label for="from" { (ui.t("reports-from")) } " "
                input type="date" id="from" name="from" value=(q.from.as_deref().unwrap_or("")) required;
                " " label for="to" { (ui.t("reports-to")) } " "
                input type="date" id="to" name="to" value=(q.to.as_deref().unwrap_or("")) required;
                " " label for="scenario" { (ui.t("reports-scenario")) } " "
                input type="text" id="scenario" name="scenario" value=(q.scenario.as_deref().unwrap_or(""));
                " " button type="submit" id="report" { (ui.t("reports-make")) }
            }
            @if let Some((r, signature)) = report {
                p id="report-scope" {
                    (r["period"]["from"].as_str().unwrap_or("")) " – " (r["period"]["to"].as_str().unwrap_or(""))
                    " · " (r["scope"]["scenario"]["name"].as_str().unwrap_or("domain"))
                    " · " (t!(ui.lang, "reports-checkpoint", size = r["audit"]["size"].as_i64().unwrap_or(0)))
                }
                p.muted {
                    a id="report-download" href={ "/console/reports?from=" (q.from.as_deref().unwrap_or("").trim()) "&to=" (q.to.as_deref().unwrap_or("").trim()) "&scenario=" (utf8_percent(q.scenario.as_deref().unwrap_or("").trim())) "&format=json" } { (ui.t("reports-download")) }
                    " " (ui.t("reports-verify")) " " code { "sandbox report verify FILE" }
                }
                div.scroll { table id="requirements" {
                    thead { tr { th { (ui.t("reports-requirement")) } th { (ui.t("reports-articles")) } th { (ui.t("reports-evidence")) } th { (ui.t("reports-events")) } } }
                    tbody {
                        @for section in r["sections"].as_array().map_or(&[][..], Vec::as_slice) {
                            tr.requirement data-id=(section["id"].as_str().unwrap_or("")) {
                                td { (section["title"].as_str().unwrap_or("")) }
                                td { (section["articles"].as_str().unwrap_or("")) }
                                td.evidence { (section["evidence"]) }
                                td {
                                    @for e in section["events"].as_array().map_or(&[][..], Vec::as_slice).iter().take(50) {
                                        a href=(e["link"].as_str().unwrap_or("")) title=(e["action"].as_str().unwrap_or("")) { "#" (e["seq"]) } " "
                                    }
                                }
                            }
                        }
                    }
                } }
                h2 { (ui.t("product-signature")) }
                div.box { code id="report-signature" { (signature) } }
            }
        },
    )
}

/// A page for a refusal or a missing thing.
pub fn problem(ui: Ui, session: Option<&Session>, title: &str, message: &str) -> Markup {
    layout(
        ui,
        title,
        session,
        html! {
            h1 { (title) }
            div.box.error id="error" { (message) }
        },
    )
}

/// A query parameter's value, percent-encoded (every byte but RFC 3986's unreserved ones).
fn utf8_percent(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn markdown_is_rendered_without_html_links_or_images() {
        let html = super::markdown(
            "## Income\n\n**Heping** leads. <script>alert(1)</script>\n\n[click](https://evil.example/?d=41200) ![x](https://evil.example/p.png)\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
        )
        .0;
        assert!(html.contains("<h2>Income</h2>"), "{html}");
        assert!(html.contains("<strong>Heping</strong>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("href") && !html.contains("<img"), "{html}");
        assert!(html.contains("click") && html.contains("<table>"), "{html}");
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(super::utf8_percent("income-test_1.x~"), "income-test_1.x~");
        assert_eq!(
            super::utf8_percent("a&b=c d#收入"),
            "a%26b%3Dc%20d%23%E6%94%B6%E5%85%A5"
        );
    }
}
