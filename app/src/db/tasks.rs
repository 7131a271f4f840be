//! Tasks: row type, filters, the three list orders and the export cursor.
use chrono::{DateTime, NaiveDate, Utc};
use futures::{Sink, SinkExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgConnection, PgExecutor, Postgres, QueryBuilder, pool::PoolConnection};
use utoipa::ToSchema;

use super::{
    Db,
    page::{Slice, Window},
    totals::{ListTotals, TotalOf},
};

/// Where a task is in its workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum TaskStatus {
    Todo,
    InProgress,
    Review,
    Done,
}

/// A task as stored and as returned by the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub id: i64,
    pub project_id: i64,
    pub title: String,
    pub description: Option<String>,
    pub status: TaskStatus,
    /// 0..=4, higher is more urgent.
    pub priority: i16,
    pub assignee_id: Option<i64>,
    /// `YYYY-MM-DD`.
    pub due_date: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The fields `?fields=` may pick from a task.
pub const FIELDS: &[&str] = &[
    "id",
    "projectId",
    "title",
    "description",
    "status",
    "priority",
    "assigneeId",
    "dueDate",
    "createdAt",
    "updatedAt",
];

/// A validated new task.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub project_id: i64,
    pub title: String,
    pub description: Option<String>,
    pub status: TaskStatus,
    pub priority: i16,
    pub assignee_id: Option<i64>,
    pub due_date: Option<NaiveDate>,
}

/// A validated partial update; `None` leaves the column, `Some(None)` clears a nullable one.
#[derive(Debug, Clone, Default)]
pub struct TaskPatch {
    pub project_id: Option<i64>,
    pub title: Option<String>,
    pub description: Option<Option<String>>,
    pub status: Option<TaskStatus>,
    pub priority: Option<i16>,
    pub assignee_id: Option<Option<i64>>,
    pub due_date: Option<Option<NaiveDate>>,
}

/// List filters. `project_id` + `status` are served by `idx_tasks_project_status_priority`,
/// `assignee_id` by `idx_tasks_assignee_due_date`, `search` by `idx_tasks_search`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TaskFilter {
    pub project_id: Option<i64>,
    pub assignee_id: Option<i64>,
    pub status: Option<TaskStatus>,
    pub priority: Option<i16>,
    /// Full-text search over title and description (English stemming).
    pub search: Option<String>,
}

/// Position in the per-project order (priority first): `(priority, id)`.
pub type PriorityKey = (i16, i64);
/// Position in the per-assignee order (due date first, undated last): `(due_date, id)`.
pub type DueDateKey = (Option<NaiveDate>, i64);

/// The task columns in `Task` order (a macro so that `concat!` can build whole statements).
macro_rules! columns {
    () => {
        "id, project_id, title, description, status, priority, assignee_id, due_date, created_at, updated_at"
    };
}
const COLUMNS: &str = columns!();

/// The full-text expression; must stay identical to the definition of `idx_tasks_search`.
pub const SEARCH_VECTOR: &str = "to_tsvector('english', title || ' ' || coalesce(description, ''))";

// language=PostgreSQL
const INSERT_SQL: &str = concat!(
    "INSERT INTO tasks (project_id, title, description, status, priority, assignee_id, due_date) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ",
    columns!()
);

pub async fn create(db: &Db, new: &NewTask) -> Result<Task, sqlx::Error> {
    db.timed("tasks.create", INSERT_SQL, |pool| async move {
        insert(&pool, new).await
    })
    .await
}

/// Inserts a task on `executor`; [`create`] on the pool, or in the caller's transaction.
pub async fn insert<'e>(executor: impl PgExecutor<'e>, new: &NewTask) -> Result<Task, sqlx::Error> {
    sqlx::query_as::<_, Task>(INSERT_SQL)
        .bind(new.project_id)
        .bind(&new.title)
        .bind(&new.description)
        .bind(new.status)
        .bind(new.priority)
        .bind(new.assignee_id)
        .bind(new.due_date)
        .fetch_one(executor)
        .await
}

pub async fn get(db: &Db, id: i64) -> Result<Option<Task>, sqlx::Error> {
    // language=PostgreSQL
    let sql = &format!("SELECT {COLUMNS} FROM tasks WHERE id = $1");
    db.timed("tasks.get", sql, |pool| async move {
        sqlx::query_as::<_, Task>(sql)
            .bind(id)
            .fetch_optional(&pool)
            .await
    })
    .await
}

pub async fn update(db: &Db, id: i64, patch: &TaskPatch) -> Result<Option<Task>, sqlx::Error> {
    let mut qb = update_query(id, patch);
    let sql = qb.sql().to_owned();
    db.timed("tasks.update", &sql, |pool| async move {
        qb.build_query_as::<Task>().fetch_optional(&pool).await
    })
    .await
}

/// Applies `patch` in the caller's transaction; `None` when there is no such task.
pub async fn patch_in(
    conn: &mut PgConnection,
    id: i64,
    patch: &TaskPatch,
) -> Result<Option<Task>, sqlx::Error> {
    update_query(id, patch)
        .build_query_as::<Task>()
        .fetch_optional(conn)
        .await
}

/// Locks the task's row until the caller's transaction ends and returns its assignee; `None`
/// when there is no such task. A concurrent change of the same task waits for that transaction
/// and then sees what it wrote.
pub async fn lock_assignee(conn: &mut PgConnection, id: i64) -> Result<Option<Option<i64>>, sqlx::Error> {
    sqlx::query_scalar::<_, Option<i64>>(LOCK_ASSIGNEE_SQL)
        .bind(id)
        .fetch_optional(conn)
        .await
}

// language=PostgreSQL
pub const LOCK_ASSIGNEE_SQL: &str = "SELECT assignee_id FROM tasks WHERE id = $1 FOR UPDATE";

fn update_query(id: i64, patch: &TaskPatch) -> QueryBuilder<'static, Postgres> {
    let mut qb = QueryBuilder::<Postgres>::new("UPDATE tasks SET updated_at = now()");
    if let Some(v) = patch.project_id {
        qb.push(", project_id = ").push_bind(v);
    }
    if let Some(v) = &patch.title {
        qb.push(", title = ").push_bind(v.clone());
    }
    if let Some(v) = &patch.description {
        qb.push(", description = ").push_bind(v.clone());
    }
    if let Some(v) = patch.status {
        qb.push(", status = ").push_bind(v);
    }
    if let Some(v) = patch.priority {
        qb.push(", priority = ").push_bind(v);
    }
    if let Some(v) = patch.assignee_id {
        qb.push(", assignee_id = ").push_bind(v);
    }
    if let Some(v) = patch.due_date {
        qb.push(", due_date = ").push_bind(v);
    }
    qb.push(" WHERE id = ").push_bind(id);
    qb.push(format_args!(" RETURNING {COLUMNS}"));
    qb
}

pub async fn delete(db: &Db, id: i64) -> Result<bool, sqlx::Error> {
    // language=PostgreSQL
    let sql = "DELETE FROM tasks WHERE id = $1";
    db.timed("tasks.delete", sql, |pool| async move {
        let done = sqlx::query(sql).bind(id).execute(&pool).await?;
        Ok(done.rows_affected() > 0)
    })
    .await
}

fn push_filters(qb: &mut QueryBuilder<'_, Postgres>, filter: &TaskFilter) {
    qb.push(" WHERE TRUE");
    if let Some(v) = filter.project_id {
        qb.push(" AND project_id = ").push_bind(v);
    }
    if let Some(v) = filter.assignee_id {
        qb.push(" AND assignee_id = ").push_bind(v);
    }
    if let Some(v) = filter.status {
        qb.push(" AND status = ").push_bind(v);
    }
    if let Some(v) = filter.priority {
        qb.push(" AND priority = ").push_bind(v);
    }
    if let Some(q) = &filter.search {
        qb.push(format_args!(
            " AND {SEARCH_VECTOR} @@ plainto_tsquery('english', "
        ))
        .push_bind(q.clone())
        .push(")");
    }
}

/// Where a task list continues: after which row, in which order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskOrder {
    /// Id order, after an id.
    Id(Option<i64>),
    /// Most urgent first, ties by id (`idx_tasks_project_status_priority`).
    Priority(Option<PriorityKey>),
    /// Soonest due first, undated last, ties by id (`idx_tasks_assignee_due_date`).
    DueDate(Option<DueDateKey>),
}

/// Appends a task list query to `qb`; tests prefix it with `EXPLAIN`.
pub fn push_list<K>(
    qb: &mut QueryBuilder<'_, Postgres>,
    filter: &TaskFilter,
    order: TaskOrder,
    window: &Window<K>,
) {
    qb.push(format_args!("SELECT {COLUMNS} FROM tasks"));
    push_filters(qb, filter);
    let order_by = match order {
        TaskOrder::Id(after) => {
            if let Some(id) = after {
                qb.push(" AND id > ").push_bind(id);
            }
            "id"
        }
        TaskOrder::Priority(after) => {
            if let Some((priority, id)) = after {
                qb.push(" AND (priority < ")
                    .push_bind(priority)
                    .push(" OR (priority = ")
                    .push_bind(priority)
                    .push(" AND id > ")
                    .push_bind(id)
                    .push("))");
            }
            "priority DESC, id"
        }
        TaskOrder::DueDate(after) => {
            match after {
                Some((Some(due), id)) => {
                    qb.push(" AND (due_date > ")
                        .push_bind(due)
                        .push(" OR due_date IS NULL OR (due_date = ")
                        .push_bind(due)
                        .push(" AND id > ")
                        .push_bind(id)
                        .push("))");
                }
                Some((None, id)) => {
                    qb.push(" AND due_date IS NULL AND id > ").push_bind(id);
                }
                None => {}
            }
            "due_date, id"
        }
    };
    qb.push(format_args!(" ORDER BY {order_by}"));
    window.push_limit(qb);
}

/// Tasks in id order; offset pages take their total from `totals`.
pub async fn list(
    db: &Db,
    totals: &ListTotals,
    filter: &TaskFilter,
    window: &Window<i64>,
) -> Result<Slice<Task>, sqlx::Error> {
    let order = TaskOrder::Id(window.after().copied());
    list_ordered(db, totals, "tasks.list", filter, order, window).await
}

/// A project's tasks, most urgent first (`idx_tasks_project_status_priority`).
pub async fn list_for_project(
    db: &Db,
    totals: &ListTotals,
    project_id: i64,
    status: Option<TaskStatus>,
    window: &Window<PriorityKey>,
) -> Result<Slice<Task>, sqlx::Error> {
    let filter = TaskFilter {
        project_id: Some(project_id),
        status,
        ..TaskFilter::default()
    };
    let order = TaskOrder::Priority(window.after().copied());
    list_ordered(db, totals, "tasks.list_for_project", &filter, order, window).await
}

/// The tasks assigned to a user, soonest due first, undated last (`idx_tasks_assignee_due_date`).
pub async fn list_for_assignee(
    db: &Db,
    totals: &ListTotals,
    assignee_id: i64,
    window: &Window<DueDateKey>,
) -> Result<Slice<Task>, sqlx::Error> {
    let filter = TaskFilter {
        assignee_id: Some(assignee_id),
        ..TaskFilter::default()
    };
    let order = TaskOrder::DueDate(window.after().copied());
    list_ordered(db, totals, "tasks.list_for_assignee", &filter, order, window).await
}

async fn list_ordered<K>(
    db: &Db,
    totals: &ListTotals,
    op: &'static str,
    filter: &TaskFilter,
    order: TaskOrder,
    window: &Window<K>,
) -> Result<Slice<Task>, sqlx::Error> {
    let mut qb = QueryBuilder::<Postgres>::new("");
    push_list(&mut qb, filter, order, window);
    let sql = qb.sql().to_owned();
    let rows = db
        .timed(op, &sql, |pool| async move {
            qb.build_query_as::<Task>().fetch_all(&pool).await
        })
        .await?;
    let total = totals
        .for_window(window, TotalOf::Tasks(filter.clone()), || count(db, filter))
        .await?;
    Ok(Slice::from_rows(rows, window, total))
}

/// Rows matching `filter`: the exact `total` of an offset page (cached by [`ListTotals`]).
pub async fn count(db: &Db, filter: &TaskFilter) -> Result<i64, sqlx::Error> {
    let mut qb = QueryBuilder::<Postgres>::new("SELECT count(*) FROM tasks");
    push_filters(&mut qb, filter);
    let sql = qb.sql().to_owned();
    db.timed("tasks.count", &sql, |pool| async move {
        qb.build_query_scalar::<i64>().fetch_one(&pool).await
    })
    .await
}

/// Streams every task of a project in id order from one statement's cursor into `sink` as rows
/// arrive; rows are never collected, and a bounded sink holds the database back while the client
/// is slow. Runs on `conn`, acquired by the caller before it commits to a response. Stops early,
/// without error, when the sink is closed (the client went away). Returns the rows handed over.
pub async fn export<S>(
    db: &Db,
    mut conn: PoolConnection<Postgres>,
    project_id: i64,
    mut sink: S,
) -> Result<u64, sqlx::Error>
where
    S: Sink<Task> + Unpin,
{
    // language=PostgreSQL
    let sql = &format!("SELECT {COLUMNS} FROM tasks WHERE project_id = $1 ORDER BY id");
    db.timed("tasks.export", sql, |_pool| async move {
        let mut rows = sqlx::query_as::<_, Task>(sql).bind(project_id).fetch(&mut *conn);
        let mut sent = 0_u64;
        while let Some(task) = rows.try_next().await? {
            if sink.send(task).await.is_err() {
                break;
            }
            sent += 1;
        }
        Ok(sent)
    })
    .await
}
