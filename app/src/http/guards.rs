//! Limits every request passes: a deadline on its response, and `Connection: close` on every
//! answer while the process drains for a shutdown (so clients move their keep-alive connections to
//! other replicas before this one stops accepting).
use std::{sync::Arc, time::Duration};

use axum::{
    extract::{Request, State},
    http::{HeaderValue, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{error::ApiError, health::Lifecycle};

/// `axum::middleware::from_fn_with_state(timeout, deadline)`: a request whose response has not
/// started after `timeout` is answered 503 with `Retry-After` (its work is dropped: a statement
/// in flight is cancelled with its connection, a transaction rolls back). A streamed body (the
/// export) is not covered once it started; it has its own idle cut-off.
pub async fn deadline(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    // A clone of the URI shares its bytes: no copy of the path on requests that finish in time.
    let uri = request.uri().clone();
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(
                path = uri.path(),
                timeout_ms = timeout.as_millis(),
                "request timed out"
            );
            ApiError::overloaded(
                "request_timeout",
                format!("the request took longer than {} ms", timeout.as_millis()),
            )
            .into_response()
        }
    }
}

/// `axum::middleware::from_fn_with_state(lifecycle, close_when_draining)`.
pub async fn close_when_draining(
    State(lifecycle): State<Arc<Lifecycle>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    if lifecycle.is_draining() {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
