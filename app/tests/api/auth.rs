//! Bearer tokens when configured: reads and writes need the API (or admin) token, deletes and the
//! admin routes the admin token, the probes, `/metrics` and the OpenAPI document nobody's; failures
//! are 401 (with `WWW-Authenticate`) or 403, counted, and described in the OpenAPI document.
use axum::{
    body::Body,
    http::{Method, Request, StatusCode, header},
};
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{TestApp, assert_problem, sample, spawn, spawn_with};

const FLAGS: [&str; 4] = ["--api-token", "user-secret", "--admin-token", "admin-secret"];

async fn call(app: &TestApp, method: Method, uri: &str, token: Option<&str>) -> StatusCode {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    app.request(request.body(Body::empty()).unwrap()).await.status
}

/// Asserts each `(method, uri, token, status)` in turn: `method uri` with `token` (if any) is
/// answered `status`.
async fn assert_answers<const N: usize>(app: &TestApp, calls: [(Method, &str, Option<&str>, StatusCode); N]) {
    for (method, uri, token, status) in calls {
        let what = format!("{method} {uri} with {token:?}");
        assert_eq!(call(app, method, uri, token).await, status, "{what}");
    }
}

#[sqlx::test(migrations = false)]
async fn tokens_gate_routes_by_what_they_do(pool: PgPool) {
    // Rows made before auth is on, through an app without tokens on the same database.
    let open = spawn(pool.clone()).await;
    let user = open.user("someone").await;
    let app = spawn_with(pool, &FLAGS).await;
    let user_uri = format!("/api/v1/users/{user}");

    let missing = app.get(&user_uri).await;
    assert_problem(&missing, StatusCode::UNAUTHORIZED, None);
    assert_eq!(missing.headers[header::WWW_AUTHENTICATE], "Bearer");
    let reads = [
        (
            Method::GET,
            user_uri.as_str(),
            Some("wrong"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            Method::GET,
            user_uri.as_str(),
            Some("user-secret"),
            StatusCode::OK,
        ),
        (
            Method::GET,
            user_uri.as_str(),
            Some("admin-secret"),
            StatusCode::OK,
        ),
    ];
    assert_answers(&app, reads).await;

    for admin_only in [
        "/api/v1/outbox",
        "/api/v1/jobs",
        "/api/v1/performance/dashboard",
        "/dashboard",
    ] {
        assert_eq!(
            call(&app, Method::GET, admin_only, Some("user-secret")).await,
            StatusCode::FORBIDDEN,
            "{admin_only}"
        );
        assert_ne!(
            call(&app, Method::GET, admin_only, Some("admin-secret")).await,
            StatusCode::FORBIDDEN,
            "{admin_only}"
        );
    }
    let deletes = [
        (
            Method::DELETE,
            user_uri.as_str(),
            Some("user-secret"),
            StatusCode::FORBIDDEN,
        ),
        (
            Method::DELETE,
            &user_uri,
            Some("admin-secret"),
            StatusCode::NO_CONTENT,
        ),
    ];
    assert_answers(&app, deletes).await;

    for open_route in ["/livez", "/readyz", "/health", "/metrics", "/openapi.json"] {
        assert_eq!(
            call(&app, Method::GET, open_route, None).await,
            StatusCode::OK,
            "{open_route}"
        );
    }
    let metrics = app.metrics().await;
    assert!(
        sample(
            &metrics,
            "perfstack_http_rejections_total{reason=\"unauthenticated\"}"
        ) >= Some(2.0),
        "{metrics}"
    );
    assert!(
        sample(&metrics, "perfstack_http_rejections_total{reason=\"forbidden\"}") >= Some(5.0),
        "{metrics}"
    );
    assert!(!metrics.contains("secret"), "tokens never reach the metrics");
}

#[sqlx::test(migrations = false)]
async fn without_tokens_everything_stays_open(pool: PgPool) {
    let app = spawn(pool).await;
    let user = app.user("open").await;
    let user_uri = format!("/api/v1/users/{user}");
    let calls = [
        (Method::GET, "/api/v1/outbox", None, StatusCode::OK),
        (Method::DELETE, user_uri.as_str(), None, StatusCode::NO_CONTENT),
    ];
    assert_answers(&app, calls).await;
    let created = app
        .post("/api/v1/users", json!({"email": "x@y.org", "username": "xyz"}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
}

#[sqlx::test(migrations = false)]
async fn the_openapi_document_says_which_token_each_route_needs(pool: PgPool) {
    let app = spawn(pool).await;
    let doc = app.get("/openapi.json").await.json;
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["apiToken"]["scheme"], "bearer");
    assert_eq!(schemes["adminToken"]["scheme"], "bearer");
    let paths = &doc["paths"];
    assert_eq!(
        paths["/api/v1/users/{id}"]["delete"]["security"],
        json!([{"adminToken": []}])
    );
    assert_eq!(
        paths["/api/v1/jobs/{id}/retry"]["post"]["security"],
        json!([{"adminToken": []}])
    );
    assert_eq!(
        paths["/api/v1/users/{id}"]["get"]["security"],
        json!([{"apiToken": []}, {"adminToken": []}])
    );
    assert!(paths["/livez"]["get"].get("security").is_none());
    assert!(
        paths["/api/v1/users/{id}"]["get"]["responses"]
            .get("401")
            .is_some()
    );
    assert!(
        paths["/api/v1/users/{id}"]["delete"]["responses"]
            .get("403")
            .is_some()
    );
}
