//! Metric families of the database layer: pool gauges, acquire timing, query durations and the
//! settings in force. Owned by [`super::Db`], registered into the app registry.
use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use perfstack_contract::{
    metrics::{self as contract, STATE, STATE_IDLE, STATE_IN_USE},
    tuning::PoolSettings,
};
use prometheus_client::{
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Registry, Unit},
};

use crate::metrics::{RegisterMetrics, StaticLabels, latency_histogram, register_contract};

/// Outcomes of a database operation (`outcome` label of `perfstack_db_queries_total`).
pub const OUTCOMES: [&str; 2] = ["ok", "error"];

/// Everything the database layer measures.
#[derive(Clone)]
pub struct DbTelemetry {
    pub connections: Family<StaticLabels<1>, Gauge>,
    pub min_connections: Gauge,
    pub max_connections: Gauge,
    pub acquire_timeout_seconds: Gauge<f64, AtomicU64>,
    pub idle_timeout_seconds: Gauge,
    pub settings_generation: Gauge,
    pub pool_swaps: Counter,
    pub waiting: Gauge,
    pub acquire_duration: Histogram,
    pub acquire_timeouts: Counter,
    /// Acquires refused at once because the wait queue was past its bound (load shedding).
    pub shed: Counter,
    query_duration: Family<StaticLabels<1>, Histogram, fn() -> Histogram>,
    queries: Family<StaticLabels<2>, Counter>,
    /// Rows per coalesced task INSERT (see `db::task_inserts`).
    pub insert_batch_rows: Histogram,
    /// Coalesced INSERTs that failed with a database error and were written again row by row.
    pub insert_batch_retries: Counter,
    /// Creates that found the coalescing queue full and were written alone.
    pub insert_queue_full: Counter,
    /// The server's `max_connections` (0 until first read).
    pub server_max_connections: Gauge,
    /// Server slots ordinary roles cannot use (0 until first read).
    pub server_reserved_connections: Gauge,
    /// Seconds since start of the last "many waiters" warning, to log at most one per interval.
    last_waiter_warning: Arc<AtomicU64>,
}

impl Default for DbTelemetry {
    fn default() -> Self {
        let telemetry = Self {
            connections: Family::default(),
            min_connections: Gauge::default(),
            max_connections: Gauge::default(),
            acquire_timeout_seconds: Gauge::default(),
            idle_timeout_seconds: Gauge::default(),
            settings_generation: Gauge::default(),
            pool_swaps: Counter::default(),
            waiting: Gauge::default(),
            acquire_duration: latency_histogram(),
            acquire_timeouts: Counter::default(),
            shed: Counter::default(),
            query_duration: Family::new_with_constructor(latency_histogram),
            queries: Family::default(),
            insert_batch_rows: Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
            insert_batch_retries: Counter::default(),
            insert_queue_full: Counter::default(),
            server_max_connections: Gauge::default(),
            server_reserved_connections: Gauge::default(),
            last_waiter_warning: Arc::new(AtomicU64::new(0)),
        };
        telemetry.pool_occupancy(0, 0);
        telemetry
    }
}

/// Least time between two "many waiters" warnings.
const WAITER_WARNING_INTERVAL_S: u64 = 10;

fn as_gauge(value: impl TryInto<i64>) -> i64 {
    value.try_into().unwrap_or(i64::MAX)
}

impl DbTelemetry {
    /// Shows `settings` (and the tuning generation that chose them) as the settings in force.
    pub fn settings_in_force(&self, settings: &PoolSettings, generation: u64) {
        self.min_connections.set(as_gauge(settings.min_connections));
        self.max_connections.set(as_gauge(settings.max_connections));
        self.acquire_timeout_seconds
            .set(settings.acquire_timeout_ms as f64 / 1000.0);
        self.idle_timeout_seconds
            .set(as_gauge(settings.idle_timeout_seconds));
        self.settings_generation.set(as_gauge(generation));
    }

    /// The database server's connection limits, as last read: `max_connections` and the slots
    /// ordinary roles cannot use.
    pub fn server_limits(&self, max_connections: i64, reserved_connections: i64) {
        self.server_max_connections.set(max_connections);
        self.server_reserved_connections.set(reserved_connections);
    }

    /// Pool occupancy, refreshed before each scrape.
    pub fn pool_occupancy(&self, size: u32, idle: usize) {
        let idle = as_gauge(idle);
        let size = as_gauge(size);
        self.connections.get_or_create(&[(STATE, STATE_IDLE)]).set(idle);
        self.connections
            .get_or_create(&[(STATE, STATE_IN_USE)])
            .set((size - idle).max(0));
    }

    /// Records one finished operation: its duration and whether it succeeded.
    pub fn query_finished(&self, operation: &'static str, seconds: f64, ok: bool) {
        self.query_duration
            .get_or_create(&[("operation", operation)])
            .observe(seconds);
        self.query_outcome(operation, if ok { "ok" } else { "error" })
            .inc();
    }

    /// The counter of `operation`s that ended with `outcome` (one of [`OUTCOMES`]).
    pub fn query_outcome(&self, operation: &'static str, outcome: &'static str) -> Counter {
        self.queries
            .get_or_create(&[("operation", operation), ("outcome", outcome)])
            .clone()
    }

    /// Number of finished queries of `operation` (both outcomes).
    pub fn query_count(&self, operation: &'static str) -> u64 {
        OUTCOMES
            .iter()
            .map(|outcome| self.query_outcome(operation, outcome).get())
            .sum()
    }

    /// Logs a warning when `waiting` reached `threshold`, at most once per interval.
    pub fn warn_if_many_waiters(&self, waiting: i64, threshold: u32, now_s: u64) {
        if waiting < i64::from(threshold) || threshold == 0 {
            return;
        }
        let last = self.last_waiter_warning.load(Ordering::Relaxed);
        if last != 0 && now_s.saturating_sub(last) < WAITER_WARNING_INTERVAL_S {
            return;
        }
        self.last_waiter_warning.store(now_s.max(1), Ordering::Relaxed);
        tracing::warn!(
            waiting,
            threshold,
            "many requests are waiting for a database connection; the pool may be too small"
        );
    }
}

impl RegisterMetrics for DbTelemetry {
    fn register(&self, r: &mut Registry) {
        register_contract(r, &contract::DB_POOL_CONNECTIONS, self.connections.clone());
        register_contract(
            r,
            &contract::DB_POOL_MIN_CONNECTIONS,
            self.min_connections.clone(),
        );
        register_contract(
            r,
            &contract::DB_POOL_MAX_CONNECTIONS,
            self.max_connections.clone(),
        );
        r.register_with_unit(
            "perfstack_db_pool_acquire_timeout",
            "Acquire timeout in force",
            Unit::Seconds,
            self.acquire_timeout_seconds.clone(),
        );
        r.register_with_unit(
            "perfstack_db_pool_idle_timeout",
            "Idle timeout in force",
            Unit::Seconds,
            self.idle_timeout_seconds.clone(),
        );
        let generation = self.settings_generation.clone();
        register_contract(r, &contract::DB_POOL_SETTINGS_GENERATION, generation);
        r.register(
            "perfstack_db_pool_swaps",
            "Pools replaced by live resizing",
            self.pool_swaps.clone(),
        );
        register_contract(r, &contract::DB_POOL_WAITING, self.waiting.clone());
        register_contract(
            r,
            &contract::DB_POOL_ACQUIRE_DURATION,
            self.acquire_duration.clone(),
        );
        register_contract(
            r,
            &contract::DB_POOL_ACQUIRE_TIMEOUTS,
            self.acquire_timeouts.clone(),
        );
        r.register(
            "perfstack_db_pool_shed",
            "Acquires refused at once because too many requests already waited for a connection",
            self.shed.clone(),
        );
        r.register_with_unit(
            "perfstack_db_query_duration",
            "Database operation latency by operation name",
            Unit::Seconds,
            self.query_duration.clone(),
        );
        r.register(
            "perfstack_db_queries",
            "Finished database operations by operation name and outcome",
            self.queries.clone(),
        );
        r.register(
            "perfstack_db_insert_batch_rows",
            "Rows written per coalesced task INSERT",
            self.insert_batch_rows.clone(),
        );
        r.register(
            "perfstack_db_insert_batch_retries",
            "Coalesced task INSERTs that failed with a database error and were written again row by row",
            self.insert_batch_retries.clone(),
        );
        r.register(
            "perfstack_db_insert_queue_full",
            "Task creates that found the coalescing queue full and were written alone",
            self.insert_queue_full.clone(),
        );
        let max = self.server_max_connections.clone();
        register_contract(r, &contract::DB_SERVER_MAX_CONNECTIONS, max);
        let reserved = self.server_reserved_connections.clone();
        register_contract(r, &contract::DB_SERVER_RESERVED_CONNECTIONS, reserved);
    }
}
