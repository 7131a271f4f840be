//! The API's get-by-id routes read through the cache and its writes evict, across replicas.
use std::time::{Duration, Instant};

use axum::{Router, body::Body, http::Request};
use http_body_util::BodyExt;
use perfstack_app::{
    db::{Db, QueryMonitor, migrate},
    http::{AppState, router},
};
use serde_json::{Value, json};
use sqlx::PgPool;
use tower::ServiceExt;

use crate::common::*;

/// One replica of the API on the shared database and Redis.
struct Replica {
    state: AppState,
    router: Router,
}

/// Applies the app's migrations to the test database.
async fn migrate_schema(pool: &PgPool) {
    let db = Db::from_pool(pool.clone(), QueryMonitor::new(Duration::from_secs(10)));
    migrate::apply(&db, &migrate::MigrateOptions::default())
        .await
        .unwrap();
}

impl Replica {
    async fn start(pool: PgPool, redis: &RedisServer) -> Self {
        let db = Db::from_pool(pool, QueryMonitor::new(Duration::from_secs(10)));
        let state = AppState::try_new(db, serve_config(Some(redis))).unwrap();
        assert!(state.cache.wait_until_ready(Duration::from_secs(5)).await);
        Self {
            router: router(state.clone()),
            state,
        }
    }

    async fn send(&self, method: &str, uri: &str, body: Option<Value>) -> (u16, Value) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json");
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let response = self
            .router
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// POSTs a user `{username}@example.org` with this first name.
    async fn create_user(&self, username: &str, first_name: &str) -> (u16, Value) {
        let email = format!("{username}@example.org");
        let body = json!({"email": email, "username": username, "firstName": first_name});
        self.send("POST", "/api/v1/users", Some(body)).await
    }

    fn queries(&self, op: &'static str) -> u64 {
        self.state.db.telemetry().query_count(op)
    }
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{what} took over a second"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[sqlx::test(migrations = false)]
async fn entity_reads_are_cached_and_writes_evict_every_replica(pool: PgPool) {
    migrate_schema(&pool).await;
    let redis = RedisServer::start().await;
    let a = Replica::start(pool.clone(), &redis).await;
    let b = Replica::start(pool, &redis).await;

    let (status, user) = a.create_user("ada", "Ada").await;
    assert_eq!(status, 201, "{user}");
    let user_id = user["id"].as_i64().unwrap();
    let (_, project) = a
        .send(
            "POST",
            "/api/v1/projects",
            Some(json!({"ownerId": user_id, "name": "P"})),
        )
        .await;
    let project_id = project["id"].as_i64().unwrap();
    let (status, task) = a
        .send(
            "POST",
            "/api/v1/tasks",
            Some(json!({"projectId": project_id, "title": "T", "assigneeId": user_id})),
        )
        .await;
    assert_eq!(status, 201, "{task}");
    let task_id = task["id"].as_i64().unwrap();
    let user_uri = format!("/api/v1/users/{user_id}");
    let task_uri = format!("/api/v1/tasks/{task_id}");
    let project_uri = format!("/api/v1/projects/{project_id}");

    // Reads: one query, then L1 on a, L2 on b.
    for _ in 0..3 {
        assert_eq!(a.send("GET", &user_uri, None).await.1["firstName"], "Ada");
        assert_eq!(b.send("GET", &user_uri, None).await.1["firstName"], "Ada");
    }
    assert_eq!(a.queries("users.get") + b.queries("users.get"), 1);
    assert_eq!(b.send("GET", &task_uri, None).await.1["assigneeId"], user_id);
    assert_eq!(b.send("GET", &project_uri, None).await.1["name"], "P");
    assert_eq!(b.send("GET", "/api/v1/users/999999", None).await.0, 404);

    // A write on a: a reads its own write at once, b within a second.
    let (status, _) = a
        .send("PATCH", &user_uri, Some(json!({"firstName": "Augusta"})))
        .await;
    assert_eq!(status, 200);
    assert_eq!(a.send("GET", &user_uri, None).await.1["firstName"], "Augusta");
    eventually("b seeing the user patch", async || {
        b.send("GET", &user_uri, None).await.1["firstName"] == "Augusta"
    })
    .await;

    a.send("PATCH", &project_uri, Some(json!({"name": "Q"}))).await;
    eventually("b seeing the project patch", async || {
        b.send("GET", &project_uri, None).await.1["name"] == "Q"
    })
    .await;

    a.send("PATCH", &task_uri, Some(json!({"title": "U"}))).await;
    eventually("b seeing the task patch", async || {
        b.send("GET", &task_uri, None).await.1["title"] == "U"
    })
    .await;

    // Deleting the project cascades to its task: no replica serves the task afterwards.
    assert_eq!(b.send("GET", &task_uri, None).await.0, 200);
    assert_eq!(a.send("DELETE", &project_uri, None).await.0, 204);
    assert_eq!(a.send("GET", &task_uri, None).await.0, 404);
    eventually("b dropping the cascaded task", async || {
        b.send("GET", &task_uri, None).await.0 == 404
    })
    .await;
    eventually("b dropping the project", async || {
        b.send("GET", &project_uri, None).await.0 == 404
    })
    .await;

    assert_eq!(a.send("DELETE", &user_uri, None).await.0, 204);
    eventually("b dropping the user", async || {
        b.send("GET", &user_uri, None).await.0 == 404
    })
    .await;
}

/// A Redis outage degrades the cache, shows in `/health`, and leaves readiness alone: taking every
/// replica out of the Service for a cache built to degrade would turn it into a full outage.
#[sqlx::test(migrations = false)]
async fn redis_outage_shows_in_health_not_in_readiness_or_requests(pool: PgPool) {
    migrate_schema(&pool).await;
    let mut redis = RedisServer::start().await;
    let app = Replica::start(pool, &redis).await;
    let (_, user) = app.create_user("bobby", "Bobby").await;
    let uri = format!("/api/v1/users/{}", user["id"].as_i64().expect("created"));
    assert_eq!(app.send("GET", "/readyz", None).await.0, 200);

    redis.stop();
    let (status, health) = app.send("GET", "/health", None).await;
    assert_eq!((status, &health["services"]["redis"]), (503, &json!("down")));
    assert_eq!(
        app.send("GET", "/readyz", None).await.0,
        200,
        "readiness is the pod's own state, not Redis'"
    );
    for n in 0..10 {
        assert_eq!(app.send("GET", &uri, None).await.0, 200);
        let (status, _) = app
            .send("PATCH", &uri, Some(json!({"lastName": format!("v{n}")})))
            .await;
        assert_eq!(status, 200, "writes succeed without Redis");
        assert_eq!(app.send("GET", &uri, None).await.1["lastName"], format!("v{n}"));
    }

    redis.restart().await;
    let start = Instant::now();
    while app.send("GET", "/health", None).await.0 != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "health did not recover"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.send("GET", &uri, None).await.1["lastName"], "v9");
}
