//! `/api/v1/users`: CRUD, the filtered list and the tasks assigned to a user.
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
    resource::Resource,
    tasks::{self as task_rows, DueDateKey, Task},
    users::{NewUser, Role, User, UserFilter, UserPatch, UserStatus},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_user, list_users))
        .routes(routes!(get_user, update_user, delete_user))
        .routes(routes!(list_user_tasks))
}

/// Body of `POST /users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateUser {
    pub email: String,
    /// 3-50 characters: letters, digits, `_`, `.`, `-`.
    pub username: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    /// Default `member`.
    pub role: Option<Role>,
    /// Default `active`.
    pub status: Option<UserStatus>,
}

validate::patch_body! {
    /// Body of `PATCH /users/{id}`; absent fields stay as they are.
    UpdateUser {
        non_null { email: String, username: String, first_name: String, last_name: String, role: Role, status: UserStatus }
        nullable {  }
    }
}

/// Filters of `GET /users`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListFilter {
    /// Exact email (stored lower-case). With `status=active` this is the login lookup.
    pub email: Option<String>,
    /// Username, matched case-insensitively.
    pub username: Option<String>,
    pub status: Option<UserStatus>,
    pub role: Option<Role>,
}

/// Longest first or last name.
pub const NAME_MAX: usize = 100;

impl CreateUser {
    fn validate(self) -> Result<NewUser, ApiError> {
        Ok(NewUser {
            email: validate::email(&self.email)?,
            username: validate::username(&self.username)?,
            first_name: validate::text("firstName", self.first_name, 0, NAME_MAX)?,
            last_name: validate::text("lastName", self.last_name, 0, NAME_MAX)?,
            role: self.role.unwrap_or(Role::Member),
            status: self.status.unwrap_or(UserStatus::Active),
        })
    }
}

impl UpdateUser {
    fn validate(self) -> Result<UserPatch, ApiError> {
        Ok(UserPatch {
            email: self.email.as_deref().map(validate::email).transpose()?,
            username: self.username.as_deref().map(validate::username).transpose()?,
            first_name: self
                .first_name
                .map(|v| validate::text("firstName", v, 0, NAME_MAX))
                .transpose()?,
            last_name: self
                .last_name
                .map(|v| validate::text("lastName", v, 0, NAME_MAX))
                .transpose()?,
            role: self.role,
            status: self.status,
        })
    }
}

/// List users in id order, paged by `page`/`limit` or by `cursor`.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(ListParams, UserListFilter),
    responses(
        (status = 200, body = Page<User>),
        (status = 400, description = "Bad paging, filter or fields parameter", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_users(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
    Query(filter): Query<UserListFilter>,
) -> Result<impl IntoResponse, ApiError> {
    let request = params.parse::<i64>(User::FIELDS)?;
    let filter = UserFilter {
        email: filter.email.map(|e| e.trim().to_lowercase()),
        username: filter.username,
        status: filter.status,
        role: filter.role,
    };
    resource::page::<User, _>(&state, User::OPS.list, &request, &filter).await
}

/// Deleting a user who owns projects is a conflict, not a validation error.
impl Writes for User {
    type New = NewUser;

    fn insert(state: &AppState, new: &NewUser) -> impl Future<Output = Result<User, sqlx::Error>> + Send {
        db::users::create(&state.db, new)
    }

    fn delete_failed(err: sqlx::Error) -> ApiError {
        let owns_projects = err
            .as_database_error()
            .and_then(|e| e.constraint())
            .is_some_and(|c| c == "projects_owner_id_fkey");
        if owns_projects {
            ApiError::conflict(None, "the user still owns projects")
        } else {
            ApiError::from(err)
        }
    }
}

resource_routes! {
    User at "/api/v1/users" and "/api/v1/users/{id}", tag "users";
    /// Create a user.
    create_user(CreateUser) invalid "Invalid field" also(
        (status = 409, description = "Email or username taken", body = Problem, content_type = "application/problem+json"),
    );
    /// Get one user.
    get_user;
    /// Change some fields of a user.
    update_user(UpdateUser) also((status = 409, body = Problem, content_type = "application/problem+json"),);
    /// Delete a user. Tasks assigned to them become unassigned; a user who owns projects cannot be
    /// deleted (409) until the projects are moved or deleted.
    delete_user also(
        (status = 409, description = "The user still owns projects", body = Problem, content_type = "application/problem+json"),
    );
}

/// Filter of `GET /users/{id}/tasks`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct UserTasksFilter {
    /// Only tasks due on or before this day, `YYYY-MM-DD` (undated tasks are left out).
    pub due_before: Option<chrono::NaiveDate>,
}

/// Tasks assigned to a user, soonest due date first (undated last).
#[utoipa::path(get, path = "/api/v1/users/{id}/tasks", tag = "users", params(("id" = i64, Path), ListParams, UserTasksFilter),
    responses(
        (status = 200, body = Page<Task>),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_user_tasks(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(params): Query<ListParams>,
    Query(filter): Query<UserTasksFilter>,
) -> Result<impl IntoResponse, ApiError> {
    let request = params.parse::<DueDateKey>(Task::FIELDS)?;
    if db::resource::get::<User>(&state.db, id).await?.is_none() {
        return Err(ApiError::NotFound("user"));
    }
    let filter = task_rows::of_assignee(id, filter.due_before);
    resource::page::<Task, _>(&state, task_rows::LIST_FOR_ASSIGNEE, &request, &filter).await
}
