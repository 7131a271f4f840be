//! `migrate`: the design's seven indexes and the project's own exist exactly as specified and
//! valid, INVALID ones are repaired, a database of an older version is upgraded in place (changed
//! definitions rebuilt, unchanged ones kept), an interrupted run is finished by the next, a second
//! run changes nothing, a blocked build fails instead of hanging.
use std::{process::Command, time::Duration};

use perfstack_app::db::{
    Db, QueryMonitor, indexes,
    migrate::{self, MigrateOptions},
};
use perfstack_contract::migration::MigrationSummary;
use sqlx::{PgPool, Row};

/// The indexes as PostgreSQL 15 prints them back in `pg_indexes.indexdef`: the seven of the
/// design document under its names and definitions, and the project's own three.
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
        "CREATE INDEX idx_tasks_assignee_due_date ON public.tasks USING btree (assignee_id, due_date) WHERE (due_date IS NOT NULL)",
    ),
    (
        "idx_tasks_assignee_due_date_all",
        "CREATE INDEX idx_tasks_assignee_due_date_all ON public.tasks USING btree (assignee_id, due_date)",
    ),
    (
        "idx_tasks_fulltext",
        "CREATE INDEX idx_tasks_fulltext ON public.tasks USING gin (to_tsvector('english'::regconfig, ((title || ' '::text) || COALESCE(description, ''::text))))",
    ),
    (
        "idx_tasks_project_priority_desc",
        "CREATE INDEX idx_tasks_project_priority_desc ON public.tasks USING btree (project_id, priority DESC, id)",
    ),
    (
        "idx_tasks_project_status_priority",
        "CREATE INDEX idx_tasks_project_status_priority ON public.tasks USING btree (project_id, status, priority)",
    ),
    (
        "idx_tasks_search",
        "CREATE INDEX idx_tasks_search ON public.tasks USING btree (project_id, status) INCLUDE (title, description)",
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

/// The indexes as the versions before definitions were recorded built them (no comments).
const FIRST_VERSION_INDEXES: &str = "
    CREATE INDEX idx_users_email_active ON users (email) WHERE status = 'active';
    CREATE INDEX idx_users_username_lower ON users (lower(username));
    CREATE INDEX idx_projects_owner_status ON projects (owner_id, status);
    CREATE INDEX idx_projects_created_at_desc ON projects (created_at DESC);
    CREATE INDEX idx_tasks_project_status_priority ON tasks (project_id, status, priority DESC);
    CREATE INDEX idx_tasks_assignee_due_date ON tasks (assignee_id, due_date);
    CREATE INDEX idx_tasks_search ON tasks
        USING gin (to_tsvector('english', title || ' ' || coalesce(description, '')));";

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

async fn index_rows(pool: &PgPool) -> Vec<(String, String, bool)> {
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

/// Every expected index, valid, as `index_rows` lists them.
fn expected_rows() -> Vec<(String, String, bool)> {
    EXPECTED
        .iter()
        .map(|(n, d)| ((*n).to_owned(), (*d).to_owned(), true))
        .collect()
}

async fn oids(pool: &PgPool) -> Vec<i64> {
    futures::future::join_all(EXPECTED.iter().map(|(n, _)| oid(pool, n))).await
}

/// The definition recorded on each expected index (its comment), in `EXPECTED` order.
async fn records(pool: &PgPool) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for (name, _) in EXPECTED {
        let record: Option<String> = sqlx::query_scalar("SELECT obj_description($1::regclass, 'pg_class')")
            .bind(name)
            .fetch_one(pool)
            .await
            .unwrap();
        out.push(record);
    }
    out
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
async fn builds_exactly_the_design_and_own_indexes_and_a_second_run_is_a_no_op(pool: PgPool) {
    let db = db(pool.clone());
    let first = migrate::apply(&db, &MigrateOptions::default()).await.unwrap();
    assert_eq!(first.migrations_applied, migration_files());
    assert_eq!(sorted(first.indexes_created.clone()), all_names());
    assert!(first.indexes_repaired.is_empty() && first.indexes_valid.is_empty());
    // the seven of the design document are among them, under its names
    let design: Vec<&str> = indexes::DESIGN.iter().map(|spec| spec.name).collect();
    assert!(design.iter().all(|name| all_names().iter().any(|n| n == name)));
    assert_eq!(index_rows(&pool).await, expected_rows());
    let recorded: Vec<Option<String>> = EXPECTED
        .iter()
        .map(|(name, _)| {
            indexes::all()
                .find(|spec| spec.name == *name)
                .map(|spec| spec.record())
        })
        .collect();
    assert_eq!(records(&pool).await, recorded);

    let oids_before = oids(&pool).await;
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
    assert_eq!(oids_before, oids(&pool).await, "a second run rebuilt an index");
}

#[sqlx::test(migrations = false)]
async fn a_database_of_the_first_version_is_upgraded_in_place(pool: PgPool) {
    // The schema as an older version left it: its seven indexes, three of them with the
    // definitions that have changed since, none with a recorded definition.
    let drop_all = format!(
        "DROP INDEX {};",
        EXPECTED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
    );
    let db = migrated_then(&pool, &format!("{drop_all}{FIRST_VERSION_INDEXES}")).await;
    let unchanged = [
        "idx_projects_created_at_desc",
        "idx_projects_owner_status",
        "idx_users_email_active",
        "idx_users_username_lower",
    ];
    let kept = futures::future::join_all(unchanged.iter().map(|n| oid(&pool, n))).await;

    let summary = migrate::apply(&db, &MigrateOptions::default()).await.unwrap();
    assert_eq!(
        sorted(summary.indexes_created.clone()),
        [
            "idx_tasks_assignee_due_date_all",
            "idx_tasks_fulltext",
            "idx_tasks_project_priority_desc"
        ]
    );
    assert_eq!(
        sorted(summary.indexes_repaired.clone()),
        [
            "idx_tasks_assignee_due_date",
            "idx_tasks_project_status_priority",
            "idx_tasks_search"
        ]
    );
    assert_eq!(sorted(summary.indexes_valid.clone()), unchanged);
    assert_eq!(index_rows(&pool).await, expected_rows());
    assert_eq!(
        futures::future::join_all(unchanged.iter().map(|n| oid(&pool, n))).await,
        kept,
        "an unchanged index was rebuilt"
    );
    assert!(
        records(&pool).await.iter().all(Option::is_some),
        "a definition is not recorded"
    );

    let oids_before = oids(&pool).await;
    let again = migrate::apply(&db, &MigrateOptions::default()).await.unwrap();
    assert_eq!(sorted(again.indexes_valid), all_names());
    assert_eq!(oids_before, oids(&pool).await, "a second run rebuilt an index");
}

#[sqlx::test(migrations = false)]
async fn a_run_interrupted_while_replacing_an_index_is_finished_by_the_next(pool: PgPool) {
    // Stopped after the new definition was built and the old index dropped, before the rename;
    // and a half-built staging index next to a current one.
    let interrupted = "ALTER INDEX idx_tasks_search RENAME TO idx_tasks_search_next;
         CREATE INDEX idx_users_email_active_next ON users (email);
         UPDATE pg_index SET indisvalid = false
           WHERE indexrelid = 'idx_users_email_active_next'::regclass;";
    let db = migrated_then(&pool, interrupted).await;
    let staged = oid(&pool, "idx_tasks_search_next").await;

    let summary = migrate::apply(&db, &MigrateOptions::default()).await.unwrap();
    assert_eq!(summary.indexes_created, ["idx_tasks_search"]);
    assert_eq!(
        oid(&pool, "idx_tasks_search").await,
        staged,
        "the complete build was not reused"
    );
    assert_eq!(
        index_rows(&pool).await,
        expected_rows(),
        "a staging index was left behind"
    );
}

#[sqlx::test(migrations = false)]
async fn an_index_marked_invalid_is_dropped_and_rebuilt(pool: PgPool) {
    let invalidate = "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'idx_tasks_search'::regclass";
    let db = migrated_then(&pool, invalidate).await;
    let before = oid(&pool, "idx_tasks_search").await;

    let summary = migrate::apply(&db, &MigrateOptions::default()).await.unwrap();
    assert_eq!(summary.indexes_repaired, vec!["idx_tasks_search"]);
    assert_eq!(summary.indexes_valid.len(), EXPECTED.len() - 1);
    assert!(summary.indexes_created.is_empty());
    assert_ne!(oid(&pool, "idx_tasks_search").await, before, "not rebuilt");
    assert!(index_rows(&pool).await.iter().all(|(_, _, valid)| *valid));
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
    let left = index_rows(&pool).await;
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
    assert_eq!(index_rows(&pool).await, expected_rows());
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
    assert!(index_rows(&pool).await.iter().all(|(_, _, valid)| *valid));
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
    assert_eq!(line["indexesCreated"].as_array().unwrap().len(), EXPECTED.len());
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
