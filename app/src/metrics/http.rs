//! The middleware that records every request by route template (never the raw path, so that
//! ids do not explode label cardinality).
use std::{
    collections::HashSet,
    sync::{Arc, LazyLock, PoisonError, RwLock},
    time::Instant,
};

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::Response,
};

use super::{Metrics, RequestLabels, RouteLabels};
use crate::http::error::Rejection;

/// Route label of requests that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// `2xx`, `4xx`, ...: the status class label.
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Known methods keep their name; anything else is `other` (bounded label values).
fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE => "DELETE",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The route template as a `&'static str`, so that label values cost no allocation per request.
/// Templates come from the router (a few dozen, fixed when it is built), so the set is bounded:
/// each distinct template is copied once and kept for the life of the process.
fn interned(route: &str) -> &'static str {
    static ROUTES: LazyLock<RwLock<HashSet<&'static str>>> = LazyLock::new(RwLock::default);
    if let Some(known) = ROUTES.read().unwrap_or_else(PoisonError::into_inner).get(route) {
        return known;
    }
    let mut routes = ROUTES.write().unwrap_or_else(PoisonError::into_inner);
    if let Some(known) = routes.get(route) {
        return known;
    }
    let kept: &'static str = Box::leak(route.to_owned().into_boxed_str());
    routes.insert(kept);
    kept
}

/// Decrements the in-flight gauge even when the handler future is dropped mid-way.
struct InFlight<'a>(&'a Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.http.in_flight.dec();
    }
}

/// `axum::middleware::from_fn_with_state(Arc::new(metrics), track)`.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, |matched| interned(matched.as_str()));
    let method = method_label(request.method());
    metrics.http.in_flight.inc();
    let guard = InFlight(&metrics);
    let start = Instant::now();
    let response = next.run(request).await;
    let elapsed = start.elapsed();
    drop(guard);
    let status = response.status().as_u16();
    metrics
        .http
        .requests
        .get_or_create(&RequestLabels {
            route,
            method,
            status_class: status_class(status),
        })
        .inc();
    metrics
        .http
        .duration
        .get_or_create(&RouteLabels { route, method })
        .observe(elapsed.as_secs_f64());
    metrics.routes.record(method, route, elapsed, status >= 500);
    if let Some(Rejection(reason)) = response.extensions().get::<Rejection>() {
        metrics.http.rejections.get_or_create(&[("reason", reason)]).inc();
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(404), "4xx");
        assert_eq!(status_class(503), "5xx");
    }
}
