//! The `email` queue: notification emails, sent through SMTP (lettre) or, without SMTP settings,
//! written to the `outbox` table. Either way one row per job id records the email, so a job that
//! runs twice does not write twice (and, with SMTP, sends twice only if the process dies between
//! the SMTP answer and the row: at least once, as SMTP allows).
use lettre::{AsyncTransport, Message, message::Mailbox};
use serde::{Deserialize, Serialize};

use super::{
    handler::{self, JobContext, JobFailure, JobHandler},
    mailer::Mailer,
    store::ClaimedJob,
};

/// Payload of an `email` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum EmailJob {
    /// A task was assigned to a user: tell them.
    TaskAssigned { task_id: i64, assignee_id: i64 },
}

/// An email ready to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub recipient: String,
    pub subject: String,
    pub body: String,
}

#[derive(sqlx::FromRow)]
struct Assignment {
    title: String,
    project_name: String,
    due_date: Option<chrono::NaiveDate>,
    assignee_id: Option<i64>,
    email: String,
    username: String,
}

/// The notification for an assignment (pure, so its wording is tested without a database).
fn assignment_email(a: &Assignment) -> Email {
    let due = a.due_date.map_or_else(String::new, |d| format!("\nDue: {d}"));
    Email {
        recipient: a.email.clone(),
        subject: format!("You were assigned: {}", a.title),
        body: format!(
            "Hello {},\n\nYou are now the assignee of \"{}\" in project \"{}\".{due}\n",
            a.username, a.title, a.project_name
        ),
    }
}

pub struct EmailHandler {
    ctx: JobContext,
}

impl EmailHandler {
    pub fn new(ctx: JobContext) -> Self {
        Self { ctx }
    }

    async fn compose(&self, job: &EmailJob) -> Result<Result<Email, &'static str>, JobFailure> {
        let EmailJob::TaskAssigned { task_id, assignee_id } = job;
        // language=PostgreSQL
        let sql = "SELECT t.title, p.name AS project_name, t.due_date, t.assignee_id, u.email, u.username
                   FROM tasks t JOIN projects p ON p.id = t.project_id JOIN users u ON u.id = $2
                   WHERE t.id = $1";
        let row: Option<Assignment> = self
            .ctx
            .db
            .fetch_optional(
                "jobs.email.assignment",
                sqlx::query_as(sql).bind(task_id).bind(assignee_id),
            )
            .await?;
        Ok(match row {
            None => Err("the task or the user no longer exists"),
            Some(a) if a.assignee_id != Some(*assignee_id) => {
                Err("the task was reassigned before the email went out")
            }
            Some(a) => Ok(assignment_email(&a)),
        })
    }

    /// The outbox row of this job, if the email was recorded already (an earlier attempt).
    async fn recorded(&self, job: &ClaimedJob) -> Result<Option<i64>, JobFailure> {
        // language=PostgreSQL
        let sql = "SELECT id FROM outbox WHERE job_id = $1";
        let id = job.id.as_str().to_owned();
        Ok(self
            .ctx
            .db
            .fetch_optional_scalar("jobs.email.recorded", sqlx::query_scalar(sql).bind(id))
            .await?)
    }

    async fn record(&self, job: &ClaimedJob, email: &Email) -> Result<i64, JobFailure> {
        // language=PostgreSQL
        let sql = "WITH ins AS (
                     INSERT INTO outbox (job_id, recipient, subject, body, transport)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (job_id) DO NOTHING RETURNING id)
                   SELECT id FROM ins UNION ALL SELECT id FROM outbox WHERE job_id = $1 LIMIT 1";
        let (id, email, transport) = (
            job.id.as_str().to_owned(),
            email.clone(),
            self.ctx.mailer.transport_name(),
        );
        let query = sqlx::query_scalar(sql)
            .bind(id)
            .bind(email.recipient)
            .bind(email.subject)
            .bind(email.body)
            .bind(transport);
        Ok(self.ctx.db.fetch_scalar("jobs.email.record", query).await?)
    }
}

fn outbox_result(id: i64) -> serde_json::Value {
    handler::effect_at("outboxId", "outbox", id)
}

impl JobHandler for EmailHandler {
    async fn handle(&self, job: &ClaimedJob) -> Result<serde_json::Value, JobFailure> {
        let payload: EmailJob = handler::payload(job, "not an email job")?;
        if let Some(id) = self.recorded(job).await? {
            return Ok(outbox_result(id));
        }
        let email = match self.compose(&payload).await? {
            Ok(email) => email,
            Err(reason) => return Ok(serde_json::json!({ "skipped": reason })),
        };
        if let Mailer::Smtp { transport, from } = &self.ctx.mailer {
            let to: Mailbox = email
                .recipient
                .parse()
                .map_err(|_| JobFailure::permanent("the recipient address is not valid"))?;
            let message = Message::builder()
                .from(from.clone())
                .to(to)
                .subject(email.subject.clone())
                .body(email.body.clone())
                .map_err(|e| {
                    tracing::warn!(error = %e, "could not build the email");
                    JobFailure::permanent("could not build the email")
                })?;
            transport
                .send(message)
                .await
                .map_err(|e| JobFailure::internal("SMTP delivery failed", &e))?;
        }
        Ok(outbox_result(self.record(job, &email).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_has_a_stable_json_shape() {
        let job = EmailJob::TaskAssigned {
            task_id: 7,
            assignee_id: 3,
        };
        assert_eq!(
            serde_json::to_value(&job).unwrap(),
            serde_json::json!({"kind": "taskAssigned", "taskId": 7, "assigneeId": 3})
        );
    }

    #[test]
    fn assignment_email_names_task_project_and_due_date() {
        let email = assignment_email(&Assignment {
            title: "Fix login".into(),
            project_name: "Web".into(),
            due_date: chrono::NaiveDate::from_ymd_opt(2026, 12, 1),
            assignee_id: Some(3),
            email: "ada@example.com".into(),
            username: "ada".into(),
        });
        assert_eq!(email.recipient, "ada@example.com");
        assert_eq!(email.subject, "You were assigned: Fix login");
        assert!(email.body.contains("\"Fix login\" in project \"Web\""));
        assert!(email.body.contains("Due: 2026-12-01"));
    }
}
