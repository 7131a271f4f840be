//! On the seeded dataset (ANALYZEd), the planner uses the intended index for the app's own
//! queries, built by the same code the handlers run, with the same bind values.
use std::time::Duration;

use perfstack_app::db::{
    Db, QueryMonitor,
    migrate::{self, MigrateOptions},
    page::Window,
    projects::{Project, ProjectFilter, ProjectKey, ProjectStatus},
    resource::{Resource, SortKey, push_list},
    seed::{self, SeedSizes},
    tasks::{self, DueDateKey, PriorityKey, Task, TaskFilter, TaskStatus},
    users::{self, User, UserFilter, UserStatus},
};
use serde_json::Value;
use sqlx::{PgPool, Postgres, QueryBuilder};

/// The first offset page of a list ordered by `K`.
fn first_page<K>() -> Window<K> {
    Window::Offset { limit: 20, offset: 0 }
}

async fn seeded(pool: PgPool) -> Db {
    let db = Db::from_pool(pool, QueryMonitor::new(Duration::from_secs(10)));
    migrate::apply(&db, &MigrateOptions::default()).await.unwrap();
    let sizes = SeedSizes {
        users: 10_000,
        projects: 5_000,
        tasks: 50_000,
    };
    seed::apply(&db, sizes).await.unwrap();
    db
}

/// Index names anywhere in a JSON plan.
fn index_names(plan: &Value, out: &mut Vec<String>) {
    match plan {
        Value::Object(map) => {
            if let Some(Value::String(name)) = map.get("Index Name") {
                out.push(name.clone());
            }
            map.values().for_each(|v| index_names(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| index_names(v, out)),
        _ => {}
    }
}

async fn explain(db: &Db, mut qb: QueryBuilder<'_, Postgres>) -> (Vec<String>, Value) {
    let plan: Value = qb
        .build_query_scalar::<Value>()
        .fetch_one(&db.pool())
        .await
        .unwrap();
    let mut names = Vec::new();
    index_names(&plan, &mut names);
    (names, plan)
}

/// The index names and plan of the list query of `R` in the order `K` under `filter`.
async fn planned<R: Resource, K: SortKey<R>>(db: &Db, filter: &R::Filter) -> (Vec<String>, Value) {
    let mut qb = QueryBuilder::new("EXPLAIN (FORMAT JSON) ");
    push_list::<R, K>(&mut qb, filter, &first_page());
    explain(db, qb).await
}

/// Asserts that the planner reads the list of `R` in the order `K` under `filter` through `index`
/// and no other.
async fn assert_only_index<R: Resource, K: SortKey<R>>(db: &Db, filter: &R::Filter, index: &str) {
    let (names, plan) = planned::<R, K>(db, filter).await;
    assert_eq!(names, vec![index], "{plan:#}");
}

#[sqlx::test(migrations = false)]
async fn planner_uses_the_intended_indexes(pool: PgPool) {
    let db = seeded(pool).await;

    // user by active email: the login lookup, and the list filter that serves it
    let plan: Value = sqlx::query_scalar(&format!("EXPLAIN (FORMAT JSON) {}", users::ACTIVE_BY_EMAIL))
        .bind("user42@example.com")
        .fetch_one(&db.pool())
        .await
        .unwrap();
    let mut names = Vec::new();
    index_names(&plan, &mut names);
    assert_eq!(names, vec!["idx_users_email_active"], "{plan:#}");
    let filter = UserFilter {
        email: Some("user42@example.com".into()),
        status: Some(UserStatus::Active),
        ..UserFilter::default()
    };
    assert_only_index::<User, i64>(&db, &filter, "idx_users_email_active").await;

    // case-insensitive username
    let filter = UserFilter {
        username: Some("USER42".into()),
        ..UserFilter::default()
    };
    assert_only_index::<User, i64>(&db, &filter, "idx_users_username_lower").await;

    // tasks by project + status, most urgent first
    let filter = tasks::of_project(7, Some(TaskStatus::Todo));
    assert_only_index::<Task, PriorityKey>(&db, &filter, "idx_tasks_project_status_priority").await;

    // tasks by assignee, soonest due first
    let filter = tasks::of_assignee(42);
    assert_only_index::<Task, DueDateKey>(&db, &filter, "idx_tasks_assignee_due_date").await;

    // projects by owner + status
    let filter = ProjectFilter {
        owner_id: Some(42),
        status: Some(ProjectStatus::Active),
    };
    assert_only_index::<Project, ProjectKey>(&db, &filter, "idx_projects_owner_status").await;

    // full-text search for a selective term (a common one rightly walks the primary key)
    let filter = TaskFilter {
        search: Some("4242".into()),
        ..TaskFilter::default()
    };
    let (names, plan) = planned::<Task, i64>(&db, &filter).await;
    assert!(names.contains(&"idx_tasks_search".to_owned()), "{plan:#}");

    // projects newest first
    assert_only_index::<Project, ProjectKey>(&db, &ProjectFilter::default(), "idx_projects_created_at_desc")
        .await;
}
