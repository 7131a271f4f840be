//! `/api/v1/tasks`: CRUD and the filtered list (by project, assignee, status, priority, text).
use std::future::Future;

use axum::{extract::State, http::StatusCode, response::IntoResponse};
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    error::{ApiError, Problem},
    extract::{Json, Path, Query},
    pagination::{FieldsParam, ListParams, Page},
    resource::{self, Writes, resource_routes},
    validate,
};
use crate::{
    db::{
        resource::Resource,
        tasks::{NewTask, Task, TaskFilter, TaskPatch, TaskStatus},
    },
    jobs::notify,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_task, list_tasks))
        .routes(routes!(get_task, update_task, delete_task))
}

/// Body of `POST /tasks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateTask {
    pub project_id: i64,
    /// 1-500 characters.
    pub title: String,
    pub description: Option<String>,
    /// Default `todo`.
    pub status: Option<TaskStatus>,
    /// 0..=4, higher is more urgent; default 2.
    pub priority: Option<i64>,
    pub assignee_id: Option<i64>,
    /// `YYYY-MM-DD`.
    pub due_date: Option<NaiveDate>,
}

validate::patch_body! {
    /// Body of `PATCH /tasks/{id}`; absent fields stay, `null` clears a nullable one.
    UpdateTask {
        non_null { project_id: i64, title: String, status: TaskStatus, priority: i64 }
        nullable { description: String, assignee_id: i64, due_date: NaiveDate }
    }
}

/// Filters of `GET /tasks`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct TaskListFilter {
    pub project_id: Option<i64>,
    pub assignee_id: Option<i64>,
    pub status: Option<TaskStatus>,
    #[param(minimum = 0, maximum = 4)]
    pub priority: Option<i64>,
    /// Full-text search in title and description (English).
    pub q: Option<String>,
    /// Only tasks due on or before this day, `YYYY-MM-DD` (undated tasks are left out).
    pub due_before: Option<NaiveDate>,
}

pub const TITLE_MAX: usize = 500;
pub const DESCRIPTION_MAX: usize = 10_000;
const DEFAULT_PRIORITY: i16 = 2;

impl CreateTask {
    fn validate(self) -> Result<NewTask, ApiError> {
        Ok(NewTask {
            project_id: validate::reference("projectId", self.project_id)?,
            title: validate::text("title", self.title, 1, TITLE_MAX)?,
            description: validate::optional_text("description", self.description, DESCRIPTION_MAX)?,
            status: self.status.unwrap_or(TaskStatus::Todo),
            priority: self
                .priority
                .map(validate::priority)
                .transpose()?
                .unwrap_or(DEFAULT_PRIORITY),
            assignee_id: self
                .assignee_id
                .map(|v| validate::reference("assigneeId", v))
                .transpose()?,
            due_date: self.due_date,
        })
    }
}

impl UpdateTask {
    fn validate(self) -> Result<TaskPatch, ApiError> {
        Ok(TaskPatch {
            project_id: self
                .project_id
                .map(|v| validate::reference("projectId", v))
                .transpose()?,
            title: self
                .title
                .map(|v| validate::text("title", v, 1, TITLE_MAX))
                .transpose()?,
            description: self
                .description
                .map(|v| validate::optional_text("description", v, DESCRIPTION_MAX))
                .transpose()?,
            status: self.status,
            priority: self.priority.map(validate::priority).transpose()?,
            assignee_id: self
                .assignee_id
                .map(|v| v.map(|id| validate::reference("assigneeId", id)).transpose())
                .transpose()?,
            due_date: self.due_date,
        })
    }
}

/// List tasks in id order, optionally filtered.
#[utoipa::path(get, path = "/api/v1/tasks", tag = "tasks", params(ListParams, TaskListFilter),
    responses(
        (status = 200, body = Page<Task>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_tasks(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
    Query(filter): Query<TaskListFilter>,
) -> Result<impl IntoResponse, ApiError> {
    let request = params.parse::<i64>(Task::FIELDS)?;
    let priority = match filter.priority {
        Some(p) => Some(validate::priority(p).map_err(|_| {
            ApiError::bad_request(Some("priority".to_owned()), "priority is between 0 and 4")
        })?),
        None => None,
    };
    let filter = TaskFilter {
        project_id: filter.project_id,
        assignee_id: filter.assignee_id,
        status: filter.status,
        priority,
        search: filter.q.filter(|q| !q.trim().is_empty()),
        due_before: filter.due_before,
    };
    resource::page::<Task, _>(&state, Task::OPS.list, &request, &filter).await
}

/// Tasks are written with the assignment email they request (see `jobs::notify`): both commit, or
/// neither does.
impl Writes for Task {
    type New = NewTask;

    fn insert(state: &AppState, new: &NewTask) -> impl Future<Output = Result<Task, sqlx::Error>> + Send {
        notify::create_task(&state.db, &state.task_inserts, state.jobs.as_ref(), new)
    }

    fn apply(
        state: &AppState,
        id: i64,
        patch: &TaskPatch,
    ) -> impl Future<Output = Result<Option<Task>, sqlx::Error>> + Send {
        notify::update_task(&state.db, state.jobs.as_ref(), id, patch)
    }
}

resource_routes! {
    Task at "/api/v1/tasks" and "/api/v1/tasks/{id}", tag "tasks";
    /// Create a task.
    create_task(CreateTask) invalid "Invalid field, unknown project or assignee" also();
    /// Get one task.
    get_task;
    /// Change some fields of a task.
    update_task(UpdateTask) also();
    /// Delete a task.
    delete_task also();
}
