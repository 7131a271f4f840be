//! `perfstack-app migrate`: schema migrations, then the indexes, built concurrently, repaired
//! when a failed build left them INVALID and rebuilt when their definition changed
//! ([`index_builds`]).
//!
//! Indexes are not in the sqlx migrations because `CREATE INDEX CONCURRENTLY` cannot run inside a
//! transaction. They are built one at a time on a dedicated connection with a `lock_timeout`, under
//! a session advisory lock so that two migrate runs never race on the same index. What a run did is
//! the contract's [`MigrationSummary`] (docs/contract.md), reported by `cli.rs`.
mod index_builds;

use std::time::Duration;

use perfstack_contract::{migration::MigrationSummary, tuning::PoolSettings};
use sqlx::postgres::PgConnectOptions;

use super::{Db, indexes::IndexSpec};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Advisory lock key held while indexes are checked and built ("perfstk" in ASCII).
const INDEX_LOCK_KEY: i64 = 0x0070_6572_6673_746b;

/// How the index builds behave.
#[derive(Debug, Clone, Copy)]
pub struct MigrateOptions {
    /// Longest wait for a table lock before an index build gives up (and is retried).
    pub lock_timeout: Duration,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        Self {
            lock_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("schema migrations failed")]
    Schema(#[source] sqlx::Error),
    #[error("could not read the migration state")]
    State(#[source] sqlx::Error),
    #[error("could not build index {index}")]
    Index {
        index: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

impl MigrateError {
    /// Wraps a failed step on the index `spec` (for `map_err`).
    fn on_index(spec: &IndexSpec) -> impl FnOnce(sqlx::Error) -> Self {
        let index = spec.name;
        move |source| Self::Index { index, source }
    }
}

/// Applies pending migrations and makes every index of [`super::indexes::all`] exist, be valid
/// and have its current definition.
pub async fn apply(db: &Db, opts: &MigrateOptions) -> Result<MigrationSummary, MigrateError> {
    let before = applied_migrations(db).await.map_err(MigrateError::State)?;
    db.timed(
        "migrate.schema",
        "<sqlx migrations in app/migrations>",
        |pool| async move {
            MIGRATOR
                .run(&pool)
                .await
                .map_err(|err| sqlx::Error::Migrate(Box::new(err)))
        },
    )
    .await
    .map_err(MigrateError::Schema)?;
    let after = applied_migrations(db).await.map_err(MigrateError::State)?;
    let mut summary = MigrationSummary {
        migrations_applied: u32::try_from(after.saturating_sub(before)).unwrap_or(u32::MAX),
        ..MigrationSummary::default()
    };

    let ddl = ddl_connection(db, opts);
    lock(&ddl, true).await.map_err(MigrateError::State)?;
    let result = index_builds::ensure_all(&ddl, &mut summary).await;
    let unlocked = lock(&ddl, false).await;
    ddl.pool().close().await;
    result?;
    unlocked.map_err(MigrateError::State)?;
    Ok(summary)
}

/// One connection with a `lock_timeout`, so that a build never queues behind long transactions
/// while blocking writers behind itself.
fn ddl_connection(db: &Db, opts: &MigrateOptions) -> Db {
    let lock_ms = opts.lock_timeout.as_millis().to_string();
    let connect: PgConnectOptions = db
        .connect_options()
        .clone()
        .application_name("perfstack-migrate")
        .options([("lock_timeout", lock_ms.as_str()), ("statement_timeout", "0")]);
    let settings = PoolSettings {
        min_connections: 0,
        max_connections: 1,
        acquire_timeout_ms: 30_000,
        idle_timeout_seconds: 600,
    };
    db.derive(connect, &settings)
}

async fn lock(ddl: &Db, take: bool) -> Result<(), sqlx::Error> {
    // language=PostgreSQL
    let sql = if take {
        "SELECT pg_advisory_lock($1)"
    } else {
        "SELECT pg_advisory_unlock($1)"
    };
    ddl.execute("migrate.lock", sqlx::query(sql).bind(INDEX_LOCK_KEY))
        .await
        .map(drop)
}

/// Successful schema migrations recorded so far (0 before the first run).
async fn applied_migrations(db: &Db) -> Result<i64, sqlx::Error> {
    // language=PostgreSQL
    let exists = "SELECT to_regclass('_sqlx_migrations') IS NOT NULL";
    if !db.fetch_value::<bool>("migrate.has_history", exists).await? {
        return Ok(0);
    }
    // language=PostgreSQL
    let sql = "SELECT count(*) FROM _sqlx_migrations WHERE success";
    db.fetch_value("migrate.applied", sql).await
}
