//! What producers (HTTP handlers, the relay) need to enqueue jobs.
use std::sync::Arc;

use super::{
    error::JobsError,
    policy::QueuePolicy,
    record::{JobId, NewJob, Queue},
    store::{DeadLetterCap, JobStore},
};
use crate::config::JobsConfig;

/// What producers (HTTP handlers) need to enqueue jobs: the store and each queue's attempt budget.
#[derive(Debug, Clone)]
pub struct JobQueue {
    pub store: JobStore,
    pub config: Arc<JobsConfig>,
}

impl JobQueue {
    pub async fn connect(redis_url: &str, config: JobsConfig) -> Result<Self, JobsError> {
        let dead = DeadLetterCap {
            max: config.dead_max,
            max_age: config.dead_max_age(),
        };
        let store =
            JobStore::connect(redis_url, config.key_prefix.clone(), config.redis_timeout(), dead).await?;
        Ok(Self {
            store,
            config: Arc::new(config),
        })
    }

    /// A job for `queue` under a fresh id, with the queue's attempt budget; its run continues the
    /// current trace.
    pub fn new_job(&self, queue: Queue, payload: &serde_json::Value) -> NewJob {
        NewJob {
            id: JobId::new(),
            queue,
            payload: payload.clone(),
            max_attempts: QueuePolicy::for_queue(&self.config, queue).max_attempts,
            traceparent: perfstack_otel::traceparent(&tracing::Span::current()),
        }
    }

    /// Enqueues `payload` on `queue` in Redis only (no PostgreSQL record: see `jobs::ledger` for
    /// jobs that must survive a loss of Redis' data).
    pub async fn enqueue(&self, queue: Queue, payload: &serde_json::Value) -> Result<JobId, JobsError> {
        let job = self.new_job(queue, payload);
        self.store.enqueue(&job, 0).await?;
        Ok(job.id)
    }
}
