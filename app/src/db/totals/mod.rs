//! The `total` of offset-paginated lists, cached per table and filter set for a few seconds so
//! that a burst of page requests for one collection runs one `count(*)`, not one per request.
//!
//! - Concurrent misses of the same key wait for a single count (moka's entry initialisation is
//!   single-flight).
//! - A write through this process bumps its table's generation, which is part of every key: the
//!   next list after a create/update/delete counts again and sees the write. Under a stream of
//!   writes the bumps are coalesced to one per `write_refresh` (1 s by default), so a busy table is
//!   counted at most about once a second instead of once per write; a write is then seen at most
//!   `write_refresh` later.
//! - Writes from other replicas (or straight SQL) show up at the latest when the entry expires:
//!   after the TTL plus the duration of the count that produced it.
//!
//! Reasons and bounds: docs/api.md ("Totals of offset pages"); metric names: docs/metrics.md.
use std::{
    future::Future,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use moka::future::Cache;

use crate::config::ListTotalsConfig;

pub use self::telemetry::{TableLabel, TotalsTelemetry};
use super::{page::Window, projects::ProjectFilter, tasks::TaskFilter, users::UserFilter};

mod telemetry;

/// A table whose lists report totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    Users,
    Projects,
    Tasks,
}

impl Table {
    pub const ALL: [Self; 3] = [Self::Users, Self::Projects, Self::Tasks];

    /// The table's name, also the `table` label of the metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Projects => "projects",
            Self::Tasks => "tasks",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Users => 0,
            Self::Projects => 1,
            Self::Tasks => 2,
        }
    }
}

/// Which rows a total counts: a table and the filters of the list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TotalOf {
    Users(UserFilter),
    Projects(ProjectFilter),
    Tasks(TaskFilter),
}

impl TotalOf {
    pub fn table(&self) -> Table {
        match self {
            Self::Users(_) => Table::Users,
            Self::Projects(_) => Table::Projects,
            Self::Tasks(_) => Table::Tasks,
        }
    }

    /// Whether the total is worth a cache entry: filters with long free text (search terms,
    /// emails) are counted every time, so that the cache's memory stays bounded by
    /// `max_entries` times a small key whatever clients send.
    pub fn cacheable(&self) -> bool {
        let text = match self {
            Self::Users(f) => {
                f.email.as_ref().map_or(0, String::len) + f.username.as_ref().map_or(0, String::len)
            }
            Self::Projects(_) => 0,
            Self::Tasks(f) => f.search.as_ref().map_or(0, String::len),
        };
        text <= MAX_CACHED_TEXT_BYTES
    }
}

/// Most bytes of free-text filter a cached total's key may hold.
pub const MAX_CACHED_TEXT_BYTES: usize = 256;

/// A cache key: the rows counted, as of a write generation of their table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TotalKey {
    generation: u64,
    of: TotalOf,
}

/// How long totals are reused and how many are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotalsSettings {
    /// How long a total is reused; zero counts on every request (no cache, no coalescing).
    pub ttl: Duration,
    /// Most totals kept (distinct table + filter combinations); least recently used go first.
    pub max_entries: u64,
    /// Writes to a table retire its totals at most once per this period; writes within it are
    /// seen at its end. Zero retires on every write.
    pub write_refresh: Duration,
}

impl From<&ListTotalsConfig> for TotalsSettings {
    fn from(config: &ListTotalsConfig) -> Self {
        Self {
            ttl: config.ttl(),
            max_entries: config.count_cache_max_entries,
            write_refresh: config.write_refresh(),
        }
    }
}

impl Default for TotalsSettings {
    /// What `--count-cache-*` say when not given.
    fn default() -> Self {
        (&ListTotalsConfig::default()).into()
    }
}

/// A table's write generation, bumped at most once per `write_refresh`.
#[derive(Debug, Default)]
struct Generation {
    value: u64,
    /// When `value` was last bumped.
    bumped: Option<Instant>,
    /// A write came after the last bump and is not yet reflected in `value`.
    pending: bool,
}

impl Generation {
    /// Bumps now if the last bump is at least `period` ago; otherwise leaves the write pending.
    /// Returns whether it bumped.
    fn wrote(&mut self, now: Instant, period: Duration) -> bool {
        self.pending = true;
        self.settle(now, period)
    }

    /// Turns a pending write into a bump once `period` has passed since the last one.
    fn settle(&mut self, now: Instant, period: Duration) -> bool {
        let due = self
            .bumped
            .is_none_or(|at| now.saturating_duration_since(at) >= period);
        if self.pending && due {
            self.value += 1;
            self.bumped = Some(now);
            self.pending = false;
            true
        } else {
            false
        }
    }
}

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

/// The totals cache. Cheap to clone; clones share entries, generations and metrics.
#[derive(Clone)]
pub struct ListTotals {
    /// `None` when the TTL is zero: every request counts.
    cache: Option<Cache<TotalKey, i64>>,
    generations: Arc<[Mutex<Generation>; 3]>,
    write_refresh: Duration,
    telemetry: TotalsTelemetry,
}

impl Default for ListTotals {
    fn default() -> Self {
        Self::new(TotalsSettings::default())
    }
}

impl ListTotals {
    pub fn new(settings: TotalsSettings) -> Self {
        let cache = (!settings.ttl.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(settings.max_entries.max(1))
                .time_to_live(settings.ttl)
                .build()
        });
        Self {
            cache,
            generations: Arc::default(),
            write_refresh: settings.write_refresh,
            telemetry: TotalsTelemetry::new(),
        }
    }

    pub fn telemetry(&self) -> &TotalsTelemetry {
        &self.telemetry
    }

    /// The total of `of`: cached, or counted by `count` (once for all concurrent callers).
    /// A failed count is not cached; every caller waiting for it gets the error.
    pub async fn get_or_count<F, Fut>(&self, of: TotalOf, count: F) -> Result<i64, sqlx::Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<i64, sqlx::Error>>,
    {
        let table = of.table();
        let cache = match &self.cache {
            Some(cache) if of.cacheable() => cache,
            _ => {
                self.telemetry.record(table, Lookup::Miss);
                return count().await;
            }
        };
        let key = TotalKey {
            generation: self.generation(table),
            of,
        };
        if let Some(total) = cache.get(&key).await {
            self.telemetry.record(table, Lookup::Hit);
            return Ok(total);
        }
        // The miss is recorded by the one caller that runs the count, failed or not, so that
        // misses and count queries move together.
        let run = async {
            self.telemetry.record(table, Lookup::Miss);
            count().await
        };
        let entry = cache.entry(key).or_try_insert_with(run).await.map_err(unshare)?;
        if !entry.is_fresh() {
            self.telemetry.record(table, Lookup::Coalesced);
        }
        Ok(entry.into_value())
    }

    /// The `total` a list in `window` reports: counted (or cached) for an offset page, none for a
    /// keyset page.
    pub async fn for_window<K, F, Fut>(
        &self,
        window: &Window<K>,
        of: TotalOf,
        count: F,
    ) -> Result<Option<i64>, sqlx::Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<i64, sqlx::Error>>,
    {
        match window {
            Window::Offset { .. } => self.get_or_count(of, count).await.map(Some),
            Window::Keyset { .. } => Ok(None),
        }
    }

    /// Records that rows of `table` were (or may have been) written by this process: totals
    /// counted before no longer answer, at once or, within `write_refresh` of the last
    /// retirement, once it has passed. Call after the write has ended, committed or not.
    pub fn wrote(&self, table: Table) {
        let bumped = self
            .lock_generation(table)
            .wrote(Instant::now(), self.write_refresh);
        if bumped {
            self.count_invalidation(table);
        }
    }

    fn count_invalidation(&self, table: Table) {
        self.telemetry
            .invalidations
            .get_or_create(&TableLabel {
                table: table.as_str(),
            })
            .inc();
    }

    fn lock_generation(&self, table: Table) -> std::sync::MutexGuard<'_, Generation> {
        self.generations[table.index()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Refreshes the entries gauge (call before a scrape).
    pub fn refresh_gauges(&self) {
        let entries = self.cache.as_ref().map_or(0, Cache::entry_count);
        self.telemetry
            .entries
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
    }

    fn generation(&self, table: Table) -> u64 {
        let mut generation = self.lock_generation(table);
        if generation.settle(Instant::now(), self.write_refresh) {
            self.count_invalidation(table);
        }
        generation.value
    }
}

/// The error of a count shared by every caller that waited for it. The caller that ran it
/// usually gets the original back; the others get pool errors as they were (so they still
/// answer 503) and anything else as a protocol error carrying the message.
fn unshare(err: Arc<sqlx::Error>) -> sqlx::Error {
    match Arc::try_unwrap(err) {
        Ok(err) => err,
        Err(shared) => match *shared {
            sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
            ref other => sqlx::Error::Protocol(format!("shared count failed: {other}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[test]
    fn writes_within_the_refresh_period_are_coalesced_and_none_is_lost() {
        let period = Duration::from_secs(1);
        let t0 = Instant::now();
        let mut g = Generation::default();
        assert!(g.wrote(t0, period), "a first write retires at once");
        assert_eq!(g.value, 1);
        assert!(!g.wrote(t0 + Duration::from_millis(100), period));
        assert!(!g.wrote(t0 + Duration::from_millis(900), period));
        assert!(!g.settle(t0 + Duration::from_millis(999), period));
        assert_eq!(g.value, 1, "within the period the totals stand");
        assert!(
            g.settle(t0 + Duration::from_millis(1000), period),
            "the pending writes retire them"
        );
        assert_eq!(g.value, 2);
        assert!(
            !g.settle(t0 + Duration::from_secs(5), period),
            "nothing pending, nothing to retire"
        );
        assert!(
            g.wrote(t0 + Duration::from_secs(5), period),
            "a write after a quiet period retires at once"
        );
        assert_eq!(g.value, 3);
        let mut every = Generation::default();
        assert!(every.wrote(t0, Duration::ZERO) && every.wrote(t0, Duration::ZERO));
        assert_eq!(every.value, 2, "a zero period retires on every write");
    }

    #[tokio::test]
    async fn concurrent_misses_run_one_count() {
        let totals = ListTotals::default();
        let runs = Arc::new(AtomicU64::new(0));
        let lookups = (0..20).map(|_| {
            let (totals, runs) = (totals.clone(), Arc::clone(&runs));
            async move {
                totals
                    .get_or_count(TotalOf::Tasks(TaskFilter::default()), || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(42)
                    })
                    .await
            }
        });
        let results = futures::future::join_all(lookups).await;
        assert!(results.iter().all(|r| matches!(r, Ok(42))));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let t = totals.telemetry();
        assert_eq!(t.count(Table::Tasks, Lookup::Miss), 1);
        assert_eq!(
            t.count(Table::Tasks, Lookup::Hit) + t.count(Table::Tasks, Lookup::Coalesced),
            19
        );
    }

    #[tokio::test]
    async fn a_write_retires_only_its_tables_totals() {
        let totals = ListTotals::default();
        let count = |n: i64| move || async move { Ok::<_, sqlx::Error>(n) };
        let tasks = || TotalOf::Tasks(TaskFilter::default());
        let users = || TotalOf::Users(UserFilter::default());
        assert_eq!(totals.get_or_count(tasks(), count(1)).await.unwrap(), 1);
        assert_eq!(totals.get_or_count(users(), count(10)).await.unwrap(), 10);
        totals.wrote(Table::Tasks);
        assert_eq!(totals.get_or_count(tasks(), count(2)).await.unwrap(), 2);
        assert_eq!(totals.get_or_count(users(), count(11)).await.unwrap(), 10);
    }

    #[tokio::test]
    async fn failed_counts_long_texts_and_zero_ttl_are_not_cached() {
        let totals = ListTotals::default();
        let of = || TotalOf::Projects(ProjectFilter::default());
        let failed = totals
            .get_or_count(of(), || async { Err(sqlx::Error::PoolTimedOut) })
            .await;
        assert!(matches!(failed, Err(sqlx::Error::PoolTimedOut)));
        assert_eq!(totals.get_or_count(of(), || async { Ok(3) }).await.unwrap(), 3);

        let long_search = || {
            TotalOf::Tasks(TaskFilter {
                search: Some("x".repeat(MAX_CACHED_TEXT_BYTES + 1)),
                ..TaskFilter::default()
            })
        };
        assert_eq!(
            totals
                .get_or_count(long_search(), || async { Ok(1) })
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            totals
                .get_or_count(long_search(), || async { Ok(2) })
                .await
                .unwrap(),
            2
        );

        let uncached = ListTotals::new(TotalsSettings {
            ttl: Duration::ZERO,
            ..TotalsSettings::default()
        });
        assert_eq!(uncached.get_or_count(of(), || async { Ok(1) }).await.unwrap(), 1);
        assert_eq!(uncached.get_or_count(of(), || async { Ok(2) }).await.unwrap(), 2);
    }
}
