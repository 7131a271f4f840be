//! Every error class is a 4xx (or 503) with a problem+json body; the field is named when known.
use std::io::Read;

use axum::{
    body::Body,
    http::{Method, Request, StatusCode, header},
};
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{assert_problem, spawn, spawn_with, spawn_with_project};

fn raw(method: Method, uri: &str, content_type: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body.to_owned()))
        .unwrap()
}

#[sqlx::test(migrations = false)]
async fn malformed_and_mistyped_bodies(pool: PgPool) {
    let app = spawn(pool).await;
    let post = |body: &str| raw(Method::POST, "/api/v1/users", "application/json", body);

    let reply = app.request(post(r#"{"email": "a@b.org", "#)).await;
    assert_problem(&reply, StatusCode::BAD_REQUEST, None);
    let reply = app
        .request(post(r#"{"email": "a@b.org", "username": "abc"} trailing"#))
        .await;
    assert_problem(&reply, StatusCode::BAD_REQUEST, None);
    let reply = app.request(post(r#"{"email": 42, "username": "abc"}"#)).await;
    assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY, Some("email"));
    let reply = app.request(post(r#"{"email": "a@b.org"}"#)).await;
    assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY, Some("username"));
    let reply = app
        .request(post(
            r#"{"email": "a@b.org", "username": "abc", "isAdmin": true}"#,
        ))
        .await;
    assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY, Some("isAdmin"));
    let reply = app
        .request(post(r#"{"email": "a@b.org", "username": "abc", "role": "god"}"#))
        .await;
    assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY, Some("role"));
    let reply = app
        .request(raw(Method::POST, "/api/v1/users", "text/plain", "hi"))
        .await;
    assert_problem(&reply, StatusCode::UNSUPPORTED_MEDIA_TYPE, None);
    let reply = app
        .request(raw(
            Method::POST,
            "/api/v1/tasks",
            "application/json",
            r#"{"projectId": 1, "title": "t", "dueDate": "tomorrow"}"#,
        ))
        .await;
    assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY, Some("dueDate"));
}

#[sqlx::test(migrations = false)]
async fn validation_names_the_field(pool: PgPool) {
    let (app, owner, project) = spawn_with_project(pool).await;
    let cases = [
        (
            "/api/v1/users",
            json!({"email": "not-an-email", "username": "abc"}),
            "email",
        ),
        (
            "/api/v1/users",
            json!({"email": "a@b.org", "username": "a b"}),
            "username",
        ),
        (
            "/api/v1/users",
            json!({"email": "a@b.org", "username": "abc", "firstName": "x".repeat(101)}),
            "firstName",
        ),
        (
            "/api/v1/projects",
            json!({"ownerId": owner, "name": "  "}),
            "name",
        ),
        ("/api/v1/projects", json!({"ownerId": 0, "name": "n"}), "ownerId"),
        (
            "/api/v1/tasks",
            json!({"projectId": project, "title": ""}),
            "title",
        ),
        (
            "/api/v1/tasks",
            json!({"projectId": project, "title": "t", "priority": 5}),
            "priority",
        ),
        (
            "/api/v1/tasks",
            json!({"projectId": project, "title": "t", "priority": -1}),
            "priority",
        ),
    ];
    for (uri, body, field) in cases {
        let reply = app.post(uri, body.clone()).await;
        assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY, Some(field));
    }
    let reply = app
        .patch(&format!("/api/v1/tasks/{project}"), json!({"priority": 99}))
        .await;
    assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY, Some("priority"));
}

#[sqlx::test(migrations = false)]
async fn constraint_violations_map_to_409_and_422(pool: PgPool) {
    let app = spawn(pool).await;
    let (_ann, project) = app.user_with_project("ann", "p").await;

    let bob = app.user("bob").await;
    let conflicts = [
        (
            Method::POST,
            "/api/v1/users".to_owned(),
            json!({"email": "ANN@example.com", "username": "other"}),
            "email",
        ),
        (
            Method::POST,
            "/api/v1/users".to_owned(),
            json!({"email": "x@example.com", "username": "ann"}),
            "username",
        ),
        (
            Method::PATCH,
            format!("/api/v1/users/{bob}"),
            json!({"username": "ann"}),
            "username",
        ),
        (
            Method::POST,
            "/api/v1/projects".to_owned(),
            json!({"ownerId": 999_999, "name": "p"}),
            "ownerId",
        ),
        (
            Method::POST,
            "/api/v1/tasks".to_owned(),
            json!({"projectId": 999_999, "title": "t"}),
            "projectId",
        ),
        (
            Method::POST,
            "/api/v1/tasks".to_owned(),
            json!({"projectId": project, "title": "t", "assigneeId": 999_999}),
            "assigneeId",
        ),
    ];
    app.assert_refused(StatusCode::CONFLICT, conflicts).await;
}

#[sqlx::test(migrations = false)]
async fn routing_errors_are_problems(pool: PgPool) {
    let app = spawn(pool).await;
    app.assert_bad_query("/api/v1/users/abc", "id").await;
    app.assert_bad_query("/api/v1/users/99999999999999999999", "id")
        .await;
    assert_problem(&app.get("/api/v1/nothing").await, StatusCode::NOT_FOUND, None);
    assert_problem(&app.get("/api/v1/users/1").await, StatusCode::NOT_FOUND, None);
    assert_problem(&app.get("/api/v1/projects/1").await, StatusCode::NOT_FOUND, None);
    assert_problem(&app.get("/api/v1/tasks/1").await, StatusCode::NOT_FOUND, None);
    let put = app.send(Method::PUT, "/api/v1/users/1", Some(json!({}))).await;
    assert_problem(&put, StatusCode::METHOD_NOT_ALLOWED, None);
    let allow = put.headers[header::ALLOW].to_str().unwrap();
    assert!(allow.contains("PATCH"), "{allow}");
}

/// A query parameter of the wrong value, or one the route does not take (a typo, a guess), is a
/// 400 naming it, not silently ignored; the probes, which document no 400, take anything.
#[sqlx::test(migrations = false)]
async fn bad_query_parameters(pool: PgPool) {
    let app = spawn(pool).await;
    for (uri, field) in [
        ("/api/v1/users?limit=ten", "limit"),
        ("/api/v1/users?page=-1", "page"),
        ("/api/v1/users?page=0", "page"),
        ("/api/v1/users?cursor=bm90IGEgY3Vyc29y", "cursor"),
        ("/api/v1/users?limit=-1", "limit"),
        ("/api/v1/projects?status=done", "status"),
        ("/api/v1/tasks?limt=5", "limt"),
        ("/api/v1/projects?page=1&v=false", "v"),
        ("/api/v1/users?=null", ""),
    ] {
        app.assert_bad_query(uri, field).await;
    }
    assert_eq!(
        app.get("/api/v1/tasks?page=1&limit=5").await.status,
        StatusCode::OK
    );
    assert_eq!(app.get("/livez?verbose").await.status, StatusCode::OK);
    // a cursor of another list is refused, not misread
    let (_owner, project) = app.user_with_project("owner", "p").await;
    for i in 0..3 {
        app.task(json!({"projectId": project, "title": format!("t{i}")}))
            .await;
    }
    let tasks = app
        .get(&format!("/api/v1/projects/{project}/tasks?limit=1&cursor="))
        .await
        .json;
    let cursor = tasks["pagination"]["nextCursor"].as_str().unwrap();
    app.assert_bad_query(&format!("/api/v1/users?cursor={cursor}"), "cursor")
        .await;
}

#[sqlx::test(migrations = false)]
async fn oversized_body_is_413(pool: PgPool) {
    let app = spawn_with(pool, &["--body-limit", "256"]).await;
    let big = json!({"email": "a@b.org", "username": "abc", "firstName": "x".repeat(400)});
    let reply = app.post("/api/v1/users", big).await;
    assert_problem(&reply, StatusCode::PAYLOAD_TOO_LARGE, None);
    let small = app
        .post("/api/v1/users", json!({"email": "a@b.org", "username": "abc"}))
        .await;
    assert_eq!(small.status, StatusCode::CREATED);
}

async fn fetch(
    app: &crate::helpers::TestApp,
    uri: &str,
    headers: &[(&str, &str)],
) -> (Option<String>, Vec<u8>) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let mut request = Request::builder().uri(uri);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = app
        .router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let encoding = response
        .headers()
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (encoding, body.to_vec())
}

#[sqlx::test(migrations = false)]
async fn large_bodies_are_compressed_unless_asked_not_to(pool: PgPool) {
    let app = spawn(pool).await;
    for i in 0..30 {
        app.user(&format!("user{i:02}")).await;
    }
    let uri = "/api/v1/users?limit=30";
    let (plain_enc, plain) = fetch(&app, uri, &[]).await;
    assert_eq!(plain_enc, None);
    assert!(plain.len() > 1024);

    let (enc, gz) = fetch(&app, uri, &[("accept-encoding", "gzip")]).await;
    assert_eq!(enc.as_deref(), Some("gzip"));
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut decoded)
        .unwrap();
    assert_eq!(decoded, plain);

    let (enc, br) = fetch(&app, uri, &[("accept-encoding", "br")]).await;
    assert_eq!(enc.as_deref(), Some("br"));
    let mut decoded = Vec::new();
    brotli::Decompressor::new(&br[..], 4096)
        .read_to_end(&mut decoded)
        .unwrap();
    assert_eq!(decoded, plain);
    assert!(br.len() < plain.len());

    let (enc, body) = fetch(
        &app,
        uri,
        &[("accept-encoding", "gzip, br"), ("x-no-compression", "1")],
    )
    .await;
    assert_eq!(enc, None);
    assert_eq!(body, plain);

    // under 1 KiB: sent as is
    let (enc, _) = fetch(&app, "/api/v1/users?limit=1", &[("accept-encoding", "gzip")]).await;
    assert_eq!(enc, None);
}

/// `--compression-level` reaches both codecs: level 0 stores (a gzip body larger than the plain
/// one), the default compresses; either way the body decodes to the same bytes.
#[sqlx::test(migrations = false)]
async fn the_compression_level_flag_sets_how_hard_the_codecs_work(pool: PgPool) {
    let stored = spawn_with(pool.clone(), &["--compression-level", "0"]).await;
    for i in 0..30 {
        stored.user(&format!("user{i:02}")).await;
    }
    let uri = "/api/v1/users?limit=30";
    let (_, plain) = fetch(&stored, uri, &[]).await;
    let (enc, gz0) = fetch(&stored, uri, &[("accept-encoding", "gzip")]).await;
    assert_eq!(enc.as_deref(), Some("gzip"));
    assert!(
        gz0.len() > plain.len(),
        "level 0 stores: {} > {}",
        gz0.len(),
        plain.len()
    );
    let (_, br0) = fetch(&stored, uri, &[("accept-encoding", "br")]).await;

    let default = spawn(pool).await;
    let (_, gz6) = fetch(&default, uri, &[("accept-encoding", "gzip")]).await;
    assert!(
        gz6.len() * 2 < plain.len(),
        "level 6 compresses: {} of {}",
        gz6.len(),
        plain.len()
    );
    let (_, br4) = fetch(&default, uri, &[("accept-encoding", "br")]).await;
    assert!(
        br4.len() < br0.len(),
        "brotli 4 {} < brotli 0 {}",
        br4.len(),
        br0.len()
    );
    for gz in [gz0, gz6] {
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, plain);
    }
}

#[sqlx::test(migrations = false)]
async fn probes_and_openapi(pool: PgPool) {
    let app = spawn(pool).await;
    assert_eq!(app.get("/livez").await.status, StatusCode::OK);
    assert_eq!(app.get("/readyz").await.status, StatusCode::OK);
    let health = app.get("/health").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json["status"], "healthy");
    assert_eq!(health.json["services"]["database"], "up");
    assert!(health.json["uptimeSeconds"].is_u64());
    assert!(health.json["memoryRssBytes"].as_u64().unwrap() > 0);
    assert!(health.json["version"].is_string());
    let timestamp = health.json["timestamp"].as_str().unwrap();
    let measured = chrono::DateTime::parse_from_rfc3339(timestamp).unwrap();
    assert!(
        (chrono::Utc::now() - measured.to_utc()).num_seconds().abs() < 60,
        "{timestamp}"
    );
    assert_eq!(health.json["external"], json!({}));

    let doc = app.get("/openapi.json").await.json;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("/api/v1/users", vec!["get", "post"]),
        ("/api/v1/users/{id}", vec!["delete", "get", "patch"]),
        ("/api/v1/users/{id}/tasks", vec!["get"]),
        ("/api/v1/projects", vec!["get", "post"]),
        ("/api/v1/projects/{id}", vec!["delete", "get", "patch"]),
        ("/api/v1/projects/{id}/tasks", vec!["get"]),
        ("/api/v1/projects/{id}/tasks/export", vec!["get"]),
        ("/api/v1/tasks", vec!["get", "post"]),
        ("/api/v1/tasks/{id}", vec!["delete", "get", "patch"]),
        ("/livez", vec!["get"]),
        ("/readyz", vec!["get"]),
        ("/health", vec!["get"]),
        ("/openapi.json", vec!["get"]),
    ];
    for (path, methods) in expected {
        let item = paths.get(path).unwrap_or_else(|| panic!("{path} missing"));
        let mut have: Vec<&str> = item.as_object().unwrap().keys().map(String::as_str).collect();
        have.sort_unstable();
        assert_eq!(have, methods, "{path}");
    }
    for schema in ["User", "Project", "Task", "Problem", "CreateUser", "UpdateTask"] {
        assert!(doc["components"]["schemas"].get(schema).is_some(), "{schema}");
    }
}

#[sqlx::test(migrations = false)]
async fn every_response_carries_a_request_id(pool: PgPool) {
    let app = spawn(pool).await;
    let reply = app.get("/api/v1/users/77").await;
    let id = reply.headers["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "{id}");
    let given = Request::builder()
        .uri("/livez")
        .header("x-request-id", "abc-123")
        .body(Body::empty())
        .unwrap();
    let reply = app.request(given).await;
    assert_eq!(reply.headers["x-request-id"], "abc-123");
}

#[sqlx::test(migrations = false)]
async fn readiness_fails_when_the_database_is_gone(pool: PgPool) {
    let app = spawn(pool).await;
    app.db().pool().close().await;
    let ready = app.get("/readyz").await;
    assert_problem(&ready, StatusCode::SERVICE_UNAVAILABLE, None);
    let health = app.get("/health").await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health.json["services"]["database"], "down");
    assert_eq!(app.get("/livez").await.status, StatusCode::OK);
}

/// With every connection busy, requests fail fast with 503 + Retry-After (the export too, before
/// it commits to a 200), and recover when connections come back.
#[sqlx::test(migrations = false)]
async fn exhausted_pool_is_503_with_retry_after(
    pool_opts: sqlx::postgres::PgPoolOptions,
    connect: sqlx::postgres::PgConnectOptions,
) {
    let pool = pool_opts
        .max_connections(2)
        .acquire_timeout(std::time::Duration::from_millis(300))
        .connect_with(connect)
        .await
        .unwrap();
    let (app, owner, project) = spawn_with_project(pool.clone()).await;

    let held = (pool.acquire().await.unwrap(), pool.acquire().await.unwrap());
    for uri in [
        format!("/api/v1/users/{owner}"),
        format!("/api/v1/projects/{project}/tasks/export"),
    ] {
        let reply = app.get(&uri).await;
        assert_problem(&reply, StatusCode::SERVICE_UNAVAILABLE, None);
        assert_eq!(reply.headers[header::RETRY_AFTER], "1");
    }
    drop(held);
    assert_eq!(
        app.get(&format!("/api/v1/users/{owner}")).await.status,
        StatusCode::OK
    );
}

#[sqlx::test(migrations = false)]
async fn null_for_a_required_field_is_422(pool: PgPool) {
    let app = spawn(pool).await;
    let (owner, project, task) = app.owner_project_task().await;
    let cases = [
        (format!("/api/v1/users/{owner}"), json!({"email": null}), "email"),
        (
            format!("/api/v1/projects/{project}"),
            json!({"name": null}),
            "name",
        ),
        (
            format!("/api/v1/tasks/{}", task["id"]),
            json!({"title": null}),
            "title",
        ),
        (
            format!("/api/v1/tasks/{}", task["id"]),
            json!({"priority": null}),
            "priority",
        ),
    ];
    for (uri, body, field) in cases {
        let reply = app.patch(&uri, body).await;
        assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY, Some(field));
    }
    // null still clears the nullable ones
    let cleared = app
        .patch(
            &format!("/api/v1/tasks/{}", task["id"]),
            json!({"description": null}),
        )
        .await;
    assert_eq!(cleared.status, StatusCode::OK);
}
