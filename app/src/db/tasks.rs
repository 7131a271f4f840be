//! Tasks: row type, filters, what a patch changes, the three list orders, the writes an assignment
//! email joins (see `jobs::notify`) and the export's batches.
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgConnection, PgExecutor, Postgres, QueryBuilder};
use utoipa::ToSchema;

use super::{
    Db,
    resource::{self, Operations, Resource, SortKey, operations, push_change, push_equal},
    totals::{ListFilter, Table},
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

/// List filters (docs/indexes.md: which index serves which combination). `project_id` +
/// `status` are served by `idx_tasks_project_status_priority`, `assignee_id` by
/// `idx_tasks_assignee_due_date_all` (with `due_before`: `idx_tasks_assignee_due_date`), `search`
/// by `idx_tasks_fulltext` (within a project and status, its total by `idx_tasks_search`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TaskFilter {
    pub project_id: Option<i64>,
    pub assignee_id: Option<i64>,
    pub status: Option<TaskStatus>,
    pub priority: Option<i16>,
    /// Full-text search over title and description (English stemming).
    pub search: Option<String>,
    /// Only tasks due on or before this day (undated tasks are left out).
    pub due_before: Option<NaiveDate>,
}

impl ListFilter for TaskFilter {
    fn free_text_bytes(&self) -> usize {
        self.search.as_ref().map_or(0, String::len)
    }
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

/// The full-text expression; must stay identical to the definition of `idx_tasks_fulltext`.
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

// language=PostgreSQL
/// Many tasks in one statement, one array per column; `ORDER BY n` makes the ids follow the
/// arrays' order (the sequence is drawn as the rows are produced).
pub const INSERT_MANY_SQL: &str = concat!(
    "INSERT INTO tasks (project_id, title, description, status, priority, assignee_id, due_date) \
     SELECT project_id, title, description, status, priority, assignee_id, due_date \
     FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::int2[], $6::int8[], $7::date[]) \
     WITH ORDINALITY AS t(project_id, title, description, status, priority, assignee_id, due_date, n) \
     ORDER BY n RETURNING ",
    columns!()
);

/// Inserts `news` with one statement (one commit when `executor` is the pool): the returned
/// tasks are in `news`' order. All or none: a row that breaks a constraint fails the statement.
pub async fn insert_many<'e>(
    executor: impl PgExecutor<'e>,
    news: &[NewTask],
) -> Result<Vec<Task>, sqlx::Error> {
    let rows = sqlx::query_as::<_, Task>(INSERT_MANY_SQL)
        .bind(news.iter().map(|new| new.project_id).collect::<Vec<_>>())
        .bind(news.iter().map(|new| new.title.as_str()).collect::<Vec<_>>())
        .bind(
            news.iter()
                .map(|new| new.description.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(news.iter().map(|new| new.status).collect::<Vec<_>>())
        .bind(news.iter().map(|new| new.priority).collect::<Vec<_>>())
        .bind(news.iter().map(|new| new.assignee_id).collect::<Vec<_>>())
        .bind(news.iter().map(|new| new.due_date).collect::<Vec<_>>())
        .fetch_all(executor)
        .await?;
    in_input_order(rows, news).ok_or_else(|| {
        sqlx::Error::Protocol("a batched INSERT returned rows that do not match its input".into())
    })
}

/// The rows of a batched insert in the order of `news`: by id (drawn in input order), each
/// checked against its input. `None` when they do not pair up, which would be a bug.
pub fn in_input_order(mut rows: Vec<Task>, news: &[NewTask]) -> Option<Vec<Task>> {
    rows.sort_unstable_by_key(|task| task.id);
    let paired = rows.len() == news.len()
        && rows.iter().zip(news).all(|(task, new)| {
            task.project_id == new.project_id
                && task.title == new.title
                && task.description == new.description
                && task.status == new.status
                && task.priority == new.priority
                && task.assignee_id == new.assignee_id
                && task.due_date == new.due_date
        });
    paired.then_some(rows)
}

/// Applies `patch` in the caller's transaction; `None` when there is no such task.
pub async fn patch_in(
    conn: &mut PgConnection,
    id: i64,
    patch: &TaskPatch,
) -> Result<Option<Task>, sqlx::Error> {
    resource::update_query::<Task>(id, patch)
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

impl Resource for Task {
    const TABLE: Table = Table::Tasks;
    const NOUN: &'static str = "task";
    const COLUMNS: &'static str = columns!();
    const FIELDS: &'static [&'static str] = FIELDS;
    const OPS: Operations = operations!("tasks");
    type Filter = TaskFilter;
    type Patch = TaskPatch;

    fn id(&self) -> i64 {
        self.id
    }

    fn push_filters(qb: &mut QueryBuilder<'_, Postgres>, filter: &TaskFilter) {
        qb.push(" WHERE TRUE");
        push_equal(qb, "project_id", &filter.project_id);
        push_equal(qb, "assignee_id", &filter.assignee_id);
        push_equal(qb, "status", &filter.status);
        push_equal(qb, "priority", &filter.priority);
        if let Some(due) = filter.due_before {
            qb.push(" AND due_date <= ").push_bind(due);
        }
        if let Some(q) = &filter.search {
            qb.push(format_args!(
                " AND {SEARCH_VECTOR} @@ plainto_tsquery('english', "
            ))
            .push_bind(q.clone())
            .push(")");
        }
    }

    fn push_changes(qb: &mut QueryBuilder<'static, Postgres>, patch: &TaskPatch) {
        push_change(qb, "project_id", &patch.project_id);
        push_change(qb, "title", &patch.title);
        push_change(qb, "description", &patch.description);
        push_change(qb, "status", &patch.status);
        push_change(qb, "priority", &patch.priority);
        push_change(qb, "assignee_id", &patch.assignee_id);
        push_change(qb, "due_date", &patch.due_date);
    }
}

/// Most urgent first, ties by id (`idx_tasks_project_priority_desc`; with a status,
/// `idx_tasks_project_status_priority`).
impl SortKey<Task> for PriorityKey {
    const ORDER_BY: &'static str = "priority DESC, id";

    fn of(task: &Task) -> Self {
        (task.priority, task.id)
    }

    fn push_after(&self, qb: &mut QueryBuilder<'_, Postgres>) {
        let (priority, id) = *self;
        qb.push(" AND (priority < ")
            .push_bind(priority)
            .push(" OR (priority = ")
            .push_bind(priority)
            .push(" AND id > ")
            .push_bind(id)
            .push("))");
    }
}

/// Soonest due first, undated last, ties by id (`idx_tasks_assignee_due_date_all`; with a due
/// date bound, `idx_tasks_assignee_due_date`).
impl SortKey<Task> for DueDateKey {
    const ORDER_BY: &'static str = "due_date, id";

    fn of(task: &Task) -> Self {
        (task.due_date, task.id)
    }

    fn push_after(&self, qb: &mut QueryBuilder<'_, Postgres>) {
        match *self {
            (Some(due), id) => {
                qb.push(" AND (due_date > ")
                    .push_bind(due)
                    .push(" OR due_date IS NULL OR (due_date = ")
                    .push_bind(due)
                    .push(" AND id > ")
                    .push_bind(id)
                    .push("))");
            }
            (None, id) => {
                qb.push(" AND due_date IS NULL AND id > ").push_bind(id);
            }
        }
    }
}

/// Operation name of a project's tasks, listed by [`PriorityKey`] with [`of_project`].
pub const LIST_FOR_PROJECT: &str = "tasks.list_for_project";
/// Operation name of a user's tasks, listed by [`DueDateKey`] with [`of_assignee`].
pub const LIST_FOR_ASSIGNEE: &str = "tasks.list_for_assignee";

/// A project's tasks, of one status when given.
pub fn of_project(project_id: i64, status: Option<TaskStatus>) -> TaskFilter {
    TaskFilter {
        project_id: Some(project_id),
        status,
        ..TaskFilter::default()
    }
}

/// The tasks assigned to a user, only those due on or before `due_before` when given.
pub fn of_assignee(assignee_id: i64, due_before: Option<NaiveDate>) -> TaskFilter {
    TaskFilter {
        assignee_id: Some(assignee_id),
        due_before,
        ..TaskFilter::default()
    }
}

/// Operation name of one batch of an export.
pub const EXPORT_BATCH: &str = "tasks.export";

/// Up to `limit` tasks of a project in id order after the task `after` (from the first when
/// `None`): one short statement per batch, so an export holds a connection only while it reads a
/// batch, never while its client is slow.
pub async fn export_batch(
    db: &Db,
    project_id: i64,
    after: Option<i64>,
    limit: u32,
) -> Result<Vec<Task>, sqlx::Error> {
    // language=PostgreSQL
    let sql = concat!(
        "SELECT ",
        columns!(),
        " FROM tasks WHERE project_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    );
    let query = sqlx::query_as(sql)
        .bind(project_id)
        .bind(after.unwrap_or(0))
        .bind(i64::from(limit));
    db.fetch_all(EXPORT_BATCH, query).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(title: &str) -> NewTask {
        NewTask {
            project_id: 1,
            title: title.to_owned(),
            description: None,
            status: TaskStatus::Todo,
            priority: 2,
            assignee_id: None,
            due_date: None,
        }
    }

    fn stored(id: i64, new: &NewTask) -> Task {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        Task {
            id,
            project_id: new.project_id,
            title: new.title.clone(),
            description: new.description.clone(),
            status: new.status,
            priority: new.priority,
            assignee_id: new.assignee_id,
            due_date: new.due_date,
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn batch_rows_pair_with_their_inputs_by_id() {
        let news = [new("a"), new("b"), new("c")];
        let rows = vec![stored(12, &news[2]), stored(10, &news[0]), stored(11, &news[1])];
        let ordered = in_input_order(rows, &news).expect("paired");
        let titles: Vec<&str> = ordered.iter().map(|task| task.title.as_str()).collect();
        assert_eq!(titles, ["a", "b", "c"]);
    }

    #[test]
    fn batch_rows_that_do_not_pair_are_refused() {
        let news = [new("a"), new("b")];
        // ids drawn out of input order
        assert!(in_input_order(vec![stored(2, &news[0]), stored(1, &news[1])], &news).is_none());
        // a row missing
        assert!(in_input_order(vec![stored(1, &news[0])], &news).is_none());
    }
}
