//! L2: Redis, reached through a `ConnectionManager` with short timeouts. Every failure is
//! counted and degrades to "no L2" for this request; a short breaker then skips Redis for a
//! moment so that a dead Redis costs requests nothing, and it is retried by itself.
//!
//! Keys live under a versioned prefix (`perfstack:v1:`); nothing ever lists keys. Each key has
//! a version counter bumped atomically with its deletion on every write, and a loader only
//! stores what it read from the database if that version did not move meanwhile, so a slow
//! reader can never put back a value older than a committed write.
use std::{
    collections::BTreeSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use arc_swap::ArcSwapOption;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tracing::Instrument as _;

use super::{redis_figures::RedisFigures, telemetry::CacheTelemetry};

/// Prefix of every key and channel; bump to abandon all cached data after a format change.
/// After it comes the scope (the database the values come from), so that apps on different
/// databases can share one Redis without reading each other's rows.
pub const NAMESPACE: &str = "perfstack:v1:";
/// How long Redis is skipped after a failure.
const BREAKER_OPEN: Duration = Duration::from_secs(1);
/// Least time between two logged Redis errors (each one is counted).
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Least time an eviction may take before it is counted as failed and queued for retry.
const EVICT_TIMEOUT_FLOOR: Duration = Duration::from_millis(250);
/// Most evictions kept for retry while Redis is unreachable.
const MAX_PENDING: usize = 10_000;

/// Stores a value only if the key's version is still the one the loader saw (`''`: none).
const SET_IF_UNCHANGED: &str = r"
local v = redis.call('GET', KEYS[2])
if (v == false and ARGV[1] == '') or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
  return 1
end
return 0";

/// What L2 held for a key: the value, and the key's version at that moment.
pub struct L2Read {
    pub value: Option<String>,
    pub version: String,
}

pub struct RedisTier {
    client: redis::Client,
    conn: ArcSwapOption<ConnectionManager>,
    connecting: AtomicBool,
    timeout: Duration,
    ttl: Duration,
    telemetry: CacheTelemetry,
    started: Instant,
    /// Milliseconds since `started` until which Redis is skipped.
    open_until_ms: AtomicU64,
    last_error_log_ms: AtomicU64,
    pending: Mutex<BTreeSet<String>>,
    set_script: redis::Script,
    /// `perfstack:v1:<scope>:`, once the scope is known; Redis is not used before.
    prefix: std::sync::OnceLock<String>,
}

impl RedisTier {
    pub fn new(client: redis::Client, timeout: Duration, ttl: Duration, telemetry: CacheTelemetry) -> Self {
        Self {
            client,
            conn: ArcSwapOption::empty(),
            connecting: AtomicBool::new(false),
            timeout,
            ttl,
            telemetry,
            started: Instant::now(),
            open_until_ms: AtomicU64::new(0),
            last_error_log_ms: AtomicU64::new(0),
            pending: Mutex::new(BTreeSet::new()),
            set_script: redis::Script::new(SET_IF_UNCHANGED),
            prefix: std::sync::OnceLock::new(),
        }
    }

    /// Puts keys and channel under `scope` (the first call wins; later ones are ignored).
    pub fn set_scope(&self, scope: &str) {
        let _ = self.prefix.set(format!("{NAMESPACE}{scope}:"));
    }

    pub fn has_scope(&self) -> bool {
        self.prefix.get().is_some()
    }

    /// The eviction channel, once the scope is known.
    pub fn channel(&self) -> Option<String> {
        self.prefix.get().map(|prefix| format!("{prefix}evictions"))
    }

    fn data_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix.get().map_or("", String::as_str))
    }

    fn version_key(&self, key: &str) -> String {
        format!("{}ver:{key}", self.prefix.get().map_or("", String::as_str))
    }

    /// Whether an eviction of `key` is still waiting to reach Redis.
    pub fn is_pending(&self, key: &str) -> bool {
        self.pending.lock().map(|p| p.contains(key)).unwrap_or(true)
    }

    pub fn is_connected(&self) -> bool {
        self.conn.load().is_some()
    }

    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The connection, unless the breaker is open or none exists yet (then one is started).
    fn connection(self: &Arc<Self>) -> Option<ConnectionManager> {
        if !self.has_scope() {
            return None;
        }
        if self.now_ms() < self.open_until_ms.load(Ordering::Relaxed) {
            return None;
        }
        if let Some(conn) = self.conn.load_full() {
            return Some(ConnectionManager::clone(&conn));
        }
        self.start_connecting();
        None
    }

    /// The connection, waiting up to `limit` for the first one to open.
    async fn wait_for_connection(self: &Arc<Self>, limit: Duration) -> Option<Arc<ConnectionManager>> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(conn) = self.conn.load_full() {
                return Some(conn);
            }
            self.start_connecting();
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Opens the connection in the background, retrying until it succeeds.
    pub fn start_connecting(self: &Arc<Self>) {
        if self.connecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let tier = Arc::clone(self);
        tokio::spawn(async move {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(tier.timeout.max(Duration::from_millis(200)))
                .set_response_timeout(tier.timeout)
                .set_number_of_retries(1)
                .set_max_delay(1000);
            loop {
                let attempt = tokio::time::timeout(
                    Duration::from_secs(2),
                    tier.client.get_connection_manager_with_config(config.clone()),
                )
                .await;
                match attempt {
                    Ok(Ok(conn)) => {
                        tier.conn.store(Some(Arc::new(conn)));
                        tier.telemetry.redis_up.set(1);
                        tracing::info!("connected to Redis");
                        break;
                    }
                    Ok(Err(err)) => tier.failed("connect", &err.to_string()),
                    Err(_) => tier.failed("connect", "timed out"),
                }
                tokio::time::sleep(BREAKER_OPEN).await;
            }
            tier.connecting.store(false, Ordering::Release);
        });
    }

    /// Counts a failure, opens the breaker, logs at most once per interval.
    fn failed(&self, operation: &'static str, error: &str) {
        self.telemetry.redis_error(operation).inc();
        self.telemetry.redis_up.set(0);
        let now = self.now_ms();
        self.open_until_ms.store(
            now + u64::try_from(BREAKER_OPEN.as_millis()).unwrap_or(1000),
            Ordering::Relaxed,
        );
        let last = self.last_error_log_ms.load(Ordering::Relaxed);
        let interval = u64::try_from(ERROR_LOG_INTERVAL.as_millis()).unwrap_or(10_000);
        if last == 0 || now.saturating_sub(last) >= interval {
            self.last_error_log_ms.store(now.max(1), Ordering::Relaxed);
            tracing::warn!(
                operation,
                error,
                "Redis unavailable; serving from the database (further errors counted, not logged, for 10 s)"
            );
        }
    }

    /// Runs one Redis exchange with the timeout; `None` when Redis was skipped or failed.
    async fn run<T, F, Fut>(self: &Arc<Self>, operation: &'static str, f: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.connection()?;
        // Evictions are what keeps other replicas and L2 fresh: they may wait longer than reads;
        // so may the dashboard's INFO, which no request waits for.
        let limit = if operation == "evict" || operation == "info" {
            (self.timeout * 10).max(EVICT_TIMEOUT_FLOOR)
        } else {
            self.timeout
        };
        let exchange = tokio::time::timeout(limit, f(conn));
        match exchange
            .instrument(crate::telemetry::spans::redis(operation))
            .await
        {
            Ok(Ok(value)) => {
                self.telemetry.redis_up.set(1);
                Some(value)
            }
            Ok(Err(err)) => {
                self.failed(operation, &err.to_string());
                None
            }
            Err(_) => {
                self.failed(operation, "timed out");
                None
            }
        }
    }

    /// Value and version of `key`; `None` when Redis is unavailable.
    pub async fn get(self: &Arc<Self>, key: &str) -> Option<L2Read> {
        let keys = [self.data_key(key), self.version_key(key)];
        let (value, version): (Option<String>, Option<String>) = self
            .run("get", |mut conn| async move {
                redis::cmd("MGET").arg(&keys).query_async(&mut conn).await
            })
            .await?;
        Some(L2Read {
            value,
            version: version.unwrap_or_default(),
        })
    }

    /// Stores `value` unless `key` was written since `version` was read.
    pub async fn set_if_unchanged(self: &Arc<Self>, key: &str, version: &str, value: &str) {
        let ttl = self.ttl.as_secs().max(1);
        let script = &self.set_script;
        let _stored: Option<i64> = self
            .run("set", |mut conn| async move {
                script
                    .key(self.data_key(key))
                    .key(self.version_key(key))
                    .arg(version)
                    .arg(value)
                    .arg(ttl)
                    .invoke_async(&mut conn)
                    .await
            })
            .await;
    }

    /// Deletes `key`, bumps its version and tells the other replicas, in one atomic exchange.
    /// When Redis cannot be reached the eviction is kept and retried by [`Self::retry_pending`].
    pub async fn evict(self: &Arc<Self>, key: &str, message: &str) -> bool {
        let done = self.evict_now(key, message).await;
        if !done && let Ok(mut pending) = self.pending.lock() {
            if pending.len() >= MAX_PENDING {
                tracing::warn!(
                    "too many evictions waiting for Redis; dropping one (it expires with its TTL)"
                );
                pending.pop_first();
            }
            pending.insert(key.to_owned());
            self.telemetry
                .pending_evictions
                .set(i64::try_from(pending.len()).unwrap_or(i64::MAX));
        }
        done
    }

    async fn evict_now(self: &Arc<Self>, key: &str, message: &str) -> bool {
        let version_ttl = self.ttl.as_secs().max(1) * 2;
        let Some(channel) = self.channel() else {
            return false;
        };
        let channel = &channel;
        self.run("evict", |mut conn| async move {
            redis::pipe()
                .atomic()
                .incr(self.version_key(key), 1)
                .ignore()
                .expire(
                    self.version_key(key),
                    i64::try_from(version_ttl).unwrap_or(i64::MAX),
                )
                .ignore()
                .del(self.data_key(key))
                .ignore()
                .publish(channel, message)
                .ignore()
                .query_async::<()>(&mut conn)
                .await
        })
        .await
        .is_some()
    }

    /// Retries evictions that could not reach Redis; `message_for` builds the pub/sub message.
    pub async fn retry_pending(self: &Arc<Self>, message_for: impl Fn(&str) -> String) {
        let keys: Vec<String> = match self.pending.lock() {
            Ok(pending) if !pending.is_empty() => pending.iter().cloned().collect(),
            _ => return,
        };
        for key in keys {
            if !self.evict_now(&key, &message_for(&key)).await {
                return;
            }
            if let Ok(mut pending) = self.pending.lock() {
                pending.remove(&key);
                self.telemetry
                    .pending_evictions
                    .set(i64::try_from(pending.len()).unwrap_or(i64::MAX));
            }
        }
    }

    /// Memory and keys of the Redis server (`INFO memory`, `DBSIZE`), for the dashboard; `None`
    /// when Redis is unavailable.
    pub async fn server_figures(self: &Arc<Self>) -> Option<RedisFigures> {
        let (info, keys): (String, u64) = self
            .run("info", |mut conn| async move {
                redis::pipe()
                    .cmd("INFO")
                    .arg("memory")
                    .cmd("DBSIZE")
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        RedisFigures::from_info(&info, keys)
    }

    /// Whether Redis answers a PING now (for `/readyz`); ignores the breaker.
    pub async fn ping(self: &Arc<Self>) -> bool {
        let Some(conn) = self.wait_for_connection(Duration::from_secs(1)).await else {
            return false;
        };
        let mut conn = ConnectionManager::clone(&conn);
        let answer = tokio::time::timeout(
            self.timeout.max(Duration::from_millis(500)),
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await;
        match answer {
            Ok(Ok(_)) => true,
            Ok(Err(err)) => {
                self.failed("ping", &err.to_string());
                false
            }
            Err(_) => {
                self.failed("ping", "timed out");
                false
            }
        }
    }
}
