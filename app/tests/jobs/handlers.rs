//! The real handlers on a real database: what they write, and that running one twice (a job
//! delivered again after a crash) takes effect once.
use perfstack_app::jobs::{
    JobHandler, JobId, Queue,
    email::{EmailHandler, EmailJob},
    report::{ReportHandler, ReportRequest},
    store::ClaimedJob,
};
use sqlx::PgPool;

use crate::support::{execute, job_context, seed};

fn claimed(queue: Queue, payload: serde_json::Value, attempt: u32) -> ClaimedJob {
    ClaimedJob {
        id: JobId::new(),
        queue,
        payload,
        attempt,
        max_attempts: 3,
        traceparent: None,
    }
}

/// The first attempt of the email telling `assignee_id` about task `task_id`.
fn assignment_email(task_id: i64, assignee_id: i64) -> ClaimedJob {
    let payload = serde_json::to_value(EmailJob::TaskAssigned { task_id, assignee_id }).unwrap();
    claimed(Queue::Email, payload, 1)
}

#[sqlx::test]
async fn assignment_email_goes_to_the_outbox_once(pool: PgPool) {
    let (user, _project, tasks) = seed(&pool, 1).await;
    let handler = EmailHandler::new(job_context(&pool).await);
    let mut job = assignment_email(tasks[0], user);
    let first = handler.handle(&job).await.unwrap();
    job.attempt = 2; // delivered again, e.g. after the worker died before acknowledging
    let second = handler.handle(&job).await.unwrap();
    assert_eq!(first, second);
    let rows: Vec<(String, String, String)> = sqlx::query_as("SELECT job_id, recipient, subject FROM outbox")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![(
            job.id.to_string(),
            "ada@example.com".to_owned(),
            "You were assigned: task 0".to_owned()
        )]
    );
    let id: i64 = sqlx::query_scalar("SELECT id FROM outbox")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(first["outboxId"], serde_json::json!(id));
}

#[sqlx::test]
async fn no_email_when_the_task_was_reassigned_meanwhile(pool: PgPool) {
    let (user, _project, tasks) = seed(&pool, 1).await;
    let handler = EmailHandler::new(job_context(&pool).await);
    let result = handler
        .handle(&assignment_email(tasks[0], user + 1000))
        .await
        .unwrap();
    assert!(result.get("skipped").is_some(), "{result}");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[sqlx::test]
async fn malformed_payloads_fail_permanently(pool: PgPool) {
    let handler = EmailHandler::new(job_context(&pool).await);
    let failure = handler
        .handle(&claimed(Queue::Email, serde_json::json!({"kind": "spam"}), 1))
        .await
        .unwrap_err();
    assert!(failure.permanent);
}

#[sqlx::test]
async fn project_report_counts_real_tasks_and_is_stored_once(pool: PgPool) {
    let (_user, project, _tasks) = seed(&pool, 10).await;
    // One task unassigned and one done task overdue-dated (done tasks are never overdue).
    let unassign = "UPDATE tasks SET assignee_id = NULL WHERE title = 'task 1'";
    execute(&pool, unassign).await;
    let handler = ReportHandler::new(job_context(&pool).await);
    let payload = serde_json::to_value(ReportRequest::ProjectTaskStats { project_id: project }).unwrap();
    let job = claimed(Queue::Report, payload, 1);
    let first = handler.handle(&job).await.unwrap();
    let second = handler.handle(&job).await.unwrap();
    assert_eq!(first, second);
    let (count, kind, parameters, result): (i64, String, serde_json::Value, serde_json::Value) =
        sqlx::query_as("SELECT count(*) OVER (), kind, parameters, result FROM reports WHERE job_id = $1")
            .bind(job.id.as_str())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(count, 1);
    assert_eq!(kind, "projectTaskStats");
    assert_eq!(parameters, serde_json::json!({ "projectId": project }));
    // 10 tasks: statuses cycle todo, in_progress, review, done; priorities cycle 0..4; all due in
    // 2020, so every task not done is overdue.
    assert_eq!(
        result,
        serde_json::json!({
            "projectId": project,
            "projectName": "Web",
            "total": 10,
            "byStatus": { "todo": 3, "inProgress": 3, "review": 2, "done": 2 },
            "byPriority": { "0": 2, "1": 2, "2": 2, "3": 2, "4": 2 },
            "unassigned": 1,
            "overdue": 8,
        })
    );
}

#[sqlx::test]
async fn report_of_a_missing_project_fails_permanently(pool: PgPool) {
    let handler = ReportHandler::new(job_context(&pool).await);
    let payload = serde_json::to_value(ReportRequest::ProjectTaskStats { project_id: 999 }).unwrap();
    let failure = handler
        .handle(&claimed(Queue::Report, payload, 1))
        .await
        .unwrap_err();
    assert!(failure.permanent);
    assert!(failure.message.contains("999"));
}

#[sqlx::test]
async fn user_workload_report_counts_the_users_tasks(pool: PgPool) {
    let (user, _project, _tasks) = seed(&pool, 8).await;
    // Two tasks due soon (one of them done), one task of another user.
    let due_soon = "UPDATE tasks SET due_date = current_date + 2 WHERE title IN ('task 0', 'task 3')";
    execute(&pool, due_soon).await;
    let other: i64 = sqlx::query_scalar(
        "INSERT INTO users (email, username) VALUES ('bob@example.com', 'bob') RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    sqlx::query("UPDATE tasks SET assignee_id = $1 WHERE title = 'task 7'")
        .bind(other)
        .execute(&pool)
        .await
        .unwrap();
    let handler = ReportHandler::new(job_context(&pool).await);
    let payload = serde_json::to_value(ReportRequest::UserWorkload { user_id: user }).unwrap();
    let job = claimed(Queue::Report, payload, 1);
    handler.handle(&job).await.unwrap();
    let result: serde_json::Value = sqlx::query_scalar("SELECT result FROM reports WHERE job_id = $1")
        .bind(job.id.as_str())
        .fetch_one(&pool)
        .await
        .unwrap();
    // Tasks 0..6 are the user's: statuses todo, in_progress, review, done, todo, in_progress, review;
    // all but 0 and 3 due in 2020, so the five not done among them are overdue.
    assert_eq!(
        result,
        serde_json::json!({
            "userId": user,
            "username": "ada",
            "open": 6,
            "byStatus": { "todo": 2, "inProgress": 2, "review": 2, "done": 1 },
            "overdue": 5,
            "dueThisWeek": 1,
            "projects": 1,
        })
    );
}
