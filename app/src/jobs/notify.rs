//! The seam between the task routes and the `email` queue: an assignment requests a notification
//! email in the same transaction as the task change (see `jobs::relay`).
use sqlx::PgExecutor;

use super::{JobId, JobQueue, Queue, email::EmailJob, relay};

/// The user to notify when a task's assignee goes from `before` to `after`: the new assignee, if
/// there is one and it changed (creating a task counts as `before = None`).
pub fn newly_assigned(before: Option<i64>, after: Option<i64>) -> Option<i64> {
    match after {
        Some(user) if before != Some(user) => Some(user),
        _ => None,
    }
}

/// Requests the notification email for a change of assignee from `before` to `after`, in the
/// caller's transaction: call it with the transaction that writes the task, so the email is
/// committed (or rolled back) with the assignment. Returns the job id when one was requested.
/// Without a job queue configured (no Redis) nothing is requested.
pub async fn on_assignment<'e>(
    executor: impl PgExecutor<'e>,
    jobs: Option<&JobQueue>,
    task_id: i64,
    before: Option<i64>,
    after: Option<i64>,
) -> Result<Option<JobId>, sqlx::Error> {
    let Some(assignee_id) = newly_assigned(before, after) else {
        return Ok(None);
    };
    if jobs.is_none() {
        tracing::debug!(task_id, "no job queue configured; no assignment email");
        return Ok(None);
    }
    let payload = serde_json::to_value(EmailJob::TaskAssigned { task_id, assignee_id })
        .unwrap_or(serde_json::Value::Null);
    relay::request(executor, Queue::Email, &payload).await.map(Some)
}

/// For the task routes, after the task was written: requests the email through the pool and logs
/// (does not fail the request) when that fails, since the task change is committed already. The
/// request is a separate statement, so a crash between the two loses the email; see docs/jobs.md.
pub async fn after_task_write(
    db: &crate::db::Db,
    jobs: Option<&JobQueue>,
    task_id: i64,
    before: Option<i64>,
    after: Option<i64>,
) {
    if newly_assigned(before, after).is_none() || jobs.is_none() {
        return;
    }
    let pool = db.pool();
    if let Err(err) = on_assignment(&pool, jobs, task_id, before, after).await {
        tracing::error!(task_id, error = %err, "could not request the assignment email");
    }
}

#[cfg(test)]
mod tests {
    use super::newly_assigned;

    #[test]
    fn only_a_new_assignee_is_notified() {
        assert_eq!(newly_assigned(None, Some(3)), Some(3));
        assert_eq!(newly_assigned(Some(2), Some(3)), Some(3));
        assert_eq!(newly_assigned(Some(3), Some(3)), None);
        assert_eq!(newly_assigned(Some(3), None), None);
        assert_eq!(newly_assigned(None, None), None);
    }
}
