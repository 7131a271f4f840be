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

use super::{
    auth::{self, ADMIN_SCHEME, Access, USER_SCHEME},
    fields::FieldSet,
    pagination::Cursor,
    projects, tasks, users,
    validate::{self, Rule},
};
use crate::db::{
    projects::{Project, ProjectKey},
    resource::Resource,
    tasks::{DueDateKey, PriorityKey, Task},
    users::User,
};

/// Rules of body fields: (resource, property, rule), the same the handlers check. Each holds on
/// both bodies of its resource, the POST one (`Create…`) and the PATCH one (`Update…`).
const BODY_RULES: [(&str, &str, Rule); 12] = [
    ("User", "email", Rule::Email),
    ("User", "username", Rule::Username),
    ("User", "firstName", text(0, users::NAME_MAX)),
    ("User", "lastName", text(0, users::NAME_MAX)),
    ("Project", "ownerId", Rule::Id),
    ("Project", "name", text(1, projects::NAME_MAX)),
    ("Project", "description", text(0, projects::DESCRIPTION_MAX)),
    ("Task", "projectId", Rule::Id),
    ("Task", "title", text(1, tasks::TITLE_MAX)),
    ("Task", "description", text(0, tasks::DESCRIPTION_MAX)),
    ("Task", "priority", Rule::Priority),
    ("Task", "assigneeId", Rule::Id),
];

/// [`Rule::Text`] of `min..=max` characters.
const fn text(min: usize, max: usize) -> Rule {
    Rule::Text { min, max }
}

/// PATCH fields that may be absent but not `null`, as each body declares them (`validate::patch_body!`).
const NOT_NULL: [(&str, &[&str]); 3] = [
    ("UpdateUser", users::UpdateUser::NON_NULL),
    ("UpdateProject", projects::UpdateProject::NON_NULL),
    ("UpdateTask", tasks::UpdateTask::NON_NULL),
];

/// What `fields=` and `cursor=` accept on a path: the fields of its rows and, for a list, the
/// pattern of its cursors.
fn list_shape(path: &str) -> Option<(&'static [&'static str], Option<&'static str>)> {
    Some(match path {
        "/api/v1/users" => (User::FIELDS, Some(<i64 as Cursor>::PATTERN)),
        "/api/v1/users/{id}" => (User::FIELDS, None),
        "/api/v1/users/{id}/tasks" => (Task::FIELDS, Some(DueDateKey::PATTERN)),
        "/api/v1/projects" => (Project::FIELDS, Some(ProjectKey::PATTERN)),
        "/api/v1/projects/{id}" => (Project::FIELDS, None),
        "/api/v1/projects/{id}/tasks" => (Task::FIELDS, Some(PriorityKey::PATTERN)),
        "/api/v1/tasks" => (Task::FIELDS, Some(<i64 as Cursor>::PATTERN)),
        "/api/v1/tasks/{id}" => (Task::FIELDS, None),
        _ => return None,
    })
}

/// Query strings of free text: anything but the NUL character (a 422).
const NO_NUL: &str = r"^[^\x00]*$";

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
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        complete_bodies(schemas);
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

/// Adds the body rules and takes `null` out of the PATCH fields that refuse it.
fn complete_bodies(schemas: &mut Map<String, Value>) {
    let bodies = BODY_RULES.into_iter().flat_map(|(resource, field, rule)| {
        ["Create", "Update"].map(|verb| (format!("{verb}{resource}"), field, rule))
    });
    for (schema, field, rule) in bodies {
        if let Some(Value::Object(property)) = schemas
            .get_mut(&schema)
            .and_then(|s| s.pointer_mut(&format!("/properties/{field}")))
            && let Value::Object(keywords) = rule.schema()
        {
            property.extend(keywords);
        }
    }
    // `?fields=` picks some properties of a row: none is required (all are there without it).
    for page in ["Page_User", "Page_Project", "Page_Task"] {
        if let Some(Value::Object(items)) = schemas
            .get_mut(page)
            .and_then(|s| s.pointer_mut("/properties/data/items"))
        {
            items.remove("required");
        }
    }
    for row in ["User", "Project", "Task"] {
        if let Some(Value::Object(schema)) = schemas.get_mut(row) {
            schema.remove("required");
            schema.insert(
                "description".to_owned(),
                json!(format!(
                    "A {}; every property is present unless `fields=` picks some.",
                    row.to_lowercase()
                )),
            );
        }
    }
    // The report request refuses unknown properties at both levels (`deny_unknown_fields`).
    if let Some(Value::Array(kinds)) = schemas.get_mut("ReportRequest").and_then(|s| s.get_mut("oneOf")) {
        for kind in kinds.iter_mut().filter_map(Value::as_object_mut) {
            kind.insert("additionalProperties".to_owned(), json!(false));
            if let Some(Value::Object(parameters)) =
                kind.get_mut("properties").and_then(|p| p.get_mut("parameters"))
            {
                parameters.insert("additionalProperties".to_owned(), json!(false));
            }
        }
    }
    for (schema, fields) in NOT_NULL {
        for field in fields {
            let field = validate::camel_case(field);
            if let Some(property) = schemas
                .get_mut(schema)
                .and_then(|s| s.pointer_mut(&format!("/properties/{field}")))
            {
                drop_null(property);
            }
        }
    }
}

/// `{"type": ["string", "null"]}` -> `{"type": "string"}`; `{"oneOf": [{"type": "null"}, X]}` -> X.
fn drop_null(property: &mut Value) {
    if let Some(Value::Array(types)) = property.get_mut("type") {
        types.retain(|t| t != "null");
        if let [only] = types.as_slice() {
            let only = only.clone();
            property["type"] = only;
        }
    }
    let other = property
        .get("oneOf")
        .and_then(Value::as_array)
        .and_then(|alternatives| {
            let rest: Vec<&Value> = alternatives
                .iter()
                .filter(|a| a.get("type") != Some(&json!("null")))
                .collect();
            match rest.as_slice() {
                [one] => Some((*one).clone()),
                _ => None,
            }
        });
    if let Some(other) = other {
        *property = other;
    }
}

/// Patterns of the query parameters: `fields` and `cursor`/`after` as the path's list accepts
/// them, other free text without NUL.
fn complete_parameters(path: &str, operation: &mut Map<String, Value>) {
    let shape = list_shape(path);
    let Some(parameters) = operation.get_mut("parameters").and_then(Value::as_array_mut) else {
        return;
    };
    for parameter in parameters.iter_mut().filter(|p| p["in"] == "query") {
        let name = parameter["name"].as_str().unwrap_or_default().to_owned();
        let Some(schema) = parameter.get_mut("schema").and_then(Value::as_object_mut) else {
            continue;
        };
        if schema.get("type") != Some(&json!("string")) || schema.contains_key("pattern") {
            continue;
        }
        let pattern = match (name.as_str(), shape) {
            ("fields", Some((fields, _))) => FieldSet::pattern(fields),
            ("cursor" | "after", Some((_, Some(cursor)))) => cursor.to_owned(),
            _ => NO_NUL.to_owned(),
        };
        schema.insert("pattern".to_owned(), Value::String(pattern));
    }
}

fn complete_operation(path: &str, method: &str, operation: &mut Map<String, Value>) {
    complete_parameters(path, operation);
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
            "Malformed JSON, a path or query parameter that does not parse, or a query parameter the route does not take",
        ));
    }
    if has_body || has_query {
        shared.push((
            "422",
            "A field breaks a rule: a NUL character, or a value PostgreSQL cannot store",
        ));
    }
    if has_body {
        shared.push((
            "409",
            "The body refers to a row that does not exist, or conflicts with one that does",
        ));
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
