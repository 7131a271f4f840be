//! Probes: `/livez` (process up), `/readyz` (this pod should get traffic), `/health` (the process
//! and its dependencies, for people and dashboards); the paths are the ones the operator probes
//! (`perfstack_contract::probes`); `/health` includes the external services.
//!
//! Readiness reports the pod's own state only: it has seen the database answer once since it
//! started, its pool is open, and it is not draining for a shutdown. A dependency that goes away
//! later (PostgreSQL restarting, Redis down) would take every replica out of the Service at once,
//! so it shows in `/health` and the metrics instead, and requests answer 503 + `Retry-After`
//! while it lasts (docs/contract.md, "Probes").
pub mod external;

use std::sync::atomic::{AtomicBool, Ordering};

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

/// Where the process is in its life, as readiness reports it.
#[derive(Debug)]
pub struct Lifecycle {
    /// The database answered once since start.
    database_seen: AtomicBool,
    /// A shutdown signal arrived: readiness fails while the process drains.
    draining: AtomicBool,
}

impl Lifecycle {
    /// A process that has not reached its database yet (`serve` at start).
    pub fn starting() -> Self {
        Self {
            database_seen: AtomicBool::new(false),
            draining: AtomicBool::new(false),
        }
    }

    /// A process whose database already answered (a state built on a connected pool).
    pub fn running() -> Self {
        let lifecycle = Self::starting();
        lifecycle.database_answered();
        lifecycle
    }

    pub fn database_answered(&self) {
        self.database_seen.store(true, Ordering::Release);
    }

    /// From now on readiness fails and responses ask clients to close their connection.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Why the pod should get no traffic now, if it should not.
    fn unready_because(&self, pool_closed: bool) -> Option<&'static str> {
        if self.is_draining() {
            Some("draining for shutdown")
        } else if pool_closed {
            Some("the database pool is closed")
        } else if !self.database_seen.load(Ordering::Acquire) {
            Some("the database has not answered yet")
        } else {
            None
        }
    }
}

/// One dependency and whether it answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub name: &'static str,
    pub up: bool,
}

/// Checks every dependency the app uses, for `/health`. This is the one place to add one.
pub async fn probe_dependencies(state: &AppState) -> Vec<Probe> {
    let mut probes = vec![Probe {
        name: "database",
        up: database_up(state).await,
    }];
    if let Some(up) = state.cache.redis_up().await {
        probes.push(Probe { name: "redis", up });
    }
    if let Some(jobs) = &state.jobs {
        probes.push(Probe {
            name: "jobs",
            up: jobs.store.ping().await.is_ok(),
        });
    }
    probes
}

async fn database_up(state: &AppState) -> bool {
    state
        .db
        .execute("health.ping", sqlx::query("SELECT 1"))
        .await
        .is_ok()
}

/// Liveness: 200 while the process serves requests; it checks nothing else on purpose, so a
/// database outage never makes Kubernetes restart healthy pods.
#[utoipa::path(get, path = probes::LIVEZ, tag = "health", responses((status = 200, body = String)))]
async fn livez() -> &'static str {
    "ok"
}

/// Readiness: 200 while this pod should get traffic (it reached its database once, its pool is
/// open, it is not shutting down); 503 naming why not. Dependencies are in `/health`.
#[utoipa::path(get, path = probes::READYZ, tag = "health", responses(
    (status = 200, body = String),
    (status = 503, body = super::error::Problem, content_type = "application/problem+json"),
))]
async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    match state.lifecycle.unready_because(state.db.pool().is_closed()) {
        None => Ok("ready"),
        Some(why) => Err(ApiError::NotReady(why.to_owned())),
    }
}

/// `/health` body.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthReport {
    /// `healthy` when every dependency and external service is up, `degraded` when only external
    /// services are down (200), `unhealthy` when a dependency is down (503).
    pub status: &'static str,
    /// When the checks ran (RFC 3339, UTC).
    pub timestamp: String,
    pub version: &'static str,
    pub uptime_seconds: u64,
    /// Resident memory of the process in bytes (Linux), if known.
    pub memory_rss_bytes: Option<u64>,
    /// Each dependency (`database`, and `redis` and `jobs` when Redis is configured): `up` or `down`.
    #[schema(value_type = Object)]
    pub services: serde_json::Map<String, serde_json::Value>,
    /// Each external service (`--health-external`, the SMTP server when configured): `up` or
    /// `down`.
    #[schema(value_type = Object)]
    pub external: serde_json::Map<String, serde_json::Value>,
}

/// `{"name": "up" | "down", ...}`.
fn up_or_down<'a>(
    checks: impl IntoIterator<Item = (&'a str, bool)>,
) -> serde_json::Map<String, serde_json::Value> {
    checks
        .into_iter()
        .map(|(name, up)| (name.to_owned(), (if up { "up" } else { "down" }).into()))
        .collect()
}

/// Summary of the process, its dependencies and the external services; 503 when a dependency is
/// down, 200 with `degraded` when only an external service is.
#[utoipa::path(get, path = probes::HEALTH, tag = "health", responses(
    (status = 200, body = HealthReport),
    (status = 503, body = HealthReport),
))]
async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let timeout = state.config.health.external_timeout();
    let (probes, external) = tokio::join!(
        probe_dependencies(&state),
        external::check(&state.external, timeout)
    );
    let healthy = probes.iter().all(|p| p.up);
    let status = match (healthy, external.iter().all(|(_, up)| *up)) {
        (false, _) => "unhealthy",
        (true, false) => "degraded",
        (true, true) => "healthy",
    };
    let report = HealthReport {
        status,
        timestamp,
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started.elapsed().as_secs(),
        memory_rss_bytes: resident_memory_bytes(),
        services: up_or_down(probes.iter().map(|p| (p.name, p.up))),
        external: up_or_down(external.iter().map(|(name, up)| (name.as_str(), *up))),
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
