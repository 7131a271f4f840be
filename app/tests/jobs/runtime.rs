//! The queue runtime with injected handlers: success, retry with backoff, timeout, dead letter,
//! expired leases, concurrency limits. Redis only.
use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use perfstack_app::jobs::{
    JobFailure, JobHandler, JobId, JobQueue, JobRecord, JobState, Queue,
    metrics::JobMetrics,
    store::{ClaimedJob, Outcome},
    worker::Worker,
};
use tokio::sync::watch;

use crate::support::{cleanup, job_queue, wait_for_state};

/// Runs `queue` with `handler` in the background until the returned sender is dropped or set.
fn start<H: JobHandler>(jobs: &JobQueue, queue: Queue, handler: Arc<H>) -> watch::Sender<bool> {
    let (stop, stopped) = watch::channel(false);
    let worker = Worker::new(jobs, JobMetrics::default());
    tokio::spawn(async move { worker.run_queue(queue, handler, stopped).await });
    stop
}

fn start_reaper(jobs: &JobQueue) -> watch::Sender<bool> {
    let (stop, stopped) = watch::channel(false);
    let worker = Worker::new(jobs, JobMetrics::default());
    tokio::spawn(async move { worker.run_reaper(stopped).await });
    stop
}

async fn enqueue_n(jobs: &JobQueue, queue: Queue, n: usize) -> Vec<JobId> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(jobs.enqueue(queue, &serde_json::json!({ "n": i })).await.unwrap());
    }
    ids
}

/// A queue configured by `flags` holding one job on `queue`.
async fn one_job(flags: &[&str], queue: Queue) -> (JobQueue, JobId) {
    let jobs = job_queue(flags).await;
    let id = enqueue_n(&jobs, queue, 1).await.remove(0);
    (jobs, id)
}

/// Flags of a short lease, reaped often: a lost attempt is seen within half a second.
const SHORT_LEASE: [&str; 4] = ["--job-lease-ms", "300", "--job-reap-interval-ms", "50"];

/// Runs `handler` and the reaper, as a worker process does, on one job of `queue` (configured by
/// `flags`) until the job is `state`; the record then.
async fn run_one<H: JobHandler>(
    flags: &[&str],
    queue: Queue,
    handler: H,
    state: JobState,
) -> (JobQueue, JobRecord) {
    let (jobs, id) = one_job(flags, queue).await;
    let _reaper = start_reaper(&jobs);
    let _stop = start(&jobs, queue, Arc::new(handler));
    let job = wait_for_state(&jobs, &id, state, Duration::from_secs(10)).await;
    (jobs, job)
}

/// Echoes the payload back as the result.
struct Echo;
impl JobHandler for Echo {
    async fn handle(&self, job: &ClaimedJob) -> Result<serde_json::Value, JobFailure> {
        Ok(serde_json::json!({ "echo": job.payload }))
    }
}

#[tokio::test]
async fn successful_jobs_record_their_result() {
    let jobs = job_queue(&[]).await;
    let ids = enqueue_n(&jobs, Queue::Email, 3).await;
    let _stop = start(&jobs, Queue::Email, Arc::new(Echo));
    for (i, id) in ids.iter().enumerate() {
        let job = wait_for_state(&jobs, id, JobState::Succeeded, Duration::from_secs(10)).await;
        assert_eq!(job.attempts, 1);
        assert_eq!(job.max_attempts, 3);
        assert_eq!(job.queue, Queue::Email);
        assert_eq!(job.result, Some(serde_json::json!({ "echo": { "n": i } })));
        assert!(job.finished_at.is_some());
    }
    assert_eq!(jobs.store.depth(Queue::Email).await.unwrap().running, 0);
    cleanup(&jobs).await;
}

/// Fails the first `failures` attempts of every job; records when each attempt started.
struct Flaky {
    failures: u32,
    starts: Mutex<HashMap<String, Vec<Instant>>>,
}
impl JobHandler for Flaky {
    async fn handle(&self, job: &ClaimedJob) -> Result<serde_json::Value, JobFailure> {
        self.starts
            .lock()
            .unwrap()
            .entry(job.id.to_string())
            .or_default()
            .push(Instant::now());
        if job.attempt <= self.failures {
            Err(JobFailure::retryable(format!("injected failure {}", job.attempt)))
        } else {
            Ok(serde_json::json!("ok"))
        }
    }
}

#[tokio::test]
async fn failed_attempts_are_retried_with_exponential_backoff() {
    let jobs = job_queue(&["--retry-base-delay-ms", "200"]).await;
    let ids = enqueue_n(&jobs, Queue::Email, 2).await;
    let handler = Arc::new(Flaky {
        failures: 2,
        starts: Mutex::default(),
    });
    let _stop = start(&jobs, Queue::Email, handler.clone());
    for id in &ids {
        let job = wait_for_state(&jobs, id, JobState::Succeeded, Duration::from_secs(10)).await;
        assert_eq!(job.attempts, 3);
        assert_eq!(job.last_error.as_deref(), Some("injected failure 2"));
        let starts = handler.starts.lock().unwrap()[id.as_str()].clone();
        assert_eq!(starts.len(), 3);
        // 200 ms then 400 ms; late by at most a poll interval plus scheduling noise (busy CI).
        for (gap, expected) in starts.windows(2).zip([200u64, 400]) {
            let waited = gap[1] - gap[0];
            let expected = Duration::from_millis(expected);
            assert!(
                waited + Duration::from_millis(5) >= expected,
                "retried after {waited:?}, before the {expected:?} backoff"
            );
            assert!(
                waited <= expected + Duration::from_millis(400),
                "retried after {waited:?}, long after the {expected:?} backoff"
            );
        }
    }
    cleanup(&jobs).await;
}

#[tokio::test]
async fn a_job_that_keeps_failing_is_dead_lettered_and_visible() {
    let (jobs, id) = one_job(&["--retry-base-delay-ms", "50"], Queue::Email).await;
    let handler = Arc::new(Flaky {
        failures: u32::MAX,
        starts: Mutex::default(),
    });
    let stop = start(&jobs, Queue::Email, handler.clone());
    let job = wait_for_state(&jobs, &id, JobState::Dead, Duration::from_secs(10)).await;
    assert_eq!(job.attempts, 3);
    assert_eq!(job.last_error.as_deref(), Some("injected failure 3"));
    let dead = jobs.store.list(Queue::Email, JobState::Dead, 10).await.unwrap();
    assert_eq!(dead.iter().map(|j| &j.id).collect::<Vec<_>>(), [&id]);
    // Not picked up again while dead.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(handler.starts.lock().unwrap()[id.as_str()].len(), 3);
    let _ = stop.send(true);

    // Revived, it gets a fresh set of attempts.
    assert!(jobs.store.revive(&id).await.unwrap());
    assert!(!jobs.store.revive(&id).await.unwrap(), "only dead jobs revive");
    let _stop = start(&jobs, Queue::Email, Arc::new(Echo));
    let job = wait_for_state(&jobs, &id, JobState::Succeeded, Duration::from_secs(10)).await;
    assert_eq!(job.attempts, 1);
    assert!(
        jobs.store
            .list(Queue::Email, JobState::Dead, 10)
            .await
            .unwrap()
            .is_empty()
    );
    cleanup(&jobs).await;
}

struct Permanent;
impl JobHandler for Permanent {
    async fn handle(&self, _job: &ClaimedJob) -> Result<serde_json::Value, JobFailure> {
        Err(JobFailure::permanent("nothing to retry"))
    }
}

#[tokio::test]
async fn permanent_failures_skip_the_retries() {
    let (jobs, job) = run_one(&[], Queue::Email, Permanent, JobState::Dead).await;
    assert_eq!(job.attempts, 1);
    cleanup(&jobs).await;
}

/// Sleeps far longer than the timeout.
struct Hangs;
impl JobHandler for Hangs {
    async fn handle(&self, _job: &ClaimedJob) -> Result<serde_json::Value, JobFailure> {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok(serde_json::Value::Null)
    }
}

#[tokio::test]
async fn attempts_that_run_past_the_timeout_fail_and_end_dead() {
    let started = Instant::now();
    let flags = ["--report-timeout-ms", "200", "--retry-base-delay-ms", "100"];
    let (jobs, job) = run_one(&flags, Queue::Report, Hangs, JobState::Dead).await;
    // Two attempts of 200 ms and one 100 ms backoff: well under the handler's 60 s.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(job.attempts, 2, "report jobs get 2 attempts");
    assert!(
        job.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("timed out"),
        "{:?}",
        job.last_error
    );
    cleanup(&jobs).await;
}

/// Counts handlers running at once.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
    done: AtomicUsize,
}
impl JobHandler for Gauge {
    async fn handle(&self, _job: &ClaimedJob) -> Result<serde_json::Value, JobFailure> {
        let running = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(running, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(150)).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        self.done.fetch_add(1, Ordering::SeqCst);
        Ok(serde_json::Value::Null)
    }
}

#[tokio::test]
async fn each_queue_runs_at_most_its_concurrency() {
    let jobs = job_queue(&[]).await;
    enqueue_n(&jobs, Queue::Email, 30).await;
    enqueue_n(&jobs, Queue::Report, 10).await;
    let email = Arc::new(Gauge::default());
    let report = Arc::new(Gauge::default());
    let _a = start(&jobs, Queue::Email, email.clone());
    let _b = start(&jobs, Queue::Report, report.clone());
    crate::support::wait_for(Duration::from_secs(20), "all jobs to run", || async {
        (email.done.load(Ordering::SeqCst) == 30 && report.done.load(Ordering::SeqCst) == 10).then_some(())
    })
    .await;
    assert_eq!(email.max.load(Ordering::SeqCst), 5, "email concurrency is 5");
    assert_eq!(report.max.load(Ordering::SeqCst), 2, "report concurrency is 2");
    cleanup(&jobs).await;
}

#[tokio::test]
async fn a_job_whose_worker_vanished_runs_again_after_its_lease() {
    let (jobs, id) = one_job(&["--job-reap-interval-ms", "50"], Queue::Email).await;
    // A worker claims the job and dies: no heartbeat, no outcome.
    let lost = jobs
        .store
        .claim(Queue::Email, Duration::from_millis(300))
        .await
        .unwrap()
        .expect("a ready job");
    assert_eq!(lost.attempt, 1);
    assert_eq!(
        jobs.store.get(&id).await.unwrap().unwrap().state,
        JobState::Running
    );
    let _reaper = start_reaper(&jobs);
    let _stop = start(&jobs, Queue::Email, Arc::new(Echo));
    let job = wait_for_state(&jobs, &id, JobState::Succeeded, Duration::from_secs(10)).await;
    assert_eq!(job.attempts, 2);
    assert!(job.last_error.unwrap_or_default().contains("lost"));
    // The vanished worker coming back cannot overwrite the newer attempt's outcome.
    let late = Outcome::Dead { error: "late".into() };
    assert!(!jobs.store.finish(&lost, &late).await.unwrap());
    assert_eq!(
        jobs.store.get(&id).await.unwrap().unwrap().state,
        JobState::Succeeded
    );
    cleanup(&jobs).await;
}

/// Checks that heartbeats keep a long attempt's lease: the handler outlives the lease many times.
struct Slow(AtomicBool);
impl JobHandler for Slow {
    async fn handle(&self, _job: &ClaimedJob) -> Result<serde_json::Value, JobFailure> {
        assert!(!self.0.swap(true, Ordering::SeqCst), "ran twice");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        Ok(serde_json::Value::Null)
    }
}

#[tokio::test]
async fn heartbeats_keep_long_attempts_leased() {
    let slow = Slow(AtomicBool::new(false));
    let (jobs, job) = run_one(&SHORT_LEASE, Queue::Report, slow, JobState::Succeeded).await;
    assert_eq!(job.attempts, 1, "the lease never expired");
    cleanup(&jobs).await;
}

/// Panics, like a handler with a bug.
struct Panics;
impl JobHandler for Panics {
    async fn handle(&self, _job: &ClaimedJob) -> Result<serde_json::Value, JobFailure> {
        panic!("handler bug");
    }
}

#[tokio::test]
async fn a_handler_that_panics_is_retried_then_dead_lettered() {
    let (jobs, job) = run_one(&SHORT_LEASE, Queue::Email, Panics, JobState::Dead).await;
    assert_eq!(job.attempts, 3);
    assert!(job.last_error.unwrap_or_default().contains("lost"));
    cleanup(&jobs).await;
}
