//! The seam between the task routes and the `email` queue: an assignment enqueues a notification.
use super::{JobId, JobQueue, JobsError, Queue, email::EmailJob};

/// The user to notify when a task's assignee goes from `before` to `after`: the new assignee, if
/// there is one and it changed (creating a task counts as `before = None`).
pub fn newly_assigned(before: Option<i64>, after: Option<i64>) -> Option<i64> {
    match after {
        Some(user) if before != Some(user) => Some(user),
        _ => None,
    }
}

/// Enqueues the notification email for `task_id` assigned to `assignee_id`.
pub async fn task_assigned(jobs: &JobQueue, task_id: i64, assignee_id: i64) -> Result<JobId, JobsError> {
    let payload = serde_json::to_value(EmailJob::TaskAssigned { task_id, assignee_id })
        .unwrap_or(serde_json::Value::Null);
    jobs.enqueue(Queue::Email, &payload).await
}

/// For handlers: enqueue when the assignee changed, and log (not fail the request) when Redis is
/// down or not configured. The task change is committed either way.
pub async fn on_assignment(
    jobs: Option<&JobQueue>,
    task_id: i64,
    before: Option<i64>,
    after: Option<i64>,
) -> Option<JobId> {
    let assignee = newly_assigned(before, after)?;
    let Some(jobs) = jobs else {
        tracing::debug!(task_id, "no job queue configured; assignment email not sent");
        return None;
    };
    match task_assigned(jobs, task_id, assignee).await {
        Ok(id) => Some(id),
        Err(err) => {
            tracing::error!(task_id, error = %err, "could not enqueue the assignment email");
            None
        }
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
