//! Transactions through the query monitor: the same pool gate and telemetry as `Db::timed`, for
//! work that must commit or roll back as one (a task write and the email it requests).
use std::time::Instant;

use sqlx::{PgConnection, Postgres, Transaction};
use tracing::Instrument as _;

use super::{Db, pool::Slot};

/// An open transaction holding a slot of the pool gate, timed as one operation from `BEGIN` to
/// `COMMIT` or rollback. Dropping it without [`TimedTx::commit`] rolls back (sqlx does so when
/// the connection returns to the pool) and records a failed operation.
pub struct TimedTx {
    tx: Transaction<'static, Postgres>,
    timing: Timing,
}

/// Records the transaction into the query monitor exactly once, also when it is dropped.
struct Timing {
    db: Db,
    op: &'static str,
    sql: &'static str,
    start: Instant,
    recorded: bool,
    /// Released after the transaction has ended, like the slot of `Db::timed`.
    _slot: Slot,
    /// The transaction's span (see `telemetry::spans`), closed when it ends.
    _span: tracing::Span,
}

impl Timing {
    fn record<T>(&mut self, result: &Result<T, sqlx::Error>) {
        if matches!(result, Err(sqlx::Error::PoolTimedOut)) {
            self.db.telemetry.acquire_timeouts.inc();
        }
        self.observe(result.is_ok());
    }

    fn observe(&mut self, ok: bool) {
        if !self.recorded {
            self.recorded = true;
            self.db
                .monitor
                .observe(self.op, self.sql, self.start.elapsed(), ok);
        }
    }
}

impl Drop for Timing {
    fn drop(&mut self) {
        // Not recorded yet: an error path dropped the transaction, which rolls it back.
        self.observe(false);
    }
}

impl Db {
    /// Begins a transaction timed as `op`. `sql` describes its statements for the slow-query log
    /// (placeholders, never values). Waits for a pool slot exactly as [`Db::timed`] does.
    pub async fn begin(&self, op: &'static str, sql: &'static str) -> Result<TimedTx, sqlx::Error> {
        let span = crate::telemetry::spans::database(op, sql);
        let slot = match self.acquire_slot().instrument(span.clone()).await {
            Ok(slot) => slot,
            Err(err) => {
                self.monitor.observe(op, sql, std::time::Duration::ZERO, false);
                return Err(err);
            }
        };
        let pool = slot.pool().clone();
        let mut timing = Timing {
            db: self.clone(),
            op,
            sql,
            start: Instant::now(),
            recorded: false,
            _slot: slot,
            _span: span.clone(),
        };
        match pool.begin().instrument(span).await {
            Ok(tx) => Ok(TimedTx { tx, timing }),
            Err(err) => {
                let failed = Err(err);
                timing.record(&failed);
                failed
            }
        }
    }
}

impl TimedTx {
    /// The transaction's connection: `tx.conn()` is an executor for the statements in it.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Commits; the operation counts as failed when the commit does.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        let Self { tx, mut timing } = self;
        let result = tx.commit().await;
        timing.record(&result);
        result
    }

    /// Rolls back on purpose (there was nothing to write); counts as a successful operation.
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        let Self { tx, mut timing } = self;
        let result = tx.rollback().await;
        timing.record(&result);
        result
    }
}
