//! The HTTP API: one router per resource, the shared state handlers read, middleware, errors and
//! extractors. The process around it (listener, background tasks, shutdown) is `startup`.
pub mod auth;
pub mod error;
pub mod export;
pub mod extract;
pub mod fields;
pub mod guards;
pub mod health;
pub mod jobs;
pub mod known_query;
pub mod middleware;
pub mod observability;
pub mod openapi;
pub mod pagination;
pub mod projects;
pub mod rate_limit;
pub mod resource;
pub mod tasks;
pub mod users;
pub mod validate;

use std::{sync::Arc, time::Instant};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{HeaderValue, Method, StatusCode, Uri, header},
    middleware::{from_fn_with_state, map_request, map_response},
    response::{IntoResponse, Response},
    routing::get,
};
use tower::ServiceBuilder;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::{
    cache::Cache,
    config::ServeConfig,
    db::{Db, totals::ListTotals},
    jobs::{JobQueue, metrics::JobMetrics},
    metrics::{Metrics, http::track},
};

/// What every handler can reach, behind one `Arc`: axum clones the state for every request (and
/// for each extractor and middleware that takes it), and a clone of the fields themselves (the
/// database's connect options with their strings, dozens of metric handles) cost about a quarter of
/// a cached read's CPU (`docs/benchmarks.md`). Built by `startup` ([`AppState::new`],
/// [`AppState::try_new`]), so that new fields (cache, job queue, metrics) only need a default there.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// Wraps `shared` for the handlers.
    pub(crate) fn from_shared(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }

    /// The fields, to change while the state is being built (copied if a clone was already taken).
    pub(crate) fn shared_mut(&mut self) -> &mut Shared {
        Arc::make_mut(&mut self.0)
    }
}

/// The fields of [`AppState`].
#[derive(Clone)]
pub struct Shared {
    pub db: Db,
    pub started: Instant,
    pub config: Arc<ServeConfig>,
    /// Rows held by running exports (see [`export::ExportGauge`]).
    pub exports: Arc<export::ExportGauge>,
    /// Permits of the export lane: one per export that may run at once.
    pub export_lane: Arc<tokio::sync::Semaphore>,
    /// Where the process is in its life (readiness, draining).
    pub lifecycle: Arc<health::Lifecycle>,
    /// The bearer tokens, when auth is on.
    pub tokens: Arc<auth::Tokens>,
    /// The per-caller limit of `POST /reports`.
    pub report_limiter: Arc<rate_limit::RateLimiter>,
    /// Where `POST /tasks` writes: concurrent creates share statements (see [`crate::db::task_inserts`]).
    pub task_inserts: crate::db::task_inserts::TaskInserts,
    /// The job queues; `None` when no Redis is configured (job routes answer 503).
    pub jobs: Option<JobQueue>,
    /// Job metric families, registered in `metrics`; fed by the workers `serve` runs.
    pub job_metrics: JobMetrics,
    /// Two-level entity cache (L2 only when Redis is configured).
    pub cache: Cache,
    /// Cached totals of offset-paginated lists (see [`crate::db::totals`]).
    pub totals: ListTotals,
    /// The Prometheus registry and per-route statistics.
    pub metrics: Metrics,
    /// The performance dashboard's last figures.
    pub dashboard: Arc<observability::DashboardCache>,
    /// External services `/health` reports on (see [`health::external`]).
    pub external: Arc<[health::external::ExternalService]>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "perfstack API",
        description = "Users, projects and tasks. Errors are application/problem+json (RFC 9457)."
    ),
    tags(
        (name = "users"), (name = "projects"), (name = "tasks"),
        (name = "jobs", description = "Background jobs: reports, job state, dead letters, the email outbox"),
        (name = "health", description = "Probes for Kubernetes and people")
    )
)]
struct ApiDoc;

/// The routes with their OpenAPI description, before state and middleware. The resource routes
/// name their full path (`/api/v1/...`) rather than being nested: a nested route strips its prefix
/// from every request's URI (a copy) and is one more service to clone per request.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(users::router())
        .merge(projects::router())
        .merge(tasks::router())
        .merge(jobs::router())
        .merge(health::router())
        .split_for_parts()
}

/// The OpenAPI document as JSON: the routes' own descriptions, completed by [`openapi::complete`].
pub fn openapi_json() -> String {
    let (_, mut doc) = api();
    doc.paths.paths.insert(
        "/openapi.json".to_owned(),
        utoipa::openapi::path::PathItem::new(
            utoipa::openapi::HttpMethod::Get,
            utoipa::openapi::path::OperationBuilder::new()
                .summary(Some("This document"))
                .tag("meta")
                .response("200", utoipa::openapi::Response::new("OpenAPI 3.1 document")),
        ),
    );
    let Ok(mut json) = serde_json::to_value(&doc) else {
        return "{}".to_owned();
    };
    openapi::complete(&mut json);
    json.to_string()
}

/// The whole application as a `Router`, so tests can drive it without a socket.
pub fn router(state: AppState) -> Router {
    let (api, _) = api();
    let document = openapi_json();
    let known_query = Arc::new(serde_json::from_str(&document).map_or_else(
        |_| known_query::KnownQuery::default(),
        |doc| known_query::KnownQuery::from_document(&doc),
    ));
    let spec: Arc<str> = document.into();
    let body_limit = state.config.server.body_limit;
    let app = api
        .route(
            "/openapi.json",
            get(move || {
                let spec = Arc::clone(&spec);
                async move {
                    (
                        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
                        spec.to_string(),
                    )
                }
            }),
        )
        .merge(observability::router())
        .fallback(unknown_route);
    // Outermost first: request id, tracing, the no-compression switch, compression, problem
    // bodies, draining, metrics, deadline, auth, known query parameters, body limit. One
    // `Router::layer` call for the whole stack: each call boxes every route once more, and a boxed
    // service is cloned (an allocation) and its future boxed on every request. Thirteen calls made
    // one took a cached read from 42,000 to 54,000 requests/s here (`docs/benchmarks.md`).
    let stack = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(
            middleware::request_id_header(),
            MakeRequestUuid,
        ))
        .layer(PropagateRequestIdLayer::new(middleware::request_id_header()))
        .layer(TraceLayer::new_for_http().make_span_with(middleware::request_span))
        .layer(map_request(middleware::honor_no_compression))
        .layer(middleware::compression(state.config.server.compression_level))
        .layer(map_response(middleware::problem_for_bare_errors))
        .layer(from_fn_with_state(
            state.lifecycle.clone(),
            guards::close_when_draining,
        ))
        // One Arc to clone per request rather than the registry's handles.
        .layer(from_fn_with_state(Arc::new(state.metrics.clone()), track))
        .layer(from_fn_with_state(
            state.config.server.request_timeout(),
            guards::deadline,
        ))
        .layer(from_fn_with_state(state.tokens.clone(), auth::guard))
        .layer(from_fn_with_state(known_query, known_query::guard))
        .layer(DefaultBodyLimit::max(body_limit));
    app.layer(stack).with_state(state)
}

async fn unknown_route(method: Method, uri: Uri) -> Response {
    error::problem(
        StatusCode::NOT_FOUND,
        format!("no route for {method} {}", uri.path()),
        None,
    )
    .into_response()
}
