//! One generation of the connection pool: the sqlx pool, the settings it was built with (the
//! contract's [`PoolSettings`], as the tuning file states them), and the admission gate that lets us
//! count waiting acquirers (sqlx does not expose them).
use std::{sync::Arc, time::Duration};

use perfstack_contract::tuning::PoolSettings;
use sqlx::{PgPool, postgres::PgPoolOptions};
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

pub struct PoolHandle {
    pub pool: PgPool,
    pub settings: PoolSettings,
    pub generation: u64,
    /// One permit per connection the pool may open: holding one means a connection is ours,
    /// waiting for one is what "waiting to acquire" means.
    gate: Arc<Semaphore>,
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
}

impl PoolHandle {
    pub fn new(pool: PgPool, settings: PoolSettings, generation: u64) -> Self {
        let permits = usize::try_from(settings.max_connections).unwrap_or(usize::MAX);
        Self {
            pool,
            settings,
            generation,
            gate: Arc::new(Semaphore::new(permits)),
        }
    }

    /// The same pool and gate under another tuning generation.
    pub fn with_generation(&self, generation: u64) -> Self {
        Self {
            pool: self.pool.clone(),
            settings: self.settings,
            generation,
            gate: Arc::clone(&self.gate),
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
        let in_use = old.pool.size() as usize - old.pool.num_idle().min(old.pool.size() as usize);
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
    old.pool.close().await;
    tracing::info!(generation = old.generation, "replaced pool drained and closed");
}
