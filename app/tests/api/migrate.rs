//! `migrate`: the seven indexes exist exactly as specified and valid, INVALID ones are repaired,
//! a second run changes nothing, a blocked build fails instead of hanging.
use std::{process::Command, time::Duration};

use perfstack_app::db::{
    Db, QueryMonitor,
    migrate::{self, MigrateOptions},
};
use perfstack_contract::migration::MigrationSummary;
use sqlx::{PgPool, Row};

/// The indexes as PostgreSQL 15 prints them back in `pg_indexes.indexdef`.
const EXPECTED: &[(&str, &str)] = &[
    (
        "idx_projects_created_at_desc",
        "CREATE INDEX idx_projects_created_at_desc ON public.projects USING btree (created_at DESC)",
    ),
    (
        "idx_projects_owner_status",
        "CREATE INDEX idx_projects_owner_status ON public.projects USING btree (owner_id, status)",
    ),
    (
        "idx_tasks_assignee_due_date",
        "CREATE INDEX idx_tasks_assignee_due_date ON public.tasks USING btree (assignee_id, due_date)",
    ),
    (
        "idx_tasks_project_status_priority",
        "CREATE INDEX idx_tasks_project_status_priority ON public.tasks USING btree (project_id, status, priority DESC)",
    ),
    (
        "idx_tasks_search",
        "CREATE INDEX idx_tasks_search ON public.tasks USING gin (to_tsvector('english'::regconfig, ((title || ' '::text) || COALESCE(description, ''::text))))",
    ),
    (
        "idx_users_email_active",
        "CREATE INDEX idx_users_email_active ON public.users USING btree (email) WHERE (status = 'active'::text)",
    ),
    (
        "idx_users_username_lower",
        "CREATE INDEX idx_users_username_lower ON public.users USING btree (lower(username))",
    ),
];

fn db(pool: PgPool) -> Db {
    Db::from_pool(pool, QueryMonitor::new(Duration::from_millis(100)))
}

/// The app's handle on the test database, migrated once, then `sql` run on it.
async fn migrated_then(pool: &PgPool, sql: &str) -> Db {
    let db = db(pool.clone());
    migrate::apply(&db, &MigrateOptions::default()).await.unwrap();
    sqlx::raw_sql(sql).execute(pool).await.unwrap();
    db
}

async fn indexes(pool: &PgPool) -> Vec<(String, String, bool)> {
    sqlx::query(
        "SELECT i.indexname, i.indexdef, x.indisvalid
         FROM pg_indexes i JOIN pg_class c ON c.relname = i.indexname
         JOIN pg_index x ON x.indexrelid = c.oid
         WHERE i.schemaname = 'public' AND i.indexname LIKE 'idx\\_%'
         ORDER BY i.indexname",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

async fn oid(pool: &PgPool, name: &str) -> i64 {
    sqlx::query_scalar::<_, i64>("SELECT $1::regclass::oid::bigint")
        .bind(name)
        .fetch_one(pool)
        .await
        .unwrap()
}

fn all_names() -> Vec<String> {
    let mut names: Vec<String> = EXPECTED.iter().map(|(n, _)| (*n).to_owned()).collect();
    names.sort();
    names
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[sqlx::test(migrations = false)]
async fn builds_exactly_the_seven_indexes_and_a_second_run_is_a_no_op(pool: PgPool) {
    let db = db(pool.clone());
    let first = migrate::apply(&db, &MigrateOptions::default()).await.unwrap();
    assert_eq!(first.migrations_applied, migration_files());
    assert_eq!(sorted(first.indexes_created.clone()), all_names());
    assert!(first.indexes_repaired.is_empty() && first.indexes_valid.is_empty());

    let found = indexes(&pool).await;
    let expected: Vec<(String, String, bool)> = EXPECTED
        .iter()
        .map(|(n, d)| ((*n).to_owned(), (*d).to_owned(), true))
        .collect();
    assert_eq!(found, expected);

    let oids_before = futures::future::join_all(EXPECTED.iter().map(|(n, _)| oid(&pool, n))).await;
    let second = migrate::apply(&db, &MigrateOptions::default()).await.unwrap();
    assert_eq!(
        second,
        MigrationSummary {
            migrations_applied: 0,
            indexes_created: vec![],
            indexes_repaired: vec![],
            indexes_valid: first.indexes_created.clone(),
        }
    );
    let oids_after = futures::future::join_all(EXPECTED.iter().map(|(n, _)| oid(&pool, n))).await;
    assert_eq!(oids_before, oids_after, "a second run rebuilt an index");
}

#[sqlx::test(migrations = false)]
async fn an_index_marked_invalid_is_dropped_and_rebuilt(pool: PgPool) {
    let invalidate = "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'idx_tasks_search'::regclass";
    let db = migrated_then(&pool, invalidate).await;
    let before = oid(&pool, "idx_tasks_search").await;

    let summary = migrate::apply(&db, &MigrateOptions::default()).await.unwrap();
    assert_eq!(summary.indexes_repaired, vec!["idx_tasks_search"]);
    assert_eq!(summary.indexes_valid.len(), 6);
    assert!(summary.indexes_created.is_empty());
    assert_ne!(oid(&pool, "idx_tasks_search").await, before, "not rebuilt");
    assert!(indexes(&pool).await.iter().all(|(_, _, valid)| *valid));
}

#[sqlx::test(migrations = false)]
async fn a_failed_concurrent_build_is_repaired(pool: PgPool) {
    // A failed CREATE INDEX CONCURRENTLY leaves an INVALID index behind: a unique build under
    // the same name over usernames that differ only in case fails exactly so.
    let case_twins = "DROP INDEX idx_users_username_lower;
         INSERT INTO users (email, username) VALUES ('a@x.org', 'Ann'), ('b@x.org', 'ann');";
    let db = migrated_then(&pool, case_twins).await;
    let failed =
        sqlx::raw_sql("CREATE UNIQUE INDEX CONCURRENTLY idx_users_username_lower ON users (lower(username))")
            .execute(&pool)
            .await;
    assert!(failed.is_err());
    let left = indexes(&pool).await;
    assert!(
        left.contains(&(
            "idx_users_username_lower".to_owned(),
            "CREATE UNIQUE INDEX idx_users_username_lower ON public.users USING btree (lower(username))"
                .to_owned(),
            false
        ))
    );

    let summary = migrate::apply(&db, &MigrateOptions::default()).await.unwrap();
    assert_eq!(summary.indexes_repaired, vec!["idx_users_username_lower"]);
    let expected: Vec<(String, String, bool)> = EXPECTED
        .iter()
        .map(|(n, d)| ((*n).to_owned(), (*d).to_owned(), true))
        .collect();
    assert_eq!(indexes(&pool).await, expected);
}

#[sqlx::test(migrations = false)]
async fn a_blocked_build_fails_fast_and_the_next_run_finishes(pool: PgPool) {
    let db = migrated_then(&pool, "DROP INDEX idx_tasks_assignee_due_date").await;
    // A long transaction holding a lock that CREATE INDEX CONCURRENTLY must wait for.
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE tasks IN SHARE MODE")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let opts = MigrateOptions {
        lock_timeout: Duration::from_millis(100),
    };
    let started = std::time::Instant::now();
    let err = migrate::apply(&db, &opts).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("idx_tasks_assignee_due_date"),
        "{err:#}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    blocker.rollback().await.unwrap();

    let summary = migrate::apply(&db, &opts).await.unwrap();
    let fixed: Vec<&String> = summary
        .indexes_created
        .iter()
        .chain(&summary.indexes_repaired)
        .collect();
    assert_eq!(fixed, vec!["idx_tasks_assignee_due_date"]);
    assert!(indexes(&pool).await.iter().all(|(_, _, valid)| *valid));
}

/// The binary prints exactly one JSON line, writes it to `--summary-file`, and exits non-zero
/// (with the error in the summary file) when it cannot migrate.
#[sqlx::test(migrations = false)]
async fn binary_prints_one_json_line_and_fails_non_zero(pool: PgPool) {
    let database = pool.connect_options().get_database().unwrap().to_owned();
    let base = std::env::var("DATABASE_URL").unwrap();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    let url = format!("{prefix}/{database}");
    let dir = std::env::temp_dir().join(format!("perfstack-migrate-{database}"));
    std::fs::create_dir_all(&dir).unwrap();
    let summary_file = dir.join("summary.json");
    let bin = env!("CARGO_BIN_EXE_perfstack-app");

    let out = Command::new(bin)
        .args(["migrate", "--summary-file"])
        .arg(&summary_file)
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(line["migrationsApplied"], migration_files());
    assert_eq!(line["indexesCreated"].as_array().unwrap().len(), 7);
    let written = std::fs::read_to_string(&summary_file).unwrap();
    assert_eq!(written.trim(), stdout.trim());

    let out = Command::new(bin)
        .args(["migrate", "--summary-file"])
        .arg(&summary_file)
        .env("DATABASE_URL", format!("{prefix}/no_such_database_here"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary_file).unwrap()).unwrap();
    assert!(written["error"].is_string(), "{written}");
    // the password never reaches the summary or the logs
    let (_, rest) = base.split_once("://").unwrap();
    if let Some((_, password)) = rest
        .split_once('@')
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
    {
        assert!(!written.to_string().contains(password));
        assert!(!String::from_utf8_lossy(&out.stderr).contains(password));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// How many schema migrations `app/migrations` holds (each area adds its own file).
fn migration_files() -> u32 {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
    let count = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "sql"))
        .count();
    u32::try_from(count).unwrap()
}
