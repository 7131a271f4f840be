//! The HTTP API: one router per resource, shared state, middleware and the server loop.
pub mod error;
pub mod health;

use std::{sync::Arc, time::Instant};

use axum::Router;
use secrecy::ExposeSecret;

use crate::{
    config::{DbConfig, ServeConfig},
    db::Db,
    jobs::{self, JobContext, JobQueue, JobsConfig, config::ServeWorkers, metrics::JobMetrics},
};

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub started: Instant,
    pub config: Arc<ServeConfig>,
    /// The job queues; `None` when no Redis is configured (job routes answer 503).
    pub jobs: Option<JobQueue>,
}

/// The whole application as a `Router`, so tests can drive it without a socket.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(health::router())
        .merge(jobs::http::router())
        .with_state(state)
}

/// Connects, serves on the configured address, and shuts down gracefully on SIGTERM/SIGINT.
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
    let (stop, stopped) = tokio::sync::watch::channel(false);
    // TODO(metrics): register `job_metrics` in the app registry once /metrics exists in main.
    let job_metrics = JobMetrics::default();
    let worker = match (&jobs, workers.no_workers) {
        (Some(queue), false) => {
            let ctx = JobContext {
                db: db.clone(),
                mailer: jobs::email::Mailer::from_config(&jobs_cfg)?,
            };
            let worker = jobs::worker::Worker::new(queue, job_metrics);
            Some(tokio::spawn(worker.run(ctx, stopped)))
        }
        _ => None,
    };
    let state = AppState {
        db,
        started: Instant::now(),
        config: Arc::new(cfg),
        jobs,
    };
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    let _ = stop.send(true);
    if let Some(worker) = worker {
        let _ = worker.await;
    }
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
