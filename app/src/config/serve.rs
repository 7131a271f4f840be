//! The groups only `serve` reads: the HTTP server, the entity cache, the memory guard, the tuning
//! file, pool telemetry, the dashboard, list totals and `/health`; [`ServeConfig`] bundles them.
use std::{
    net::{Ipv4Addr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use clap::Args;
use perfstack_contract::{env, probes};
use secrecy::{ExposeSecret, SecretString};
use tower_http::CompressionLevel;

use super::{
    defaults,
    limits::{AuthConfig, ExportConfig, ReportLimitConfig, TaskInsertConfig},
};

/// Everything `serve` is configured with besides the database and the jobs, one group per concern.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    #[command(flatten)]
    pub server: ServerConfig,
    #[command(flatten)]
    pub cache: CacheConfig,
    #[command(flatten)]
    pub memory: MemoryGuardConfig,
    #[command(flatten)]
    pub tuning: TuningConfig,
    #[command(flatten)]
    pub pool: PoolTelemetryConfig,
    #[command(flatten)]
    pub dashboard: DashboardConfig,
    #[command(flatten)]
    pub totals: ListTotalsConfig,
    #[command(flatten)]
    pub health: HealthConfig,
    #[command(flatten)]
    pub exports: ExportConfig,
    #[command(flatten)]
    pub reports: ReportLimitConfig,
    #[command(flatten)]
    pub task_inserts: TaskInsertConfig,
    #[command(flatten)]
    pub auth: AuthConfig,
}

/// The HTTP server: where it listens, what it accepts, how it stops.
#[derive(Debug, Clone, Args)]
pub struct ServerConfig {
    /// Address to listen on.
    #[arg(long, env = env::LISTEN_ADDR,
          default_value_t = SocketAddr::from((Ipv4Addr::LOCALHOST, probes::DEFAULT_HTTP_PORT)))]
    pub listen: SocketAddr,
    /// Largest accepted request body, in bytes.
    #[arg(long = "body-limit", env = "BODY_LIMIT_BYTES", default_value_t = 1024 * 1024)]
    pub body_limit: usize,
    /// Longest a request may take until its response starts, in milliseconds; a slower one is
    /// answered 503 with Retry-After (an export's body is bounded by `--export-idle-timeout-ms`).
    #[arg(
        long = "request-timeout-ms",
        env = "REQUEST_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub request_timeout_ms: u64,
    /// Longest a client may take to send a request's headers, in milliseconds, counted from when
    /// the connection waits for a request (so it also closes keep-alive connections idle this
    /// long).
    #[arg(
        long = "header-read-timeout-ms",
        env = "HEADER_READ_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub header_read_timeout_ms: u64,
    /// After a shutdown signal, how long the process fails readiness but keeps serving (and
    /// accepting) while the Service's endpoints catch up, in seconds.
    #[arg(long = "drain-delay-s", env = "DRAIN_DELAY_S", default_value_t = 5)]
    pub drain_delay_s: u64,
    /// After the drain delay, how long in-flight requests may take to finish once the listener is
    /// closed, in seconds.
    #[arg(long = "shutdown-grace-s", env = "SHUTDOWN_GRACE_S", default_value_t = 15)]
    pub shutdown_grace_s: u64,
    /// Longest the database pool may take to close at the end, in milliseconds.
    #[arg(
        long = "pool-close-timeout-ms",
        env = "POOL_CLOSE_TIMEOUT_MS",
        default_value_t = 3_000
    )]
    pub pool_close_timeout_ms: u64,
    /// How hard gzip and brotli work on a compressed answer: `fastest`, `default` (each codec's
    /// own: gzip 6, brotli 4), `best`, or a level (gzip 1-9, brotli 0-11; a level past a codec's
    /// range is its nearest).
    #[arg(long = "compression-level", env = "COMPRESSION_LEVEL", default_value = "default",
          value_parser = parse_compression_level)]
    pub compression_level: CompressionLevel,
}

/// A `--compression-level` value.
fn parse_compression_level(raw: &str) -> Result<CompressionLevel, String> {
    match raw {
        "fastest" => Ok(CompressionLevel::Fastest),
        "default" => Ok(CompressionLevel::Default),
        "best" => Ok(CompressionLevel::Best),
        _ => match raw.parse::<i32>() {
            Ok(level) if (0..=11).contains(&level) => Ok(CompressionLevel::Precise(level)),
            _ => Err(format!(
                "{raw:?} is not fastest, default, best or a level from 0 to 11"
            )),
        },
    }
}

impl ServerConfig {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms.max(1))
    }
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms.max(1))
    }
    pub fn drain_delay(&self) -> Duration {
        Duration::from_secs(self.drain_delay_s)
    }
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_s)
    }
    pub fn pool_close_timeout(&self) -> Duration {
        Duration::from_millis(self.pool_close_timeout_ms)
    }
}

/// The entity cache: in-process L1, Redis L2 (the same Redis holds the job queues).
#[derive(Debug, Clone, Args)]
pub struct CacheConfig {
    /// Redis URL for the shared cache and job queues. Never logged.
    #[arg(long = "redis-url", env = env::REDIS_URL, hide_env_values = true)]
    pub redis_url: Option<SecretString>,
    /// Redis password, used when the URL carries none. Never logged.
    #[arg(long = "redis-password", env = env::REDIS_PASSWORD, hide_env_values = true)]
    pub redis_password: Option<SecretString>,
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
}

impl CacheConfig {
    /// The Redis URL with the password in it, for the places that connect.
    pub fn expose_redis_url(&self) -> Option<String> {
        let url = self.redis_url.as_ref()?;
        Some(super::redis::with_password(
            url.expose_secret(),
            self.redis_password.as_ref(),
        ))
    }
    pub fn l1_ttl(&self) -> Duration {
        Duration::from_secs(self.l1_ttl_s.min(300))
    }
    pub fn l2_ttl(&self) -> Duration {
        Duration::from_secs(self.l2_ttl_s.max(1))
    }
    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms.max(1))
    }
}

/// The memory guard: clears the L1 cache when resident memory passes a limit: the one given, else
/// a share of the container's memory limit (which the operator passes in from the downward API).
#[derive(Debug, Clone, Args)]
pub struct MemoryGuardConfig {
    /// Resident memory above which the memory guard clears the L1 cache, in bytes (0: derive it
    /// from the container's limit, see `--memory-limit-pct`).
    #[arg(long = "memory-limit-bytes", env = env::MEMORY_LIMIT_BYTES, default_value_t = 0)]
    pub memory_limit_bytes: u64,
    /// The container's memory limit, in bytes (0: unknown; then the guard is off unless
    /// `--memory-limit-bytes` is given).
    #[arg(long = "container-memory-limit-bytes", env = env::CONTAINER_MEMORY_LIMIT_BYTES, default_value_t = 0)]
    pub container_memory_limit_bytes: u64,
    /// Share of the container's memory limit at which the guard acts, in percent.
    #[arg(long = "memory-limit-pct", env = "MEMORY_LIMIT_PCT", default_value_t = 80,
          value_parser = clap::value_parser!(u64).range(1..=100))]
    pub memory_limit_pct: u64,
    /// How often the memory guard samples resident memory, in milliseconds.
    #[arg(long = "memory-sample-ms", env = "MEMORY_SAMPLE_MS", default_value_t = 5000)]
    pub memory_sample_ms: u64,
}

impl MemoryGuardConfig {
    pub fn sample_interval(&self) -> Duration {
        Duration::from_millis(self.memory_sample_ms)
    }

    /// Resident memory above which the guard clears L1 (0: off): `--memory-limit-bytes` when
    /// given, else `--memory-limit-pct` of the container's limit.
    pub fn threshold_bytes(&self) -> u64 {
        if self.memory_limit_bytes > 0 {
            return self.memory_limit_bytes;
        }
        let pct = u128::from(self.memory_limit_pct.min(100));
        let share = u128::from(self.container_memory_limit_bytes) * pct / 100;
        u64::try_from(share).unwrap_or(u64::MAX)
    }
}

/// The tuning file (docs/contract.md): pool settings applied live.
#[derive(Debug, Clone, Args)]
pub struct TuningConfig {
    /// File with pool settings that is watched and applied live (format in docs/contract.md).
    #[arg(long = "tuning-file", env = env::TUNING_FILE)]
    pub tuning_file: Option<PathBuf>,
    /// How often the tuning file is read, in milliseconds.
    #[arg(long = "tuning-poll-ms", env = "TUNING_POLL_MS", default_value_t = 2000)]
    pub tuning_poll_ms: u64,
}

impl TuningConfig {
    /// How often the file is read (at least every 100 ms apart).
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.tuning_poll_ms.max(100))
    }
}

/// Default of `--db-waiters-warning`.
pub const DEFAULT_WAITER_WARNING: u32 = 5;

/// Pool telemetry: when waiting for a connection is worth a log line, and how often the pool
/// monitor logs the pool's figures.
#[derive(Debug, Clone, Args)]
pub struct PoolTelemetryConfig {
    /// Waiting database acquirers from which a warning is logged (0: never).
    #[arg(long = "db-waiters-warning", env = "DB_WAITERS_WARNING", default_value_t = DEFAULT_WAITER_WARNING)]
    pub db_waiters_warning: u32,
    /// How often the pool monitor logs the pool's size, use and waiters, in seconds (0: never).
    #[arg(
        long = "db-pool-log-interval-s",
        env = "DB_POOL_LOG_INTERVAL_S",
        default_value_t = 60
    )]
    pub log_interval_s: u64,
}

impl PoolTelemetryConfig {
    /// The pool monitor's period; `None` when it is off.
    pub fn log_interval(&self) -> Option<Duration> {
        (self.log_interval_s > 0).then(|| Duration::from_secs(self.log_interval_s))
    }
}

/// The performance dashboard.
#[derive(Debug, Clone, Args)]
pub struct DashboardConfig {
    /// How long the performance dashboard JSON is reused, in milliseconds.
    #[arg(
        long = "dashboard-cache-ms",
        env = "DASHBOARD_CACHE_MS",
        default_value_t = 2000
    )]
    pub dashboard_cache_ms: u64,
}

impl DashboardConfig {
    pub fn max_age(&self) -> Duration {
        Duration::from_millis(self.dashboard_cache_ms)
    }
}

/// Default of `--count-cache-ttl-ms`.
pub const DEFAULT_COUNT_CACHE_TTL_MS: u64 = 5000;
/// Default of `--count-cache-max-entries`.
pub const DEFAULT_COUNT_CACHE_MAX_ENTRIES: u64 = 10_000;
/// Default of `--count-cache-write-refresh-ms`.
pub const DEFAULT_COUNT_CACHE_WRITE_REFRESH_MS: u64 = 1000;
/// Default of `--count-cache-slow-ms`.
pub const DEFAULT_COUNT_CACHE_SLOW_MS: u64 = 50;

/// The totals of offset-paginated lists (docs/api.md, "Totals of offset pages").
#[derive(Debug, Clone, Args)]
pub struct ListTotalsConfig {
    /// How long the `total` of an offset-paginated list is reused, per table and filter set, in
    /// milliseconds (0: count on every request). Writes through this process retire it (see
    /// `--count-cache-write-refresh-ms`).
    #[arg(long = "count-cache-ttl-ms", env = "COUNT_CACHE_TTL_MS", default_value_t = DEFAULT_COUNT_CACHE_TTL_MS,
          value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub count_cache_ttl_ms: u64,
    /// Most list totals kept (distinct table + filter combinations).
    #[arg(long = "count-cache-max-entries", env = "COUNT_CACHE_MAX_ENTRIES",
          default_value_t = DEFAULT_COUNT_CACHE_MAX_ENTRIES)]
    pub count_cache_max_entries: u64,
    /// Writes through this process retire a table's list totals at most once per this many
    /// milliseconds: a write after a quiet spell shows in the next total, writes in a busy stream
    /// within this period (0: every write retires them at once, costing a count per write).
    #[arg(long = "count-cache-write-refresh-ms", env = "COUNT_CACHE_WRITE_REFRESH_MS",
          default_value_t = DEFAULT_COUNT_CACHE_WRITE_REFRESH_MS,
          value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub count_cache_write_refresh_ms: u64,
    /// A total whose count took at least this many milliseconds is not retired by writes through
    /// this process, only by its TTL, so that a stream of writes does not recount a large table
    /// every `--count-cache-write-refresh-ms` (0: every total is retired by writes).
    #[arg(long = "count-cache-slow-ms", env = "COUNT_CACHE_SLOW_MS",
          default_value_t = DEFAULT_COUNT_CACHE_SLOW_MS,
          value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub count_cache_slow_ms: u64,
}

impl ListTotalsConfig {
    /// How long a total is reused (zero: never).
    pub fn ttl(&self) -> Duration {
        Duration::from_millis(self.count_cache_ttl_ms.min(60_000))
    }
    /// Least time between two retirements of a table's totals by writes.
    pub fn write_refresh(&self) -> Duration {
        Duration::from_millis(self.count_cache_write_refresh_ms.min(60_000))
    }
    /// Counts at least this long keep their totals through writes (`None`: none do).
    pub fn slow_count(&self) -> Option<Duration> {
        (self.count_cache_slow_ms > 0).then(|| Duration::from_millis(self.count_cache_slow_ms.min(60_000)))
    }
}

/// An external service `/health` checks with a TCP connect: `name=host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalEndpoint {
    /// How `/health` names it.
    pub name: String,
    /// `host:port`.
    pub addr: String,
}

impl std::str::FromStr for ExternalEndpoint {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        let (name, addr) = raw
            .split_once('=')
            .ok_or_else(|| format!("{raw:?} is not name=host:port"))?;
        let (name, addr) = (name.trim(), addr.trim());
        let port_ok = addr
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
        if name.is_empty() || !port_ok {
            return Err(format!("{raw:?} is not name=host:port"));
        }
        Ok(Self {
            name: name.to_owned(),
            addr: addr.to_owned(),
        })
    }
}

/// `/health`: the external services it reports on besides the dependencies (database, Redis).
/// An external service that is down makes the report `degraded`, never the API unready.
#[derive(Debug, Clone, Args)]
pub struct HealthConfig {
    /// External services `/health` checks with a TCP connect, as `name=host:port`; repeat the flag
    /// or separate them with commas. The SMTP server of the email jobs is checked when configured.
    #[arg(long = "health-external", env = "HEALTH_EXTERNAL", value_delimiter = ',')]
    pub external: Vec<ExternalEndpoint>,
    /// How long `/health` waits for one external service, in milliseconds.
    #[arg(
        long = "health-external-timeout-ms",
        env = "HEALTH_EXTERNAL_TIMEOUT_MS",
        default_value_t = 1000
    )]
    pub external_timeout_ms: u64,
}

impl HealthConfig {
    pub fn external_timeout(&self) -> Duration {
        Duration::from_millis(self.external_timeout_ms.max(1))
    }
}

defaults::default_from_flags!(
    ServeConfig,
    ServerConfig,
    CacheConfig,
    MemoryGuardConfig,
    TuningConfig,
    PoolTelemetryConfig,
    DashboardConfig,
    ListTotalsConfig,
    HealthConfig
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_what_the_flags_say() {
        let serve = ServeConfig::default();
        assert_eq!(serve.server.listen.to_string(), "127.0.0.1:8080");
        assert!(serve.cache.redis_url.is_none());
        assert_eq!(serve.cache.l1_ttl(), Duration::from_secs(60));
        assert_eq!(serve.pool.db_waiters_warning, DEFAULT_WAITER_WARNING);
        assert_eq!(serve.pool.log_interval(), Some(Duration::from_secs(60)));
        assert_eq!(
            serve.totals.ttl(),
            Duration::from_millis(DEFAULT_COUNT_CACHE_TTL_MS)
        );
        // Each group on its own has the defaults it has in the bundle.
        let groups = ServeConfig {
            server: ServerConfig::default(),
            cache: CacheConfig::default(),
            memory: MemoryGuardConfig::default(),
            tuning: TuningConfig::default(),
            pool: PoolTelemetryConfig::default(),
            dashboard: DashboardConfig::default(),
            totals: ListTotalsConfig::default(),
            health: HealthConfig::default(),
            exports: ExportConfig::default(),
            reports: ReportLimitConfig::default(),
            task_inserts: TaskInsertConfig::default(),
            auth: AuthConfig::default(),
        };
        assert_eq!(format!("{groups:?}"), format!("{serve:?}"));
    }

    #[test]
    fn the_compression_level_is_a_name_or_a_level() {
        assert!(matches!(
            ServerConfig::default().compression_level,
            CompressionLevel::Default
        ));
        assert!(matches!(
            parse_compression_level("fastest"),
            Ok(CompressionLevel::Fastest)
        ));
        assert!(matches!(
            parse_compression_level("best"),
            Ok(CompressionLevel::Best)
        ));
        assert!(matches!(
            parse_compression_level("0"),
            Ok(CompressionLevel::Precise(0))
        ));
        assert!(matches!(
            parse_compression_level("11"),
            Ok(CompressionLevel::Precise(11))
        ));
        for bad in ["12", "-1", "fast", "", "6.5"] {
            let err = parse_compression_level(bad).unwrap_err();
            assert!(err.contains("fastest, default, best"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn the_memory_guard_acts_at_80_percent_of_the_container_limit_unless_told_otherwise() {
        let mut memory = MemoryGuardConfig::default();
        assert_eq!(memory.threshold_bytes(), 0, "no limit known: off");
        memory.container_memory_limit_bytes = 512 * 1024 * 1024;
        assert_eq!(memory.threshold_bytes(), 429_496_729);
        memory.memory_limit_pct = 50;
        assert_eq!(memory.threshold_bytes(), 256 * 1024 * 1024);
        memory.memory_limit_bytes = 100_000_000;
        assert_eq!(memory.threshold_bytes(), 100_000_000, "an explicit limit wins");
    }

    #[test]
    fn external_services_are_name_equals_host_and_port() {
        let smtp: ExternalEndpoint = "smtp=mail.example.com:587".parse().unwrap();
        assert_eq!(smtp.name, "smtp");
        assert_eq!(smtp.addr, "mail.example.com:587");
        for bad in ["mail.example.com:587", "=host:1", "x=host", "x=host:0", "x=:25"] {
            assert!(bad.parse::<ExternalEndpoint>().is_err(), "{bad}");
        }
    }
}
