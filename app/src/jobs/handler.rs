//! What a queue's handler is: the work of one job, what it may touch, and how it fails.
use std::future::Future;

use serde::de::DeserializeOwned;

use super::{mailer::Mailer, store::ClaimedJob};
use crate::db::Db;

/// Everything a handler may touch.
#[derive(Clone)]
pub struct JobContext {
    pub db: Db,
    pub mailer: Mailer,
}

/// Why an attempt failed. `permanent` failures (bad payload, missing data) are dead-lettered at once.
/// `message` is stored on the job and shown by the API (`lastError`), so it names what failed in
/// the job's terms only; the underlying error goes to the worker's log ([`JobFailure::internal`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFailure {
    pub message: String,
    pub permanent: bool,
}

impl JobFailure {
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: false,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: true,
        }
    }

    /// A retryable failure described to clients as `what`; `detail` (which may hold addresses,
    /// SQL or server messages) is logged, never stored.
    pub fn internal(what: &'static str, detail: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %detail, "{what}");
        Self::retryable(what)
    }
}

impl From<sqlx::Error> for JobFailure {
    fn from(err: sqlx::Error) -> Self {
        Self::internal("database error", &err)
    }
}

/// The work of one queue. Must be idempotent by `job.id`: an attempt may run again after a crash.
pub trait JobHandler: Send + Sync + 'static {
    /// Does the work; `Ok` carries where the result is (stored on the job).
    fn handle(&self, job: &ClaimedJob) -> impl Future<Output = Result<serde_json::Value, JobFailure>> + Send;
}

/// The payload of `job` as `T`. One that does not decode never will: a permanent failure, `what`
/// saying what the payload should have been.
pub fn payload<T: DeserializeOwned>(job: &ClaimedJob, what: &str) -> Result<T, JobFailure> {
    serde_json::from_value(job.payload.clone()).map_err(|e| {
        tracing::warn!(job = %job.id, error = %e, "{what}");
        JobFailure::permanent(what)
    })
}

/// Where a job's effect is, as its result says: `{"<id_key>": id, "href": "/api/v1/<collection>/<id>"}`.
pub fn effect_at(id_key: &str, collection: &str, id: i64) -> serde_json::Value {
    let mut result = serde_json::Map::new();
    result.insert(id_key.to_owned(), id.into());
    result.insert("href".to_owned(), format!("/api/v1/{collection}/{id}").into());
    result.into()
}

#[cfg(test)]
mod tests;
