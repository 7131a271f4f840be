//! Configuration from flags and environment. Secrets are wrapped so that they cannot be printed.
use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Args;
use secrecy::{ExposeSecret, SecretString};

/// How to reach PostgreSQL and how to size the connection pool.
#[derive(Debug, Clone, Args)]
pub struct DbConfig {
    /// PostgreSQL URL, e.g. postgres://user:password@host:5432/db. Never logged.
    #[arg(long = "database-url", env = "DATABASE_URL", hide_env_values = true)]
    pub url: SecretString,
    /// Connections the pool keeps open even when idle.
    #[arg(long = "db-pool-min", env = "DB_POOL_MIN", default_value_t = 2)]
    pub pool_min: u32,
    /// Most connections the pool opens.
    #[arg(long = "db-pool-max", env = "DB_POOL_MAX", default_value_t = 10)]
    pub pool_max: u32,
    /// How long a request waits for a free connection before it fails, in milliseconds.
    #[arg(
        long = "db-acquire-timeout-ms",
        env = "DB_ACQUIRE_TIMEOUT_MS",
        default_value_t = 3000
    )]
    pub acquire_timeout_ms: u64,
    /// How long an idle connection above the minimum is kept, in seconds.
    #[arg(long = "db-idle-timeout-s", env = "DB_IDLE_TIMEOUT_S", default_value_t = 600)]
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

    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_s)
    }

    pub fn slow_query(&self) -> Duration {
        Duration::from_millis(self.slow_query_ms)
    }
}

/// Settings of the HTTP server.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Redis URL for the shared cache and job queues. Never logged.
    #[arg(long = "redis-url", env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<SecretString>,
    /// File with pool settings that is watched and applied live (format in docs/contract.md).
    #[arg(long = "tuning-file", env = "TUNING_FILE")]
    pub tuning_file: Option<PathBuf>,
    /// Largest accepted request body, in bytes.
    #[arg(long = "body-limit", env = "BODY_LIMIT_BYTES", default_value_t = 1024 * 1024)]
    pub body_limit: usize,
    /// How long in-flight requests may take to finish after a shutdown signal, in seconds.
    #[arg(long = "shutdown-grace-s", env = "SHUTDOWN_GRACE_S", default_value_t = 25)]
    pub shutdown_grace_s: u64,
    /// Cache, memory guard, pool telemetry and dashboard settings.
    #[command(flatten)]
    pub cache: crate::cache::config::CacheConfig,
}
