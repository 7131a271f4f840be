//! What producers (HTTP handlers, the relay) need to enqueue jobs.
use std::sync::Arc;

use super::{
    error::JobsError,
    policy::QueuePolicy,
    record::{JobId, Queue},
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

    /// Enqueues `payload` on `queue` under a fresh id; its run continues the current trace.
    pub async fn enqueue(&self, queue: Queue, payload: &serde_json::Value) -> Result<JobId, JobsError> {
        let id = JobId::new();
        let max_attempts = QueuePolicy::for_queue(&self.config, queue).max_attempts;
        let traceparent = perfstack_otel::traceparent(&tracing::Span::current());
        self.store
            .enqueue(&id, queue, payload, max_attempts, traceparent.as_deref())
            .await?;
        Ok(id)
    }
}
