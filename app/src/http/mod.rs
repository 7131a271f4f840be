//! The HTTP API: one router per resource, shared state, middleware and the server loop.
pub mod error;
pub mod health;

use std::{sync::Arc, time::Instant};

use axum::Router;

use crate::{
    config::{DbConfig, ServeConfig},
    db::Db,
};

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub started: Instant,
    pub config: Arc<ServeConfig>,
}

/// The whole application as a `Router`, so tests can drive it without a socket.
pub fn router(state: AppState) -> Router {
    Router::new().merge(health::router()).with_state(state)
}

/// Connects, serves on the configured address, and shuts down gracefully on SIGTERM/SIGINT.
pub async fn serve(db_cfg: DbConfig, cfg: ServeConfig) -> anyhow::Result<()> {
    let db = Db::connect(&db_cfg).await?;
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "perfstack-app listening");
    let state = AppState {
        db,
        started: Instant::now(),
        config: Arc::new(cfg),
    };
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
