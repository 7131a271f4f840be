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
    if !database_up(&state).await {
        return (StatusCode::SERVICE_UNAVAILABLE, "database unreachable");
    }
    if state.cache.redis_up().await == Some(false) {
        return (StatusCode::SERVICE_UNAVAILABLE, "redis unreachable");
    }
    (StatusCode::OK, "ready")
}

async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let db = database_up(&state).await;
    let redis = state.cache.redis_up().await;
    let up_down = |up: bool| if up { "up" } else { "down" };
    // Redis down degrades the cache, not the service.
    let status = match (db, redis) {
        (false, _) => "unhealthy",
        (true, Some(false)) => "degraded",
        (true, _) => "healthy",
    };
    let code = if db {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": status,
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSeconds": state.started.elapsed().as_secs(),
        "services": {
            "database": up_down(db),
            "redis": redis.map_or("disabled", up_down),
        },
        "memory": { "residentBytes": crate::metrics::process::resident_bytes() },
    });
    (code, Json(body))
}
