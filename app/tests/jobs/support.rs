//! Shared test helpers: a job queue under a fresh key prefix, the app's `Db` on a test database,
//! fixtures, and polling.
use std::{future::Future, time::Duration};

use clap::Parser;
use perfstack_app::{
    config::{DbConfig, JobsConfig},
    db::Db,
    jobs::{JobContext, JobId, JobQueue, JobRecord, JobState, mailer::Mailer},
};
use sqlx::PgPool;

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    jobs: JobsConfig,
}

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").expect("REDIS_URL must be set (source .run/env)")
}

/// Jobs settings for tests: the given flags on top of the defaults, a unique key prefix, and a
/// short poll interval.
pub fn jobs_config(extra: &[&str]) -> JobsConfig {
    let prefix = format!("perfstack-test:{}", uuid::Uuid::new_v4());
    let mut args = vec![
        "test",
        "--jobs-key-prefix",
        &prefix,
        "--job-poll-interval-ms",
        "20",
    ];
    args.extend_from_slice(extra);
    Flags::parse_from(args).jobs
}

pub async fn job_queue(extra: &[&str]) -> JobQueue {
    JobQueue::connect(&redis_url(), jobs_config(extra))
        .await
        .expect("connect to Redis")
}

/// Removes every key under the queue's prefix.
pub async fn cleanup(queue: &JobQueue) {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*", queue.config.key_prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL").arg(keys).query_async(&mut conn).await.unwrap();
    }
}

/// The URL of the test database behind `pool` (DATABASE_URL with the database name swapped).
pub fn database_url(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL must be set (source .run/env)");
    let name = pool
        .connect_options()
        .get_database()
        .expect("test database name")
        .to_owned();
    let (without_query, query) = match base.split_once('?') {
        Some((b, q)) => (b.to_owned(), format!("?{q}")),
        None => (base.clone(), String::new()),
    };
    let cut = without_query.rfind('/').expect("database URL has a path");
    format!("{}/{name}{query}", &without_query[..cut])
}

#[derive(Parser)]
struct DbFlags {
    #[command(flatten)]
    db: DbConfig,
}

/// The app's `Db` handle on the test database.
pub async fn app_db(pool: &PgPool) -> Db {
    let url = database_url(pool);
    let cfg = DbFlags::parse_from(["test", "--database-url", &url, "--db-pool-min", "0"]).db;
    Db::connect(&cfg).await.expect("connect to the test database")
}

pub async fn job_context(pool: &PgPool) -> JobContext {
    JobContext {
        db: app_db(pool).await,
        mailer: Mailer::Outbox,
    }
}

/// A user, a project of theirs and `tasks` tasks assigned to them; returns (user, project, task ids).
pub async fn seed(pool: &PgPool, tasks: usize) -> (i64, i64, Vec<i64>) {
    let user: i64 = sqlx::query_scalar(
        "INSERT INTO users (email, username) VALUES ('ada@example.com', 'ada') RETURNING id",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let project: i64 =
        sqlx::query_scalar("INSERT INTO projects (owner_id, name) VALUES ($1, 'Web') RETURNING id")
            .bind(user)
            .fetch_one(pool)
            .await
            .unwrap();
    let mut ids = Vec::new();
    for i in 0..tasks {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tasks (project_id, title, status, priority, assignee_id, due_date)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(project)
        .bind(format!("task {i}"))
        .bind(["todo", "in_progress", "review", "done"][i % 4])
        .bind(i16::try_from(i % 5).unwrap())
        .bind(user)
        .bind(chrono::NaiveDate::from_ymd_opt(2020, 1, 1))
        .fetch_one(pool)
        .await
        .unwrap();
        ids.push(id);
    }
    (user, project, ids)
}

/// Polls `check` every 20 ms until it returns `Some`, or panics after `timeout`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the job reaches `state` and returns it.
pub async fn wait_for_state(queue: &JobQueue, id: &JobId, state: JobState, timeout: Duration) -> JobRecord {
    wait_for(timeout, &format!("job {id} to be {state}"), || async {
        queue
            .store
            .get(id)
            .await
            .unwrap()
            .filter(|job| job.state == state)
    })
    .await
}

/// Runs every statement of `sql` on the test database.
pub async fn execute(pool: &PgPool, sql: &str) {
    sqlx::raw_sql(sql).execute(pool).await.unwrap();
}
