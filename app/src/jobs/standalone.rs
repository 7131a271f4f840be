//! `perfstack-app worker`: the workers without the API, so they scale apart from it. Serves only
//! `/livez`, `/readyz` (PostgreSQL and Redis answer) and `/metrics` (the job families) on its own
//! address.
use std::{net::SocketAddr, sync::Arc};

use axum::{Router, http::header, response::IntoResponse, routing::get};
use clap::Args;
use prometheus_client::registry::Registry;
use secrecy::{ExposeSecret, SecretString};

use super::{JobContext, JobQueue, JobsConfig, email::Mailer, metrics::JobMetrics, worker::Worker};
use crate::{config::DbConfig, db::Db};

/// Settings of the standalone worker process.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// Redis URL of the job queues. Never logged.
    #[arg(long = "redis-url", env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: SecretString,
    /// Address of the `/livez` and `/metrics` endpoints.
    #[arg(
        long = "metrics-addr",
        env = "WORKER_METRICS_ADDR",
        default_value = "0.0.0.0:9090"
    )]
    pub metrics_addr: SocketAddr,
}

pub async fn run(db_cfg: DbConfig, args: WorkerArgs, cfg: JobsConfig) -> anyhow::Result<()> {
    let db = Db::connect(&db_cfg).await?;
    let mailer = Mailer::from_config(&cfg)?;
    let queue = JobQueue::connect(args.redis_url.expose_secret(), cfg).await?;
    let metrics = JobMetrics::default();
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let registry = Arc::new(registry);
    let listener = tokio::net::TcpListener::bind(args.metrics_addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "worker metrics listening");
    let probe = (db.clone(), queue.store.clone());
    let endpoints = Router::new()
        .route("/livez", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let (db, store) = probe.clone();
                async move { ready(&db, &store).await }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let registry = registry.clone();
                async move { encode(&registry) }
            }),
        );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(async move { axum::serve(listener, endpoints).await });
    let worker = tokio::spawn(Worker::new(&queue, metrics).run(JobContext { db, mailer }, stopped));
    crate::http::shutdown_signal().await;
    let _ = stop.send(true);
    let _ = worker.await;
    server.abort();
    Ok(())
}

async fn ready(db: &Db, store: &super::JobStore) -> axum::response::Response {
    let postgres = sqlx::query("SELECT 1").execute(&db.pool()).await.is_ok();
    let redis = store.ping().await.is_ok();
    let status = if postgres && redis {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(serde_json::json!({ "postgres": postgres, "redis": redis })),
    )
        .into_response()
}

fn encode(registry: &Registry) -> axum::response::Response {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, registry).is_err() {
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
