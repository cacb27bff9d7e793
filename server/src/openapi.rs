//! The OpenAPI 3.1 document of `/api/v1`, served at `/api/v1/openapi.json` (no token).
//!
//! [`ENDPOINTS`] is the one list of the API's operations: method, path, the action that
//! authorizes it (so each operation names the roles [`authz::allows`] lets call it, as
//! `x-sandbox-roles`), and its body and answer. Schemas come from the Rust types
//! themselves (schemars), so they cannot drift from what the handlers read and write. The
//! API tests check that this list and the router agree.

use axum::Json;
use schemars::{JsonSchema, SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};

use sandbox_core::authz::{self, Action};

use crate::api;
use sandbox_core::{Principal, Role};

type Gen = fn(&mut SchemaGenerator) -> schemars::Schema;

fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> schemars::Schema {
    g.subschema_for::<T>()
}

fn any_object(_: &mut SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "object"})
}

fn list<T: JsonSchema>(g: &mut SchemaGenerator) -> schemars::Schema {
    g.subschema_for::<Vec<T>>()
}

/// A written reason the operation requires (documented as such; the handlers read
/// [`api::ReasonBody`] and refuse a missing or blank one with 400).
#[derive(Debug, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct RequiredReason {
    /// Why (recorded).
    #[schemars(length(min = 1), regex(pattern = r"\S"))]
    reason: String,
}

/// One operation of the API.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    /// HTTP method, lowercase.
    pub method: &'static str,
    /// Path under `/api/v1`, with `{name}` parameters.
    pub path: &'static str,
    /// One line.
    pub summary: &'static str,
    /// The action that authorizes it.
    pub action: Action,
    /// The request body, JSON.
    request: Option<Gen>,
    /// The answer on success: status and body (`None`: not JSON).
    ok: (u16, Option<Gen>),
    /// Query parameters: name, JSON type, description.
    query: &'static [(&'static str, &'static str, &'static str)],
}

macro_rules! ep {
    ($m:literal $p:literal, $action:ident, $summary:literal, $req:expr, $status:literal => $resp:expr $(, [$(($qn:literal, $qt:literal, $qd:literal)),*])?) => {
        Endpoint {
            method: $m,
            path: $p,
            summary: $summary,
            action: Action::$action,
            request: $req,
            ok: ($status, $resp),
            query: &[$($(($qn, $qt, $qd)),*)?],
        }
    };
}

/// Every operation under `/api/v1`.
pub const ENDPOINTS: &[Endpoint] = &[
    ep!("get" "/whoami", WhoAmI, "The principal the token belongs to", None, 200 => Some(schema::<Principal>)),
    ep!("put" "/whoami/language", PreferencesSet, "Choose the language one reads Sandbox in (null: the client's, else the domain's default)", Some(schema::<api::LanguageBody>), 200 => Some(schema::<Principal>)),
    ep!("get" "/settings", WhoAmI, "The domain's default language and time zone", None, 200 => Some(schema::<sandbox_runtime::settings::Settings>)),
    ep!("put" "/settings", SettingsSet, "Set the domain's default language and time zone (operators and admins)", Some(schema::<sandbox_runtime::settings::Settings>), 200 => Some(schema::<sandbox_runtime::settings::Settings>)),
    ep!("get" "/principals", PrincipalRead, "Every principal with role and status", None, 200 => Some(list::<Principal>)),
    ep!("post" "/principals", PrincipalAdd, "Add a principal (operators and admins)", Some(schema::<api::PrincipalBody>), 201 => Some(schema::<Principal>)),
    ep!("post" "/principals/{name}/tokens", TokenIssue, "Issue an API token for a principal: the only time its secret is shown", None, 201 => Some(schema::<sandbox_runtime::tokens::Issued>)),
    ep!("get" "/tokens", TokenRead, "API tokens (ids, holders, revocations; never secrets): one's own, or any for operators and admins", None, 200 => Some(list::<sandbox_runtime::tokens::TokenInfo>),
        [("principal", "string", "only this principal's")]),
    ep!("post" "/tokens/{id}/revoke", TokenRevoke, "Revoke a token, with a reason (its holder, operators, admins)", Some(schema::<RequiredReason>), 200 => Some(schema::<sandbox_runtime::tokens::TokenInfo>)),
    ep!("post" "/principals/{name}/qualify", PrincipalStatus, "Qualify a principal again (Qiqihar Art. 14)", Some(schema::<RequiredReason>), 200 => Some(schema::<Principal>)),
    ep!("post" "/principals/{name}/suspend", PrincipalStatus, "Suspend a principal (Qiqihar Art. 23)", Some(schema::<RequiredReason>), 200 => Some(schema::<Principal>)),
    ep!("post" "/principals/{name}/revoke", PrincipalStatus, "Revoke a principal for good", Some(schema::<RequiredReason>), 200 => Some(schema::<Principal>)),
    ep!("get" "/datasets", CatalogRead, "The catalog: every dataset's current version (SYS Art. 12)", None, 200 => Some(list::<sandbox_runtime::catalog::DatasetVersion>)),
    ep!("post" "/datasets", DatasetRegister, "Register a dataset (a new version if it exists) with its policy", Some(schema::<api::RegisterBody>), 201 => Some(schema::<sandbox_runtime::catalog::DatasetVersion>)),
    ep!("get" "/datasets/{name}", CatalogRead, "One catalog entry", None, 200 => Some(schema::<sandbox_runtime::catalog::DatasetVersion>)),
    ep!("post" "/datasets/{name}/retire", DatasetRetire, "Retire a dataset registered by mistake (kept, refused for new scenarios), with a reason", Some(schema::<RequiredReason>), 200 => Some(schema::<sandbox_runtime::catalog::DatasetVersion>)),
    ep!("post" "/datasets/{name}/sharing", DatasetShare, "Decide that a not_shared dataset may go into a named scenario, with a reason (its provider, a supervisor; SYS Art. 24)", Some(schema::<api::SharingBody>), 201 => Some(schema::<sandbox_runtime::versions::SharingDecision>)),
    ep!("post" "/datasets/{name}/destroy", DatasetDestroy, "Destroy a dataset's files at the end of its authorization, with a reason; the record stays in the catalog (operators)", Some(schema::<RequiredReason>), 200 => Some(schema::<sandbox_runtime::versions::Destruction>)),
    ep!("get" "/datasets/{name}/destruction", CatalogRead, "The record of a dataset's destruction (null: not destroyed)", None, 200 => Some(schema::<Option<sandbox_runtime::versions::Destruction>>)),
    ep!("get" "/datasets/{name}/versions/{version}", CatalogRead, "What stands against a dataset version: objections, suspensions, the products whose numbers came from it", None, 200 => Some(schema::<sandbox_runtime::versions::Standing>)),
    ep!("post" "/datasets/{name}/versions/{version}/objections", DatasetSuspend, "Raise an objection against a dataset version, with a reason (its provider, or an operator)", Some(schema::<RequiredReason>), 201 => Some(schema::<sandbox_runtime::versions::Standing>)),
    ep!("post" "/datasets/{name}/versions/{version}/suspend", DatasetSuspend, "Suspend a dataset version: its queries refused until reinstated or replaced (QQHR Art. 20)", Some(schema::<RequiredReason>), 200 => Some(schema::<sandbox_runtime::versions::Standing>)),
    ep!("post" "/datasets/{name}/versions/{version}/reinstate", DatasetSuspend, "Lift a dataset version's suspension, with a reason", Some(schema::<RequiredReason>), 200 => Some(schema::<sandbox_runtime::versions::Standing>)),
    ep!("post" "/datasets/{name}/versions/{version}/recall", ProductWithdraw, "Withdraw, in one step, every product whose numbers came from a dataset version", Some(schema::<RequiredReason>), 200 => Some(list::<sandbox_runtime::review::Withdrawn>)),
    ep!("get" "/scenarios", ScenarioRead, "Scenarios the caller may see", None, 200 => Some(list::<sandbox_runtime::scenarios::ScenarioRecord>)),
    ep!("post" "/scenarios", ScenarioApply, "Apply for a scenario (TOML agreement)", Some(schema::<api::ApplyBody>), 201 => Some(schema::<sandbox_runtime::scenarios::ScenarioRecord>)),
    ep!("get" "/scenarios/{id}", ScenarioRead, "One scenario, by id or name", None, 200 => Some(schema::<sandbox_runtime::scenarios::ScenarioRecord>)),
    ep!("post" "/scenarios/{id}/approve", ScenarioDecide, "Approve a pending scenario (not one's own)", Some(schema::<api::ReasonBody>), 200 => Some(schema::<sandbox_runtime::scenarios::ScenarioRecord>)),
    ep!("post" "/scenarios/{id}/reject", ScenarioDecide, "Reject a pending scenario, with a reason", Some(schema::<RequiredReason>), 200 => Some(schema::<sandbox_runtime::scenarios::ScenarioRecord>)),
    ep!("post" "/scenarios/{id}/suspend", ScenarioStatus, "Suspend an approved scenario, with a reason (SYS Art. 31)", Some(schema::<RequiredReason>), 200 => Some(schema::<sandbox_runtime::scenarios::ScenarioRecord>)),
    ep!("post" "/scenarios/{id}/reinstate", ScenarioStatus, "Reinstate a suspended scenario, with a reason", Some(schema::<RequiredReason>), 200 => Some(schema::<sandbox_runtime::scenarios::ScenarioRecord>)),
    ep!("post" "/scenarios/{id}/revoke", ScenarioStatus, "Revoke a scenario for good, with a reason", Some(schema::<RequiredReason>), 200 => Some(schema::<sandbox_runtime::scenarios::ScenarioRecord>)),
    ep!("get" "/scenarios/{id}/budget", BudgetRead, "A scenario's privacy budget: granted and spent", None, 200 => Some(schema::<sandbox_runtime::scenarios::Balance>)),
    ep!("get" "/scenarios/{id}/consents", ScenarioRead, "Where a scenario's consents stand: each provider's and the supervisor's word, objections and answers (JZ Art. 11)", None, 200 => Some(schema::<sandbox_runtime::consent::Consents>)),
    ep!("post" "/scenarios/{id}/consent", ScenarioConsent, "Record no objection to a pending scenario, or an objection with reasons (its datasets' providers, a supervisor)", Some(schema::<api::ConsentBody>), 200 => Some(schema::<sandbox_runtime::consent::Consents>)),
    ep!("post" "/scenarios/{id}/answer", ScenarioApply, "Answer an objection to one's own scenario", Some(schema::<api::AnswerBody>), 200 => Some(schema::<sandbox_runtime::consent::Consents>)),
    ep!("get" "/scenario-types", ScenarioRead, "The established scenario types (QQHR Art. 15)", None, 200 => Some(list::<sandbox_runtime::consent::ScenarioType>)),
    ep!("post" "/scenario-types", ScenarioDecide, "Establish a scenario type from a scenario approved through the whole review (operators)", Some(schema::<api::TypeBody>), 201 => Some(schema::<sandbox_runtime::consent::ScenarioType>)),
    ep!("get" "/usage", UsageRead, "Usage monitoring: every scenario's use, refusals and flags (SYS Art. 31)", None, 200 => Some(list::<sandbox_runtime::scenarios::Usage>)),
    ep!("get" "/usage/settings", UsageRead, "Usage monitoring settings", None, 200 => Some(schema::<sandbox_runtime::scenarios::UsageSettings>)),
    ep!("put" "/usage/settings", UsageSettings, "Change the usage monitoring settings", Some(schema::<api::UsageSettingsBody>), 200 => Some(schema::<sandbox_runtime::scenarios::UsageSettings>)),
    ep!("post" "/modules", JobSubmit, "Upload a module (validated, compiled, stored by SHA-256)", Some(schema::<api::ModuleBody>), 201 => Some(schema::<sandbox_runtime::jobs::ModuleRecord>)),
    ep!("get" "/jobs", JobRead, "Jobs, newest first (a developer's own)", None, 200 => Some(list::<sandbox_runtime::jobs::JobRecord>),
        [("status", "enum:queued,running,succeeded,failed,cancelled", "only jobs in this status"), ("scenario", "string", "scenario id or name"), ("limit", "int64", "at most this many (default 100; taken within 1..=1000)")]),
    ep!("post" "/jobs", JobSubmit, "Queue a job; 201 if it ended within `wait` seconds, else 202", Some(schema::<api::SubmitBody>), 202 => Some(schema::<sandbox_runtime::jobs::JobRecord>),
        [("wait", "number", "seconds to wait for the job to end (at most the server's limit)")]),
    ep!("get" "/jobs/{id}", JobRead, "A job: status, queue position or progress, outputs", None, 200 => Some(schema::<sandbox_runtime::jobs::JobRecord>)),
    ep!("get" "/jobs/{id}/logs", JobRead, "A job's log lines, live while it runs", None, 200 => Some(any_object)),
    ep!("get" "/jobs/{id}/thread", JobRead, "The review request a job belongs to: its jobs, outputs, comments and decisions (a developer's own)", None, 200 => Some(schema::<sandbox_runtime::review::thread::Thread>)),
    ep!("post" "/jobs/{id}/comments", JobRead, "Write to a review request's thread (reviewers, and the job's developer)", Some(schema::<api::CommentBody>), 201 => Some(schema::<sandbox_runtime::review::thread::Thread>)),
    ep!("post" "/jobs/{id}/review", OutputDecide, "Decide on every output of a job that awaits the caller's tier, together", Some(schema::<api::ReviewBody>), 200 => Some(list::<sandbox_runtime::jobs::OutputRecord>)),
    ep!("post" "/jobs/{id}/cancel", JobCancel, "Cancel a queued or running job (a reason for someone else's)", Some(schema::<api::ReasonBody>), 200 => Some(schema::<sandbox_runtime::jobs::JobRecord>)),
    ep!("get" "/outputs", OutputRead, "Outputs awaiting review, or all", None, 200 => Some(list::<sandbox_runtime::jobs::OutputRecord>),
        [("status", "enum:pending,all", "pending (default) or all")]),
    ep!("get" "/outputs/{id}", OutputRead, "One output with its check results", None, 200 => Some(schema::<sandbox_runtime::jobs::OutputRecord>)),
    ep!("get" "/outputs/{id}/file", OutputRead, "The staged file, as a download (a table also as CSV or XLSX)", None, 200 => None,
        [("format", "enum:arrow,csv,xlsx", "a table in that format (default arrow)")]),
    ep!("post" "/outputs/{id}/approve", OutputDecide, "Approve at the caller's tier (operator, then supervisor releases)", Some(schema::<api::ReasonBody>), 200 => Some(schema::<sandbox_runtime::jobs::OutputRecord>)),
    ep!("post" "/outputs/{id}/reject", OutputDecide, "Reject, with a reason", Some(schema::<RequiredReason>), 200 => Some(schema::<sandbox_runtime::jobs::OutputRecord>)),
    ep!("post" "/outputs/{id}/request-changes", OutputDecide, "Send back to the developer, with a reason", Some(schema::<RequiredReason>), 200 => Some(schema::<sandbox_runtime::jobs::OutputRecord>)),
    ep!("get" "/products", ProductRead, "The product catalog: every released product's content, scope, providers, dates and withdrawal; files only where the caller is entitled", None, 200 => Some(list::<sandbox_runtime::review::CatalogEntry>)),
    ep!("get" "/products/{id}", ProductRead, "A product's catalog entry; to those entitled, its signed manifest and any signed withdrawal notice", None, 200 => Some(schema::<api::ProductAnswer>)),
    ep!("get" "/products/{id}/files/{name}", ProductRead, "A file the product's manifest lists, as a download (a table also as CSV or XLSX)", None, 200 => None,
        [("format", "enum:arrow,csv,xlsx", "a table in that format (default arrow)")]),
    ep!("post" "/products/{id}/withdraw", ProductWithdraw, "Withdraw a product, with a reason: downloads refused from then on; a signed notice; the holders to notify (QQHR Art. 20, 23)", Some(schema::<RequiredReason>), 200 => Some(schema::<sandbox_runtime::review::Withdrawn>)),
    ep!("post" "/products/{id}/grants", ProductGrant, "Grant a product to a data user or an organisation beyond its scope at release", Some(schema::<api::GrantBody>), 201 => Some(list::<sandbox_runtime::review::Grant>)),
    ep!("get" "/products/{id}/holders", ProductWithdraw, "Everyone who downloaded a file of a product (whom a withdrawal notifies)", None, 200 => Some(list::<sandbox_runtime::review::Holder>)),
    ep!("get" "/organisations", OrganisationRead, "The register of organisations (QQHR Art. 14, 23)", None, 200 => Some(list::<sandbox_runtime::organisations::Organisation>)),
    ep!("post" "/organisations", OrganisationManage, "Enter an organisation in the register (operators and admins)", Some(schema::<api::OrganisationBody>), 201 => Some(schema::<sandbox_runtime::organisations::Organisation>)),
    ep!("get" "/organisations/export", OrganisationRead, "The register as a file (recorded)", None, 200 => None,
        [("format", "enum:json,csv", "json (default) or csv")]),
    ep!("get" "/organisations/{code}", OrganisationRead, "One organisation, by its unified social credit code", None, 200 => Some(schema::<sandbox_runtime::organisations::Organisation>)),
    ep!("put" "/organisations/{code}", OrganisationManage, "Change an organisation's entry (qualification, officer, cap), with a reason", Some(schema::<api::OrganisationChangeBody>), 200 => Some(schema::<sandbox_runtime::organisations::Organisation>)),
    ep!("put" "/principals/{name}/organisation", OrganisationManage, "Place a principal in an organisation (null: in none)", Some(schema::<api::MembershipBody>), 200 => Some(schema::<Principal>)),
    ep!("get" "/audit/events", AuditRead, "A page of audit events", None, 200 => Some(any_object),
        [("from", "int64", "first event (default 1; below 1 reads from 1)"), ("limit", "int64", "how many (default 100; taken within 1..=1000)")]),
    ep!("get" "/audit/verify", AuditRead, "Verify the whole audit log", None, 200 => Some(any_object)),
    ep!("get" "/audit/proof/{seq}", AuditRead, "Inclusion proof of an event against a signed checkpoint", None, 200 => Some(schema::<sandbox_runtime::audit::InclusionProof>),
        [("size", "count", "size of a signed checkpoint (default: one of the log now)")]),
    ep!("get" "/reports/compliance", AuditRead, "A compliance report over a period, for the domain or one scenario: each requirement's evidence from the audit log, signed by the domain key with a signed checkpoint (B8)", None, 200 => Some(schema::<api::ReportAnswer>),
        [("from", "date", "first day (YYYY-MM-DD)"), ("to", "date", "last day (YYYY-MM-DD)"), ("scenario", "string", "one scenario, by id or name")]),
    ep!("get" "/incidents", IncidentManage, "Incidents, newest first, with their timelines (QQHR Art. 20; JZ Art. 21)", None, 200 => Some(list::<sandbox_runtime::incidents::Incident>)),
    ep!("post" "/incidents", IncidentManage, "Open an incident: grade, title, description", Some(schema::<api::IncidentBody>), 201 => Some(schema::<sandbox_runtime::incidents::Incident>)),
    ep!("get" "/incidents/{id}", IncidentManage, "One incident and its timeline", None, 200 => Some(schema::<sandbox_runtime::incidents::Incident>)),
    ep!("post" "/incidents/{id}/entries", IncidentManage, "Add to an incident's timeline: an action, a stop, suspension or withdrawal taken under it, a report or a notice made (to whom)", Some(schema::<api::EntryBody>), 201 => Some(schema::<sandbox_runtime::incidents::Incident>)),
    ep!("post" "/incidents/{id}/close", IncidentManage, "Close an incident with a summary", Some(schema::<api::SummaryBody>), 200 => Some(schema::<sandbox_runtime::incidents::Incident>)),
    ep!("get" "/orders", OrderRead, "Rectification orders (a developer's own); those past their deadline are enforced first", None, 200 => Some(list::<sandbox_runtime::incidents::Order>)),
    ep!("post" "/orders", OrderIssue, "Order a developer, an organisation or a scenario to rectify by a deadline (supervisors; SYS Art. 31)", Some(schema::<api::OrderBody>), 201 => Some(schema::<sandbox_runtime::incidents::Order>)),
    ep!("post" "/orders/{id}/answer", OrderAnswer, "Answer an order addressed to oneself before its deadline", Some(schema::<api::OrderAnswerBody>), 200 => Some(schema::<sandbox_runtime::incidents::Order>)),
    ep!("post" "/orders/{id}/close", OrderIssue, "Accept an answered order and close it (supervisors)", None, 200 => Some(schema::<sandbox_runtime::incidents::Order>)),
    ep!("post" "/stops", Stop, "Impose an emergency stop (QQHR Art. 20)", Some(schema::<api::StopBody>), 201 => Some(schema::<sandbox_runtime::stops::Stop>)),
    ep!("get" "/stops", Stop, "Emergency stops in force (with all=true, lifted ones too), newest first", None, 200 => Some(schema::<Vec<sandbox_runtime::stops::StopEntry>>),
        [("all", "boolean", "lifted stops too")]),
    ep!("post" "/stops/{id}/lift", Stop, "Lift an emergency stop, with a reason", Some(schema::<RequiredReason>), 200 => Some(any_object)),
];

/// What a staged or released file is served as.
const FILE_TYPES: &[&str] = &[
    "application/vnd.apache.arrow.file",
    "text/csv; charset=utf-8",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "text/markdown; charset=utf-8",
    "image/svg+xml",
    "image/png",
    "application/json",
    "application/octet-stream",
];

const ERROR_CODES: &[(u16, &str)] = &[
    (400, "malformed request"),
    (415, "a body that is not `application/json`"),
    (
        401,
        "no token, or a bad, unknown or revoked one (recorded as api.refused)",
    ),
    (
        403,
        "role, scenario membership, separation of duties, or a suspended principal (recorded as api.refused)",
    ),
    (404, "not found"),
    (409, "state, review or budget conflict"),
    (
        410,
        "a withdrawn product (recorded as product.download_refused)",
    ),
    (413, "body over 32 MiB"),
    (422, "policy, module, query or input refused"),
    (423, "an emergency stop is in force"),
    (
        429,
        "too many jobs waiting (busy), or too many refused calls from this address (rate_limited)",
    ),
];

fn roles(action: Action) -> Vec<&'static str> {
    [
        Role::Provider,
        Role::Operator,
        Role::Developer,
        Role::Supervisor,
        Role::DataUser,
        Role::Admin,
    ]
    .into_iter()
    .filter(|r| authz::allows(*r, action))
    .map(Role::as_str)
    .collect()
}

/// The document.
pub fn document() -> Value {
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    let mut g = SchemaGenerator::new(settings);
    let error = json!({"$ref": "#/components/schemas/Error"});
    let mut paths = Map::new();
    for e in ENDPOINTS {
        // Event numbers and stop ids are integers; every other path parameter is text.
        let numeric = |name: &str| name == "seq" || (name == "id" && e.path.starts_with("/stops/"));
        let mut params: Vec<Value> = e
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                let schema = if numeric(name) {
                    json!({"type": "integer", "minimum": 1, "maximum": i64::MAX})
                } else {
                    json!({"type": "string"})
                };
                json!({"name": name, "in": "path", "required": true, "schema": schema})
            })
            .collect();
        for (name, ty, description) in e.query {
            let schema = match (ty.strip_prefix("enum:"), *ty) {
                (Some(values), _) => {
                    json!({"type": "string", "enum": values.split(',').collect::<Vec<_>>()})
                }
                // Positions, sizes and page lengths: positive 64-bit integers.
                (None, "count") => json!({"type": "integer", "minimum": 1, "maximum": i64::MAX}),
                (None, "int64") => {
                    json!({"type": "integer", "format": "int64", "minimum": i64::MIN, "maximum": i64::MAX})
                }
                (None, other) => json!({"type": other}),
            };
            params.push(json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema}));
        }
        let mut responses = Map::new();
        let (status, body) = e.ok;
        responses.insert(
            status.to_string(),
            match body {
                Some(gen_schema) => json!({
                    "description": "success",
                    "content": {"application/json": {"schema": gen_schema(&mut g).to_value()}}
                }),
                None => {
                    let binary = json!({"schema": {"type": "string", "format": "binary"}});
                    let mut content = Map::new();
                    for ty in FILE_TYPES {
                        content.insert((*ty).to_string(), binary.clone());
                    }
                    json!({"description": "the file, as an attachment", "content": content})
                }
            },
        );
        if e.method == "post" && e.path == "/jobs" {
            responses.insert(
                "201".into(),
                json!({"description": "the job ended within `wait`", "content": {"application/json": {"schema": schema::<sandbox_runtime::jobs::JobRecord>(&mut g).to_value()}}}),
            );
        }
        for (code, why) in ERROR_CODES {
            responses.insert(
                code.to_string(),
                json!({"description": why, "content": {"application/json": {"schema": error}}}),
            );
        }
        let mut op = json!({
            "summary": e.summary,
            "operationId": format!("{}{}", e.method, e.path.replace(['/', '{', '}', '-'], "_")),
            "x-sandbox-action": e.action.as_str(),
            "x-sandbox-roles": roles(e.action),
            "parameters": params,
            "responses": responses,
        });
        if let Some(req) = e.request {
            op["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": req(&mut g).to_value()}}
            });
        }
        let item = paths
            .entry(format!("/api/v1{}", e.path))
            .or_insert_with(|| json!({}));
        item[e.method] = op;
    }
    let mut schemas: Map<String, Value> = g.take_definitions(true).into_iter().collect();
    schemas.insert(
        "Error".into(),
        json!({
            "type": "object",
            "required": ["error", "message"],
            "properties": {
                "error": {"type": "string", "description": "stable code: bad_request, unauthenticated, forbidden, not_found, conflict, review, budget, policy, query_refused, input, module, limit, verification_failed, stopped, cancelled, busy, rate_limited, internal"},
                "message": {"type": "string"}
            }
        }),
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Sandbox API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Public data analysed without leaving its domain. Every call but this document needs `Authorization: Bearer sbx_<id>_<secret>`; every 401 and 403 is an audit event."
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}
        },
        "security": [{"token": []}],
        "paths": paths,
    })
}

/// `GET /api/v1/openapi.json`.
pub async fn serve() -> Json<Value> {
    Json(document())
}
