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

#[derive(Debug, Clone, PartialEq, Eq)]
struct Assignment {
    title: String,
    project_name: String,
    due_date: Option<chrono::NaiveDate>,
    email: String,
    username: String,
}

/// The one row [`EmailHandler::prepare`] reads: an earlier attempt's outbox row, and the
/// assignment when the task and the user exist.
#[derive(sqlx::FromRow)]
struct JobRead {
    recorded: Option<i64>,
    #[sqlx(flatten)]
    assignment: OptionalAssignment,
}

/// The assignment's columns, all null when the task or the user is gone.
#[derive(sqlx::FromRow)]
struct OptionalAssignment {
    title: Option<String>,
    project_name: Option<String>,
    due_date: Option<chrono::NaiveDate>,
    assignee_id: Option<i64>,
    email: Option<String>,
    username: Option<String>,
}

/// What a run of the job does.
#[derive(Debug, PartialEq, Eq)]
enum Prepared {
    /// An earlier attempt recorded the email as this outbox row.
    Recorded(i64),
    /// Send and record this email.
    Send(Email),
    /// Nothing to send, for this reason.
    Skip(&'static str),
}

/// Decides from the row what the job does (pure).
fn prepared(row: JobRead, assignee_id: i64) -> Prepared {
    if let Some(id) = row.recorded {
        return Prepared::Recorded(id);
    }
    let a = row.assignment;
    let (Some(title), Some(project_name), Some(email), Some(username)) =
        (a.title, a.project_name, a.email, a.username)
    else {
        return Prepared::Skip("the task or the user no longer exists");
    };
    if a.assignee_id != Some(assignee_id) {
        return Prepared::Skip("the task was reassigned before the email went out");
    }
    Prepared::Send(assignment_email(&Assignment {
        title,
        project_name,
        due_date: a.due_date,
        email,
        username,
    }))
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

    /// What one read tells about the job: the outbox row of an earlier attempt that recorded the
    /// email already (then nothing is sent again), else the email to send, or why none goes out.
    /// One statement, so an email job costs two round trips (this and [`Self::record`]) besides
    /// the worker's settle.
    async fn prepare(&self, job: &ClaimedJob, payload: &EmailJob) -> Result<Prepared, JobFailure> {
        let EmailJob::TaskAssigned { task_id, assignee_id } = payload;
        // language=PostgreSQL
        let sql = "SELECT (SELECT id FROM outbox WHERE job_id = $3) AS recorded,
                          a.title, a.project_name, a.due_date, a.assignee_id, a.email, a.username
                   FROM (SELECT 1) AS one LEFT JOIN (
                     SELECT t.title, p.name AS project_name, t.due_date, t.assignee_id, u.email, u.username
                     FROM tasks t JOIN projects p ON p.id = t.project_id JOIN users u ON u.id = $2
                     WHERE t.id = $1) AS a ON true";
        let row: JobRead = self
            .ctx
            .db
            .fetch_one(
                "jobs.email.prepare",
                sqlx::query_as(sql)
                    .bind(task_id)
                    .bind(assignee_id)
                    .bind(job.id.as_str().to_owned()),
            )
            .await?;
        Ok(prepared(row, *assignee_id))
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
        let email = match self.prepare(job, &payload).await? {
            Prepared::Recorded(id) => return Ok(outbox_result(id)),
            Prepared::Skip(reason) => return Ok(serde_json::json!({ "skipped": reason })),
            Prepared::Send(email) => email,
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
            email: "ada@example.com".into(),
            username: "ada".into(),
        });
        assert_eq!(email.recipient, "ada@example.com");
        assert_eq!(email.subject, "You were assigned: Fix login");
        assert!(email.body.contains("\"Fix login\" in project \"Web\""));
        assert!(email.body.contains("Due: 2026-12-01"));
    }

    fn read(recorded: Option<i64>, assignee_id: Option<i64>, exists: bool) -> JobRead {
        let text = |v: &str| exists.then(|| v.to_owned());
        JobRead {
            recorded,
            assignment: OptionalAssignment {
                title: text("Fix login"),
                project_name: text("Web"),
                due_date: None,
                assignee_id,
                email: text("ada@example.com"),
                username: text("ada"),
            },
        }
    }

    #[test]
    fn an_email_recorded_by_an_earlier_attempt_is_not_sent_again() {
        assert_eq!(prepared(read(Some(9), Some(3), true), 3), Prepared::Recorded(9));
        assert_eq!(prepared(read(Some(9), None, false), 3), Prepared::Recorded(9));
    }

    #[test]
    fn a_gone_task_or_a_reassignment_skips_the_email() {
        assert_eq!(
            prepared(read(None, None, false), 3),
            Prepared::Skip("the task or the user no longer exists")
        );
        assert_eq!(
            prepared(read(None, Some(4), true), 3),
            Prepared::Skip("the task was reassigned before the email went out")
        );
        assert_eq!(
            prepared(read(None, None, true), 3),
            Prepared::Skip("the task was reassigned before the email went out")
        );
        match prepared(read(None, Some(3), true), 3) {
            Prepared::Send(email) => assert_eq!(email.recipient, "ada@example.com"),
            other => panic!("{other:?}"),
        }
    }
}
