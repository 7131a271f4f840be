//! Traces, end to end: the real `perfstack-app serve` with `OTEL_EXPORTER_OTLP_ENDPOINT` naming an
//! OTLP receiver in this test process, on the real PostgreSQL and Redis. A request carrying a W3C
//! `traceparent` must yield spans of that trace for the HTTP request, its SQL, its Redis calls and
//! the job it enqueued, run by the worker the process runs.
use std::time::Duration;

use perfstack_app::db::{Db, QueryMonitor, migrate};
use perfstack_otel::receiver::{OtlpReceiver, ReceivedSpan};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::process::{Server, database_url};

/// The trace the test's requests belong to, as a caller would have started it.
const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

/// `serve` on the test database and Redis (jobs under a fresh key prefix), exporting to `receiver`.
fn start(pool: &PgPool, receiver: &OtlpReceiver) -> (Server, u16) {
    let env = [
        (
            "REDIS_URL",
            std::env::var("REDIS_URL").expect("REDIS_URL must be set"),
        ),
        (
            "JOBS_KEY_PREFIX",
            format!("perfstack-test:{}", uuid::Uuid::new_v4()),
        ),
        ("JOBS_POLL_INTERVAL_MS", "20".into()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", String::new()),
        ("OTEL_SERVICE_NAME", String::new()),
    ];
    Server::start(&database_url(pool), &[], &env)
}

/// One HTTP/1.1 exchange: (status, JSON body or Null).
async fn call(
    port: u16,
    method: &str,
    path: &str,
    traceparent: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let trace = traceparent
        .map(|t| format!("traceparent: {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{trace}content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let json = text
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, json)
}

async fn wait_ready(port: u16) {
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok()
            && call(port, "GET", "/readyz", None, None).await.0 == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("serve did not become ready");
}

fn attr<'a>(span: &'a ReceivedSpan, key: &str) -> &'a str {
    span.attributes.get(key).map_or("", String::as_str)
}

#[sqlx::test(migrations = false)]
async fn a_request_with_a_traceparent_is_traced_through_sql_redis_and_its_job(pool: PgPool) {
    let db = Db::from_pool(pool.clone(), QueryMonitor::new(Duration::from_secs(1)));
    migrate::apply(&db, &migrate::MigrateOptions::default())
        .await
        .expect("migrate");
    let receiver = OtlpReceiver::start().await.unwrap();
    let (_server, port) = start(&pool, &receiver);
    wait_ready(port).await;

    let (status, user) = call(
        port,
        "POST",
        "/api/v1/users",
        None,
        Some(json!({"email": "traced@example.org", "username": "traced", "firstName": "Tr"})),
    )
    .await;
    assert_eq!(status, 201, "{user}");
    let (status, project) = call(
        port,
        "POST",
        "/api/v1/projects",
        None,
        Some(json!({"name": "Traced", "ownerId": user["id"]})),
    )
    .await;
    assert_eq!(status, 201, "{project}");

    let request = json!({"type": "projectTaskStats", "parameters": {"projectId": project["id"]}});
    let (status, accepted) = call(port, "POST", "/api/v1/reports", Some(TRACEPARENT), Some(request)).await;
    assert_eq!(status, 202, "{accepted}");

    // The job's span and the SQL it ran come last; wait for them.
    let spans = receiver
        .wait_for(Duration::from_secs(20), |spans| {
            let ours = spans.iter().filter(|s| s.trace_id == TRACE_ID);
            ours.clone().any(|s| s.name == "job report")
                && ours.filter(|s| attr(s, "db.system.name") == "postgresql").count() >= 2
        })
        .await;
    let traced: Vec<&ReceivedSpan> = spans.iter().filter(|s| s.trace_id == TRACE_ID).collect();
    let names: Vec<String> = traced
        .iter()
        .map(|s| format!("{} [{}]", s.name, attr(s, "db.system.name")))
        .collect();

    let http = traced
        .iter()
        .find(|s| s.name == "POST /api/v1/reports")
        .unwrap_or_else(|| panic!("no request span in {names:?}"));
    assert_eq!(
        http.parent_span_id, "b7ad6b7169203331",
        "the caller's span is the parent"
    );
    assert_eq!(http.service, "perfstack-app");
    assert_eq!(attr(http, "http.route"), "/api/v1/reports");
    let sql = traced
        .iter()
        .find(|s| attr(s, "db.operation.name") == "reports.subject_exists")
        .unwrap_or_else(|| panic!("no SQL span of the request in {names:?}"));
    assert_eq!(attr(sql, "db.system.name"), "postgresql");
    assert!(
        attr(sql, "db.query.text").contains("FROM projects WHERE id = $1"),
        "{sql:?}"
    );
    let enqueue = traced
        .iter()
        .find(|s| attr(s, "db.system.name") == "redis" && attr(s, "db.operation.name") == "enqueue")
        .unwrap_or_else(|| panic!("no Redis span of the request in {names:?}"));
    assert_eq!(
        enqueue.parent_span_id, http.span_id,
        "the enqueue runs inside the request"
    );
    let job = traced
        .iter()
        .find(|s| s.name == "job report")
        .unwrap_or_else(|| panic!("no job span in {names:?}"));
    assert_eq!(attr(job, "job.id"), accepted["jobId"].as_str().unwrap());
    assert!(
        traced
            .iter()
            .any(|s| s.parent_span_id == job.span_id && attr(s, "db.system.name") == "postgresql"),
        "the job's SQL is a child of the job span: {names:?}"
    );
    assert!(
        traced
            .iter()
            .any(|s| s.parent_span_id == job.span_id && attr(s, "db.operation.name") == "finish"),
        "the job's outcome is recorded in Redis inside the job span: {names:?}"
    );
    // Requests without a traceparent start traces of their own.
    assert!(
        spans
            .iter()
            .any(|s| s.name == "POST /api/v1/users" && s.trace_id != TRACE_ID)
    );
}
