//! The export streams a project's tasks as one JSON array without holding them in memory.
use std::time::{Duration, Instant};

use axum::{
    body::Body,
    http::{Request, StatusCode, header},
};
use http_body_util::BodyExt;
use perfstack_app::http::export::{ExportGauge, ROWS_IN_FLIGHT, ROWS_PER_CHUNK};
use serde_json::json;
use sqlx::PgPool;
use tower::ServiceExt;

use crate::helpers::{TestApp, spawn, spawn_with_big_project, spawn_with_project};

/// `GET /api/v1/projects/{project}/tasks/export`.
fn export(project: i64) -> Request<Body> {
    Request::builder()
        .uri(format!("/api/v1/projects/{project}/tasks/export"))
        .body(Body::empty())
        .unwrap()
}

#[sqlx::test(migrations = false)]
async fn export_is_a_json_array_of_all_the_projects_tasks(pool: PgPool) {
    let (app, owner, project) = spawn_with_project(pool).await;
    let other = app.project(owner, "q").await;
    let empty = app.project(owner, "e").await;
    for i in 0..7 {
        app.task(json!({"projectId": project, "title": format!("t{i}"), "priority": i % 5}))
            .await;
    }
    app.task(json!({"projectId": other, "title": "not exported"}))
        .await;

    let reply = app.get(&format!("/api/v1/projects/{project}/tasks/export")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type(), "application/json");
    assert!(reply.headers.get(header::CONTENT_LENGTH).is_none());
    let listed = app.get(&format!("/api/v1/tasks?projectId={project}")).await.json;
    assert_eq!(reply.json, listed["data"]);
    assert_eq!(reply.json.as_array().unwrap().len(), 7);

    let none = app.get(&format!("/api/v1/projects/{empty}/tasks/export")).await;
    assert_eq!(none.json, json!([]));
    app.assert_gone("/api/v1/projects/999999/tasks/export").await;
}

/// 1,000,000 rows are streamed chunk by chunk while the rows between the database and the
/// response body never exceed the channel bound: nothing is buffered whole.
#[sqlx::test(migrations = false)]
async fn a_million_rows_stream_with_bounded_rows_in_flight(pool: PgPool) {
    const ROWS: i64 = 1_000_000;
    let insert = "INSERT INTO tasks (project_id, title, priority, due_date)
         SELECT $1, 'task ' || i, (i % 5)::smallint, date '2026-01-01' + (i % 365)::int
         FROM generate_series(1, $2::bigint) AS i";
    let (app, project) = spawn_with_big_project(&pool, insert, ROWS).await;

    let response = app.router.clone().oneshot(export(project)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let gauge = app.state.exports.clone();
    let bound = i64::try_from(ROWS_IN_FLIGHT + ROWS_PER_CHUNK + 2).unwrap();

    let mut rows = 0_i64;
    let mut chunks = 0_u64;
    let mut first = Vec::new();
    let mut last = Vec::new();
    let started = Instant::now();
    while let Some(frame) = body.frame().await {
        let data = frame.unwrap().into_data().unwrap();
        chunks += 1;
        if chunks == 2 {
            // A slow client: while it waits the reader fills the channel, then stops at the bound
            // instead of running ahead.
            let held = wait_for_rows_held(&gauge, i64::try_from(ROWS_IN_FLIGHT).unwrap()).await;
            assert!(held > 0 && held <= bound, "rows held while client waits: {held}");
            tokio::time::sleep(Duration::from_millis(200)).await;
            let held = gauge.in_flight();
            assert!(held <= bound, "rows held while client waits: {held}");
        }
        // one `{` per task: the rows are flat objects and the titles hold no braces
        rows += i64::try_from(data.iter().filter(|b| **b == b'{').count()).unwrap();
        if first.is_empty() {
            first = data.to_vec();
        }
        last = data.to_vec();
    }
    assert_eq!(rows, ROWS);
    assert_eq!(first, b"[");
    assert_eq!(last, b"]");
    assert!(chunks > 1000, "streamed in {chunks} chunks");
    assert!(gauge.peak() <= bound, "peak rows held: {}", gauge.peak());
    assert_eq!(gauge.in_flight(), 0);
    eprintln!(
        "exported {rows} rows in {chunks} chunks, {:?}, peak {} rows held",
        started.elapsed(),
        gauge.peak()
    );
}

/// A user and their project "big" of `tasks` tasks titled `task <n>`, inserted directly; returns both
/// ids.
async fn big_project(app: &TestApp, pool: &PgPool, tasks: i64) -> (i64, i64) {
    let (owner, project) = app.user_with_project("owner", "big").await;
    sqlx::query(
        "INSERT INTO tasks (project_id, title) SELECT $1, 'task ' || i FROM generate_series(1, $2::bigint) AS i",
    )
    .bind(project)
    .bind(tasks)
    .execute(pool)
    .await
    .unwrap();
    (owner, project)
}

/// A client that goes away mid-export stops the database read and frees its connection.
#[sqlx::test(migrations = false)]
async fn a_client_leaving_mid_export_releases_rows_and_connection(pool: PgPool) {
    let app = spawn(pool.clone()).await;
    let (_owner, project) = big_project(&app, &pool, 50_000).await;
    let response = app.router.clone().oneshot(export(project)).await.unwrap();
    let mut body = response.into_body();
    body.frame().await.unwrap().unwrap();
    body.frame().await.unwrap().unwrap();
    let gauge = app.state.exports.clone();
    assert!(wait_for_rows_held(&gauge, 1).await > 0);
    drop(body);

    let db_pool = app.db().pool();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let busy = db_pool.size() as usize - db_pool.num_idle();
        if gauge.in_flight() == 0 && busy == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still held: {} rows, {busy} connections",
            gauge.in_flight()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (up to 30 s, for loaded machines) until the export holds at least `rows` rows; returns
/// what it holds then.
async fn wait_for_rows_held(gauge: &ExportGauge, rows: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    while gauge.in_flight() < rows && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gauge.in_flight()
}

/// Slow readers cannot starve the API: exports whose clients read nothing hold no connection
/// (they read in short batches), so other requests are served with a pool of two; past the lane's
/// cap a further export is a 503; and a reader idle past the cut-off is dropped, freeing its place.
#[sqlx::test(migrations = false)]
async fn slow_readers_neither_starve_the_pool_nor_hold_the_lane(pool: PgPool) {
    let app = crate::helpers::spawn_limited(
        &pool,
        None,
        &[
            "--db-pool-max",
            "2",
            "--db-pool-min",
            "0",
            "--db-acquire-timeout-ms",
            "2000",
        ],
        &["--export-max-concurrent", "6", "--export-idle-timeout-ms", "1500"],
    )
    .await;
    let (owner, project) = big_project(&app, &pool, 20_000).await;
    // Six clients start an export and then read nothing.
    let mut stalled = Vec::new();
    for _ in 0..6 {
        let response = app.router.clone().oneshot(export(project)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        stalled.push(response.into_body());
    }
    // Everyone else is served, one request after the other, with a pool of two connections.
    for _ in 0..10 {
        assert_eq!(
            app.get(&format!("/api/v1/users/{owner}")).await.status,
            StatusCode::OK
        );
        assert_eq!(app.get("/api/v1/tasks?limit=5").await.status, StatusCode::OK);
    }
    let busy = app.get(&format!("/api/v1/projects/{project}/tasks/export")).await;
    crate::helpers::assert_problem(&busy, StatusCode::SERVICE_UNAVAILABLE, None);
    assert_eq!(busy.headers[header::RETRY_AFTER], "1");
    // Past the idle cut-off the stalled exports give their places back.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = app.metrics().await;
        if crate::helpers::sample(&metrics, "perfstack_http_export_cutoffs_total") == Some(6.0) {
            assert!(metrics.contains("perfstack_http_rejections_total{reason=\"export_limit\"} 1"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stalled exports were never cut off"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let again = app.get(&format!("/api/v1/projects/{project}/tasks/export")).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json.as_array().map(Vec::len), Some(20_000));
    drop(stalled);
}
