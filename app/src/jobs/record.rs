//! What a job is, as the API shows it: id, queue, state, attempts, last error, result.
use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// A job id: a UUID, so ids never repeat even if Redis loses its data (effects are keyed by it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, example = "0b9e6c9e-5d47-4c55-9a8e-2f4f1e0e6a51")]
pub struct JobId(String);

impl JobId {
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// Parses an id from user input (a path segment); `None` when it is not a UUID.
    pub fn parse(text: &str) -> Option<Self> {
        uuid::Uuid::parse_str(text).ok().map(|u| Self(u.to_string()))
    }

    pub(crate) fn from_stored(text: String) -> Self {
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A job as its producer hands it over: what the ledger row and the Redis hash start from.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub id: JobId,
    pub queue: Queue,
    pub payload: serde_json::Value,
    pub max_attempts: u32,
    /// The W3C traceparent of the request that accepted the job, so its run continues that trace.
    pub traceparent: Option<String>,
}

/// The two queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Queue {
    Email,
    Report,
}

impl Queue {
    pub const ALL: [Queue; 2] = [Queue::Email, Queue::Report];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Report => "report",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|q| q.as_str() == text)
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for a worker.
    Queued,
    /// An attempt is running.
    Running,
    /// Done; `result` says where the effect is.
    Succeeded,
    /// The last attempt failed; another is scheduled at `runAt`.
    Failed,
    /// No attempts left: dead-lettered, kept until revived (`POST /api/v1/jobs/{id}/retry`).
    Dead,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Running,
            Self::Succeeded,
            Self::Failed,
            Self::Dead,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job as `GET /api/v1/jobs/{id}` returns it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobRecord {
    pub id: JobId,
    pub queue: Queue,
    pub state: JobState,
    pub attempts: u32,
    pub max_attempts: u32,
    pub last_error: Option<String>,
    /// Where the effect is, e.g. `{"reportId": 7, "href": "/api/v1/reports/7"}`.
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    /// When the next attempt is due (state `failed`).
    pub run_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl JobRecord {
    /// Reads the Redis hash of a job; `None` for an empty (missing) or malformed hash.
    pub fn from_hash(h: &HashMap<String, String>) -> Option<Self> {
        let num = |k: &str| h.get(k).and_then(|v| v.parse::<u32>().ok());
        let time = |k: &str| {
            h.get(k)
                .and_then(|v| v.parse::<i64>().ok())
                .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
        };
        let json = |k: &str| h.get(k).and_then(|v| serde_json::from_str(v).ok());
        Some(Self {
            id: JobId(h.get("id")?.clone()),
            queue: Queue::parse(h.get("queue")?)?,
            state: JobState::parse(h.get("state")?)?,
            attempts: num("attempts").unwrap_or(0),
            max_attempts: num("maxAttempts").unwrap_or(1),
            last_error: h.get("lastError").cloned(),
            result: json("result"),
            payload: json("payload").unwrap_or(serde_json::Value::Null),
            created_at: time("createdAt"),
            updated_at: time("updatedAt"),
            run_at: time("runAt"),
            finished_at: time("finishedAt"),
        })
    }
}
