//! `/metrics`: every family, route templates as labels, text the Prometheus parser accepts.
use axum::{body::Body, http::Request};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::common::*;

pub async fn get(app: &axum::Router, uri: &str) -> (u16, String) {
    let response = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// Every family of docs/contract.md and docs/metrics.md.
pub const FAMILIES: &[&str] = &[
    "perfstack_http_requests_total",
    "perfstack_http_request_duration_seconds_bucket",
    "perfstack_http_requests_in_flight",
    "perfstack_db_pool_connections",
    "perfstack_db_pool_min_connections",
    "perfstack_db_pool_max_connections",
    "perfstack_db_pool_waiting",
    "perfstack_db_pool_acquire_duration_seconds_bucket",
    "perfstack_db_pool_acquire_timeouts_total",
    "perfstack_db_pool_settings_generation",
    "perfstack_db_pool_acquire_timeout_seconds",
    "perfstack_db_pool_idle_timeout_seconds",
    "perfstack_db_pool_swaps_total",
    "perfstack_db_query_duration_seconds_bucket",
    "perfstack_db_queries_total",
    "perfstack_db_server_max_connections",
    "perfstack_db_server_reserved_connections",
    "perfstack_cache_hits_total",
    "perfstack_cache_misses_total",
    "perfstack_cache_redis_errors_total",
    "perfstack_cache_evictions_total",
    "perfstack_cache_stale_rejected_total",
    "perfstack_cache_l1_entries",
    "perfstack_cache_l1_size_bytes",
    "perfstack_cache_redis_up",
    "perfstack_cache_pending_evictions",
    "perfstack_memory_guard_actions_total",
    "perfstack_memory_guard_limit_bytes",
    "perfstack_process_resident_memory_bytes",
    "perfstack_process_cpu_seconds_total",
    "perfstack_count_cache_hits_total",
    "perfstack_count_cache_misses_total",
    "perfstack_count_cache_coalesced_total",
    "perfstack_count_cache_invalidations_total",
    "perfstack_count_cache_slow_counts_total",
    "perfstack_count_cache_entries",
];

#[tokio::test]
async fn metrics_has_every_family_by_route_template() {
    let redis = RedisServer::start().await;
    let state = app_state(Some(&redis)).await;
    widgets(&state.db).await;
    let id = insert_widget(&state.db, "m").await;
    cached_widget(&state.cache, &state.db, id).await.unwrap();
    evict_widget(&state.cache, id).await;
    let app = perfstack_app::http::router(state.clone());
    assert_eq!(get(&app, "/livez").await.0, 200);
    assert_eq!(get(&app, "/no/such/path/12345").await.0, 404);
    assert_eq!(get(&app, "/api/v1/performance/dashboard").await.0, 200);
    let (status, text) = get(&app, "/metrics").await;
    assert_eq!(status, 200);
    for family in FAMILIES {
        assert!(text.contains(family), "{family} missing from /metrics:\n{text}");
    }
    assert!(
        text.contains(r#"perfstack_http_requests_total{route="/livez",method="GET",status_class="2xx"} 1"#)
    );
    assert!(text.contains(r#"route="unmatched",method="GET",status_class="4xx""#));
    assert!(!text.contains("12345"), "a raw path leaked into a label");
    assert!(
        text.contains(r#"perfstack_http_request_duration_seconds_bucket{le="0.001""#)
            || text.contains(r#"le="0.001""#)
    );
    assert!(text.contains(r#"le="5.0""#), "buckets reach 5 s");
    assert!(text.contains(r#"perfstack_db_queries_total{operation="test.widget.get",outcome="ok"} 1"#));
    assert!(text.contains(r#"perfstack_cache_misses_total{level="l1"} 1"#));
    assert!(
        text.contains("# TYPE perfstack_http_requests_total counter"),
        "classic format by default"
    );
    assert!(!text.contains("# EOF"));

    let openmetrics = app
        .clone()
        .oneshot(
            Request::get("/metrics")
                .header(
                    "accept",
                    "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
                )
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let content_type = openmetrics.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let body = openmetrics.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).trim_end().ends_with("# EOF"));
}

/// The value of the unlabelled sample `name` in `/metrics` text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test]
async fn server_connection_limits_are_read_by_the_watcher_and_exported() {
    let state = app_state(None).await;
    let (expected_max, expected_reserved): (i64, i64) = sqlx::query_as(
        "SELECT current_setting('max_connections')::bigint,
                current_setting('superuser_reserved_connections')::bigint
                  + COALESCE(current_setting('reserved_connections', true)::bigint, 0)",
    )
    .fetch_one(&state.db.pool())
    .await
    .unwrap();
    let app = perfstack_app::http::router(state.clone());
    let (_, before) = get(&app, "/metrics").await;
    assert_eq!(sample(&before, "perfstack_db_server_max_connections"), Some(0.0));
    let watcher = tokio::spawn(perfstack_app::db::server_limits::watch(
        state.db.clone(),
        std::time::Duration::from_millis(50),
    ));
    let start = std::time::Instant::now();
    let text = loop {
        let (status, text) = get(&app, "/metrics").await;
        assert_eq!(status, 200);
        if sample(&text, "perfstack_db_server_max_connections") != Some(0.0) {
            break text;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "the watcher never read the limits"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    watcher.abort();
    // services.sh starts PostgreSQL with max_connections = 200.
    assert_eq!(expected_max, 200);
    assert_eq!(
        sample(&text, "perfstack_db_server_max_connections"),
        Some(expected_max as f64)
    );
    assert_eq!(
        sample(&text, "perfstack_db_server_reserved_connections"),
        Some(expected_reserved as f64)
    );
    assert!(
        state.db.telemetry().query_count("server.limits") >= 1,
        "read through Db::timed"
    );
}
