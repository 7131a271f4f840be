//! Test app and request helpers.
use std::time::Duration;

use axum::{
    Router,
    body::Body,
    http::{HeaderMap, Method, Request, StatusCode, header},
};
use clap::Parser;
use http_body_util::BodyExt;
use perfstack_app::{
    config::{DbConfig, ServeConfig, SessionLimits},
    db::{Db, QueryMonitor, indexes, migrate},
    http::{AppState, router},
};
use serde_json::Value;
use sqlx::PgPool;
use tower::ServiceExt;

#[derive(Parser)]
struct ServeFlags {
    #[command(flatten)]
    serve: ServeConfig,
}

/// What `serve` parses for its database: the URL, the pool and the session limits.
#[derive(Parser)]
struct DbFlags {
    #[command(flatten)]
    db: DbConfig,
    #[command(flatten)]
    limits: SessionLimits,
}

/// The URL of the test database behind `pool` (`#[sqlx::test]` makes one per test).
pub fn database_url(pool: &PgPool) -> String {
    let database = pool
        .connect_options()
        .get_database()
        .expect("database")
        .to_owned();
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    format!("{}/{database}", base.rsplit_once('/').expect("a URL").0)
}

/// Server settings as `serve` would parse them from these flags.
/// The app's settings from `flags`. Totals are retired by every write unless a test says otherwise
/// (`--count-cache-slow-ms`): on a busy test machine a count may take long enough to be kept
/// through writes, and tests that write then list would depend on the machine's speed.
pub fn serve_config(flags: &[&str]) -> ServeConfig {
    const SLOW: &str = "--count-cache-slow-ms";
    let defaults: &[&str] = if flags.contains(&SLOW) { &[] } else { &[SLOW, "0"] };
    let args = std::iter::once("perfstack-app")
        .chain(defaults.iter().copied())
        .chain(flags.iter().copied());
    ServeFlags::try_parse_from(args).expect("serve flags").serve
}

pub struct TestApp {
    pub state: AppState,
    pub router: Router,
}

/// A response, its body decoded as JSON when it is JSON.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
}

impl Reply {
    pub fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// Migrates the fresh database behind `pool` and builds the app on it.
pub async fn spawn(pool: PgPool) -> TestApp {
    spawn_with(pool, &[]).await
}

pub async fn spawn_with(pool: PgPool, flags: &[&str]) -> TestApp {
    let db = Db::from_pool(pool, QueryMonitor::new(Duration::from_millis(100)));
    migrate::apply(&db, &migrate::MigrateOptions::default())
        .await
        .expect("migrate");
    let state = AppState::new(db, serve_config(flags));
    TestApp {
        router: router(state.clone()),
        state,
    }
}

/// Migrates the database behind `pool`, then builds the app as `serve` does: its own pool on
/// `url` (the test database when `None`) with the session limits and pool settings of `db_flags`,
/// and `serve_flags`.
pub async fn spawn_limited(
    pool: &PgPool,
    url: Option<&str>,
    db_flags: &[&str],
    serve_flags: &[&str],
) -> TestApp {
    let owner = Db::from_pool(pool.clone(), QueryMonitor::new(Duration::from_millis(100)));
    migrate::apply(&owner, &migrate::MigrateOptions::default())
        .await
        .expect("migrate");
    let url = url.map_or_else(|| database_url(pool), str::to_owned);
    let args = ["perfstack-app", "--database-url", &url]
        .into_iter()
        .chain(db_flags.iter().copied());
    let flags = DbFlags::try_parse_from(args).expect("db flags");
    let db = Db::connect_lazy(&flags.db, &flags.limits).expect("db");
    let state = AppState::new(db, serve_config(serve_flags));
    TestApp {
        router: router(state.clone()),
        state,
    }
}

/// The value of the sample `name` (with its labels, e.g. `x_total{reason="a"}`) in a /metrics text.
pub fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

impl TestApp {
    /// `GET /metrics` as text.
    pub async fn metrics(&self) -> String {
        match self.get("/metrics").await.json {
            Value::String(text) => text,
            other => other.to_string(),
        }
    }

    pub fn db(&self) -> &Db {
        &self.state.db
    }

    pub async fn request(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Reply {
            status,
            headers,
            json,
        }
    }

    pub async fn send(&self, method: Method, uri: &str, body: Option<Value>) -> Reply {
        let builder = Request::builder().method(method).uri(uri);
        let request = match body {
            Some(json) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(json.to_string())),
            None => builder.body(Body::empty()),
        };
        self.request(request.expect("request")).await
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.send(Method::GET, uri, None).await
    }

    pub async fn post(&self, uri: &str, body: Value) -> Reply {
        self.send(Method::POST, uri, Some(body)).await
    }

    pub async fn patch(&self, uri: &str, body: Value) -> Reply {
        self.send(Method::PATCH, uri, Some(body)).await
    }

    pub async fn delete(&self, uri: &str) -> Reply {
        self.send(Method::DELETE, uri, None).await
    }

    /// Asserts that each call `(method, uri, body, field)` is refused with a problem of `status`
    /// naming `field`, the calls made in order.
    pub async fn assert_refused<const N: usize>(
        &self,
        status: StatusCode,
        calls: [(Method, String, Value, &str); N],
    ) {
        for (method, uri, body, field) in calls {
            let reply = self.send(method, &uri, Some(body)).await;
            assert_problem(&reply, status, Some(field));
        }
    }

    /// Asserts that GET `uri` answers 404 as a problem.
    pub async fn assert_gone(&self, uri: &str) {
        assert_problem(&self.get(uri).await, StatusCode::NOT_FOUND, None);
    }

    /// Asserts that GET `uri` answers 400 as a problem naming the query parameter `field`.
    pub async fn assert_bad_query(&self, uri: &str, field: &str) {
        assert_problem(&self.get(uri).await, StatusCode::BAD_REQUEST, Some(field));
    }

    /// Asserts that DELETE `uri` answers 204 and that the row is gone after it.
    pub async fn assert_deleted(&self, uri: &str) {
        assert_eq!(
            self.delete(uri).await.status,
            StatusCode::NO_CONTENT,
            "DELETE {uri}"
        );
        self.assert_gone(uri).await;
    }

    /// Creates a user and returns its id.
    pub async fn user(&self, name: &str) -> i64 {
        let reply = self
            .post(
                "/api/v1/users",
                serde_json::json!({"email": format!("{name}@example.com"), "username": name}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
        reply.json["id"].as_i64().expect("id")
    }

    /// Creates a user named `owner` and a project of theirs named `project`; returns both ids.
    pub async fn user_with_project(&self, owner: &str, project: &str) -> (i64, i64) {
        let owner = self.user(owner).await;
        (owner, self.project(owner, project).await)
    }

    /// Creates a user "owner", their project "p" and a task "t" in it; returns the owner's and the
    /// project's ids and the task.
    pub async fn owner_project_task(&self) -> (i64, i64, Value) {
        let (owner, project) = self.user_with_project("owner", "p").await;
        let task = self
            .task(serde_json::json!({"projectId": project, "title": "t"}))
            .await;
        (owner, project, task)
    }

    /// Creates a project owned by `owner` and returns its id.
    pub async fn project(&self, owner: i64, name: &str) -> i64 {
        let reply = self
            .post(
                "/api/v1/projects",
                serde_json::json!({"ownerId": owner, "name": name}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
        reply.json["id"].as_i64().expect("id")
    }

    /// Creates a task from `body` and returns it.
    pub async fn task(&self, body: Value) -> Value {
        let reply = self.post("/api/v1/tasks", body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
        reply.json
    }
}

/// The app on `pool` with a user "owner" and their project "p"; returns the app and both ids.
pub async fn spawn_with_project(pool: PgPool) -> (TestApp, i64, i64) {
    let app = spawn(pool).await;
    let (owner, project) = app.user_with_project("owner", "p").await;
    (app, owner, project)
}

/// Asserts a problem+json reply with this status (and field, when given).
#[track_caller]
pub fn assert_problem(reply: &Reply, status: StatusCode, field: Option<&str>) {
    assert_eq!(reply.status, status, "{}", reply.json);
    assert_eq!(reply.content_type(), "application/problem+json", "{}", reply.json);
    assert_eq!(reply.json["status"], status.as_u16(), "{}", reply.json);
    for key in ["type", "title", "detail"] {
        assert!(reply.json[key].is_string(), "missing {key}: {}", reply.json);
    }
    if let Some(field) = field {
        assert_eq!(reply.json["field"], field, "{}", reply.json);
    }
}

/// The `id`s of a list page's rows, in order.
pub fn ids(page: &Value) -> Vec<i64> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["id"].as_i64().unwrap())
        .collect()
}

/// Asserts a `201 Created` whose `Location` names the new row under `collection` (`/api/v1/users`);
/// returns its id.
#[track_caller]
pub fn assert_created(reply: &Reply, collection: &str) -> i64 {
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
    let id = reply.json["id"].as_i64().unwrap();
    assert_eq!(
        reply.headers["location"].to_str().unwrap(),
        format!("{collection}/{id}")
    );
    id
}

/// The app on `pool` with one project ("big") of `rows` tasks inserted by `insert` (`$1` the
/// project, `$2` the row count), loaded without the task indexes a bulk load does not need (the
/// database is the test's own). Returns the app and the project.
pub async fn spawn_with_big_project(pool: &PgPool, insert: &str, rows: i64) -> (TestApp, i64) {
    let app = spawn(pool.clone()).await;
    let (_owner, project) = app.user_with_project("owner", "big").await;
    let task_indexes: Vec<&str> = indexes::all()
        .filter(|spec| spec.table == "tasks")
        .map(|spec| spec.name)
        .collect();
    sqlx::raw_sql(&format!("DROP INDEX {}", task_indexes.join(", ")))
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(insert)
        .bind(project)
        .bind(rows)
        .execute(pool)
        .await
        .unwrap();
    (app, project)
}
