//! Probes: `/livez` (process up), `/readyz` (dependencies reachable), `/health` (JSON summary).
use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use serde_json::json;

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/health", get(health))
}

async fn database_up(state: &AppState) -> bool {
    state
        .db
        .timed("health.ping", "SELECT 1", |pool| async move {
            sqlx::query("SELECT 1").execute(&pool).await
        })
        .await
        .is_ok()
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if database_up(&state).await {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
    }
}

async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let db = database_up(&state).await;
    let status = if db { "healthy" } else { "unhealthy" };
    let code = if db {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": status,
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSeconds": state.started.elapsed().as_secs(),
        "services": { "database": if db { "up" } else { "down" } },
    });
    (code, Json(body))
}
