//! Flags of the cache, the memory guard and the pool telemetry (flattened into `serve`).
use std::time::Duration;

use clap::Args;

use crate::db::totals::{self, TotalsSettings};

#[derive(Debug, Clone, Args)]
pub struct CacheConfig {
    /// How long an entry stays in the in-process (L1) cache, in seconds (at most 300).
    #[arg(long = "cache-l1-ttl-s", env = "CACHE_L1_TTL_S", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub l1_ttl_s: u64,
    /// Most bytes of serialized entries the L1 cache holds.
    #[arg(long = "cache-l1-max-bytes", env = "CACHE_L1_MAX_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub l1_max_bytes: u64,
    /// How long an entry stays in Redis (L2), in seconds.
    #[arg(long = "cache-l2-ttl-s", env = "CACHE_L2_TTL_S", default_value_t = 3600)]
    pub l2_ttl_s: u64,
    /// Timeout of one Redis command, in milliseconds; slower Redis counts as down.
    #[arg(
        long = "cache-redis-timeout-ms",
        env = "CACHE_REDIS_TIMEOUT_MS",
        default_value_t = 50
    )]
    pub redis_timeout_ms: u64,
    /// Resident memory above which the memory guard clears the L1 cache, in bytes (0: never).
    #[arg(long = "memory-limit-bytes", env = "MEMORY_LIMIT_BYTES", default_value_t = 0)]
    pub memory_limit_bytes: u64,
    /// How often the memory guard samples resident memory, in milliseconds.
    #[arg(long = "memory-sample-ms", env = "MEMORY_SAMPLE_MS", default_value_t = 5000)]
    pub memory_sample_ms: u64,
    /// Waiting database acquirers from which a warning is logged (0: never).
    #[arg(long = "db-waiters-warning", env = "DB_WAITERS_WARNING", default_value_t = 5)]
    pub db_waiters_warning: u32,
    /// How often the tuning file is read, in milliseconds.
    #[arg(long = "tuning-poll-ms", env = "TUNING_POLL_MS", default_value_t = 2000)]
    pub tuning_poll_ms: u64,
    /// How long the performance dashboard JSON is reused, in milliseconds.
    #[arg(
        long = "dashboard-cache-ms",
        env = "DASHBOARD_CACHE_MS",
        default_value_t = 2000
    )]
    pub dashboard_cache_ms: u64,
    /// How long the `total` of an offset-paginated list is reused, per table and filter set, in
    /// milliseconds (0: count on every request). Writes through this process retire it (see
    /// `--count-cache-write-refresh-ms`).
    #[arg(long = "count-cache-ttl-ms", env = "COUNT_CACHE_TTL_MS", default_value_t = totals::DEFAULT_TTL_MS,
          value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub count_cache_ttl_ms: u64,
    /// Most list totals kept (distinct table + filter combinations).
    #[arg(long = "count-cache-max-entries", env = "COUNT_CACHE_MAX_ENTRIES",
          default_value_t = totals::DEFAULT_MAX_ENTRIES)]
    pub count_cache_max_entries: u64,
    /// Writes through this process retire a table's list totals at most once per this many
    /// milliseconds: a write after a quiet spell shows in the next total, writes in a busy stream
    /// within this period (0: every write retires them at once, costing a count per write).
    #[arg(long = "count-cache-write-refresh-ms", env = "COUNT_CACHE_WRITE_REFRESH_MS",
          default_value_t = totals::DEFAULT_WRITE_REFRESH_MS,
          value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub count_cache_write_refresh_ms: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            l1_ttl_s: 60,
            l1_max_bytes: 64 * 1024 * 1024,
            l2_ttl_s: 3600,
            redis_timeout_ms: 50,
            memory_limit_bytes: 0,
            memory_sample_ms: 5000,
            db_waiters_warning: crate::db::DEFAULT_WAITER_WARNING,
            tuning_poll_ms: 2000,
            dashboard_cache_ms: 2000,
            count_cache_ttl_ms: totals::DEFAULT_TTL_MS,
            count_cache_max_entries: totals::DEFAULT_MAX_ENTRIES,
            count_cache_write_refresh_ms: totals::DEFAULT_WRITE_REFRESH_MS,
        }
    }
}

impl CacheConfig {
    pub fn l1_ttl(&self) -> Duration {
        Duration::from_secs(self.l1_ttl_s.min(300))
    }
    pub fn l2_ttl(&self) -> Duration {
        Duration::from_secs(self.l2_ttl_s.max(1))
    }
    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms.max(1))
    }
    /// Settings of the list totals cache.
    pub fn count_cache(&self) -> TotalsSettings {
        TotalsSettings {
            ttl: Duration::from_millis(self.count_cache_ttl_ms.min(60_000)),
            max_entries: self.count_cache_max_entries,
            write_refresh: Duration::from_millis(self.count_cache_write_refresh_ms.min(60_000)),
        }
    }
}
