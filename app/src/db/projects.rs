//! Projects: row type, filters, what a patch changes, their newest-first order, and the queries
//! only projects have.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, Postgres, QueryBuilder};
use utoipa::ToSchema;

use super::{
    Db,
    resource::{DependentTasks, Operations, Resource, SortKey, operations, push_change, push_equal},
    totals::{ListFilter, Table},
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

impl ListFilter for ProjectFilter {}

/// Position in the newest-first order: `(created_at, id)`.
pub type ProjectKey = (DateTime<Utc>, i64);

impl Resource for Project {
    const TABLE: Table = Table::Projects;
    const NOUN: &'static str = "project";
    const COLUMNS: &'static str = "id, owner_id, name, description, status, created_at, updated_at";
    const FIELDS: &'static [&'static str] = FIELDS;
    const OPS: Operations = operations!("projects");
    /// Its tasks go with it (`ON DELETE CASCADE`).
    const DEPENDENT_TASKS: Option<DependentTasks> = Some(DependentTasks {
        op: "tasks.ids_by_project",
        // language=PostgreSQL
        sql: "SELECT id FROM tasks WHERE project_id = $1",
    });
    type Filter = ProjectFilter;
    type Patch = ProjectPatch;

    fn id(&self) -> i64 {
        self.id
    }

    fn push_filters(qb: &mut QueryBuilder<'_, Postgres>, filter: &ProjectFilter) {
        qb.push(" WHERE TRUE");
        push_equal(qb, "owner_id", &filter.owner_id);
        push_equal(qb, "status", &filter.status);
    }

    fn push_changes(qb: &mut QueryBuilder<'static, Postgres>, patch: &ProjectPatch) {
        push_change(qb, "owner_id", &patch.owner_id);
        push_change(qb, "name", &patch.name);
        push_change(qb, "description", &patch.description);
        push_change(qb, "status", &patch.status);
    }
}

/// Newest first (`idx_projects_created_at_desc`), ties broken by id.
impl SortKey<Project> for ProjectKey {
    const ORDER_BY: &'static str = "created_at DESC, id DESC";

    fn of(project: &Project) -> Self {
        (project.created_at, project.id)
    }

    fn push_after(&self, qb: &mut QueryBuilder<'_, Postgres>) {
        let (created_at, id) = *self;
        qb.push(" AND (created_at, id) < (")
            .push_bind(created_at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
}

pub async fn create(db: &Db, new: &NewProject) -> Result<Project, sqlx::Error> {
    // language=PostgreSQL
    let sql = &format!(
        "INSERT INTO projects (owner_id, name, description, status) \
         VALUES ($1, $2, $3, $4) RETURNING {}",
        Project::COLUMNS
    );
    let query = sqlx::query_as(sql)
        .bind(new.owner_id)
        .bind(&new.name)
        .bind(&new.description)
        .bind(new.status);
    db.fetch_one("projects.create", query).await
}

pub async fn exists(db: &Db, id: i64) -> Result<bool, sqlx::Error> {
    // language=PostgreSQL
    let sql = "SELECT EXISTS (SELECT 1 FROM projects WHERE id = $1)";
    db.fetch_scalar("projects.exists", sqlx::query_scalar(sql).bind(id))
        .await
}
