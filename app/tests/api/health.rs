//! `/health` beyond the dependencies: the external services it checks, and what their outage does
//! (a degraded report, never an unready pod).
use axum::http::StatusCode;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::spawn_with;

#[sqlx::test(migrations = false)]
async fn health_reports_external_services_and_is_only_degraded_by_them(pool: PgPool) {
    let listening = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = listening.local_addr().unwrap();
    let down = {
        let spare = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        spare.local_addr().unwrap()
    };
    let flag = format!("payments={up},search={down}");
    let app = spawn_with(pool, &["--health-external", &flag]).await;
    let health = app.get("/health").await;
    assert_eq!(health.status, StatusCode::OK, "{}", health.json);
    assert_eq!(health.json["status"], "degraded");
    assert_eq!(
        health.json["external"],
        json!({"payments": "up", "search": "down"})
    );
    assert_eq!(health.json["services"]["database"], "up");
    // readiness only follows the dependencies
    assert_eq!(app.get("/readyz").await.status, StatusCode::OK);
    drop(listening);
}
