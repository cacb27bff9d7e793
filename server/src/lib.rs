//! The HTTP API and the review console (`sandbox serve`): the same domain, reached by
//! principals holding API tokens ([`sandbox_runtime::tokens`]) from their own machines.
//!
//! - [`auth`]: one middleware in front of every `/api/v1` route authenticates the bearer
//!   token (off the executor: Argon2) and records every refused call (401 and 403, whether
//!   the token, the role rule or a domain function refused) as an `api.refused` audit event
//!   in a transaction of its own, after the refused request's own work has rolled back;
//! - [`api`]: the handlers. Each asks the core's one role × action table
//!   ([`sandbox_core::authz::authorize`]) before it reads a body, then calls the same
//!   domain functions as the CLI ([`sandbox_runtime`]), which authorize again through the
//!   one path (membership, status, stops) and keep enforcing separation of duties, budgets
//!   and review; every call into the domain runs on the blocking pool;
//! - [`console`]: the review console's pages, over the same domain functions;
//! - [`error`]: [`Error`] mapped to status codes with a JSON body `{error, message}` by the
//!   core's one mapping ([`Error::status`], [`Error::code`]); internal errors are logged and
//!   not shown.
//!
//! **Architecture invariant:** only this crate knows HTTP, and it holds no SQL, engine or
//! runtime of its own (its dependencies forbid `rusqlite`, DataFusion, Parquet and wasmtime;
//! `tests/deps.rs` checks). It adds no way around a domain function's checks.

pub mod api;
pub mod auth;
pub mod console;
pub mod error;
pub mod metrics;
pub mod openapi;
pub mod queue;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;

use sandbox_core::{Error, Result};
use sandbox_runtime::Domain;

pub use error::ApiError;

/// Largest request body the API reads (a module of 16 MiB is about 21.4 MiB as base64).
pub const MAX_BODY_BYTES: usize = 32 << 20;

/// Largest form the console reads.
pub const CONSOLE_BODY_BYTES: usize = 64 << 10;

/// Server settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Jobs this process runs at once; further jobs wait in the queue.
    pub job_slots: usize,
    /// Jobs one developer may have waiting in the queue; more are refused (429).
    pub max_queued_per_developer: i64,
    /// Longest a submission may ask to wait for its job to end (`?wait=`).
    pub max_wait: Duration,
    /// Mark the console's session cookie `Secure` (when the server is reached over HTTPS,
    /// e.g. behind a TLS proxy).
    pub secure_cookies: bool,
    /// Refusals of callers who prove no one recorded one by one per client address and
    /// minute; beyond that they are answered 429 and recorded as one count.
    pub anonymous_refusals_per_minute: u32,
    /// How long a running job is leased at a time: its runner renews the lease every
    /// third of it, and every server looks this often for jobs whose lease lapsed (their
    /// runner is gone) to fail them.
    pub job_lease: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            job_slots: 2,
            max_queued_per_developer: 20,
            max_wait: Duration::from_secs(120),
            secure_cookies: false,
            anonymous_refusals_per_minute: 60,
            job_lease: sandbox_runtime::jobs::JOB_LEASE,
        }
    }
}

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    domain: Domain,
    pub(crate) queue: Arc<queue::Queue>,
    pub(crate) metrics: Arc<metrics::Metrics>,
    pub(crate) verified: Arc<sandbox_runtime::tokens::VerifiedCache>,
    pub(crate) limiter: Arc<auth::RefusalLimiter>,
    config: Config,
}

impl AppState {
    /// The state for `domain`. Jobs are queued, not run, until [`AppState::start_queue`].
    pub fn new(domain: Domain, config: Config) -> AppState {
        AppState {
            domain: domain.with_job_lease(config.job_lease),
            queue: Arc::new(queue::Queue::new(config.job_slots)),
            metrics: Arc::new(metrics::Metrics::new()),
            verified: Arc::default(),
            limiter: Arc::new(auth::RefusalLimiter::new(
                config.anonymous_refusals_per_minute,
            )),
            config,
        }
    }

    /// Starts the dispatcher that runs queued jobs, on the current tokio runtime; it runs
    /// until the handle is aborted (or the runtime ends).
    pub fn start_queue(&self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(queue::dispatch(self.clone()))
    }

    /// Records the refusals the limiter held back whose minute is over (every one with
    /// `all`). The server does it every minute and at shutdown.
    pub async fn record_limited_refusals(&self, all: bool) {
        auth::record_limited(self, all).await;
    }

    /// The domain.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// Runs a blocking domain call on the blocking pool.
    pub(crate) async fn blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Domain) -> Result<T> + Send + 'static,
    {
        let domain = self.domain.clone();
        tokio::task::spawn_blocking(move || f(&domain))
            .await
            .map_err(|e| Error::Internal(format!("blocking task: {e}")))?
    }
}

/// The router: `/healthz` and `/api/v1/openapi.json` (no token), `/api/v1/...` and
/// `/metrics` (behind the token middleware), with bounded request bodies; every request
/// is counted and logged by [`observe`].
pub fn router(state: AppState) -> Router {
    let gate = axum::middleware::from_fn_with_state(state.clone(), auth::gate);
    let api = api::routes()
        .layer(gate.clone())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    let metrics = Router::new()
        .route("/metrics", axum::routing::get(api::metrics))
        .layer(gate);
    let console = console::routes()
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            console::record_refused_pages,
        ))
        .layer(DefaultBodyLimit::max(CONSOLE_BODY_BYTES));
    Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route(
            "/",
            axum::routing::get(|| async { axum::response::Redirect::to("/console/") }),
        )
        .route("/api/v1/openapi.json", axum::routing::get(openapi::serve))
        .nest("/api/v1", api)
        .merge(metrics)
        .merge(console)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// A handler that panicked (a bug) answers a bare 500, logged; the server goes on.
fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic");
    tracing::error!(panic = %message, "a request handler panicked");
    axum::response::IntoResponse::into_response(ApiError::from(Error::Internal(
        "handler panicked".into(),
    )))
}

/// Counts every request for the metrics and writes one structured log line for it
/// (method, route template, status, time, request id; never the body or the token).
/// The request id comes from `X-Request-Id` when the caller sends a plain one, and is
/// sent back.
pub async fn observe(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_string();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map_or_else(|| sandbox_core::new_id("req"), str::to_string);
    let mut response = next.run(req).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    state.metrics.request(&method, &route, status, elapsed);
    let principal = response
        .extensions()
        .get::<auth::Caller>()
        .map(|c| c.0.name.clone())
        .unwrap_or_default();
    tracing::info!(
        target: "sandbox::http",
        request_id = %request_id,
        method = %method,
        route = %route,
        status,
        principal = %principal,
        elapsed_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    if let Ok(v) = axum::http::HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// A server on a thread of its own, serving a listener until [`Background::stop`] (or
/// drop): for tests, benchmarks and programs that embed Sandbox.
pub struct Background {
    url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

impl Background {
    /// Serves `domain` on `listener` (see [`serve_on`]) from a new thread with its own
    /// runtime.
    pub fn start(
        domain: &Domain,
        listener: std::net::TcpListener,
        config: Config,
    ) -> Result<Background> {
        listener.set_nonblocking(true)?;
        let url = format!("http://{}", listener.local_addr()?);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let domain = domain.clone();
        let thread = std::thread::Builder::new()
            .name("sandbox-serve".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("sandbox-serve")
                    .enable_all()
                    .build()?;
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    serve_on(&domain, listener, config, async {
                        let _ = rx.await;
                    })
                    .await
                })
            })?;
        Ok(Background {
            url,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// `http://ADDR:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops serving and waits until the server has ended (running jobs end first).
    pub fn stop(&mut self) -> Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| Error::Internal("the server thread panicked".into()))?,
            None => Ok(()),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::error!(error = %e, "the server ended with an error");
        }
    }
}

/// Serves the API on `addr` until Ctrl-C or SIGTERM. See [`serve_on`].
pub fn serve(domain: &Domain, addr: SocketAddr, config: Config) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("sandbox-serve")
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        eprintln!(
            "sandbox serving {} on http://{}",
            domain.layout().root().display(),
            listener.local_addr()?
        );
        serve_on(domain, listener, config, shutdown_signal()).await
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Serves the API on `listener` until `shutdown` completes: ends the jobs a dead process
/// left running, starts the job queue, signs a checkpoint of the audit log every minute
/// when it has grown, and checks usage (idle scenarios) every hour. At shutdown the server
/// stops taking requests, lets running jobs end, and signs a last checkpoint.
pub async fn serve_on(
    domain: &Domain,
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let state = AppState::new(domain.clone(), config);
    let local = listener.local_addr()?;
    tracing::info!(%local, root = %domain.layout().root().display(), "serving");
    match state.blocking(sandbox_runtime::jobs::recover).await {
        Ok(ended) if !ended.is_empty() => {
            tracing::warn!(jobs = ?ended, "jobs left running by a process that ended were failed")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "jobs left running could not be checked"),
    }
    // What a destruction moved aside and a crash left behind.
    match state
        .blocking(sandbox_runtime::versions::sweep_destroyed)
        .await
    {
        Ok(removed) if !removed.is_empty() => {
            tracing::warn!(folders = ?removed, "destroyed datasets' leftover folders removed")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "destroyed datasets' leftovers not swept"),
    }
    let dispatcher = state.start_queue();
    // Jobs whose runner is gone (another server killed, say), failed once their lease
    // lapses, by whichever server looks first.
    let reaper = {
        let state = state.clone();
        let every = state.domain().job_lease().max(Duration::from_secs(1));
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                match state.blocking(sandbox_runtime::jobs::recover).await {
                    Ok(ended) if !ended.is_empty() => {
                        tracing::warn!(jobs = ?ended, "jobs whose runner is gone were failed")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "jobs left running could not be checked"),
                }
            }
        })
    };
    let ticker = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(60));
            let mut ticks: u64 = 0;
            loop {
                every.tick().await;
                let signed = state
                    .blocking(sandbox_runtime::audit::checkpoint_if_grown)
                    .await;
                if let Err(e) = signed {
                    tracing::warn!(error = %e, "no audit checkpoint written");
                }
                state.record_limited_refusals(false).await;
                // Rectification orders past their deadline: their targets suspended.
                match state
                    .blocking(sandbox_runtime::incidents::enforce_due)
                    .await
                {
                    Ok(ids) if !ids.is_empty() => {
                        tracing::warn!(orders = ?ids, "rectification orders enforced")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "rectification orders not enforced"),
                }
                if ticks.is_multiple_of(60) {
                    let today = chrono::Utc::now().date_naive();
                    match state
                        .blocking(move |d| sandbox_runtime::scenarios::flag_idle(d, today))
                        .await
                    {
                        Ok(ids) if !ids.is_empty() => {
                            tracing::warn!(scenarios = ?ids, "scenarios flagged idle")
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "usage not checked"),
                    }
                }
                ticks += 1;
            }
        })
    };
    // What other servers of the store announce (a stop, a suspension, a cancel recorded
    // there) reaches the jobs this one runs.
    let following = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let follower = {
        let domain = state.domain().clone();
        let done = following.clone();
        std::thread::Builder::new()
            .name("sandbox-follow".into())
            .spawn(move || sandbox_runtime::jobs::follow_interrupts(&domain, &done))
            .map_err(|e| tracing::warn!(error = %e, "announcements of other servers not followed"))
            .ok()
    };
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    state.record_limited_refusals(true).await;
    dispatcher.abort();
    reaper.abort();
    following.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(follower) = follower {
        let _ = tokio::task::spawn_blocking(move || follower.join()).await;
    }
    ticker.abort();
    // Jobs already running end on their own (the blocking pool finishes them).
    while state.queue.running() > 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if let Err(e) = state
        .blocking(sandbox_runtime::audit::checkpoint_if_grown)
        .await
    {
        tracing::warn!(error = %e, "no audit checkpoint written at shutdown");
    }
    served.map_err(Error::Io)
}
