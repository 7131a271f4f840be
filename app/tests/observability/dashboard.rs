//! The performance dashboard: measured figures that move with traffic, and the page.
use serde_json::Value;

use crate::{common::*, metrics::get};

fn figure<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, key| &v[key])
}

/// The dashboard's JSON, asserting a 200.
async fn dashboard(app: &axum::Router) -> Value {
    let (status, body) = get(app, "/api/v1/performance/dashboard").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test]
async fn dashboard_figures_change_after_traffic() {
    let redis = RedisServer::start().await;
    let state = app_state(Some(&redis)).await;
    widgets(&state.db).await;
    let app = perfstack_app::http::router(state.clone());
    let before = dashboard(&app).await;
    let commits_before = figure(&before, "database.counters.commits").as_i64().unwrap();
    assert!(figure(&before, "database.sessions.total").as_i64().unwrap() >= 1);

    for _ in 0..25 {
        assert_eq!(get(&app, "/livez").await.0, 200);
    }
    let id = insert_widget(&state.db, "d").await;
    cached_widget(&state.cache, &state.db, id).await.unwrap();
    cached_widget(&state.cache, &state.db, id).await.unwrap();

    let after = dashboard(&app).await;
    let livez = after["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["route"] == "/livez")
        .expect("/livez figures");
    assert_eq!(livez["count"], 25);
    for key in ["avgMs", "p50Ms", "p95Ms", "p99Ms", "minMs", "maxMs"] {
        assert!(livez[key].as_f64().unwrap() > 0.0, "{key}: {livez}");
    }
    assert!(livez["p99Ms"].as_f64() >= livez["p50Ms"].as_f64());
    assert!(after["requestsTotal"].as_u64().unwrap() > before["requestsTotal"].as_u64().unwrap());
    assert_eq!(figure(&after, "cache.l1.hitRate").as_f64(), Some(0.5));
    assert_eq!(figure(&after, "cache.l2.misses").as_u64(), Some(1));
    // PostgreSQL publishes a backend's counters up to a second after its transactions.
    let start = std::time::Instant::now();
    loop {
        let now = dashboard(&app).await;
        if figure(&now, "database.counters.commits").as_i64().unwrap() > commits_before {
            break;
        }
        assert!(
            start.elapsed().as_secs() < 5,
            "pg_stat_database commits did not move"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(figure(&after, "pool.size").as_u64().unwrap() >= 1);
    assert_eq!(figure(&after, "pool.maxConnections").as_u64(), Some(10));

    // CPU: the process's time, and its rate between two measurements
    assert!(figure(&after, "cpu.processSecondsTotal").as_f64().unwrap() > 0.0);
    assert!(
        figure(&after, "cpu.processSecondsTotal").as_f64()
            >= figure(&before, "cpu.processSecondsTotal").as_f64()
    );
    assert!(
        figure(&after, "cpu.processCores").as_f64().unwrap() >= 0.0,
        "{after}"
    );
    // Redis: memory in use and the keys, the cached widget's among them
    assert!(
        figure(&after, "cache.redis.usedMemoryBytes").as_u64().unwrap() > 0,
        "{after}"
    );
    assert!(
        figure(&after, "cache.redis.keys").as_u64().unwrap() >= 1,
        "{after}"
    );
}

#[tokio::test]
async fn dashboard_without_redis_has_no_redis_figures_but_cpu() {
    let state = app_state(None).await;
    let figures = dashboard(&perfstack_app::http::router(state)).await;
    assert!(figure(&figures, "cache.redis").is_null(), "{figures}");
    assert!(figure(&figures, "cpu.processSecondsTotal").as_f64().unwrap() > 0.0);
    assert!(
        figure(&figures, "cpu.processCores").is_null(),
        "first measurement: {figures}"
    );
}

#[tokio::test]
async fn dashboard_page_is_self_contained() {
    let state = app_state(None).await;
    let app = perfstack_app::http::router(state);
    let (status, html) = get(&app, "/dashboard").await;
    assert_eq!(status, 200);
    assert_eq!(html.matches("<canvas").count(), 4);
    assert!(html.contains("/api/v1/performance/dashboard"));
    for external in ["http://", "https://", "<link", "src="] {
        assert!(
            !html.contains(external),
            "the page loads something external: {external}"
        );
    }
}

#[tokio::test]
async fn top_statements_never_show_utility_literals() {
    let db = db(2).await;
    // A utility statement keeps its literal in pg_stat_statements (think ALTER ROLE ... PASSWORD).
    sqlx::query("SET application_name = 'dashboard-secret-4711'")
        .execute(&db.pool())
        .await
        .unwrap();
    // Every statement, not only the top ten, so the utility one would be among them.
    let figures = perfstack_app::db::stats::read(&db, 100_000).await.unwrap();
    let Some(statements) = figures.top_statements else {
        return; // pg_stat_statements not created in this database: nothing to show
    };
    assert!(!statements.is_empty(), "plannable statements are listed");
    let leaked: Vec<_> = statements
        .iter()
        .filter(|s| s.query.contains("dashboard-secret-4711"))
        .collect();
    assert!(leaked.is_empty(), "a utility literal leaked: {leaked:?}");
}
