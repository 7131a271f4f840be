//! On the seeded dataset (vacuumed and analysed), the planner reads each index for the query of the
//! API it is there for: the queries are built by the same code the handlers run, with the same
//! bind values. The project's own indexes are also measured against the plan without them
//! (buffers touched, EXPLAIN ANALYZE), which is why they exist besides the design's seven.
use std::time::Duration;

use chrono::NaiveDate;
use perfstack_app::db::{
    Db, QueryMonitor,
    migrate::{self, MigrateOptions},
    page::Window,
    projects::{Project, ProjectFilter, ProjectKey, ProjectStatus},
    resource::{Resource, SortKey, push_count, push_list, push_list_and_count},
    seed::{self, SeedSizes},
    tasks::{self, DueDateKey, PriorityKey, Task, TaskFilter, TaskStatus},
    users::{self, User, UserFilter, UserStatus},
};
use serde_json::Value;
use sqlx::{PgPool, Postgres, QueryBuilder};

/// The project the seeded data has 20,000 more tasks in (the seed makes projects of 10).
const BIG_PROJECT: i64 = 7;
const BIG_PROJECT_TASKS: i64 = 20_000;

/// The first offset page of a list ordered by `K`.
fn first_page<K>() -> Window<K> {
    Window::Offset { limit: 20, offset: 0 }
}

/// The demo dataset (10,000 users, 5,000 projects of 10 tasks) plus one big project.
async fn seeded(pool: PgPool) -> Db {
    let db = Db::from_pool(pool, QueryMonitor::new(Duration::from_secs(10)));
    migrate::apply(&db, &MigrateOptions::default()).await.unwrap();
    let sizes = SeedSizes {
        users: 10_000,
        projects: 5_000,
        tasks: 50_000,
    };
    seed::apply(&db, sizes).await.unwrap();
    sqlx::query(
        "INSERT INTO tasks (project_id, title, description, status, priority, assignee_id, due_date)
         SELECT $1, 'Big task ' || i, 'Row ' || i, (ARRAY['todo','in_progress','review','done'])[1 + i % 4],
                (i % 5)::smallint, 1 + i % 10000, date '2026-01-01' + (i % 365)::int
         FROM generate_series(1, $2::bigint) AS i",
    )
    .bind(BIG_PROJECT)
    .bind(BIG_PROJECT_TASKS)
    .execute(&db.pool())
    .await
    .unwrap();
    all_visible(&db, "tasks").await;
    db
}

/// Vacuums and analyzes `table` until its every page is all-visible (the planner's index-only scans
/// depend on it). VACUUM cannot mark pages whose rows an older snapshot elsewhere in the cluster may
/// still not see (test databases created beside this one, for one), so it is repeated for a while.
async fn all_visible(db: &Db, table: &str) {
    for _ in 0..40 {
        sqlx::raw_sql(&format!("VACUUM ANALYZE {table}"))
            .execute(&db.pool())
            .await
            .unwrap();
        let done: bool =
            sqlx::query_scalar("SELECT relallvisible >= relpages FROM pg_class WHERE oid = $1::regclass")
                .bind(table)
                .fetch_one(&db.pool())
                .await
                .unwrap();
        if done {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `(node type, index name)` of every index scan anywhere in a JSON plan.
fn index_scans(plan: &Value, out: &mut Vec<(String, String)>) {
    match plan {
        Value::Object(map) => {
            if let (Some(Value::String(node)), Some(Value::String(index))) =
                (map.get("Node Type"), map.get("Index Name"))
            {
                out.push((node.clone(), index.clone()));
            }
            map.values().for_each(|v| index_scans(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| index_scans(v, out)),
        _ => {}
    }
}

/// The plan of the statement in `qb` (which starts with `EXPLAIN (... FORMAT JSON)`).
async fn plan_of(db: &Db, mut qb: QueryBuilder<'_, Postgres>) -> Value {
    qb.build_query_scalar::<Value>()
        .fetch_one(&db.pool())
        .await
        .unwrap()
}

/// The index names a plan reads, with the plan for failure messages.
fn names(plan: Value) -> (Vec<String>, Value) {
    let mut scans = Vec::new();
    index_scans(&plan, &mut scans);
    (scans.into_iter().map(|(_, index)| index).collect(), plan)
}

/// The list query of `R` in the order `K` under `filter`: its first offset page.
fn list<R: Resource, K: SortKey<R>>(filter: &R::Filter) -> QueryBuilder<'static, Postgres> {
    let mut qb = QueryBuilder::new("EXPLAIN (FORMAT JSON) ");
    push_list::<R, K>(&mut qb, filter, &first_page());
    qb
}

/// The count behind the `total` of an offset page of `R` under `filter`.
fn count<R: Resource>(filter: &R::Filter) -> QueryBuilder<'static, Postgres> {
    let mut qb = QueryBuilder::new("EXPLAIN (FORMAT JSON) ");
    push_count::<R>(&mut qb, filter);
    qb
}

/// Asserts that the planner reads the list of `R` in the order `K` under `filter` through `index`
/// and no other.
async fn assert_only_index<R: Resource, K: SortKey<R>>(db: &Db, filter: &R::Filter, index: &str) {
    let (names, plan) = names(plan_of(db, list::<R, K>(filter)).await);
    assert_eq!(names, vec![index], "{plan:#}");
}

/// Asserts that the total of an offset page of `R` under `filter` is counted from `index` alone,
/// without visiting the table.
async fn assert_counted_from<R: Resource>(db: &Db, filter: &R::Filter, index: &str) {
    let plan = plan_of(db, count::<R>(filter)).await;
    let mut scans = Vec::new();
    index_scans(&plan, &mut scans);
    assert_eq!(
        scans,
        vec![("Index Only Scan".to_owned(), index.to_owned())],
        "{plan:#}"
    );
}

/// Asserts that the page of `R` in the order `K` read with its total in one statement (what a
/// count-cache miss runs) reads the same indexes as the page and the count do apart.
async fn assert_page_and_count_read_as_apart<R: Resource, K: SortKey<R>>(db: &Db, filter: &R::Filter) {
    let mut qb = QueryBuilder::new("EXPLAIN (FORMAT JSON) ");
    push_list_and_count::<R, K>(&mut qb, filter, &first_page());
    let (mut together, plan) = names(plan_of(db, qb).await);
    let (mut apart, _) = names(plan_of(db, list::<R, K>(filter)).await);
    apart.extend(names(plan_of(db, count::<R>(filter)).await).0);
    together.sort();
    apart.sort();
    assert_eq!(together, apart, "{plan:#}");
}

#[sqlx::test(migrations = false)]
async fn the_seven_design_indexes_serve_queries_of_the_api(pool: PgPool) {
    let db = seeded(pool).await;

    // idx_users_email_active: the login lookup, and the list filter that serves it
    let plan: Value = sqlx::query_scalar(&format!("EXPLAIN (FORMAT JSON) {}", users::ACTIVE_BY_EMAIL))
        .bind("user42@example.com")
        .fetch_one(&db.pool())
        .await
        .unwrap();
    let (found, plan) = names(plan);
    assert_eq!(found, vec!["idx_users_email_active"], "{plan:#}");
    let filter = UserFilter {
        email: Some("user42@example.com".into()),
        status: Some(UserStatus::Active),
        ..UserFilter::default()
    };
    assert_only_index::<User, i64>(&db, &filter, "idx_users_email_active").await;

    // idx_users_username_lower: case-insensitive username
    let filter = UserFilter {
        username: Some("USER42".into()),
        ..UserFilter::default()
    };
    assert_only_index::<User, i64>(&db, &filter, "idx_users_username_lower").await;

    // idx_projects_owner_status: projects by owner + status
    let filter = ProjectFilter {
        owner_id: Some(42),
        status: Some(ProjectStatus::Active),
    };
    assert_only_index::<Project, ProjectKey>(&db, &filter, "idx_projects_owner_status").await;

    // idx_projects_created_at_desc: projects newest first
    assert_only_index::<Project, ProjectKey>(&db, &ProjectFilter::default(), "idx_projects_created_at_desc")
        .await;

    // idx_tasks_project_status_priority: a project's tasks of one status, and the totals of a
    // project's tasks (of one status or all), counted from the index alone
    let filter = tasks::of_project(42, Some(TaskStatus::Todo));
    assert_only_index::<Task, PriorityKey>(&db, &filter, "idx_tasks_project_status_priority").await;
    assert_counted_from::<Task>(&db, &filter, "idx_tasks_project_status_priority").await;
    let filter = tasks::of_project(BIG_PROJECT, None);
    assert_counted_from::<Task>(&db, &filter, "idx_tasks_project_status_priority").await;
    // ... and read in one statement, as a count-cache miss does
    assert_page_and_count_read_as_apart::<Task, PriorityKey>(
        &db,
        &tasks::of_project(42, Some(TaskStatus::Todo)),
    )
    .await;
    assert_page_and_count_read_as_apart::<Task, PriorityKey>(&db, &filter).await;

    // idx_tasks_assignee_due_date (partial): a user's tasks due by a day
    let filter = tasks::of_assignee(42, NaiveDate::from_ymd_opt(2026, 6, 30));
    assert_only_index::<Task, DueDateKey>(&db, &filter, "idx_tasks_assignee_due_date").await;

    // idx_tasks_search (covering): the total of a search within a project's tasks of one status
    // (`GET /tasks?projectId=&status=&q=`) is an index-only scan, as is the one without a status
    let filter = TaskFilter {
        project_id: Some(42),
        status: Some(TaskStatus::Todo),
        search: Some("review".into()),
        ..TaskFilter::default()
    };
    assert_counted_from::<Task>(&db, &filter, "idx_tasks_search").await;
    let filter = TaskFilter {
        status: None,
        ..filter
    };
    assert_counted_from::<Task>(&db, &filter, "idx_tasks_search").await;
}

/// Shared buffers (hit or read) the statement in `qb` touches when it runs (EXPLAIN ANALYZE),
/// with the index `without` dropped for the measurement when given (in a transaction that is
/// rolled back, so the index is back afterwards).
async fn buffers(db: &Db, mut qb: QueryBuilder<'_, Postgres>, without: Option<&str>) -> i64 {
    let mut tx = db.pool().begin().await.unwrap();
    if let Some(index) = without {
        sqlx::raw_sql(&format!("DROP INDEX {index}"))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    let plan: Value = qb.build_query_scalar().fetch_one(&mut *tx).await.unwrap();
    tx.rollback().await.unwrap();
    let top = &plan[0]["Plan"];
    let blocks = top["Shared Hit Blocks"].as_i64().unwrap() + top["Shared Read Blocks"].as_i64().unwrap();
    assert!(blocks > 0, "{plan:#}");
    blocks
}

/// The first page of the list of `R` in the order `K`, run, counting buffers.
fn measured_list<R: Resource, K: SortKey<R>>(filter: &R::Filter) -> QueryBuilder<'static, Postgres> {
    let mut qb = QueryBuilder::new("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ");
    push_list::<R, K>(&mut qb, filter, &first_page());
    qb
}

/// Asserts that the list of `R` in the order `K` under `filter` reads `index`, and touches at
/// least ten times fewer buffers than the best plan without it.
async fn assert_own_index_pays<R: Resource, K: SortKey<R>>(db: &Db, filter: &R::Filter, index: &str) {
    let (found, plan) = names(plan_of(db, list::<R, K>(filter)).await);
    assert!(found.iter().any(|name| name == index), "{plan:#}");
    let with = buffers(db, measured_list::<R, K>(filter), None).await;
    let without = buffers(db, measured_list::<R, K>(filter), Some(index)).await;
    eprintln!("{index}: {with} buffers with it, {without} without");
    assert!(
        with * 10 <= without,
        "{index}: {with} buffers with it, {without} without"
    );
}

#[sqlx::test(migrations = false)]
async fn the_projects_own_indexes_serve_what_the_seven_cannot(pool: PgPool) {
    let db = seeded(pool).await;

    // idx_tasks_project_priority_desc: a big project's tasks, most urgent first, read in list order
    // instead of sorting all 20,000
    let filter = tasks::of_project(BIG_PROJECT, None);
    assert_own_index_pays::<Task, PriorityKey>(&db, &filter, "idx_tasks_project_priority_desc").await;

    // idx_tasks_assignee_due_date_all: a user's tasks, undated ones included (the design's partial
    // index cannot return those)
    let filter = tasks::of_assignee(42, None);
    assert_only_index::<Task, DueDateKey>(&db, &filter, "idx_tasks_assignee_due_date_all").await;
    assert_own_index_pays::<Task, DueDateKey>(&db, &filter, "idx_tasks_assignee_due_date_all").await;

    // idx_tasks_fulltext: full-text search over every task, for a selective term (a common one
    // rightly walks the primary key)
    let filter = TaskFilter {
        search: Some("4242".into()),
        ..TaskFilter::default()
    };
    assert_own_index_pays::<Task, i64>(&db, &filter, "idx_tasks_fulltext").await;
}
