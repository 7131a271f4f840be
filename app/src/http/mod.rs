//! The HTTP API: one router per resource, shared state, middleware and the server loop.
pub mod error;
pub mod export;
pub mod extract;
pub mod fields;
pub mod health;
pub mod middleware;
pub mod pagination;
pub mod projects;
pub mod tasks;
pub mod users;
pub mod validate;

use std::{sync::Arc, time::Duration, time::Instant};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{HeaderValue, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::get,
};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::{
    config::{DbConfig, ServeConfig},
    db::Db,
};

/// What every handler can reach. Cheap to clone. Build it with [`AppState::new`] so that new
/// fields (cache, job queue, metrics) only need a default there.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub started: Instant,
    pub config: Arc<ServeConfig>,
    /// Rows held by running exports (see [`export::ExportGauge`]).
    pub exports: Arc<export::ExportGauge>,
}

impl AppState {
    pub fn new(db: Db, config: ServeConfig) -> Self {
        Self {
            db,
            started: Instant::now(),
            config: Arc::new(config),
            exports: Arc::default(),
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "perfstack API",
        description = "Users, projects and tasks. Errors are application/problem+json (RFC 9457)."
    ),
    tags(
        (name = "users"), (name = "projects"), (name = "tasks"),
        (name = "health", description = "Probes for Kubernetes and people")
    )
)]
struct ApiDoc;

/// The routes with their OpenAPI description, before state and middleware.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let v1 = OpenApiRouter::new()
        .merge(users::router())
        .merge(projects::router())
        .merge(tasks::router());
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", v1)
        .merge(health::router())
        .split_for_parts()
}

/// The OpenAPI document as JSON.
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
    doc.to_json().unwrap_or_else(|_| "{}".to_owned())
}

/// The whole application as a `Router`, so tests can drive it without a socket.
pub fn router(state: AppState) -> Router {
    let (api, _) = api();
    let spec: Arc<str> = openapi_json().into();
    let body_limit = state.config.body_limit;
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
        .fallback(unknown_route)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state);
    middleware::wrap(app)
}

async fn unknown_route(method: Method, uri: Uri) -> Response {
    error::problem(
        StatusCode::NOT_FOUND,
        format!("no route for {method} {}", uri.path()),
        None,
    )
    .into_response()
}

/// Connects, serves on the configured address, and shuts down gracefully on SIGTERM/SIGINT:
/// the listener closes at once, in-flight requests get `shutdown_grace_s` to finish.
pub async fn serve(db_cfg: DbConfig, cfg: ServeConfig) -> anyhow::Result<()> {
    let db = Db::connect(&db_cfg).await?;
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "perfstack-app listening");
    let grace = Duration::from_secs(cfg.shutdown_grace_s);
    let state = AppState::new(db.clone(), cfg);
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, router(state)).with_graceful_shutdown(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let deadline = async move {
        let _ = stop_rx.wait_for(|stopped| *stopped).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => result?,
        () = deadline => tracing::warn!(grace_s = grace.as_secs(), "grace period over; dropping unfinished requests"),
    }
    db.pool().close().await;
    tracing::info!("stopped");
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
