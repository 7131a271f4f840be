//! The worker runtime: per queue, claim jobs while fewer than `concurrency` handlers run, renew each
//! lease while its handler works, enforce the timeout, record the outcome; plus the reaper that takes
//! back jobs of dead workers and samples queue depth; the relay and the reconciler that keep Redis
//! in line with the PostgreSQL record of the jobs.
use std::{sync::Arc, time::Instant};

use tokio::sync::{Semaphore, watch};
use tracing::Instrument as _;

use crate::db::Db;

use super::{
    handler::JobHandler,
    ledger::{self, Settled},
    metrics::JobMetrics,
    policy::{AfterFailure, QueuePolicy},
    queue::JobQueue,
    reconcile,
    record::Queue,
    relay,
    store::{ClaimedJob, JobStore, Outcome},
};
use crate::config::JobsConfig;

/// Runs the queues of one process.
#[derive(Clone)]
pub struct Worker {
    pub store: JobStore,
    pub config: Arc<JobsConfig>,
    pub metrics: JobMetrics,
    /// Where outcomes are also recorded (the PostgreSQL ledger); `None` runs on Redis alone.
    pub ledger: Option<Db>,
}

impl Worker {
    pub fn new(queue: &JobQueue, metrics: JobMetrics) -> Self {
        Self {
            store: queue.store.clone(),
            config: queue.config.clone(),
            metrics,
            ledger: None,
        }
    }

    /// Records every outcome in the PostgreSQL ledger of `db` too.
    #[must_use]
    pub fn with_ledger(mut self, db: Db) -> Self {
        self.ledger = Some(db);
        self
    }

    fn job_queue(&self) -> JobQueue {
        JobQueue {
            store: self.store.clone(),
            config: self.config.clone(),
        }
    }

    /// Claims and runs jobs of `queue` with `handler` until `shutdown` turns true.
    pub async fn run_queue<H: JobHandler>(
        &self,
        queue: Queue,
        handler: Arc<H>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let policy = QueuePolicy::for_queue(&self.config, queue);
        let slots = Arc::new(Semaphore::new(policy.concurrency));
        tracing::info!(
            queue = queue.as_str(),
            concurrency = policy.concurrency,
            "worker started"
        );
        loop {
            let permit = tokio::select! {
                () = stopped(&mut shutdown) => break,
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            match self.store.claim(queue, self.config.lease()).await {
                Ok(Some(job)) => {
                    let attempt = Attempt {
                        worker: self.clone(),
                        policy,
                        handler: handler.clone(),
                    };
                    tokio::spawn(async move {
                        attempt.run(job).await;
                        drop(permit);
                    });
                }
                Ok(None) => {
                    drop(permit);
                    tokio::select! {
                        () = stopped(&mut shutdown) => break,
                        () = tokio::time::sleep(self.config.poll_interval()) => {}
                    }
                }
                Err(err) => {
                    drop(permit);
                    tracing::warn!(queue = queue.as_str(), error = %err, "could not claim a job");
                    tokio::select! {
                        () = stopped(&mut shutdown) => break,
                        () = tokio::time::sleep(self.config.poll_interval() * 4) => {}
                    }
                }
            }
        }
        let grace = std::time::Duration::from_secs(self.config.job_shutdown_grace_s);
        let all = u32::try_from(policy.concurrency).unwrap_or(u32::MAX);
        if tokio::time::timeout(grace, slots.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!(
                queue = queue.as_str(),
                "handlers still running after the grace period; their leases will expire and the jobs run again"
            );
        }
        tracing::info!(queue = queue.as_str(), "worker stopped");
    }

    /// Every poll interval: moves jobs requested in database transactions to Redis.
    pub async fn run_relay(&self, db: Db, mut shutdown: watch::Receiver<bool>) {
        const BATCH: i64 = 100;
        let jobs = self.job_queue();
        loop {
            if *shutdown.borrow() {
                return;
            }
            let pause = match relay::relay_batch(&db, &jobs, BATCH).await {
                Ok(moved) if i64::try_from(moved) == Ok(BATCH) => continue,
                Ok(_) => self.config.poll_interval(),
                Err(err) => {
                    tracing::warn!(error = %err, "could not relay requested jobs");
                    self.config.poll_interval() * 4
                }
            };
            tokio::select! {
                () = stopped(&mut shutdown) => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Every reconcile interval: enqueues again the unfinished jobs of the PostgreSQL ledger that
    /// Redis lost, and settles ledger rows of jobs Redis finished (see `jobs::reconcile`).
    pub async fn run_reconciler(&self, db: Db, mut shutdown: watch::Receiver<bool>) {
        let jobs = self.job_queue();
        loop {
            match reconcile::pass(&db, &jobs, self.config.reconcile_batch).await {
                Ok(done) => {
                    for (queue, count) in &done.reenqueued {
                        self.metrics.reenqueued(*queue, *count);
                    }
                    if done.reenqueued_total() > 0 {
                        tracing::warn!(
                            reenqueued = done.reenqueued_total(),
                            checked = done.checked,
                            "enqueued jobs again from PostgreSQL: Redis had lost them"
                        );
                    }
                    if done.settled + done.pruned > 0 {
                        tracing::info!(
                            settled = done.settled,
                            pruned = done.pruned,
                            "job ledger brought in line with Redis"
                        );
                    }
                }
                Err(err) => tracing::warn!(error = %err, "could not reconcile the job ledger with Redis"),
            }
            tokio::select! {
                () = stopped(&mut shutdown) => return,
                () = tokio::time::sleep(self.config.reconcile_interval()) => {}
            }
        }
    }

    /// Every reap interval: takes back jobs with expired leases and samples queue depth.
    pub async fn run_reaper(&self, mut shutdown: watch::Receiver<bool>) {
        loop {
            for queue in Queue::ALL {
                match self.store.reap(queue).await {
                    Ok((requeued, dead)) => {
                        if requeued + dead > 0 {
                            tracing::warn!(
                                queue = queue.as_str(),
                                requeued,
                                dead,
                                "took back jobs whose lease expired"
                            );
                            self.metrics.recovered(queue, requeued + dead);
                            self.metrics.dead_lettered(queue, dead);
                        }
                    }
                    Err(err) => tracing::warn!(queue = queue.as_str(), error = %err, "reaper failed"),
                }
                if let Err(err) = self.store.trim_dead(queue).await {
                    tracing::debug!(queue = queue.as_str(), error = %err, "could not trim the dead-letter set");
                }
                match self.store.depth(queue).await {
                    Ok(depth) => self.metrics.set_depth(queue, depth),
                    Err(err) => tracing::debug!(error = %err, "could not sample queue depth"),
                }
            }
            tokio::select! {
                () = stopped(&mut shutdown) => return,
                () = tokio::time::sleep(self.config.reap_interval()) => {}
            }
        }
    }
}

/// One attempt of one job.
struct Attempt<H> {
    worker: Worker,
    policy: QueuePolicy,
    handler: Arc<H>,
}

impl<H: JobHandler> Attempt<H> {
    /// Runs the attempt in its `job` span, a child of the trace of the request that enqueued the job
    /// (when traces are exported and it carried one).
    async fn run(self, job: ClaimedJob) {
        let span = tracing::info_span!(
            "job",
            otel.name = %format_args!("job {}", job.queue.as_str()),
            otel.kind = "consumer",
            job.id = %job.id,
            job.queue = job.queue.as_str(),
            job.attempt = job.attempt,
        );
        if let Some(traceparent) = &job.traceparent {
            perfstack_otel::set_parent_from_traceparent(&span, traceparent);
        }
        self.run_in_span(job).instrument(span).await;
    }

    async fn run_in_span(self, job: ClaimedJob) {
        let Worker {
            store,
            config,
            metrics,
            ..
        } = &self.worker;
        let queue = job.queue;
        let _in_flight = InFlight::enter(metrics.in_flight(queue));
        let started = Instant::now();
        let lease = config.lease();
        let debug_delay = std::time::Duration::from_millis(config.debug_delay_ms);
        let work = tokio::time::timeout(self.policy.timeout, async {
            if !debug_delay.is_zero() {
                tokio::time::sleep(debug_delay).await;
            }
            self.handler.handle(&job).await
        });
        let renew = async {
            let mut every = tokio::time::interval(lease / 3);
            every.tick().await;
            loop {
                every.tick().await;
                match store.heartbeat(&job, lease).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(err) => tracing::warn!(job = %job.id, error = %err, "could not renew a lease"),
                }
            }
        };
        let finished = tokio::select! {
            finished = work => finished,
            () = renew => {
                tracing::warn!(job = %job.id, "lease lost; abandoning the attempt (another worker owns the job)");
                return;
            }
        };
        let seconds = started.elapsed().as_secs_f64();
        let (label, outcome) = match finished {
            Ok(Ok(result)) => (
                "succeeded",
                Outcome::Succeeded {
                    result,
                    keep: std::time::Duration::from_secs(config.keep_succeeded_s),
                },
            ),
            Ok(Err(failure)) => ("failed", self.failed(&job, failure.message, failure.permanent)),
            Err(_) => {
                let message = format!("attempt timed out after {:?}", self.policy.timeout);
                ("timed_out", self.failed(&job, message, false))
            }
        };
        metrics.attempt_finished(queue, label, seconds);
        match &outcome {
            Outcome::Retry { error, delay } => {
                metrics.retried(queue);
                tracing::warn!(job = %job.id, queue = queue.as_str(), attempt = job.attempt, error, retry_in_ms = delay.as_millis(), "job attempt failed");
            }
            Outcome::Dead { error } => {
                metrics.dead_lettered(queue, 1);
                tracing::error!(job = %job.id, queue = queue.as_str(), attempt = job.attempt, error, "job dead-lettered");
            }
            Outcome::Succeeded { .. } => {
                tracing::debug!(job = %job.id, queue = queue.as_str(), seconds, "job succeeded");
            }
        }
        match store.finish(&job, &outcome).await {
            Ok(true) => self.settle(&job, &outcome),
            Ok(false) => tracing::warn!(job = %job.id, "outcome not recorded: the lease was lost meanwhile"),
            Err(err) => {
                tracing::warn!(job = %job.id, error = %err, "outcome not recorded; the job runs again when its lease expires")
            }
        }
    }

    /// Copies a recorded outcome to the ledger, in a task of its own so the handler's slot is free
    /// for the next job at once. On failure (or a process that exits first) the reconciler settles
    /// the row later from Redis; if Redis forgot the job meanwhile, the job runs again, to no
    /// effect (handlers are idempotent by id).
    fn settle(&self, job: &ClaimedJob, outcome: &Outcome) {
        let Some(db) = self.worker.ledger.clone() else {
            return;
        };
        let (id, settled) = (job.id.clone(), Settled::from_outcome(job.attempt, outcome));
        let settle = async move {
            if let Err(err) = ledger::settle(&db, &id, &settled).await {
                tracing::warn!(job = %id, error = %err, "outcome not recorded in the job ledger; the reconciler will");
            }
        };
        tokio::spawn(settle.in_current_span());
    }

    fn failed(&self, job: &ClaimedJob, error: String, permanent: bool) -> Outcome {
        match self.policy.after_failure(job.attempt, permanent) {
            AfterFailure::RetryIn(delay) => Outcome::Retry { error, delay },
            AfterFailure::DeadLetter => Outcome::Dead { error },
        }
    }
}

/// Counts a running handler in the in-flight gauge until dropped, even when the handler panics
/// (the panic ends the attempt; its lease expires and the reaper takes the job back).
struct InFlight(prometheus_client::metrics::gauge::Gauge);

impl InFlight {
    fn enter(gauge: prometheus_client::metrics::gauge::Gauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Resolves once the shutdown flag is (or becomes) true, or its sender is gone.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
