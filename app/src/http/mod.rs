//! The HTTP API: one router per resource, shared state, middleware and the server loop.
pub mod error;
pub mod health;
pub mod observability;

use std::{sync::Arc, time::Instant};

use axum::Router;
use secrecy::ExposeSecret;

use crate::{
    cache::Cache,
    config::{DbConfig, ServeConfig},
    db::{Db, tuning},
    metrics::{Metrics, http::track},
};

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub started: Instant,
    pub config: Arc<ServeConfig>,
    /// Two-level entity cache (L2 only when Redis is configured).
    pub cache: Cache,
    /// The Prometheus registry and per-route statistics.
    pub metrics: Metrics,
    /// The performance dashboard's last figures.
    pub dashboard: Arc<observability::DashboardCache>,
}

impl AppState {
    /// State with a cache built from `config` (Redis from `config.redis_url`) and a registry
    /// holding the database and cache families. Needs a Tokio runtime.
    pub fn new(db: Db, config: ServeConfig) -> Result<Self, crate::cache::CacheError> {
        let redis_url = config
            .redis_url
            .as_ref()
            .map(|url| url.expose_secret().to_owned());
        let cache = Cache::new(&config.cache, redis_url.as_deref())?;
        db.set_waiter_warning(config.cache.db_waiters_warning);
        let metrics = Metrics::new(&[db.telemetry(), cache.telemetry()]);
        Ok(Self {
            db,
            started: Instant::now(),
            config: Arc::new(config),
            cache,
            metrics,
            dashboard: Arc::default(),
        })
    }
}

/// The whole application as a `Router`, so tests can drive it without a socket.
pub fn router(state: AppState) -> Router {
    let metrics = state.metrics.clone();
    Router::new()
        .merge(health::router())
        .merge(observability::router())
        .layer(axum::middleware::from_fn_with_state(metrics, track))
        .with_state(state)
}

/// Connects, serves on the configured address, and shuts down gracefully on SIGTERM/SIGINT.
pub async fn serve(db_cfg: DbConfig, cfg: ServeConfig) -> anyhow::Result<()> {
    let db = Db::connect(&db_cfg).await?;
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "perfstack-app listening");
    let state = AppState::new(db, cfg)?;
    if !state
        .cache
        .wait_until_ready(std::time::Duration::from_secs(2))
        .await
    {
        tracing::warn!("Redis not reachable at start; serving without L2 until it is");
    }
    if let Some(path) = state.config.tuning_file.clone() {
        let poll = std::time::Duration::from_millis(state.config.cache.tuning_poll_ms.max(100));
        tracing::info!(path = %path.display(), "watching the tuning file");
        tokio::spawn(tuning::watch(state.db.clone(), path, poll));
    }
    state.cache.start_memory_guard(
        state.config.cache.memory_limit_bytes,
        std::time::Duration::from_millis(state.config.cache.memory_sample_ms),
    );
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
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
