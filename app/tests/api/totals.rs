//! The `total` of offset pages comes from the count cache: a burst of pages runs one count, a
//! write through the app shows in the next total, other writers show once the TTL has passed,
//! and every filter set has its own total. Counts are observed through `/metrics`.
use std::time::Duration;

use axum::http::StatusCode;
use futures::future::join_all;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{TestApp, spawn, spawn_with};

/// The value of the series `series` (name and labels, as printed) in `/metrics`.
async fn metric(app: &TestApp, series: &str) -> u64 {
    let reply = app.get("/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    let text = reply.json.as_str().expect("metrics text").to_owned();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0, |value| value.trim().parse::<f64>().expect("a number") as u64)
}

/// `count(*)` statements run for `table`'s lists, from the query metrics of the database layer:
/// counts alone and pages read with their count.
async fn counts_run(app: &TestApp, table: &str) -> u64 {
    let series = |op: &str| format!(r#"perfstack_db_queries_total{{operation="{table}.{op}",outcome="ok"}}"#);
    metric(app, &series("count")).await + metric(app, &series("list_and_count")).await
}

async fn total(app: &TestApp, uri: &str) -> i64 {
    let reply = app.get(uri).await;
    assert_eq!(reply.status, StatusCode::OK, "{uri}: {}", reply.json);
    reply.json["pagination"]["total"]
        .as_i64()
        .unwrap_or_else(|| panic!("{uri}: no total in {}", reply.json))
}

/// A user, a project and `n` tasks in it written straight into the database (as another replica
/// or a batch job would), bypassing the app. Returns the project id.
async fn project_with_tasks(app: &TestApp, n: i64) -> i64 {
    let (_owner, project) = app.user_with_project("owner", "p").await;
    sqlx::query(
        "INSERT INTO tasks (project_id, title, status, priority) \
         SELECT $1, 'task ' || i, CASE WHEN i % 4 = 0 THEN 'done' ELSE 'todo' END, i % 5 \
         FROM generate_series(1, $2) AS i",
    )
    .bind(project)
    .bind(n)
    .execute(&app.db().pool())
    .await
    .expect("insert tasks");
    project
}

#[sqlx::test(migrations = false)]
async fn a_burst_of_pages_runs_one_count(pool: PgPool) {
    let app = spawn(pool).await;
    project_with_tasks(&app, 120).await;
    let before = counts_run(&app, "tasks").await;

    let pages = (1..=40).map(|page| {
        let app = &app;
        async move { total(app, &format!("/api/v1/tasks?page={}&limit=3", page % 6 + 1)).await }
    });
    let totals = join_all(pages).await;

    assert!(totals.iter().all(|t| *t == 120), "{totals:?}");
    assert_eq!(counts_run(&app, "tasks").await - before, 1);
    assert_eq!(
        metric(&app, r#"perfstack_count_cache_misses_total{table="tasks"}"#).await,
        1
    );
    let served = metric(&app, r#"perfstack_count_cache_hits_total{table="tasks"}"#).await
        + metric(&app, r#"perfstack_count_cache_coalesced_total{table="tasks"}"#).await;
    assert_eq!(served, 39);
}

#[sqlx::test(migrations = false)]
async fn writes_through_the_app_show_in_the_next_total(pool: PgPool) {
    // Every write retires at once here; the coalescing of busy write streams has its own test.
    let app = spawn_with(pool, &["--count-cache-write-refresh-ms", "0"]).await;
    let project = project_with_tasks(&app, 5).await;
    assert_eq!(total(&app, "/api/v1/tasks?page=1").await, 5);
    assert_eq!(total(&app, "/api/v1/tasks?page=1").await, 5);

    let created = app
        .task(json!({"projectId": project, "title": "mine", "status": "review"}))
        .await;
    assert_eq!(total(&app, "/api/v1/tasks?page=1").await, 6);
    assert_eq!(total(&app, "/api/v1/tasks?page=1&status=review").await, 1);

    let id = created["id"].as_i64().unwrap();
    let moved = app
        .patch(&format!("/api/v1/tasks/{id}"), json!({"status": "done"}))
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.json);
    assert_eq!(total(&app, "/api/v1/tasks?page=1&status=review").await, 0);

    assert_eq!(
        app.delete(&format!("/api/v1/tasks/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(total(&app, "/api/v1/tasks?page=1").await, 5);

    // Deleting the project deletes its tasks (cascade): task totals are retired as well.
    assert_eq!(
        app.delete(&format!("/api/v1/projects/{project}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(total(&app, "/api/v1/tasks?page=1").await, 0);
    assert_eq!(total(&app, "/api/v1/projects?page=1").await, 0);

    assert_eq!(total(&app, "/api/v1/users?page=1").await, 1);
    app.user("second").await;
    assert_eq!(total(&app, "/api/v1/users?page=1").await, 2);
}

#[sqlx::test(migrations = false)]
async fn other_writers_show_once_the_ttl_has_passed(pool: PgPool) {
    let ttl = Duration::from_millis(3000);
    let app = spawn_with(pool, &["--count-cache-ttl-ms", "3000"]).await;
    let project = project_with_tasks(&app, 4).await;
    assert_eq!(total(&app, "/api/v1/projects?page=1").await, 1);
    assert_eq!(total(&app, "/api/v1/tasks?page=1").await, 4);
    let cached_at = std::time::Instant::now();

    // Another replica adds a task: this one does not know, and keeps its total until the TTL.
    sqlx::query("INSERT INTO tasks (project_id, title) VALUES ($1, 'elsewhere')")
        .bind(project)
        .execute(&app.db().pool())
        .await
        .unwrap();
    assert_eq!(total(&app, "/api/v1/tasks?page=1").await, 4);
    assert!(cached_at.elapsed() < ttl, "the machine is too slow for this TTL");

    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    let runs = counts_run(&app, "tasks").await;
    assert_eq!(total(&app, "/api/v1/tasks?page=1").await, 5);
    assert_eq!(counts_run(&app, "tasks").await - runs, 1);
}

#[sqlx::test(migrations = false)]
async fn every_filter_set_has_its_own_total(pool: PgPool) {
    let app = spawn(pool).await;
    let first = project_with_tasks(&app, 8).await;
    let (owner, second) = app.user_with_project("other-owner", "q").await;
    for i in 0..3 {
        app.task(json!({"projectId": second, "title": format!("s{i}"), "assigneeId": owner}))
            .await;
    }
    let lists = [
        ("/api/v1/tasks?page=1".to_owned(), 11),
        (format!("/api/v1/tasks?page=1&projectId={first}"), 8),
        (format!("/api/v1/tasks?page=1&projectId={second}"), 3),
        (format!("/api/v1/tasks?page=1&projectId={first}&status=done"), 2),
        (format!("/api/v1/projects/{first}/tasks?page=1"), 8),
        (format!("/api/v1/projects/{first}/tasks?page=1&status=todo"), 6),
        (format!("/api/v1/users/{owner}/tasks?page=1"), 3),
        (format!("/api/v1/projects?page=1&ownerId={owner}"), 1),
        ("/api/v1/projects?page=1".to_owned(), 2),
    ];
    let tasks_before = counts_run(&app, "tasks").await;
    let projects_before = counts_run(&app, "projects").await;
    for _ in 0..2 {
        for (uri, expected) in &lists {
            assert_eq!(total(&app, uri).await, *expected, "{uri}");
        }
    }
    // Six distinct task filter sets (`/tasks?projectId=` and `/projects/{id}/tasks` count the
    // same rows and share a total) and two project ones, each counted once across both rounds.
    assert_eq!(counts_run(&app, "tasks").await - tasks_before, 6);
    assert_eq!(counts_run(&app, "projects").await - projects_before, 2);
}

#[sqlx::test(migrations = false)]
async fn zero_ttl_counts_every_page(pool: PgPool) {
    let app = spawn_with(pool, &["--count-cache-ttl-ms", "0"]).await;
    project_with_tasks(&app, 3).await;
    let before = counts_run(&app, "tasks").await;
    for page in 1..=4 {
        assert_eq!(
            total(&app, &format!("/api/v1/tasks?page={page}&limit=1")).await,
            3
        );
    }
    // A count per page: three read with their page, and page 4, past the end, comes back empty
    // with no total beside it and takes a count of its own (2 for that page).
    assert_eq!(counts_run(&app, "tasks").await - before, 5);
}

#[sqlx::test(migrations = false)]
async fn a_stream_of_writes_retires_totals_once_per_refresh_period(pool: PgPool) {
    let period = Duration::from_millis(3000);
    let app = spawn_with(pool, &["--count-cache-write-refresh-ms", "3000"]).await;
    let project = project_with_tasks(&app, 2).await;
    // Let the seeding writes settle, so the next write comes after a quiet spell.
    tokio::time::sleep(period + Duration::from_millis(100)).await;
    assert_eq!(total(&app, "/api/v1/tasks?page=1").await, 2);

    // A write after a quiet spell shows at once...
    app.task(json!({"projectId": project, "title": "first"})).await;
    let first_write = std::time::Instant::now();
    assert_eq!(total(&app, "/api/v1/tasks?page=1").await, 3);
    // ...the ones right behind it within the period, however many and however often listed.
    let runs = counts_run(&app, "tasks").await;
    for n in 0..5 {
        app.task(json!({"projectId": project, "title": format!("burst {n}")}))
            .await;
        assert_eq!(total(&app, "/api/v1/tasks?page=1").await, 3);
    }
    assert!(
        first_write.elapsed() < period,
        "the machine is too slow for this period"
    );
    assert_eq!(
        counts_run(&app, "tasks").await,
        runs,
        "no count while the period runs"
    );

    tokio::time::sleep(period.saturating_sub(first_write.elapsed()) + Duration::from_millis(100)).await;
    assert_eq!(total(&app, "/api/v1/tasks?page=1").await, 8, "no write is lost");
    assert_eq!(total(&app, "/api/v1/tasks?page=1").await, 8);
    assert_eq!(
        counts_run(&app, "tasks").await - runs,
        1,
        "one count for the whole burst"
    );
}

#[sqlx::test(migrations = false)]
async fn a_slow_count_is_kept_through_writes_until_the_ttl(pool: PgPool) {
    // Every count is "slow" at 1 ms; the TTL is long enough for the test.
    let app = spawn_with(
        pool,
        &[
            "--count-cache-slow-ms",
            "1",
            "--count-cache-ttl-ms",
            "60000",
            "--count-cache-write-refresh-ms",
            "0",
        ],
    )
    .await;
    let project = project_with_tasks(&app, 4).await;
    let uri = format!("/api/v1/projects/{project}/tasks?page=1");
    assert_eq!(total(&app, &uri).await, 4);
    app.task(json!({"projectId": project, "title": "one more"})).await;
    assert_eq!(total(&app, &uri).await, 4, "kept through the write");
    assert!(
        metric(&app, r#"perfstack_count_cache_slow_counts_total{table="tasks"}"#).await >= 1,
        "{}",
        app.metrics().await
    );
}
