//! `seed`: the demo dataset is deterministic, set-based (fast), and can be run again.
use std::time::{Duration, Instant};

use perfstack_app::db::{
    Db, QueryMonitor,
    migrate::{self, MigrateOptions},
    seed::{self, SeedError, SeedSizes},
};
use sqlx::PgPool;

/// A digest of every row of the three tables, ids included.
async fn fingerprint(pool: &PgPool) -> (i64, i64, i64, String) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM projects),
                (SELECT count(*) FROM tasks),
                md5((SELECT string_agg(u::text, '|' ORDER BY id) FROM users u)
                 || (SELECT string_agg(p::text, '|' ORDER BY id) FROM projects p)
                 || (SELECT string_agg(t::text, '|' ORDER BY id) FROM tasks t))",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = false)]
async fn seed_is_deterministic_fast_and_rerunnable(pool: PgPool) {
    let db = Db::from_pool(pool.clone(), QueryMonitor::new(Duration::from_secs(60)));
    migrate::apply(&db, &MigrateOptions::default()).await.unwrap();
    let sizes = SeedSizes {
        users: 10_000,
        projects: 2_000,
        tasks: 100_000,
    };
    let started = Instant::now();
    seed::apply(&db, sizes).await.unwrap();
    let took = started.elapsed();
    let first = fingerprint(&pool).await;
    assert_eq!((first.0, first.1, first.2), (10_000, 2_000, 100_000));
    // "in seconds" on a shared 2-core machine, debug build
    assert!(took < Duration::from_secs(30), "seed took {took:?}");

    // a second run replaces the data with the same rows (and ids)
    seed::apply(&db, sizes).await.unwrap();
    assert_eq!(fingerprint(&pool).await, first);

    // the data is varied enough to exercise the filters: every status and priority per project
    let (statuses, priorities, unassigned, undated): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(DISTINCT status), count(DISTINCT priority),
                count(*) FILTER (WHERE assignee_id IS NULL), count(*) FILTER (WHERE due_date IS NULL)
         FROM tasks WHERE project_id = 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((statuses, priorities), (4, 5));
    assert!(unassigned > 0 && undated > 0);

    let err = seed::apply(
        &db,
        SeedSizes {
            users: 0,
            projects: 5,
            tasks: 5,
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SeedError::Empty));
}
