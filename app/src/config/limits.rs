//! The limits that keep one request, one client or one caller from holding the API's resources for
//! long: PostgreSQL session timeouts and the pool's wait queue (`serve` and `worker`), exports,
//! the report rate, and who may call at all. Each limit has a safe default; docs/api.md lists them.
use std::time::Duration;

use clap::Args;
use perfstack_contract::env;
use secrecy::SecretString;

use super::defaults;

/// Default of `--statement-timeout-ms`: a statement of an API with a 200 ms p95 that runs this long is
/// stuck, not slow.
pub const DEFAULT_STATEMENT_TIMEOUT_MS: u64 = 5_000;
/// Default of `--db-queue-per-connection`: with 5 ms statements a full queue is some 80 ms of
/// waiting, well inside a 200 ms p95; past it waiting would only end in the acquire timeout.
pub const DEFAULT_QUEUE_PER_CONNECTION: u32 = 16;

/// PostgreSQL session limits of the long-running processes (`serve`, `worker`), set on every
/// connection of their pool, and the bound of the pool's wait queue. `migrate` and `seed` run
/// without them (index builds and bulk loads take as long as they take).
#[derive(Debug, Clone, Args)]
pub struct SessionLimits {
    /// Longest a statement may run before PostgreSQL cancels it, in milliseconds (0: no limit).
    #[arg(long = "statement-timeout-ms", env = "DB_STATEMENT_TIMEOUT_MS",
          default_value_t = DEFAULT_STATEMENT_TIMEOUT_MS)]
    pub statement_timeout_ms: u64,
    /// Longest a statement waits for a lock before it fails, in milliseconds (0: no limit).
    #[arg(
        long = "lock-wait-timeout-ms",
        env = "DB_LOCK_TIMEOUT_MS",
        default_value_t = 2_000
    )]
    pub lock_timeout_ms: u64,
    /// Longest a transaction may sit idle before PostgreSQL ends its session, in milliseconds
    /// (0: no limit).
    #[arg(
        long = "idle-in-transaction-timeout-ms",
        env = "DB_IDLE_IN_TRANSACTION_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub idle_in_transaction_timeout_ms: u64,
    /// Requests that may wait for a connection, per connection of the pool's maximum; one more is
    /// answered 503 with Retry-After at once instead of queueing until the acquire timeout
    /// (0: no bound).
    #[arg(long = "db-queue-per-connection", env = "DB_QUEUE_PER_CONNECTION",
          default_value_t = DEFAULT_QUEUE_PER_CONNECTION)]
    pub queue_per_connection: u32,
}

impl SessionLimits {
    /// The `-c name=value` runtime parameters every connection starts with (zero values left out).
    pub fn parameters(&self) -> Vec<(&'static str, String)> {
        [
            ("statement_timeout", self.statement_timeout_ms),
            ("lock_timeout", self.lock_timeout_ms),
            (
                "idle_in_transaction_session_timeout",
                self.idle_in_transaction_timeout_ms,
            ),
        ]
        .into_iter()
        .filter(|(_, ms)| *ms > 0)
        .map(|(name, ms)| (name, ms.to_string()))
        .collect()
    }
}

/// `GET /projects/{id}/tasks/export`: how many may run, how they read, when a slow reader is cut off.
#[derive(Debug, Clone, Args)]
pub struct ExportConfig {
    /// Exports that may run at once in this process; one more is answered 503 with Retry-After.
    #[arg(
        long = "export-max-concurrent",
        env = "EXPORT_MAX_CONCURRENT",
        default_value_t = 4
    )]
    pub max_concurrent: usize,
    /// An export whose client reads nothing for this long is cut off, in milliseconds.
    #[arg(
        long = "export-idle-timeout-ms",
        env = "EXPORT_IDLE_TIMEOUT_MS",
        default_value_t = 30_000
    )]
    pub idle_timeout_ms: u64,
    /// Rows read per statement; no connection is held between two of them.
    #[arg(long = "export-batch-rows", env = "EXPORT_BATCH_ROWS", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch_rows: u32,
}

impl ExportConfig {
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms.max(1))
    }
}

/// `POST /tasks`: how concurrent creates share statements (see `db::task_inserts`).
#[derive(Debug, Clone, Args)]
pub struct TaskInsertConfig {
    /// Most new tasks written by one INSERT (and one commit); 1 writes every task alone.
    #[arg(long = "task-insert-batch-rows", env = "TASK_INSERT_BATCH_ROWS", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub insert_batch_rows: u32,
    /// Coalesced INSERTs that may run at once (each holds one pool connection while it runs).
    #[arg(long = "task-insert-writers", env = "TASK_INSERT_WRITERS", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub insert_writers: u32,
    /// New tasks that may wait for a writer; past it a request writes its task alone.
    #[arg(long = "task-insert-queue", env = "TASK_INSERT_QUEUE", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub insert_queue: u32,
}

/// `POST /reports` per caller (token, else client address): a token bucket per process.
#[derive(Debug, Clone, Args)]
pub struct ReportLimitConfig {
    /// Reports a caller may request per minute, on average (0: no limit).
    #[arg(long = "reports-per-minute", env = "REPORTS_PER_MINUTE", default_value_t = 30)]
    pub per_minute: u32,
    /// Reports a caller may request at once after a quiet spell.
    #[arg(long = "reports-burst", env = "REPORTS_BURST", default_value_t = 10)]
    pub burst: u32,
}

/// Bearer tokens. With neither set, the API asks nobody who they are (the default); with them set,
/// every route but the probes, `/metrics` and `/openapi.json` needs one (docs/api.md, "Who may do
/// what"). Never logged.
#[derive(Debug, Clone, Args)]
pub struct AuthConfig {
    /// Token of ordinary callers: reads, creates, changes and reports.
    #[arg(long = "api-token", env = env::API_TOKEN, hide_env_values = true)]
    pub api_token: Option<SecretString>,
    /// Token of administrators: everything, including deletes, jobs, the outbox and the dashboard.
    #[arg(long = "admin-token", env = env::API_ADMIN_TOKEN, hide_env_values = true)]
    pub admin_token: Option<SecretString>,
}

defaults::default_from_flags!(
    SessionLimits,
    ExportConfig,
    ReportLimitConfig,
    TaskInsertConfig,
    AuthConfig
);
