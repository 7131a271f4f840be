//! `/api/v1/tasks`: CRUD and the filtered list (by project, assignee, status, priority, text).
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
    resource, validate,
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

/// Body of `PATCH /tasks/{id}`; absent fields stay, `null` clears a nullable one.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateTask {
    #[serde(default, deserialize_with = "validate::non_null")]
    pub project_id: Option<i64>,
    #[serde(default, deserialize_with = "validate::non_null")]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "validate::nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::non_null")]
    pub status: Option<TaskStatus>,
    #[serde(default, deserialize_with = "validate::non_null")]
    pub priority: Option<i64>,
    #[serde(default, deserialize_with = "validate::nullable")]
    #[schema(value_type = Option<i64>)]
    pub assignee_id: Option<Option<i64>>,
    #[serde(default, deserialize_with = "validate::nullable")]
    #[schema(value_type = Option<NaiveDate>)]
    pub due_date: Option<Option<NaiveDate>>,
}

/// Filters of `GET /tasks`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct TaskListFilter {
    pub project_id: Option<i64>,
    pub assignee_id: Option<i64>,
    pub status: Option<TaskStatus>,
    pub priority: Option<i64>,
    /// Full-text search in title and description (English).
    pub q: Option<String>,
}

const TITLE_MAX: usize = 500;
const DESCRIPTION_MAX: usize = 10_000;
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

/// Create a task.
#[utoipa::path(post, path = "/tasks", tag = "tasks", request_body = CreateTask,
    responses(
        (status = 201, description = "Created; `Location` names the task", body = Task),
        (status = 422, description = "Invalid field, unknown project or assignee", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_task(
    State(state): State<AppState>,
    Json(body): Json<CreateTask>,
) -> Result<impl IntoResponse, ApiError> {
    // With an assignee, the email request commits with the task (see jobs::notify).
    let inserted = notify::create_task(&state.db, state.jobs.as_ref(), &body.validate()?).await;
    resource::created(&state, inserted).await
}

/// List tasks in id order, optionally filtered.
#[utoipa::path(get, path = "/tasks", tag = "tasks", params(ListParams, TaskListFilter),
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
    };
    resource::page::<Task, _>(&state, Task::OPS.list, &request, &filter).await
}

/// Get one task.
#[utoipa::path(get, path = "/tasks/{id}", tag = "tasks", params(("id" = i64, Path), FieldsParam),
    responses(
        (status = 200, body = Task),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_task(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(fields): Query<FieldsParam>,
) -> Result<impl IntoResponse, ApiError> {
    resource::get_one::<Task>(&state, id, &fields).await
}

/// Change some fields of a task.
#[utoipa::path(patch, path = "/tasks/{id}", tag = "tasks", params(("id" = i64, Path)),
    request_body = UpdateTask,
    responses(
        (status = 200, body = Task),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_task(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(body): Json<UpdateTask>,
) -> Result<impl IntoResponse, ApiError> {
    let patch = body.validate()?;
    // A new assignee's email request commits with the change (see jobs::notify); the cache entry
    // is evicted once the write has ended, committed or not.
    let changed = notify::update_task(&state.db, state.jobs.as_ref(), id, &patch).await;
    resource::updated(&state, id, changed).await
}

/// Delete a task.
#[utoipa::path(delete, path = "/tasks/{id}", tag = "tasks", params(("id" = i64, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_task(State(state): State<AppState>, Path(id): Path<i64>) -> Result<StatusCode, ApiError> {
    resource::delete_one::<Task>(&state, id, ApiError::from).await
}
