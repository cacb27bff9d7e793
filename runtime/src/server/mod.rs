//! The HTTP API (`sandbox serve`): the same domain, reached by principals holding API
//! tokens ([`crate::tokens`]) from their own machines.
//!
//! - [`auth`]: one middleware in front of every `/api/v1` route authenticates the bearer
//!   token (off the executor: Argon2) and records every refused call (401 and 403, whether
//!   the token, the role rule or a domain function refused) as an `api.refused` audit event
//!   in a transaction of its own, after the refused request's own work has rolled back;
//! - [`authz`]: the one table that decides which role may do what, and scenario membership;
//!   every handler asks it before it touches the domain;
//! - [`api`]: the handlers. They call the same domain functions as the CLI, which keep
//!   enforcing separation of duties, budgets, stops and review; every call into the domain
//!   runs on the blocking pool (the domain's functions block);
//! - [`error`]: [`crate::Error`] mapped to status codes with a JSON body `{error, message}`;
//!   internal errors are logged and not shown.
//!
//! **Architecture invariant:** only `server` knows HTTP. It adds no way around a domain
//! function's checks: it refuses more (role table, membership), never less.

pub mod api;
pub mod auth;
pub mod authz;
pub mod error;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;

use crate::{Domain, Error, Result, audit};

pub use error::ApiError;

/// Largest request body the API reads (a module of 16 MiB is about 21.4 MiB as base64).
pub const MAX_BODY_BYTES: usize = 32 << 20;

/// Server settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Jobs that may run at once; further submissions wait for a slot.
    pub job_slots: usize,
    /// How long a submission waits for a slot before it is refused as busy.
    pub job_wait: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            job_slots: 2,
            job_wait: Duration::from_secs(60),
        }
    }
}

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    domain: Domain,
    job_slots: Arc<tokio::sync::Semaphore>,
    config: Config,
}

impl AppState {
    /// The state for `domain`.
    pub fn new(domain: Domain, config: Config) -> AppState {
        AppState {
            domain,
            job_slots: Arc::new(tokio::sync::Semaphore::new(config.job_slots.max(1))),
            config,
        }
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

/// The router: `/healthz` (no token) and `/api/v1/...` (every route behind the token
/// middleware), with bounded request bodies.
pub fn router(state: AppState) -> Router {
    let api = api::routes()
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::gate,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .nest("/api/v1", api)
        .with_state(state)
}

/// Serves the API on `addr` until Ctrl-C; signs a checkpoint of the audit log every
/// minute when it has grown, and once more at shutdown.
pub fn serve(domain: &Domain, addr: SocketAddr, config: Config) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("sandbox-serve")
        .enable_all()
        .build()?;
    let state = AppState::new(domain.clone(), config);
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        eprintln!(
            "sandbox serving {} on http://{local}",
            domain.layout().root().display()
        );
        tracing::info!(%local, "serving");
        let ticker = {
            let state = state.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(60));
                loop {
                    every.tick().await;
                    let signed = state
                        .blocking(|d| audit::checkpoint_if_grown(&d.conn()?, d.layout()))
                        .await;
                    if let Err(e) = signed {
                        tracing::warn!(error = %e, "no audit checkpoint written");
                    }
                }
            })
        };
        let served = axum::serve(listener, router(state))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await;
        ticker.abort();
        served.map_err(Error::Io)
    })
}
