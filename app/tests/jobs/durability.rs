//! Jobs survive a loss of Redis' data: PostgreSQL records every accepted job, the reconciler enqueues
//! again what Redis lost, each effect happens once, and `GET /jobs/{id}` answers from PostgreSQL.
//! "Losing Redis' data" is deleting every key under the test's own prefix (`cleanup`): what
//! FLUSHALL or a Redis restarted on an empty volume does to one deployment, without touching the
//! Redis the other tests share.
use std::time::Duration;

use axum::http::StatusCode;
use perfstack_app::jobs::{
    JobContext, JobId, JobQueue, JobRecord, JobState, Queue, ledger, metrics::JobMetrics, notify, reconcile,
    relay, worker::Worker,
};
use prometheus_client::registry::Registry;
use sqlx::PgPool;
use tokio::sync::watch;

use crate::{
    api::{app, call},
    support::{app_db, cleanup, job_context, job_queue, seed, wait_for},
};

const FAST_RECONCILE: [&str; 2] = ["--jobs-reconcile-interval-ms", "50"];

fn start_workers(jobs: &JobQueue, ctx: JobContext, metrics: &JobMetrics) -> watch::Sender<bool> {
    let (stop, stopped) = watch::channel(false);
    let worker = Worker::new(jobs, metrics.clone());
    tokio::spawn(perfstack_app::startup::run_workers(worker, ctx, stopped));
    stop
}

async fn post_reports(app: &axum::Router, project: i64, count: usize) -> Vec<JobId> {
    let body = format!(r#"{{"type":"projectTaskStats","parameters":{{"projectId":{project}}}}}"#);
    let mut ids = Vec::new();
    for _ in 0..count {
        let (status, _, accepted) = call(app, "POST", "/api/v1/reports", Some(&body)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
        ids.push(JobId::parse(accepted["jobId"].as_str().unwrap()).unwrap());
    }
    ids
}

/// A project of `tasks` tasks, an API whose queue reconciles fast, and the ids of `reports` report
/// jobs it accepted for the project.
async fn reports_accepted(
    pool: &PgPool,
    tasks: usize,
    reports: usize,
) -> (JobQueue, axum::Router, Vec<JobId>) {
    let (_user, project, _tasks) = seed(pool, tasks).await;
    let jobs = job_queue(&FAST_RECONCILE).await;
    let app = app(pool, Some(jobs.clone())).await;
    let ids = post_reports(&app, project, reports).await;
    (jobs, app, ids)
}

/// Rows of `table` (`reports` or `outbox`) per job id, for the given ids, in their order.
async fn effects(pool: &PgPool, table: &str, ids: &[JobId]) -> Vec<i64> {
    let mut counts = Vec::new();
    for id in ids {
        let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table} WHERE job_id = $1"))
            .bind(id.as_str())
            .fetch_one(pool)
            .await
            .unwrap();
        counts.push(count);
    }
    counts
}

async fn wait_for_effects(pool: &PgPool, table: &str, ids: &[JobId]) {
    wait_for(
        Duration::from_secs(20),
        &format!("a {table} row per job"),
        || async {
            effects(pool, table, ids)
                .await
                .iter()
                .all(|n| *n >= 1)
                .then_some(())
        },
    )
    .await;
}

/// Waits until the ledger records job `id` in `state` and returns it.
async fn wait_for_ledger(db: &perfstack_app::db::Db, id: &JobId, state: JobState) -> JobRecord {
    wait_for(
        Duration::from_secs(10),
        &format!("the ledger to say {id} is {state}"),
        || async {
            ledger::get(db, id)
                .await
                .unwrap()
                .filter(|job| job.state == state)
        },
    )
    .await
}

/// Checks `perfstack_job_reenqueued_total{queue="report"}` is exactly `count`.
fn assert_reenqueued(metrics: &JobMetrics, count: u64) {
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    let line = format!("perfstack_job_reenqueued_total{{queue=\"report\"}} {count}\n");
    assert!(text.contains(&line), "expected {line} in\n{text}");
}

#[sqlx::test]
async fn queued_report_jobs_run_once_after_redis_lost_its_data(pool: PgPool) {
    let (jobs, app, ids) = reports_accepted(&pool, 3, 6).await;

    cleanup(&jobs).await;
    for id in &ids {
        assert!(jobs.store.get(id).await.unwrap().is_none(), "Redis lost {id}");
        let (status, _, job) = call(&app, "GET", &format!("/api/v1/jobs/{id}"), None).await;
        assert_eq!(status, StatusCode::OK, "answered from PostgreSQL: {job}");
        assert_eq!(job["state"], "queued");
        assert_eq!(job["queue"], "report");
        assert_eq!(job["maxAttempts"], 2);
    }

    let db = app_db(&pool).await;
    let metrics = JobMetrics::default();
    let _stop = start_workers(&jobs, job_context(&pool).await, &metrics);
    wait_for_effects(&pool, "reports", &ids).await;
    for id in &ids {
        let job = wait_for_ledger(&db, id, JobState::Succeeded).await;
        assert_eq!(job.attempts, 1);
    }
    assert_eq!(
        effects(&pool, "reports", &ids).await,
        vec![1; 6],
        "one report per job"
    );
    assert_reenqueued(&metrics, 6);
    cleanup(&jobs).await;
}

#[sqlx::test]
async fn finished_jobs_stay_readable_and_are_not_run_again(pool: PgPool) {
    let (jobs, app, ids) = reports_accepted(&pool, 2, 3).await;
    let metrics = JobMetrics::default();
    let stop = start_workers(&jobs, job_context(&pool).await, &metrics);
    wait_for_effects(&pool, "reports", &ids).await;
    let db = app_db(&pool).await;
    for id in &ids {
        wait_for_ledger(&db, id, JobState::Succeeded).await;
    }
    cleanup(&jobs).await;
    // A crash between Redis' outcome and the ledger's: the row still says queued. (Written after
    // the wipe: before it, the reconciler would settle the row again from Redis' copy.)
    sqlx::query("UPDATE jobs SET state = 'queued', finished_at = NULL, result = NULL WHERE job_id = $1")
        .bind(ids[0].as_str())
        .execute(&pool)
        .await
        .unwrap();
    for id in &ids[1..] {
        let (status, _, job) = call(&app, "GET", &format!("/api/v1/jobs/{id}"), None).await;
        assert_eq!(status, StatusCode::OK, "{job}");
        assert_eq!(job["state"], "succeeded");
        let href = job["result"]["href"].as_str().unwrap().to_owned();
        let (status, _, report) = call(&app, "GET", &href, None).await;
        assert_eq!(status, StatusCode::OK, "{report}");
        assert_eq!(report["jobId"], id.as_str());
    }
    // The unsettled one runs again, finds its report and points at it: still one row.
    let job = wait_for_ledger(&db, &ids[0], JobState::Succeeded).await;
    assert!(
        job.result.unwrap()["href"]
            .as_str()
            .unwrap()
            .starts_with("/api/v1/reports/")
    );
    // Give the reconciler a few more passes: nothing else is enqueued again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = stop.send(true);
    assert_eq!(effects(&pool, "reports", &ids).await, vec![1; 3]);
    assert_reenqueued(&metrics, 1); // only the unsettled job
    cleanup(&jobs).await;
}

#[sqlx::test]
async fn assignment_emails_relayed_then_lost_are_sent_once(pool: PgPool) {
    let (user, _project, tasks) = seed(&pool, 3).await;
    let jobs = job_queue(&[]).await;
    let db = app_db(&pool).await;
    let mut ids = Vec::new();
    for task in &tasks {
        let mut tx = pool.begin().await.unwrap();
        let id = notify::on_assignment(&mut *tx, Some(&jobs), *task, None, Some(user))
            .await
            .unwrap()
            .unwrap();
        tx.commit().await.unwrap();
        ids.push(id);
    }
    assert_eq!(relay::relay_batch(&db, &jobs, 100).await.unwrap(), 3);
    assert_eq!(jobs.store.depth(Queue::Email).await.unwrap().ready, 3);

    cleanup(&jobs).await;
    let first = reconcile::pass(&db, &jobs, 2).await.unwrap();
    assert_eq!(
        (first.checked, first.reenqueued_total()),
        (3, 3),
        "in batches of 2: {first:?}"
    );
    assert_eq!(jobs.store.depth(Queue::Email).await.unwrap().ready, 3);
    let again = reconcile::pass(&db, &jobs, 2).await.unwrap();
    assert_eq!(again.reenqueued_total(), 0, "Redis has them: {again:?}");

    let _stop = start_workers(&jobs, job_context(&pool).await, &JobMetrics::default());
    wait_for_effects(&pool, "outbox", &ids).await;
    assert_eq!(
        effects(&pool, "outbox", &ids).await,
        vec![1; 3],
        "one email per job"
    );
    cleanup(&jobs).await;
}

#[sqlx::test]
async fn a_silent_redis_does_not_hide_what_postgres_knows(pool: PgPool) {
    seed(&pool, 0).await;
    let known = job_queue(&[]).await;
    let job = known.new_job(Queue::Report, &serde_json::json!({"type": "projectTaskStats"}));
    ledger::accept(&pool, &job).await.unwrap();
    // Nothing listens on port 1: every Redis command fails.
    let down = JobQueue::connect(
        "redis://127.0.0.1:1/",
        crate::support::jobs_config(&["--jobs-redis-timeout-ms", "200"]),
    )
    .await
    .unwrap();
    let app = app(&pool, Some(down)).await;
    let (status, _, found) = call(&app, "GET", &format!("/api/v1/jobs/{}", job.id), None).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["state"], "queued");
    let (status, _, _) = call(&app, "GET", &format!("/api/v1/jobs/{}", JobId::new()), None).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "unknown to PostgreSQL and Redis silent: cannot say 404"
    );
}

#[sqlx::test]
async fn a_dead_job_lost_with_redis_can_still_be_retried(pool: PgPool) {
    let (_user, project, _tasks) = seed(&pool, 0).await;
    let jobs = job_queue(&[]).await;
    let app = app(&pool, Some(jobs.clone())).await;
    let ids = post_reports(&app, project, 1).await;
    let id = &ids[0];
    // The project goes before the report runs: a permanent failure, dead at once.
    sqlx::query("DELETE FROM projects WHERE id = $1")
        .bind(project)
        .execute(&pool)
        .await
        .unwrap();
    let stop = start_workers(&jobs, job_context(&pool).await, &JobMetrics::default());
    let db = app_db(&pool).await;
    wait_for_ledger(&db, id, JobState::Dead).await;
    let _ = stop.send(true);

    cleanup(&jobs).await;
    let (status, _, job) = call(&app, "GET", &format!("/api/v1/jobs/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{job}");
    assert_eq!(job["state"], "dead");
    assert!(
        job["lastError"].as_str().unwrap().contains("does not exist"),
        "{job}"
    );
    let (status, _, job) = call(&app, "POST", &format!("/api/v1/jobs/{id}/retry"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    assert_eq!(job["state"], "queued");
    assert_eq!(job["attempts"], 0);
    let row = ledger::get(&db, id).await.unwrap().unwrap();
    assert_eq!(
        (row.state, row.attempts),
        (JobState::Queued, 0),
        "revived in PostgreSQL too"
    );
    cleanup(&jobs).await;
}
