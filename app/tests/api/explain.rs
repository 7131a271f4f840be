//! On the seeded dataset (ANALYZEd), the planner uses the intended index for the app's own
//! queries, built by the same code the handlers run, with the same bind values.
use std::time::Duration;

use perfstack_app::db::{
    Db, QueryMonitor,
    migrate::{self, MigrateOptions},
    page::Window,
    projects::{Project, ProjectFilter, ProjectKey, ProjectStatus},
    resource::push_list,
    seed::{self, SeedSizes},
    tasks::{DueDateKey, PriorityKey, Task, TaskFilter, TaskStatus},
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
    let mut qb = QueryBuilder::new("EXPLAIN (FORMAT JSON) ");
    let filter = UserFilter {
        email: Some("user42@example.com".into()),
        status: Some(UserStatus::Active),
        ..UserFilter::default()
    };
    push_list::<User, i64>(&mut qb, &filter, &first_page());
    let (names, plan) = explain(&db, qb).await;
    assert_eq!(names, vec!["idx_users_email_active"], "{plan:#}");

    // case-insensitive username
    let mut qb = QueryBuilder::new("EXPLAIN (FORMAT JSON) ");
    let filter = UserFilter {
        username: Some("USER42".into()),
        ..UserFilter::default()
    };
    push_list::<User, i64>(&mut qb, &filter, &first_page());
    let (names, plan) = explain(&db, qb).await;
    assert_eq!(names, vec!["idx_users_username_lower"], "{plan:#}");

    // tasks by project + status, most urgent first
    let mut qb = QueryBuilder::new("EXPLAIN (FORMAT JSON) ");
    let filter = TaskFilter {
        project_id: Some(7),
        status: Some(TaskStatus::Todo),
        ..TaskFilter::default()
    };
    push_list::<Task, PriorityKey>(&mut qb, &filter, &first_page());
    let (names, plan) = explain(&db, qb).await;
    assert_eq!(names, vec!["idx_tasks_project_status_priority"], "{plan:#}");

    // tasks by assignee, soonest due first
    let mut qb = QueryBuilder::new("EXPLAIN (FORMAT JSON) ");
    let filter = TaskFilter {
        assignee_id: Some(42),
        ..TaskFilter::default()
    };
    push_list::<Task, DueDateKey>(&mut qb, &filter, &first_page());
    let (names, plan) = explain(&db, qb).await;
    assert_eq!(names, vec!["idx_tasks_assignee_due_date"], "{plan:#}");

    // projects by owner + status
    let mut qb = QueryBuilder::new("EXPLAIN (FORMAT JSON) ");
    let filter = ProjectFilter {
        owner_id: Some(42),
        status: Some(ProjectStatus::Active),
    };
    push_list::<Project, ProjectKey>(&mut qb, &filter, &first_page());
    let (names, plan) = explain(&db, qb).await;
    assert_eq!(names, vec!["idx_projects_owner_status"], "{plan:#}");

    // full-text search for a selective term (a common one rightly walks the primary key)
    let mut qb = QueryBuilder::new("EXPLAIN (FORMAT JSON) ");
    let filter = TaskFilter {
        search: Some("4242".into()),
        ..TaskFilter::default()
    };
    push_list::<Task, i64>(&mut qb, &filter, &first_page());
    let (names, plan) = explain(&db, qb).await;
    assert!(names.contains(&"idx_tasks_search".to_owned()), "{plan:#}");

    // projects newest first
    let mut qb = QueryBuilder::new("EXPLAIN (FORMAT JSON) ");
    push_list::<Project, ProjectKey>(&mut qb, &ProjectFilter::default(), &first_page());
    let (names, plan) = explain(&db, qb).await;
    assert_eq!(names, vec!["idx_projects_created_at_desc"], "{plan:#}");
}
