//! The review console: server-rendered pages for the people who decide (QQHR Art. 11(3),
//! 17, 19): operators and supervisors sign in with their API token, see the outputs
//! awaiting their tier with the automated checks and the provenance (every query the job
//! made, with its ε), see tables and charts as they would be released, and approve, reject
//! or request changes with a comment; they read the audit trail, the product registry
//! and each scenario's budget.
//!
//! Decisions go through the same [`review::decide`] as the API and the CLI, which
//! keeps every check (two tiers, two people, neither the submitter, written overrides).
//! Pages carry no script; every response forbids framing, caching and sniffing, and its
//! content security policy allows only this server's stylesheet and images. The session
//! cookie is `HttpOnly` and `SameSite=Strict`, every form carries the session's CSRF
//! secret, and a post from another origin is refused. Every refusal (a bad token, a role
//! that has no console, a bad CSRF value, a decision the domain refuses as not permitted)
//! is a `console.refused` audit event.

pub mod pages;

use axum::Form;
use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::Markup;
use sandbox_core::{Decision, Error, Lang, OutputStatus, Result, Role};
use sandbox_i18n::t;
use sandbox_runtime::audit::{self, EventKind, Subject};
use sandbox_runtime::review::{self, view};
use sandbox_runtime::sessions::{self, Session};
use sandbox_runtime::{jobs, scenarios, settings};
use serde::Deserialize;
use serde_json::json;

use self::pages::Ui;
use crate::AppState;

/// The session cookie's name.
pub const COOKIE: &str = "sandbox_session";

/// The cookie that keeps the language a visitor chose before signing in.
pub const LANG_COOKIE: &str = "sandbox_lang";

/// The console's routes, under `/console`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(dashboard))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/language", post(language))
        .route("/console/jobs/{id}", get(request_page))
        .route("/console/jobs/{id}/comment", post(request_comment))
        .route("/console/jobs/{id}/decide", post(request_decide))
        .route("/console/outputs/{id}", get(output_page))
        .route("/console/outputs/{id}/decide", post(decide))
        .route("/console/outputs/{id}/file", get(output_file))
        .route("/console/audit", get(audit_page))
        .route("/console/reports", get(reports_page))
        .route("/console/oversight", get(oversight_page))
        .route("/console/oversight/act", post(oversight_act))
        .route("/console/orders/{id}/answer", post(order_answer))
        .route("/console/datasets", get(datasets_page))
        .route("/console/datasets/{name}/{version}", get(version_page))
        .route("/console/datasets/{name}/{version}/act", post(version_act))
        .route("/console/products", get(products_page))
        .route("/console/products/{id}", get(product_page))
        .route("/console/products/{id}/files/{name}", get(product_file))
        .route("/console/products/{id}/withdraw", post(product_withdraw))
        .route("/console/scenarios", get(scenarios_page))
        .route("/console/scenarios/{id}", get(scenario_page))
        .route("/console/scenarios/{id}/decide", post(scenario_decide))
        .route("/console/scenarios/{id}/consent", post(scenario_consent))
        .route("/console/static/console.css", get(css))
        .layer(axum::middleware::map_response(protect))
}

/// Headers on every console response.
async fn protect(mut response: Response) -> Response {
    let h = response.headers_mut();
    let set = |h: &mut HeaderMap, name: &'static str, value: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(
        h,
        "content-security-policy",
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, "x-frame-options", "DENY");
    set(h, "x-content-type-options", "nosniff");
    // Same-origin posts then carry their Origin (with `no-referrer` they say `null`).
    set(h, "referrer-policy", "same-origin");
    set(h, "cache-control", "no-store");
    response
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        pages::CSS,
    )
        .into_response()
}

fn cookie_value(headers: &HeaderMap, cookie: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == cookie)
        .map(|(_, value)| value.to_string())
}

/// The language the client asks for: the one a visitor chose on the sign-in page, else
/// the browser's `Accept-Language`.
fn client_language(headers: &HeaderMap) -> Option<Lang> {
    cookie_value(headers, LANG_COOKIE)
        .and_then(|v| Lang::from_tag(&v))
        .or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(Lang::from_accept_language)
        })
}

/// How a page speaks to `principal_choice` (a signed-in principal's own language, if any)
/// with a client asking for `client`, in a domain with `settings`.
fn ui_for(
    principal_choice: Option<Lang>,
    client: Option<Lang>,
    settings: &settings::Settings,
) -> Ui {
    Ui {
        lang: settings::language_for(principal_choice, client, settings),
        tz: sandbox_i18n::time_zone(&settings.time_zone).unwrap_or(sandbox_i18n::DEFAULT_TIME_ZONE),
    }
}

/// How a page speaks to someone not signed in: the language the client asks for, else
/// the domain's default.
pub struct Visitor(pub Ui);

impl FromRequestParts<AppState> for Visitor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Visitor, Response> {
        let client = client_language(&parts.headers);
        match state.blocking(settings::for_display).await {
            Ok(settings) => Ok(Visitor(ui_for(None, client, &settings))),
            Err(e) => Err(internal(fallback_ui(client), None, &e)),
        }
    }
}

/// How to speak when the domain's settings cannot be read.
fn fallback_ui(client: Option<Lang>) -> Ui {
    Ui {
        lang: client.unwrap_or_default(),
        tz: sandbox_i18n::DEFAULT_TIME_ZONE,
    }
}

/// The signed-in operator or supervisor of a console request, and how its pages speak
/// (the principal's own language, else the client's, else the domain's default). Without
/// a valid session, pages redirect to the sign-in page.
pub struct Signed(pub Session, pub Ui);

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Signed, Response> {
        let to_login = || Redirect::to("/console/login").into_response();
        let Some(id) = cookie_value(&parts.headers, COOKIE) else {
            return Err(to_login());
        };
        let client = client_language(&parts.headers);
        let found = state
            .blocking(move |d| Ok((sessions::find(d, &id)?, settings::for_display(d)?)))
            .await;
        match found {
            Ok((Some(s), settings)) => {
                let ui = ui_for(s.principal.language, client, &settings);
                Ok(Signed(s, ui))
            }
            Ok((None, _)) => Err(to_login()),
            Err(e) => Err(internal(fallback_ui(client), None, &e)),
        }
    }
}

fn internal(ui: Ui, session: Option<&Session>, e: &Error) -> Response {
    // What the domain refuses (a page not the principal's to read, a thing that is not
    // there) is said as such; only a failure of the system is a bare 500.
    let status = status_of(e);
    if status.is_client_error() {
        let mut response = page(
            status,
            pages::problem(
                ui,
                session,
                &ui.t("problem-refused"),
                &sandbox_i18n::error(ui.lang, e),
            ),
        );
        // A page the domain refused its reader is recorded, as refused posts are
        // ([`record_refused_pages`], which knows the path).
        if status == StatusCode::FORBIDDEN
            && let Some(s) = session
        {
            response.extensions_mut().insert(RefusedPage {
                actor: s.principal.name.clone(),
                reason: e.to_string(),
            });
        }
        return response;
    }
    tracing::error!(error = %e, "console page failed");
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        pages::problem(
            ui,
            session,
            &ui.t("problem-internal"),
            &ui.t("problem-internal-detail"),
        ),
    )
}

fn page(status: StatusCode, markup: Markup) -> Response {
    (status, markup).into_response()
}

/// The status a domain error gets on a console page: the one mapping
/// ([`Error::status`]), as for the API.
fn status_of(e: &Error) -> StatusCode {
    StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A console page the domain refused to its signed-in reader.
#[derive(Debug, Clone)]
struct RefusedPage {
    actor: String,
    reason: String,
}

/// Records every console page read (GET) answered with a [`RefusedPage`] as a
/// `console.refused` event with its path (posts record theirs where they are refused).
pub async fn record_refused_pages(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    // A refused post is recorded where it is refused (the page shown after it is not).
    if method == "GET"
        && let Some(r) = response.extensions().get::<RefusedPage>().cloned()
    {
        record_refusal(&state, r.actor, &method, &path, r.reason).await;
    }
    response
}

/// Records a refused console call (in its own transaction).
async fn record_refusal(state: &AppState, actor: String, method: &str, path: &str, reason: String) {
    let subject = Subject::Console {
        method: method.to_string(),
        path: path.to_string(),
    };
    let recorded = state
        .blocking(move |d| {
            audit::record_refusal(
                d,
                &actor,
                EventKind::ConsoleRefused,
                &subject,
                json!({"reason": reason}),
            )
        })
        .await;
    if let Err(e) = recorded {
        tracing::error!(error = %e, "a refused console call could not be recorded");
    }
}

/// A post must come from this console: same origin when the browser says where it came
/// from, and the session's CSRF secret.
async fn check_post(
    state: &AppState,
    headers: &HeaderMap,
    (s, ui): (&Session, Ui),
    csrf: &str,
    path: &str,
) -> Option<Response> {
    // Behind a proxy the browser's host may arrive as X-Forwarded-Host; a form on another
    // site can set neither header.
    let hosts: Vec<&str> = [header::HOST.as_str(), "x-forwarded-host"]
        .iter()
        .filter_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
        .collect();
    let cross_origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|origin| {
            let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
            !hosts.contains(&origin_host)
        });
    // Recorded in English (the audit log's language); shown in the page's.
    let (reason, shown) = if cross_origin {
        ("a post from another origin", "refused-cross-origin")
    } else if !sessions::csrf_ok(s, csrf) {
        ("a form without this session's CSRF secret", "refused-csrf")
    } else {
        return None;
    };
    record_refusal(state, s.principal.name.clone(), "POST", path, reason.into()).await;
    Some(page(
        StatusCode::FORBIDDEN,
        pages::problem(ui, Some(s), &ui.t("problem-refused"), &ui.t(shown)),
    ))
}

/// The sign-in page's query: a language the visitor chose.
#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    /// A language tag (`zh-CN`, `en`).
    #[serde(default)]
    pub lang: Option<String>,
}

async fn login_page(
    headers: HeaderMap,
    State(state): State<AppState>,
    Visitor(ui): Visitor,
    query: Result<Query<LoginQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    // Someone signed in already goes to the pending outputs.
    if let Some(id) = cookie_value(&headers, COOKIE)
        && let Ok(Some(_)) = state.blocking(move |d| sessions::find(d, &id)).await
    {
        return Redirect::to("/console/").into_response();
    }
    let chosen = query
        .ok()
        .and_then(|Query(q)| q.lang)
        .and_then(|l| Lang::from_tag(&l));
    let Some(lang) = chosen else {
        return page(StatusCode::OK, pages::login(ui, None));
    };
    // The visitor's choice is kept in a cookie until they sign in (and choose again).
    let ui = Ui { lang, ..ui };
    let mut response = page(StatusCode::OK, pages::login(ui, None));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{LANG_COOKIE}={}; Path=/console; SameSite=Strict; Max-Age=31536000",
        lang.tag()
    )) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    /// An API token.
    pub token: String,
}

async fn login(
    State(state): State<AppState>,
    crate::auth::ClientAddr(client): crate::auth::ClientAddr,
    Visitor(ui): Visitor,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return page(
            StatusCode::BAD_REQUEST,
            pages::login(ui, Some(&ui.t("sign-in-no-token"))),
        );
    };
    let token = form.token.trim().to_string();
    let opened = state
        .blocking(move |d| Ok(sessions::sign_in(d, &token)))
        .await;
    match opened {
        Ok(Ok((id, _))) => {
            let secure = if state.config.secure_cookies {
                "; Secure"
            } else {
                ""
            };
            let cookie = format!(
                "{COOKIE}={id}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
                sessions::SESSION_HOURS * 3600
            );
            let mut response = Redirect::to("/console/").into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, v);
            }
            response
        }
        Ok(Err((e, who))) => {
            let status = status_of(&e);
            // Someone who proved no one, refused too often this minute: counted, not
            // recorded one by one (as for the API).
            if who.is_none() && !state.limiter.admit(&client) {
                return page(
                    StatusCode::TOO_MANY_REQUESTS,
                    pages::login(ui, Some(&ui.t("sign-in-too-many"))),
                );
            }
            record_refusal(
                &state,
                who.unwrap_or_else(|| "anonymous".into()),
                "POST",
                "/console/login",
                e.to_string(),
            )
            .await;
            page(
                status,
                pages::login(ui, Some(&sandbox_i18n::error(ui.lang, &e))),
            )
        }
        Err(e) => internal(ui, None, &e),
    }
}

/// A form that carries only the CSRF secret.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    /// The session's CSRF secret.
    #[serde(default)]
    pub csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Signed(s, ui): Signed,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refused) =
        check_post(&state, &headers, (&s, ui), &form.csrf, "/console/logout").await
    {
        return refused;
    }
    let ended = {
        let s = s.clone();
        state.blocking(move |d| sessions::sign_out(d, &s)).await
    };
    if let Err(e) = ended {
        return internal(ui, Some(&s), &e);
    }
    let mut response = Redirect::to("/console/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "sandbox_session=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    response
}

/// The language switch's form.
#[derive(Debug, Deserialize)]
pub struct LanguageForm {
    /// A language tag (`zh-CN`, `en`).
    pub lang: String,
    /// The session's CSRF secret.
    #[serde(default)]
    pub csrf: String,
}

/// The signed-in principal chooses its language (kept with the principal: the CLI and
/// every later session use it too), then goes back to the page it came from.
async fn language(
    State(state): State<AppState>,
    headers: HeaderMap,
    Signed(s, ui): Signed,
    form: Result<Form<LanguageForm>, FormRejection>,
) -> Response {
    let path = "/console/language";
    let Ok(Form(form)) = form else {
        return page(
            StatusCode::BAD_REQUEST,
            pages::problem(
                ui,
                Some(&s),
                &ui.t("problem-bad-request"),
                &ui.t("language-unknown"),
            ),
        );
    };
    if let Some(refused) = check_post(&state, &headers, (&s, ui), &form.csrf, path).await {
        return refused;
    }
    let Some(lang) = Lang::from_tag(&form.lang) else {
        return page(
            StatusCode::BAD_REQUEST,
            pages::problem(
                ui,
                Some(&s),
                &ui.t("problem-bad-request"),
                &ui.t("language-unknown"),
            ),
        );
    };
    let actor = s.principal.name.clone();
    if let Err(e) = state
        .blocking(move |d| settings::set_language(d, &actor, Some(lang)))
        .await
    {
        return internal(ui, Some(&s), &e);
    }
    // Back where the switch was pressed, when the browser says it was this console.
    let back = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.find("/console/").map(|at| r[at..].to_string()))
        .filter(|p| !p.starts_with("/console/language") && !p.contains("//"))
        .unwrap_or_else(|| "/console/".to_string());
    Redirect::to(&back).into_response()
}

async fn dashboard(State(state): State<AppState>, Signed(s, ui): Signed) -> Response {
    let role = s.principal.role;
    let name = s.principal.name.clone();
    if role == Role::DataUser {
        // A data user receives products and nothing else.
        return Redirect::to("/console/products").into_response();
    }
    if role == Role::Provider {
        // A provider's business here: its word on the scenarios over its datasets.
        return Redirect::to("/console/scenarios").into_response();
    }
    if role == Role::Developer {
        return my_jobs(&state, s, ui, StatusCode::OK, None).await;
    }
    let lists = state
        .blocking(move |d| {
            let operator =
                view::pending(d, &name, &[OutputStatus::Checked, OutputStatus::Flagged])?;
            let supervisor = view::pending(d, &name, &[OutputStatus::OperatorApproved])?;
            Ok(if role == Role::Supervisor {
                (supervisor, operator)
            } else {
                (operator, supervisor)
            })
        })
        .await;
    match lists {
        Ok((mine, others)) => page(StatusCode::OK, pages::dashboard(ui, &s, &mine, &others)),
        Err(e) => internal(ui, Some(&s), &e),
    }
}

/// A developer's console: the rectification orders addressed to them (SYS Art. 31) and
/// their jobs with where each review stands.
async fn my_jobs(
    state: &AppState,
    s: Session,
    ui: Ui,
    status: StatusCode,
    message: Option<(&str, bool)>,
) -> Response {
    let name = s.principal.name.clone();
    let mine = state
        .blocking(move |d| {
            let list = jobs::list(
                d,
                &name,
                &jobs::JobFilter {
                    submitter: None,
                    scenario_id: None,
                    status: None,
                    limit: Some(100),
                },
            )?;
            let mut out = Vec::with_capacity(list.len());
            for j in list {
                let awaiting = if j.outputs.is_empty() {
                    Vec::new()
                } else {
                    review::thread::thread(d, &name, &j.id)?.awaiting
                };
                out.push((j, awaiting));
            }
            let orders: Vec<_> = sandbox_runtime::incidents::orders(d, &name)?
                .into_iter()
                .filter(|o| o.status != "closed")
                .collect();
            Ok((out, orders))
        })
        .await;
    match mine {
        Ok((list, orders)) => page(status, pages::my_jobs(ui, &s, &list, &orders, message)),
        Err(e) => internal(ui, Some(&s), &e),
    }
}

/// A developer answers a rectification order addressed to them, their organisation or
/// their scenario.
async fn order_answer(
    State(state): State<AppState>,
    headers: HeaderMap,
    Signed(s, ui): Signed,
    Path(id): Path<i64>,
    form: Result<Form<RequestDecideForm>, FormRejection>,
) -> Response {
    let path = format!("/console/orders/{id}/answer");
    let Ok(Form(form)) = form else {
        return incomplete(ui, &s);
    };
    if let Some(refused) = check_post(&state, &headers, (&s, ui), &form.csrf, &path).await {
        return refused;
    }
    let actor = s.principal.name.clone();
    let done = state
        .blocking(move |d| sandbox_runtime::incidents::answer(d, &actor, id, &form.reason))
        .await;
    match done {
        Ok(_) => Redirect::to("/console/").into_response(),
        Err(e) => {
            let (status, message) = match refused_post(&state, &s, ui, &path, &e).await {
                Ok(refused) => refused,
                Err(response) => return response,
            };
            if s.principal.role == Role::Developer {
                my_jobs(&state, s, ui, status, Some((&message, true))).await
            } else {
                page(
                    status,
                    pages::problem(ui, Some(&s), &ui.t("problem-refused"), &message),
                )
            }
        }
    }
}

/// What the output page says after a decision.
#[derive(Debug, Default, Deserialize)]
pub struct DoneQuery {
    /// The decision just made.
    #[serde(default)]
    pub done: Option<String>,
}

async fn output_page(
    State(state): State<AppState>,
    Signed(s, ui): Signed,
    Path(id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let name = s.principal.name.clone();
    match state.blocking(move |d| view::view(d, &name, &id)).await {
        Ok(v) => {
            let notice = q.done.map(|d| {
                t!(
                    ui.lang,
                    "decision-recorded",
                    decision = ui.word("decision", &d),
                    status = ui.word("output-status", v.output.status.as_str())
                )
            });
            page(
                StatusCode::OK,
                pages::output(ui, &s, &v, notice.as_deref().map(|n| (n, false))),
            )
        }
        Err(e @ Error::NotFound(_)) => not_found(ui, &s, &e),
        Err(e) => internal(ui, Some(&s), &e),
    }
}

fn not_found(ui: Ui, s: &Session, e: &Error) -> Response {
    page(
        StatusCode::NOT_FOUND,
        pages::problem(
            ui,
            Some(s),
            &ui.t("problem-not-found"),
            &sandbox_i18n::error(ui.lang, e),
        ),
    )
}

/// A decision on an output.
#[derive(Debug, Deserialize)]
pub struct DecideForm {
    /// approve, reject or request_changes.
    pub decision: String,
    /// The comment.
    #[serde(default)]
    pub reason: String,
    /// The session's CSRF secret.
    #[serde(default)]
    pub csrf: String,
}

async fn decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    Signed(s, ui): Signed,
    Path(id): Path<String>,
    form: Result<Form<DecideForm>, FormRejection>,
) -> Response {
    let path = format!("/console/outputs/{id}/decide");
    let Ok(Form(form)) = form else {
        return incomplete(ui, &s);
    };
    if let Some(refused) = check_post(&state, &headers, (&s, ui), &form.csrf, &path).await {
        return refused;
    }
    let decision = match form.decision.as_str() {
        "approve" => Decision::Approve,
        "reject" => Decision::Reject,
        "request_changes" => Decision::RequestChanges,
        _ => {
            return page(
                StatusCode::BAD_REQUEST,
                pages::problem(
                    ui,
                    Some(&s),
                    &ui.t("problem-bad-request"),
                    &ui.t("decide-unknown"),
                ),
            );
        }
    };
    let reason = Some(form.reason.trim().to_string()).filter(|r| !r.is_empty());
    let actor = s.principal.name.clone();
    let decided = {
        let id = id.clone();
        state
            .blocking(move |d| review::decide(d, &actor, &id, decision, reason.as_deref()))
            .await
    };
    match decided {
        Ok(_) => {
            Redirect::to(&format!("/console/outputs/{id}?done={}", form.decision)).into_response()
        }
        Err(e) => {
            let (status, message) = match refused_post(&state, &s, ui, &path, &e).await {
                Ok(refused) => refused,
                Err(response) => return response,
            };
            let name = s.principal.name.clone();
            match state.blocking(move |d| view::view(d, &name, &id)).await {
                Ok(v) => page(status, pages::output(ui, &s, &v, Some((&message, true)))),
                Err(_) => page(
                    status,
                    pages::problem(ui, Some(&s), &ui.t("problem-refused"), &message),
                ),
            }
        }
    }
}

/// What the request page says after a comment or a decision.
#[derive(Debug, Default, Deserialize)]
pub struct RequestQuery {
    /// `comment`, or the decision just made.
    #[serde(default)]
    pub done: Option<String>,
}

async fn request_page(
    State(state): State<AppState>,
    Signed(s, ui): Signed,
    Path(id): Path<String>,
    Query(q): Query<RequestQuery>,
) -> Response {
    let notice = q.done.map(|d| match d.as_str() {
        "comment" => ui.t("thread-posted"),
        other => t!(
            ui.lang,
            "request-decided",
            decision = ui.word("decision", other)
        ),
    });
    request_view(
        &state,
        s,
        ui,
        id,
        StatusCode::OK,
        notice.as_deref().map(|n| (n, false)),
    )
    .await
}

async fn request_view(
    state: &AppState,
    s: Session,
    ui: Ui,
    id: String,
    status: StatusCode,
    message: Option<(&str, bool)>,
) -> Response {
    let name = s.principal.name.clone();
    let job = id.clone();
    match state
        .blocking(move |d| review::thread::thread(d, &name, &job))
        .await
    {
        Ok(t) => page(status, pages::request(ui, &s, &id, &t, message)),
        Err(e @ Error::NotFound(_)) => not_found(ui, &s, &e),
        Err(e) if status_of(&e) == StatusCode::FORBIDDEN => page(
            StatusCode::FORBIDDEN,
            pages::problem(
                ui,
                Some(&s),
                &ui.t("problem-refused"),
                &sandbox_i18n::error(ui.lang, &e),
            ),
        ),
        Err(e) => internal(ui, Some(&s), &e),
    }
}

/// A comment on a review request.
#[derive(Debug, Deserialize)]
pub struct CommentForm {
    /// What to say.
    #[serde(default)]
    pub body: String,
    /// The session's CSRF secret.
    #[serde(default)]
    pub csrf: String,
}

async fn request_comment(
    State(state): State<AppState>,
    headers: HeaderMap,
    Signed(s, ui): Signed,
    Path(id): Path<String>,
    form: Result<Form<CommentForm>, FormRejection>,
) -> Response {
    let path = format!("/console/jobs/{id}/comment");
    let Ok(Form(form)) = form else {
        return page(
            StatusCode::BAD_REQUEST,
            pages::problem(
                ui,
                Some(&s),
                &ui.t("problem-bad-request"),
                &ui.t("thread-incomplete"),
            ),
        );
    };
    if let Some(refused) = check_post(&state, &headers, (&s, ui), &form.csrf, &path).await {
        return refused;
    }
    let actor = s.principal.name.clone();
    let job = id.clone();
    let said = state
        .blocking(move |d| review::thread::comment(d, &actor, &job, &form.body))
        .await;
    match said {
        Ok(_) => Redirect::to(&format!("/console/jobs/{id}?done=comment")).into_response(),
        Err(e) => refused_on_request(&state, s, ui, id, &path, e).await,
    }
}

/// A decision on every output of a request that awaits the reviewer's tier.
#[derive(Debug, Deserialize)]
pub struct RequestDecideForm {
    /// approve, reject or request_changes.
    #[serde(default)]
    pub decision: String,
    /// The comment.
    #[serde(default)]
    pub reason: String,
    /// The session's CSRF secret.
    #[serde(default)]
    pub csrf: String,
}

async fn request_decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    Signed(s, ui): Signed,
    Path(id): Path<String>,
    form: Result<Form<RequestDecideForm>, FormRejection>,
) -> Response {
    let path = format!("/console/jobs/{id}/decide");
    let Ok(Form(form)) = form else {
        return incomplete(ui, &s);
    };
    if let Some(refused) = check_post(&state, &headers, (&s, ui), &form.csrf, &path).await {
        return refused;
    }
    let Ok(decision) = Decision::parse(&form.decision) else {
        return page(
            StatusCode::BAD_REQUEST,
            pages::problem(
                ui,
                Some(&s),
                &ui.t("problem-bad-request"),
                &ui.t("decide-unknown"),
            ),
        );
    };
    let reason = Some(form.reason.trim().to_string()).filter(|r| !r.is_empty());
    let actor = s.principal.name.clone();
    let job = id.clone();
    let decided = state
        .blocking(move |d| {
            review::thread::decide_request(d, &actor, &job, decision, reason.as_deref())
        })
        .await;
    match decided {
        Ok(_) => {
            Redirect::to(&format!("/console/jobs/{id}?done={}", decision.as_str())).into_response()
        }
        Err(e) => refused_on_request(&state, s, ui, id, &path, e).await,
    }
}

/// The request page again, saying why a comment or decision was refused (a forbidden one
/// recorded as the console's refusals are).
async fn refused_on_request(
    state: &AppState,
    s: Session,
    ui: Ui,
    id: String,
    path: &str,
    e: Error,
) -> Response {
    match refused_post(state, &s, ui, path, &e).await {
        Ok((status, message)) => {
            request_view(state, s, ui, id, status, Some((&message, true))).await
        }
        Err(response) => response,
    }
}

/// A post the domain refused: a failure of the system as such (`Err`), else its status
/// and words, the refusal recorded when it was not permitted. The one path every
/// refused console post takes before its page is shown again.
async fn refused_post(
    state: &AppState,
    s: &Session,
    ui: Ui,
    path: &str,
    e: &Error,
) -> std::result::Result<(StatusCode, String), Response> {
    let status = status_of(e);
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        return Err(internal(ui, Some(s), e));
    }
    if status == StatusCode::FORBIDDEN {
        record_refusal(state, s.principal.name.clone(), "POST", path, e.to_string()).await;
    }
    Ok((status, sandbox_i18n::error(ui.lang, e)))
}

fn image_response(name: &str, bytes: Vec<u8>) -> Response {
    let ty = if name.ends_with(".svg") {
        "image/svg+xml"
    } else if name.ends_with(".png") {
        "image/png"
    } else {
        "application/octet-stream"
    };
    let mut response = bytes.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ty));
    // Shown as an image only: no scripts, no loads, even if opened on its own.
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
    );
    response
}

/// A table asked for as CSV or XLSX.
#[derive(Debug, Default, Deserialize)]
pub struct FormatQuery {
    /// `csv` or `xlsx`.
    #[serde(default)]
    pub format: Option<String>,
}

/// The answer to a form that came without the fields it needs.
fn incomplete(ui: Ui, s: &Session) -> Response {
    page(
        StatusCode::BAD_REQUEST,
        pages::problem(
            ui,
            Some(s),
            &ui.t("problem-bad-request"),
            &ui.t("decide-incomplete"),
        ),
    )
}

/// A converted table or a signed report, as an attachment.
fn attachment(name: &str, bytes: Vec<u8>) -> Response {
    let ty = if name.ends_with(".csv") {
        "text/csv; charset=utf-8"
    } else if name.ends_with(".xlsx") {
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    } else if name.ends_with(".json") {
        "application/json"
    } else {
        "application/octet-stream"
    };
    let mut response = bytes.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ty));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

async fn output_file(
    State(state): State<AppState>,
    Signed(s, ui): Signed,
    Path(id): Path<String>,
    Query(q): Query<FormatQuery>,
) -> Response {
    let name = s.principal.name.clone();
    let file = state
        .blocking(move |d| {
            if let Some(format) = &q.format {
                // A download: recorded by the one path downloads go through.
                let format = sandbox_runtime::export::Format::parse(format)?;
                let (name, bytes) = jobs::download_output(d, &name, &id, format)?;
                return Ok((name, bytes, true));
            }
            // An image shown inline on the output's page: a view, as the page is.
            let o = jobs::output(d, &name, &id)?;
            if !matches!(o.kind.as_str(), "chart" | "image") {
                return Err(Error::NotFound(format!("an image for output {id}")));
            }
            Ok((o.file_name.clone(), jobs::staged_file(d, &o)?, false))
        })
        .await;
    match file {
        Ok((name, bytes, true)) => attachment(&name, bytes),
        Ok((name, bytes, false)) => image_response(&name, bytes),
        Err(e @ Error::Invalid(_)) => page(
            StatusCode::BAD_REQUEST,
            pages::problem(
                ui,
                Some(&s),
                &ui.t("problem-bad-request"),
                &sandbox_i18n::error(ui.lang, &e),
            ),
        ),
        Err(e @ Error::NotFound(_)) => not_found(ui, &s, &e),
        Err(e) => internal(ui, Some(&s), &e),
    }
}

/// Which page of the audit trail.
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    /// First event.
    #[serde(default)]
    pub from: Option<i64>,
    /// Verify the whole log too.
    #[serde(default)]
    pub verify: Option<u8>,
}

const AUDIT_PAGE: i64 = 100;

/// The period and scope of a compliance report asked for in the console.
#[derive(Debug, Default, Deserialize)]
pub struct ReportForm {
    /// First day.
    #[serde(default)]
    pub from: Option<String>,
    /// Last day.
    #[serde(default)]
    pub to: Option<String>,
    /// One scenario (empty: the domain).
    #[serde(default)]
    pub scenario: Option<String>,
    /// `json`: the report signed, as a download to verify offline.
    #[serde(default)]
    pub format: Option<String>,
}

/// Compliance reports (B8): the form, and the report it asks for, each requirement with
/// the articles behind it and the events that evidence it.
async fn reports_page(
    State(state): State<AppState>,
    Signed(s, ui): Signed,
    Query(q): Query<ReportForm>,
) -> Response {
    let dates = q.from.as_deref().zip(q.to.as_deref()).map(|(f, t)| {
        let parse = |d: &str| chrono::NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d");
        parse(f).and_then(|f| parse(t).map(|t| (f, t)))
    });
    let report = match dates {
        None => Ok(None),
        Some(Err(_)) => Err(Error::Invalid("dates are written YYYY-MM-DD".into())),
        Some(Ok((from, to))) => {
            let name = s.principal.name.clone();
            let scope = match q
                .scenario
                .as_deref()
                .map(str::trim)
                .filter(|x| !x.is_empty())
            {
                Some(key) => sandbox_runtime::report::Scope::Scenario(key.to_string()),
                None => sandbox_runtime::report::Scope::Domain,
            };
            state
                .blocking(move |d| sandbox_runtime::report::compliance(d, &name, &scope, from, to))
                .await
                .map(Some)
        }
    };
    match report {
        Ok(Some((r, signature))) if q.format.as_deref() == Some("json") => {
            match sandbox_runtime::report::signed_document(&r, &signature) {
                Ok(bytes) => {
                    let name = format!(
                        "compliance-report-{}-{}.json",
                        q.from.as_deref().unwrap_or("").trim(),
                        q.to.as_deref().unwrap_or("").trim()
                    );
                    attachment(&name, bytes)
                }
                Err(e) => internal(ui, Some(&s), &e),
            }
        }
        Ok(r) => page(
            StatusCode::OK,
            pages::reports(
                ui,
                &s,
                &q,
                r.as_ref().map(|(r, sig)| (r, sig.as_str())),
                None,
            ),
        ),
        Err(e) if status_of(&e) != StatusCode::INTERNAL_SERVER_ERROR => page(
            status_of(&e),
            pages::reports(ui, &s, &q, None, Some(&sandbox_i18n::error(ui.lang, &e))),
        ),
        Err(e) => internal(ui, Some(&s), &e),
    }
}

async fn audit_page(
    State(state): State<AppState>,
    Signed(s, ui): Signed,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let name = s.principal.name.clone();
    let read = state
        .blocking(move |d| {
            let (_, size) = audit::page(d, &name, 1, 1)?;
            // The newest page by default.
            let from = q
                .from
                .unwrap_or_else(|| (size - AUDIT_PAGE + 1).max(1))
                .clamp(1, size.max(1));
            let (events, size) = audit::page(d, &name, from, AUDIT_PAGE)?;
            let verified = if q.verify == Some(1) {
                Some(match audit::verify(d, &name) {
                    Ok(v) => Ok(t!(
                        ui.lang,
                        "audit-verified",
                        events = v.events,
                        checkpoints = v.checkpoints,
                        root = v.root.as_str()
                    )),
                    Err(Error::Verify(m)) => {
                        Err(t!(ui.lang, "audit-verify-failed", why = m.as_str()))
                    }
                    Err(e) => return Err(e),
                })
            } else {
                None
            };
            Ok((events, size, from, verified))
        })
        .await;
    match read {
        Ok((events, size, from, verified)) => page(
            StatusCode::OK,
            pages::audit(ui, &s, &events, size, from, AUDIT_PAGE, verified),
        ),
        Err(e) => internal(ui, Some(&s), &e),
    }
}

async fn products_page(State(state): State<AppState>, Signed(s, ui): Signed) -> Response {
    let who = s.principal.name.clone();
    let list = state
        .blocking(move |d| {
            let mut list = review::catalog(d, &who)?;
            list.reverse();
            Ok(list)
        })
        .await;
    match list {
        Ok(list) => page(StatusCode::OK, pages::products(ui, &s, &list)),
        Err(e) => internal(ui, Some(&s), &e),
    }
}

/// What the product page says after a withdrawal.
#[derive(Debug, Default, Deserialize)]
pub struct ProductQuery {
    /// `withdrawn` after a withdrawal.
    #[serde(default)]
    pub done: Option<String>,
}

async fn product_page(
    State(state): State<AppState>,
    Signed(s, ui): Signed,
    Path(id): Path<String>,
    Query(q): Query<ProductQuery>,
) -> Response {
    let notice = (q.done.as_deref() == Some("withdrawn")).then(|| ui.t("product-withdrawn-done"));
    product_view(
        &state,
        s,
        ui,
        id,
        StatusCode::OK,
        notice.as_deref().map(|n| (n, false)),
    )
    .await
}

async fn product_view(
    state: &AppState,
    s: Session,
    ui: Ui,
    id: String,
    status: StatusCode,
    message: Option<(&str, bool)>,
) -> Response {
    let name = s.principal.name.clone();
    let overseer = matches!(s.principal.role, Role::Operator | Role::Supervisor);
    let got = state
        .blocking(move |d| {
            let entry = review::catalog_entry(d, &name, &id)?;
            let signed = if entry.entitlement.is_some() {
                let p = review::product(d, &name, &id)?;
                Some((p.manifest()?, p.signature()?))
            } else {
                None
            };
            let holders = if overseer {
                review::holders(d, &name, &id)?
            } else {
                Vec::new()
            };
            Ok((entry, signed, holders))
        })
        .await;
    match got {
        Ok((entry, signed, holders)) => page(
            status,
            pages::product(
                ui,
                &s,
                &pages::ProductPage {
                    entry: &entry,
                    signed: signed.as_ref().map(|(m, sig)| (m, sig.as_str())),
                    holders: &holders,
                },
                message,
            ),
        ),
        Err(e @ Error::NotFound(_)) => not_found(ui, &s, &e),
        Err(e) => internal(ui, Some(&s), &e),
    }
}

/// A withdrawal from the console.
#[derive(Debug, Deserialize)]
pub struct WithdrawForm {
    /// Why.
    #[serde(default)]
    pub reason: String,
    /// The confirmation the browser requires ticked.
    #[serde(default)]
    pub confirm: Option<String>,
    /// The session's CSRF secret.
    #[serde(default)]
    pub csrf: String,
}

async fn product_withdraw(
    State(state): State<AppState>,
    headers: HeaderMap,
    Signed(s, ui): Signed,
    Path(id): Path<String>,
    form: Result<Form<WithdrawForm>, FormRejection>,
) -> Response {
    let path = format!("/console/products/{id}/withdraw");
    let Ok(Form(form)) = form else {
        return incomplete(ui, &s);
    };
    if let Some(refused) = check_post(&state, &headers, (&s, ui), &form.csrf, &path).await {
        return refused;
    }
    let withdrawn = if form.confirm.as_deref() != Some("yes") {
        Err(Error::Invalid(
            "confirm the withdrawal: it cannot be undone".into(),
        ))
    } else {
        let actor = s.principal.name.clone();
        let key = id.clone();
        let reason = form.reason;
        state
            .blocking(move |d| review::withdraw(d, &actor, &key, &reason))
            .await
    };
    match withdrawn {
        Ok(_) => Redirect::to(&format!("/console/products/{id}?done=withdrawn")).into_response(),
        Err(e) => {
            let (status, message) = match refused_post(&state, &s, ui, &path, &e).await {
                Ok(refused) => refused,
                Err(response) => return response,
            };
            product_view(&state, s, ui, id, status, Some((&message, true))).await
        }
    }
}

async fn product_file(
    State(state): State<AppState>,
    Signed(s, ui): Signed,
    Path((id, name)): Path<(String, String)>,
    Query(q): Query<FormatQuery>,
) -> Response {
    let who = s.principal.name.clone();
    let file = state
        .blocking(move |d| {
            let format = q
                .format
                .as_deref()
                .map(sandbox_runtime::export::Format::parse)
                .transpose()?;
            review::download_product_file(d, &who, &id, &name, format)
        })
        .await;
    match file {
        Ok((name, bytes)) if name.ends_with(".csv") || name.ends_with(".xlsx") => {
            attachment(&name, bytes)
        }
        Err(e @ Error::Invalid(_)) => page(
            StatusCode::BAD_REQUEST,
            pages::problem(
                ui,
                Some(&s),
                &ui.t("problem-bad-request"),
                &sandbox_i18n::error(ui.lang, &e),
            ),
        ),
        Ok((name, bytes)) if name.ends_with(".svg") || name.ends_with(".png") => {
            image_response(&name, bytes)
        }
        Ok((name, bytes)) => {
            let mut response = bytes.into_response();
            let h = response.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            response
        }
        Err(e @ Error::NotFound(_)) => not_found(ui, &s, &e),
        // Refused by the one download path, which recorded it.
        Err(e @ (Error::Forbidden(_) | Error::Withdrawn(_))) => page(
            status_of(&e),
            pages::problem(
                ui,
                Some(&s),
                &ui.t("problem-refused"),
                &sandbox_i18n::error(ui.lang, &e),
            ),
        ),
        Err(e) => internal(ui, Some(&s), &e),
    }
}

/// A scenario and the columns it asks for, each with its policy's classification.
type ScenarioView = (
    scenarios::ScenarioRecord,
    Vec<pages::AskedColumn>,
    sandbox_runtime::consent::Consents,
    // The datasets of it the reader registered.
    Vec<String>,
);

/// The datasets of scenario `r` that `actor` registered (none unless a provider).
fn registered_by(
    d: &sandbox_runtime::Domain,
    actor: &str,
    r: &scenarios::ScenarioRecord,
) -> Result<Vec<String>> {
    let mut mine = Vec::new();
    for ds in &r.spec.datasets {
        if sandbox_runtime::catalog::get(d, actor, &ds.name)?.registered_by == actor {
            mine.push(ds.name.clone());
        }
    }
    Ok(mine)
}

fn scenario_view(d: &sandbox_runtime::Domain, actor: &str, id: &str) -> Result<ScenarioView> {
    let r = scenarios::show(d, actor, id)?;
    let consents = sandbox_runtime::consent::consents(d, actor, id)?;
    let mut columns = Vec::new();
    let mut mine = Vec::new();
    for ds in &r.spec.datasets {
        let v = sandbox_runtime::catalog::get(d, actor, &ds.name)?;
        if v.registered_by == actor {
            mine.push(ds.name.clone());
        }
        for name in &ds.columns {
            let c = v.policy.column(name);
            columns.push(pages::AskedColumn {
                dataset: ds.name.clone(),
                name: name.clone(),
                level: c.map_or(0, |c| c.level.get()),
                access: c.map_or_else(String::new, |c| c.access.as_str().to_string()),
                desensitized: c
                    .and_then(|c| c.desensitize.as_ref())
                    .and_then(|d| serde_json::to_value(d).ok())
                    .map(|v| match v {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    }),
                description: c.and_then(|c| c.description.clone()),
            });
        }
    }
    Ok((r, columns, consents, mine))
}

async fn scenario_page(
    State(state): State<AppState>,
    Signed(s, ui): Signed,
    Path(id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let name = s.principal.name.clone();
    match state.blocking(move |d| scenario_view(d, &name, &id)).await {
        Ok((r, columns, consents, mine)) => {
            let notice = q.done.map(|_| {
                t!(
                    ui.lang,
                    "scenario-decided",
                    status = ui.word("scenario-status", r.status.as_str())
                )
            });
            page(
                StatusCode::OK,
                pages::scenario(
                    ui,
                    &s,
                    &r,
                    &columns,
                    &consents,
                    &mine,
                    notice.as_deref().map(|n| (n, false)),
                ),
            )
        }
        Err(e @ Error::NotFound(_)) => not_found(ui, &s, &e),
        Err(e) if status_of(&e) == StatusCode::FORBIDDEN => page(
            StatusCode::FORBIDDEN,
            pages::problem(
                ui,
                Some(&s),
                &ui.t("problem-refused"),
                &sandbox_i18n::error(ui.lang, &e),
            ),
        ),
        Err(e) => internal(ui, Some(&s), &e),
    }
}

async fn scenario_decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    Signed(s, ui): Signed,
    Path(id): Path<String>,
    form: Result<Form<RequestDecideForm>, FormRejection>,
) -> Response {
    let path = format!("/console/scenarios/{id}/decide");
    let Ok(Form(form)) = form else {
        return incomplete(ui, &s);
    };
    if let Some(refused) = check_post(&state, &headers, (&s, ui), &form.csrf, &path).await {
        return refused;
    }
    let approve = match form.decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => {
            return page(
                StatusCode::BAD_REQUEST,
                pages::problem(
                    ui,
                    Some(&s),
                    &ui.t("problem-bad-request"),
                    &ui.t("decide-unknown"),
                ),
            );
        }
    };
    let reason = Some(form.reason.trim().to_string()).filter(|r| !r.is_empty());
    if !approve && reason.is_none() {
        let e = Error::Invalid("a rejection needs a reason".into());
        return scenario_refused(&state, s, ui, id, &path, e).await;
    }
    let actor = s.principal.name.clone();
    let key = id.clone();
    let decided = state
        .blocking(move |d| scenarios::decide(d, &actor, &key, approve, reason.as_deref()))
        .await;
    match decided {
        Ok(_) => Redirect::to(&format!("/console/scenarios/{id}?done=1")).into_response(),
        Err(e) => scenario_refused(&state, s, ui, id, &path, e).await,
    }
}

/// A supervisor's word on a pending scenario (JZ Art. 11): `no_objection`, or `objection`
/// with its reasons.
async fn scenario_consent(
    State(state): State<AppState>,
    headers: HeaderMap,
    Signed(s, ui): Signed,
    Path(id): Path<String>,
    form: Result<Form<RequestDecideForm>, FormRejection>,
) -> Response {
    let path = format!("/console/scenarios/{id}/consent");
    let Ok(Form(form)) = form else {
        return incomplete(ui, &s);
    };
    if let Some(refused) = check_post(&state, &headers, (&s, ui), &form.csrf, &path).await {
        return refused;
    }
    let objection = match form.decision.as_str() {
        "no_objection" => None,
        "objection" => Some(form.reason.trim().to_string()),
        _ => {
            return page(
                StatusCode::BAD_REQUEST,
                pages::problem(
                    ui,
                    Some(&s),
                    &ui.t("problem-bad-request"),
                    &ui.t("decide-unknown"),
                ),
            );
        }
    };
    let actor = s.principal.name.clone();
    let key = id.clone();
    let done = state
        .blocking(move |d| {
            sandbox_runtime::consent::consent(d, &actor, &key, None, objection.as_deref())
        })
        .await;
    match done {
        Ok(_) => Redirect::to(&format!("/console/scenarios/{id}?done=1")).into_response(),
        Err(e) => scenario_refused(&state, s, ui, id, &path, e).await,
    }
}

async fn scenario_refused(
    state: &AppState,
    s: Session,
    ui: Ui,
    id: String,
    path: &str,
    e: Error,
) -> Response {
    let (status, message) = match refused_post(state, &s, ui, path, &e).await {
        Ok(refused) => refused,
        Err(response) => return response,
    };
    let name = s.principal.name.clone();
    match state.blocking(move |d| scenario_view(d, &name, &id)).await {
        Ok((r, columns, consents, mine)) => page(
            status,
            pages::scenario(
                ui,
                &s,
                &r,
                &columns,
                &consents,
                &mine,
                Some((&message, true)),
            ),
        ),
        Err(_) => page(
            status,
            pages::problem(ui, Some(&s), &ui.t("problem-refused"), &message),
        ),
    }
}

/// Oversight (QQHR Art. 14, 20, 23; SYS Art. 31): incidents with their timelines,
/// rectification orders and where each stands, the register of organisations.
async fn oversight_page(
    State(state): State<AppState>,
    Signed(s, ui): Signed,
    Query(q): Query<DoneQuery>,
) -> Response {
    let notice = q.done.map(|_| ui.t("oversight-recorded"));
    oversight_view(
        &state,
        s,
        ui,
        StatusCode::OK,
        notice.as_deref().map(|n| (n, false)),
    )
    .await
}

/// What a form on the oversight page sends: the action and the fields it uses.
#[derive(Debug, Default, Deserialize)]
pub struct OversightForm {
    /// `open`, `log`, `close` (an incident), `issue`, `close_order`.
    #[serde(default)]
    pub action: String,
    /// The incident's or the order's id.
    #[serde(default)]
    pub id: String,
    /// An incident's grade.
    #[serde(default)]
    pub grade: String,
    /// An incident's title.
    #[serde(default)]
    pub title: String,
    /// An entry's kind, or an order's target kind.
    #[serde(default)]
    pub kind: String,
    /// What an entry refers to.
    #[serde(default)]
    pub reference: String,
    /// To whom a report or notice went.
    #[serde(default)]
    pub recipient: String,
    /// An order's target.
    #[serde(default)]
    pub target: String,
    /// An order's deadline.
    #[serde(default)]
    pub deadline: String,
    /// The description, the entry, the summary, the requirement or the reason.
    #[serde(default)]
    pub text: String,
    /// An organisation's unified social credit code.
    #[serde(default)]
    pub code: String,
    /// An organisation's name.
    #[serde(default)]
    pub name: String,
    /// Its security officer.
    #[serde(default)]
    pub officer: String,
    /// How to reach the officer.
    #[serde(default)]
    pub contact: String,
    /// The last day of its qualification.
    #[serde(default)]
    pub qualified_until: String,
    /// Its ε cap (empty: none).
    #[serde(default)]
    pub epsilon_cap: String,
    /// The session's CSRF secret.
    #[serde(default)]
    pub csrf: String,
}

/// Operators and supervisors record incidents (open, log, close); supervisors issue and
/// close rectification orders; operators enter and change organisations: from the
/// oversight page.
async fn oversight_act(
    State(state): State<AppState>,
    headers: HeaderMap,
    Signed(s, ui): Signed,
    form: Result<Form<OversightForm>, FormRejection>,
) -> Response {
    let path = "/console/oversight/act";
    let Ok(Form(f)) = form else {
        return incomplete(ui, &s);
    };
    if let Some(refused) = check_post(&state, &headers, (&s, ui), &f.csrf, path).await {
        return refused;
    }
    let actor = s.principal.name.clone();
    let done = state
        .blocking(move |d| {
            use sandbox_runtime::incidents;
            let id = || {
                f.id.trim()
                    .parse::<i64>()
                    .map_err(|_| Error::Invalid(format!("`{}` is not an id", f.id)))
            };
            let some = |v: &str| Some(v.trim()).filter(|v| !v.is_empty()).map(str::to_string);
            match f.action.as_str() {
                "open" => incidents::open(d, &actor, &f.grade, &f.title, &f.text).map(|_| ()),
                "log" => incidents::log(
                    d,
                    &actor,
                    id()?,
                    &f.kind,
                    some(&f.reference).as_deref(),
                    some(&f.recipient).as_deref(),
                    &f.text,
                )
                .map(|_| ()),
                "close" => incidents::close(d, &actor, id()?, &f.text).map(|_| ()),
                "issue" => {
                    incidents::issue(d, &actor, &f.kind, f.target.trim(), &f.text, &f.deadline)
                        .map(|_| ())
                }
                "close_order" => incidents::close_order(d, &actor, id()?).map(|_| ()),
                "org_add" | "org_set" => {
                    use sandbox_runtime::organisations::{self, OrganisationEntry};
                    let cap = f.epsilon_cap.trim();
                    let epsilon_cap = if cap.is_empty() {
                        None
                    } else {
                        Some(cap.parse::<f64>().map_err(|_| {
                            Error::Invalid(format!("ε cap `{cap}` is not a number"))
                        })?)
                    };
                    let entry = OrganisationEntry {
                        name: f.name.clone(),
                        security_officer: f.officer.clone(),
                        security_contact: f.contact.clone(),
                        qualified_until: f.qualified_until.trim().to_string(),
                        epsilon_cap,
                    };
                    if f.action == "org_add" {
                        organisations::register(d, &actor, &f.code, &entry).map(|_| ())
                    } else {
                        organisations::change(d, &actor, &f.code, &entry, &f.text).map(|_| ())
                    }
                }
                other => Err(Error::Invalid(format!(
                    "`{other}`: open, log, close, issue, close_order, org_add or org_set"
                ))),
            }
        })
        .await;
    match done {
        Ok(()) => Redirect::to("/console/oversight?done=1").into_response(),
        Err(e) => {
            let (status, message) = match refused_post(&state, &s, ui, path, &e).await {
                Ok(refused) => refused,
                Err(response) => return response,
            };
            oversight_view(&state, s, ui, status, Some((&message, true))).await
        }
    }
}

async fn oversight_view(
    state: &AppState,
    s: Session,
    ui: Ui,
    status: StatusCode,
    message: Option<(&str, bool)>,
) -> Response {
    let name = s.principal.name.clone();
    let read = state
        .blocking(move |d| {
            Ok((
                sandbox_runtime::incidents::list(d, &name)?,
                sandbox_runtime::incidents::orders(d, &name)?,
                sandbox_runtime::organisations::list(d, &name)?,
            ))
        })
        .await;
    match read {
        Ok((incidents, orders, organisations)) => page(
            status,
            pages::oversight(ui, &s, &incidents, &orders, &organisations, message),
        ),
        Err(e) if status_of(&e) == StatusCode::FORBIDDEN => page(
            StatusCode::FORBIDDEN,
            pages::problem(
                ui,
                Some(&s),
                &ui.t("problem-refused"),
                &sandbox_i18n::error(ui.lang, &e),
            ),
        ),
        Err(e) => internal(ui, Some(&s), &e),
    }
}

/// The catalog (SYS Art. 12): every dataset's current version, its provider, share type,
/// the scenarios authorized over it, and whether it is retired.
async fn datasets_page(State(state): State<AppState>, Signed(s, ui): Signed) -> Response {
    let name = s.principal.name.clone();
    match state
        .blocking(move |d| sandbox_runtime::catalog::list(d, &name))
        .await
    {
        Ok(list) => page(StatusCode::OK, pages::datasets(ui, &s, &list)),
        Err(e) => internal(ui, Some(&s), &e),
    }
}

async fn version_page(
    State(state): State<AppState>,
    Signed(s, ui): Signed,
    Path((dataset, version)): Path<(String, i64)>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let notice = q.done.map(|_| ui.t("version-done"));
    version_view(
        &state,
        s,
        ui,
        dataset,
        version,
        StatusCode::OK,
        notice.as_deref().map(|n| (n, false)),
    )
    .await
}

async fn version_view(
    state: &AppState,
    s: Session,
    ui: Ui,
    dataset: String,
    version: i64,
    status: StatusCode,
    message: Option<(&str, bool)>,
) -> Response {
    let name = s.principal.name.clone();
    match state
        .blocking(move |d| sandbox_runtime::versions::show(d, &name, &dataset, version))
        .await
    {
        Ok(v) => page(status, pages::version(ui, &s, &v, message)),
        Err(e @ Error::NotFound(_)) => not_found(ui, &s, &e),
        Err(e) => internal(ui, Some(&s), &e),
    }
}

/// An operator or the provider who registered it suspends or reinstates a dataset version,
/// its provider objects to it, an operator or a supervisor recalls its products, from the
/// console.
async fn version_act(
    State(state): State<AppState>,
    headers: HeaderMap,
    Signed(s, ui): Signed,
    Path((dataset, version)): Path<(String, i64)>,
    form: Result<Form<RequestDecideForm>, FormRejection>,
) -> Response {
    let path = format!("/console/datasets/{dataset}/{version}/act");
    let Ok(Form(form)) = form else {
        return incomplete(ui, &s);
    };
    if let Some(refused) = check_post(&state, &headers, (&s, ui), &form.csrf, &path).await {
        return refused;
    }
    let actor = s.principal.name.clone();
    let (name, decision, reason) = (dataset.clone(), form.decision.clone(), form.reason.clone());
    let done = state
        .blocking(move |d| {
            use sandbox_runtime::versions;
            match decision.as_str() {
                "suspend" => versions::suspend(d, &actor, &name, version, &reason).map(|_| ()),
                "reinstate" => versions::reinstate(d, &actor, &name, version, &reason).map(|_| ()),
                "recall" => versions::recall(d, &actor, &name, version, &reason).map(|_| ()),
                "object" => versions::object(d, &actor, &name, version, &reason).map(|_| ()),
                _ => Err(Error::Invalid(
                    "object, suspend, reinstate or recall".into(),
                )),
            }
        })
        .await;
    match done {
        Ok(()) => {
            Redirect::to(&format!("/console/datasets/{dataset}/{version}?done=1")).into_response()
        }
        Err(e) => {
            let (status, message) = match refused_post(&state, &s, ui, &path, &e).await {
                Ok(refused) => refused,
                Err(response) => return response,
            };
            version_view(
                &state,
                s,
                ui,
                dataset,
                version,
                status,
                Some((&message, true)),
            )
            .await
        }
    }
}

async fn scenarios_page(State(state): State<AppState>, Signed(s, ui): Signed) -> Response {
    let today = chrono::Utc::now().date_naive();
    let name = s.principal.name.clone();
    if s.principal.role == Role::Provider {
        let rows = state
            .blocking(move |d| {
                let mut rows = Vec::new();
                for r in scenarios::list(d, &name)? {
                    let consents = sandbox_runtime::consent::consents(d, &name, &r.id.to_string())?;
                    let mine = registered_by(d, &name, &r)?;
                    rows.push((r, consents, mine));
                }
                rows.reverse();
                Ok(rows)
            })
            .await;
        return match rows {
            Ok(rows) => page(StatusCode::OK, pages::provider_scenarios(ui, &s, &rows)),
            Err(e) => internal(ui, Some(&s), &e),
        };
    }
    match state
        .blocking(move |d| scenarios::usage(d, &name, today))
        .await
    {
        Ok(usage) => page(StatusCode::OK, pages::scenarios(ui, &s, &usage)),
        Err(e) => internal(ui, Some(&s), &e),
    }
}
