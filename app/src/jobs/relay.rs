//! Jobs requested in a database transaction (transactional outbox): [`request`] records the job in
//! the ledger (`jobs`) and in `job_requests` with the caller's transaction; [`relay_batch`] moves
//! committed requests to Redis. Enqueueing is idempotent by job id, so a relay that dies between
//! Redis and its commit only repeats a no-op.
use sqlx::{PgExecutor, types::Json};

use super::{
    error::JobsError,
    policy::QueuePolicy,
    queue::JobQueue,
    record::{JobId, NewJob, Queue},
};
use crate::db::Db;

/// Records a job to enqueue once the caller's transaction commits (nothing if it rolls back): its
/// ledger row and its relay request, in one statement.
pub async fn request<'e>(
    executor: impl PgExecutor<'e>,
    jobs: &JobQueue,
    queue: Queue,
    payload: &serde_json::Value,
) -> Result<JobId, sqlx::Error> {
    let job = jobs.new_job(queue, payload);
    // language=PostgreSQL
    sqlx::query(
        "WITH ledger AS (
             INSERT INTO jobs (job_id, queue, payload, max_attempts, traceparent)
             VALUES ($1, $2, $3, $4, $5))
         INSERT INTO job_requests (job_id, queue, payload) VALUES ($1, $2, $3)",
    )
    .bind(job.id.as_str())
    .bind(queue.as_str())
    .bind(Json(payload))
    .bind(i32::try_from(job.max_attempts).unwrap_or(i32::MAX))
    .bind(job.traceparent.as_deref())
    .execute(executor)
    .await?;
    Ok(job.id)
}

#[derive(sqlx::FromRow)]
struct Requested {
    job_id: String,
    queue: String,
    payload: Json<serde_json::Value>,
    /// From the ledger row; `None` for a request written by a version without the ledger.
    max_attempts: Option<i32>,
    traceparent: Option<String>,
}

/// Moves up to `limit` committed requests to Redis, oldest first. Several relays may run at once
/// (SKIP LOCKED). Returns how many were moved. The batch goes to Redis in one pipeline (one round
/// trip inside the transaction); when Redis fails (bounded by the job store's timeout) the
/// transaction is rolled back at once, so its row locks last no longer.
pub async fn relay_batch(db: &Db, jobs: &JobQueue, limit: i64) -> Result<usize, JobsError> {
    let mut tx = db.pool().begin().await?;
    // language=PostgreSQL
    let rows: Vec<Requested> = sqlx::query_as(
        "SELECT r.job_id, r.queue, r.payload, j.max_attempts, j.traceparent
         FROM job_requests r LEFT JOIN jobs j ON j.job_id = r.job_id
         ORDER BY r.created_at LIMIT $1 FOR UPDATE OF r SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    // The CHECK constraint keeps unknown queues out; skip (and drop) one defensively.
    let batch: Vec<NewJob> = rows
        .iter()
        .filter_map(|row| {
            let queue = Queue::parse(&row.queue)?;
            Some(NewJob {
                id: JobId::from_stored(row.job_id.clone()),
                queue,
                payload: row.payload.0.clone(),
                max_attempts: row
                    .max_attempts
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or_else(|| QueuePolicy::for_queue(&jobs.config, queue).max_attempts),
                traceparent: row.traceparent.clone(),
            })
        })
        .collect();
    // One Redis round trip for the whole batch, so the row locks are held no longer than that.
    if let Err(err) = jobs.store.enqueue_many(&batch).await {
        let _ = tx.rollback().await;
        return Err(err);
    }
    let ids: Vec<String> = rows.into_iter().map(|r| r.job_id).collect();
    // language=PostgreSQL
    sqlx::query("DELETE FROM job_requests WHERE job_id = ANY($1)")
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(ids.len())
}
