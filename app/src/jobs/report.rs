//! The `report` queue: reports computed from the tasks tables and stored in `reports`, one row per
//! job id. The computation and the insert share one REPEATABLE READ transaction, so a report is a
//! consistent snapshot and a job that runs twice stores it once.
use serde::{Deserialize, Serialize};
use sqlx::types::Json;

use super::{
    handler::{self, JobContext, JobFailure, JobHandler},
    store::ClaimedJob,
};

/// What `POST /api/v1/reports` accepts, and the payload of a `report` job:
/// `{"type": "projectTaskStats", "parameters": {"projectId": 1}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(
    tag = "type",
    content = "parameters",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum ReportRequest {
    /// Counts of a project's tasks by status and priority, unassigned and overdue ones.
    ProjectTaskStats {
        // Spelled out: the OpenAPI schema does not follow `rename_all_fields`.
        #[serde(rename = "projectId")]
        project_id: i64,
    },
    /// A user's assigned tasks: by status, overdue, due within a week, across how many projects.
    UserWorkload {
        #[serde(rename = "userId")]
        user_id: i64,
    },
}

impl ReportRequest {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ProjectTaskStats { .. } => "projectTaskStats",
            Self::UserWorkload { .. } => "userWorkload",
        }
    }

    /// The row the report is about, for checking it exists before enqueueing:
    /// (existence query, its parameter, the request field naming it, a noun for messages).
    pub fn subject(&self) -> (&'static str, i64, &'static str, &'static str) {
        match self {
            Self::ProjectTaskStats { project_id } => (
                "SELECT EXISTS (SELECT 1 FROM projects WHERE id = $1)",
                *project_id,
                "parameters.projectId",
                "project",
            ),
            Self::UserWorkload { user_id } => (
                "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)",
                *user_id,
                "parameters.userId",
                "user",
            ),
        }
    }
}

/// The statistics of one project's tasks.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ProjectTaskStats {
    pub project_id: i64,
    pub project_name: String,
    pub total: i64,
    #[sqlx(flatten)]
    pub by_status: StatusCounts,
    #[sqlx(flatten)]
    pub by_priority: PriorityCounts,
    pub unassigned: i64,
    /// Not done and due before today.
    pub overdue: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct StatusCounts {
    pub todo: i64,
    pub in_progress: i64,
    pub review: i64,
    pub done: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct PriorityCounts {
    #[serde(rename = "0")]
    pub p0: i64,
    #[serde(rename = "1")]
    pub p1: i64,
    #[serde(rename = "2")]
    pub p2: i64,
    #[serde(rename = "3")]
    pub p3: i64,
    #[serde(rename = "4")]
    pub p4: i64,
}

// language=PostgreSQL
const PROJECT_TASK_STATS: &str = "
    SELECT p.id AS project_id, p.name AS project_name,
           count(t.id) AS total,
           count(t.id) FILTER (WHERE t.status = 'todo') AS todo,
           count(t.id) FILTER (WHERE t.status = 'in_progress') AS in_progress,
           count(t.id) FILTER (WHERE t.status = 'review') AS review,
           count(t.id) FILTER (WHERE t.status = 'done') AS done,
           count(t.id) FILTER (WHERE t.priority = 0) AS p0,
           count(t.id) FILTER (WHERE t.priority = 1) AS p1,
           count(t.id) FILTER (WHERE t.priority = 2) AS p2,
           count(t.id) FILTER (WHERE t.priority = 3) AS p3,
           count(t.id) FILTER (WHERE t.priority = 4) AS p4,
           count(t.id) FILTER (WHERE t.assignee_id IS NULL) AS unassigned,
           count(t.id) FILTER (WHERE t.due_date < current_date AND t.status <> 'done') AS overdue
    FROM projects p LEFT JOIN tasks t ON t.project_id = p.id
    WHERE p.id = $1
    GROUP BY p.id, p.name";

/// The workload of one user.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct UserWorkload {
    pub user_id: i64,
    pub username: String,
    /// Assigned tasks not done.
    pub open: i64,
    #[sqlx(flatten)]
    pub by_status: StatusCounts,
    pub overdue: i64,
    /// Not done and due today or within the next 6 days.
    pub due_this_week: i64,
    pub projects: i64,
}

// language=PostgreSQL
const USER_WORKLOAD: &str = "
    SELECT u.id AS user_id, u.username,
           count(t.id) FILTER (WHERE t.status <> 'done') AS open,
           count(t.id) FILTER (WHERE t.status = 'todo') AS todo,
           count(t.id) FILTER (WHERE t.status = 'in_progress') AS in_progress,
           count(t.id) FILTER (WHERE t.status = 'review') AS review,
           count(t.id) FILTER (WHERE t.status = 'done') AS done,
           count(t.id) FILTER (WHERE t.due_date < current_date AND t.status <> 'done') AS overdue,
           count(t.id) FILTER (WHERE t.due_date >= current_date AND t.due_date < current_date + 7
                                 AND t.status <> 'done') AS due_this_week,
           count(DISTINCT t.project_id) AS projects
    FROM users u LEFT JOIN tasks t ON t.assignee_id = u.id
    WHERE u.id = $1
    GROUP BY u.id, u.username";

/// Runs `sql` (one row or none) in `tx`; a missing row is a permanent failure naming `what`.
async fn compute<T>(
    tx: &mut sqlx::PgConnection,
    sql: &'static str,
    id: i64,
    what: &str,
) -> Result<serde_json::Value, JobFailure>
where
    T: Serialize + Send + Unpin + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
{
    let row: Option<T> = sqlx::query_as(sql).bind(id).fetch_optional(tx).await?;
    let row = row.ok_or_else(|| JobFailure::permanent(format!("{what} {id} does not exist")))?;
    serde_json::to_value(row).map_err(|e| {
        tracing::warn!(error = %e, "could not encode the report");
        JobFailure::permanent("could not encode the report")
    })
}

/// A stored report, as `GET /api/v1/reports/{id}` returns it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoredReport {
    pub id: i64,
    pub job_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[schema(value_type = Object)]
    pub parameters: Json<serde_json::Value>,
    /// The statistics; shape per `type` (see docs/jobs.md).
    #[schema(value_type = Object)]
    pub result: Json<serde_json::Value>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

pub struct ReportHandler {
    ctx: JobContext,
}

/// What the report transaction runs, for the slow-query log (placeholders, never values).
const REPORT_TRANSACTION: &str = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; SELECT id FROM reports WHERE job_id = $1; \
     <the report's statistics query>; INSERT INTO reports (job_id, kind, parameters, result) ... ON CONFLICT (job_id) DO NOTHING";

impl ReportHandler {
    pub fn new(ctx: JobContext) -> Self {
        Self { ctx }
    }
}

fn report_result(id: i64) -> serde_json::Value {
    handler::effect_at("reportId", "reports", id)
}

impl JobHandler for ReportHandler {
    async fn handle(&self, job: &ClaimedJob) -> Result<serde_json::Value, JobFailure> {
        let request: ReportRequest = handler::payload(job, "not a report request")?;
        // Through the query monitor like every other operation: the pool gate, the query metrics and,
        // with traces, a span inside the job's.
        let mut tx = self.ctx.db.begin("reports.compute", REPORT_TRANSACTION).await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .execute(tx.conn())
            .await?;
        let existing: Option<i64> = sqlx::query_scalar("SELECT id FROM reports WHERE job_id = $1")
            .bind(job.id.as_str())
            .fetch_optional(tx.conn())
            .await?;
        if let Some(id) = existing {
            tx.rollback().await?;
            return Ok(report_result(id));
        }
        let result = match &request {
            ReportRequest::ProjectTaskStats { project_id } => {
                compute::<ProjectTaskStats>(tx.conn(), PROJECT_TASK_STATS, *project_id, "project").await?
            }
            ReportRequest::UserWorkload { user_id } => {
                compute::<UserWorkload>(tx.conn(), USER_WORKLOAD, *user_id, "user").await?
            }
        };
        let parameters = serde_json::to_value(&request)
            .ok()
            .and_then(|v| v.get("parameters").cloned())
            .unwrap_or(serde_json::Value::Null);
        // language=PostgreSQL
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO reports (job_id, kind, parameters, result) VALUES ($1, $2, $3, $4)
             ON CONFLICT (job_id) DO NOTHING RETURNING id",
        )
        .bind(job.id.as_str())
        .bind(request.kind())
        .bind(Json(parameters))
        .bind(Json(result))
        .fetch_optional(tx.conn())
        .await?;
        tx.commit().await?;
        match id {
            Some(id) => Ok(report_result(id)),
            // A concurrent attempt of the same job stored it first: point at its row.
            None => {
                // language=PostgreSQL
                let sql = "SELECT id FROM reports WHERE job_id = $1";
                let id: i64 = self
                    .ctx
                    .db
                    .fetch_scalar("reports.by_job", sqlx::query_scalar(sql).bind(job.id.as_str()))
                    .await?;
                Ok(report_result(id))
            }
        }
    }
}

/// One stored report.
pub async fn fetch(db: &crate::db::Db, id: i64) -> Result<Option<StoredReport>, sqlx::Error> {
    // language=PostgreSQL
    let sql = "SELECT id, job_id, kind, parameters, result, created_at FROM reports WHERE id = $1";
    db.fetch_optional("reports.get", sqlx::query_as(sql).bind(id))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_json_shape() {
        let parsed: ReportRequest = serde_json::from_value(
            serde_json::json!({"type": "projectTaskStats", "parameters": {"projectId": 4}}),
        )
        .unwrap();
        assert_eq!(parsed, ReportRequest::ProjectTaskStats { project_id: 4 });
        assert!(serde_json::from_value::<ReportRequest>(serde_json::json!({"type": "salary"})).is_err());
    }
}
