use axum::http::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{TestApp, assert_created, ids, sample, spawn, spawn_with_project};

/// Follows `nextCursor` from the first keyset page to the last, collecting ids.
async fn walk(app: &TestApp, base: &str, limit: u32) -> Vec<i64> {
    let mut seen = Vec::new();
    let mut cursor = String::new();
    for _ in 0..100 {
        let sep = if base.contains('?') { '&' } else { '?' };
        let page = app
            .get(&format!("{base}{sep}limit={limit}&cursor={cursor}"))
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.json);
        seen.extend(ids(&page.json));
        match page.json["pagination"]["nextCursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => return seen,
        }
    }
    panic!("keyset walk did not end");
}

#[sqlx::test(migrations = false)]
async fn task_crud_round_trip(pool: PgPool) {
    let (app, owner, project) = spawn_with_project(pool).await;
    let created = app
        .post(
            "/api/v1/tasks",
            json!({"projectId": project, "title": "Write docs", "assigneeId": owner,
                   "dueDate": "2026-03-01", "priority": 4, "status": "in_progress"}),
        )
        .await;
    let id = assert_created(&created, "/api/v1/tasks");
    assert_eq!(created.json["dueDate"], "2026-03-01");
    assert_eq!(created.json["status"], "in_progress");
    assert_eq!(created.json["priority"], 4);

    let defaults = app.task(json!({"projectId": project, "title": "x"})).await;
    assert_eq!(defaults["status"], "todo");
    assert_eq!(defaults["priority"], 2);
    assert_eq!(defaults["assigneeId"], Value::Null);

    assert_eq!(app.get(&format!("/api/v1/tasks/{id}")).await.json, created.json);
    let picked = app
        .get(&format!("/api/v1/tasks/{id}?fields=title,dueDate"))
        .await
        .json;
    assert_eq!(picked, json!({"title": "Write docs", "dueDate": "2026-03-01"}));

    let patched = app
        .patch(
            &format!("/api/v1/tasks/{id}"),
            json!({"assigneeId": null, "dueDate": null, "status": "done"}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.json);
    assert_eq!(patched.json["assigneeId"], Value::Null);
    assert_eq!(patched.json["dueDate"], Value::Null);
    assert_eq!(patched.json["status"], "done");
    assert_eq!(patched.json["title"], "Write docs");

    app.assert_deleted(&format!("/api/v1/tasks/{id}")).await;
}

#[sqlx::test(migrations = false)]
async fn project_tasks_by_priority_with_status_filter(pool: PgPool) {
    let (app, owner, project) = spawn_with_project(pool).await;
    let other = app.project(owner, "q").await;
    let mut made = Vec::new();
    for (i, priority) in [1, 4, 2, 4, 0, 2, 3].into_iter().enumerate() {
        let status = if i % 3 == 0 { "done" } else { "todo" };
        let t = app
            .task(json!({"projectId": project, "title": format!("t{i}"),
                         "priority": priority, "status": status}))
            .await;
        made.push((priority, t["id"].as_i64().unwrap(), status));
    }
    app.task(json!({"projectId": other, "title": "elsewhere", "priority": 4}))
        .await;
    let mut expected = made.clone();
    expected.sort_by_key(|(p, id, _)| (-p, *id));
    let expected_ids: Vec<i64> = expected.iter().map(|(_, id, _)| *id).collect();

    let page = app.get(&format!("/api/v1/projects/{project}/tasks")).await.json;
    assert_eq!(ids(&page), expected_ids);
    assert_eq!(page["pagination"]["total"], 7);
    // keyset across priority ties
    let walked = walk(&app, &format!("/api/v1/projects/{project}/tasks"), 2).await;
    assert_eq!(walked, expected_ids);

    let todo: Vec<i64> = expected
        .iter()
        .filter(|(_, _, s)| *s == "todo")
        .map(|(_, id, _)| *id)
        .collect();
    let page = app
        .get(&format!("/api/v1/projects/{project}/tasks?status=todo"))
        .await
        .json;
    assert_eq!(ids(&page), todo);
    let walked = walk(&app, &format!("/api/v1/projects/{project}/tasks?status=todo"), 3).await;
    assert_eq!(walked, todo);

    app.assert_gone("/api/v1/projects/999999/tasks").await;
}

/// The `projects.exists` operations finished so far, from /metrics.
async fn existence_checks(app: &TestApp) -> f64 {
    let name = r#"perfstack_db_queries_total{operation="projects.exists",outcome="ok"}"#;
    sample(&app.metrics().await, name).unwrap_or(0.0)
}

#[sqlx::test(migrations = false)]
async fn a_project_task_page_with_rows_is_one_database_operation(pool: PgPool) {
    let app = spawn(pool).await;
    let (owner, project) = app.user_with_project("owner", "p").await;
    let empty = app.project(owner, "empty").await;
    app.task(json!({"projectId": project, "title": "t", "priority": 2}))
        .await;
    let before = existence_checks(&app).await;

    // Rows prove the project exists: no separate existence check (a pool checkout and a round
    // trip per page saved).
    let page = app
        .get(&format!("/api/v1/projects/{project}/tasks?limit=20"))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.json);
    assert_eq!(ids(&page.json).len(), 1);
    assert_eq!(existence_checks(&app).await, before);

    // An empty page is checked: an existing project's is 200, an unknown one's 404.
    let page = app.get(&format!("/api/v1/projects/{empty}/tasks")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.json);
    assert_eq!(page.json["data"], json!([]));
    assert_eq!(existence_checks(&app).await, before + 1.0);
    let beyond = app
        .get(&format!("/api/v1/projects/{project}/tasks?status=review"))
        .await;
    assert_eq!(beyond.status, StatusCode::OK, "{}", beyond.json);
    app.assert_gone("/api/v1/projects/999999/tasks").await;
}

#[sqlx::test(migrations = false)]
async fn assignee_tasks_by_due_date_undated_last(pool: PgPool) {
    let app = spawn(pool).await;
    let ann = app.user("ann").await;
    let bob = app.user("bob").await;
    let project = app.project(ann, "p").await;
    let dates = [
        Some("2026-05-01"),
        None,
        Some("2026-01-15"),
        Some("2026-05-01"),
        None,
        Some("2025-12-31"),
    ];
    let mut made = Vec::new();
    for (i, due) in dates.into_iter().enumerate() {
        let t = app
            .task(json!({"projectId": project, "title": format!("t{i}"),
                         "assigneeId": ann, "dueDate": due}))
            .await;
        made.push((due, t["id"].as_i64().unwrap()));
    }
    app.task(json!({"projectId": project, "title": "bob's", "assigneeId": bob, "dueDate": "2020-01-01"}))
        .await;
    // dated first by date (ties by id), undated last
    made.sort_by_key(|(due, id)| (due.is_none(), *due, *id));
    let expected: Vec<i64> = made.iter().map(|(_, id)| *id).collect();

    let page = app.get(&format!("/api/v1/users/{ann}/tasks")).await.json;
    assert_eq!(ids(&page), expected);
    for limit in [1, 2, 4] {
        let walked = walk(&app, &format!("/api/v1/users/{ann}/tasks"), limit).await;
        assert_eq!(walked, expected, "limit {limit}");
    }
    // due on or before a day: the dated ones up to it, in the same order, undated left out
    let due_by: Vec<i64> = made
        .iter()
        .filter(|(due, _)| due.is_some_and(|d| d <= "2026-01-15"))
        .map(|(_, id)| *id)
        .collect();
    assert_eq!(due_by.len(), 2);
    let page = app
        .get(&format!("/api/v1/users/{ann}/tasks?dueBefore=2026-01-15"))
        .await;
    assert_eq!(ids(&page.json), due_by);
    assert_eq!(page.json["pagination"]["total"], 2);
    let walked = walk(
        &app,
        &format!("/api/v1/users/{ann}/tasks?dueBefore=2026-01-15"),
        1,
    )
    .await;
    assert_eq!(walked, due_by);
    let mut by_id = due_by.clone();
    by_id.sort_unstable();
    let listed = app
        .get(&format!("/api/v1/tasks?assigneeId={ann}&dueBefore=2026-01-15"))
        .await;
    assert_eq!(ids(&listed.json), by_id);
    app.assert_bad_query(&format!("/api/v1/users/{ann}/tasks?dueBefore=soon"), "dueBefore")
        .await;
    app.assert_gone("/api/v1/users/999999/tasks").await;
}

#[sqlx::test(migrations = false)]
async fn task_list_filters_and_search(pool: PgPool) {
    let app = spawn(pool).await;
    let (ann, project) = app.user_with_project("ann", "p").await;
    let other = app.project(ann, "q").await;
    let a = app
        .task(json!({"projectId": project, "title": "Migrate the billing database", "priority": 3}))
        .await;
    let b = app
        .task(json!({"projectId": other, "title": "Lunch", "description": "billing lunch receipts", "assigneeId": ann}))
        .await;
    app.task(json!({"projectId": other, "title": "Unrelated"})).await;

    let found = app.get("/api/v1/tasks?q=billing").await.json;
    assert_eq!(
        ids(&found),
        vec![a["id"].as_i64().unwrap(), b["id"].as_i64().unwrap()]
    );
    let in_project = app
        .get(&format!("/api/v1/tasks?projectId={other}&q=billing"))
        .await
        .json;
    assert_eq!(ids(&in_project), vec![b["id"].as_i64().unwrap()]);
    let by_assignee = app.get(&format!("/api/v1/tasks?assigneeId={ann}")).await.json;
    assert_eq!(ids(&by_assignee), vec![b["id"].as_i64().unwrap()]);
    let by_priority = app.get("/api/v1/tasks?priority=3").await.json;
    assert_eq!(ids(&by_priority), vec![a["id"].as_i64().unwrap()]);
    app.assert_bad_query("/api/v1/tasks?priority=9", "priority").await;
    app.assert_bad_query("/api/v1/tasks?projectId=abc", "projectId")
        .await;
}

/// 40 creates at once, two of them naming a project that does not exist: the writers coalesce
/// them into shared statements, the batch holding the bad rows fails as a whole and is written
/// again row by row, and every request gets its own answer: its own row, or 409 for the bad ones.
#[sqlx::test(migrations = false)]
async fn concurrent_creates_share_statements_and_each_gets_its_own_row(pool: PgPool) {
    let (app, _, project) = spawn_with_project(pool.clone()).await;
    let missing = project + 1_000;
    let bodies: Vec<Value> = (0..40)
        .map(|i| {
            let target = if i == 7 || i == 31 { missing } else { project };
            json!({"projectId": target, "title": format!("task {i}"), "priority": i % 5})
        })
        .collect();
    let replies =
        futures::future::join_all(bodies.iter().map(|body| app.post("/api/v1/tasks", body.clone()))).await;
    for (i, (body, reply)) in bodies.iter().zip(&replies).enumerate() {
        if body["projectId"] == missing {
            crate::helpers::assert_problem(reply, StatusCode::CONFLICT, Some("projectId"));
            continue;
        }
        assert_created(reply, "/api/v1/tasks");
        assert_eq!(reply.json["title"], format!("task {i}"), "{}", reply.json);
        assert_eq!(reply.json["priority"], i % 5, "{}", reply.json);
        let id = reply.json["id"].as_i64().expect("id");
        let stored: String = sqlx::query_scalar("SELECT title FROM tasks WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .expect("stored row");
        assert_eq!(stored, format!("task {i}"));
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(stored, 38);
    let metrics = app.metrics().await;
    let statements = sample(&metrics, "perfstack_db_insert_batch_rows_count").expect("batch histogram");
    let rows = sample(&metrics, "perfstack_db_insert_batch_rows_sum").expect("batch histogram");
    assert_eq!(rows, 40.0, "{metrics}");
    assert!(
        statements < 40.0,
        "no two creates shared a statement: {statements}"
    );
    assert!(
        sample(&metrics, "perfstack_db_insert_batch_retries_total").expect("retries") >= 1.0,
        "the batch with the bad rows was not written again row by row"
    );
    // A round without bad rows commits as shared statements.
    let replies = futures::future::join_all((0..10).map(|i| {
        app.post(
            "/api/v1/tasks",
            json!({"projectId": project, "title": format!("again {i}")}),
        )
    }))
    .await;
    for (i, reply) in replies.iter().enumerate() {
        assert_created(reply, "/api/v1/tasks");
        assert_eq!(reply.json["title"], format!("again {i}"), "{}", reply.json);
    }
    let shared = app
        .db()
        .telemetry()
        .query_outcome("tasks.create_batch", "ok")
        .get();
    assert!(shared >= 1, "no coalesced INSERT committed");
}

/// `--task-insert-batch-rows 1` turns coalescing off: every create is its own statement.
#[sqlx::test(migrations = false)]
async fn creates_are_written_alone_when_coalescing_is_off(pool: PgPool) {
    let app = crate::helpers::spawn_with(pool, &["--task-insert-batch-rows", "1"]).await;
    let (_, project) = app.user_with_project("owner", "p").await;
    let replies = futures::future::join_all((0..10).map(|i| {
        app.post(
            "/api/v1/tasks",
            json!({"projectId": project, "title": format!("t{i}")}),
        )
    }))
    .await;
    for reply in &replies {
        assert_created(reply, "/api/v1/tasks");
    }
    let metrics = app.metrics().await;
    assert_eq!(
        sample(&metrics, "perfstack_db_insert_batch_rows_count"),
        Some(0.0),
        "{metrics}"
    );
    assert_eq!(app.db().telemetry().query_count("tasks.create"), 10);
}
