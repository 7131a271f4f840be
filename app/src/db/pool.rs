//! One generation of the connection pool: the sqlx pool, the settings it was built with (the
//! contract's [`PoolSettings`], as the tuning file states them), and the admission gate that lets us
//! count waiting acquirers (sqlx does not expose them).
use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use perfstack_contract::tuning::PoolSettings;
use sqlx::{PgPool, Postgres, pool::PoolConnection, postgres::PgPoolOptions};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How often a draining pool checks whether its last user has left.
const DRAIN_POLL: Duration = Duration::from_millis(50);
/// A replaced pool stays open at least this long, for callers that took its `PgPool` just
/// before the swap and have not checked a connection out yet.
const DRAIN_GRACE: Duration = Duration::from_secs(1);
/// A draining pool is closed after this long even if someone still holds it (a stuck stream).
const DRAIN_LIMIT: Duration = Duration::from_secs(120);

/// sqlx pool options for `settings`.
///
/// No ping before each checkout (`test_before_acquire`, on by default): it was a round trip of its
/// own before every statement, on top of the one sqlx makes when a connection is returned (which
/// already tests it and cannot be turned off). A connection that dies while idle fails one
/// statement, which is answered like any lost connection (503 `database_unavailable`) and closed.
pub fn options(settings: &PoolSettings) -> PgPoolOptions {
    PgPoolOptions::new()
        .test_before_acquire(false)
        .min_connections(settings.min_connections)
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout())
        .idle_timeout(settings.idle_timeout())
}

/// The settings an existing pool was built with.
pub fn settings_of(pool: &PgPool) -> PoolSettings {
    let options = pool.options();
    PoolSettings {
        min_connections: options.get_min_connections(),
        max_connections: options.get_max_connections(),
        acquire_timeout_ms: u64::try_from(options.get_acquire_timeout().as_millis()).unwrap_or(u64::MAX),
        idle_timeout_seconds: options.get_idle_timeout().map_or(0, |idle| idle.as_secs()),
    }
}

/// A parked connection older than this goes back to sqlx's pool (which then closes it after its
/// idle timeout), so a quiet app does not keep connections only because they were parked.
const PARK_LIMIT: Duration = Duration::from_secs(1);
/// A connection taken from sqlx goes back to it after this long of being passed from operation to
/// operation, so sqlx's own checks (its return test, `max_lifetime`) still see every connection.
const REUSE_LIMIT: Duration = Duration::from_secs(60);

/// A connection lent to one operation, and since when it has been passed on without sqlx.
pub struct Lent {
    pub conn: PoolConnection<Postgres>,
    since: Instant,
}

/// A parked connection: since when it has been lent without sqlx, and since when it waits here.
struct Parked {
    conn: PoolConnection<Postgres>,
    lent_since: Instant,
    parked_at: Instant,
}

pub struct PoolHandle {
    pub pool: PgPool,
    pub settings: PoolSettings,
    pub generation: u64,
    /// One permit per connection the pool may open: holding one means a connection is ours,
    /// waiting for one is what "waiting to acquire" means.
    gate: Arc<Semaphore>,
    /// Connections an operation finished with and handed straight back (see [`Slot::park`]).
    parked: Arc<Parking>,
}

/// Connections kept checked out of sqlx's pool between operations.
///
/// sqlx returns a dropped connection from a spawned task that first pings the server: one more
/// round trip per statement, and on a busy runtime two more waits in the run queue while the
/// connection is neither working nor lendable (docs/benchmarks.md, "The task page: where the time
/// went"). An operation that ends cleanly parks its connection here instead, and the next one takes
/// it at once. At most `max_connections - 1` are parked, so a caller of sqlx's pool itself (a
/// transaction) can always open or wait for one there; [`crate::db::Db::pool`] gives the parked
/// ones back first, for callers outside the slot gate (the job relay, health checks). Parked
/// connections older than [`PARK_LIMIT`] go back to sqlx, and a retired pool parks nothing.
#[derive(Default)]
struct Parking {
    connections: Mutex<Vec<Parked>>,
    retired: AtomicBool,
}

impl Parking {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Parked>> {
        // A panic while holding this lock leaves a valid Vec: keep using it.
        self.connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The most recently parked connection still young enough; older ones are given back to sqlx.
    fn take(&self) -> Option<Lent> {
        let (fresh, stale) = {
            let mut parked = self.lock();
            let fresh = parked.pop().filter(|p| p.parked_at.elapsed() < PARK_LIMIT);
            let stale = if fresh.is_some() {
                Vec::new()
            } else {
                std::mem::take(&mut *parked)
            };
            (fresh, stale)
        };
        // Dropped outside the lock: each drop spawns sqlx's return task.
        drop(stale);
        fresh.map(|p| Lent {
            conn: p.conn,
            since: p.lent_since,
        })
    }

    /// Parks `lent` unless the pool is retired, `limit` are parked already or it has been passed on
    /// for [`REUSE_LIMIT`]; otherwise it is dropped, and sqlx's pool takes it back.
    fn park(&self, lent: Lent, limit: usize) {
        if self.retired.load(Ordering::Acquire) || lent.since.elapsed() >= REUSE_LIMIT {
            return;
        }
        let mut parked = self.lock();
        if parked.len() < limit {
            parked.push(Parked {
                conn: lent.conn,
                lent_since: lent.since,
                parked_at: Instant::now(),
            });
        }
    }

    /// Gives every connection parked longer than [`PARK_LIMIT`] back to sqlx.
    fn sweep(&self) {
        let stale: Vec<_> = {
            let mut parked = self.lock();
            let (stale, fresh) = std::mem::take(&mut *parked)
                .into_iter()
                .partition(|p| p.parked_at.elapsed() >= PARK_LIMIT);
            *parked = fresh;
            stale
        };
        drop(stale);
    }

    /// Gives every parked connection back to sqlx.
    fn give_back(&self) {
        let all = std::mem::take(&mut *self.lock());
        drop(all);
    }

    /// Parks nothing from now on and gives every parked connection back to sqlx.
    fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        self.give_back();
    }

    fn count(&self) -> usize {
        self.lock().len()
    }
}

/// The right to use one connection of one pool generation; keeps that generation alive.
pub struct Slot {
    handle: Arc<PoolHandle>,
    _permit: OwnedSemaphorePermit,
}

impl Slot {
    pub fn pool(&self) -> &PgPool {
        &self.handle.pool
    }

    /// A connection for this slot: a parked one if there is one, else one from sqlx's pool.
    pub async fn connection(&self) -> Result<Lent, sqlx::Error> {
        match self.handle.parked.take() {
            Some(lent) => Ok(lent),
            None => Ok(Lent {
                conn: self.handle.pool.acquire().await?,
                since: Instant::now(),
            }),
        }
    }

    /// Hands back a connection whose operation finished cleanly, for the next operation to take
    /// without a return round trip (see [`Parking`]). A connection whose operation failed or was
    /// cancelled is dropped instead, so sqlx tests it before lending it again.
    pub fn park(&self, lent: Lent) {
        let limit = usize::try_from(self.handle.settings.max_connections.saturating_sub(1)).unwrap_or(0);
        self.handle.parked.park(lent, limit);
    }
}

impl PoolHandle {
    pub fn new(pool: PgPool, settings: PoolSettings, generation: u64) -> Self {
        let permits = usize::try_from(settings.max_connections).unwrap_or(usize::MAX);
        Self {
            pool,
            settings,
            generation,
            gate: Arc::new(Semaphore::new(permits)),
            parked: Arc::default(),
        }
    }

    /// Connections open and idle: sqlx's count of both, with parked connections counted idle
    /// (sqlx sees them checked out).
    pub fn occupancy(&self) -> (u32, usize) {
        self.parked.sweep();
        let idle = self.pool.num_idle() + self.parked.count();
        (self.pool.size(), idle.min(self.pool.size() as usize))
    }

    /// Gives every parked connection back to sqlx's pool (parking goes on).
    pub fn give_back_parked(&self) {
        self.parked.give_back();
    }

    /// Gives parked connections back and parks no more: before closing the pool (`PgPool::close`
    /// waits for every checked-out connection, parked ones included).
    pub fn retire(&self) {
        self.parked.retire();
    }

    /// The same pool and gate under another tuning generation.
    pub fn with_generation(&self, generation: u64) -> Self {
        Self {
            pool: self.pool.clone(),
            settings: self.settings,
            generation,
            gate: Arc::clone(&self.gate),
            parked: Arc::clone(&self.parked),
        }
    }

    /// A slot without waiting, when one is free.
    pub fn try_slot(self: &Arc<Self>) -> Option<Slot> {
        let permit = Arc::clone(&self.gate).try_acquire_owned().ok()?;
        Some(Slot {
            handle: Arc::clone(self),
            _permit: permit,
        })
    }

    /// Waits up to `timeout` for a slot.
    pub async fn slot(self: &Arc<Self>, timeout: Duration) -> Result<Slot, sqlx::Error> {
        match tokio::time::timeout(timeout, Arc::clone(&self.gate).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Slot {
                handle: Arc::clone(self),
                _permit: permit,
            }),
            Ok(Err(_closed)) => Err(sqlx::Error::PoolClosed),
            Err(_elapsed) => Err(sqlx::Error::PoolTimedOut),
        }
    }
}

/// Closes a replaced pool once nobody uses it: no slot holds it (the `Arc` is ours alone) and
/// no connection is checked out (streams that took the `PgPool` directly), or after [`DRAIN_LIMIT`].
pub async fn drain(old: Arc<PoolHandle>) {
    let start = tokio::time::Instant::now();
    tokio::time::sleep(DRAIN_GRACE).await;
    loop {
        let (size, idle) = old.occupancy();
        let in_use = size as usize - idle;
        if Arc::strong_count(&old) == 1 && in_use == 0 {
            break;
        }
        if start.elapsed() >= DRAIN_LIMIT {
            tracing::warn!(
                generation = old.generation,
                in_use,
                "closing the replaced pool while connections are still checked out"
            );
            break;
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
    old.retire();
    old.pool.close().await;
    tracing::info!(generation = old.generation, "replaced pool drained and closed");
}
