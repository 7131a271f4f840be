//! The Redis side of the queues: where jobs wait, run and die, moved atomically by Lua scripts.
//!
//! Per queue `q` under the key prefix `p`: `p:q:<q>:ready` (list, FIFO), `p:q:<q>:scheduled` (zset by
//! the time a retry is due), `p:q:<q>:running` (zset by lease deadline) and `p:q:<q>:dead` (zset by the
//! time the job died); every job is a hash `p:job:<id>`. A job id is in at most one of those sets. A
//! worker that dies stops renewing its leases and [`JobStore::reap`] puts its jobs back: delivery is at
//! least once, and handlers make the effect once (see `jobs::email`, `jobs::report`).
//! Scripts build job keys from the prefix, so all keys must live on one Redis node (no cluster).
use std::{collections::HashMap, time::Duration};

use std::sync::{Arc, Weak};

use arc_swap::ArcSwapOption;
use redis::{
    AsyncCommands, Script, ScriptInvocation,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use tracing::Instrument as _;

use crate::telemetry::spans;

use super::{
    error::JobsError,
    record::{JobId, JobRecord, JobState, NewJob, Queue},
};

/// A job leased to a worker for one attempt.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: JobId,
    pub queue: Queue,
    pub payload: serde_json::Value,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub max_attempts: u32,
    /// The W3C traceparent of the request that enqueued the job, when traces were exported.
    pub traceparent: Option<String>,
}

/// The outcome of one attempt, as recorded in Redis.
#[derive(Debug, Clone)]
pub enum Outcome {
    Succeeded {
        result: serde_json::Value,
        keep: Duration,
    },
    Retry {
        error: String,
        delay: Duration,
    },
    Dead {
        error: String,
    },
}

/// How many jobs of a queue are in each place.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    pub ready: u64,
    pub scheduled: u64,
    pub running: u64,
    pub dead: u64,
}

struct Scripts {
    enqueue: Script,
    claim: Script,
    heartbeat: Script,
    finish: Script,
    reap: Script,
    revive: Script,
    trim_dead: Script,
}

impl Scripts {
    fn load() -> Self {
        Self {
            enqueue: Script::new(include_str!("lua/enqueue.lua")),
            claim: Script::new(include_str!("lua/claim.lua")),
            heartbeat: Script::new(include_str!("lua/heartbeat.lua")),
            finish: Script::new(include_str!("lua/finish.lua")),
            reap: Script::new(include_str!("lua/reap.lua")),
            revive: Script::new(include_str!("lua/revive.lua")),
            trim_dead: Script::new(include_str!("lua/trim_dead.lua")),
        }
    }
}

/// How long dead-lettered jobs are kept: at most `max` per queue, none older than `max_age`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadLetterCap {
    pub max: u64,
    pub max_age: Duration,
}

impl Default for DeadLetterCap {
    fn default() -> Self {
        Self {
            max: 10_000,
            max_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Handle on the queues in Redis. Cheap to clone (one multiplexed connection, opened in the
/// background when Redis is not there yet: commands fail with [`JobsError::NotConnected`] meanwhile).
#[derive(Clone)]
pub struct JobStore {
    conn: Arc<ArcSwapOption<ConnectionManager>>,
    prefix: String,
    scripts: Arc<Scripts>,
    dead: DeadLetterCap,
}

impl std::fmt::Debug for JobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobStore").field("prefix", &self.prefix).finish()
    }
}

impl JobStore {
    /// Connects to Redis; `prefix` namespaces every key (tests use one each). Connecting and every
    /// command give up after `timeout`. When Redis does not answer the store is returned anyway and
    /// keeps connecting in the background; only a URL that does not parse is an error.
    pub async fn connect(
        redis_url: &str,
        prefix: impl Into<String>,
        timeout: Duration,
        dead: DeadLetterCap,
    ) -> Result<Self, JobsError> {
        let client = redis::Client::open(redis_url).map_err(JobsError::RedisUrl)?;
        let store = Self {
            conn: Arc::new(ArcSwapOption::empty()),
            prefix: prefix.into(),
            scripts: Arc::new(Scripts::load()),
            dead,
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(timeout)
            .set_response_timeout(timeout)
            .set_number_of_retries(2)
            .set_max_delay(1_000);
        match client.get_connection_manager_with_config(config.clone()).await {
            Ok(conn) => store.conn.store(Some(Arc::new(conn))),
            Err(err) => {
                tracing::warn!(error = %err, "Redis of the job queues not reachable; retrying in the background");
                tokio::spawn(keep_connecting(client, config, Arc::downgrade(&store.conn)));
            }
        }
        Ok(store)
    }

    /// The connection, once there is one.
    fn conn(&self) -> Result<ConnectionManager, JobsError> {
        self.conn
            .load_full()
            .map(|conn| ConnectionManager::clone(&conn))
            .ok_or(JobsError::NotConnected)
    }

    fn job_prefix(&self) -> String {
        format!("{}:job:", self.prefix)
    }

    fn job_key(&self, id: &JobId) -> String {
        format!("{}:job:{}", self.prefix, id)
    }

    fn queue_key(&self, queue: Queue, place: &str) -> String {
        format!("{}:q:{}:{}", self.prefix, queue.as_str(), place)
    }

    /// `script`, its first keys the places of `queue` it moves jobs between (in this order).
    fn between<'s>(&self, script: &'s Script, queue: Queue, places: &[&str]) -> ScriptInvocation<'s> {
        let mut invocation = script.prepare_invoke();
        for place in places {
            invocation.key(self.queue_key(queue, place));
        }
        invocation
    }

    /// The enqueue script's call for `job`, `attempts` of its budget already spent.
    fn enqueue_invocation(&self, job: &NewJob, attempts: u32) -> ScriptInvocation<'_> {
        let mut invocation = self.scripts.enqueue.prepare_invoke();
        invocation
            .key(self.job_key(&job.id))
            .key(self.queue_key(job.queue, "ready"))
            .arg(job.id.as_str())
            .arg(job.queue.as_str())
            .arg(job.payload.to_string())
            .arg(job.max_attempts)
            .arg(job.traceparent.as_deref().unwrap_or_default())
            .arg(attempts);
        invocation
    }

    /// Adds `job` at the tail of its queue, `attempts` of its budget already spent (0 for a new
    /// job; the ledger's count for one enqueued again after Redis lost it). Returns false when a
    /// job with this id existed already (enqueueing is idempotent by id).
    pub async fn enqueue(&self, job: &NewJob, attempts: u32) -> Result<bool, JobsError> {
        let added: i64 = self
            .enqueue_invocation(job, attempts)
            .invoke_async(&mut self.conn()?)
            .instrument(spans::redis("enqueue"))
            .await?;
        Ok(added == 1)
    }

    /// Adds new `jobs` (none of their budget spent) in one Redis round trip: the enqueue script
    /// once per job in a pipeline, led by loading the script, since a pipeline cannot load it on
    /// demand. Each job is added as by [`JobStore::enqueue`] (idempotent by id; not atomic as a
    /// whole: after an error some may be in). Returns how many were new.
    pub async fn enqueue_many(&self, jobs: &[NewJob]) -> Result<usize, JobsError> {
        if jobs.is_empty() {
            return Ok(0);
        }
        let invocations: Vec<ScriptInvocation<'_>> =
            jobs.iter().map(|job| self.enqueue_invocation(job, 0)).collect();
        let mut pipe = redis::pipe();
        pipe.load_script(&self.scripts.enqueue).ignore();
        for invocation in &invocations {
            pipe.invoke_script(invocation);
        }
        let added: Vec<i64> = pipe
            .query_async(&mut self.conn()?)
            .instrument(spans::redis("enqueue_many"))
            .await?;
        Ok(added.into_iter().filter(|&n| n == 1).count())
    }

    /// Leases the next ready (or due) job of `queue` for `lease`; `None` when there is none.
    pub async fn claim(&self, queue: Queue, lease: Duration) -> Result<Option<ClaimedJob>, JobsError> {
        let claimed: Option<(String, String, u32, u32, String)> = self
            .between(&self.scripts.claim, queue, &["ready", "scheduled", "running"])
            .arg(self.job_prefix())
            .arg(millis(lease))
            .invoke_async(&mut self.conn()?)
            .await?;
        let Some((id, payload, attempt, max_attempts, traceparent)) = claimed else {
            return Ok(None);
        };
        let payload = serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null);
        Ok(Some(ClaimedJob {
            id: JobId::from_stored(id),
            queue,
            payload,
            attempt,
            max_attempts,
            traceparent: Some(traceparent).filter(|t| !t.is_empty()),
        }))
    }

    /// Renews the lease of a running attempt. False when the lease was lost (reaped meanwhile).
    pub async fn heartbeat(&self, job: &ClaimedJob, lease: Duration) -> Result<bool, JobsError> {
        let kept: i64 = self
            .scripts
            .heartbeat
            .key(self.queue_key(job.queue, "running"))
            .key(self.job_key(&job.id))
            .arg(job.id.as_str())
            .arg(job.attempt)
            .arg(millis(lease))
            .invoke_async(&mut self.conn()?)
            .await?;
        Ok(kept == 1)
    }

    /// Records the outcome of an attempt. False when the lease was lost and nothing was recorded.
    pub async fn finish(&self, job: &ClaimedJob, outcome: &Outcome) -> Result<bool, JobsError> {
        let (kind, text, number) = match outcome {
            Outcome::Succeeded { result, keep } => ("succeeded", result.to_string(), keep.as_secs().max(1)),
            Outcome::Retry { error, delay } => ("retry", error.clone(), millis(*delay)),
            Outcome::Dead { error } => ("dead", error.clone(), 0),
        };
        let recorded: i64 = self
            .between(&self.scripts.finish, job.queue, &["running", "scheduled", "dead"])
            .key(self.job_key(&job.id))
            .arg(job.id.as_str())
            .arg(job.attempt)
            .arg(kind)
            .arg(text)
            .arg(number)
            .arg(self.dead.max_age.as_secs().max(1))
            .invoke_async(&mut self.conn()?)
            .instrument(spans::redis("finish"))
            .await?;
        if recorded == 1 && matches!(outcome, Outcome::Dead { .. }) {
            self.trim_dead(job.queue).await?;
        }
        Ok(recorded == 1)
    }

    /// Drops the dead jobs of `queue` past the cap (the oldest first, and any older than its
    /// age limit), hashes included. Returns how many went; logged when any did.
    pub async fn trim_dead(&self, queue: Queue) -> Result<u64, JobsError> {
        let trimmed: u64 = self
            .between(&self.scripts.trim_dead, queue, &["dead"])
            .arg(self.job_prefix())
            .arg(self.dead.max)
            .arg(millis(self.dead.max_age))
            .invoke_async(&mut self.conn()?)
            .await?;
        if trimmed > 0 {
            tracing::info!(
                queue = queue.as_str(),
                trimmed,
                max = self.dead.max,
                max_age_s = self.dead.max_age.as_secs(),
                "dropped dead-lettered jobs past the cap"
            );
        }
        Ok(trimmed)
    }

    /// Puts jobs whose lease expired back in the ready list (or dead-letters them when they had their
    /// last attempt). Returns (requeued, dead-lettered).
    pub async fn reap(&self, queue: Queue) -> Result<(u64, u64), JobsError> {
        let counts: (u64, u64) = self
            .between(&self.scripts.reap, queue, &["running", "ready", "dead"])
            .arg(self.job_prefix())
            .arg(self.dead.max_age.as_secs().max(1))
            .invoke_async(&mut self.conn()?)
            .await?;
        if counts.1 > 0 {
            self.trim_dead(queue).await?;
        }
        Ok(counts)
    }

    /// Moves a dead job back to the ready list with fresh attempts. False when it is not dead.
    pub async fn revive(&self, id: &JobId) -> Result<bool, JobsError> {
        let Some(job) = self.get(id).await? else {
            return Ok(false);
        };
        let revived: i64 = self
            .between(&self.scripts.revive, job.queue, &["dead", "ready"])
            .key(self.job_key(id))
            .arg(id.as_str())
            .invoke_async(&mut self.conn()?)
            .await?;
        Ok(revived == 1)
    }

    /// One job by id; `None` when unknown (or finished long enough ago to be forgotten).
    pub async fn get(&self, id: &JobId) -> Result<Option<JobRecord>, JobsError> {
        let fields: HashMap<String, String> = self.conn()?.hgetall(self.job_key(id)).await?;
        Ok(JobRecord::from_hash(&fields))
    }

    /// Several jobs by id in one round trip, in the order of `ids` (`None` for unknown ones).
    pub async fn get_many(&self, ids: &[JobId]) -> Result<Vec<Option<JobRecord>>, JobsError> {
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.hgetall(self.job_key(id));
        }
        let hashes: Vec<HashMap<String, String>> = pipe.query_async(&mut self.conn()?).await?;
        Ok(hashes.iter().map(JobRecord::from_hash).collect())
    }

    /// Jobs of `queue` in `state`, newest first for dead jobs, queue order otherwise.
    pub async fn list(
        &self,
        queue: Queue,
        state: JobState,
        limit: usize,
    ) -> Result<Vec<JobRecord>, JobsError> {
        let mut conn = self.conn()?;
        let stop = isize::try_from(limit).unwrap_or(isize::MAX).saturating_sub(1);
        let ids: Vec<String> = match state {
            JobState::Queued => conn.lrange(self.queue_key(queue, "ready"), 0, stop).await?,
            JobState::Failed => conn.zrange(self.queue_key(queue, "scheduled"), 0, stop).await?,
            JobState::Running => conn.zrange(self.queue_key(queue, "running"), 0, stop).await?,
            JobState::Dead => conn.zrevrange(self.queue_key(queue, "dead"), 0, stop).await?,
            JobState::Succeeded => return Err(JobsError::NotListable(state)),
        };
        let ids: Vec<JobId> = ids.into_iter().map(JobId::from_stored).collect();
        Ok(self.get_many(&ids).await?.into_iter().flatten().collect())
    }

    /// Counts per place, for the queue-depth gauges.
    pub async fn depth(&self, queue: Queue) -> Result<QueueDepth, JobsError> {
        let (ready, scheduled, running, dead): (u64, u64, u64, u64) = redis::pipe()
            .llen(self.queue_key(queue, "ready"))
            .zcard(self.queue_key(queue, "scheduled"))
            .zcard(self.queue_key(queue, "running"))
            .zcard(self.queue_key(queue, "dead"))
            .query_async(&mut self.conn()?)
            .await?;
        Ok(QueueDepth {
            ready,
            scheduled,
            running,
            dead,
        })
    }

    /// Answers when Redis does (for readiness).
    pub async fn ping(&self) -> Result<(), JobsError> {
        let _: String = redis::cmd("PING").query_async(&mut self.conn()?).await?;
        Ok(())
    }
}

/// Opens the connection of a store whose first attempt failed, retrying every second until it
/// succeeds or the store is gone.
async fn keep_connecting(
    client: redis::Client,
    config: ConnectionManagerConfig,
    slot: Weak<ArcSwapOption<ConnectionManager>>,
) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Some(target) = slot.upgrade() else {
            return;
        };
        if let Ok(conn) = client.get_connection_manager_with_config(config.clone()).await {
            target.store(Some(Arc::new(conn)));
            tracing::info!("connected to the Redis of the job queues");
            return;
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
