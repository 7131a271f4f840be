//! The job system's groups: queues, retries and mail (`serve` and `worker`), whether `serve` runs
//! the workers, and the standalone worker's own endpoints. Delays and timeouts are in milliseconds
//! so tests can run the real policies fast.
use std::{net::SocketAddr, time::Duration};

use clap::Args;
use perfstack_contract::env;
use secrecy::{ExposeSecret, SecretString};

use super::defaults;

/// Queue, retry and mail settings shared by `serve` (which enqueues and may run workers) and `worker`.
#[derive(Debug, Clone, Args)]
pub struct JobsConfig {
    /// Prefix of every Redis key of the job system (one namespace per deployment or test).
    #[arg(
        long = "jobs-key-prefix",
        env = "JOBS_KEY_PREFIX",
        default_value = "perfstack:jobs"
    )]
    pub key_prefix: String,
    /// `email` handlers running at once per process.
    #[arg(
        long = "email-concurrency",
        env = "JOBS_EMAIL_CONCURRENCY",
        default_value_t = 5
    )]
    pub email_concurrency: usize,
    /// Attempts an email job gets before it is dead-lettered.
    #[arg(
        long = "email-max-attempts",
        env = "JOBS_EMAIL_MAX_ATTEMPTS",
        default_value_t = 3
    )]
    pub email_max_attempts: u32,
    /// How long one email attempt may run, in milliseconds.
    #[arg(
        long = "email-timeout-ms",
        env = "JOBS_EMAIL_TIMEOUT_MS",
        default_value_t = 60_000
    )]
    pub email_timeout_ms: u64,
    /// `report` handlers running at once per process.
    #[arg(
        long = "report-concurrency",
        env = "JOBS_REPORT_CONCURRENCY",
        default_value_t = 2
    )]
    pub report_concurrency: usize,
    /// Attempts a report job gets before it is dead-lettered.
    #[arg(
        long = "report-max-attempts",
        env = "JOBS_REPORT_MAX_ATTEMPTS",
        default_value_t = 2
    )]
    pub report_max_attempts: u32,
    /// How long one report attempt may run, in milliseconds.
    #[arg(
        long = "report-timeout-ms",
        env = "JOBS_REPORT_TIMEOUT_MS",
        default_value_t = 300_000
    )]
    pub report_timeout_ms: u64,
    /// Wait before the first retry, in milliseconds; each further retry waits twice as long.
    #[arg(
        long = "retry-base-delay-ms",
        env = "JOBS_RETRY_BASE_DELAY_MS",
        default_value_t = 5_000
    )]
    pub retry_base_delay_ms: u64,
    /// Longest wait between retries, in milliseconds.
    #[arg(
        long = "retry-max-delay-ms",
        env = "JOBS_RETRY_MAX_DELAY_MS",
        default_value_t = 3_600_000
    )]
    pub retry_max_delay_ms: u64,
    /// Lease of a running attempt, in milliseconds; renewed every third of it. A worker that dies
    /// has its jobs picked up again once the lease expired.
    #[arg(long = "job-lease-ms", env = "JOBS_LEASE_MS", default_value_t = 30_000)]
    pub lease_ms: u64,
    /// How often an idle worker looks for ready jobs, in milliseconds.
    #[arg(
        long = "job-poll-interval-ms",
        env = "JOBS_POLL_INTERVAL_MS",
        default_value_t = 250
    )]
    pub poll_interval_ms: u64,
    /// How often expired leases are looked for, in milliseconds.
    #[arg(
        long = "job-reap-interval-ms",
        env = "JOBS_REAP_INTERVAL_MS",
        default_value_t = 5_000
    )]
    pub reap_interval_ms: u64,
    /// How often the PostgreSQL record of unfinished jobs is compared with Redis, in
    /// milliseconds; a job Redis lost (restarted empty, FLUSHALL) is enqueued again then.
    #[arg(
        long = "jobs-reconcile-interval-ms",
        env = "JOBS_RECONCILE_INTERVAL_MS",
        default_value_t = 30_000
    )]
    pub reconcile_interval_ms: u64,
    /// Unfinished jobs the reconciler reads from PostgreSQL (and looks up in Redis) per batch.
    #[arg(
        long = "jobs-reconcile-batch",
        env = "JOBS_RECONCILE_BATCH",
        default_value_t = 200
    )]
    pub reconcile_batch: u32,
    /// How long a succeeded job stays visible by id, in seconds.
    #[arg(long = "job-keep-succeeded-s", env = "JOBS_KEEP_SUCCEEDED_S", default_value_t = 7 * 24 * 3600)]
    pub keep_succeeded_s: u64,
    /// Most dead-lettered jobs kept per queue; the oldest go first.
    #[arg(long = "jobs-dead-max", env = "JOBS_DEAD_MAX", default_value_t = 10_000)]
    pub dead_max: u64,
    /// How long a dead-lettered job is kept, in seconds.
    #[arg(long = "jobs-dead-max-age-s", env = "JOBS_DEAD_MAX_AGE_S", default_value_t = 7 * 24 * 3600)]
    pub dead_max_age_s: u64,
    /// Timeout of connecting to Redis and of one Redis command of the job system, in milliseconds.
    #[arg(
        long = "jobs-redis-timeout-ms",
        env = "JOBS_REDIS_TIMEOUT_MS",
        default_value_t = 2_000
    )]
    pub jobs_redis_timeout_ms: u64,
    /// How long running handlers may take to finish after a shutdown signal, in seconds (within
    /// the pod's 30 s termination grace period, with the pool's close after it).
    #[arg(
        long = "job-shutdown-grace-s",
        env = "JOBS_SHUTDOWN_GRACE_S",
        default_value_t = 20
    )]
    pub job_shutdown_grace_s: u64,
    /// SMTP server, e.g. smtps://user:password@mail.example.com:465 (or smtp://...:587 for
    /// STARTTLS). Never logged. Without it, emails go to the `outbox` table.
    #[arg(long = "smtp-url", env = "SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<SecretString>,
    /// Sender of notification emails.
    #[arg(
        long = "mail-from",
        env = "MAIL_FROM",
        default_value = "perfstack <noreply@perfstack.invalid>"
    )]
    pub mail_from: String,
    /// Extra time every handler spends before its work, in milliseconds. For crash tests and demos
    /// only: it keeps jobs running long enough to be interrupted.
    #[arg(
        long = "job-debug-delay-ms",
        env = "JOBS_DEBUG_DELAY_MS",
        default_value_t = 0,
        hide = true
    )]
    pub debug_delay_ms: u64,
}

impl JobsConfig {
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms.max(300))
    }

    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.max(10))
    }

    pub fn reap_interval(&self) -> Duration {
        Duration::from_millis(self.reap_interval_ms.max(10))
    }

    pub fn reconcile_interval(&self) -> Duration {
        Duration::from_millis(self.reconcile_interval_ms.max(10))
    }

    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.jobs_redis_timeout_ms.max(1))
    }

    pub fn dead_max_age(&self) -> Duration {
        Duration::from_secs(self.dead_max_age_s.max(1))
    }
}

defaults::default_from_flags!(JobsConfig);

/// Whether `serve` also runs the workers.
#[derive(Debug, Clone, Copy, Args)]
pub struct ServeWorkers {
    /// Serve the API only; run the workers elsewhere (`perfstack-app worker`).
    #[arg(long = "no-workers", env = "JOBS_NO_WORKERS")]
    pub no_workers: bool,
}

/// Settings of the standalone worker process (`perfstack-app worker`).
#[derive(Debug, Clone, Args)]
pub struct WorkerConfig {
    /// Redis URL of the job queues. Never logged.
    #[arg(long = "redis-url", env = env::REDIS_URL, hide_env_values = true)]
    pub redis_url: SecretString,
    /// Redis password, used when the URL carries none. Never logged.
    #[arg(long = "redis-password", env = env::REDIS_PASSWORD, hide_env_values = true)]
    pub redis_password: Option<SecretString>,
    /// Address of the `/livez` and `/metrics` endpoints.
    #[arg(
        long = "metrics-addr",
        env = "WORKER_METRICS_ADDR",
        default_value = "0.0.0.0:9090"
    )]
    pub metrics_addr: SocketAddr,
}

impl WorkerConfig {
    /// The Redis URL with the password in it.
    pub fn expose_redis_url(&self) -> String {
        super::redis::with_password(self.redis_url.expose_secret(), self.redis_password.as_ref())
    }
}
