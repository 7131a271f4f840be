//! Query parameters the OpenAPI document does not name for a route are a 400 naming the first one
//! (`?limt=5` is a typo the client should hear about, not a silently ignored limit). The names come
//! from the document itself ([`super::openapi_json`]), so the two cannot drift apart. Only routes
//! whose description lists a 400 answer are checked: the probes (`/livez`, `/readyz?verbose`) and
//! routes outside the document (`/metrics`) are left alone.
use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::Value;

use super::error::ApiError;

/// Query parameter names per `(METHOD, route template)`.
#[derive(Debug, Default)]
pub struct KnownQuery(HashMap<(String, String), HashSet<String>>);

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

impl KnownQuery {
    /// Reads the `in: query` parameters of every operation (and of its path item) that documents a
    /// 400 answer, from an OpenAPI document in JSON form.
    pub fn from_document(doc: &Value) -> Self {
        let mut known = HashMap::new();
        let query_names = |params: Option<&Value>| -> Vec<String> {
            params
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect()
        };
        for (template, item) in doc["paths"].as_object().into_iter().flatten() {
            let shared = query_names(item.get("parameters"));
            for method in METHODS {
                if let Some(operation) = item.get(method).filter(|op| op["responses"].get("400").is_some()) {
                    let mut names: HashSet<String> = shared.iter().cloned().collect();
                    names.extend(query_names(operation.get("parameters")));
                    known.insert((method.to_ascii_uppercase(), template.clone()), names);
                }
            }
        }
        Self(known)
    }

    /// The first name in `query` that the route does not declare; `None` when every name is
    /// declared or the route is not in the document.
    pub fn unknown(&self, method: &str, route: &str, query: &str) -> Option<String> {
        let names = self.0.get(&(method.to_owned(), route.to_owned()))?;
        form_urlencoded::parse(query.as_bytes())
            .map(|(name, _)| name)
            .find(|name| !names.contains(name.as_ref()))
            .map(|name| name.into_owned())
    }
}

/// `axum::middleware::from_fn_with_state(known, guard)`: 400 before the handler runs.
pub async fn guard(State(known): State<Arc<KnownQuery>>, request: Request, next: Next) -> Response {
    let unknown = match (request.extensions().get::<MatchedPath>(), request.uri().query()) {
        (Some(route), Some(query)) => known.unknown(request.method().as_str(), route.as_str(), query),
        _ => None,
    };
    match unknown {
        Some(name) => ApiError::bad_request(
            Some(name.clone()),
            format!(
                "unknown query parameter {name:?} (the OpenAPI document lists the ones this route takes)"
            ),
        )
        .into_response(),
        None => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> KnownQuery {
        KnownQuery::from_document(&serde_json::json!({
            "paths": {
                "/api/v1/tasks": {
                    "parameters": [{"in": "query", "name": "fields"}],
                    "get": {"parameters": [
                        {"in": "query", "name": "limit"},
                        {"in": "header", "name": "x-trace"}
                    ], "responses": {"400": {}}},
                    "post": {"responses": {"400": {}}}
                },
                "/api/v1/tasks/{id}": {"get": {"parameters": [{"in": "path", "name": "id"}], "responses": {"400": {}}}},
                "/readyz": {"get": {"responses": {"200": {}}}}
            }
        }))
    }

    #[test]
    fn declared_names_pass_and_the_first_other_one_is_named() {
        let k = known();
        assert_eq!(k.unknown("GET", "/api/v1/tasks", "limit=5&fields=id"), None);
        assert_eq!(
            k.unknown("GET", "/api/v1/tasks", "limit=5&limt=5&v=1").as_deref(),
            Some("limt")
        );
        assert_eq!(k.unknown("GET", "/api/v1/tasks", "=null").as_deref(), Some(""));
        assert_eq!(
            k.unknown("GET", "/api/v1/tasks", "x-trace=1").as_deref(),
            Some("x-trace")
        );
        assert_eq!(
            k.unknown("POST", "/api/v1/tasks", "fields=id"),
            None,
            "path-level parameters count"
        );
        assert_eq!(
            k.unknown("POST", "/api/v1/tasks", "limit=1").as_deref(),
            Some("limit")
        );
        assert_eq!(
            k.unknown("GET", "/api/v1/tasks/{id}", "id=3").as_deref(),
            Some("id")
        );
    }

    #[test]
    fn routes_outside_the_document_are_left_alone() {
        assert_eq!(known().unknown("GET", "/metrics", "anything=1"), None);
        assert_eq!(known().unknown("DELETE", "/api/v1/tasks", "x=1"), None);
        assert_eq!(
            known().unknown("GET", "/readyz", "verbose"),
            None,
            "no 400 documented"
        );
    }
}
