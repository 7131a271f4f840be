//! Background jobs that are never lost: the `email` and `report` queues in Redis, their workers, and
//! the handlers that send notification emails and compute reports.
//!
//! Why not a job library: apalis-redis 1.0 (the obvious candidate) hardcodes 25 attempts and a linear
//! backoff in its Lua (`handle_results.lua`), so neither "3 attempts with exponential backoff from 5 s"
//! nor "2 attempts" can be expressed in storage; its per-attempt state lives in the worker's memory,
//! so a SIGKILL loses the attempt count. This module is the reliable-queue pattern instead, small
//! enough to read: atomic Lua moves between ready / scheduled / running / dead, leases renewed by a
//! heartbeat, a reaper for leases that expire, and handlers idempotent by job id.
pub mod config;
pub mod email;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod policy;
pub mod record;
pub mod relay;
pub mod report;
pub mod standalone;
pub mod store;
pub mod worker;

pub use config::JobsConfig;
pub use record::{JobId, JobRecord, JobState, Queue};
pub use store::JobStore;

use crate::db::Db;

/// Errors of the job system.
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    #[error("the Redis URL is not valid")]
    RedisUrl(#[source] redis::RedisError),
    #[error("Redis command failed")]
    Redis(#[from] redis::RedisError),
    #[error("database error in a job")]
    Database(#[from] sqlx::Error),
    #[error("jobs in state {0} cannot be listed; fetch them by id")]
    NotListable(JobState),
    #[error("the SMTP settings are not valid")]
    Smtp(#[source] lettre::transport::smtp::Error),
    #[error("MAIL_FROM is not a valid mailbox")]
    MailFrom,
}

/// What producers (HTTP handlers) need to enqueue jobs: the store and each queue's attempt budget.
#[derive(Debug, Clone)]
pub struct JobQueue {
    pub store: JobStore,
    pub config: std::sync::Arc<JobsConfig>,
}

impl JobQueue {
    pub async fn connect(redis_url: &str, config: JobsConfig) -> Result<Self, JobsError> {
        let store = JobStore::connect(redis_url, config.key_prefix.clone()).await?;
        Ok(Self {
            store,
            config: std::sync::Arc::new(config),
        })
    }

    /// Enqueues `payload` on `queue` under a fresh id.
    pub async fn enqueue(&self, queue: Queue, payload: &serde_json::Value) -> Result<JobId, JobsError> {
        let id = JobId::new();
        let max_attempts = self.config.policy(queue).max_attempts;
        self.store.enqueue(&id, queue, payload, max_attempts).await?;
        Ok(id)
    }
}

/// Everything a handler may touch.
#[derive(Clone)]
pub struct JobContext {
    pub db: Db,
    pub mailer: email::Mailer,
}
