//! Database access: the pool handle every query goes through, and the query monitor that times them.
mod fetch;
pub mod indexes;
pub mod migrate;
pub mod page;
mod pool;
pub mod pool_monitor;
pub mod projects;
pub mod resource;
pub mod roles;
pub mod seed;
pub mod server_limits;
pub mod stats;
pub mod task_inserts;
pub mod tasks;
pub mod telemetry;
pub mod totals;
pub mod tuning;
pub mod tx;
pub mod users;

use std::{future::Future, sync::Arc, time::Instant};

use arc_swap::ArcSwap;
use sqlx::{ConnectOptions, PgPool, postgres::PgConnectOptions};
use tracing::Instrument as _;

use perfstack_contract::tuning::PoolSettings;

use self::{
    pool::{PoolHandle, Slot},
    telemetry::DbTelemetry,
};
use crate::config::{DEFAULT_WAITER_WARNING, DbConfig, SessionLimits};

/// Errors of connecting; query errors stay `sqlx::Error`.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("the database URL is not valid")]
    InvalidUrl(#[source] sqlx::Error),
    #[error("could not connect to PostgreSQL")]
    Connect(#[source] sqlx::Error),
}

/// The shared handle to PostgreSQL. Cheap to clone. The pool inside can be replaced at run time
/// (live resizing, [`Db::apply_settings`]); callers take the current pool per query.
#[derive(Clone)]
pub struct Db {
    pool: Arc<ArcSwap<PoolHandle>>,
    connect: PgConnectOptions,
    monitor: QueryMonitor,
    telemetry: DbTelemetry,
    started: Instant,
    waiter_warning: Arc<std::sync::atomic::AtomicU32>,
    /// Waiting acquirers allowed per connection of the pool maximum (0: no bound).
    queue_per_connection: Arc<std::sync::atomic::AtomicU32>,
}

impl Db {
    /// Connects with the settings from configuration and checks the connection once (`migrate`,
    /// `seed`: without the database there is nothing to do).
    pub async fn connect(cfg: &DbConfig) -> Result<Self, ConnectError> {
        let connect = connect_options(cfg)?;
        let settings = cfg.pool_settings();
        let pool = pool::options(&settings)
            .connect_with(connect.clone())
            .await
            .map_err(ConnectError::Connect)?;
        Ok(Self::assemble(
            pool,
            settings,
            connect,
            QueryMonitor::new(cfg.slow_query()),
        ))
    }

    /// A handle whose connections open on first use, each with the session `limits`, and whose
    /// wait queue is bounded by them (`serve`, `worker`): the process starts whether or not the
    /// database answers yet (see [`Db::wait_until_answering`]).
    pub fn connect_lazy(cfg: &DbConfig, limits: &SessionLimits) -> Result<Self, ConnectError> {
        let connect = connect_options(cfg)?.options(limits.parameters());
        let settings = cfg.pool_settings();
        let pool = pool::options(&settings).connect_lazy_with(connect.clone());
        let db = Self::assemble(pool, settings, connect, QueryMonitor::new(cfg.slow_query()));
        db.set_queue_per_connection(limits.queue_per_connection);
        Ok(db)
    }

    /// Returns once the database answered a query, retrying with backoff (0.25 s doubling up to
    /// 10 s) and logging each failure.
    pub async fn wait_until_answering(&self) {
        let mut pause = std::time::Duration::from_millis(250);
        loop {
            match self.fetch_value::<i32>("startup.ping", "SELECT 1").await {
                Ok(_) => return,
                Err(err) => {
                    tracing::warn!(error = %err, retry_in_ms = pause.as_millis(), "the database does not answer yet");
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(std::time::Duration::from_secs(10));
        }
    }

    /// A handle around `pool`, with fresh telemetry that `monitor` also records into (unless
    /// it already records somewhere).
    fn assemble(
        pool: PgPool,
        settings: PoolSettings,
        connect: PgConnectOptions,
        monitor: QueryMonitor,
    ) -> Self {
        let telemetry = DbTelemetry::default();
        telemetry.settings_in_force(&settings, 0);
        let monitor = if monitor.telemetry.is_some() {
            monitor
        } else {
            monitor.with_telemetry(telemetry.clone())
        };
        Self {
            pool: Arc::new(ArcSwap::from_pointee(PoolHandle::new(pool, settings, 0))),
            connect,
            monitor,
            telemetry,
            started: Instant::now(),
            waiter_warning: Arc::new(DEFAULT_WAITER_WARNING.into()),
            queue_per_connection: Arc::new(0.into()),
        }
    }

    /// Wraps an existing pool (tests, tools), keeping its connect options for replacements.
    pub fn from_pool(pool: PgPool, monitor: QueryMonitor) -> Self {
        let connect = PgConnectOptions::clone(&pool.connect_options());
        let settings = pool::settings_of(&pool);
        Self::assemble(pool, settings, connect, monitor)
    }

    /// A separate handle with its own (lazily connected) pool and the same monitor, e.g. a
    /// single session with other runtime parameters for DDL.
    pub fn derive(&self, connect: PgConnectOptions, settings: &PoolSettings) -> Self {
        let pool = pool::options(settings).connect_lazy_with(connect.clone());
        Self::assemble(pool, *settings, connect, self.monitor.clone())
    }

    /// The pool in force now.
    pub fn pool(&self) -> PgPool {
        self.pool.load().pool.clone()
    }

    /// Settings and tuning generation in force.
    pub fn settings(&self) -> (PoolSettings, u64) {
        let handle = self.pool.load();
        (handle.settings, handle.generation)
    }

    /// Options used to open new connections (for a replacement pool).
    pub fn connect_options(&self) -> &PgConnectOptions {
        &self.connect
    }

    /// Builds a pool with `settings` (connections open lazily).
    pub fn build_pool(&self, settings: &PoolSettings) -> PgPool {
        pool::options(settings).connect_lazy_with(self.connect.clone())
    }

    /// Puts a new pool with `settings` in force without failing anyone: queries already running
    /// keep the old pool, which is closed once they are all done (see `pool::drain`).
    pub fn apply_settings(&self, settings: PoolSettings, generation: u64) {
        let current = self.pool.load_full();
        if current.settings == settings {
            // Same pool, newer generation: nothing to rebuild, only the generation to report.
            self.pool.store(Arc::new(current.with_generation(generation)));
            self.telemetry.settings_in_force(&settings, generation);
            tracing::info!(generation, "tuning generation applied; pool settings unchanged");
            return;
        }
        let fresh = Arc::new(PoolHandle::new(self.build_pool(&settings), settings, generation));
        let old = self.pool.swap(fresh);
        self.telemetry.settings_in_force(&settings, generation);
        self.telemetry.pool_swaps.inc();
        tracing::info!(
            generation,
            min_connections = settings.min_connections,
            max_connections = settings.max_connections,
            acquire_timeout_ms = settings.acquire_timeout_ms,
            idle_timeout_s = settings.idle_timeout_seconds,
            previous_max = old.settings.max_connections,
            "database pool settings applied"
        );
        tokio::spawn(pool::drain(old));
    }

    pub fn monitor(&self) -> &QueryMonitor {
        &self.monitor
    }

    pub fn telemetry(&self) -> &DbTelemetry {
        &self.telemetry
    }

    /// Waiting acquirers from which a warning is logged (0: never).
    pub fn set_waiter_warning(&self, threshold: u32) {
        self.waiter_warning
            .store(threshold, std::sync::atomic::Ordering::Relaxed);
    }

    /// Waiting acquirers allowed per connection of the pool's maximum before further ones are
    /// shed at once (0: no bound).
    pub fn set_queue_per_connection(&self, per_connection: u32) {
        self.queue_per_connection
            .store(per_connection, std::sync::atomic::Ordering::Relaxed);
    }

    /// Refreshes the occupancy gauges from the pool in force (call before a scrape).
    pub fn refresh_pool_gauges(&self) {
        let handle = self.pool.load();
        self.telemetry
            .pool_occupancy(handle.pool.size(), handle.pool.num_idle());
    }

    /// Waits for a connection slot of the pool in force: counted in `waiting` while it waits,
    /// timed into the acquire histogram, and failed with `PoolTimedOut` after the acquire timeout.
    async fn acquire_slot(&self) -> Result<Slot, sqlx::Error> {
        let handle = self.pool.load_full();
        let start = Instant::now();
        let immediate = handle.try_slot();
        let slot = match immediate {
            Some(slot) => Ok(slot),
            None => {
                let waiter = Waiter::count(&self.telemetry.waiting);
                let waiting = self.telemetry.waiting.get();
                let per_connection = self
                    .queue_per_connection
                    .load(std::sync::atomic::Ordering::Relaxed);
                let bound = i64::from(per_connection) * i64::from(handle.settings.max_connections);
                if per_connection > 0 && waiting > bound {
                    // Queueing would only turn into an acquire timeout later: say so now.
                    drop(waiter);
                    self.telemetry.shed.inc();
                    return Err(sqlx::Error::PoolTimedOut);
                }
                self.telemetry.warn_if_many_waiters(
                    waiting,
                    self.waiter_warning.load(std::sync::atomic::Ordering::Relaxed),
                    self.started.elapsed().as_secs(),
                );
                let slot = handle.slot(handle.settings.acquire_timeout()).await;
                drop(waiter);
                slot
            }
        };
        self.telemetry
            .acquire_duration
            .observe(start.elapsed().as_secs_f64());
        if slot.is_err() {
            self.telemetry.acquire_timeouts.inc();
        }
        slot
    }

    /// Runs one database operation through the query monitor: waits for a pool slot (see
    /// `acquire_slot`), then times the operation per `op` (a stable operation name such as
    /// `users.get`), logged when slow with `sql` truncated and without parameter values.
    pub async fn timed<T, F, Fut>(&self, op: &'static str, sql: &str, f: F) -> Result<T, sqlx::Error>
    where
        F: FnOnce(PgPool) -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let span = crate::telemetry::spans::database(op, sql);
        self.timed_in(op, sql, f).instrument(span).await
    }

    async fn timed_in<T, F, Fut>(&self, op: &'static str, sql: &str, f: F) -> Result<T, sqlx::Error>
    where
        F: FnOnce(PgPool) -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let slot = match self.acquire_slot().await {
            Ok(slot) => slot,
            Err(err) => {
                self.monitor.observe(op, sql, std::time::Duration::ZERO, false);
                return Err(err);
            }
        };
        let start = Instant::now();
        let result = f(slot.pool().clone()).await;
        drop(slot);
        if matches!(result, Err(sqlx::Error::PoolTimedOut)) {
            self.telemetry.acquire_timeouts.inc();
        }
        self.monitor.observe(op, sql, start.elapsed(), result.is_ok());
        result
    }
}

/// One acquirer counted in `waiting` for as long as it lives. Dropping it (also when the caller's
/// future is dropped mid-wait: a request timeout, a client that went away) takes it off the gauge,
/// which otherwise kept every cancelled waiter and read far above the requests in flight.
struct Waiter<'a>(&'a prometheus_client::metrics::gauge::Gauge);

impl<'a> Waiter<'a> {
    fn count(gauge: &'a prometheus_client::metrics::gauge::Gauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The connect options of `cfg`'s URL. The query monitor logs slow queries (truncated, without
/// values); sqlx's own statement logging would repeat them in full.
fn connect_options(cfg: &DbConfig) -> Result<PgConnectOptions, ConnectError> {
    let connect: PgConnectOptions = cfg.expose_url().parse().map_err(ConnectError::InvalidUrl)?;
    Ok(connect
        .log_statements(log::LevelFilter::Off)
        .log_slow_statements(log::LevelFilter::Off, std::time::Duration::from_secs(3600)))
}

/// Times queries and reports slow ones.
#[derive(Clone)]
pub struct QueryMonitor {
    slow: std::time::Duration,
    telemetry: Option<DbTelemetry>,
}

/// Longest statement text that goes into a slow-query log line.
const LOGGED_STATEMENT_CHARS: usize = 200;

impl QueryMonitor {
    pub fn new(slow: std::time::Duration) -> Self {
        Self {
            slow,
            telemetry: None,
        }
    }

    /// Also records every operation into the query metrics.
    pub fn with_telemetry(mut self, telemetry: DbTelemetry) -> Self {
        self.telemetry = Some(telemetry);
        self
    }

    pub fn slow_threshold(&self) -> std::time::Duration {
        self.slow
    }

    /// Records one finished operation.
    pub fn observe(&self, op: &'static str, sql: &str, elapsed: std::time::Duration, ok: bool) {
        if let Some(telemetry) = &self.telemetry {
            telemetry.query_finished(op, elapsed.as_secs_f64(), ok);
        }
        if elapsed >= self.slow {
            let statement = loggable_statement(sql);
            tracing::warn!(
                operation = op,
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                ok,
                statement,
                "slow query"
            );
        }
    }
}

/// The statement as it goes into a log line: whitespace collapsed, cut to
/// [`LOGGED_STATEMENT_CHARS`] characters. Statements carry `$n` placeholders, never values.
pub fn loggable_statement(sql: &str) -> String {
    let collapsed = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut chars = collapsed.chars();
    let mut out: String = chars.by_ref().take(LOGGED_STATEMENT_CHARS).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_statements_are_collapsed_and_truncated() {
        assert_eq!(
            loggable_statement("SELECT *\n   FROM users\tWHERE id = $1"),
            "SELECT * FROM users WHERE id = $1"
        );
        let long = format!("SELECT {} FROM t", "é, ".repeat(300));
        let logged = loggable_statement(&long);
        assert_eq!(logged.chars().count(), LOGGED_STATEMENT_CHARS + 1);
        assert!(logged.ends_with('…'));
    }
}
