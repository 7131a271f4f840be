//! Jobs requested in a database transaction (transactional outbox): [`request`] writes a row in
//! `job_requests` with the caller's transaction; [`relay_batch`] moves committed rows to Redis.
//! Enqueueing is idempotent by job id, so a relay that dies between Redis and its commit only
//! repeats a no-op.
use sqlx::{PgExecutor, types::Json};

use super::{
    error::JobsError,
    policy::QueuePolicy,
    queue::JobQueue,
    record::{JobId, Queue},
};
use crate::db::Db;

/// Records a job to enqueue once the caller's transaction commits (nothing if it rolls back).
pub async fn request<'e>(
    executor: impl PgExecutor<'e>,
    queue: Queue,
    payload: &serde_json::Value,
) -> Result<JobId, sqlx::Error> {
    let id = JobId::new();
    // language=PostgreSQL
    sqlx::query("INSERT INTO job_requests (job_id, queue, payload) VALUES ($1, $2, $3)")
        .bind(id.as_str())
        .bind(queue.as_str())
        .bind(Json(payload))
        .execute(executor)
        .await?;
    Ok(id)
}

#[derive(sqlx::FromRow)]
struct Requested {
    job_id: String,
    queue: String,
    payload: Json<serde_json::Value>,
}

/// Moves up to `limit` committed requests to Redis, oldest first. Several relays may run at once
/// (SKIP LOCKED). Returns how many were moved. When Redis fails (each command is bounded by the
/// job store's timeout) the transaction is rolled back at once, so its row locks last no longer.
pub async fn relay_batch(db: &Db, jobs: &JobQueue, limit: i64) -> Result<usize, JobsError> {
    let mut tx = db.pool().begin().await?;
    // language=PostgreSQL
    let rows: Vec<Requested> = sqlx::query_as(
        "SELECT job_id, queue, payload FROM job_requests
         ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    for row in &rows {
        let id = JobId::from_stored(row.job_id.clone());
        // The CHECK constraint keeps unknown queues out; skip (and drop) one defensively.
        if let Some(queue) = Queue::parse(&row.queue) {
            let max_attempts = QueuePolicy::for_queue(&jobs.config, queue).max_attempts;
            if let Err(err) = jobs
                .store
                .enqueue(&id, queue, &row.payload.0, max_attempts, None)
                .await
            {
                let _ = tx.rollback().await;
                return Err(err);
            }
        }
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
