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
//! - A total whose count took at least `slow_count` (50 ms by default: a large table, or a loaded
//!   database) is kept through those write retirements until its TTL ends: recounting it after
//!   every `write_refresh` is what a stream of writes would otherwise cost (a count of 1.1 M tasks
//!   every second, ~0.3 s of three backends each time). Its staleness bound is that of other
//!   replicas' writes.
//! - Writes from other replicas (or straight SQL) show up at the latest when the entry expires:
//!   after the TTL plus the duration of the count that produced it.
//!
//! Reasons and bounds: docs/api.md ("Totals of offset pages"); metric names: docs/metrics.md.
use std::{
    any::Any,
    future::Future,
    hash::{Hash, Hasher},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use moka::future::Cache;

use crate::config::ListTotalsConfig;

pub use self::telemetry::{Lookup, TotalsTelemetry};

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

/// What the totals cache needs of a list's filters: they tell filter sets apart (`Eq`, `Hash`) and
/// say how much free text (search terms, emails) they carry.
pub trait ListFilter: Clone + Eq + Hash + Send + Sync + 'static {
    /// Bytes of free text in the filters; 0 for filters of ids and enums only.
    fn free_text_bytes(&self) -> usize {
        0
    }
}

/// Which rows a total counts: a table and the filters of the list. Any table's [`ListFilter`], so
/// one cache (bounded by one `max_entries`) holds the totals of every table.
#[derive(Clone)]
pub struct TotalOf {
    table: Table,
    filter: Arc<dyn FilterKey>,
    free_text_bytes: usize,
}

impl TotalOf {
    pub fn new<F: ListFilter>(table: Table, filter: F) -> Self {
        Self {
            table,
            free_text_bytes: filter.free_text_bytes(),
            filter: Arc::new(filter),
        }
    }

    pub fn table(&self) -> Table {
        self.table
    }

    /// Whether the total is worth a cache entry: filters with long free text (search terms,
    /// emails) are counted every time, so that the cache's memory stays bounded by
    /// `max_entries` times a small key whatever clients send.
    pub fn cacheable(&self) -> bool {
        self.free_text_bytes <= MAX_CACHED_TEXT_BYTES
    }
}

impl PartialEq for TotalOf {
    fn eq(&self, other: &Self) -> bool {
        self.table == other.table && self.filter.eq_key(other.filter.as_ref())
    }
}

impl Eq for TotalOf {}

impl Hash for TotalOf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.table.hash(state);
        self.filter.hash_key(state);
    }
}

impl std::fmt::Debug for TotalOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotalOf")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

/// A [`ListFilter`] of any type, compared and hashed as itself (filters of different types are
/// never equal).
trait FilterKey: Send + Sync {
    fn as_any(&self) -> &dyn Any;
    fn eq_key(&self, other: &dyn FilterKey) -> bool;
    fn hash_key(&self, state: &mut dyn Hasher);
}

impl<F: ListFilter> FilterKey for F {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn eq_key(&self, other: &dyn FilterKey) -> bool {
        other.as_any().downcast_ref::<F>() == Some(self)
    }

    fn hash_key(&self, mut state: &mut dyn Hasher) {
        self.hash(&mut state);
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
    /// A count that took at least this long keeps its total through writes until the TTL ends;
    /// `None`: every total is retired by writes.
    pub slow_count: Option<Duration>,
}

impl From<&ListTotalsConfig> for TotalsSettings {
    fn from(config: &ListTotalsConfig) -> Self {
        Self {
            ttl: config.ttl(),
            max_entries: config.count_cache_max_entries,
            write_refresh: config.write_refresh(),
            slow_count: config.slow_count(),
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

/// Totals whose count took at least `threshold`, keyed without a write generation.
#[derive(Clone)]
struct SlowTotals {
    threshold: Duration,
    cache: Cache<TotalOf, i64>,
}

/// The totals cache. Cheap to clone; clones share entries, generations and metrics.
#[derive(Clone)]
pub struct ListTotals {
    /// `None` when the TTL is zero: every request counts.
    cache: Option<Cache<TotalKey, i64>>,
    /// Totals of slow counts, kept for the TTL whatever this process writes; looked up first.
    /// `None` when the TTL is zero or `slow_count` is off.
    slow: Option<SlowTotals>,
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
        let slow = settings
            .slow_count
            .filter(|_| !settings.ttl.is_zero())
            .map(|threshold| SlowTotals {
                threshold,
                cache: Cache::builder()
                    .max_capacity(settings.max_entries.max(1))
                    .time_to_live(settings.ttl)
                    .build(),
            });
        Self {
            cache,
            slow,
            generations: Arc::default(),
            write_refresh: settings.write_refresh,
            telemetry: TotalsTelemetry::new(&Table::ALL.map(Table::as_str)),
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
        let with_nothing = || async { count().await.map(|total| (total, ())) };
        Ok(self.get_or_count_with(of, with_nothing).await?.0)
    }

    /// Like [`Self::get_or_count`] for a `count` that reads something else in the same statement
    /// (the page whose total it is): returns the total and, when this caller ran `count`, what it
    /// read beside it; `None` when the total was cached or another caller's count was awaited.
    pub async fn get_or_count_with<T, F, Fut>(
        &self,
        of: TotalOf,
        count: F,
    ) -> Result<(i64, Option<T>), sqlx::Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(i64, T), sqlx::Error>>,
    {
        let table = of.table();
        let cache = match &self.cache {
            Some(cache) if of.cacheable() => cache,
            _ => {
                self.telemetry.record(table.as_str(), Lookup::Miss);
                let (total, read) = count().await?;
                return Ok((total, Some(read)));
            }
        };
        if let Some(total) = match &self.slow {
            Some(slow) => slow.cache.get(&of).await,
            None => None,
        } {
            self.telemetry.record(table.as_str(), Lookup::Hit);
            return Ok((total, None));
        }
        let key = TotalKey {
            generation: self.generation(table),
            of,
        };
        if let Some(total) = cache.get(&key).await {
            self.telemetry.record(table.as_str(), Lookup::Hit);
            return Ok((total, None));
        }
        // The miss is recorded by the one caller that runs the count, failed or not, so that
        // misses and count queries move together.
        let mut read = None;
        let of = key.of.clone();
        let run = async {
            self.telemetry.record(table.as_str(), Lookup::Miss);
            let started = Instant::now();
            let (total, beside) = count().await?;
            self.keep_if_slow(of, total, started.elapsed()).await;
            read = Some(beside);
            Ok(total)
        };
        let entry = cache.entry(key).or_try_insert_with(run).await.map_err(unshare)?;
        if !entry.is_fresh() {
            self.telemetry.record(table.as_str(), Lookup::Coalesced);
        }
        Ok((entry.into_value(), read))
    }

    /// Keeps `total` through writes when its count took at least `slow_count`.
    async fn keep_if_slow(&self, of: TotalOf, total: i64, took: Duration) {
        let Some(slow) = &self.slow else {
            return;
        };
        if took >= slow.threshold {
            self.telemetry.slow_count(of.table().as_str());
            slow.cache.insert(of, total).await;
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
        self.telemetry.invalidated(table.as_str());
    }

    fn lock_generation(&self, table: Table) -> std::sync::MutexGuard<'_, Generation> {
        self.generations[table.index()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Refreshes the entries gauge (call before a scrape).
    pub fn refresh_gauges(&self) {
        let entries = self.cache.as_ref().map_or(0, Cache::entry_count)
            + self.slow.as_ref().map_or(0, |slow| slow.cache.entry_count());
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
mod tests;
