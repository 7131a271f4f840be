//! Every index of [`indexes::all`] made to exist, be valid and have its current definition, one
//! at a time and concurrently (writes go on during each build).
//!
//! - Missing: built. INVALID (a build that failed half-way): dropped and built again.
//! - Valid with an older definition (its record says so, see [`IndexSpec::matches`]): the new
//!   definition is built under a staging name, then the old index is dropped and the new one
//!   renamed, so queries never lack an index under that name for longer than the rename.
//! - A staging index left by an interrupted run is reused when it is complete, else dropped.
//!
//! Every step is idempotent: a run that stops anywhere is finished by the next one.
use std::time::Duration;

use perfstack_contract::migration::MigrationSummary;

use super::MigrateError;
use crate::db::{
    Db,
    indexes::{self, IndexSpec},
};

/// SQLSTATE of `lock_not_available`, raised when `lock_timeout` expires.
const LOCK_NOT_AVAILABLE: &str = "55P03";
/// How often an index build that timed out waiting for a lock is tried.
const BUILD_ATTEMPTS: u32 = 3;

/// What was found under one index name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Found {
    Missing,
    Invalid,
    /// Valid, with the definition `migrate` recorded on it (`None` for none).
    Valid {
        recorded: Option<String>,
    },
}

impl Found {
    /// Whether this is a complete build of `spec`'s current definition.
    fn is_current(&self, spec: &IndexSpec) -> bool {
        matches!(self, Self::Valid { recorded } if spec.matches(recorded.as_deref()))
    }
}

/// Brings every index to its current definition on `ddl` (one connection with a lock timeout,
/// under the migration's advisory lock) and notes what it did in `summary`.
pub(super) async fn ensure_all(ddl: &Db, summary: &mut MigrationSummary) -> Result<(), MigrateError> {
    for spec in indexes::all() {
        ensure(ddl, spec, summary).await?;
    }
    Ok(())
}

async fn ensure(ddl: &Db, spec: &IndexSpec, summary: &mut MigrationSummary) -> Result<(), MigrateError> {
    let staging = spec.staging_name();
    let current = found(ddl, spec, spec.name).await?;
    let staged = found(ddl, spec, &staging).await?;
    let name = spec.name.to_owned();
    match current {
        Found::Valid { recorded } if spec.matches(recorded.as_deref()) => {
            if recorded.is_none() {
                // Built by a version that recorded nothing: record it now, so a later change of
                // its definition is seen.
                run(ddl, spec, "migrate.comment_index", &spec.comment_sql(spec.name)).await?;
            }
            if staged != Found::Missing {
                run(ddl, spec, "migrate.drop_index", &IndexSpec::drop_sql(&staging)).await?;
            }
            summary.indexes_valid.push(name);
        }
        Found::Valid { .. } => {
            tracing::info!(
                index = spec.name,
                "index has an older definition; building the new one"
            );
            if !staged.is_current(spec) {
                build_recorded(ddl, spec, &staging, &staged).await?;
            }
            run(ddl, spec, "migrate.drop_index", &IndexSpec::drop_sql(spec.name)).await?;
            rename(ddl, spec, &staging).await?;
            summary.indexes_repaired.push(name);
        }
        Found::Missing | Found::Invalid => {
            let invalid = current == Found::Invalid;
            if invalid {
                tracing::warn!(index = spec.name, "index is INVALID; dropping and rebuilding");
                run(ddl, spec, "migrate.drop_index", &IndexSpec::drop_sql(spec.name)).await?;
            }
            if staged.is_current(spec) {
                rename(ddl, spec, &staging).await?;
            } else {
                if staged != Found::Missing {
                    run(ddl, spec, "migrate.drop_index", &IndexSpec::drop_sql(&staging)).await?;
                }
                build_recorded(ddl, spec, spec.name, &Found::Missing).await?;
            }
            if invalid {
                summary.indexes_repaired.push(name);
            } else {
                summary.indexes_created.push(name);
            }
        }
    }
    Ok(())
}

/// The index called `name` (the spec's own or its staging name).
async fn found(ddl: &Db, spec: &IndexSpec, name: &str) -> Result<Found, MigrateError> {
    // language=PostgreSQL
    let sql = "SELECT i.indisvalid AND i.indisready, obj_description(c.oid, 'pg_class') \
               FROM pg_index i \
               JOIN pg_class c ON c.oid = i.indexrelid \
               JOIN pg_namespace n ON n.oid = c.relnamespace \
               WHERE c.relname = $1 AND n.nspname = current_schema()";
    let row = ddl
        .fetch_optional::<(bool, Option<String>)>("migrate.index_state", sqlx::query_as(sql).bind(name))
        .await
        .map_err(MigrateError::on_index(spec))?;
    Ok(match row {
        None => Found::Missing,
        Some((false, _)) => Found::Invalid,
        Some((true, recorded)) => Found::Valid { recorded },
    })
}

/// Builds `spec` under `name` (dropping what `existing` says is there first) and records its
/// definition on it.
async fn build_recorded(
    ddl: &Db,
    spec: &IndexSpec,
    name: &str,
    existing: &Found,
) -> Result<(), MigrateError> {
    if *existing != Found::Missing {
        run(ddl, spec, "migrate.drop_index", &IndexSpec::drop_sql(name)).await?;
    }
    build(ddl, spec, name).await?;
    run(ddl, spec, "migrate.comment_index", &spec.comment_sql(name)).await
}

/// Builds one index concurrently, retrying when the build timed out waiting for a lock (the
/// failed build leaves an INVALID index behind, which is dropped first).
async fn build(ddl: &Db, spec: &IndexSpec, name: &str) -> Result<(), MigrateError> {
    let sql = &spec.create_sql(name);
    let mut attempt = 1;
    loop {
        let result = ddl
            .timed("migrate.create_index", sql, |pool| async move {
                sqlx::raw_sql(sql).execute(&pool).await.map(drop)
            })
            .await;
        match result {
            Ok(()) => return Ok(()),
            Err(err) if is_lock_timeout(&err) && attempt < BUILD_ATTEMPTS => {
                tracing::warn!(
                    index = name,
                    attempt,
                    "index build timed out waiting for a lock; retrying"
                );
                run(ddl, spec, "migrate.drop_index", &IndexSpec::drop_sql(name)).await?;
                tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
                attempt += 1;
            }
            Err(source) => return Err(MigrateError::on_index(spec)(source)),
        }
    }
}

/// Gives the staging index the spec's name (a catalogue change; the old index is gone by then).
async fn rename(ddl: &Db, spec: &IndexSpec, staging: &str) -> Result<(), MigrateError> {
    let sql = format!("ALTER INDEX {staging} RENAME TO {}", spec.name);
    run(ddl, spec, "migrate.rename_index", &sql).await
}

/// Runs one DDL statement about `spec`'s index, timed as `op`.
async fn run(ddl: &Db, spec: &IndexSpec, op: &'static str, sql: &str) -> Result<(), MigrateError> {
    ddl.timed(op, sql, |pool| async move {
        sqlx::raw_sql(sql).execute(&pool).await.map(drop)
    })
    .await
    .map_err(MigrateError::on_index(spec))
}

fn is_lock_timeout(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == LOCK_NOT_AVAILABLE)
}
