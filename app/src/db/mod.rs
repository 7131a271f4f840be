//! Database access: the pool handle every query goes through, and the query monitor that times them.
pub mod indexes;
pub mod migrate;
pub mod page;
pub mod projects;
pub mod seed;
pub mod tasks;
pub mod users;

use std::{future::Future, sync::Arc, time::Instant};

use arc_swap::ArcSwap;
use sqlx::{
    ConnectOptions, PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::config::DbConfig;

/// Pool settings that can change while the app runs (see the tuning file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PoolSettings {
    pub min_connections: u32,
    pub max_connections: u32,
    pub acquire_timeout_ms: u64,
    pub idle_timeout_s: u64,
}

impl PoolSettings {
    pub fn from_config(cfg: &DbConfig) -> Self {
        Self {
            min_connections: cfg.pool_min,
            max_connections: cfg.pool_max,
            acquire_timeout_ms: cfg.acquire_timeout_ms,
            idle_timeout_s: cfg.idle_timeout_s,
        }
    }

    fn pool_options(&self) -> PgPoolOptions {
        PgPoolOptions::new()
            .min_connections(self.min_connections)
            .max_connections(self.max_connections)
            .acquire_timeout(std::time::Duration::from_millis(self.acquire_timeout_ms))
            .idle_timeout(std::time::Duration::from_secs(self.idle_timeout_s))
    }
}

/// Errors of connecting; query errors stay `sqlx::Error`.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("the database URL is not valid")]
    InvalidUrl(#[source] sqlx::Error),
    #[error("could not connect to PostgreSQL")]
    Connect(#[source] sqlx::Error),
}

/// The shared handle to PostgreSQL. Cheap to clone. The pool inside can be replaced at run time
/// (live resizing); callers take the current pool per query with [`Db::pool`].
#[derive(Clone)]
pub struct Db {
    pool: Arc<ArcSwap<PgPool>>,
    connect: PgConnectOptions,
    monitor: QueryMonitor,
}

impl Db {
    /// Connects with the settings from configuration and checks the connection once.
    pub async fn connect(cfg: &DbConfig) -> Result<Self, ConnectError> {
        let connect: PgConnectOptions = cfg.expose_url().parse().map_err(ConnectError::InvalidUrl)?;
        // The query monitor logs slow queries (truncated, without values); sqlx's own statement
        // logging would repeat them in full.
        let connect = connect
            .log_statements(log::LevelFilter::Off)
            .log_slow_statements(log::LevelFilter::Off, std::time::Duration::from_secs(3600));
        let settings = PoolSettings::from_config(cfg);
        let pool = settings
            .pool_options()
            .connect_with(connect.clone())
            .await
            .map_err(ConnectError::Connect)?;
        Ok(Self {
            pool: Arc::new(ArcSwap::from_pointee(pool)),
            connect,
            monitor: QueryMonitor::new(cfg.slow_query()),
        })
    }

    /// Wraps an existing pool (tests, tools), keeping its connect options for replacements.
    pub fn from_pool(pool: PgPool, monitor: QueryMonitor) -> Self {
        let connect = PgConnectOptions::clone(&pool.connect_options());
        Self {
            pool: Arc::new(ArcSwap::from_pointee(pool)),
            connect,
            monitor,
        }
    }

    /// A separate handle with its own (lazily connected) pool and the same monitor, e.g. a
    /// single session with other runtime parameters for DDL.
    pub fn derive(&self, connect: PgConnectOptions, settings: &PoolSettings) -> Self {
        let pool = settings.pool_options().connect_lazy_with(connect.clone());
        Self {
            pool: Arc::new(ArcSwap::from_pointee(pool)),
            connect,
            monitor: self.monitor.clone(),
        }
    }

    /// The pool in force now.
    pub fn pool(&self) -> PgPool {
        PgPool::clone(&self.pool.load())
    }

    /// Options used to open new connections (for a replacement pool).
    pub fn connect_options(&self) -> &PgConnectOptions {
        &self.connect
    }

    /// Builds a pool with `settings` (connections open lazily).
    pub fn build_pool(&self, settings: &PoolSettings) -> PgPool {
        settings.pool_options().connect_lazy_with(self.connect.clone())
    }

    /// Puts `pool` in force and returns the one it replaced.
    pub fn swap_pool(&self, pool: PgPool) -> PgPool {
        PgPool::clone(&self.pool.swap(Arc::new(pool)))
    }

    pub fn monitor(&self) -> &QueryMonitor {
        &self.monitor
    }

    /// Runs one database operation through the query monitor: timed per `op` (a stable
    /// operation name such as `users.get`), logged when slow with `sql` truncated and without
    /// parameter values.
    pub async fn timed<T, F, Fut>(&self, op: &'static str, sql: &str, f: F) -> Result<T, sqlx::Error>
    where
        F: FnOnce(PgPool) -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let start = Instant::now();
        let result = f(self.pool()).await;
        self.monitor.observe(op, sql, start.elapsed(), result.is_ok());
        result
    }
}

/// Times queries and reports slow ones.
#[derive(Clone, Debug)]
pub struct QueryMonitor {
    slow: std::time::Duration,
}

/// Longest statement text that goes into a slow-query log line.
const LOGGED_STATEMENT_CHARS: usize = 200;

impl QueryMonitor {
    pub fn new(slow: std::time::Duration) -> Self {
        Self { slow }
    }

    pub fn slow_threshold(&self) -> std::time::Duration {
        self.slow
    }

    /// Records one finished operation.
    pub fn observe(&self, op: &'static str, sql: &str, elapsed: std::time::Duration, ok: bool) {
        if elapsed >= self.slow {
            let statement = loggable_statement(sql);
            tracing::warn!(
                operation = op,
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                ok,
                statement,
                "slow query"
            );
        }
    }
}

/// The statement as it goes into a log line: whitespace collapsed, cut to
/// [`LOGGED_STATEMENT_CHARS`] characters. Statements carry `$n` placeholders, never values.
pub fn loggable_statement(sql: &str) -> String {
    let collapsed = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut chars = collapsed.chars();
    let mut out: String = chars.by_ref().take(LOGGED_STATEMENT_CHARS).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_statements_are_collapsed_and_truncated() {
        assert_eq!(
            loggable_statement("SELECT *\n   FROM users\tWHERE id = $1"),
            "SELECT * FROM users WHERE id = $1"
        );
        let long = format!("SELECT {} FROM t", "é, ".repeat(300));
        let logged = loggable_statement(&long);
        assert_eq!(logged.chars().count(), LOGGED_STATEMENT_CHARS + 1);
        assert!(logged.ends_with('…'));
    }
}
