//! Counters of the totals cache, per table (names in docs/metrics.md).
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use super::{Lookup, Table};
use crate::metrics::RegisterMetrics;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabel {
    pub table: &'static str,
}

/// Counters of the totals cache, per table.
#[derive(Clone, Default)]
pub struct TotalsTelemetry {
    pub hits: Family<TableLabel, Counter>,
    pub misses: Family<TableLabel, Counter>,
    pub coalesced: Family<TableLabel, Counter>,
    pub invalidations: Family<TableLabel, Counter>,
    pub entries: Gauge,
}

impl TotalsTelemetry {
    /// Families with every table at zero, so each series exists from the first scrape.
    pub fn new() -> Self {
        let t = Self::default();
        for table in Table::ALL {
            let label = TableLabel {
                table: table.as_str(),
            };
            for family in [&t.hits, &t.misses, &t.coalesced, &t.invalidations] {
                family.get_or_create(&label).inc_by(0);
            }
        }
        t
    }

    pub(super) fn record(&self, table: Table, lookup: Lookup) {
        self.counter(table, lookup).inc();
    }

    /// How many lookups of `table` were answered as `lookup` so far.
    pub fn count(&self, table: Table, lookup: Lookup) -> u64 {
        self.counter(table, lookup).get()
    }

    fn counter(&self, table: Table, lookup: Lookup) -> Counter {
        let family = match lookup {
            Lookup::Hit => &self.hits,
            Lookup::Coalesced => &self.coalesced,
            Lookup::Miss => &self.misses,
        };
        family
            .get_or_create(&TableLabel {
                table: table.as_str(),
            })
            .clone()
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
            "perfstack_count_cache_entries",
            "Totals held in the count cache",
            self.entries.clone(),
        );
    }
}
