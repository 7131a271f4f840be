//! Shared test helpers: database handles, private redis-server processes, a widget table.
use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use perfstack_app::{
    cache::Cache,
    config::{CacheConfig, DbConfig, ServeConfig},
    db::Db,
    http::AppState,
};
use serde::{Deserialize, Serialize};

/// DATABASE_URL from the environment, else from the checkout's `.run/env` (services.sh).
pub fn database_url() -> String {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return url;
    }
    let env_file = concat!(env!("CARGO_MANIFEST_DIR"), "/../.run/env");
    let text = std::fs::read_to_string(env_file)
        .expect("DATABASE_URL is not set and .run/env is missing: run scripts/services.sh up");
    text.lines()
        .find_map(|line| line.strip_prefix("export DATABASE_URL="))
        .expect("no DATABASE_URL in .run/env")
        .to_owned()
}

pub fn db_config(max: u32) -> DbConfig {
    DbConfig {
        url: database_url().into(),
        pool_min: 0,
        pool_max: max,
        acquire_timeout_ms: 3000,
        idle_timeout_s: 60,
        slow_query_ms: 10_000,
    }
}

pub async fn db(max: u32) -> Db {
    Db::connect(&db_config(max)).await.expect("connect to PostgreSQL")
}

pub fn serve_config(redis: Option<&RedisServer>) -> ServeConfig {
    let mut config = ServeConfig::default();
    config.server.listen = "127.0.0.1:0".parse().expect("address");
    config.server.shutdown_grace_s = 1;
    config.cache.redis_url = redis.map(|r| r.url().into());
    config.dashboard.dashboard_cache_ms = 0;
    config
}

pub async fn app_state(redis: Option<&RedisServer>) -> AppState {
    let state = AppState::try_new(db(10).await, serve_config(redis)).expect("app state");
    assert!(state.cache.wait_until_ready(Duration::from_secs(5)).await);
    state
}

/// A private Redis and a database handle with `connections` connections, the widget table made.
pub async fn with_widgets(connections: u32) -> (RedisServer, Db) {
    let redis = RedisServer::start().await;
    let db = db(connections).await;
    widgets(&db).await;
    (redis, db)
}

/// Like [`with_widgets`], with one widget named `name`; returns its id too.
pub async fn with_widget(connections: u32, name: &str) -> (RedisServer, Db, i64) {
    let (redis, db) = with_widgets(connections).await;
    let id = insert_widget(&db, name).await;
    (redis, db, id)
}

/// A cache (one "replica"), connected to `redis` when given.
pub async fn cache(redis: Option<&RedisServer>) -> Cache {
    let cache = Cache::new(&CacheConfig::default(), redis.map(RedisServer::url).as_deref()).expect("cache");
    assert!(
        cache.wait_until_ready(Duration::from_secs(5)).await,
        "redis connection"
    );
    cache
}

/// Waits up to 5 s until every eviction `cache` could not send yet has reached Redis.
pub async fn evictions_reach_redis(cache: &Cache) {
    let pending = cache.telemetry().pending_evictions.get();
    let start = std::time::Instant::now();
    while cache.telemetry().pending_evictions.get() > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{pending} evictions never reached Redis"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A redis-server of our own on a free port, so a test can stop and restart it.
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    pub async fn start() -> Self {
        let mut server = Self {
            port: perfstack_tests::spare_port(),
            child: None,
        };
        server.restart().await;
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// (Re)starts the server on the same port and waits until it answers.
    pub async fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "yes"])
            // DEBUG SLEEP lets a test make this Redis slow.
            .args(["--enable-debug-command", "local"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server) must be on PATH");
        self.child = Some(child);
        for _ in 0..100 {
            if self.connection().await.is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    pub async fn connection(&self) -> Option<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(self.url()).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        let pong: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut conn).await;
        pong.ok().map(|_| conn)
    }

    /// `INFO commandstats` of this server.
    pub async fn command_stats(&self) -> String {
        let mut conn = self.connection().await.expect("redis answers");
        redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut conn)
            .await
            .expect("INFO")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A row of the test table, cached like the API's entities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Widget {
    pub id: i64,
    pub name: String,
}

pub const WIDGET_OP: &str = "test.widget.get";

/// Creates the test table once (concurrent tests serialise on an advisory lock).
pub async fn widgets(db: &Db) {
    let pool = db.pool();
    let mut tx = pool.begin().await.expect("begin");
    sqlx::query("SELECT pg_advisory_xact_lock(7420001)")
        .execute(&mut *tx)
        .await
        .expect("lock");
    sqlx::query("CREATE TABLE IF NOT EXISTS perfstack_test_widgets (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name TEXT NOT NULL)")
        .execute(&mut *tx)
        .await
        .expect("create table");
    tx.commit().await.expect("commit");
}

pub async fn insert_widget(db: &Db, name: &str) -> i64 {
    sqlx::query_scalar("INSERT INTO perfstack_test_widgets (name) VALUES ($1) RETURNING id")
        .bind(name)
        .fetch_one(&db.pool())
        .await
        .expect("insert")
}

pub async fn rename_widget(db: &Db, id: i64, name: &str) {
    sqlx::query("UPDATE perfstack_test_widgets SET name = $2 WHERE id = $1")
        .bind(id)
        .bind(name)
        .execute(&db.pool())
        .await
        .expect("update");
}

/// Reads a widget through the query monitor (so tests can count the queries), taking
/// `delay_ms` longer than needed to widen race windows.
pub async fn load_widget(db: &Db, id: i64, delay_ms: u64) -> Result<Option<Widget>, sqlx::Error> {
    const SQL: &str = "SELECT id, name FROM perfstack_test_widgets, pg_sleep($2) WHERE id = $1";
    db.timed(WIDGET_OP, SQL, |pool| async move {
        sqlx::query_as::<_, Widget>(SQL)
            .bind(id)
            .bind(delay_ms as f64 / 1000.0)
            .fetch_optional(&pool)
            .await
    })
    .await
}

/// Reads a widget through `cache`.
pub async fn cached_widget(cache: &Cache, db: &Db, id: i64) -> Option<Widget> {
    cached_widget_slow(cache, db, id, 0).await
}

pub async fn cached_widget_slow(cache: &Cache, db: &Db, id: i64, delay_ms: u64) -> Option<Widget> {
    let key = perfstack_app::cache::entity_key("widget", id);
    cache
        .get_or_load(&key, || load_widget(db, id, delay_ms))
        .await
        .expect("the read succeeds")
}

pub async fn evict_widget(cache: &Cache, id: i64) {
    cache.evict(&perfstack_app::cache::entity_key("widget", id)).await;
}
