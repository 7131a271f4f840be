//! The PostgreSQL record of every accepted job (`jobs` table): written in the transaction that
//! accepts the job, settled when an attempt ends, read by `GET /jobs/{id}` when Redis does not know
//! the id, and walked by the reconciler (`jobs::reconcile`) to enqueue again what Redis lost.
//! Redis stays the queue; this table is what survives it.
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, types::Json};

use super::{
    record::{JobId, JobRecord, JobState, NewJob, Queue},
    store::Outcome,
};
use crate::db::Db;

/// Records `job` as accepted, in the caller's transaction (nothing if it rolls back).
pub async fn accept<'e>(executor: impl PgExecutor<'e>, job: &NewJob) -> Result<(), sqlx::Error> {
    // language=PostgreSQL
    sqlx::query(
        "INSERT INTO jobs (job_id, queue, payload, max_attempts, traceparent) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(job.id.as_str())
    .bind(job.queue.as_str())
    .bind(Json(&job.payload))
    .bind(i32::try_from(job.max_attempts).unwrap_or(i32::MAX))
    .bind(job.traceparent.as_deref())
    .execute(executor)
    .await?;
    Ok(())
}

/// Where an attempt left a job, as the ledger stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    pub state: JobState,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub result: Option<serde_json::Value>,
}

impl Settled {
    /// What `outcome` of attempt number `attempt` leaves behind.
    pub fn from_outcome(attempt: u32, outcome: &Outcome) -> Self {
        let (state, last_error, result) = match outcome {
            Outcome::Succeeded { result, .. } => (JobState::Succeeded, None, Some(result.clone())),
            Outcome::Retry { error, .. } => (JobState::Failed, Some(error.clone()), None),
            Outcome::Dead { error } => (JobState::Dead, Some(error.clone()), None),
        };
        Self {
            state,
            attempts: attempt,
            last_error,
            result,
        }
    }

    /// What Redis says of a job (the reconciler copies finished states it finds there).
    pub fn from_record(job: &JobRecord) -> Self {
        Self {
            state: job.state,
            attempts: job.attempts,
            last_error: job.last_error.clone(),
            result: job.result.clone(),
        }
    }

    fn finished(&self) -> bool {
        matches!(self.state, JobState::Succeeded | JobState::Dead)
    }
}

/// Stores where job `id` stands. Returns false when the ledger has no such job (one enqueued
/// in Redis only, or accepted by a transaction not committed yet).
pub async fn settle(db: &Db, id: &JobId, settled: &Settled) -> Result<bool, sqlx::Error> {
    // language=PostgreSQL
    let sql = "UPDATE jobs SET state = $2, attempts = $3, last_error = coalesce($4, last_error),
                   result = $5, updated_at = now(),
                   finished_at = CASE WHEN $6 THEN coalesce(finished_at, now()) END
               WHERE job_id = $1";
    let query = sqlx::query(sql)
        .bind(id.as_str())
        .bind(settled.state.as_str())
        .bind(i32::try_from(settled.attempts).unwrap_or(i32::MAX))
        .bind(settled.last_error.as_deref())
        .bind(settled.result.as_ref().map(Json))
        .bind(settled.finished());
    let updated = db.execute("jobs.settle", query).await?;
    Ok(updated.rows_affected() == 1)
}

/// A ledger row, as the API and the reconciler read it.
#[derive(Debug, sqlx::FromRow)]
pub struct LedgerJob {
    pub job_id: String,
    pub queue: String,
    pub payload: Json<serde_json::Value>,
    pub state: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub last_error: Option<String>,
    pub result: Option<Json<serde_json::Value>>,
    pub traceparent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl LedgerJob {
    /// The job as `GET /jobs/{id}` shows it; `None` for a row no version of the app writes.
    pub fn to_record(&self) -> Option<JobRecord> {
        Some(JobRecord {
            id: JobId::from_stored(self.job_id.clone()),
            queue: Queue::parse(&self.queue)?,
            state: JobState::parse(&self.state)?,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            max_attempts: u32::try_from(self.max_attempts).unwrap_or(1),
            last_error: self.last_error.clone(),
            result: self.result.as_ref().map(|r| r.0.clone()),
            payload: self.payload.0.clone(),
            created_at: Some(self.created_at),
            updated_at: Some(self.updated_at),
            run_at: None,
            finished_at: self.finished_at,
        })
    }

    /// The job to hand to Redis again, and the attempts it has spent (at most all but one, so
    /// the job gets the attempt Redis' loss took from it).
    pub fn to_new_job(&self) -> Option<(NewJob, u32)> {
        let max_attempts = u32::try_from(self.max_attempts).unwrap_or(1).max(1);
        let job = NewJob {
            id: JobId::from_stored(self.job_id.clone()),
            queue: Queue::parse(&self.queue)?,
            payload: self.payload.0.clone(),
            max_attempts,
            traceparent: self.traceparent.clone(),
        };
        let spent = u32::try_from(self.attempts).unwrap_or(0).min(max_attempts - 1);
        Some((job, spent))
    }
}

/// The columns of [`LedgerJob`], for `concat!`.
macro_rules! columns {
    () => {
        "job_id, queue, payload, state, attempts, max_attempts, last_error, result, traceparent, \
         created_at, updated_at, finished_at"
    };
}

/// One job by id; `None` when the ledger has none (enqueued in Redis only, or pruned).
pub async fn get(db: &Db, id: &JobId) -> Result<Option<JobRecord>, sqlx::Error> {
    // language=PostgreSQL
    const SQL: &str = concat!("SELECT ", columns!(), " FROM jobs WHERE job_id = $1");
    let row: Option<LedgerJob> = db
        .fetch_optional("jobs.get", sqlx::query_as(SQL).bind(id.as_str()))
        .await?;
    Ok(row.as_ref().and_then(LedgerJob::to_record))
}

/// Up to `limit` unfinished jobs with ids after `after`, in id order, leaving out requests the
/// relay has not moved to Redis yet (they are on their way).
pub async fn unfinished_after(db: &Db, after: &str, limit: i64) -> Result<Vec<LedgerJob>, sqlx::Error> {
    // language=PostgreSQL
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM jobs j WHERE j.finished_at IS NULL AND j.job_id > $1
          AND NOT EXISTS (SELECT 1 FROM job_requests r WHERE r.job_id = j.job_id)
          ORDER BY j.job_id LIMIT $2"
    );
    db.fetch_all("jobs.unfinished", sqlx::query_as(SQL).bind(after).bind(limit))
        .await
}

/// Gives a job a fresh set of attempts (it was revived from the dead-letter set).
pub async fn revived(db: &Db, id: &JobId) -> Result<(), sqlx::Error> {
    // language=PostgreSQL
    let sql = "UPDATE jobs SET state = 'queued', attempts = 0, finished_at = NULL, updated_at = now()
               WHERE job_id = $1";
    db.execute("jobs.revived", sqlx::query(sql).bind(id.as_str()))
        .await?;
    Ok(())
}

/// Deletes up to `limit` finished jobs past their keeping time (succeeded ones after
/// `keep_succeeded`, dead ones after `keep_dead`, as Redis forgets them). Returns how many went.
pub async fn prune(
    db: &Db,
    keep_succeeded: Duration,
    keep_dead: Duration,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    // language=PostgreSQL
    let sql = "DELETE FROM jobs WHERE job_id IN (
                   SELECT job_id FROM jobs WHERE finished_at IS NOT NULL
                   AND finished_at < now() - make_interval(secs => CASE WHEN state = 'dead' THEN $2 ELSE $1 END)
                   LIMIT $3)";
    let (succeeded, dead) = (keep_succeeded.as_secs_f64(), keep_dead.as_secs_f64());
    let query = sqlx::query(sql).bind(succeeded).bind(dead).bind(limit);
    let deleted = db.execute("jobs.prune", query).await?;
    Ok(deleted.rows_affected())
}
