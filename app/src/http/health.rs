//! Probes: `/livez` (process up), `/readyz` (dependencies reachable), `/health` (JSON summary); the
//! paths are the ones the operator probes (`perfstack_contract::probes`).
use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use perfstack_contract::probes;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{AppState, error::ApiError};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(livez))
        .routes(routes!(readyz))
        .routes(routes!(health))
}

/// One dependency and whether it answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub name: &'static str,
    pub up: bool,
}

/// Checks every dependency the app uses. This is the one place to add a dependency: the Redis
/// check joins here once the cache uses Redis (readiness and `/health` both follow this list).
pub async fn probe_dependencies(state: &AppState) -> Vec<Probe> {
    let mut probes = vec![Probe {
        name: "database",
        up: database_up(state).await,
    }];
    if let Some(up) = state.cache.redis_up().await {
        probes.push(Probe { name: "redis", up });
    }
    probes
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

/// Liveness: 200 while the process serves requests; it checks nothing else on purpose, so a
/// database outage never makes Kubernetes restart healthy pods.
#[utoipa::path(get, path = probes::LIVEZ, tag = "health", responses((status = 200, body = String)))]
async fn livez() -> &'static str {
    "ok"
}

/// Readiness: 200 when every dependency answers, else 503 naming the ones that did not.
#[utoipa::path(get, path = probes::READYZ, tag = "health", responses(
    (status = 200, body = String),
    (status = 503, body = super::error::Problem, content_type = "application/problem+json"),
))]
async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    let down: Vec<&str> = probe_dependencies(&state)
        .await
        .into_iter()
        .filter(|p| !p.up)
        .map(|p| p.name)
        .collect();
    if down.is_empty() {
        Ok("ready")
    } else {
        Err(ApiError::NotReady(down.join(", ")))
    }
}

/// `/health` body.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthReport {
    /// `healthy` when every dependency is up, else `unhealthy`.
    pub status: &'static str,
    pub version: &'static str,
    pub uptime_seconds: u64,
    /// Resident memory of the process in bytes (Linux), if known.
    pub memory_rss_bytes: Option<u64>,
    /// Each dependency: `up` or `down`.
    #[schema(value_type = Object)]
    pub services: serde_json::Map<String, serde_json::Value>,
}

/// Summary of the process and its dependencies; 503 when one is down.
#[utoipa::path(get, path = probes::HEALTH, tag = "health", responses(
    (status = 200, body = HealthReport),
    (status = 503, body = HealthReport),
))]
async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let probes = probe_dependencies(&state).await;
    let healthy = probes.iter().all(|p| p.up);
    let services = probes
        .iter()
        .map(|p| (p.name.to_owned(), (if p.up { "up" } else { "down" }).into()))
        .collect();
    let report = HealthReport {
        status: if healthy { "healthy" } else { "unhealthy" },
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started.elapsed().as_secs(),
        memory_rss_bytes: resident_memory_bytes(),
        services,
    };
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(report))
}

/// `VmRSS` from `/proc/self/status`, in bytes.
pub fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
