//! The signal every process stops on.
use crate::signal;

/// Resolves on SIGINT or SIGTERM, once logged.
pub async fn shutdown_signal() {
    signal::interrupted().await;
    tracing::info!("shutdown signal received, finishing in-flight requests");
}
