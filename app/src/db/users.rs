//! Users: row type, filters, what a patch changes, and the queries only users have.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, Postgres, QueryBuilder};
use utoipa::ToSchema;

use super::{
    Db,
    resource::{DependentTasks, Operations, Resource, operations, push_change, push_equal},
    totals::{ListFilter, Table},
};

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum Role {
    Admin,
    Manager,
    Member,
}

/// Whether a user may sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum UserStatus {
    Active,
    Inactive,
    Suspended,
}

impl UserStatus {
    /// The stored value.
    pub fn as_sql(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::Suspended => "suspended",
        }
    }
}

/// A user as stored and as returned by the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: i64,
    pub email: String,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub role: Role,
    pub status: UserStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The fields `?fields=` may pick from a user.
pub const FIELDS: &[&str] = &[
    "id",
    "email",
    "username",
    "firstName",
    "lastName",
    "role",
    "status",
    "createdAt",
    "updatedAt",
];

/// A validated new user.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub role: Role,
    pub status: UserStatus,
}

/// A validated partial update; `None` leaves the column as it is.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub email: Option<String>,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub role: Option<Role>,
    pub status: Option<UserStatus>,
}

/// List filters. `email` with `status = active` is served by `idx_users_email_active`;
/// `username` matches case-insensitively through `idx_users_username_lower`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct UserFilter {
    pub email: Option<String>,
    pub username: Option<String>,
    pub status: Option<UserStatus>,
    pub role: Option<Role>,
}

impl ListFilter for UserFilter {
    fn free_text_bytes(&self) -> usize {
        self.email.as_ref().map_or(0, String::len) + self.username.as_ref().map_or(0, String::len)
    }
}

/// The user columns in `User` order (a macro so that `concat!` can build whole statements).
macro_rules! columns {
    () => {
        "id, email, username, first_name, last_name, role, status, created_at, updated_at"
    };
}

impl Resource for User {
    const TABLE: Table = Table::Users;
    const NOUN: &'static str = "user";
    const COLUMNS: &'static str = columns!();
    const FIELDS: &'static [&'static str] = FIELDS;
    const OPS: Operations = operations!("users");
    /// Their tasks lose the assignee (`ON DELETE SET NULL`).
    const DEPENDENT_TASKS: Option<DependentTasks> = Some(DependentTasks {
        op: "tasks.ids_by_assignee",
        // language=PostgreSQL
        sql: "SELECT id FROM tasks WHERE assignee_id = $1",
    });
    type Filter = UserFilter;
    type Patch = UserPatch;

    fn id(&self) -> i64 {
        self.id
    }

    fn push_filters(qb: &mut QueryBuilder<'_, Postgres>, filter: &UserFilter) {
        qb.push(" WHERE TRUE");
        push_equal(qb, "email", &filter.email);
        if let Some(username) = &filter.username {
            qb.push(" AND lower(username) = lower(")
                .push_bind(username.clone())
                .push(")");
        }
        if let Some(status) = filter.status {
            // A literal, not a parameter: the planner can then use the partial index
            // idx_users_email_active even in a generic plan of the prepared statement.
            qb.push(format_args!(" AND status = '{}'", status.as_sql()));
        }
        push_equal(qb, "role", &filter.role);
    }

    fn push_changes(qb: &mut QueryBuilder<'static, Postgres>, patch: &UserPatch) {
        push_change(qb, "email", &patch.email);
        push_change(qb, "username", &patch.username);
        push_change(qb, "first_name", &patch.first_name);
        push_change(qb, "last_name", &patch.last_name);
        push_change(qb, "role", &patch.role);
        push_change(qb, "status", &patch.status);
    }
}

pub async fn create(db: &Db, new: &NewUser) -> Result<User, sqlx::Error> {
    // language=PostgreSQL
    let sql = &format!(
        "INSERT INTO users (email, username, first_name, last_name, role, status) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {}",
        User::COLUMNS
    );
    let query = sqlx::query_as(sql)
        .bind(&new.email)
        .bind(&new.username)
        .bind(&new.first_name)
        .bind(&new.last_name)
        .bind(new.role)
        .bind(new.status);
    db.fetch_one("users.create", query).await
}

/// The login lookup: the active user with an email (`$1`), through `idx_users_email_active`.
// language=PostgreSQL
pub const ACTIVE_BY_EMAIL: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM users WHERE email = $1 AND status = 'active'"
);

/// The active user with this email (the login lookup), through `idx_users_email_active`.
pub async fn find_active_by_email(db: &Db, email: &str) -> Result<Option<User>, sqlx::Error> {
    db.fetch_optional(
        "users.find_active_by_email",
        sqlx::query_as(ACTIVE_BY_EMAIL).bind(email),
    )
    .await
}
