//! The HTTP API: one router per resource, shared state, middleware and the server loop.
pub mod error;
pub mod export;
pub mod extract;
pub mod fields;
pub mod health;
pub mod middleware;
pub mod observability;
pub mod pagination;
pub mod projects;
pub mod tasks;
pub mod users;
pub mod validate;

use std::{sync::Arc, time::Duration, time::Instant};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{HeaderValue, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::get,
};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::{
    cache::{Cache, CacheError},
    config::{DbConfig, ServeConfig},
    db::{Db, totals::ListTotals, tuning},
    jobs::{self, JobContext, JobQueue, JobsConfig, config::ServeWorkers, metrics::JobMetrics},
    metrics::{Metrics, http::track},
};
use secrecy::ExposeSecret;

/// What every handler can reach. Cheap to clone. Build it with [`AppState::new`] so that new
/// fields (cache, job queue, metrics) only need a default there.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub started: Instant,
    pub config: Arc<ServeConfig>,
    /// Rows held by running exports (see [`export::ExportGauge`]).
    pub exports: Arc<export::ExportGauge>,
    /// The job queues; `None` when no Redis is configured (job routes answer 503).
    pub jobs: Option<JobQueue>,
    /// Job metric families, registered in `metrics`; fed by the workers `serve` runs.
    pub job_metrics: JobMetrics,
    /// Two-level entity cache (L2 only when Redis is configured).
    pub cache: Cache,
    /// Cached totals of offset-paginated lists (see [`crate::db::totals`]).
    pub totals: ListTotals,
    /// The Prometheus registry and per-route statistics.
    pub metrics: Metrics,
    /// The performance dashboard's last figures.
    pub dashboard: Arc<observability::DashboardCache>,
}

impl AppState {
    /// Like [`AppState::try_new`]; a Redis URL that does not parse is logged and the cache runs
    /// without L2 (`serve` uses `try_new` and refuses to start instead).
    pub fn new(db: Db, config: ServeConfig) -> Self {
        match Self::try_new(db.clone(), config.clone()) {
            Ok(state) => state,
            Err(err) => {
                tracing::error!(error = %err, "cache without Redis");
                let config = ServeConfig {
                    redis_url: None,
                    ..config
                };
                let cache = Cache::without_redis(&config.cache);
                Self::assemble(db, config, cache)
            }
        }
    }

    /// State with a cache built from `config` (Redis from `config.redis_url`) and a registry
    /// holding the database and cache families. Needs a Tokio runtime.
    pub fn try_new(db: Db, config: ServeConfig) -> Result<Self, CacheError> {
        let redis_url = config
            .redis_url
            .as_ref()
            .map(|url| url.expose_secret().to_owned());
        let cache = Cache::scoped(&config.cache, redis_url.as_deref(), None)?;
        if cache.has_l2() {
            let (db, cache) = (db.clone(), cache.clone());
            tokio::spawn(async move { name_cache_scope(&db, &cache).await });
        }
        Ok(Self::assemble(db, config, cache))
    }

    fn assemble(db: Db, config: ServeConfig, cache: Cache) -> Self {
        db.set_waiter_warning(config.cache.db_waiters_warning);
        let job_metrics = JobMetrics::default();
        let totals = ListTotals::new(config.cache.count_cache());
        let metrics = Metrics::new(&[
            db.telemetry(),
            cache.telemetry(),
            &job_metrics,
            totals.telemetry(),
        ]);
        Self {
            db,
            started: Instant::now(),
            config: Arc::new(config),
            exports: Arc::default(),
            jobs: None,
            job_metrics,
            cache,
            totals,
            metrics,
            dashboard: Arc::default(),
        }
    }

    /// With the job queues (routes under /api/v1/jobs, /reports, /outbox; assignment emails).
    pub fn with_jobs(mut self, jobs: Option<JobQueue>) -> Self {
        self.jobs = jobs;
        self
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "perfstack API",
        description = "Users, projects and tasks. Errors are application/problem+json (RFC 9457)."
    ),
    tags(
        (name = "users"), (name = "projects"), (name = "tasks"),
        (name = "jobs", description = "Background jobs: reports, job state, dead letters, the email outbox"),
        (name = "health", description = "Probes for Kubernetes and people")
    )
)]
struct ApiDoc;

/// Names the cache's Redis scope after the database, retrying until the database answers.
async fn name_cache_scope(db: &Db, cache: &Cache) {
    loop {
        match crate::db::stats::cache_scope(db).await {
            Ok(scope) => {
                cache.set_scope(&scope);
                return;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot identify the database yet; Redis cache waits");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// The routes with their OpenAPI description, before state and middleware.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let v1 = OpenApiRouter::new()
        .merge(users::router())
        .merge(projects::router())
        .merge(tasks::router())
        .merge(jobs::http::router());
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", v1)
        .merge(health::router())
        .split_for_parts()
}

/// The OpenAPI document as JSON.
pub fn openapi_json() -> String {
    let (_, mut doc) = api();
    doc.paths.paths.insert(
        "/openapi.json".to_owned(),
        utoipa::openapi::path::PathItem::new(
            utoipa::openapi::HttpMethod::Get,
            utoipa::openapi::path::OperationBuilder::new()
                .summary(Some("This document"))
                .tag("meta")
                .response("200", utoipa::openapi::Response::new("OpenAPI 3.1 document")),
        ),
    );
    doc.to_json().unwrap_or_else(|_| "{}".to_owned())
}

/// The whole application as a `Router`, so tests can drive it without a socket.
pub fn router(state: AppState) -> Router {
    let (api, _) = api();
    let spec: Arc<str> = openapi_json().into();
    let body_limit = state.config.body_limit;
    let app = api
        .route(
            "/openapi.json",
            get(move || {
                let spec = Arc::clone(&spec);
                async move {
                    (
                        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
                        spec.to_string(),
                    )
                }
            }),
        )
        .merge(observability::router())
        .fallback(unknown_route)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(state.metrics.clone(), track))
        .with_state(state);
    middleware::wrap(app)
}

async fn unknown_route(method: Method, uri: Uri) -> Response {
    error::problem(
        StatusCode::NOT_FOUND,
        format!("no route for {method} {}", uri.path()),
        None,
    )
    .into_response()
}

/// Connects, serves on the configured address, and shuts down gracefully on SIGTERM/SIGINT:
/// the listener closes at once, in-flight requests get `shutdown_grace_s` to finish.
/// Unless `--no-workers`, the job workers run alongside and drain on the same signal.
pub async fn serve(
    db_cfg: DbConfig,
    cfg: ServeConfig,
    jobs_cfg: JobsConfig,
    workers: ServeWorkers,
) -> anyhow::Result<()> {
    let db = Db::connect(&db_cfg).await?;
    let jobs = match &cfg.redis_url {
        Some(url) => Some(JobQueue::connect(url.expose_secret(), jobs_cfg.clone()).await?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "perfstack-app listening");
    let grace = Duration::from_secs(cfg.shutdown_grace_s);
    let state = AppState::try_new(db.clone(), cfg)?.with_jobs(jobs);
    if !state.cache.wait_until_ready(Duration::from_secs(2)).await {
        tracing::warn!("Redis not reachable at start; serving without L2 until it is");
    }
    if let Some(path) = state.config.tuning_file.clone() {
        let poll = Duration::from_millis(state.config.cache.tuning_poll_ms.max(100));
        tracing::info!(path = %path.display(), "watching the tuning file");
        tokio::spawn(tuning::watch(state.db.clone(), path, poll));
    }
    tokio::spawn(crate::db::server_limits::watch(
        state.db.clone(),
        crate::db::server_limits::REFRESH_INTERVAL,
    ));
    state.cache.start_memory_guard(
        state.config.cache.memory_limit_bytes,
        Duration::from_millis(state.config.cache.memory_sample_ms),
    );
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let worker = match (&state.jobs, workers.no_workers) {
        (Some(queue), false) => {
            let ctx = JobContext {
                db: db.clone(),
                mailer: jobs::email::Mailer::from_config(&jobs_cfg)?,
            };
            let worker = jobs::worker::Worker::new(queue, state.job_metrics.clone());
            Some(tokio::spawn(worker.run(ctx, stop_tx.subscribe())))
        }
        _ => None,
    };
    let server = axum::serve(listener, router(state)).with_graceful_shutdown(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let deadline = async move {
        let _ = stop_rx.wait_for(|stopped| *stopped).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => result?,
        () = deadline => tracing::warn!(grace_s = grace.as_secs(), "grace period over; dropping unfinished requests"),
    }
    if let Some(worker) = worker {
        // Stops on the same signal; bounded by JOBS_SHUTDOWN_GRACE_S.
        let _ = worker.await;
    }
    db.pool().close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutdown signal received, finishing in-flight requests");
}
