//! The `/api/v1` handlers. Each one asks [`authz`] first, then calls the domain's own
//! functions on the blocking pool; those keep every check they make for the CLI.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use sandbox_core::authz::{self, Action};
use sandbox_core::job::SubmittedLimits;
use sandbox_core::{Decision, Error, JobStatus, Principal, Result};
use sandbox_runtime::identity;
use sandbox_runtime::jobs::{self, JobRecord, OutputRecord, Submission};
use sandbox_runtime::review;
use sandbox_runtime::scenarios::{self, ScenarioRecord};
use sandbox_runtime::{
    audit, catalog, consent, incidents, organisations, report, settings, stops, tokens, versions,
};

use crate::{ApiError, AppState, auth::Caller};

type ApiResult<T> = std::result::Result<T, ApiError>;
type Body<T> = std::result::Result<Json<T>, JsonRejection>;

/// The routes under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/whoami", get(whoami))
        .route("/whoami/language", put(language_set))
        .route("/settings", get(settings_get).put(settings_set))
        .route("/principals", get(principals).post(principal_add))
        .route("/principals/{name}/tokens", post(token_issue))
        .route("/tokens", get(token_list))
        .route("/tokens/{id}/revoke", post(token_revoke))
        .route("/principals/{name}/qualify", post(principal_qualify))
        .route("/principals/{name}/suspend", post(principal_suspend))
        .route("/principals/{name}/revoke", post(principal_revoke))
        .route("/datasets", get(datasets).post(register_dataset))
        .route("/datasets/{name}", get(dataset))
        .route("/datasets/{name}/retire", post(dataset_retire))
        .route("/datasets/{name}/versions/{version}", get(version_show))
        .route("/datasets/{name}/destroy", post(dataset_destroy))
        .route("/datasets/{name}/sharing", post(dataset_sharing))
        .route("/datasets/{name}/destruction", get(dataset_destruction))
        .route(
            "/datasets/{name}/versions/{version}/objections",
            post(version_object),
        )
        .route(
            "/datasets/{name}/versions/{version}/suspend",
            post(version_suspend),
        )
        .route(
            "/datasets/{name}/versions/{version}/reinstate",
            post(version_reinstate),
        )
        .route(
            "/datasets/{name}/versions/{version}/recall",
            post(version_recall),
        )
        .route("/scenarios", get(scenario_list).post(scenario_apply))
        .route("/scenarios/{id}", get(scenario_get))
        .route("/scenarios/{id}/approve", post(scenario_approve))
        .route("/scenarios/{id}/reject", post(scenario_reject))
        .route("/scenarios/{id}/suspend", post(scenario_suspend))
        .route("/scenarios/{id}/reinstate", post(scenario_reinstate))
        .route("/scenarios/{id}/revoke", post(scenario_revoke))
        .route("/scenarios/{id}/budget", get(budget))
        .route("/scenarios/{id}/consents", get(scenario_consents))
        .route("/scenarios/{id}/consent", post(scenario_consent))
        .route("/scenarios/{id}/answer", post(scenario_answer))
        .route(
            "/scenario-types",
            get(scenario_types).post(scenario_type_add),
        )
        .route("/usage", get(usage))
        .route(
            "/usage/settings",
            get(usage_settings).put(usage_settings_set),
        )
        .route("/modules", post(module_upload))
        .route("/jobs", get(job_list).post(job_submit))
        .route("/jobs/{id}", get(job_get))
        .route("/jobs/{id}/logs", get(job_logs))
        .route("/jobs/{id}/cancel", post(job_cancel))
        .route("/jobs/{id}/thread", get(job_thread))
        .route("/jobs/{id}/comments", post(job_comment))
        .route("/jobs/{id}/review", post(job_review))
        .route("/outputs", get(output_list))
        .route("/outputs/{id}", get(output_get))
        .route("/outputs/{id}/file", get(output_file))
        .route("/outputs/{id}/approve", post(output_approve))
        .route("/outputs/{id}/reject", post(output_reject))
        .route(
            "/outputs/{id}/request-changes",
            post(output_request_changes),
        )
        .route("/products", get(product_list))
        .route("/products/{id}", get(product_get))
        .route("/products/{id}/files/{name}", get(product_file))
        .route("/products/{id}/withdraw", post(product_withdraw))
        .route("/products/{id}/grants", post(product_grant))
        .route("/products/{id}/holders", get(product_holders))
        .route(
            "/organisations",
            get(organisation_list).post(organisation_register),
        )
        .route("/organisations/export", get(organisation_export))
        .route(
            "/organisations/{code}",
            get(organisation_get).put(organisation_change),
        )
        .route(
            "/principals/{name}/organisation",
            put(principal_organisation),
        )
        .route("/audit/events", get(audit_events))
        .route("/audit/verify", get(audit_verify))
        .route("/audit/proof/{seq}", get(audit_proof))
        .route("/reports/compliance", get(report_compliance))
        .route("/incidents", get(incident_list).post(incident_open))
        .route("/incidents/{id}", get(incident_get))
        .route("/incidents/{id}/entries", post(incident_log))
        .route("/incidents/{id}/close", post(incident_close))
        .route("/orders", get(order_list).post(order_issue))
        .route("/orders/{id}/answer", post(order_answer))
        .route("/orders/{id}/close", post(order_close))
        .route("/stops", post(stop_impose).get(stop_list))
        .route("/stops/{id}/lift", post(stop_lift))
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        ApiError::bad_request(r.body_text())
    }
}

/// A written reason (required or optional by endpoint).
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
}

fn required(reason: Option<String>, what: &str) -> ApiResult<String> {
    reason
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("{what} needs a `reason`")))
}

async fn whoami(Caller(c): Caller) -> ApiResult<Json<Principal>> {
    authz::authorize(&c, Action::WhoAmI)?;
    Ok(Json(c))
}

/// The language a principal reads Sandbox in.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LanguageBody {
    /// `zh-CN` or `en`; `null` to follow the client, else the domain's default.
    pub language: Option<sandbox_core::Lang>,
}

async fn language_set(
    State(s): State<AppState>,
    Caller(c): Caller,
    body: Body<LanguageBody>,
) -> ApiResult<Json<Principal>> {
    authz::authorize(&c, Action::PreferencesSet)?;
    let Json(body) = body?;
    let name = c.name.clone();
    s.blocking(move |d| settings::set_language(d, &name, body.language))
        .await?;
    Ok(Json(Principal {
        language: body.language,
        ..c
    }))
}

async fn settings_get(
    State(s): State<AppState>,
    Caller(c): Caller,
) -> ApiResult<Json<settings::Settings>> {
    authz::authorize(&c, Action::WhoAmI)?;
    Ok(Json(s.blocking(move |d| settings::get(d, &c.name)).await?))
}

async fn settings_set(
    State(s): State<AppState>,
    Caller(c): Caller,
    body: Body<settings::Settings>,
) -> ApiResult<Json<settings::Settings>> {
    authz::authorize(&c, Action::SettingsSet)?;
    let Json(body) = body?;
    Ok(Json(
        s.blocking(move |d| settings::set(d, &c.name, &body))
            .await?,
    ))
}

async fn principals(
    State(s): State<AppState>,
    Caller(c): Caller,
) -> ApiResult<Json<Vec<Principal>>> {
    authz::authorize(&c, Action::PrincipalRead)?;
    Ok(Json(s.blocking(move |d| identity::list(d, &c.name)).await?))
}

/// A new principal.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrincipalBody {
    /// Name: 1-64 letters, digits, `-`, `_`, `.`.
    #[schemars(regex(pattern = r"^[A-Za-z0-9._-]{1,64}$"))]
    pub name: String,
    /// The role.
    pub role: identity::Role,
    /// The unified social credit code of a registered organisation it belongs to.
    #[serde(default)]
    pub organisation: Option<String>,
}

async fn principal_add(
    State(s): State<AppState>,
    Caller(c): Caller,
    body: Body<PrincipalBody>,
) -> ApiResult<(StatusCode, Json<Principal>)> {
    authz::authorize(&c, Action::PrincipalAdd)?;
    let Json(body) = body?;
    let p = s
        .blocking(move |d| {
            identity::add_to(
                d,
                Some(&c.name),
                &body.name,
                body.role,
                body.organisation.as_deref(),
            )
        })
        .await?;
    Ok((StatusCode::CREATED, Json(p)))
}

async fn token_issue(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    authz::authorize(&c, Action::TokenIssue)?;
    let issued = s
        .blocking(move |d| tokens::issue(d, &c.name, &name))
        .await?;
    // The secret is in this answer only: no cache may keep it.
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(issued),
    )
        .into_response())
}

/// Whose tokens to list.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokensQuery {
    /// Only this principal's (operators and admins; everyone else lists their own).
    #[serde(default)]
    pub principal: Option<String>,
}

async fn token_list(
    State(s): State<AppState>,
    Caller(c): Caller,
    query: std::result::Result<Query<TokensQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<tokens::TokenInfo>>> {
    authz::authorize(&c, Action::TokenRead)?;
    let Query(q) = query?;
    let list = s
        .blocking(move |d| tokens::list(d, &c.name, q.principal.as_deref()))
        .await?;
    Ok(Json(list))
}

async fn token_revoke(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
    body: Body<ReasonBody>,
) -> ApiResult<Json<tokens::TokenInfo>> {
    authz::authorize(&c, Action::TokenRevoke)?;
    let Json(body) = body?;
    let reason = required(body.reason, "revoking a token")?;
    let t = s
        .blocking(move |d| tokens::revoke(d, &c.name, &id, &reason))
        .await?;
    Ok(Json(t))
}

async fn principal_status(
    s: AppState,
    c: Principal,
    name: String,
    body: Body<ReasonBody>,
    status: identity::Status,
) -> ApiResult<Json<Principal>> {
    authz::authorize(&c, Action::PrincipalStatus)?;
    let Json(body) = body?;
    let reason = required(body.reason, "changing a principal's status")?;
    let p = s
        .blocking(move |d| identity::set_status(d, &c.name, &name, status, &reason))
        .await?;
    Ok(Json(p))
}

async fn principal_qualify(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
    body: Body<ReasonBody>,
) -> ApiResult<Json<Principal>> {
    principal_status(s, c, name, body, identity::Status::Active).await
}

async fn principal_suspend(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
    body: Body<ReasonBody>,
) -> ApiResult<Json<Principal>> {
    principal_status(s, c, name, body, identity::Status::Suspended).await
}

async fn principal_revoke(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
    body: Body<ReasonBody>,
) -> ApiResult<Json<Principal>> {
    principal_status(s, c, name, body, identity::Status::Revoked).await
}

/// A catalog entry without the server's file paths.
fn public_dataset(v: &catalog::DatasetVersion) -> Result<Value> {
    let mut value = serde_json::to_value(v)?;
    if let Some(map) = value.as_object_mut() {
        map.remove("path");
    }
    Ok(value)
}

async fn datasets(State(s): State<AppState>, Caller(c): Caller) -> ApiResult<Json<Vec<Value>>> {
    authz::authorize(&c, Action::CatalogRead)?;
    let list = s
        .blocking(move |d| {
            catalog::list(d, &c.name)?
                .iter()
                .map(public_dataset)
                .collect()
        })
        .await?;
    Ok(Json(list))
}

async fn dataset(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    authz::authorize(&c, Action::CatalogRead)?;
    let v = s
        .blocking(move |d| public_dataset(&catalog::get(d, &c.name, &name)?))
        .await?;
    Ok(Json(v))
}

async fn dataset_retire(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
    body: Body<ReasonBody>,
) -> ApiResult<Json<Value>> {
    authz::authorize(&c, Action::DatasetRetire)?;
    let Json(body) = body?;
    let reason = required(body.reason, "retiring a dataset")?;
    let v = s
        .blocking(move |d| public_dataset(&catalog::retire(d, &c.name, &name, &reason)?))
        .await?;
    Ok(Json(v))
}

async fn dataset_destroy(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
    body: Body<ReasonBody>,
) -> ApiResult<Json<versions::Destruction>> {
    authz::authorize(&c, Action::DatasetDestroy)?;
    let Json(body) = body?;
    let reason = required(body.reason, "destroying a dataset")?;
    let v = s
        .blocking(move |d| versions::destroy(d, &c.name, &name, &reason))
        .await?;
    Ok(Json(v))
}

/// A decision to put a `not_shared` dataset in a named scenario.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SharingBody {
    /// The scenario's name (it may not have applied yet).
    pub scenario: String,
    /// Why (recorded).
    pub reason: String,
}

async fn dataset_sharing(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
    body: Body<SharingBody>,
) -> ApiResult<(StatusCode, Json<versions::SharingDecision>)> {
    authz::authorize(&c, Action::DatasetShare)?;
    let Json(body) = body?;
    let v = s
        .blocking(move |d| {
            versions::decide_sharing(d, &c.name, &name, &body.scenario, &body.reason)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

async fn dataset_destruction(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Option<versions::Destruction>>> {
    authz::authorize(&c, Action::CatalogRead)?;
    let v = s
        .blocking(move |d| versions::destruction(d, &c.name, &name))
        .await?;
    Ok(Json(v))
}

async fn version_show(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((name, version)): Path<(String, i64)>,
) -> ApiResult<Json<versions::Standing>> {
    authz::authorize(&c, Action::CatalogRead)?;
    let v = s
        .blocking(move |d| versions::show(d, &c.name, &name, version))
        .await?;
    Ok(Json(v))
}

async fn version_object(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((name, version)): Path<(String, i64)>,
    body: Body<ReasonBody>,
) -> ApiResult<(StatusCode, Json<versions::Standing>)> {
    authz::authorize(&c, Action::DatasetSuspend)?;
    let Json(body) = body?;
    let reason = required(body.reason, "an objection")?;
    let v = s
        .blocking(move |d| versions::object(d, &c.name, &name, version, &reason))
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

async fn version_suspend(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((name, version)): Path<(String, i64)>,
    body: Body<ReasonBody>,
) -> ApiResult<Json<versions::Standing>> {
    authz::authorize(&c, Action::DatasetSuspend)?;
    let Json(body) = body?;
    let reason = required(body.reason, "a suspension")?;
    let v = s
        .blocking(move |d| versions::suspend(d, &c.name, &name, version, &reason))
        .await?;
    Ok(Json(v))
}

async fn version_reinstate(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((name, version)): Path<(String, i64)>,
    body: Body<ReasonBody>,
) -> ApiResult<Json<versions::Standing>> {
    authz::authorize(&c, Action::DatasetSuspend)?;
    let Json(body) = body?;
    let reason = required(body.reason, "reinstating a dataset version")?;
    let v = s
        .blocking(move |d| versions::reinstate(d, &c.name, &name, version, &reason))
        .await?;
    Ok(Json(v))
}

async fn version_recall(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((name, version)): Path<(String, i64)>,
    body: Body<ReasonBody>,
) -> ApiResult<Json<Vec<review::Withdrawn>>> {
    authz::authorize(&c, Action::ProductWithdraw)?;
    let Json(body) = body?;
    let reason = required(body.reason, "a recall")?;
    let v = s
        .blocking(move |d| versions::recall(d, &c.name, &name, version, &reason))
        .await?;
    Ok(Json(v))
}

/// A dataset registration: the policy (TOML) and the data as CSV text.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    /// Policy (TOML).
    pub policy: String,
    /// The data, CSV with a header.
    pub csv: String,
    /// The source's file name, recorded with the version (default `upload.csv`).
    #[serde(default)]
    pub file_name: Option<String>,
}

async fn register_dataset(
    State(s): State<AppState>,
    Caller(c): Caller,
    body: Body<RegisterBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    authz::authorize(&c, Action::DatasetRegister)?;
    let Json(body) = body?;
    let file_name = body.file_name.unwrap_or_else(|| "upload.csv".into());
    let v = s
        .blocking(move |d| {
            public_dataset(&catalog::add_csv(
                d,
                &c.name,
                &file_name,
                body.csv.as_bytes(),
                &body.policy,
            )?)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

async fn scenario_list(
    State(s): State<AppState>,
    Caller(c): Caller,
) -> ApiResult<Json<Vec<ScenarioRecord>>> {
    authz::authorize(&c, Action::ScenarioRead)?;
    let list = s.blocking(move |d| scenarios::list(d, &c.name)).await?;
    Ok(Json(list))
}

async fn scenario_get(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ScenarioRecord>> {
    authz::authorize(&c, Action::ScenarioRead)?;
    let r = s
        .blocking(move |d| scenarios::show(d, &c.name, &id))
        .await?;
    Ok(Json(r))
}

/// A scenario application.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyBody {
    /// The scenario (TOML).
    pub spec: String,
}

async fn scenario_apply(
    State(s): State<AppState>,
    Caller(c): Caller,
    body: Body<ApplyBody>,
) -> ApiResult<(StatusCode, Json<ScenarioRecord>)> {
    authz::authorize(&c, Action::ScenarioApply)?;
    let Json(body) = body?;
    let r = s
        .blocking(move |d| scenarios::apply(d, &c.name, &body.spec))
        .await?;
    Ok((StatusCode::CREATED, Json(r)))
}

async fn scenario_decide(
    s: AppState,
    c: Principal,
    id: String,
    body: Body<ReasonBody>,
    approve: bool,
) -> ApiResult<Json<ScenarioRecord>> {
    authz::authorize(&c, Action::ScenarioDecide)?;
    let Json(body) = body?;
    let reason = if approve {
        body.reason
    } else {
        Some(required(body.reason, "a rejection")?)
    };
    let r = s
        .blocking(move |d| scenarios::decide(d, &c.name, &id, approve, reason.as_deref()))
        .await?;
    Ok(Json(r))
}

async fn scenario_approve(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
    body: Body<ReasonBody>,
) -> ApiResult<Json<ScenarioRecord>> {
    scenario_decide(s, c, id, body, true).await
}

async fn scenario_reject(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
    body: Body<ReasonBody>,
) -> ApiResult<Json<ScenarioRecord>> {
    scenario_decide(s, c, id, body, false).await
}

async fn budget(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<scenarios::Balance>> {
    authz::authorize(&c, Action::BudgetRead)?;
    let b = s
        .blocking(move |d| scenarios::budget(d, &c.name, &id))
        .await?;
    Ok(Json(b))
}

async fn scenario_change(
    s: AppState,
    c: Principal,
    id: String,
    body: Body<ReasonBody>,
    change: scenarios::Change,
) -> ApiResult<Json<ScenarioRecord>> {
    authz::authorize(&c, Action::ScenarioStatus)?;
    let Json(body) = body?;
    let reason = required(body.reason, "changing a scenario's status")?;
    let r = s
        .blocking(move |d| scenarios::change(d, &c.name, &id, change, &reason))
        .await?;
    Ok(Json(r))
}

async fn scenario_suspend(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
    body: Body<ReasonBody>,
) -> ApiResult<Json<ScenarioRecord>> {
    scenario_change(s, c, id, body, scenarios::Change::Suspend).await
}

async fn scenario_reinstate(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
    body: Body<ReasonBody>,
) -> ApiResult<Json<ScenarioRecord>> {
    scenario_change(s, c, id, body, scenarios::Change::Reinstate).await
}

async fn scenario_revoke(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
    body: Body<ReasonBody>,
) -> ApiResult<Json<ScenarioRecord>> {
    scenario_change(s, c, id, body, scenarios::Change::Revoke).await
}

async fn usage(
    State(s): State<AppState>,
    Caller(c): Caller,
) -> ApiResult<Json<Vec<scenarios::Usage>>> {
    authz::authorize(&c, Action::UsageRead)?;
    let today = chrono::Utc::now().date_naive();
    Ok(Json(
        s.blocking(move |d| scenarios::usage(d, &c.name, today))
            .await?,
    ))
}

async fn usage_settings(
    State(s): State<AppState>,
    Caller(c): Caller,
) -> ApiResult<Json<scenarios::UsageSettings>> {
    authz::authorize(&c, Action::UsageRead)?;
    Ok(Json(
        s.blocking(move |d| scenarios::usage_settings(d, &c.name))
            .await?,
    ))
}

/// New usage monitoring settings.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageSettingsBody {
    /// Over-scope refusals that suspend a scenario (0: never).
    #[schemars(range(max = 1_000_000))]
    pub max_refusals: u32,
    /// Days without a job after which a scenario is flagged idle.
    #[schemars(range(min = 1, max = 36_500))]
    pub idle_days: u32,
}

async fn usage_settings_set(
    State(s): State<AppState>,
    Caller(c): Caller,
    body: Body<UsageSettingsBody>,
) -> ApiResult<Json<scenarios::UsageSettings>> {
    authz::authorize(&c, Action::UsageSettings)?;
    let Json(body) = body?;
    if body.max_refusals > 1_000_000 || !(1..=36_500).contains(&body.idle_days) {
        return Err(ApiError::bad_request(
            "max_refusals: 0 to 1,000,000; idle_days: 1 to 36,500",
        ));
    }
    let settings = scenarios::UsageSettings {
        max_refusals: body.max_refusals,
        idle_days: body.idle_days,
    };
    Ok(Json(
        s.blocking(move |d| scenarios::set_usage_settings(d, &c.name, settings))
            .await?,
    ))
}

/// A module upload.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModuleBody {
    /// The module (.wasm), base64.
    pub module: String,
}

fn decode_module(text: &str) -> ApiResult<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map_err(|e| ApiError::bad_request(format!("module is not base64: {e}")))
}

async fn module_upload(
    State(s): State<AppState>,
    Caller(c): Caller,
    body: Body<ModuleBody>,
) -> ApiResult<(StatusCode, Json<jobs::ModuleRecord>)> {
    authz::authorize(&c, Action::JobSubmit)?;
    let Json(body) = body?;
    let module = decode_module(&body.module)?;
    let m = s
        .blocking(move |d| jobs::upload_module(d, &c.name, &module))
        .await?;
    Ok((StatusCode::CREATED, Json(m)))
}

/// A job submission.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitBody {
    /// Scenario id or name.
    pub scenario: String,
    /// The module (.wasm), base64; or name an uploaded one by `module_sha256`.
    #[serde(default)]
    pub module: Option<String>,
    /// SHA-256 of a module uploaded before (`POST /modules`).
    #[serde(default)]
    pub module_sha256: Option<String>,
    /// Parameters, a JSON object.
    #[serde(default)]
    pub params: Option<Value>,
    /// Limits.
    #[serde(default)]
    pub limits: Option<SubmittedLimits>,
    /// The job this one answers (a reviewer requested changes on it): the review
    /// request's thread continues with this job's outputs.
    #[serde(default)]
    pub resubmits: Option<String>,
}

/// How long to wait for a submitted job.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitQuery {
    /// Seconds to wait for the job to end before answering (default 0: answer at once).
    #[serde(default)]
    pub wait: Option<f64>,
}

/// Waits (up to `wait`) for a job to end; returns it as it then is.
async fn wait_for(s: &AppState, caller: &str, id: String, wait: Duration) -> ApiResult<JobRecord> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut pause = Duration::from_millis(5);
    loop {
        let (id, caller) = (id.clone(), caller.to_string());
        let job = s.blocking(move |d| jobs::job(d, &caller, &id)).await?;
        if job.status.ended() || tokio::time::Instant::now() >= deadline {
            return Ok(job);
        }
        tokio::time::sleep(pause.min(deadline - tokio::time::Instant::now())).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

async fn job_submit(
    State(s): State<AppState>,
    Caller(c): Caller,
    query: std::result::Result<Query<WaitQuery>, QueryRejection>,
    body: Body<SubmitBody>,
) -> ApiResult<(StatusCode, Json<JobRecord>)> {
    authz::authorize(&c, Action::JobSubmit)?;
    let Query(q) = query?;
    let Json(body) = body?;
    let wait = match q.wait {
        None => Duration::ZERO,
        // Anything beyond the server's limit waits as long as the limit.
        Some(w) if w >= 0.0 => Duration::try_from_secs_f64(w)
            .unwrap_or(s.config.max_wait)
            .min(s.config.max_wait),
        Some(w) => {
            return Err(ApiError::bad_request(format!(
                "wait={w}: seconds, at least 0"
            )));
        }
    };
    let sha = body.module_sha256;
    let module = match (body.module, &sha) {
        (Some(m), None) => Some(decode_module(&m)?),
        (None, Some(_)) => None,
        _ => {
            return Err(ApiError::bad_request(
                "give either `module` (base64) or `module_sha256`",
            ));
        }
    };
    let params = body.params.unwrap_or_else(|| json!({})).to_string();
    let limits = body
        .limits
        .map(SubmittedLimits::request)
        .unwrap_or_default();
    let scenario = body.scenario;
    let resubmits = body.resubmits;
    let caller = c.name.clone();
    let max_queued = s.config.max_queued_per_developer;
    let job = s
        .blocking(move |d| {
            // Membership first: nothing about the queue is told to a non-member.
            let record = scenarios::show(d, &c.name, &scenario)?;
            if jobs::queued(d, Some(&c.name))? >= max_queued {
                return Err(Error::Busy(format!(
                    "{max_queued} of your jobs are waiting already; submit again when one has started"
                )));
            }
            let module = match module {
                Some(m) => m,
                None => jobs::module_bytes(d, sha.as_deref().unwrap_or_default())?,
            };
            jobs::enqueue(
                d,
                &c.name,
                &Submission {
                    scenario: &record.id.to_string(),
                    module: &module,
                    params_json: &params,
                    limits,
                    resubmits: resubmits.as_deref(),
                },
            )
        })
        .await?;
    s.queue.wake();
    let job = if wait.is_zero() {
        job
    } else {
        wait_for(&s, &caller, job.id, wait).await?
    };
    let status = if job.status.ended() {
        StatusCode::CREATED
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(job)))
}

async fn job_thread(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<review::thread::Thread>> {
    authz::authorize(&c, Action::JobRead)?;
    let t = s
        .blocking(move |d| review::thread::thread(d, &c.name, &id))
        .await?;
    Ok(Json(t))
}

/// A comment on a review request.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    /// What to say (at most 4,000 characters).
    pub body: String,
}

async fn job_comment(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
    body: Body<CommentBody>,
) -> ApiResult<(StatusCode, Json<review::thread::Thread>)> {
    authz::authorize(&c, Action::JobRead)?;
    let Json(body) = body?;
    let t = s
        .blocking(move |d| review::thread::comment(d, &c.name, &id, &body.body))
        .await?;
    Ok((StatusCode::CREATED, Json(t)))
}

/// A decision on every output of a job that awaits the caller's tier.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    /// `approve`, `reject` or `request_changes`.
    pub decision: Decision,
    /// Why (needed to reject, to request changes, and to approve what a check flagged).
    #[serde(default)]
    pub reason: Option<String>,
}

async fn job_review(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
    body: Body<ReviewBody>,
) -> ApiResult<Json<Vec<OutputRecord>>> {
    authz::authorize(&c, Action::OutputDecide)?;
    let Json(body) = body?;
    let decided = s
        .blocking(move |d| {
            review::thread::decide_request(d, &c.name, &id, body.decision, body.reason.as_deref())
        })
        .await?;
    Ok(Json(decided))
}

async fn job_get(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<JobRecord>> {
    authz::authorize(&c, Action::JobRead)?;
    let job = s.blocking(move |d| jobs::job(d, &c.name, &id)).await?;
    Ok(Json(job))
}

/// Which jobs to list.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobsQuery {
    /// Only jobs in this status.
    #[serde(default)]
    pub status: Option<String>,
    /// Only this scenario's (id or name).
    #[serde(default)]
    pub scenario: Option<String>,
    /// At most this many, newest first (default 100, at most 1,000).
    #[serde(default)]
    pub limit: Option<i64>,
}

async fn job_list(
    State(s): State<AppState>,
    Caller(c): Caller,
    query: std::result::Result<Query<JobsQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<JobRecord>>> {
    authz::authorize(&c, Action::JobRead)?;
    let Query(q) = query?;
    let status = match q.status.as_deref() {
        Some(st) => Some(JobStatus::parse(st).map_err(|_| {
            ApiError::bad_request(format!(
                "status `{st}`: queued, running, succeeded, failed or cancelled"
            ))
        })?),
        None => None,
    };
    let list = s
        .blocking(move |d| {
            let scenario_id = match q.scenario.as_deref() {
                Some(key) => Some(scenarios::show(d, &c.name, key)?.id),
                None => None,
            };
            jobs::list(
                d,
                &c.name,
                &jobs::JobFilter {
                    submitter: None,
                    scenario_id,
                    status,
                    limit: q.limit,
                },
            )
        })
        .await?;
    Ok(Json(list))
}

async fn job_logs(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    authz::authorize(&c, Action::JobRead)?;
    let v = s
        .blocking(move |d| {
            let job = jobs::job(d, &c.name, &id)?;
            let lines = jobs::logs(d, &c.name, &id)?;
            Ok(json!({"job_id": id, "status": job.status, "lines": lines}))
        })
        .await?;
    Ok(Json(v))
}

async fn job_cancel(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
    body: Body<ReasonBody>,
) -> ApiResult<Json<JobRecord>> {
    authz::authorize(&c, Action::JobCancel)?;
    let Json(body) = body?;
    let job = s
        .blocking(move |d| jobs::cancel(d, &c.name, &id, body.reason.as_deref()))
        .await?;
    Ok(Json(job))
}

/// `GET /metrics`: Prometheus text (operators and supervisors).
pub async fn metrics(State(s): State<AppState>, Caller(c): Caller) -> ApiResult<Response> {
    authz::authorize(&c, Action::UsageRead)?;
    let (metrics, running, slots) = (s.metrics.clone(), s.queue.running(), s.queue.capacity());
    let text = s
        .blocking(move |d| metrics.render(d, &c.name, running, slots))
        .await?;
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(response)
}

/// Which outputs to list.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputsQuery {
    /// `pending` (default: awaiting a review) or `all`.
    #[serde(default)]
    pub status: Option<String>,
}

async fn output_list(
    State(s): State<AppState>,
    Caller(c): Caller,
    query: std::result::Result<Query<OutputsQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<OutputRecord>>> {
    authz::authorize(&c, Action::OutputRead)?;
    let Query(query) = query?;
    let all = match query.status.as_deref() {
        None | Some("pending") => false,
        Some("all") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "status `{other}`: `pending` or `all`"
            )));
        }
    };
    let list = s
        .blocking(move |d| {
            let mut list = jobs::all_outputs(d, &c.name)?;
            if !all {
                list.retain(|o| o.status.pending());
            }
            Ok(list)
        })
        .await?;
    Ok(Json(list))
}

async fn output_get(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<OutputRecord>> {
    authz::authorize(&c, Action::OutputRead)?;
    let o = s.blocking(move |d| jobs::output(d, &c.name, &id)).await?;
    Ok(Json(o))
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("json") => "application/json",
        Some("md") => "text/markdown; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("arrow") => "application/vnd.apache.arrow.file",
        Some("csv") => "text/csv; charset=utf-8",
        Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => "application/octet-stream",
    }
}

/// A file as a download: never rendered in place, never sniffed.
fn download(name: &str, bytes: Vec<u8>) -> Response {
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(name)),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

/// The format a file is downloaded in.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileQuery {
    /// `arrow` (as staged or signed, the default), `csv` or `xlsx` (tables only).
    #[serde(default)]
    pub format: Option<sandbox_runtime::export::Format>,
}

async fn output_file(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
    query: std::result::Result<Query<FileQuery>, QueryRejection>,
) -> ApiResult<Response> {
    authz::authorize(&c, Action::OutputRead)?;
    let Query(q) = query?;
    let format = q.format.unwrap_or(sandbox_runtime::export::Format::Arrow);
    let (name, bytes) = s
        .blocking(move |d| jobs::download_output(d, &c.name, &id, format))
        .await?;
    Ok(download(&name, bytes))
}

async fn output_decide(
    s: AppState,
    c: Principal,
    id: String,
    body: Body<ReasonBody>,
    decision: Decision,
) -> ApiResult<Json<OutputRecord>> {
    authz::authorize(&c, Action::OutputDecide)?;
    let Json(body) = body?;
    let o = s
        .blocking(move |d| review::decide(d, &c.name, &id, decision, body.reason.as_deref()))
        .await?;
    Ok(Json(o))
}

async fn output_approve(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
    body: Body<ReasonBody>,
) -> ApiResult<Json<OutputRecord>> {
    output_decide(s, c, id, body, Decision::Approve).await
}

async fn output_reject(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
    body: Body<ReasonBody>,
) -> ApiResult<Json<OutputRecord>> {
    output_decide(s, c, id, body, Decision::Reject).await
}

async fn output_request_changes(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
    body: Body<ReasonBody>,
) -> ApiResult<Json<OutputRecord>> {
    output_decide(s, c, id, body, Decision::RequestChanges).await
}

async fn scenario_consents(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<consent::Consents>> {
    authz::authorize(&c, Action::ScenarioRead)?;
    let v = s
        .blocking(move |d| consent::consents(d, &c.name, &id))
        .await?;
    Ok(Json(v))
}

/// A provider's or a supervisor's word on a pending scenario.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentBody {
    /// The dataset a provider speaks for (default: every one of the scenario's it
    /// provides); none for a supervisor.
    #[serde(default)]
    pub dataset: Option<String>,
    /// An objection's reasons; absent for no objection.
    #[serde(default)]
    pub objection: Option<String>,
}

async fn scenario_consent(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
    body: Body<ConsentBody>,
) -> ApiResult<Json<consent::Consents>> {
    authz::authorize(&c, Action::ScenarioConsent)?;
    let Json(body) = body?;
    let v = s
        .blocking(move |d| {
            consent::consent(
                d,
                &c.name,
                &id,
                body.dataset.as_deref(),
                body.objection.as_deref(),
            )
        })
        .await?;
    Ok(Json(v))
}

/// The applicant's answer to an objection.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerBody {
    /// Whose objection: `provider` or `supervisor`.
    pub party: String,
    /// The dataset of a provider's objection.
    #[serde(default)]
    pub dataset: Option<String>,
    /// The answer.
    pub answer: String,
}

async fn scenario_answer(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
    body: Body<AnswerBody>,
) -> ApiResult<Json<consent::Consents>> {
    authz::authorize(&c, Action::ScenarioApply)?;
    let Json(body) = body?;
    let party = match body.party.as_str() {
        "provider" => consent::Party::Provider,
        "supervisor" => consent::Party::Supervisor,
        other => {
            return Err(ApiError::bad_request(format!(
                "party `{other}`: provider or supervisor"
            )));
        }
    };
    let v = s
        .blocking(move |d| {
            consent::answer(
                d,
                &c.name,
                &id,
                party,
                body.dataset.as_deref(),
                &body.answer,
            )
        })
        .await?;
    Ok(Json(v))
}

async fn scenario_types(
    State(s): State<AppState>,
    Caller(c): Caller,
) -> ApiResult<Json<Vec<consent::ScenarioType>>> {
    authz::authorize(&c, Action::ScenarioRead)?;
    let v = s.blocking(move |d| consent::types(d, &c.name)).await?;
    Ok(Json(v))
}

/// A scenario type to establish.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TypeBody {
    /// Its name.
    pub name: String,
    /// The scenario (id or name) approved through the whole review it is established from.
    pub scenario: String,
    /// What scenarios of the type do.
    pub description: String,
}

async fn scenario_type_add(
    State(s): State<AppState>,
    Caller(c): Caller,
    body: Body<TypeBody>,
) -> ApiResult<(StatusCode, Json<consent::ScenarioType>)> {
    authz::authorize(&c, Action::ScenarioDecide)?;
    let Json(body) = body?;
    let t = s
        .blocking(move |d| {
            consent::establish_type(d, &c.name, &body.name, &body.scenario, &body.description)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(t)))
}

/// The period and scope of a compliance report.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// First day (YYYY-MM-DD).
    #[schemars(with = "String")]
    pub from: chrono::NaiveDate,
    /// Last day (YYYY-MM-DD).
    #[schemars(with = "String")]
    pub to: chrono::NaiveDate,
    /// One scenario (id or name); the whole domain when absent.
    #[serde(default)]
    pub scenario: Option<String>,
}

/// A compliance report and its signature.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct ReportAnswer {
    /// The report (the exact JSON that was signed, pretty-printed).
    pub report: Value,
    /// Ed25519 signature of its bytes by the domain key, hex.
    pub signature: String,
}

async fn report_compliance(
    State(s): State<AppState>,
    Caller(c): Caller,
    query: std::result::Result<Query<ReportQuery>, QueryRejection>,
) -> ApiResult<Json<ReportAnswer>> {
    authz::authorize(&c, Action::AuditRead)?;
    let Query(q) = query?;
    let scope = match q.scenario {
        Some(key) => report::Scope::Scenario(key),
        None => report::Scope::Domain,
    };
    let (report, signature) = s
        .blocking(move |d| report::compliance(d, &c.name, &scope, q.from, q.to))
        .await?;
    Ok(Json(ReportAnswer { report, signature }))
}

async fn incident_list(
    State(s): State<AppState>,
    Caller(c): Caller,
) -> ApiResult<Json<Vec<incidents::Incident>>> {
    authz::authorize(&c, Action::IncidentManage)?;
    Ok(Json(
        s.blocking(move |d| incidents::list(d, &c.name)).await?,
    ))
}

async fn incident_get(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<i64>,
) -> ApiResult<Json<incidents::Incident>> {
    authz::authorize(&c, Action::IncidentManage)?;
    Ok(Json(
        s.blocking(move |d| incidents::get(d, &c.name, id)).await?,
    ))
}

/// An incident opened.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentBody {
    /// `general`, `relatively_major`, `major` or `especially_major`.
    pub grade: String,
    /// Title.
    pub title: String,
    /// What happened.
    pub description: String,
}

async fn incident_open(
    State(s): State<AppState>,
    Caller(c): Caller,
    body: Body<IncidentBody>,
) -> ApiResult<(StatusCode, Json<incidents::Incident>)> {
    authz::authorize(&c, Action::IncidentManage)?;
    let Json(b) = body?;
    let i = s
        .blocking(move |d| incidents::open(d, &c.name, &b.grade, &b.title, &b.description))
        .await?;
    Ok((StatusCode::CREATED, Json(i)))
}

/// A line of an incident's timeline.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryBody {
    /// `action`, `stop`, `suspension`, `withdrawal`, `report` or `notice`.
    pub kind: String,
    /// A stop's id, a suspended principal or scenario, a withdrawn product.
    #[serde(default)]
    pub reference: Option<String>,
    /// To whom a report or a notice went.
    #[serde(default)]
    pub recipient: Option<String>,
    /// What was done.
    pub text: String,
}

async fn incident_log(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<i64>,
    body: Body<EntryBody>,
) -> ApiResult<(StatusCode, Json<incidents::Incident>)> {
    authz::authorize(&c, Action::IncidentManage)?;
    let Json(b) = body?;
    let i = s
        .blocking(move |d| {
            incidents::log(
                d,
                &c.name,
                id,
                &b.kind,
                b.reference.as_deref(),
                b.recipient.as_deref(),
                &b.text,
            )
        })
        .await?;
    Ok((StatusCode::CREATED, Json(i)))
}

/// How an incident ended.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SummaryBody {
    /// How it ended.
    pub summary: String,
}

async fn incident_close(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<i64>,
    body: Body<SummaryBody>,
) -> ApiResult<Json<incidents::Incident>> {
    authz::authorize(&c, Action::IncidentManage)?;
    let Json(b) = body?;
    Ok(Json(
        s.blocking(move |d| incidents::close(d, &c.name, id, &b.summary))
            .await?,
    ))
}

async fn order_list(
    State(s): State<AppState>,
    Caller(c): Caller,
) -> ApiResult<Json<Vec<incidents::Order>>> {
    authz::authorize(&c, Action::OrderRead)?;
    Ok(Json(
        s.blocking(move |d| incidents::orders(d, &c.name)).await?,
    ))
}

/// A rectification order.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderBody {
    /// `principal` (a developer), `organisation` or `scenario`.
    pub target_kind: String,
    /// The developer's name, the organisation's credit code, the scenario's id or name.
    pub target: String,
    /// What is to be rectified.
    pub requirement: String,
    /// By when: a date (its end, UTC) or an RFC 3339 time.
    pub deadline: String,
}

async fn order_issue(
    State(s): State<AppState>,
    Caller(c): Caller,
    body: Body<OrderBody>,
) -> ApiResult<(StatusCode, Json<incidents::Order>)> {
    authz::authorize(&c, Action::OrderIssue)?;
    let Json(b) = body?;
    let o = s
        .blocking(move |d| {
            incidents::issue(
                d,
                &c.name,
                &b.target_kind,
                &b.target,
                &b.requirement,
                &b.deadline,
            )
        })
        .await?;
    Ok((StatusCode::CREATED, Json(o)))
}

/// An answer to an order.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderAnswerBody {
    /// What was rectified.
    pub answer: String,
}

async fn order_answer(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<i64>,
    body: Body<OrderAnswerBody>,
) -> ApiResult<Json<incidents::Order>> {
    authz::authorize(&c, Action::OrderAnswer)?;
    let Json(b) = body?;
    Ok(Json(
        s.blocking(move |d| incidents::answer(d, &c.name, id, &b.answer))
            .await?,
    ))
}

async fn order_close(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<i64>,
) -> ApiResult<Json<incidents::Order>> {
    authz::authorize(&c, Action::OrderIssue)?;
    Ok(Json(
        s.blocking(move |d| incidents::close_order(d, &c.name, id))
            .await?,
    ))
}

async fn product_list(
    State(s): State<AppState>,
    Caller(c): Caller,
) -> ApiResult<Json<Vec<review::CatalogEntry>>> {
    authz::authorize(&c, Action::ProductRead)?;
    let list = s.blocking(move |d| review::catalog(d, &c.name)).await?;
    Ok(Json(list))
}

/// A product: what the catalog shows of it to everyone; to those entitled, its signed
/// manifest as released (the exact JSON that was signed); and its signed withdrawal
/// notice, if it was withdrawn.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct ProductAnswer {
    /// Product id.
    pub id: String,
    /// The output it releases.
    pub output_id: String,
    /// The catalog's entry.
    pub catalog: review::CatalogEntry,
    /// The manifest, for a caller entitled to the product.
    #[schemars(with = "Option<review::Manifest>")]
    pub manifest: Option<Value>,
    /// Ed25519 signature of the manifest's bytes, hex (with the manifest).
    pub signature: Option<String>,
    /// The signed withdrawal notice, if the product was withdrawn.
    pub withdrawal: Option<Value>,
    /// Its signature, hex.
    pub withdrawal_signature: Option<String>,
}

async fn product_get(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ProductAnswer>> {
    authz::authorize(&c, Action::ProductRead)?;
    let v = s
        .blocking(move |d| {
            let entry = review::catalog_entry(d, &c.name, &id)?;
            let (manifest, signature, withdrawal) = if entry.entitlement.is_some() {
                let p = review::product(d, &c.name, &id)?;
                (Some(p.manifest()?), Some(p.signature()?), p.withdrawal()?)
            } else {
                (None, None, None)
            };
            let (withdrawal, withdrawal_signature) = withdrawal.unzip();
            Ok(ProductAnswer {
                id: entry.id.clone(),
                output_id: entry.output_id.clone(),
                catalog: entry,
                manifest,
                signature,
                withdrawal,
                withdrawal_signature,
            })
        })
        .await?;
    Ok(Json(v))
}

async fn product_file(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((id, name)): Path<(String, String)>,
    query: std::result::Result<Query<FileQuery>, QueryRejection>,
) -> ApiResult<Response> {
    authz::authorize(&c, Action::ProductRead)?;
    let Query(q) = query?;
    let format = q.format.unwrap_or(sandbox_runtime::export::Format::Arrow);
    let (name, bytes) = s
        .blocking(move |d| review::download_product_file(d, &c.name, &id, &name, Some(format)))
        .await?;
    Ok(download(&name, bytes))
}

async fn product_withdraw(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
    body: Body<ReasonBody>,
) -> ApiResult<Json<review::Withdrawn>> {
    authz::authorize(&c, Action::ProductWithdraw)?;
    let Json(body) = body?;
    let reason = required(body.reason, "withdrawing a product")?;
    let w = s
        .blocking(move |d| review::withdraw(d, &c.name, &id, &reason))
        .await?;
    Ok(Json(w))
}

/// A grant of a product.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    /// A data user's name, or `org:` and an organisation's unified social credit code.
    pub grantee: review::Grantee,
}

async fn product_grant(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
    body: Body<GrantBody>,
) -> ApiResult<(StatusCode, Json<Vec<review::Grant>>)> {
    authz::authorize(&c, Action::ProductGrant)?;
    let Json(body) = body?;
    let grants = s
        .blocking(move |d| review::grant(d, &c.name, &id, &body.grantee))
        .await?;
    Ok((StatusCode::CREATED, Json(grants)))
}

async fn product_holders(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<review::Holder>>> {
    authz::authorize(&c, Action::ProductWithdraw)?;
    let h = s
        .blocking(move |d| review::holders(d, &c.name, &id))
        .await?;
    Ok(Json(h))
}

async fn organisation_list(
    State(s): State<AppState>,
    Caller(c): Caller,
) -> ApiResult<Json<Vec<organisations::Organisation>>> {
    authz::authorize(&c, Action::OrganisationRead)?;
    let list = s.blocking(move |d| organisations::list(d, &c.name)).await?;
    Ok(Json(list))
}

async fn organisation_get(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(code): Path<String>,
) -> ApiResult<Json<organisations::Organisation>> {
    authz::authorize(&c, Action::OrganisationRead)?;
    let o = s
        .blocking(move |d| organisations::get(d, &c.name, &code))
        .await?;
    Ok(Json(o))
}

/// An organisation entered in the register.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganisationBody {
    /// Unified social credit code (18 characters, GB 32100-2015).
    pub credit_code: String,
    /// Its entry.
    #[serde(flatten)]
    pub entry: organisations::OrganisationEntry,
}

async fn organisation_register(
    State(s): State<AppState>,
    Caller(c): Caller,
    body: Body<OrganisationBody>,
) -> ApiResult<(StatusCode, Json<organisations::Organisation>)> {
    authz::authorize(&c, Action::OrganisationManage)?;
    let Json(body) = body?;
    let o = s
        .blocking(move |d| organisations::register(d, &c.name, &body.credit_code, &body.entry))
        .await?;
    Ok((StatusCode::CREATED, Json(o)))
}

/// An organisation's entry changed, with a reason.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganisationChangeBody {
    /// Its entry as it is to be.
    #[serde(flatten)]
    pub entry: organisations::OrganisationEntry,
    /// Why (recorded).
    pub reason: String,
}

async fn organisation_change(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(code): Path<String>,
    body: Body<OrganisationChangeBody>,
) -> ApiResult<Json<organisations::Organisation>> {
    authz::authorize(&c, Action::OrganisationManage)?;
    let Json(body) = body?;
    let o = s
        .blocking(move |d| organisations::change(d, &c.name, &code, &body.entry, &body.reason))
        .await?;
    Ok(Json(o))
}

/// How the register is exported.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterQuery {
    /// `json` (default) or `csv`.
    #[serde(default)]
    pub format: Option<organisations::RegisterFormat>,
}

async fn organisation_export(
    State(s): State<AppState>,
    Caller(c): Caller,
    query: std::result::Result<Query<RegisterQuery>, QueryRejection>,
) -> ApiResult<Response> {
    authz::authorize(&c, Action::OrganisationRead)?;
    let Query(q) = query?;
    let format = q.format.unwrap_or(organisations::RegisterFormat::Json);
    let bytes = s
        .blocking(move |d| organisations::export(d, &c.name, format))
        .await?;
    Ok(download(
        match format {
            organisations::RegisterFormat::Json => "organisations.json",
            organisations::RegisterFormat::Csv => "organisations.csv",
        },
        bytes,
    ))
}

/// The organisation a principal belongs to.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MembershipBody {
    /// A registered organisation's unified social credit code; `null` for none.
    pub organisation: Option<String>,
}

async fn principal_organisation(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
    body: Body<MembershipBody>,
) -> ApiResult<Json<Principal>> {
    authz::authorize(&c, Action::OrganisationManage)?;
    let Json(body) = body?;
    let p = s
        .blocking(move |d| organisations::assign(d, &c.name, &name, body.organisation.as_deref()))
        .await?;
    Ok(Json(p))
}

/// A page of audit events.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// First event (default 1).
    #[serde(default)]
    pub from: Option<i64>,
    /// How many (default 100, at most 1,000).
    #[serde(default)]
    pub limit: Option<i64>,
}

async fn audit_events(
    State(s): State<AppState>,
    Caller(c): Caller,
    query: std::result::Result<Query<EventsQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    authz::authorize(&c, Action::AuditRead)?;
    let Query(q) = query?;
    let from = q.from.unwrap_or(1).max(1);
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let page = s
        .blocking(move |d| {
            let (events, size) = audit::page(d, &c.name, from, limit)?;
            let next = events.last().map(|e| e.seq + 1).filter(|n| *n <= size);
            Ok(json!({"events": events, "size": size, "next": next}))
        })
        .await?;
    Ok(Json(page))
}

async fn audit_verify(State(s): State<AppState>, Caller(c): Caller) -> ApiResult<Json<Value>> {
    authz::authorize(&c, Action::AuditRead)?;
    let v = s
        .blocking(move |d| match audit::verify(d, &c.name) {
            Ok(v) => {
                let mut value = serde_json::to_value(v)?;
                if let Some(map) = value.as_object_mut() {
                    map.insert("verified".into(), Value::Bool(true));
                }
                Ok(value)
            }
            Err(Error::Verify(message)) => Ok(json!({"verified": false, "message": message})),
            Err(e) => Err(e),
        })
        .await?;
    Ok(Json(v))
}

/// Which checkpoint a proof is against.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProofQuery {
    /// Size of a signed checkpoint (default: one of the log as it is now).
    #[serde(default)]
    pub size: Option<i64>,
}

async fn audit_proof(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(seq): Path<String>,
    query: std::result::Result<Query<ProofQuery>, QueryRejection>,
) -> ApiResult<Json<audit::InclusionProof>> {
    authz::authorize(&c, Action::AuditRead)?;
    let Query(q) = query?;
    let seq: i64 = seq
        .parse()
        .map_err(|_| ApiError::bad_request(format!("event `{seq}` is not a number")))?;
    let proof = s
        .blocking(move |d| audit::prove_inclusion(d, &c.name, seq, q.size))
        .await?;
    Ok(Json(proof))
}

/// An emergency stop.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StopBody {
    /// `scenario`, `developer` or `domain`.
    pub scope: String,
    /// The scenario (id or name) or the developer's name; none for the domain.
    #[serde(default)]
    pub target: Option<String>,
    /// Why (recorded).
    pub reason: String,
}

async fn stop_impose(
    State(s): State<AppState>,
    Caller(c): Caller,
    body: Body<StopBody>,
) -> ApiResult<(StatusCode, Json<stops::Stop>)> {
    authz::authorize(&c, Action::Stop)?;
    let Json(body) = body?;
    let stop = s
        .blocking(move |d| {
            let target = || {
                body.target
                    .clone()
                    .ok_or_else(|| Error::Invalid(format!("a {} stop needs a target", body.scope)))
            };
            let scope = match body.scope.as_str() {
                "scenario" => stops::Scope::Scenario(scenarios::show(d, &c.name, &target()?)?.id),
                "developer" => stops::Scope::Developer(target()?),
                "domain" => stops::Scope::Domain,
                other => {
                    return Err(Error::Invalid(format!(
                        "scope `{other}`: scenario, developer or domain"
                    )));
                }
            };
            stops::stop(d, &c.name, scope, &body.reason)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(stop)))
}

/// `GET /stops` parameters.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StopsQuery {
    /// Lifted stops too.
    #[serde(default)]
    pub all: bool,
}

async fn stop_list(
    State(s): State<AppState>,
    Caller(c): Caller,
    query: std::result::Result<Query<StopsQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<stops::StopEntry>>> {
    authz::authorize(&c, Action::Stop)?;
    let Query(q) = query?;
    let list = s.blocking(move |d| stops::list(d, &c.name, q.all)).await?;
    Ok(Json(list))
}

async fn stop_lift(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
    body: Body<ReasonBody>,
) -> ApiResult<Json<Value>> {
    authz::authorize(&c, Action::Stop)?;
    let Json(body) = body?;
    let reason = required(body.reason, "lifting a stop")?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("stop `{id}` is not a number")))?;
    s.blocking(move |d| stops::lift(d, &c.name, id, &reason))
        .await?;
    Ok(Json(json!({"id": id, "lifted": true})))
}
