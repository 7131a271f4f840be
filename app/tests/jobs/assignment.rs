//! The task routes request the assignment email in the transaction that writes the task: both
//! commit or neither does, and concurrent PATCHes of one task see each other's assignee.
use std::time::Duration;

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode},
};
use http_body_util::BodyExt;
use perfstack_app::{
    db::{Db, QueryMonitor},
    jobs::JobQueue,
};
use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use tower::ServiceExt;

use crate::{
    api::{app, call},
    support::{cleanup, execute, job_queue, seed},
};

/// A second user, to assign tasks to.
async fn bob(pool: &PgPool) -> i64 {
    sqlx::query_scalar("INSERT INTO users (email, username) VALUES ('bob@example.com', 'bob') RETURNING id")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn requests(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM job_requests")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn assignee(pool: &PgPool, task: i64) -> Option<i64> {
    sqlx::query_scalar("SELECT assignee_id FROM tasks WHERE id = $1")
        .bind(task)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn patch_assignee(app: &Router, task: i64, user: i64) -> StatusCode {
    let body = format!(r#"{{"assigneeId":{user}}}"#);
    call(app, "PATCH", &format!("/api/v1/tasks/{task}"), Some(&body))
        .await
        .0
}

/// The `/metrics` exposition of the app.
async fn metrics(app: &Router) -> String {
    let response = app
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Ada's project with `tasks` tasks assigned to her, a second user and the app with a job queue:
/// `(ada, project, bob, tasks, jobs, app)`.
type Assigning = (i64, i64, i64, Vec<i64>, JobQueue, Router);

async fn assigning(pool: &PgPool, tasks: usize) -> Assigning {
    let (ada, project, tasks) = seed(pool, tasks).await;
    let bob = bob(pool).await;
    let jobs = job_queue(&[]).await;
    let app = app(pool, Some(jobs.clone())).await;
    (ada, project, bob, tasks, jobs, app)
}

/// Like [`assigning`], with no task assigned yet.
async fn unassigned(pool: &PgPool, tasks: usize) -> Assigning {
    let fixture = assigning(pool, tasks).await;
    execute(pool, "UPDATE tasks SET assignee_id = NULL").await;
    fixture
}

#[sqlx::test]
async fn a_failed_email_request_rolls_the_task_write_back(pool: PgPool) {
    let (ada, project, bob, tasks, jobs, app) = assigning(&pool, 1).await;
    let refuse_requests = "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
         CREATE TRIGGER refuse_requests BEFORE INSERT ON job_requests
           FOR EACH ROW EXECUTE FUNCTION refuse();";
    execute(&pool, refuse_requests).await;

    let body = format!(r#"{{"projectId":{project},"title":"Ship it","assigneeId":{bob}}}"#);
    let (status, _, problem) = call(&app, "POST", "/api/v1/tasks", Some(&body)).await;
    assert!(status.is_server_error(), "{status} {problem}");
    let created: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks WHERE title = 'Ship it'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(created, 0, "no task without its email request");

    let status = patch_assignee(&app, tasks[0], bob).await;
    assert!(status.is_server_error(), "{status}");
    assert_eq!(
        assignee(&pool, tasks[0]).await,
        Some(ada),
        "no reassignment without its email"
    );

    // Writes that request nothing are untouched by the failing table.
    let body = format!(r#"{{"projectId":{project},"title":"Unassigned"}}"#);
    assert_eq!(
        call(&app, "POST", "/api/v1/tasks", Some(&body)).await.0,
        StatusCode::CREATED
    );
    assert_eq!(patch_assignee(&app, tasks[0], ada).await, StatusCode::OK);

    // The failed transactions went through the query monitor as failed operations.
    let text = metrics(&app).await;
    for op in ["tasks.create_assigned", "tasks.update_assignee"] {
        let line = format!(r#"perfstack_db_queries_total{{operation="{op}",outcome="error"}} 1"#);
        assert!(text.contains(&line), "{line} missing from:\n{text}");
    }
    cleanup(&jobs).await;
}

#[sqlx::test]
async fn a_task_write_that_fails_at_commit_requests_no_email(pool: PgPool) {
    let (ada, project, bob, tasks, jobs, app) = assigning(&pool, 1).await;
    // Fails at COMMIT, after the email request was written in the same transaction.
    let refuse_at_commit = "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN RAISE EXCEPTION 'refused at commit by the test'; END $$;
         CREATE CONSTRAINT TRIGGER refuse_tasks AFTER INSERT OR UPDATE ON tasks
           DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse();";
    execute(&pool, refuse_at_commit).await;

    let status = patch_assignee(&app, tasks[0], bob).await;
    assert!(status.is_server_error(), "{status}");
    let body = format!(r#"{{"projectId":{project},"title":"Ship it","assigneeId":{bob}}}"#);
    let (status, _, problem) = call(&app, "POST", "/api/v1/tasks", Some(&body)).await;
    assert!(status.is_server_error(), "{status} {problem}");

    assert_eq!(requests(&pool).await, 0, "rolled-back writes request no email");
    assert_eq!(assignee(&pool, tasks[0]).await, Some(ada));
    // The route answers from the database, not from a cache filled by the failed write.
    let (status, _, task) = call(&app, "GET", &format!("/api/v1/tasks/{}", tasks[0]), None).await;
    assert_eq!((status, task["assigneeId"].as_i64()), (StatusCode::OK, Some(ada)));
    cleanup(&jobs).await;
}

#[sqlx::test]
async fn every_committed_assignment_has_its_request_in_the_same_snapshot(pool: PgPool) {
    let (ada, _project, bob, tasks, jobs, app) = unassigned(&pool, 4).await;

    let writer = {
        let app = app.clone();
        let tasks = tasks.clone();
        tokio::spawn(async move {
            for round in 0..10 {
                for &task in &tasks {
                    let user = if (round + task) % 2 == 0 { ada } else { bob };
                    assert_eq!(patch_assignee(&app, task, user).await, StatusCode::OK);
                }
            }
        })
    };
    // One statement, one snapshot: an assigned task always has a request naming its assignee
    // (no relay runs, so requests stay in the table).
    let unrequested = "SELECT count(*) FROM tasks t WHERE t.assignee_id IS NOT NULL AND NOT EXISTS (
                         SELECT 1 FROM job_requests r
                         WHERE r.payload->>'taskId' = t.id::text
                           AND r.payload->>'assigneeId' = t.assignee_id::text)";
    let mut checks = 0;
    while !writer.is_finished() || checks == 0 {
        let missing: i64 = sqlx::query_scalar(unrequested).fetch_one(&pool).await.unwrap();
        assert_eq!(missing, 0, "an assignment was visible without its email request");
        checks += 1;
    }
    writer.await.unwrap();
    let missing: i64 = sqlx::query_scalar(unrequested).fetch_one(&pool).await.unwrap();
    assert_eq!(missing, 0);
    // Every PATCH changed the assignee (alternating users per task), so each requested one email.
    assert_eq!(requests(&pool).await, 40);
    cleanup(&jobs).await;
}

#[sqlx::test]
async fn concurrent_patches_assigning_the_same_user_request_one_email(pool: PgPool) {
    let (_ada, _project, bob, tasks, jobs, app) = unassigned(&pool, 2).await;

    let patches = (0..12).map(|i| {
        let app = app.clone();
        let task = tasks[i % 2];
        tokio::spawn(async move { patch_assignee(&app, task, bob).await })
    });
    for status in futures::future::join_all(patches).await {
        assert_eq!(status.unwrap(), StatusCode::OK);
    }
    let per_task: Vec<(String, i64)> =
        sqlx::query_as("SELECT payload->>'taskId', count(*) FROM job_requests GROUP BY 1 ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap();
    let mut expected = vec![(tasks[0].to_string(), 1), (tasks[1].to_string(), 1)];
    expected.sort();
    assert_eq!(per_task, expected, "one email per newly assigned task");
    let line = r#"perfstack_db_queries_total{operation="tasks.update_assignee",outcome="ok"} 12"#;
    let text = metrics(&app).await;
    assert!(text.contains(line), "{line} missing from:\n{text}");
    cleanup(&jobs).await;
}

#[sqlx::test]
async fn a_transaction_holds_its_pool_slot_until_it_ends(pool: PgPool) {
    let options = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_millis(1000));
    let single = options
        .connect_with(PgConnectOptions::clone(&pool.connect_options()))
        .await
        .unwrap();
    let db = Db::from_pool(single, QueryMonitor::new(Duration::from_secs(1)));
    let select = |db: Db| async move {
        db.timed("test.select", "SELECT 1", |pool| async move {
            sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&pool).await
        })
        .await
    };

    let mut tx = db.begin("test.tx", "BEGIN; SELECT 1; COMMIT").await.unwrap();
    let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(tx.conn()).await.unwrap();
    assert_eq!(one, 1);
    assert!(
        matches!(select(db.clone()).await, Err(sqlx::Error::PoolTimedOut)),
        "the only slot is the transaction's"
    );
    tx.commit().await.unwrap();
    assert_eq!(select(db.clone()).await.unwrap(), 1);

    // Dropped without commit: rolled back, the slot is free again, recorded as an error.
    let mut tx = db.begin("test.tx", "BEGIN; INSERT; ROLLBACK").await.unwrap();
    sqlx::query("CREATE TABLE dropped_with_tx (id int)")
        .execute(tx.conn())
        .await
        .unwrap();
    drop(tx);
    assert_eq!(select(db.clone()).await.unwrap(), 1);
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('dropped_with_tx') IS NOT NULL")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!exists, "a dropped transaction rolls back");
    let count = |outcome: &'static str| db.telemetry().query_outcome("test.tx", outcome).get();
    assert_eq!((count("ok"), count("error")), (1, 1));
}
