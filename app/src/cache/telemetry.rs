//! Metric families of the cache and the memory guard (names in docs/metrics.md).
use prometheus_client::{
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::{Registry, Unit},
};

use crate::metrics::{RegisterMetrics, StaticLabels};

/// A cache level: [`L1`] or [`L2`].
pub type Level = StaticLabels<1>;
/// The in-process cache.
pub const L1: Level = [("level", "l1")];
/// Redis.
pub const L2: Level = [("level", "l2")];

/// Redis operations counted in `perfstack_cache_redis_errors_total`.
pub const REDIS_OPERATIONS: [&str; 6] = ["get", "set", "evict", "ping", "connect", "subscribe"];
/// Where an eviction came from: a write here, or a message from another replica.
pub const EVICTION_SOURCES: [&str; 2] = ["local", "remote"];
/// What the memory guard can do.
pub const GUARD_ACTIONS: [&str; 1] = ["clear_l1"];

#[derive(Clone, Default)]
pub struct CacheTelemetry {
    pub hits: Family<Level, Counter>,
    pub misses: Family<Level, Counter>,
    redis_errors: Family<StaticLabels<1>, Counter>,
    evictions: Family<StaticLabels<1>, Counter>,
    pub stale_rejected: Counter,
    pub l1_entries: Gauge,
    pub l1_bytes: Gauge,
    pub redis_up: Gauge,
    pub pending_evictions: Gauge,
    guard_actions: Family<StaticLabels<1>, Counter>,
    pub memory_limit_bytes: Gauge,
}

impl CacheTelemetry {
    /// Families with every label value at zero, so each series exists from the first scrape.
    pub fn new() -> Self {
        let t = Self::default();
        for level in [&L1, &L2] {
            t.hits.get_or_create(level).inc_by(0);
            t.misses.get_or_create(level).inc_by(0);
        }
        for operation in REDIS_OPERATIONS {
            t.redis_error(operation).inc_by(0);
        }
        for source in EVICTION_SOURCES {
            t.eviction(source).inc_by(0);
        }
        for action in GUARD_ACTIONS {
            t.guard_action(action).inc_by(0);
        }
        t
    }

    /// The counter of failed Redis `operation`s (one of [`REDIS_OPERATIONS`]).
    pub fn redis_error(&self, operation: &'static str) -> Counter {
        self.redis_errors
            .get_or_create(&[("operation", operation)])
            .clone()
    }

    /// The counter of evictions from `source` (one of [`EVICTION_SOURCES`]).
    pub fn eviction(&self, source: &'static str) -> Counter {
        self.evictions.get_or_create(&[("source", source)]).clone()
    }

    /// The counter of memory guard `action`s (one of [`GUARD_ACTIONS`]).
    pub fn guard_action(&self, action: &'static str) -> Counter {
        self.guard_actions.get_or_create(&[("action", action)]).clone()
    }

    pub fn hits(&self, level: &Level) -> u64 {
        self.hits.get_or_create(level).get()
    }
    pub fn misses(&self, level: &Level) -> u64 {
        self.misses.get_or_create(level).get()
    }
    pub fn redis_error_count(&self) -> u64 {
        REDIS_OPERATIONS
            .iter()
            .map(|operation| self.redis_error(operation).get())
            .sum()
    }
}

impl RegisterMetrics for CacheTelemetry {
    fn register(&self, r: &mut Registry) {
        r.register(
            "perfstack_cache_hits",
            "Cache hits by level (l1, l2)",
            self.hits.clone(),
        );
        r.register(
            "perfstack_cache_misses",
            "Cache misses by level (l1, l2)",
            self.misses.clone(),
        );
        r.register(
            "perfstack_cache_redis_errors",
            "Failed or timed-out Redis operations; the request went on without Redis",
            self.redis_errors.clone(),
        );
        r.register(
            "perfstack_cache_evictions",
            "Keys evicted after writes, by source (local write, remote replica)",
            self.evictions.clone(),
        );
        r.register(
            "perfstack_cache_stale_rejected",
            "L1 entries found older than the last write of their key and reloaded",
            self.stale_rejected.clone(),
        );
        r.register(
            "perfstack_cache_l1_entries",
            "Entries in the in-process cache",
            self.l1_entries.clone(),
        );
        r.register_with_unit(
            "perfstack_cache_l1_size",
            "Serialized size of the in-process cache",
            Unit::Bytes,
            self.l1_bytes.clone(),
        );
        r.register(
            "perfstack_cache_redis_up",
            "1 while Redis answers, 0 while the cache runs without it",
            self.redis_up.clone(),
        );
        r.register(
            "perfstack_cache_pending_evictions",
            "Evictions that could not reach Redis yet and will be retried",
            self.pending_evictions.clone(),
        );
        r.register(
            "perfstack_memory_guard_actions",
            "Times the memory guard acted, by action",
            self.guard_actions.clone(),
        );
        r.register_with_unit(
            "perfstack_memory_guard_limit",
            "Resident memory above which the guard clears the L1 cache (0: off)",
            Unit::Bytes,
            self.memory_limit_bytes.clone(),
        );
    }
}
