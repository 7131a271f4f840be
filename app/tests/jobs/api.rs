//! The job routes driven through the router: reports end to end, job state, dead letters, outbox,
//! and the 4xx answers to bad input.
use std::time::Duration;

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode, header},
};
use clap::Parser;
use http_body_util::BodyExt;
use perfstack_app::{
    config::ServeConfig,
    http::{AppState, router},
    jobs::{JobId, JobQueue, JobState, Queue, metrics::JobMetrics, notify, worker::Worker},
};
use sqlx::PgPool;
use tower::ServiceExt;

use crate::support::{app_db, cleanup, job_context, job_queue, seed, wait_for_state};

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    serve: ServeConfig,
}

pub(crate) async fn app(pool: &PgPool, jobs: Option<JobQueue>) -> Router {
    let state = AppState::new(app_db(pool).await, Flags::parse_from(["test"]).serve).with_jobs(jobs);
    router(state)
}

pub(crate) async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    body: Option<&str>,
) -> (StatusCode, Option<String>, serde_json::Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let request = request
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, location, json)
}

fn start_workers(jobs: &JobQueue, ctx: perfstack_app::jobs::JobContext) -> tokio::sync::watch::Sender<bool> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = Worker::new(jobs, JobMetrics::default());
    tokio::spawn(perfstack_app::startup::run_workers(worker, ctx, stopped));
    stop
}

#[sqlx::test]
async fn a_report_request_is_accepted_computed_and_served(pool: PgPool) {
    let (_user, project, _tasks) = seed(&pool, 4).await;
    let jobs = job_queue(&[]).await;
    let app = app(&pool, Some(jobs.clone())).await;
    let body = format!(r#"{{"type":"projectTaskStats","parameters":{{"projectId":{project}}}}}"#);
    let (status, location, accepted) = call(&app, "POST", "/api/v1/reports", Some(&body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    assert_eq!(accepted["state"], "queued");
    let job_id = accepted["jobId"].as_str().unwrap().to_owned();
    assert_eq!(
        location.as_deref(),
        Some(format!("/api/v1/jobs/{job_id}").as_str())
    );

    let (status, _, job) = call(&app, "GET", &format!("/api/v1/jobs/{job_id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(job["state"], "queued");
    assert_eq!(job["queue"], "report");
    assert_eq!(job["maxAttempts"], 2);

    let _stop = start_workers(&jobs, job_context(&pool).await);
    let id = JobId::parse(&job_id).unwrap();
    wait_for_state(&jobs, &id, JobState::Succeeded, Duration::from_secs(10)).await;
    let (_, _, job) = call(&app, "GET", &format!("/api/v1/jobs/{job_id}"), None).await;
    assert_eq!(job["state"], "succeeded");
    assert_eq!(job["attempts"], 1);
    let href = job["result"]["href"].as_str().unwrap().to_owned();
    let (status, _, report) = call(&app, "GET", &href, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["jobId"], job_id.as_str());
    assert_eq!(report["type"], "projectTaskStats");
    assert_eq!(report["result"]["total"], 4);
    cleanup(&jobs).await;
}

#[sqlx::test]
async fn bad_report_requests_get_4xx(pool: PgPool) {
    let jobs = job_queue(&[]).await;
    let app = app(&pool, Some(jobs.clone())).await;
    let missing_subjects = [
        (
            r#"{"type":"projectTaskStats","parameters":{"projectId":424242}}"#,
            "parameters.projectId",
        ),
        (
            r#"{"type":"userWorkload","parameters":{"userId":424242}}"#,
            "parameters.userId",
        ),
    ];
    for (body, field) in missing_subjects {
        let (status, _, problem) = call(&app, "POST", "/api/v1/reports", Some(body)).await;
        assert_eq!(
            status,
            StatusCode::CONFLICT,
            "a report of a row that does not exist"
        );
        assert_eq!(problem["field"], field);
    }
    let (status, _, _) = call(&app, "POST", "/api/v1/reports", Some(r#"{"type":"payroll"}"#)).await;
    assert!(status.is_client_error(), "{status}");
    let (status, _, _) = call(&app, "POST", "/api/v1/reports", Some("not json")).await;
    assert!(status.is_client_error(), "{status}");
    let (status, _, _) = call(&app, "GET", "/api/v1/jobs/not-a-uuid", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = call(&app, "GET", &format!("/api/v1/jobs/{}", JobId::new()), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, problem) = call(&app, "GET", "/api/v1/jobs?state=succeeded", None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "state");
    let (status, _, _) = call(&app, "GET", "/api/v1/jobs?state=bogus", None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _, _) = call(&app, "GET", "/api/v1/reports/999", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    cleanup(&jobs).await;
}

#[sqlx::test]
async fn without_redis_job_routes_answer_503(pool: PgPool) {
    let app = app(&pool, None).await;
    let (status, _, problem) = call(&app, "GET", &format!("/api/v1/jobs/{}", JobId::new()), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(problem["status"], 503);
}

#[sqlx::test]
async fn assignment_emails_reach_the_outbox_and_dead_jobs_are_listed(pool: PgPool) {
    let (user, _project, tasks) = seed(&pool, 2).await;
    let jobs = job_queue(&[]).await;
    let app = app(&pool, Some(jobs.clone())).await;
    // As the task routes do: in the transaction that changes the assignee.
    let mut tx = pool.begin().await.unwrap();
    let sent = notify::on_assignment(&mut *tx, Some(&jobs), tasks[0], None, Some(user))
        .await
        .unwrap()
        .expect("a new assignee gets an email");
    let unchanged = notify::on_assignment(&mut *tx, Some(&jobs), tasks[1], Some(user), Some(user));
    assert!(unchanged.await.unwrap().is_none());
    tx.commit().await.unwrap();
    // A payload no handler understands: dead at its first attempt.
    let poison = jobs
        .enqueue(Queue::Email, &serde_json::json!({"kind": "spam"}))
        .await
        .unwrap();
    let _stop = start_workers(&jobs, job_context(&pool).await);
    wait_for_state(&jobs, &sent, JobState::Succeeded, Duration::from_secs(10)).await;
    wait_for_state(&jobs, &poison, JobState::Dead, Duration::from_secs(10)).await;

    let (status, _, outbox) = call(&app, "GET", "/api/v1/outbox", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(outbox["pagination"]["total"], 1);
    assert_eq!(outbox["data"][0]["jobId"], sent.as_str());
    assert_eq!(outbox["data"][0]["recipient"], "ada@example.com");
    assert_eq!(outbox["data"][0]["transport"], "outbox");

    let (status, _, dead) = call(&app, "GET", "/api/v1/jobs?state=dead", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(dead["data"].as_array().unwrap().len(), 1);
    assert_eq!(dead["data"][0]["id"], poison.as_str());
    assert!(
        dead["data"][0]["lastError"]
            .as_str()
            .unwrap()
            .contains("not an email job")
    );

    let (status, _, _) = call(&app, "POST", &format!("/api/v1/jobs/{sent}/retry"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "only dead jobs can be retried");
    cleanup(&jobs).await;
}

#[sqlx::test]
async fn assigning_a_task_through_the_api_emails_the_assignee(pool: PgPool) {
    let (ada, project, _tasks) = seed(&pool, 0).await;
    let bob: i64 = sqlx::query_scalar(
        "INSERT INTO users (email, username) VALUES ('bob@example.com', 'bob') RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let jobs = job_queue(&[]).await;
    let app = app(&pool, Some(jobs.clone())).await;
    let requests = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM job_requests")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let body = format!(r#"{{"projectId":{project},"title":"Ship it","assigneeId":{ada}}}"#);
    let (status, _, task) = call(&app, "POST", "/api/v1/tasks", Some(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    let uri = format!("/api/v1/tasks/{}", task["id"]);
    assert_eq!(requests().await, 1, "created with an assignee");
    let same = format!(r#"{{"assigneeId":{ada}}}"#);
    assert_eq!(call(&app, "PATCH", &uri, Some(&same)).await.0, StatusCode::OK);
    assert_eq!(
        call(&app, "PATCH", &uri, Some(r#"{"title":"Ship it now"}"#))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(requests().await, 1, "no email without a new assignee");
    let other = format!(r#"{{"assigneeId":{bob}}}"#);
    assert_eq!(call(&app, "PATCH", &uri, Some(&other)).await.0, StatusCode::OK);
    assert_eq!(requests().await, 2, "reassigned");

    let _stop = start_workers(&jobs, job_context(&pool).await);
    crate::support::wait_for(Duration::from_secs(10), "both emails handled", || async {
        let done: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(&pool)
            .await
            .unwrap();
        let ids = jobs.store.depth(Queue::Email).await.unwrap();
        (done == 1 && requests().await == 0 && ids.ready == 0 && ids.running == 0).then_some(())
    })
    .await;
    // Ada's email was overtaken by the reassignment: only Bob hears about the task.
    let (_, _, outbox) = call(&app, "GET", "/api/v1/outbox", None).await;
    assert_eq!(outbox["pagination"]["total"], 1);
    assert_eq!(outbox["data"][0]["recipient"], "bob@example.com");
    assert_eq!(outbox["data"][0]["subject"], "You were assigned: Ship it now");
    cleanup(&jobs).await;
}

#[sqlx::test(migrations = false)]
async fn job_routes_are_in_the_openapi_document(pool: PgPool) {
    let app = app(&pool, None).await;
    let (status, _, doc) = call(&app, "GET", "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    for (path, method) in [
        ("/api/v1/reports", "post"),
        ("/api/v1/reports/{id}", "get"),
        ("/api/v1/jobs", "get"),
        ("/api/v1/jobs/{id}", "get"),
        ("/api/v1/jobs/{id}/retry", "post"),
        ("/api/v1/outbox", "get"),
        ("/api/v1/outbox/{id}", "get"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} missing");
    }
    for schema in ["JobRecord", "ReportRequest", "StoredReport", "OutboxEmail"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
}

#[sqlx::test(migrations = false)]
async fn job_families_are_in_the_app_metrics(pool: PgPool) {
    let state = AppState::new(app_db(&pool).await, Flags::parse_from(["test"]).serve);
    // What the workers `serve` runs record.
    state
        .job_metrics
        .attempt_finished(Queue::Email, "succeeded", 0.02);
    state.job_metrics.retried(Queue::Email);
    state.job_metrics.dead_lettered(Queue::Report, 1);
    state.job_metrics.set_depth(Queue::Email, Default::default());
    let app = router(state);
    let request = Request::builder().uri("/metrics").body(Body::empty()).unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    for sample in [
        "perfstack_job_attempts_total{queue=\"email\",outcome=\"succeeded\"} 1",
        "perfstack_job_duration_seconds_count{queue=\"email\"} 1",
        "perfstack_job_retries_total{queue=\"email\"} 1",
        "perfstack_job_dead_letters_total{queue=\"report\"} 1",
        "perfstack_job_queue_depth{queue=\"email\",state=\"ready\"} 0",
    ] {
        assert!(text.contains(sample), "{sample} missing in\n{text}");
    }
}
