//! Users: row type, filters and queries.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, Postgres, QueryBuilder};
use utoipa::ToSchema;

use super::{
    Db,
    page::{Slice, Window},
    totals::{ListTotals, TotalOf},
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

const COLUMNS: &str = "id, email, username, first_name, last_name, role, status, created_at, updated_at";

pub async fn create(db: &Db, new: &NewUser) -> Result<User, sqlx::Error> {
    // language=PostgreSQL
    let sql = &format!(
        "INSERT INTO users (email, username, first_name, last_name, role, status) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    );
    db.timed("users.create", sql, |pool| async move {
        sqlx::query_as::<_, User>(sql)
            .bind(&new.email)
            .bind(&new.username)
            .bind(&new.first_name)
            .bind(&new.last_name)
            .bind(new.role)
            .bind(new.status)
            .fetch_one(&pool)
            .await
    })
    .await
}

pub async fn get(db: &Db, id: i64) -> Result<Option<User>, sqlx::Error> {
    // language=PostgreSQL
    let sql = &format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    db.timed("users.get", sql, |pool| async move {
        sqlx::query_as::<_, User>(sql)
            .bind(id)
            .fetch_optional(&pool)
            .await
    })
    .await
}

/// The login lookup: the active user with an email (`$1`), through `idx_users_email_active`.
// language=PostgreSQL
pub const ACTIVE_BY_EMAIL: &str = "SELECT id, email, username, first_name, last_name, role, status, \
     created_at, updated_at FROM users WHERE email = $1 AND status = 'active'";

/// The active user with this email (the login lookup), through `idx_users_email_active`.
pub async fn find_active_by_email(db: &Db, email: &str) -> Result<Option<User>, sqlx::Error> {
    let sql = ACTIVE_BY_EMAIL;
    db.timed("users.find_active_by_email", sql, |pool| async move {
        sqlx::query_as::<_, User>(sql)
            .bind(email)
            .fetch_optional(&pool)
            .await
    })
    .await
}

pub async fn update(db: &Db, id: i64, patch: &UserPatch) -> Result<Option<User>, sqlx::Error> {
    let mut qb = QueryBuilder::<Postgres>::new("UPDATE users SET updated_at = now()");
    if let Some(v) = &patch.email {
        qb.push(", email = ").push_bind(v.clone());
    }
    if let Some(v) = &patch.username {
        qb.push(", username = ").push_bind(v.clone());
    }
    if let Some(v) = &patch.first_name {
        qb.push(", first_name = ").push_bind(v.clone());
    }
    if let Some(v) = &patch.last_name {
        qb.push(", last_name = ").push_bind(v.clone());
    }
    if let Some(v) = patch.role {
        qb.push(", role = ").push_bind(v);
    }
    if let Some(v) = patch.status {
        qb.push(", status = ").push_bind(v);
    }
    qb.push(" WHERE id = ").push_bind(id);
    qb.push(format_args!(" RETURNING {COLUMNS}"));
    let sql = qb.sql().to_owned();
    db.timed("users.update", &sql, |pool| async move {
        qb.build_query_as::<User>().fetch_optional(&pool).await
    })
    .await
}

/// Deletes a user; `false` when there was none. Fails with a foreign-key violation on
/// `projects_owner_id_fkey` while the user still owns projects.
pub async fn delete(db: &Db, id: i64) -> Result<bool, sqlx::Error> {
    // language=PostgreSQL
    let sql = "DELETE FROM users WHERE id = $1";
    db.timed("users.delete", sql, |pool| async move {
        let done = sqlx::query(sql).bind(id).execute(&pool).await?;
        Ok(done.rows_affected() > 0)
    })
    .await
}

fn push_filters(qb: &mut QueryBuilder<'_, Postgres>, filter: &UserFilter) {
    qb.push(" WHERE TRUE");
    if let Some(email) = &filter.email {
        qb.push(" AND email = ").push_bind(email.clone());
    }
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
    if let Some(role) = filter.role {
        qb.push(" AND role = ").push_bind(role);
    }
}

/// Appends the list query (users in id order) to `qb`; tests prefix it with `EXPLAIN`.
pub fn push_list(qb: &mut QueryBuilder<'_, Postgres>, filter: &UserFilter, window: &Window<i64>) {
    qb.push(format_args!("SELECT {COLUMNS} FROM users"));
    push_filters(qb, filter);
    if let Some(after) = window.after() {
        qb.push(" AND id > ").push_bind(*after);
    }
    qb.push(" ORDER BY id");
    window.push_limit(qb);
}

/// Users in id order; offset pages take their total from `totals`.
pub async fn list(
    db: &Db,
    totals: &ListTotals,
    filter: &UserFilter,
    window: &Window<i64>,
) -> Result<Slice<User>, sqlx::Error> {
    let mut qb = QueryBuilder::<Postgres>::new("");
    push_list(&mut qb, filter, window);
    let sql = qb.sql().to_owned();
    let rows = db
        .timed("users.list", &sql, |pool| async move {
            qb.build_query_as::<User>().fetch_all(&pool).await
        })
        .await?;
    let total = totals
        .for_window(window, TotalOf::Users(filter.clone()), || count(db, filter))
        .await?;
    Ok(Slice::from_rows(rows, window, total))
}

/// Rows matching `filter`: the exact `total` of an offset page (cached by [`ListTotals`]).
pub async fn count(db: &Db, filter: &UserFilter) -> Result<i64, sqlx::Error> {
    let mut qb = QueryBuilder::<Postgres>::new("SELECT count(*) FROM users");
    push_filters(&mut qb, filter);
    let sql = qb.sql().to_owned();
    db.timed("users.count", &sql, |pool| async move {
        qb.build_query_scalar::<i64>().fetch_one(&pool).await
    })
    .await
}
