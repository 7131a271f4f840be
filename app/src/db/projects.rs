//! Projects: row type, filters and queries.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, Postgres, QueryBuilder};
use utoipa::ToSchema;

use super::{
    Db,
    page::{Slice, Window},
    totals::{ListTotals, TotalOf},
};

/// Where a project is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum ProjectStatus {
    Active,
    Archived,
    Completed,
}

/// A project as stored and as returned by the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub id: i64,
    pub owner_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub status: ProjectStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The fields `?fields=` may pick from a project.
pub const FIELDS: &[&str] = &[
    "id",
    "ownerId",
    "name",
    "description",
    "status",
    "createdAt",
    "updatedAt",
];

/// A validated new project.
#[derive(Debug, Clone)]
pub struct NewProject {
    pub owner_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub status: ProjectStatus,
}

/// A validated partial update; `None` leaves the column as it is, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct ProjectPatch {
    pub owner_id: Option<i64>,
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub status: Option<ProjectStatus>,
}

/// List filters; `owner_id` + `status` are served by `idx_projects_owner_status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ProjectFilter {
    pub owner_id: Option<i64>,
    pub status: Option<ProjectStatus>,
}

/// Position in the newest-first order: `(created_at, id)`.
pub type ProjectKey = (DateTime<Utc>, i64);

const COLUMNS: &str = "id, owner_id, name, description, status, created_at, updated_at";

pub async fn create(db: &Db, new: &NewProject) -> Result<Project, sqlx::Error> {
    // language=PostgreSQL
    let sql = &format!(
        "INSERT INTO projects (owner_id, name, description, status) \
         VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}"
    );
    db.timed("projects.create", sql, |pool| async move {
        sqlx::query_as::<_, Project>(sql)
            .bind(new.owner_id)
            .bind(&new.name)
            .bind(&new.description)
            .bind(new.status)
            .fetch_one(&pool)
            .await
    })
    .await
}

pub async fn get(db: &Db, id: i64) -> Result<Option<Project>, sqlx::Error> {
    // language=PostgreSQL
    let sql = &format!("SELECT {COLUMNS} FROM projects WHERE id = $1");
    db.timed("projects.get", sql, |pool| async move {
        sqlx::query_as::<_, Project>(sql)
            .bind(id)
            .fetch_optional(&pool)
            .await
    })
    .await
}

pub async fn exists(db: &Db, id: i64) -> Result<bool, sqlx::Error> {
    // language=PostgreSQL
    let sql = "SELECT EXISTS (SELECT 1 FROM projects WHERE id = $1)";
    db.timed("projects.exists", sql, |pool| async move {
        sqlx::query_scalar::<_, bool>(sql).bind(id).fetch_one(&pool).await
    })
    .await
}

pub async fn update(db: &Db, id: i64, patch: &ProjectPatch) -> Result<Option<Project>, sqlx::Error> {
    let mut qb = QueryBuilder::<Postgres>::new("UPDATE projects SET updated_at = now()");
    if let Some(v) = patch.owner_id {
        qb.push(", owner_id = ").push_bind(v);
    }
    if let Some(v) = &patch.name {
        qb.push(", name = ").push_bind(v.clone());
    }
    if let Some(v) = &patch.description {
        qb.push(", description = ").push_bind(v.clone());
    }
    if let Some(v) = patch.status {
        qb.push(", status = ").push_bind(v);
    }
    qb.push(" WHERE id = ").push_bind(id);
    qb.push(format_args!(" RETURNING {COLUMNS}"));
    let sql = qb.sql().to_owned();
    db.timed("projects.update", &sql, |pool| async move {
        qb.build_query_as::<Project>().fetch_optional(&pool).await
    })
    .await
}

/// Deletes a project and, by cascade, its tasks; `false` when there was none.
pub async fn delete(db: &Db, id: i64) -> Result<bool, sqlx::Error> {
    // language=PostgreSQL
    let sql = "DELETE FROM projects WHERE id = $1";
    db.timed("projects.delete", sql, |pool| async move {
        let done = sqlx::query(sql).bind(id).execute(&pool).await?;
        Ok(done.rows_affected() > 0)
    })
    .await
}

fn push_filters(qb: &mut QueryBuilder<'_, Postgres>, filter: &ProjectFilter) {
    qb.push(" WHERE TRUE");
    if let Some(owner) = filter.owner_id {
        qb.push(" AND owner_id = ").push_bind(owner);
    }
    if let Some(status) = filter.status {
        qb.push(" AND status = ").push_bind(status);
    }
}

/// Appends the list query (newest first, ties by id) to `qb`; tests prefix it with `EXPLAIN`.
pub fn push_list(qb: &mut QueryBuilder<'_, Postgres>, filter: &ProjectFilter, window: &Window<ProjectKey>) {
    qb.push(format_args!("SELECT {COLUMNS} FROM projects"));
    push_filters(qb, filter);
    if let Some((created_at, id)) = window.after() {
        qb.push(" AND (created_at, id) < (")
            .push_bind(*created_at)
            .push(", ")
            .push_bind(*id)
            .push(")");
    }
    qb.push(" ORDER BY created_at DESC, id DESC");
    window.push_limit(qb);
}

/// Projects newest first (`idx_projects_created_at_desc`), ties broken by id; offset pages take
/// their total from `totals`.
pub async fn list(
    db: &Db,
    totals: &ListTotals,
    filter: &ProjectFilter,
    window: &Window<ProjectKey>,
) -> Result<Slice<Project>, sqlx::Error> {
    let mut qb = QueryBuilder::<Postgres>::new("");
    push_list(&mut qb, filter, window);
    let sql = qb.sql().to_owned();
    let rows = db
        .timed("projects.list", &sql, |pool| async move {
            qb.build_query_as::<Project>().fetch_all(&pool).await
        })
        .await?;
    let total = totals
        .for_window(window, TotalOf::Projects(filter.clone()), || count(db, filter))
        .await?;
    Ok(Slice::from_rows(rows, window, total))
}

/// Rows matching `filter`: the exact `total` of an offset page (cached by [`ListTotals`]).
pub async fn count(db: &Db, filter: &ProjectFilter) -> Result<i64, sqlx::Error> {
    let mut qb = QueryBuilder::<Postgres>::new("SELECT count(*) FROM projects");
    push_filters(&mut qb, filter);
    let sql = qb.sql().to_owned();
    db.timed("projects.count", &sql, |pool| async move {
        qb.build_query_scalar::<i64>().fetch_one(&pool).await
    })
    .await
}
