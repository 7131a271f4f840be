//! The database going away mid-run: every request is a 503 with `Retry-After` (never a 500), the
//! pod stays ready (readiness is its own state), `/health` says the database is down, and requests
//! succeed again once it is back.
use std::time::{Duration, Instant};

use axum::http::{StatusCode, header};
use serde_json::json;
use sqlx::PgPool;

use crate::{
    helpers::{assert_problem, database_url, spawn_limited},
    proxy::Proxy,
};

#[sqlx::test(migrations = false)]
async fn a_database_that_goes_away_is_503_with_retry_after_never_500(pool: PgPool) {
    let mut proxy = Proxy::to_postgres();
    proxy.start().await;
    let url = proxy.url(&database_url(&pool));
    let app = spawn_limited(
        &pool,
        Some(&url),
        &["--db-pool-max", "4", "--db-acquire-timeout-ms", "1000"],
        &[],
    )
    .await;
    let (owner, project, task) = app.owner_project_task().await;
    let task = task["id"].as_i64().unwrap();

    proxy.stop().await;
    for round in 0..3 {
        let replies = [
            app.get(&format!("/api/v1/tasks/{task}?fields=id")).await,
            app.get("/api/v1/users?limit=5").await,
            app.get(&format!("/api/v1/projects/{project}/tasks/export")).await,
            app.post("/api/v1/tasks", json!({"projectId": project, "title": "new"}))
                .await,
            app.patch(&format!("/api/v1/tasks/{task}"), json!({"title": "x"}))
                .await,
            app.delete(&format!("/api/v1/users/{owner}")).await,
        ];
        for reply in replies {
            assert_problem(&reply, StatusCode::SERVICE_UNAVAILABLE, None);
            assert_eq!(
                reply.headers[header::RETRY_AFTER],
                "1",
                "round {round}: {}",
                reply.json
            );
        }
    }
    assert_eq!(app.get("/readyz").await.status, StatusCode::OK);
    let health = app.get("/health").await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health.json["services"]["database"], "down");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("perfstack_http_rejections_total{reason=\"database_unavailable\"}")
            || metrics.contains("perfstack_http_rejections_total{reason=\"database_busy\"}"),
        "{metrics}"
    );

    proxy.start().await;
    let started = Instant::now();
    loop {
        let reply = app.get(&format!("/api/v1/tasks/{task}")).await;
        if reply.status == StatusCode::OK {
            break;
        }
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.json);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the database never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
