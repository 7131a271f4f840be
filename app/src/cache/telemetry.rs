//! Metric families of the cache and the memory guard (names in docs/metrics.md).
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::{Registry, Unit},
};

use crate::metrics::RegisterMetrics;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LevelLabel {
    pub level: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabel {
    pub operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    pub source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabel {
    pub action: &'static str,
}

pub const L1: LevelLabel = LevelLabel { level: "l1" };
pub const L2: LevelLabel = LevelLabel { level: "l2" };

#[derive(Clone, Default)]
pub struct CacheTelemetry {
    pub hits: Family<LevelLabel, Counter>,
    pub misses: Family<LevelLabel, Counter>,
    pub redis_errors: Family<OperationLabel, Counter>,
    pub evictions: Family<SourceLabel, Counter>,
    pub stale_rejected: Counter,
    pub l1_entries: Gauge,
    pub l1_bytes: Gauge,
    pub redis_up: Gauge,
    pub pending_evictions: Gauge,
    pub memory_guard_actions: Family<ActionLabel, Counter>,
    pub memory_limit_bytes: Gauge,
}

/// Redis operations counted in `perfstack_cache_redis_errors_total`.
pub const REDIS_OPERATIONS: [&str; 6] = ["get", "set", "evict", "ping", "connect", "subscribe"];

impl CacheTelemetry {
    /// Families with every label value at zero, so each series exists from the first scrape.
    pub fn new() -> Self {
        let t = Self::default();
        for level in [&L1, &L2] {
            t.hits.get_or_create(level).inc_by(0);
            t.misses.get_or_create(level).inc_by(0);
        }
        for operation in REDIS_OPERATIONS {
            t.redis_errors
                .get_or_create(&OperationLabel { operation })
                .inc_by(0);
        }
        for source in ["local", "remote"] {
            t.evictions.get_or_create(&SourceLabel { source }).inc_by(0);
        }
        t.memory_guard_actions
            .get_or_create(&ActionLabel { action: "clear_l1" })
            .inc_by(0);
        t
    }

    pub fn hits(&self, level: &LevelLabel) -> u64 {
        self.hits.get_or_create(level).get()
    }
    pub fn misses(&self, level: &LevelLabel) -> u64 {
        self.misses.get_or_create(level).get()
    }
    pub fn redis_error_count(&self) -> u64 {
        REDIS_OPERATIONS
            .iter()
            .map(|operation| {
                self.redis_errors
                    .get_or_create(&OperationLabel { operation })
                    .get()
            })
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
            self.memory_guard_actions.clone(),
        );
        r.register_with_unit(
            "perfstack_memory_guard_limit",
            "Resident memory above which the guard clears the L1 cache (0: off)",
            Unit::Bytes,
            self.memory_limit_bytes.clone(),
        );
    }
}
