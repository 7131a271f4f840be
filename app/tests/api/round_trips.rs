//! Round trips to PostgreSQL per request, counted at a proxy: what a request costs the database
//! besides its statements (pings, checks), the figure behind a pool whose connections sit idle
//! while requests queue for them.
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;
use sqlx::PgPool;

use crate::{
    helpers::{database_url, spawn_limited},
    proxy::Proxy,
};

/// Round trips to PostgreSQL for ten task pages of one project, on an app whose count cache keeps
/// totals for `count_cache_ttl_ms`, once the connections are open and the statements prepared.
async fn trips_for_ten_task_pages(pool: &PgPool, count_cache_ttl_ms: &str) -> u64 {
    let mut proxy = Proxy::to_postgres();
    proxy.start().await;
    let url = format!("{}?sslmode=disable", proxy.url(&database_url(pool)));
    let app = spawn_limited(
        pool,
        Some(&url),
        &["--db-pool-max", "2"],
        &["--count-cache-ttl-ms", count_cache_ttl_ms],
    )
    .await;
    let (_, project) = app.user_with_project("owner", "p").await;
    for i in 0..3 {
        app.task(json!({"projectId": project, "title": format!("t{i}")}))
            .await;
    }
    let page = format!("/api/v1/projects/{project}/tasks?page=1&limit=20");
    // Warm: connections open, statements prepared, the page's total counted (and cached).
    for _ in 0..3 {
        assert_eq!(app.get(&page).await.status, StatusCode::OK);
    }
    // sqlx returns a connection to the pool in a task of its own: let those finish.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = proxy.round_trips();
    for _ in 0..10 {
        let reply = app.get(&page).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
        assert_eq!(reply.json["pagination"]["total"], 3, "{}", reply.json);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.round_trips() - before
}

#[sqlx::test(migrations = false)]
async fn a_task_page_is_two_round_trips(pool: PgPool) {
    let trips = trips_for_ten_task_pages(&pool, "60000").await;
    // Per page: the page query, and the test sqlx makes when the connection comes back (it
    // cannot be turned off). It was 6: an existence check before the page, and a ping before
    // each checkout. One recount of the total is tolerated (a write's late retirement).
    assert!(
        (20..=22).contains(&trips),
        "{trips} round trips for 10 task pages"
    );
}

#[sqlx::test(migrations = false)]
async fn a_task_page_whose_total_is_not_cached_is_two_round_trips_too(pool: PgPool) {
    // With the count cache off every page needs its total: it comes in the page's statement. It
    // was 4 per page: the page, its connection's return test, the count, and that one's test.
    let trips = trips_for_ten_task_pages(&pool, "0").await;
    assert_eq!(trips, 20, "{trips} round trips for 10 task pages");
}
