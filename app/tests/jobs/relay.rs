//! Jobs requested in a database transaction reach Redis only when it commits, and exactly once.
use perfstack_app::jobs::{JobId, JobQueue, JobState, Queue, notify, relay};
use sqlx::PgPool;

use crate::support::{app_db, cleanup, job_queue, jobs_config, seed};

/// Requests the assignment email of `task` to `user` in a transaction that then commits (or not).
async fn request(pool: &PgPool, jobs: &JobQueue, task: i64, user: i64, commit: bool) -> JobId {
    let mut tx = pool.begin().await.unwrap();
    let id = notify::on_assignment(&mut *tx, Some(jobs), task, None, Some(user))
        .await
        .unwrap()
        .unwrap();
    if commit {
        tx.commit().await.unwrap();
    } else {
        tx.rollback().await.unwrap();
    }
    id
}

#[sqlx::test]
async fn requests_move_to_redis_after_commit_only_and_once(pool: PgPool) {
    let (user, _project, tasks) = seed(&pool, 2).await;
    let jobs = job_queue(&[]).await;
    let db = app_db(&pool).await;

    let rolled_back = request(&pool, &jobs, tasks[0], user, false).await;
    let committed = request(&pool, &jobs, tasks[1], user, true).await;
    assert!(
        jobs.store.get(&committed).await.unwrap().is_none(),
        "not in Redis before the relay"
    );

    assert_eq!(relay::relay_batch(&db, &jobs, 100).await.unwrap(), 1);
    assert!(jobs.store.get(&rolled_back).await.unwrap().is_none());
    let job = jobs.store.get(&committed).await.unwrap().unwrap();
    assert_eq!(
        (job.queue, job.state, job.max_attempts),
        (Queue::Email, JobState::Queued, 3)
    );
    assert_eq!(job.payload["taskId"], tasks[1]);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM job_requests")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0);

    // A relay that died after Redis but before its commit moves the same request again: no-op.
    sqlx::query("INSERT INTO job_requests (job_id, queue, payload) VALUES ($1, 'email', '{}')")
        .bind(committed.as_str())
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(relay::relay_batch(&db, &jobs, 100).await.unwrap(), 1);
    assert_eq!(jobs.store.depth(Queue::Email).await.unwrap().ready, 1);
    let job = jobs.store.get(&committed).await.unwrap().unwrap();
    assert_eq!(job.payload["taskId"], tasks[1], "the first enqueue stands");
    cleanup(&jobs).await;
}

/// A redis-server of this test's own: `SCRIPT FLUSH` on the shared one would break other tests'
/// script calls between their reload and its retry.
struct OwnRedis(std::process::Child, u16);

impl OwnRedis {
    async fn start() -> Self {
        let port = perfstack_tests::spare_port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server) must be on PATH");
        let server = Self(child, port);
        for _ in 0..100 {
            if server.connection().await.is_some() {
                return server;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start on port {port}");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.1)
    }

    async fn connection(&self) -> Option<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(self.url()).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        let pong: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut conn).await;
        pong.ok().map(|_| conn)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[sqlx::test]
async fn a_batch_goes_to_redis_in_one_pipeline_even_on_a_redis_without_its_scripts(pool: PgPool) {
    let (user, _project, tasks) = seed(&pool, 150).await;
    // A Redis that never saw the scripts (as after a restart): a pipeline cannot load a script on
    // demand the way a single call does.
    let redis = OwnRedis::start().await;
    let jobs = JobQueue::connect(&redis.url(), jobs_config(&[])).await.unwrap();
    let db = app_db(&pool).await;
    let mut ids = Vec::new();
    for &task in &tasks {
        ids.push(request(&pool, &jobs, task, user, true).await);
    }
    assert!(
        jobs.store.get(&ids[0]).await.unwrap().is_none(),
        "not before the relay"
    );

    assert_eq!(relay::relay_batch(&db, &jobs, 100).await.unwrap(), 100);
    assert_eq!(jobs.store.depth(Queue::Email).await.unwrap().ready, 100);
    let mut conn = redis.connection().await.unwrap();
    let () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(relay::relay_batch(&db, &jobs, 100).await.unwrap(), 50);
    assert_eq!(relay::relay_batch(&db, &jobs, 100).await.unwrap(), 0);
    assert_eq!(jobs.store.depth(Queue::Email).await.unwrap().ready, 150);
    for (id, task) in ids.iter().zip(&tasks) {
        let job = jobs.store.get(id).await.unwrap().unwrap();
        assert_eq!(
            (job.state, job.payload["taskId"].as_i64()),
            (JobState::Queued, Some(*task))
        );
    }
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM job_requests")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[sqlx::test]
async fn no_request_without_a_queue_or_a_new_assignee(pool: PgPool) {
    let (user, _project, tasks) = seed(&pool, 1).await;
    let jobs = job_queue(&[]).await;
    assert!(
        notify::on_assignment(&pool, None, tasks[0], None, Some(user))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        notify::on_assignment(&pool, Some(&jobs), tasks[0], Some(user), None)
            .await
            .unwrap()
            .is_none()
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM job_requests")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
}
