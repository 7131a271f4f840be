//! Bounded work per request: PostgreSQL session limits on every connection of `serve`'s pool, the
//! request deadline, load shedding when the pool's wait queue is full, and input PostgreSQL cannot
//! store (a NUL character) answered 422 naming the field instead of 500.
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode, header};
use perfstack_app::http::error::ApiError;
use serde_json::{Value, json};
use sqlx::{PgPool, Postgres, Transaction};

use crate::helpers::{TestApp, assert_problem, sample, spawn, spawn_limited};

/// The app as `serve` builds it with the database flags `db_flags` (session limits, pool).
async fn spawn_with_db(pool: &PgPool, db_flags: &[&str]) -> TestApp {
    spawn_limited(pool, None, db_flags, &[]).await
}

/// Locks the row of `task` in a transaction of its own, held until the transaction is dropped or
/// ended.
async fn lock_row(pool: &PgPool, task: &Value) -> Transaction<'static, Postgres> {
    let mut holder = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE")
        .bind(task["id"].as_i64().unwrap())
        .execute(&mut *holder)
        .await
        .unwrap();
    holder
}

#[sqlx::test(migrations = false)]
async fn every_connection_carries_the_session_limits(pool: PgPool) {
    let app = spawn_with_db(
        &pool,
        &[
            "--statement-timeout-ms",
            "1500",
            "--lock-wait-timeout-ms",
            "700",
            "--idle-in-transaction-timeout-ms",
            "9000",
        ],
    )
    .await;
    let show = |name: &'static str| {
        let db = app.db().clone();
        async move {
            let sql: &'static str = match name {
                "statement_timeout" => "SHOW statement_timeout",
                "lock_timeout" => "SHOW lock_timeout",
                _ => "SHOW idle_in_transaction_session_timeout",
            };
            db.fetch_value::<String>("test.show", sql).await.unwrap()
        }
    };
    assert_eq!(show("statement_timeout").await, "1500ms");
    assert_eq!(show("lock_timeout").await, "700ms");
    assert_eq!(show("idle").await, "9s");
    // A statement past its limit is cancelled and answered as a retryable 503.
    let err = app
        .db()
        .fetch_value::<String>("test.sleep", "SELECT pg_sleep(3)::text")
        .await
        .unwrap_err();
    assert_eq!(
        err.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("57014")
    );
    assert_eq!(ApiError::from(err).status(), StatusCode::SERVICE_UNAVAILABLE);
}

/// A write that waits on a row another transaction holds gives up after the lock timeout with a
/// 503 + Retry-After, counted as `lock_timeout`.
#[sqlx::test(migrations = false)]
async fn a_write_waiting_on_a_lock_gives_up_with_503(pool: PgPool) {
    let app = spawn_with_db(&pool, &["--lock-wait-timeout-ms", "300"]).await;
    let (_owner, _project, task) = app.owner_project_task().await;
    let uri = format!("/api/v1/tasks/{}", task["id"]);
    let holder = lock_row(&pool, &task).await;

    let reply = app.patch(&uri, json!({"title": "blocked"})).await;
    assert_problem(&reply, StatusCode::SERVICE_UNAVAILABLE, None);
    assert_eq!(reply.headers[header::RETRY_AFTER], "1");
    assert!(
        app.metrics()
            .await
            .contains("perfstack_http_rejections_total{reason=\"lock_timeout\"} 1")
    );
    holder.rollback().await.unwrap();
    assert_eq!(
        app.patch(&uri, json!({"title": "free"})).await.status,
        StatusCode::OK
    );
}

/// A transaction left idle is ended by PostgreSQL; what comes after is a retryable 503.
#[sqlx::test(migrations = false)]
async fn an_idle_transaction_is_ended_by_the_server(pool: PgPool) {
    let app = spawn_with_db(&pool, &["--idle-in-transaction-timeout-ms", "200"]).await;
    let mut tx = app.db().begin("test.idle", "BEGIN; SELECT 1").await.unwrap();
    sqlx::query("SELECT 1").execute(tx.conn()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let err = sqlx::query("SELECT 1").execute(tx.conn()).await.unwrap_err();
    assert_eq!(ApiError::from(err).status(), StatusCode::SERVICE_UNAVAILABLE);
}

/// A request whose response has not started by the deadline is answered 503 + Retry-After.
#[sqlx::test(migrations = false)]
async fn a_request_past_its_deadline_is_503(pool: PgPool) {
    let app = spawn_limited(
        &pool,
        None,
        &["--lock-wait-timeout-ms", "0", "--statement-timeout-ms", "0"],
        &["--request-timeout-ms", "2000"],
    )
    .await;
    let (_owner, _project, task) = app.owner_project_task().await;
    let holder = lock_row(&pool, &task).await;
    let started = Instant::now();
    let reply = app
        .patch(&format!("/api/v1/tasks/{}", task["id"]), json!({"title": "late"}))
        .await;
    assert_problem(&reply, StatusCode::SERVICE_UNAVAILABLE, None);
    assert_eq!(reply.headers[header::RETRY_AFTER], "1");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        app.metrics()
            .await
            .contains("perfstack_http_rejections_total{reason=\"request_timeout\"} 1")
    );
    holder.rollback().await.unwrap();
}

/// With the one connection busy and the wait queue full, the next request is answered 503 at
/// once instead of waiting for the (long) acquire timeout.
#[sqlx::test(migrations = false)]
async fn a_full_wait_queue_sheds_at_once(pool: PgPool) {
    let app = spawn_with_db(
        &pool,
        &[
            "--db-pool-min",
            "0",
            "--db-pool-max",
            "1",
            "--db-acquire-timeout-ms",
            "60000",
            "--db-queue-per-connection",
            "1",
        ],
    )
    .await;
    let user = app.user("queued").await;
    // Writes refresh list totals in the background: take the connection once they are done.
    let started = Instant::now();
    let busy = loop {
        match app.db().begin("test.hold", "BEGIN").await {
            Ok(tx) => break tx,
            Err(err) => assert!(started.elapsed() < Duration::from_secs(20), "{err}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let waiter = {
        let app_router = app.router.clone();
        tokio::spawn(async move {
            use tower::ServiceExt;
            let request = axum::http::Request::get(format!("/api/v1/users/{user}"))
                .body(axum::body::Body::empty())
                .unwrap();
            app_router.oneshot(request).await.unwrap().status()
        })
    };
    // Let the waiter queue, then ask once more.
    let started = Instant::now();
    while !app.metrics().await.contains("perfstack_db_pool_waiting 1") {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the waiter never queued"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let reply = app.get("/api/v1/users?limit=1").await;
    assert_problem(&reply, StatusCode::SERVICE_UNAVAILABLE, None);
    assert_eq!(reply.headers[header::RETRY_AFTER], "1");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "shed only after {:?}",
        started.elapsed()
    );
    let metrics = app.metrics().await;
    assert!(
        sample(&metrics, "perfstack_db_pool_shed_total") >= Some(1.0),
        "{metrics}"
    );
    busy.rollback().await.unwrap();
    assert_eq!(
        waiter.await.unwrap(),
        StatusCode::OK,
        "the queued request is served"
    );
}

/// A NUL character in any text field or query parameter is a 422 naming it, never a 500.
#[sqlx::test(migrations = false)]
async fn nul_characters_are_422_naming_the_field(pool: PgPool) {
    let app = spawn(pool).await;
    let (owner, project, task) = app.owner_project_task().await;
    let cases = [
        (
            Method::POST,
            "/api/v1/users".to_owned(),
            json!({"email": "a@b.org", "username": "abc", "firstName": "a\u{0}b"}),
            "firstName",
        ),
        (
            Method::POST,
            "/api/v1/users".to_owned(),
            json!({"email": "a\u{0}@b.org", "username": "abd"}),
            "email",
        ),
        (
            Method::POST,
            "/api/v1/tasks".to_owned(),
            json!({"projectId": project, "title": "a\u{0}b"}),
            "title",
        ),
        (
            Method::POST,
            "/api/v1/projects".to_owned(),
            json!({"ownerId": owner, "name": "p", "description": "\u{0}"}),
            "description",
        ),
        (
            Method::PATCH,
            format!("/api/v1/tasks/{}", task["id"]),
            json!({"description": "x\u{0}"}),
            "description",
        ),
        (
            Method::PATCH,
            format!("/api/v1/users/{owner}"),
            json!({"lastName": "\u{0}"}),
            "lastName",
        ),
    ];
    app.assert_refused(StatusCode::UNPROCESSABLE_ENTITY, cases).await;
    for (uri, parameter) in [
        ("/api/v1/tasks?q=%00", "q"),
        ("/api/v1/users?email=a%00b", "email"),
    ] {
        assert_problem(
            &app.get(uri).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(parameter),
        );
    }
    let reply = app.get("/api/v1/projects?limit=5&name=%00").await;
    assert_ne!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", reply.json);
}

/// Whatever PostgreSQL refuses as data (SQLSTATE class 22) is a 422, never a 500.
#[sqlx::test(migrations = false)]
async fn data_exceptions_are_422(pool: PgPool) {
    let err = sqlx::query("SELECT $1::text")
        .bind("a\u{0}b")
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(
        err.as_database_error()
            .and_then(|e| e.code())
            .is_some_and(|c| c.starts_with("22"))
    );
    assert_eq!(ApiError::from(err).status(), StatusCode::UNPROCESSABLE_ENTITY);
    let err = sqlx::query("SELECT 1 / $1::int")
        .bind(0)
        .execute(&pool)
        .await
        .unwrap_err();
    assert_eq!(ApiError::from(err).status(), StatusCode::UNPROCESSABLE_ENTITY);
}
