//! The seam between the task routes and the `email` queue: an assignment requests a notification
//! email in the same transaction as the task change (see `jobs::relay`, docs/jobs.md).
use sqlx::PgExecutor;

use super::{
    email::EmailJob,
    queue::JobQueue,
    record::{JobId, Queue},
    relay,
};
use crate::db::{
    Db, resource,
    task_inserts::TaskInserts,
    tasks::{self, NewTask, Task, TaskPatch},
};

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
    let Some(jobs) = jobs else {
        tracing::debug!(task_id, "no job queue configured; no assignment email");
        return Ok(None);
    };
    let payload = serde_json::to_value(EmailJob::TaskAssigned { task_id, assignee_id })
        .unwrap_or(serde_json::Value::Null);
    relay::request(executor, jobs, Queue::Email, &payload)
        .await
        .map(Some)
}

/// What the slow-query log shows for [`create_task`]'s transaction.
const CREATE_AND_REQUEST: &str =
    "BEGIN; INSERT INTO tasks (...) RETURNING ...; INSERT INTO jobs, job_requests (...); COMMIT";
/// What the slow-query log shows for [`update_task`]'s transaction.
const ASSIGN_AND_REQUEST: &str = "BEGIN; SELECT assignee_id FROM tasks WHERE id = $1 FOR UPDATE; \
     UPDATE tasks SET ... RETURNING ...; INSERT INTO jobs, job_requests (...); COMMIT";

/// Creates a task for the task routes. When it has an assignee and a job queue is configured, the
/// assignment email is requested in the same transaction: both rows commit, or neither does.
/// Otherwise it goes through [`TaskInserts`], in one `INSERT` with the creates that arrive meanwhile.
pub async fn create_task(
    db: &Db,
    inserts: &TaskInserts,
    jobs: Option<&JobQueue>,
    new: &NewTask,
) -> Result<Task, sqlx::Error> {
    if jobs.is_none() || new.assignee_id.is_none() {
        return inserts.insert(new.clone()).await;
    }
    let mut tx = db.begin("tasks.create_assigned", CREATE_AND_REQUEST).await?;
    let task = tasks::insert(tx.conn(), new).await?;
    on_assignment(tx.conn(), jobs, task.id, None, task.assignee_id).await?;
    tx.commit().await?;
    Ok(task)
}

/// Applies a PATCH for the task routes; `None` when there is no such task. When the patch sets an
/// assignee and a job queue is configured, one transaction locks the row (`FOR UPDATE`), reads the
/// assignee before the change, writes the patch and requests the email if the assignee is new:
/// concurrent PATCHes of one task take turns, so assigning the same user twice at once emails
/// once, and a crash leaves either both the change and its request or neither. Otherwise it is
/// the single `UPDATE` of [`resource::update`].
pub async fn update_task(
    db: &Db,
    jobs: Option<&JobQueue>,
    id: i64,
    patch: &TaskPatch,
) -> Result<Option<Task>, sqlx::Error> {
    if jobs.is_none() || !matches!(patch.assignee_id, Some(Some(_))) {
        return resource::update::<Task>(db, id, patch).await;
    }
    let mut tx = db.begin("tasks.update_assignee", ASSIGN_AND_REQUEST).await?;
    let Some(before) = tasks::lock_assignee(tx.conn(), id).await? else {
        tx.rollback().await?;
        return Ok(None);
    };
    let Some(task) = tasks::patch_in(tx.conn(), id, patch).await? else {
        // Cannot happen while the row is locked; answered like a missing task all the same.
        tx.rollback().await?;
        return Ok(None);
    };
    on_assignment(tx.conn(), jobs, task.id, before, task.assignee_id).await?;
    tx.commit().await?;
    Ok(Some(task))
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
