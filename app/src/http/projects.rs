//! `/api/v1/projects`: CRUD, the filtered list and a project's tasks by priority.
use std::future::Future;

use axum::{extract::State, http::StatusCode, response::IntoResponse};
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

validate::patch_body! {
    /// Body of `PATCH /projects/{id}`; absent fields stay, `"description": null` clears it.
    UpdateProject {
        non_null { owner_id: i64, name: String, status: ProjectStatus }
        nullable { description: String }
    }
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

pub const NAME_MAX: usize = 200;
pub const DESCRIPTION_MAX: usize = 10_000;

impl CreateProject {
    fn validate(self) -> Result<NewProject, ApiError> {
        Ok(NewProject {
            owner_id: validate::reference("ownerId", self.owner_id)?,
            name: validate::text("name", self.name, 1, NAME_MAX)?,
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
            name: self
                .name
                .map(|v| validate::text("name", v, 1, NAME_MAX))
                .transpose()?,
            description: self
                .description
                .map(|v| validate::optional_text("description", v, DESCRIPTION_MAX))
                .transpose()?,
            status: self.status,
        })
    }
}

/// List projects, newest first.
#[utoipa::path(get, path = "/api/v1/projects", tag = "projects", params(ListParams, ProjectListFilter),
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

impl Writes for Project {
    type New = NewProject;

    fn insert(
        state: &AppState,
        new: &NewProject,
    ) -> impl Future<Output = Result<Project, sqlx::Error>> + Send {
        db::projects::create(&state.db, new)
    }
}

resource_routes! {
    Project at "/api/v1/projects" and "/api/v1/projects/{id}", tag "projects";
    /// Create a project.
    create_project(CreateProject) invalid "Invalid field or unknown owner" also();
    /// Get one project.
    get_project;
    /// Change some fields of a project.
    update_project(UpdateProject) also();
    /// Delete a project and its tasks.
    delete_project also();
}

/// A project's tasks, most urgent (highest priority) first; `?status=` narrows to one status.
#[utoipa::path(get, path = "/api/v1/projects/{id}/tasks", tag = "projects",
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
    let filter = task_rows::of_project(id, filter.status);
    let page = resource::page::<Task, _>(&state, task_rows::LIST_FOR_PROJECT, &request, &filter).await?;
    // A page with rows proves the project exists: only an empty one is checked, so the usual page
    // is one database operation (and one pool checkout), not two.
    if page.data.is_empty() && !db::projects::exists(&state.db, id).await? {
        return Err(ApiError::NotFound("project"));
    }
    Ok(page)
}
