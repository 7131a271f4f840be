//! The statements the shared implementation builds, to the letter: the same text for the same
//! list keeps one prepared statement and one `pg_stat_statements` row per shape, and the indexes
//! (docs/indexes.md) were chosen for exactly these predicates and orders.
use chrono::{NaiveDate, TimeZone, Utc};

use super::*;
use crate::db::{
    projects::{Project, ProjectFilter, ProjectKey, ProjectPatch},
    tasks::{self, DueDateKey, PriorityKey, Task, TaskFilter, TaskStatus},
    users::{Role, User, UserFilter, UserPatch, UserStatus},
};

const USER: &str = "id, email, username, first_name, last_name, role, status, created_at, updated_at";
const PROJECT: &str = "id, owner_id, name, description, status, created_at, updated_at";
const TASK: &str =
    "id, project_id, title, description, status, priority, assignee_id, due_date, created_at, updated_at";

fn list_sql<R: Resource, K: SortKey<R>>(filter: &R::Filter, window: &Window<K>) -> String {
    let mut qb = QueryBuilder::new("");
    push_list::<R, K>(&mut qb, filter, window);
    qb.sql().to_owned()
}

fn count_sql<R: Resource>(filter: &R::Filter) -> String {
    let mut qb = QueryBuilder::new(format!("SELECT count(*) FROM {}", R::TABLE.as_str()));
    R::push_filters(&mut qb, filter);
    qb.sql().to_owned()
}

fn offset<K>() -> Window<K> {
    Window::Offset {
        limit: 20,
        offset: 40,
    }
}

fn after<K>(key: K) -> Window<K> {
    Window::Keyset {
        limit: 20,
        after: Some(key),
    }
}

#[test]
fn user_lists_filter_with_the_indexed_predicates() {
    let filter = UserFilter {
        email: Some("a@example.com".into()),
        username: Some("Ada".into()),
        status: Some(UserStatus::Active),
        role: Some(Role::Admin),
    };
    assert_eq!(
        list_sql::<User, i64>(&filter, &offset()),
        format!(
            "SELECT {USER} FROM users WHERE TRUE AND email = $1 AND lower(username) = lower($2) \
             AND status = 'active' AND role = $3 ORDER BY id LIMIT $4 OFFSET $5"
        )
    );
    assert_eq!(
        list_sql::<User, i64>(&UserFilter::default(), &after(7)),
        format!("SELECT {USER} FROM users WHERE TRUE AND id > $1 ORDER BY id LIMIT $2")
    );
    assert_eq!(
        count_sql::<User>(&filter),
        "SELECT count(*) FROM users WHERE TRUE AND email = $1 AND lower(username) = lower($2) \
         AND status = 'active' AND role = $3"
    );
}

#[test]
fn project_lists_run_newest_first() {
    let filter = ProjectFilter {
        owner_id: Some(3),
        status: None,
    };
    let key: ProjectKey = (Utc.timestamp_opt(0, 0).unwrap(), 9);
    assert_eq!(
        list_sql::<Project, ProjectKey>(&filter, &after(key)),
        format!(
            "SELECT {PROJECT} FROM projects WHERE TRUE AND owner_id = $1 AND (created_at, id) < ($2, $3) \
             ORDER BY created_at DESC, id DESC LIMIT $4"
        )
    );
}

#[test]
fn task_lists_have_three_orders() {
    let by_project = tasks::of_project(7, Some(TaskStatus::Todo));
    let priority: PriorityKey = (3, 42);
    assert_eq!(
        list_sql::<Task, PriorityKey>(&by_project, &after(priority)),
        format!(
            "SELECT {TASK} FROM tasks WHERE TRUE AND project_id = $1 AND status = $2 \
             AND (priority < $3 OR (priority = $4 AND id > $5)) ORDER BY priority DESC, id LIMIT $6"
        )
    );
    let due: DueDateKey = (NaiveDate::from_ymd_opt(2026, 1, 2), 5);
    assert_eq!(
        list_sql::<Task, DueDateKey>(&tasks::of_assignee(4, None), &after(due)),
        format!(
            "SELECT {TASK} FROM tasks WHERE TRUE AND assignee_id = $1 AND (due_date > $2 \
             OR due_date IS NULL OR (due_date = $3 AND id > $4)) ORDER BY due_date, id LIMIT $5"
        )
    );
    let undated: DueDateKey = (None, 5);
    assert_eq!(
        list_sql::<Task, DueDateKey>(&tasks::of_assignee(4, None), &after(undated)),
        format!(
            "SELECT {TASK} FROM tasks WHERE TRUE AND assignee_id = $1 AND due_date IS NULL \
             AND id > $2 ORDER BY due_date, id LIMIT $3"
        )
    );
    let due_by: DueDateKey = (NaiveDate::from_ymd_opt(2026, 3, 1), 0);
    assert_eq!(
        list_sql::<Task, DueDateKey>(&tasks::of_assignee(4, due_by.0), &offset()),
        format!(
            "SELECT {TASK} FROM tasks WHERE TRUE AND assignee_id = $1 AND due_date <= $2 \
             ORDER BY due_date, id LIMIT $3 OFFSET $4"
        )
    );
    let search = TaskFilter {
        priority: Some(2),
        search: Some("login".into()),
        ..TaskFilter::default()
    };
    assert_eq!(
        list_sql::<Task, i64>(&search, &offset()),
        format!(
            "SELECT {TASK} FROM tasks WHERE TRUE AND priority = $1 AND to_tsvector('english', title \
             || ' ' || coalesce(description, '')) @@ plainto_tsquery('english', $2) ORDER BY id \
             LIMIT $3 OFFSET $4"
        )
    );
}

#[test]
fn updates_set_only_the_changed_columns() {
    let patch = UserPatch {
        email: Some("b@example.com".into()),
        role: Some(Role::Member),
        ..UserPatch::default()
    };
    assert_eq!(
        update_query::<User>(5, &patch).sql(),
        format!("UPDATE users SET updated_at = now(), email = $1, role = $2 WHERE id = $3 RETURNING {USER}")
    );
    let clear = ProjectPatch {
        description: Some(None),
        ..ProjectPatch::default()
    };
    assert_eq!(
        update_query::<Project>(5, &clear).sql(),
        format!("UPDATE projects SET updated_at = now(), description = $1 WHERE id = $2 RETURNING {PROJECT}")
    );
}

#[test]
fn operations_are_named_after_the_table() {
    let ops = Task::OPS;
    assert_eq!(
        [ops.get, ops.update, ops.delete, ops.list, ops.count],
        [
            "tasks.get",
            "tasks.update",
            "tasks.delete",
            "tasks.list",
            "tasks.count"
        ]
    );
    assert_eq!(User::OPS.count, "users.count");
    assert_eq!(Project::OPS.list, "projects.list");
}

#[test]
fn totals_cache_only_filters_with_short_free_text() {
    let long = "x".repeat(crate::db::totals::MAX_CACHED_TEXT_BYTES + 1);
    let search = |q: &str| TaskFilter {
        search: Some(q.to_owned()),
        ..TaskFilter::default()
    };
    assert!(TotalOf::new(Table::Tasks, search("login")).cacheable());
    assert!(!TotalOf::new(Table::Tasks, search(&long)).cacheable());
    let half = "x".repeat(crate::db::totals::MAX_CACHED_TEXT_BYTES / 2 + 1);
    let user = UserFilter {
        email: Some(half.clone()),
        username: Some(half),
        ..UserFilter::default()
    };
    assert!(
        !TotalOf::new(Table::Users, user).cacheable(),
        "emails and usernames count together"
    );
    assert!(TotalOf::new(Table::Projects, ProjectFilter::default()).cacheable());
}
