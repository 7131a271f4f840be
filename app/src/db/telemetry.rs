//! Metric families of the database layer: pool gauges, acquire timing, query durations and the
//! settings in force. Owned by [`super::Db`], registered into the app registry.
use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use perfstack_contract::tuning::PoolSettings;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Registry, Unit},
};

use crate::metrics::{RegisterMetrics, latency_histogram};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabel {
    pub operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub operation: &'static str,
    pub outcome: &'static str,
}

/// Everything the database layer measures.
#[derive(Clone)]
pub struct DbTelemetry {
    pub connections: Family<StateLabel, Gauge>,
    pub min_connections: Gauge,
    pub max_connections: Gauge,
    pub acquire_timeout_seconds: Gauge<f64, AtomicU64>,
    pub idle_timeout_seconds: Gauge,
    pub settings_generation: Gauge,
    pub pool_swaps: Counter,
    pub waiting: Gauge,
    pub acquire_duration: Histogram,
    pub acquire_timeouts: Counter,
    pub query_duration: Family<OperationLabel, Histogram, fn() -> Histogram>,
    pub queries: Family<OutcomeLabels, Counter>,
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
            query_duration: Family::new_with_constructor(latency_histogram),
            queries: Family::default(),
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
        self.connections
            .get_or_create(&StateLabel { state: "idle" })
            .set(idle);
        self.connections
            .get_or_create(&StateLabel { state: "in_use" })
            .set((size - idle).max(0));
    }

    /// Number of finished queries of `operation` (both outcomes).
    pub fn query_count(&self, operation: &'static str) -> u64 {
        ["ok", "error"]
            .iter()
            .map(|outcome| {
                self.queries
                    .get_or_create(&OutcomeLabels { operation, outcome })
                    .get()
            })
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
        r.register(
            "perfstack_db_pool_connections",
            "Open pool connections by state",
            self.connections.clone(),
        );
        r.register(
            "perfstack_db_pool_min_connections",
            "Pool minimum in force",
            self.min_connections.clone(),
        );
        r.register(
            "perfstack_db_pool_max_connections",
            "Pool maximum in force",
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
        r.register(
            "perfstack_db_pool_settings_generation",
            "Generation of the tuning file in force (0: none)",
            self.settings_generation.clone(),
        );
        r.register(
            "perfstack_db_pool_swaps",
            "Pools replaced by live resizing",
            self.pool_swaps.clone(),
        );
        r.register(
            "perfstack_db_pool_waiting",
            "Tasks waiting to acquire a connection",
            self.waiting.clone(),
        );
        r.register_with_unit(
            "perfstack_db_pool_acquire_duration",
            "Time to acquire a connection",
            Unit::Seconds,
            self.acquire_duration.clone(),
        );
        r.register(
            "perfstack_db_pool_acquire_timeouts",
            "Acquires that timed out",
            self.acquire_timeouts.clone(),
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
            "perfstack_db_server_max_connections",
            "max_connections of the PostgreSQL server (0 until first read)",
            self.server_max_connections.clone(),
        );
        r.register(
            "perfstack_db_server_reserved_connections",
            "Server connection slots ordinary roles cannot use: superuser_reserved_connections plus reserved_connections (0 until first read)",
            self.server_reserved_connections.clone(),
        );
    }
}
