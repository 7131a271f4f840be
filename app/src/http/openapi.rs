//! The answers every route shares, added to the OpenAPI document once instead of on each route:
//! the status codes the extractors, limits, outages and auth can produce (so that every status a
//! route returns is documented), and the security requirements [`auth::access`] decides.
//!
//! | status | on | why |
//! |---|---|---|
//! | 400 | routes with a path or query parameter or a body | unparsable id, parameter or JSON |
//! | 401 | routes needing a token | no or an unknown bearer token (only when auth is on) |
//! | 403 | admin routes | the API token where the admin token is needed |
//! | 413, 415 | routes with a body | body too large, not JSON |
//! | 422 | routes with a query parameter or a body | a NUL character, a value PostgreSQL refuses |
//! | 503 | every route but `/livez` and `/openapi.json` | request timeout, busy or unreachable database, shed load |
use axum::http::Method;
use serde_json::{Map, Value, json};

use super::auth::{self, ADMIN_SCHEME, Access, USER_SCHEME};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];
const NO_DATABASE: [&str; 2] = ["/livez", "/openapi.json"];

/// Adds the shared answers and security requirements to `doc` (an OpenAPI 3.1 document as JSON).
pub fn complete(doc: &mut Value) {
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            for method in METHODS {
                if let Some(operation) = item.get_mut(method).and_then(Value::as_object_mut) {
                    complete_operation(path, method, operation);
                }
            }
        }
    }
    let components = doc
        .as_object_mut()
        .map(|doc| doc.entry("components").or_insert_with(|| json!({})));
    if let Some(components) = components.and_then(Value::as_object_mut) {
        let bearer =
            |description: &str| json!({"type": "http", "scheme": "bearer", "description": description});
        let schemes = components.entry("securitySchemes").or_insert_with(|| json!({}));
        if let Some(schemes) = schemes.as_object_mut() {
            schemes.insert(
                USER_SCHEME.to_owned(),
                bearer("The API token (API_TOKEN), when the stack turns auth on"),
            );
            schemes.insert(
                ADMIN_SCHEME.to_owned(),
                bearer("The admin token (API_ADMIN_TOKEN), when the stack turns auth on"),
            );
        }
    }
}

fn complete_operation(path: &str, method: &str, operation: &mut Map<String, Value>) {
    let has_body = operation.contains_key("requestBody");
    let params: Vec<String> = operation
        .get("parameters")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p.get("in").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let has_query = params.iter().any(|p| p == "query");
    let has_path = params.iter().any(|p| p == "path");
    let access = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_or(Access::User, |m| auth::access(&m, path));
    let mut shared: Vec<(&str, &str)> = Vec::new();
    if has_body || has_query || has_path {
        shared.push((
            "400",
            "Malformed JSON, or a path or query parameter that does not parse",
        ));
    }
    if has_body || has_query {
        shared.push((
            "422",
            "A field breaks a rule: a NUL character, or a value PostgreSQL cannot store",
        ));
    }
    if has_body {
        shared.push(("413", "Body larger than the server accepts"));
        shared.push(("415", "Body is not JSON"));
    }
    if access >= Access::User {
        shared.push(("401", "No or an unknown bearer token (when auth is on)"));
    }
    if access == Access::Admin {
        shared.push(("403", "This route needs the admin token"));
    }
    if !NO_DATABASE.contains(&path) {
        shared.push((
            "503",
            "Request timeout, database busy or unreachable, or load shed; retry after Retry-After",
        ));
    }
    let responses = operation.entry("responses").or_insert_with(|| json!({}));
    if let Some(responses) = responses.as_object_mut() {
        for (status, description) in shared {
            responses
                .entry(status.to_owned())
                .or_insert_with(|| problem_response(description));
        }
    }
    let security = match access {
        Access::Open => None,
        Access::User => Some(json!([{ USER_SCHEME: [] }, { ADMIN_SCHEME: [] }])),
        Access::Admin => Some(json!([{ ADMIN_SCHEME: [] }])),
    };
    if let Some(security) = security {
        operation.insert("security".to_owned(), security);
    }
}

fn problem_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {
            "application/problem+json": {
                "schema": { "$ref": "#/components/schemas/Problem" }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_answers_and_security_follow_the_route() {
        let mut doc = json!({
            "paths": {
                "/api/v1/users/{id}": {
                    "delete": {"parameters": [{"in": "path", "name": "id"}], "responses": {"204": {}}},
                    "patch": {"parameters": [{"in": "path", "name": "id"}], "requestBody": {}, "responses": {}}
                },
                "/livez": {"get": {"responses": {"200": {}}}}
            }
        });
        complete(&mut doc);
        let delete = &doc["paths"]["/api/v1/users/{id}"]["delete"];
        for status in ["400", "401", "403", "503"] {
            assert!(delete["responses"].get(status).is_some(), "{status}");
        }
        assert_eq!(delete["security"], json!([{ "adminToken": [] }]));
        let patch = &doc["paths"]["/api/v1/users/{id}"]["patch"];
        for status in ["400", "401", "413", "415", "422", "503"] {
            assert!(patch["responses"].get(status).is_some(), "{status}");
        }
        assert!(patch["responses"].get("403").is_none());
        let livez = &doc["paths"]["/livez"]["get"];
        assert_eq!(livez["responses"].as_object().map(Map::len), Some(1));
        assert!(livez.get("security").is_none());
        assert!(doc["components"]["securitySchemes"]["apiToken"].is_object());
    }
}
