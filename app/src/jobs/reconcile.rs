//! The reconciler: compares the PostgreSQL record of unfinished jobs (`jobs::ledger`) with Redis.
//! A job Redis does not know (it restarted empty, lost its volume, was flushed) is enqueued again
//! under the same id, with the attempts the ledger counted; a job Redis finished whose ledger row
//! was not settled (a crash between the two writes, a lease that expired on the last attempt) has
//! its row settled. The same id means the handlers' idempotency (one `reports` / `outbox` row per
//! job id) keeps the effect single even when the lost job had already run.
use std::collections::HashMap;

use super::{
    error::JobsError,
    ledger::{self, Settled},
    queue::JobQueue,
    record::{JobId, JobState, Queue},
};
use crate::db::Db;

/// What one walk over the unfinished jobs did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcilePass {
    /// Unfinished ledger rows looked up in Redis.
    pub checked: u64,
    /// Jobs enqueued again, per queue.
    pub reenqueued: HashMap<Queue, u64>,
    /// Ledger rows settled from Redis' finished state.
    pub settled: u64,
    /// Finished ledger rows deleted past their keeping time.
    pub pruned: u64,
}

impl ReconcilePass {
    pub fn reenqueued_total(&self) -> u64 {
        self.reenqueued.values().sum()
    }
}

/// Walks every unfinished job of the ledger in batches of `batch` (id order; one PostgreSQL query
/// and one pipelined Redis round trip per batch), then prunes up to
/// `batch` finished rows past their keeping time. Any error ends the walk; the next pass starts
/// over (every step is idempotent).
pub async fn pass(db: &Db, jobs: &JobQueue, batch: u32) -> Result<ReconcilePass, JobsError> {
    let limit = i64::from(batch.max(1));
    let mut done = ReconcilePass::default();
    let mut after = String::new();
    loop {
        let rows = ledger::unfinished_after(db, &after, limit).await?;
        let Some(last) = rows.last() else {
            break;
        };
        after.clone_from(&last.job_id);
        let full = i64::try_from(rows.len()) == Ok(limit);
        let ids: Vec<JobId> = rows
            .iter()
            .map(|row| JobId::from_stored(row.job_id.clone()))
            .collect();
        let in_redis = jobs.store.get_many(&ids).await?;
        for ((row, id), found) in rows.iter().zip(&ids).zip(in_redis) {
            done.checked += 1;
            match found {
                Some(job) if matches!(job.state, JobState::Succeeded | JobState::Dead) => {
                    if ledger::settle(db, id, &Settled::from_record(&job)).await? {
                        done.settled += 1;
                    }
                }
                Some(_) => {}
                None => {
                    let Some((job, spent)) = row.to_new_job() else {
                        continue;
                    };
                    if jobs.store.enqueue(&job, spent).await? {
                        *done.reenqueued.entry(job.queue).or_default() += 1;
                    }
                }
            }
        }
        if !full {
            break;
        }
    }
    let config = &jobs.config;
    done.pruned = ledger::prune(
        db,
        std::time::Duration::from_secs(config.keep_succeeded_s),
        config.dead_max_age(),
        limit,
    )
    .await?;
    Ok(done)
}
