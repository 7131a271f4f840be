//! Users, projects and tasks read by id through the cache, and the evictions every write owes.
//! Handlers call these instead of `db::{users,projects,tasks}::get` and call the `evict_*`
//! functions after a write, whatever its outcome (a write that failed after commit must not
//! leave the old value behind).
use super::{Cache, entity_key};
use crate::db::{
    Db,
    projects::{self, Project},
    tasks::{self, Task},
    users::{self, User},
};

pub const USER: &str = "user";
pub const PROJECT: &str = "project";
pub const TASK: &str = "task";

pub async fn user(cache: &Cache, db: &Db, id: i64) -> Result<Option<User>, sqlx::Error> {
    cache
        .get_or_load(&entity_key(USER, id), || users::get(db, id))
        .await
}

pub async fn project(cache: &Cache, db: &Db, id: i64) -> Result<Option<Project>, sqlx::Error> {
    cache
        .get_or_load(&entity_key(PROJECT, id), || projects::get(db, id))
        .await
}

pub async fn task(cache: &Cache, db: &Db, id: i64) -> Result<Option<Task>, sqlx::Error> {
    cache
        .get_or_load(&entity_key(TASK, id), || tasks::get(db, id))
        .await
}

/// Tasks a user or project write also changes (`ON DELETE SET NULL` / `CASCADE`).
#[derive(Debug, Clone, Copy)]
pub enum Dependents {
    AssignedTo(i64),
    InProject(i64),
}

/// Ids of the tasks a delete of the user/project will change; read before the delete so that
/// their cache entries can be evicted after it.
pub async fn dependent_tasks(db: &Db, of: Dependents) -> Result<Vec<i64>, sqlx::Error> {
    let (op, sql, id) = match of {
        // language=PostgreSQL
        Dependents::AssignedTo(id) => (
            "tasks.ids_by_assignee",
            "SELECT id FROM tasks WHERE assignee_id = $1",
            id,
        ),
        // language=PostgreSQL
        Dependents::InProject(id) => (
            "tasks.ids_by_project",
            "SELECT id FROM tasks WHERE project_id = $1",
            id,
        ),
    };
    db.timed(op, sql, |pool| async move {
        sqlx::query_scalar::<_, i64>(sql).bind(id).fetch_all(&pool).await
    })
    .await
}

pub async fn evict(cache: &Cache, kind: &'static str, id: i64) {
    cache.evict(&entity_key(kind, id)).await;
}

pub async fn evict_tasks(cache: &Cache, ids: &[i64]) {
    for &id in ids {
        evict(cache, TASK, id).await;
    }
}
