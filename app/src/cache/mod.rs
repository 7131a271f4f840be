//! Two-level cache-aside for entities read by id: L1 in process (moka, bounded by bytes, short
//! TTL), L2 Redis (shared by replicas, 1 h TTL), then the database.
//!
//! - Concurrent misses of one key run one load (moka coalesces initialisations).
//! - Writes go to the database first, then [`Cache::evict`] (through [`writes::retire`], which
//!   decides what each write retires): the key's epoch moves, both levels drop it, and the other
//!   replicas hear it over Redis pub/sub and drop it from their L1.
//! - An L1 entry carries the epoch its load started in; an entry behind its key's epoch is
//!   stale and reloaded, so a load racing a write cannot serve the old value after the write.
//! - Redis being down or slow costs one short timeout, is counted and logged, and the request
//!   goes on with the database; see [`redis_tier`].
pub mod entities;
mod epochs;
mod eviction;
pub mod memory_guard;
pub mod redis_figures;
pub mod redis_tier;
pub mod telemetry;
pub mod writes;

use std::{
    future::Future,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use serde::{Serialize, de::DeserializeOwned};
use tokio::task::JoinHandle;

use crate::config::CacheConfig;

use self::{
    epochs::Epochs,
    redis_tier::RedisTier,
    telemetry::{CacheTelemetry, L1, L2},
};

/// Times a read retries after finding its entry stale before it reads the database directly.
const STALE_RETRIES: usize = 3;

/// The cache key of an entity: `user:42`, `project:7`, `task:9`.
pub fn entity_key(kind: &'static str, id: i64) -> String {
    format!("{kind}:{id}")
}

/// Errors of setting the cache up.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("the Redis URL is not valid")]
    InvalidRedisUrl(#[source] redis::RedisError),
}

/// An L1 entry: the row's JSON as the API sends it (a hit is served without decoding it), and the
/// epoch its load started in.
#[derive(Debug)]
struct Entry {
    epoch: u64,
    json: Bytes,
}

#[derive(Debug, thiserror::Error)]
enum LoadFailure {
    #[error("not found")]
    Missing,
    #[error(transparent)]
    Database(sqlx::Error),
}

struct Inner {
    l1: moka::future::Cache<String, Arc<Entry>>,
    l2: Option<Arc<RedisTier>>,
    epochs: Epochs,
    telemetry: CacheTelemetry,
    /// Names this replica in eviction messages, so it ignores its own.
    instance: String,
    /// Whether the eviction subscription is up.
    subscribed: std::sync::atomic::AtomicBool,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Inner {
    /// Drops `key` from L1 and moves its epoch past every load in flight.
    async fn forget(&self, key: &str) {
        self.epochs.bump(key);
        self.l1.invalidate(key).await;
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(tasks) = self.tasks.get_mut() {
            for task in tasks.drain(..) {
                task.abort();
            }
        }
    }
}

/// The cache. Cheap to clone; background tasks stop when the last clone is dropped.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

impl Cache {
    /// A cache with L2 when `redis_url` is given. Connects to Redis in the background, so a
    /// Redis that is down at start only means no L2 until it comes up. Needs a Tokio runtime.
    pub fn new(cfg: &CacheConfig, redis_url: Option<&str>) -> Result<Self, CacheError> {
        Self::scoped(cfg, redis_url, Some("default"))
    }

    /// Like [`Cache::new`], with Redis keys and channel under `scope`; with `None`, Redis is
    /// not used until [`Cache::set_scope`] names it (see [`crate::db::stats::cache_scope`]).
    pub fn scoped(
        cfg: &CacheConfig,
        redis_url: Option<&str>,
        scope: Option<&str>,
    ) -> Result<Self, CacheError> {
        let Some(url) = redis_url else {
            return Ok(Self::without_redis(cfg));
        };
        let client = redis::Client::open(url).map_err(CacheError::InvalidRedisUrl)?;
        let telemetry = CacheTelemetry::new();
        let tier = Arc::new(RedisTier::new(
            client,
            cfg.redis_timeout(),
            cfg.l2_ttl(),
            telemetry.clone(),
        ));
        if let Some(scope) = scope {
            tier.set_scope(scope);
        }
        tier.start_connecting();
        let cache = Self::assemble(cfg, Some(tier), telemetry);
        cache.spawn(eviction::listen(Arc::downgrade(&cache.inner)));
        cache.spawn(eviction::retry_pending(Arc::downgrade(&cache.inner)));
        Ok(cache)
    }

    /// An L1-only cache (no Redis configured).
    pub fn without_redis(cfg: &CacheConfig) -> Self {
        Self::assemble(cfg, None, CacheTelemetry::new())
    }

    fn assemble(cfg: &CacheConfig, l2: Option<Arc<RedisTier>>, telemetry: CacheTelemetry) -> Self {
        let l1 = moka::future::Cache::builder()
            .max_capacity(cfg.l1_max_bytes)
            .weigher(|key: &String, entry: &Arc<Entry>| {
                u32::try_from(key.len() + entry.json.len() + 64).unwrap_or(u32::MAX)
            })
            .time_to_live(cfg.l1_ttl())
            .build();
        Self {
            inner: Arc::new(Inner {
                l1,
                l2,
                epochs: Epochs::default(),
                telemetry,
                instance: format!("{:016x}", rand::random::<u64>()),
                subscribed: std::sync::atomic::AtomicBool::new(false),
                tasks: Mutex::new(Vec::new()),
            }),
        }
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        if let Ok(mut tasks) = self.inner.tasks.lock() {
            tasks.push(handle);
        }
    }

    pub fn telemetry(&self) -> &CacheTelemetry {
        &self.inner.telemetry
    }

    /// Whether a Redis L2 is configured.
    pub fn has_l2(&self) -> bool {
        self.inner.l2.is_some()
    }

    /// Names the Redis scope of a cache built without one; only the first call counts.
    pub fn set_scope(&self, scope: &str) {
        if let Some(l2) = &self.inner.l2 {
            l2.set_scope(scope);
        }
    }

    /// Waits up to `timeout` until Redis is connected and evictions are subscribed (at once
    /// without Redis). The app serves either way; this only lets the first requests use L2.
    pub async fn wait_until_ready(&self, timeout: std::time::Duration) -> bool {
        let Some(l2) = &self.inner.l2 else {
            return true;
        };
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if l2.is_connected()
                && l2.has_scope()
                && self.inner.subscribed.load(std::sync::atomic::Ordering::Acquire)
            {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// `Some(up)` when Redis is configured.
    pub async fn redis_up(&self) -> Option<bool> {
        match &self.inner.l2 {
            Some(l2) => Some(l2.ping().await),
            None => None,
        }
    }

    /// Memory and keys of the Redis server; `None` without Redis or when it does not answer.
    pub async fn redis_figures(&self) -> Option<redis_figures::RedisFigures> {
        self.inner.l2.as_ref()?.server_figures().await
    }

    /// Reads `key` from L1, then L2, then `load` (the database). `Ok(None)` when `load` found
    /// nothing (absences are not cached). Database errors are returned, cache trouble is not.
    pub async fn get_or_load<T, F, Fut>(&self, key: &str, load: F) -> Result<Option<T>, sqlx::Error>
    where
        T: Serialize + DeserializeOwned,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Option<T>, sqlx::Error>>,
    {
        let Some(json) = self.get_json_or_load(key, &load).await? else {
            return Ok(None);
        };
        match serde_json::from_slice(&json) {
            Ok(value) => Ok(Some(value)),
            Err(err) => {
                tracing::warn!(key, error = %err, "dropping a cache entry that does not decode");
                self.inner.l1.invalidate(key).await;
                load().await
            }
        }
    }

    /// Like [`Cache::get_or_load`], but the value's JSON (what `serde_json` writes for `T`) as it is
    /// cached: a GET by id sends it as it is, without decoding and encoding the row again.
    pub async fn get_json_or_load<T, F, Fut>(&self, key: &str, load: F) -> Result<Option<Bytes>, sqlx::Error>
    where
        T: Serialize + DeserializeOwned,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Option<T>, sqlx::Error>>,
    {
        let inner = &self.inner;
        for _ in 0..STALE_RETRIES {
            let epoch = inner.epochs.current(key);
            let init = self.load_through_l2(key, epoch, &load);
            // By reference: the key is copied only when the entry is inserted, not on a hit.
            let entry = match inner.l1.entry_by_ref(key).or_try_insert_with(init).await {
                Ok(entry) => entry,
                Err(failure) => return failed_load(failure),
            };
            let fresh = entry.is_fresh();
            let entry = entry.into_value();
            if entry.epoch != inner.epochs.current(key) {
                inner.telemetry.stale_rejected.inc();
                inner.l1.invalidate(key).await;
                continue;
            }
            let level_counter = if fresh {
                &inner.telemetry.misses
            } else {
                &inner.telemetry.hits
            };
            level_counter.get_or_create(&L1).inc();
            return Ok(Some(entry.json.clone()));
        }
        // Written to again and again while this read ran: the database's row, not cached.
        match load().await? {
            Some(value) => serde_json::to_vec(&value)
                .map(|json| Some(Bytes::from(json)))
                .map_err(|err| sqlx::Error::Decode(Box::new(err))),
            None => Ok(None),
        }
    }

    /// The L1 initialiser: L2, else the database (then stored in L2 if nobody wrote meanwhile).
    async fn load_through_l2<T, F, Fut>(
        &self,
        key: &str,
        epoch: u64,
        load: &F,
    ) -> Result<Arc<Entry>, LoadFailure>
    where
        T: Serialize + DeserializeOwned,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Option<T>, sqlx::Error>>,
    {
        let inner = &self.inner;
        let l2_read = match &inner.l2 {
            // Redis may still hold the value of a write whose eviction has not reached it.
            Some(l2) if !l2.is_pending(key) => l2.get(key).await,
            _ => None,
        };
        if let Some(json) = l2_read.as_ref().and_then(|read| read.value.as_ref())
            && serde_json::from_str::<T>(json).is_ok()
        {
            inner.telemetry.hits.get_or_create(&L2).inc();
            return Ok(Arc::new(Entry {
                epoch,
                json: Bytes::copy_from_slice(json.as_bytes()),
            }));
        }
        if l2_read.is_some() {
            inner.telemetry.misses.get_or_create(&L2).inc();
        }
        let value = load()
            .await
            .map_err(LoadFailure::Database)?
            .ok_or(LoadFailure::Missing)?;
        let json = serde_json::to_string(&value)
            .map_err(|err| LoadFailure::Database(sqlx::Error::Decode(Box::new(err))))?;
        if let (Some(l2), Some(read)) = (&inner.l2, &l2_read) {
            l2.set_if_unchanged(key, &read.version, &json).await;
        }
        Ok(Arc::new(Entry {
            epoch,
            json: Bytes::from(json),
        }))
    }

    /// After a successful database write of `key`: drops it from both levels here and from
    /// every replica's L1. Never fails; an eviction that cannot reach Redis is retried.
    pub async fn evict(&self, key: &str) {
        let inner = &self.inner;
        inner.forget(key).await;
        inner.telemetry.eviction("local").inc();
        if let Some(l2) = &inner.l2 {
            l2.evict(key, &eviction::message(&inner.instance, key)).await;
            // A load that started after the first bump may still have read the old value from
            // Redis before the deletion landed: move the epoch past it too.
            inner.forget(key).await;
        }
    }

    /// Drops every L1 entry (memory guard, lost eviction messages).
    pub fn clear_l1(&self) {
        self.inner.l1.invalidate_all();
    }

    /// Refreshes the L1 size gauges (call before a scrape).
    pub async fn refresh_gauges(&self) {
        let inner = &self.inner;
        inner.l1.run_pending_tasks().await;
        inner
            .telemetry
            .l1_entries
            .set(i64::try_from(inner.l1.entry_count()).unwrap_or(i64::MAX));
        inner
            .telemetry
            .l1_bytes
            .set(i64::try_from(inner.l1.weighted_size()).unwrap_or(i64::MAX));
    }
}

fn failed_load<T>(failure: Arc<LoadFailure>) -> Result<Option<T>, sqlx::Error> {
    match Arc::try_unwrap(failure) {
        Ok(LoadFailure::Missing) => Ok(None),
        Ok(LoadFailure::Database(err)) => Err(err),
        Err(shared) => match shared.as_ref() {
            LoadFailure::Missing => Ok(None),
            LoadFailure::Database(err) => Err(copy_error(err)),
        },
    }
}

/// A copy of a load error for each waiter that shared it (`sqlx::Error` is not `Clone`): the
/// kinds handlers map to a status (pool exhausted or closed, row missing) keep their variant.
fn copy_error(err: &sqlx::Error) -> sqlx::Error {
    match err {
        sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
        sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
        sqlx::Error::RowNotFound => sqlx::Error::RowNotFound,
        sqlx::Error::Io(io) => sqlx::Error::Io(std::io::Error::new(io.kind(), io.to_string())),
        other => sqlx::Error::Protocol(format!("shared load failed: {other}")),
    }
}
