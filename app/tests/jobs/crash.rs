//! The real `perfstack-app worker` killed with SIGKILL while jobs run, then restarted: every job
//! finishes, and each takes effect exactly once.
use std::{process::Stdio, time::Duration};

use perfstack_app::jobs::{JobId, JobQueue, JobState, Queue, email::EmailJob, report::ReportRequest};
use sqlx::PgPool;
use tokio::process::{Child, Command};

use crate::support::{cleanup, database_url, job_queue, redis_url, seed, wait_for};

fn spawn_worker(pool: &PgPool, jobs: &JobQueue) -> Child {
    spawn_worker_with(pool, jobs, "150", "127.0.0.1:0")
}

fn spawn_worker_with(pool: &PgPool, jobs: &JobQueue, debug_delay_ms: &str, metrics_addr: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_perfstack-app"))
        .arg("worker")
        .env_clear()
        .env("DATABASE_URL", database_url(pool))
        .env("REDIS_URL", redis_url())
        .env("JOBS_KEY_PREFIX", &jobs.config.key_prefix)
        .env("WORKER_METRICS_ADDR", metrics_addr)
        // Long enough for the kill to land mid-job, short enough to keep the test fast.
        .env("JOBS_DEBUG_DELAY_MS", debug_delay_ms)
        .env("JOBS_LEASE_MS", "900")
        .env("JOBS_REAP_INTERVAL_MS", "100")
        .env("JOBS_POLL_INTERVAL_MS", "20")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn perfstack-app worker")
}

/// A plain HTTP/1.1 GET against the worker's endpoints; returns the whole response.
async fn get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn sigkill_mid_run_loses_nothing_and_doubles_nothing(pool: PgPool) {
    let (user, project, tasks) = seed(&pool, 40).await;
    let jobs = job_queue(&[]).await;
    let mut ids: Vec<JobId> = Vec::new();
    for task in &tasks {
        let payload = serde_json::to_value(EmailJob::TaskAssigned {
            task_id: *task,
            assignee_id: user,
        })
        .unwrap();
        ids.push(jobs.enqueue(Queue::Email, &payload).await.unwrap());
    }
    for _ in 0..6 {
        let payload = serde_json::to_value(ReportRequest::ProjectTaskStats { project_id: project }).unwrap();
        ids.push(jobs.enqueue(Queue::Report, &payload).await.unwrap());
    }

    let mut first = spawn_worker(&pool, &jobs);
    // Kill once some emails are written and others are mid-attempt. The worker runs its five
    // email slots side by side, so a batch often ends together: wait for a moment when the next
    // batch is running, not merely for the first emails (a read between two batches shows none).
    let depth = wait_for(
        Duration::from_secs(30),
        "the first emails, with more running",
        || async {
            if count(&pool, "outbox").await < 5 {
                return None;
            }
            let depth = jobs.store.depth(Queue::Email).await.unwrap();
            (depth.running > 0).then_some(depth)
        },
    )
    .await;
    first.start_kill().unwrap(); // SIGKILL
    first.wait().await.unwrap();
    let written_before_restart = count(&pool, "outbox").await;
    assert!(
        written_before_restart < 40,
        "killed too late to prove anything (queue when the kill was sent: {depth:?})"
    );

    let port = perfstack_tests::spare_port();
    let mut second = spawn_worker_with(&pool, &jobs, "150", &format!("127.0.0.1:{port}"));
    let mut retried = 0;
    for id in &ids {
        let job = wait_for(
            Duration::from_secs(60),
            &format!("job {id} to finish"),
            || async {
                jobs.store
                    .get(id)
                    .await
                    .unwrap()
                    .filter(|j| matches!(j.state, JobState::Succeeded | JobState::Dead))
            },
        )
        .await;
        assert_eq!(job.state, JobState::Succeeded, "{job:?}");
        if job.attempts > 1 {
            retried += 1;
        }
    }
    let (ready, metrics) = (get(port, "/readyz").await, get(port, "/metrics").await);
    second.start_kill().unwrap();
    second.wait().await.unwrap();
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    assert!(
        metrics.contains("perfstack_job_attempts_total{queue=\"email\",outcome=\"succeeded\"}"),
        "{metrics}"
    );
    let recovered = metrics
        .lines()
        .find_map(|l| l.strip_prefix("perfstack_job_recovered_total{queue=\"email\"} "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(
        recovered >= 1.0,
        "the restarted worker took back the killed one's jobs:\n{metrics}"
    );
    assert!(
        retried > 0,
        "some attempts were interrupted by the kill and ran again"
    );
    assert_eq!(count(&pool, "outbox").await, 40, "one email per email job");
    assert_eq!(count(&pool, "reports").await, 6, "one report per report job");
    let distinct: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT job_id) FROM (SELECT job_id FROM outbox UNION ALL SELECT job_id FROM reports) j",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(distinct, 46);
    cleanup(&jobs).await;
}

#[sqlx::test]
async fn sigterm_lets_running_jobs_finish_before_exit(pool: PgPool) {
    let (_user, project, _tasks) = seed(&pool, 3).await;
    let jobs = job_queue(&[]).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let payload = serde_json::to_value(ReportRequest::ProjectTaskStats { project_id: project }).unwrap();
        ids.push(jobs.enqueue(Queue::Report, &payload).await.unwrap());
    }
    let mut worker = spawn_worker_with(&pool, &jobs, "800", "127.0.0.1:0");
    wait_for(Duration::from_secs(30), "two reports running", || async {
        (jobs.store.depth(Queue::Report).await.unwrap().running == 2).then_some(())
    })
    .await;
    let pid = worker.id().expect("worker pid").to_string();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(term.success());
    let status = tokio::time::timeout(Duration::from_secs(20), worker.wait())
        .await
        .expect("the worker exits after draining")
        .unwrap();
    assert!(status.success(), "{status:?}");
    let depth = jobs.store.depth(Queue::Report).await.unwrap();
    assert_eq!(depth.running, 0, "no attempt left behind");
    assert_eq!(
        count(&pool, "reports").await,
        2,
        "the two running reports finished"
    );
    assert_eq!(depth.ready, 3, "the others wait for the next worker");
    cleanup(&jobs).await;
}
