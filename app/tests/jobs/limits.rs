//! The job system under abuse and faults: the dead-letter set is capped by count and age, report
//! requests are rate-limited per caller, the job routes keep the API's status conventions, and a
//! Redis that hangs costs a bounded wait (never a stuck request or a long-held row lock).
use std::time::{Duration, Instant};

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode, header},
};
use clap::Parser;
use perfstack_app::{
    config::ServeConfig,
    jobs::{JobQueue, JobState, Queue, relay},
};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::{
    api::call,
    support::{app_db, cleanup, job_queue, jobs_config, seed},
};

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    serve: ServeConfig,
}

async fn app_with(pool: &PgPool, jobs: Option<JobQueue>, flags: &[&str]) -> Router {
    let serve = Flags::parse_from(std::iter::once("test").chain(flags.iter().copied())).serve;
    let state = perfstack_app::http::AppState::new(app_db(pool).await, serve).with_jobs(jobs);
    perfstack_app::http::router(state)
}

/// Jobs that die with the cap at 3 leave the 3 that died last, the others gone with their hashes;
/// an age limit empties the set once they are older.
#[sqlx::test]
async fn the_dead_letter_set_is_capped_by_count_and_age(pool: PgPool) {
    let jobs = job_queue(&[
        "--jobs-dead-max",
        "3",
        "--jobs-dead-max-age-s",
        "5",
        "--email-max-attempts",
        "1",
    ])
    .await;
    let ctx = crate::support::job_context(&pool).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker =
        perfstack_app::jobs::worker::Worker::new(&jobs, perfstack_app::jobs::metrics::JobMetrics::default());
    tokio::spawn(perfstack_app::startup::run_workers(worker, ctx, stopped));
    // One job at a time, each enqueued once the one before is dead, so they die in this order:
    // with all five queued at once the workers (5 at a time) let them die in any order, and the
    // set is ordered by when a job died (the test once failed that way under load).
    let mut ids = Vec::new();
    for n in 0..5 {
        let id = jobs
            .enqueue(Queue::Email, &serde_json::json!({"kind": "spam", "n": n}))
            .await
            .unwrap();
        let started = Instant::now();
        while !jobs
            .store
            .list(Queue::Email, JobState::Dead, 10)
            .await
            .unwrap()
            .iter()
            .any(|job| job.id == id)
        {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "job {n} was not dead-lettered"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ids.push(id);
    }
    let started = Instant::now();
    loop {
        let dead = jobs.store.depth(Queue::Email).await.unwrap().dead;
        let queued = jobs
            .store
            .list(Queue::Email, JobState::Queued, 10)
            .await
            .unwrap()
            .len();
        if queued == 0 && dead == 3 && jobs.store.get(&ids[0]).await.unwrap().is_none() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "dead {dead}, queued {queued}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let kept: Vec<_> = jobs.store.list(Queue::Email, JobState::Dead, 10).await.unwrap();
    assert_eq!(kept.len(), 3);
    assert!(
        kept.iter().all(|job| ids[2..].contains(&job.id)),
        "the newest stay"
    );
    // Past the age limit the reaper drops the rest.
    let started = Instant::now();
    while jobs.store.depth(Queue::Email).await.unwrap().dead > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "old dead jobs were kept"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(jobs.store.get(&ids[4]).await.unwrap().is_none());
    let _ = stop.send(true);
    cleanup(&jobs).await;
}

/// One caller may ask for `burst` reports at once, then gets 429 with Retry-After; another caller
/// has a bucket of its own.
#[sqlx::test]
async fn report_requests_are_limited_per_caller(pool: PgPool) {
    let (_, project, _) = seed(&pool, 0).await;
    let jobs = job_queue(&[]).await;
    let app = app_with(
        &pool,
        Some(jobs.clone()),
        &["--reports-per-minute", "6", "--reports-burst", "2"],
    )
    .await;
    let body = format!(r#"{{"type":"projectTaskStats","parameters":{{"projectId":{project}}}}}"#);
    let post = |token: &str| {
        Request::post("/api/v1/reports")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::from(body.clone()))
            .unwrap()
    };
    for _ in 0..2 {
        assert_eq!(
            app.clone().oneshot(post("alice")).await.unwrap().status(),
            StatusCode::ACCEPTED
        );
    }
    let limited = app.clone().oneshot(post("alice")).await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(
        app.clone().oneshot(post("bob")).await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    cleanup(&jobs).await;
}

/// 413 and 415 keep their codes, `offset + limit` cannot overflow, a busy pool is 503.
#[sqlx::test]
async fn job_routes_keep_the_apis_conventions(pool: PgPool) {
    seed(&pool, 0).await;
    let jobs = job_queue(&[]).await;
    let app = app_with(&pool, Some(jobs.clone()), &["--body-limit", "64"]).await;
    let text = Request::post("/api/v1/reports")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("hi"))
        .unwrap();
    assert_eq!(
        app.clone().oneshot(text).await.unwrap().status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let big = format!(
        r#"{{"type":"projectTaskStats","parameters":{{"projectId":1}},"x":"{}"}}"#,
        "a".repeat(200)
    );
    let (status, _, _) = call(&app, "POST", "/api/v1/reports", Some(&big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _, page) = call(
        &app,
        "GET",
        &format!("/api/v1/outbox?page={}&limit=100", i64::MAX),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["pagination"]["hasNext"], false);
    cleanup(&jobs).await;
}

/// A Redis that accepts connections and never answers: connecting gives up after the timeout (the
/// process starts anyway), a report request is a 503 within a bounded time, and the relay gives
/// up without holding its row locks past the timeout.
#[sqlx::test]
async fn a_hung_redis_costs_a_bounded_wait(pool: PgPool) {
    let (_, project, tasks) = seed(&pool, 1).await;
    let hung = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}/", hung.local_addr().unwrap());
    let accepted = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hung.accept().await {
            held.push(socket);
        }
    });
    let config = jobs_config(&["--jobs-redis-timeout-ms", "300"]);
    let started = Instant::now();
    let jobs = JobQueue::connect(&url, config).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(20));
    let app = app_with(&pool, Some(jobs.clone()), &[]).await;
    let body = format!(r#"{{"type":"projectTaskStats","parameters":{{"projectId":{project}}}}}"#);
    let started = Instant::now();
    let (status, _, problem) = call(&app, "POST", "/api/v1/reports", Some(&body)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
    assert!(started.elapsed() < Duration::from_secs(20));

    // A requested job waiting for the relay: the relay fails within the timeout and its
    // transaction is gone (the row is free for the next attempt).
    let mut tx = pool.begin().await.unwrap();
    relay::request(
        &mut *tx,
        &jobs,
        Queue::Email,
        &serde_json::json!({"kind": "taskAssigned", "taskId": tasks[0], "assigneeId": 1}),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let db = app_db(&pool).await;
    let started = Instant::now();
    assert!(relay::relay_batch(&db, &jobs, 10).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(20));
    let locked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'job_requests' AND l.mode = 'RowShareLock'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(locked, 0, "the relay left a transaction open");
    accepted.abort();
}
