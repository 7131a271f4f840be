//! How to reach PostgreSQL and the pool's start values (every subcommand that touches the database).
use std::time::Duration;

use clap::Args;
use perfstack_contract::{env, tuning::PoolSettings};
use secrecy::{ExposeSecret, SecretString};

/// How to reach PostgreSQL and how to size the connection pool. The pool defaults are the
/// contract's (`PoolSettings::default()`); a tuning file overrides them live.
#[derive(Debug, Clone, Args)]
pub struct DbConfig {
    /// PostgreSQL URL, e.g. postgres://user:password@host:5432/db. Never logged.
    #[arg(long = "database-url", env = env::DATABASE_URL, hide_env_values = true)]
    pub url: SecretString,
    /// Connections the pool keeps open even when idle.
    #[arg(long = "db-pool-min", env = env::DB_POOL_MIN, default_value_t = PoolSettings::default().min_connections)]
    pub pool_min: u32,
    /// Most connections the pool opens.
    #[arg(long = "db-pool-max", env = env::DB_POOL_MAX, default_value_t = PoolSettings::default().max_connections)]
    pub pool_max: u32,
    /// How long a request waits for a free connection before it fails, in milliseconds.
    #[arg(long = "db-acquire-timeout-ms", env = env::DB_ACQUIRE_TIMEOUT_MS,
          default_value_t = PoolSettings::default().acquire_timeout_ms)]
    pub acquire_timeout_ms: u64,
    /// How long an idle connection above the minimum is kept, in seconds.
    #[arg(long = "db-idle-timeout-s", env = env::DB_IDLE_TIMEOUT_S,
          default_value_t = PoolSettings::default().idle_timeout_seconds)]
    pub idle_timeout_s: u64,
    /// Queries slower than this are logged as warnings, in milliseconds.
    #[arg(long = "slow-query-ms", env = "SLOW_QUERY_MS", default_value_t = 100)]
    pub slow_query_ms: u64,
}

impl DbConfig {
    /// The URL, for the one place that connects.
    pub fn expose_url(&self) -> &str {
        self.url.expose_secret()
    }

    /// The pool settings to start with.
    pub fn pool_settings(&self) -> PoolSettings {
        PoolSettings {
            min_connections: self.pool_min,
            max_connections: self.pool_max,
            acquire_timeout_ms: self.acquire_timeout_ms,
            idle_timeout_seconds: self.idle_timeout_s,
        }
    }

    pub fn slow_query(&self) -> Duration {
        Duration::from_millis(self.slow_query_ms)
    }
}
