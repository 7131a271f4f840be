//! `perfstack-app worker`: the workers without the API, so they scale apart from it. Serves only
//! `/livez`, `/readyz` (PostgreSQL and Redis answer) and `/metrics` (the job families) on its own
//! address. [`run_workers`] is what `serve` runs too: both queues with their handlers, the reaper,
//! the relay and the reconciler.
use std::sync::Arc;

use axum::{
    Router,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use perfstack_contract::probes;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use super::shutdown::shutdown_signal;
use crate::{
    config::{JobsConfig, WorkerConfig},
    db::Db,
    jobs::{
        JobContext, JobQueue, JobStore, Queue, email::EmailHandler, mailer::Mailer, metrics::JobMetrics,
        report::ReportHandler, worker::Worker,
    },
    metrics::text_format::OPENMETRICS_CONTENT_TYPE,
};

/// Runs the workers and their endpoints until SIGTERM/SIGINT, then lets running handlers finish.
pub async fn worker(db: Db, args: WorkerConfig, cfg: JobsConfig) -> anyhow::Result<()> {
    let mailer = Mailer::from_config(&cfg)?;
    let queue = JobQueue::connect(&args.expose_redis_url(), cfg).await?;
    let metrics = JobMetrics::default();
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let registry = Arc::new(registry);
    let listener = tokio::net::TcpListener::bind(args.metrics_addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "worker metrics listening");
    let probe = (db.clone(), queue.store.clone());
    let endpoints = Router::new()
        .route(probes::LIVEZ, get(|| async { "ok" }))
        .route(
            probes::READYZ,
            get(move || {
                let (db, store) = probe.clone();
                async move { ready(&db, &store).await }
            }),
        )
        .route(
            probes::METRICS,
            get(move || {
                let registry = registry.clone();
                async move { encode(&registry) }
            }),
        );
    let (stop, stopped) = watch::channel(false);
    let server = tokio::spawn(async move { axum::serve(listener, endpoints).await });
    let worker = Worker::new(&queue, metrics);
    let worker = tokio::spawn(run_workers(worker, JobContext { db, mailer }, stopped));
    shutdown_signal().await;
    let _ = stop.send(true);
    let _ = worker.await;
    server.abort();
    Ok(())
}

/// Runs both queues with the real handlers (outcomes recorded in the PostgreSQL ledger too), the
/// reaper, the relay and the reconciler until `shutdown` turns true,
/// then lets running handlers finish (up to the grace period).
pub async fn run_workers(worker: Worker, ctx: JobContext, shutdown: watch::Receiver<bool>) {
    let db = ctx.db.clone();
    let worker = worker.with_ledger(db.clone());
    let email = Arc::new(EmailHandler::new(ctx.clone()));
    let report = Arc::new(ReportHandler::new(ctx));
    tokio::join!(
        worker.run_queue(Queue::Email, email, shutdown.clone()),
        worker.run_queue(Queue::Report, report, shutdown.clone()),
        worker.run_reaper(shutdown.clone()),
        worker.run_relay(db.clone(), shutdown.clone()),
        worker.run_reconciler(db, shutdown),
    );
}

async fn ready(db: &Db, store: &JobStore) -> Response {
    let postgres = sqlx::query("SELECT 1").execute(&db.pool()).await.is_ok();
    let redis = store.ping().await.is_ok();
    let status = if postgres && redis {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(serde_json::json!({ "postgres": postgres, "redis": redis })),
    )
        .into_response()
}

fn encode(registry: &Registry) -> Response {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], text).into_response()
}
