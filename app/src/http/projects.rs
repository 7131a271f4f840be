//! `/api/v1/projects`: CRUD, the filtered list and a project's tasks by priority.
use axum::{extract::State, http::StatusCode, response::IntoResponse};
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
use crate::db::{
    self,
    projects::{NewProject, Project, ProjectFilter, ProjectKey, ProjectPatch, ProjectStatus},
    resource::Resource,
    tasks::{self as task_rows, PriorityKey, Task, TaskStatus},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_project, list_projects))
        .routes(routes!(get_project, update_project, delete_project))
        .routes(routes!(list_project_tasks))
        .routes(routes!(super::export::export_project_tasks))
}

/// Body of `POST /projects`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateProject {
    pub owner_id: i64,
    /// 1-200 characters.
    pub name: String,
    pub description: Option<String>,
    /// Default `active`.
    pub status: Option<ProjectStatus>,
}

/// Body of `PATCH /projects/{id}`; absent fields stay, `"description": null` clears it.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateProject {
    #[serde(default, deserialize_with = "validate::non_null")]
    pub owner_id: Option<i64>,
    #[serde(default, deserialize_with = "validate::non_null")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "validate::nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::non_null")]
    pub status: Option<ProjectStatus>,
}

/// Filters of `GET /projects` (newest first).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ProjectListFilter {
    pub owner_id: Option<i64>,
    pub status: Option<ProjectStatus>,
}

/// Filter of `GET /projects/{id}/tasks`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProjectTasksFilter {
    pub status: Option<TaskStatus>,
}

const DESCRIPTION_MAX: usize = 10_000;

impl CreateProject {
    fn validate(self) -> Result<NewProject, ApiError> {
        Ok(NewProject {
            owner_id: validate::reference("ownerId", self.owner_id)?,
            name: validate::text("name", self.name, 1, 200)?,
            description: validate::optional_text("description", self.description, DESCRIPTION_MAX)?,
            status: self.status.unwrap_or(ProjectStatus::Active),
        })
    }
}

impl UpdateProject {
    fn validate(self) -> Result<ProjectPatch, ApiError> {
        Ok(ProjectPatch {
            owner_id: self
                .owner_id
                .map(|v| validate::reference("ownerId", v))
                .transpose()?,
            name: self.name.map(|v| validate::text("name", v, 1, 200)).transpose()?,
            description: self
                .description
                .map(|v| validate::optional_text("description", v, DESCRIPTION_MAX))
                .transpose()?,
            status: self.status,
        })
    }
}

/// Create a project.
#[utoipa::path(post, path = "/projects", tag = "projects", request_body = CreateProject,
    responses(
        (status = 201, description = "Created; `Location` names the project", body = Project),
        (status = 422, description = "Invalid field or unknown owner", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_project(
    State(state): State<AppState>,
    Json(body): Json<CreateProject>,
) -> Result<impl IntoResponse, ApiError> {
    let inserted = db::projects::create(&state.db, &body.validate()?).await;
    resource::created(&state, inserted).await
}

/// List projects, newest first.
#[utoipa::path(get, path = "/projects", tag = "projects", params(ListParams, ProjectListFilter),
    responses(
        (status = 200, body = Page<Project>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_projects(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
    Query(filter): Query<ProjectListFilter>,
) -> Result<impl IntoResponse, ApiError> {
    let request = params.parse::<ProjectKey>(Project::FIELDS)?;
    let filter = ProjectFilter {
        owner_id: filter.owner_id,
        status: filter.status,
    };
    resource::page::<Project, _>(&state, Project::OPS.list, &request, &filter).await
}

/// Get one project.
#[utoipa::path(get, path = "/projects/{id}", tag = "projects", params(("id" = i64, Path), FieldsParam),
    responses(
        (status = 200, body = Project),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_project(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(fields): Query<FieldsParam>,
) -> Result<impl IntoResponse, ApiError> {
    resource::get_one::<Project>(&state, id, &fields).await
}

/// Change some fields of a project.
#[utoipa::path(patch, path = "/projects/{id}", tag = "projects", params(("id" = i64, Path)),
    request_body = UpdateProject,
    responses(
        (status = 200, body = Project),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_project(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(body): Json<UpdateProject>,
) -> Result<impl IntoResponse, ApiError> {
    resource::update_one::<Project>(&state, id, &body.validate()?).await
}

/// Delete a project and its tasks.
#[utoipa::path(delete, path = "/projects/{id}", tag = "projects", params(("id" = i64, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_project(State(state): State<AppState>, Path(id): Path<i64>) -> Result<StatusCode, ApiError> {
    resource::delete_one::<Project>(&state, id, ApiError::from).await
}

/// A project's tasks, most urgent (highest priority) first; `?status=` narrows to one status.
#[utoipa::path(get, path = "/projects/{id}/tasks", tag = "projects",
    params(("id" = i64, Path), ListParams, ProjectTasksFilter),
    responses(
        (status = 200, body = Page<Task>),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_project_tasks(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(params): Query<ListParams>,
    Query(filter): Query<ProjectTasksFilter>,
) -> Result<impl IntoResponse, ApiError> {
    let request = params.parse::<PriorityKey>(Task::FIELDS)?;
    if !db::projects::exists(&state.db, id).await? {
        return Err(ApiError::NotFound("project"));
    }
    let filter = task_rows::of_project(id, filter.status);
    resource::page::<Task, _>(&state, task_rows::LIST_FOR_PROJECT, &request, &filter).await
}
