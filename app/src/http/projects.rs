//! `/api/v1/projects`: CRUD, the filtered list and a project's tasks by priority.
use axum::{
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    error::{ApiError, Problem},
    extract::{Json, Path, Query},
    fields::FieldSet,
    pagination::{FieldsParam, ListParams, Page},
    validate,
};
use crate::cache::entities::{self, Dependents};
use crate::db::{
    self,
    projects::{NewProject, Project, ProjectFilter, ProjectKey, ProjectPatch, ProjectStatus},
    tasks::{PriorityKey, Task, TaskStatus},
    totals::Table,
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
    let created = db::projects::create(&state.db, &body.validate()?).await;
    state.totals.wrote(Table::Projects);
    let project = created?;
    let location = format!("/api/v1/projects/{}", project.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(project),
    ))
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
    let request = params.parse::<ProjectKey>(db::projects::FIELDS)?;
    let filter = ProjectFilter {
        owner_id: filter.owner_id,
        status: filter.status,
    };
    let slice = db::projects::list(&state.db, &state.totals, &filter, &request.window).await?;
    Ok(axum::Json(request.respond(slice, |p| (p.created_at, p.id))?))
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
    let fields = FieldSet::parse(fields.fields.as_deref(), db::projects::FIELDS)?;
    let project = entities::project(&state.cache, &state.db, id)
        .await?
        .ok_or(ApiError::NotFound("project"))?;
    Ok(axum::Json(fields.project(&project)?))
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
    let updated = db::projects::update(&state.db, id, &body.validate()?).await;
    state.totals.wrote(Table::Projects);
    entities::evict(&state.cache, entities::PROJECT, id).await;
    let project = updated?.ok_or(ApiError::NotFound("project"))?;
    Ok(axum::Json(project))
}

/// Delete a project and its tasks.
#[utoipa::path(delete, path = "/projects/{id}", tag = "projects", params(("id" = i64, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_project(State(state): State<AppState>, Path(id): Path<i64>) -> Result<StatusCode, ApiError> {
    let tasks = entities::dependent_tasks(&state.db, Dependents::InProject(id)).await?;
    let deleted = db::projects::delete(&state.db, id).await;
    // Its tasks go with it (ON DELETE CASCADE).
    state.totals.wrote(Table::Projects);
    state.totals.wrote(Table::Tasks);
    entities::evict(&state.cache, entities::PROJECT, id).await;
    entities::evict_tasks(&state.cache, &tasks).await;
    if deleted? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("project"))
    }
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
    let request = params.parse::<PriorityKey>(db::tasks::FIELDS)?;
    if !db::projects::exists(&state.db, id).await? {
        return Err(ApiError::NotFound("project"));
    }
    let slice =
        db::tasks::list_for_project(&state.db, &state.totals, id, filter.status, &request.window).await?;
    Ok(axum::Json(request.respond(slice, |t| (t.priority, t.id))?))
}
