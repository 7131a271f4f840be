//! Figures PostgreSQL keeps about itself, for the performance dashboard: this database's
//! counters (pg_stat_database), its sessions (pg_stat_activity) and, when the extension is
//! installed, the most expensive statements (pg_stat_statements).
use serde::Serialize;
use sqlx::FromRow;

use super::Db;

#[derive(Debug, Clone, Serialize, FromRow, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseCounters {
    pub commits: i64,
    pub rollbacks: i64,
    pub blocks_read: i64,
    pub blocks_hit: i64,
    pub cache_hit_ratio: f64,
    pub rows_returned: i64,
    pub rows_fetched: i64,
    pub rows_inserted: i64,
    pub rows_updated: i64,
    pub rows_deleted: i64,
    pub deadlocks: i64,
    pub temp_bytes: i64,
    pub size_bytes: i64,
}

#[derive(Debug, Clone, Serialize, FromRow, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SessionCounts {
    pub total: i64,
    pub active: i64,
    pub idle: i64,
    pub idle_in_transaction: i64,
    pub waiting_on_lock: i64,
    pub longest_query_seconds: f64,
}

#[derive(Debug, Clone, Serialize, FromRow, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StatementFigures {
    /// Normalised statement text (constants replaced by `$n` by PostgreSQL), truncated. Only
    /// plannable statements: utility statements (`ALTER ROLE ... PASSWORD ...`) keep their
    /// literals, so they are never shown.
    pub query: String,
    pub calls: i64,
    pub total_ms: f64,
    pub mean_ms: f64,
    pub rows: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseFigures {
    pub counters: DatabaseCounters,
    pub sessions: SessionCounts,
    /// `None` when pg_stat_statements is not installed in this database.
    pub top_statements: Option<Vec<StatementFigures>>,
}

// language=PostgreSQL
const COUNTERS_SQL: &str = "SELECT xact_commit AS commits, xact_rollback AS rollbacks,
       blks_read AS blocks_read, blks_hit AS blocks_hit,
       COALESCE(blks_hit::float8 / NULLIF(blks_hit + blks_read, 0), 0) AS cache_hit_ratio,
       tup_returned AS rows_returned, tup_fetched AS rows_fetched, tup_inserted AS rows_inserted,
       tup_updated AS rows_updated, tup_deleted AS rows_deleted, deadlocks, temp_bytes,
       pg_database_size(datid) AS size_bytes
  FROM pg_stat_database WHERE datname = current_database()";

// language=PostgreSQL
const SESSIONS_SQL: &str = "SELECT count(*) AS total,
       count(*) FILTER (WHERE state = 'active') AS active,
       count(*) FILTER (WHERE state = 'idle') AS idle,
       count(*) FILTER (WHERE state LIKE 'idle in transaction%') AS idle_in_transaction,
       count(*) FILTER (WHERE wait_event_type = 'Lock') AS waiting_on_lock,
       COALESCE(EXTRACT(EPOCH FROM max(now() - query_start) FILTER (WHERE state = 'active'))::float8, 0)
         AS longest_query_seconds
  FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'";

// language=PostgreSQL
const HAS_STATEMENTS_SQL: &str =
    "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements')";

// language=PostgreSQL
const TOP_STATEMENTS_SQL: &str = "SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 300) AS query,
       calls, total_exec_time AS total_ms, mean_exec_time AS mean_ms, rows
  FROM pg_stat_statements
 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND query ~* '^\\s*(select|insert|update|delete|with)\\M'
 ORDER BY total_exec_time DESC LIMIT $1";

/// Reads all three views. Statements are skipped (not failed) when the extension is missing
/// or cannot be read.
pub async fn read(db: &Db, top: i64) -> Result<DatabaseFigures, sqlx::Error> {
    let counters = db.fetch_row("stats.database", COUNTERS_SQL).await?;
    let sessions = db.fetch_row("stats.activity", SESSIONS_SQL).await?;
    let installed: bool = db.fetch_value("stats.has_statements", HAS_STATEMENTS_SQL).await?;
    let top_statements = if installed {
        db.fetch_all::<StatementFigures>("stats.statements", sqlx::query_as(TOP_STATEMENTS_SQL).bind(top))
            .await
            .map_err(|err| tracing::debug!(error = %err, "pg_stat_statements not readable"))
            .ok()
    } else {
        None
    };
    Ok(DatabaseFigures {
        counters,
        sessions,
        top_statements,
    })
}

// language=PostgreSQL
const SCOPE_SQL: &str =
    "SELECT current_database() || '@' || oid::text FROM pg_database WHERE datname = current_database()";

/// The cache scope of this database: `host:port/name@oid`. The same on every replica of one app;
/// different for another database, and for a database dropped and made again under the same
/// name (new oid), so cached rows never outlive the database they came from.
pub async fn cache_scope(db: &Db) -> Result<String, sqlx::Error> {
    let connect = db.connect_options();
    let (host, port) = (connect.get_host().to_owned(), connect.get_port());
    let name: String = db.fetch_value("stats.scope", SCOPE_SQL).await?;
    Ok(format!("{host}:{port}/{name}"))
}
