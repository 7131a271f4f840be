//! The pool monitor: the figures of the pool in force, for the dashboard, and one log line with
//! them every `--db-pool-log-interval-s` (60 s by default, the design's period), so whoever reads
//! the logs sees how full the pool was without a metrics stack. Waiting requests are warned about
//! as they queue (`DbTelemetry::warn_if_many_waiters`), not only once a minute.
use std::time::Duration;

use serde::Serialize;

use super::Db;

/// The pool in force, at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolSnapshot {
    /// Connections open.
    pub size: u32,
    pub idle: usize,
    pub in_use: u32,
    /// Requests waiting for a connection.
    pub waiting: i64,
    pub min_connections: u32,
    pub max_connections: u32,
    pub acquire_timeout_ms: u64,
    /// Tuning generation of the settings in force.
    pub settings_generation: u64,
    /// Acquires that timed out since start.
    pub acquire_timeouts: u64,
}

impl Db {
    /// The pool in force now.
    pub fn pool_snapshot(&self) -> PoolSnapshot {
        let (settings, generation) = self.settings();
        let pool = self.pool();
        let idle = pool.num_idle();
        let telemetry = self.telemetry();
        PoolSnapshot {
            size: pool.size(),
            idle,
            in_use: pool
                .size()
                .saturating_sub(u32::try_from(idle).unwrap_or(u32::MAX)),
            waiting: telemetry.waiting.get(),
            min_connections: settings.min_connections,
            max_connections: settings.max_connections,
            acquire_timeout_ms: settings.acquire_timeout_ms,
            settings_generation: generation,
            acquire_timeouts: telemetry.acquire_timeouts.get(),
        }
    }
}

/// Logs the pool's figures every `interval`, the first after one interval, until the task is
/// dropped; acquire timeouts are counted since the previous line.
pub async fn watch(db: Db, interval: Duration) {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    let mut timeouts_before = db.telemetry().acquire_timeouts.get();
    loop {
        ticker.tick().await;
        let pool = db.pool_snapshot();
        tracing::info!(
            size = pool.size,
            idle = pool.idle,
            in_use = pool.in_use,
            waiting = pool.waiting,
            min_connections = pool.min_connections,
            max_connections = pool.max_connections,
            settings_generation = pool.settings_generation,
            acquire_timeouts = pool.acquire_timeouts.saturating_sub(timeouts_before),
            "database pool"
        );
        timeouts_before = pool.acquire_timeouts;
    }
}
