//! `perfstack-app seed`: a deterministic demo dataset made with set-based SQL.
//!
//! Every value is a function of the row number, so two runs with the same sizes produce the same
//! rows with the same ids. A run replaces what is there (TRUNCATE ... RESTART IDENTITY), in one
//! transaction, so `make run` can be repeated.
use serde::Serialize;

use super::Db;

/// How many rows of each kind to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SeedSizes {
    pub users: u32,
    pub projects: u32,
    pub tasks: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("projects and tasks need at least one user and one project")]
    Empty,
    #[error("seeding failed")]
    Database(#[from] sqlx::Error),
}

// language=PostgreSQL
const TRUNCATE: &str = "TRUNCATE tasks, projects, users RESTART IDENTITY CASCADE";

// language=PostgreSQL
const USERS: &str = "\
INSERT INTO users (email, username, first_name, last_name, role, status, created_at, updated_at)
SELECT 'user' || i || '@example.com',
       'User' || i,
       (ARRAY['Ada','Grace','Alan','Edsger','Barbara','Ken','Linus','Margaret'])[1 + i % 8],
       (ARRAY['Lovelace','Hopper','Turing','Dijkstra','Liskov','Thompson','Torvalds','Hamilton'])[1 + (i / 8) % 8],
       CASE WHEN i % 50 = 0 THEN 'admin' WHEN i % 10 = 0 THEN 'manager' ELSE 'member' END,
       CASE WHEN i % 10 < 8 THEN 'active' WHEN i % 10 = 8 THEN 'inactive' ELSE 'suspended' END,
       timestamptz '2025-01-01 00:00:00+00' + i * interval '7 minutes',
       timestamptz '2025-01-01 00:00:00+00' + i * interval '7 minutes'
FROM generate_series(1, $1::bigint) AS i";

// language=PostgreSQL
const PROJECTS: &str = "\
INSERT INTO projects (owner_id, name, description, status, created_at, updated_at)
SELECT 1 + (i * 7919) % $2::bigint,
       'Project ' || i,
       'Demo project number ' || i,
       CASE WHEN i % 10 < 7 THEN 'active' WHEN i % 10 < 9 THEN 'completed' ELSE 'archived' END,
       timestamptz '2025-01-01 00:00:00+00' + i * interval '53 minutes',
       timestamptz '2025-01-01 00:00:00+00' + i * interval '53 minutes'
FROM generate_series(1, $1::bigint) AS i";

// language=PostgreSQL
const TASKS: &str = "\
INSERT INTO tasks (project_id, title, description, status, priority, assignee_id, due_date, created_at, updated_at)
SELECT 1 + i % $2::bigint,
       (ARRAY['Fix','Write','Review','Deploy','Benchmark','Document'])[1 + i % 6] || ' '
         || (ARRAY['login flow','index migration','cache layer','export','dashboard','pool tuning','billing'])[1 + (i / 6) % 7]
         || ' #' || i,
       CASE WHEN i % 4 = 0 THEN NULL ELSE 'Details for task ' || i END,
       (ARRAY['todo','in_progress','review','done'])[1 + (i + i / $2::bigint) % 4],
       ((i / 3 + (i / $2::bigint) * 7) % 5)::smallint,
       CASE WHEN i % 10 = 0 THEN NULL ELSE 1 + (i * 104729) % $3::bigint END,
       CASE WHEN i % 7 = 0 THEN NULL ELSE date '2026-01-01' + ((i * 13) % 365)::int END,
       timestamptz '2025-01-01 00:00:00+00' + i * interval '1 minute',
       timestamptz '2025-01-01 00:00:00+00' + i * interval '1 minute'
FROM generate_series(1, $1::bigint) AS i";

/// Replaces the contents of the three tables with the demo dataset, then vacuums and analyses them.
pub async fn apply(db: &Db, sizes: SeedSizes) -> Result<(), SeedError> {
    if (sizes.projects > 0 && sizes.users == 0) || (sizes.tasks > 0 && sizes.projects == 0) {
        return Err(SeedError::Empty);
    }
    let (users, projects, tasks) = (
        i64::from(sizes.users),
        i64::from(sizes.projects),
        i64::from(sizes.tasks),
    );
    db.timed("seed.insert", TASKS, |pool| async move {
        let mut tx = pool.begin().await?;
        sqlx::query(TRUNCATE).execute(&mut *tx).await?;
        sqlx::query(USERS).bind(users).execute(&mut *tx).await?;
        sqlx::query(PROJECTS)
            .bind(projects)
            .bind(users.max(1))
            .execute(&mut *tx)
            .await?;
        sqlx::query(TASKS)
            .bind(tasks)
            .bind(projects.max(1))
            .bind(users.max(1))
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    })
    .await?;
    // VACUUM as well: it marks the fresh pages all-visible, so the index-only scans the plans
    // rely on (docs/indexes.md) need not visit the table.
    // language=PostgreSQL
    let vacuum = "VACUUM (ANALYZE) users, projects, tasks";
    db.timed("seed.vacuum_analyze", vacuum, |pool| async move {
        sqlx::raw_sql(vacuum).execute(&pool).await.map(drop)
    })
    .await?;
    Ok(())
}
