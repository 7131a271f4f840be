//! Counters of the totals cache, per table (names in docs/metrics.md).
use prometheus_client::{
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use crate::metrics::{RegisterMetrics, StaticLabels};

/// How a lookup was answered (the `perfstack_count_cache_*` counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// A cached total.
    Hit,
    /// Another request's count was already running; this one waited for its result.
    Coalesced,
    /// This request ran the count.
    Miss,
}

/// Counters of the totals cache, per table (the `table` label).
#[derive(Clone, Default)]
pub struct TotalsTelemetry {
    hits: Family<StaticLabels<1>, Counter>,
    misses: Family<StaticLabels<1>, Counter>,
    coalesced: Family<StaticLabels<1>, Counter>,
    invalidations: Family<StaticLabels<1>, Counter>,
    slow_counts: Family<StaticLabels<1>, Counter>,
    pub entries: Gauge,
}

impl TotalsTelemetry {
    /// Families with each of `tables` at zero, so each series exists from the first scrape.
    pub fn new(tables: &[&'static str]) -> Self {
        let t = Self::default();
        for table in tables {
            for family in [&t.hits, &t.misses, &t.coalesced, &t.invalidations, &t.slow_counts] {
                family.get_or_create(&[("table", table)]).inc_by(0);
            }
        }
        t
    }

    /// Counts a lookup of `table`'s totals answered as `lookup`.
    pub fn record(&self, table: &'static str, lookup: Lookup) {
        self.counter(table, lookup).inc();
    }

    /// How many lookups of `table` were answered as `lookup` so far.
    pub fn count(&self, table: &'static str, lookup: Lookup) -> u64 {
        self.counter(table, lookup).get()
    }

    /// Counts a retirement of `table`'s totals.
    pub fn invalidated(&self, table: &'static str) {
        self.invalidations.get_or_create(&[("table", table)]).inc();
    }

    /// Counts a count that took long enough for its total to be kept through writes.
    pub fn slow_count(&self, table: &'static str) {
        self.slow_counts.get_or_create(&[("table", table)]).inc();
    }

    /// How many of `table`'s counts were slow so far.
    pub fn slow_counts(&self, table: &'static str) -> u64 {
        self.slow_counts.get_or_create(&[("table", table)]).get()
    }

    fn counter(&self, table: &'static str, lookup: Lookup) -> Counter {
        let family = match lookup {
            Lookup::Hit => &self.hits,
            Lookup::Coalesced => &self.coalesced,
            Lookup::Miss => &self.misses,
        };
        family.get_or_create(&[("table", table)]).clone()
    }
}

impl RegisterMetrics for TotalsTelemetry {
    fn register(&self, r: &mut Registry) {
        r.register(
            "perfstack_count_cache_hits",
            "List totals served from the count cache, by table",
            self.hits.clone(),
        );
        r.register(
            "perfstack_count_cache_misses",
            "List totals counted in PostgreSQL (count(*) run), by table",
            self.misses.clone(),
        );
        r.register(
            "perfstack_count_cache_coalesced",
            "List totals that waited for a count another request had started, by table",
            self.coalesced.clone(),
        );
        r.register(
            "perfstack_count_cache_invalidations",
            "Retirements of a table's cached totals by writes through this process (at most one per write refresh period)",
            self.invalidations.clone(),
        );
        r.register(
            "perfstack_count_cache_slow_counts",
            "Counts that took at least the slow-count threshold; their totals are kept through writes until the TTL ends, by table",
            self.slow_counts.clone(),
        );
        r.register(
            "perfstack_count_cache_entries",
            "Totals held in the count cache",
            self.entries.clone(),
        );
    }
}
