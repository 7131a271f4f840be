//! `/metrics` (Prometheus text format) and the performance dashboard: its JSON at
//! `/api/v1/performance/dashboard` (endpoints, uptime, memory, CPU, pool, database, cache and
//! Redis) and the page at `/dashboard`.
use std::{sync::Arc, time::Instant};

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use perfstack_contract::probes;
use serde::Serialize;
use tokio::sync::Mutex;

use super::AppState;
use crate::{
    cache::{
        redis_figures::RedisFigures,
        telemetry::{L1, L2},
    },
    db::{
        pool_monitor::PoolSnapshot,
        stats::{self, DatabaseFigures},
    },
    metrics::{
        cpu::{CpuFigures, CpuMeter},
        route_stats::EndpointFigures,
        text_format,
    },
};

/// Statements listed from pg_stat_statements.
const TOP_STATEMENTS: i64 = 10;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(probes::METRICS, get(metrics))
        .route("/api/v1/performance/dashboard", get(dashboard_json))
        .route("/dashboard", get(dashboard_page))
}

/// OpenMetrics when the scraper asks for it (Prometheus does), else the classic text format.
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    state.db.refresh_pool_gauges();
    state.totals.refresh_gauges();
    state.cache.refresh_gauges().await;
    let Ok(text) = state.metrics.encode() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    if text_format::wants_openmetrics(accept) {
        (
            [(header::CONTENT_TYPE, text_format::OPENMETRICS_CONTENT_TYPE)],
            text,
        )
            .into_response()
    } else {
        let classic = text_format::to_classic(&text);
        (
            [(header::CONTENT_TYPE, text_format::CLASSIC_CONTENT_TYPE)],
            classic,
        )
            .into_response()
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LevelFigures {
    pub hits: u64,
    pub misses: u64,
    /// hits / (hits + misses); `None` before the first lookup.
    pub hit_rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheFigures {
    pub l1: LevelFigures,
    /// `None` when no Redis is configured.
    pub l2: Option<LevelFigures>,
    pub redis_errors: u64,
    /// Memory and keys of the Redis server; `None` without Redis or when it did not answer.
    pub redis: Option<RedisFigures>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dashboard {
    /// When these figures were measured (RFC 3339).
    pub measured_at: String,
    pub uptime_seconds: f64,
    pub requests_total: u64,
    pub resident_memory_bytes: Option<u64>,
    /// CPU of the process and of its cgroup (the container) with the cgroup's limit.
    pub cpu: CpuFigures,
    pub endpoints: Vec<EndpointFigures>,
    pub cache: CacheFigures,
    pub pool: PoolSnapshot,
    /// `None` when PostgreSQL could not be read (the rest is still served).
    pub database: Option<DatabaseFigures>,
}

/// The last dashboard and when it was measured; reused for `dashboard_cache_ms`.
#[derive(Default)]
pub struct DashboardCache {
    last: Mutex<Option<(Instant, Arc<Dashboard>)>>,
    /// CPU clocks at the previous measurement.
    cpu: CpuMeter,
}

fn level(hits: u64, misses: u64) -> LevelFigures {
    let total = hits + misses;
    LevelFigures {
        hits,
        misses,
        hit_rate: (total > 0).then(|| hits as f64 / total as f64),
    }
}

async fn measure(state: &AppState) -> Dashboard {
    let endpoints = state.metrics.routes.snapshot();
    let cache = state.cache.telemetry();
    let (database, redis) = tokio::join!(
        stats::read(&state.db, TOP_STATEMENTS),
        state.cache.redis_figures()
    );
    let database = match database {
        Ok(figures) => Some(figures),
        Err(err) => {
            tracing::warn!(error = %err, "dashboard: could not read PostgreSQL statistics");
            None
        }
    };
    Dashboard {
        measured_at: chrono::Utc::now().to_rfc3339(),
        uptime_seconds: state.started.elapsed().as_secs_f64(),
        requests_total: endpoints.iter().map(|e| e.count).sum(),
        resident_memory_bytes: crate::metrics::process::resident_bytes(),
        cpu: state.dashboard.cpu.measure(),
        endpoints,
        cache: CacheFigures {
            l1: level(cache.hits(&L1), cache.misses(&L1)),
            l2: state
                .cache
                .has_l2()
                .then(|| level(cache.hits(&L2), cache.misses(&L2))),
            redis_errors: cache.redis_error_count(),
            redis,
        },
        pool: state.db.pool_snapshot(),
        database,
    }
}

async fn dashboard_json(State(state): State<AppState>) -> Json<Arc<Dashboard>> {
    let max_age = state.config.dashboard.max_age();
    let mut last = state.dashboard.last.lock().await;
    if let Some((at, dashboard)) = last.as_ref()
        && at.elapsed() < max_age
    {
        return Json(Arc::clone(dashboard));
    }
    let dashboard = Arc::new(measure(&state).await);
    *last = Some((Instant::now(), Arc::clone(&dashboard)));
    Json(dashboard)
}

async fn dashboard_page() -> Html<&'static str> {
    Html(include_str!("dashboard.html"))
}
