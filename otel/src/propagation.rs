//! W3C trace context in and out of a process: from an incoming request's headers, and as one
//! `traceparent` string that something stored (a queued job) carries to another process.
use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, Injector};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::enabled;

/// The trace-context header.
const TRACEPARENT: &str = "traceparent";

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct Fields(HashMap<String, String>);

impl Extractor for Fields {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

impl Injector for Fields {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

/// Makes `span` a child of the trace the request's `traceparent` header names (nothing without one,
/// or when traces are not exported).
pub fn set_parent_from_headers(span: &Span, headers: &http::HeaderMap) {
    if !enabled() || !headers.contains_key(TRACEPARENT) {
        return;
    }
    let parent =
        opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&Headers(headers)));
    let _ = span.set_parent(parent);
}

/// The `traceparent` of `span`, for work that continues elsewhere; `None` when traces are not
/// exported.
pub fn traceparent(span: &Span) -> Option<String> {
    if !enabled() {
        return None;
    }
    let mut fields = Fields(HashMap::new());
    let context = span.context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut fields)
    });
    fields.0.remove(TRACEPARENT)
}

/// Makes `span` a child of the trace `traceparent` names (as [`traceparent`] wrote it).
pub fn set_parent_from_traceparent(span: &Span, traceparent: &str) {
    if !enabled() || traceparent.is_empty() {
        return;
    }
    let fields = Fields(HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]));
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&fields));
    let _ = span.set_parent(parent);
}
