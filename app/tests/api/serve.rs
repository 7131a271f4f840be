//! The real binary: `serve` streams an export over HTTP/1.1 chunked with flat memory (VmRSS read
//! from /proc), and on SIGTERM stops accepting connections but finishes the request in flight.
use std::{
    process::Command,
    time::{Duration, Instant},
};

use sqlx::PgPool;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{
    helpers::spawn_with_big_project,
    process::{Server, database_url},
};

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn connect(port: u16) -> Option<TcpStream> {
    TcpStream::connect(("127.0.0.1", port)).await.ok()
}

async fn get(stream: &mut TcpStream, path: &str) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn serve_streams_with_flat_memory_and_drains_on_sigterm(pool: PgPool) {
    const ROWS: i64 = 60_000;
    let insert = "INSERT INTO tasks (project_id, title, description, priority)
         SELECT $1, 'task ' || i, repeat('x', 1500), (i % 5)::smallint
         FROM generate_series(1, $2::bigint) AS i";
    let (_app, project) = spawn_with_big_project(&pool, insert, ROWS).await;

    let url = database_url(&pool);
    // No drain delay: the listener closes at once on SIGTERM (tests/api/drain.rs covers the delay).
    let (mut server, port) = Server::start(&url, &["--shutdown-grace-s", "600", "--drain-delay-s", "0"], &[]);
    let pid = server.0.id();

    let started = Instant::now();
    let mut stream = loop {
        if let Some(s) = connect(port).await {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    get(&mut stream, &format!("/api/v1/projects/{project}/tasks/export")).await;

    // Read the first part, then SIGTERM while the export is in flight.
    let mut received = Vec::new();
    let mut buf = vec![0_u8; 64 * 1024];
    while received.len() < 256 * 1024 {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "stream ended early");
        received.extend_from_slice(&buf[..n]);
    }
    let baseline = rss_kib(pid);
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let signalled = Instant::now();
    while connect(port).await.is_some() {
        assert!(
            signalled.elapsed() < Duration::from_secs(10),
            "listener still accepts 10 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Drain the rest, slowly enough for the server to have to hold back, sampling its memory.
    let mut peak = baseline;
    let mut reads = 0_u64;
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        received.extend_from_slice(&buf[..n]);
        reads += 1;
        if reads.is_multiple_of(50) {
            peak = peak.max(rss_kib(pid));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let text = String::from_utf8_lossy(&received);
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "{}",
        &text[..200.min(text.len())]
    );
    assert!(text.to_ascii_lowercase().contains("transfer-encoding: chunked"));
    assert!(
        text.ends_with("]\r\n0\r\n\r\n"),
        "export did not finish cleanly after {} bytes: ...{:?}",
        received.len(),
        &text[text.len().saturating_sub(80)..]
    );
    let rows = text.matches("\"projectId\"").count();
    assert_eq!(i64::try_from(rows).unwrap(), ROWS);
    // ~95 MB of JSON went through; the server grew by far less than that.
    let grew_mib = peak.saturating_sub(baseline) / 1024;
    assert!(
        grew_mib < 32,
        "server RSS grew by {grew_mib} MiB during the export"
    );

    let exit = tokio::task::spawn_blocking(move || server.0.wait().map(|s| s.success()))
        .await
        .unwrap()
        .unwrap();
    assert!(exit, "server did not exit cleanly after draining");
    eprintln!("export over HTTP: {rows} rows, RSS peak {peak} KiB (baseline {baseline} KiB)");
}

/// `serve` reads the server's connection limits at start and exports them (the operator budgets
/// an External database with them).
#[tokio::test]
async fn serve_exports_the_database_servers_max_connections() {
    let url = std::env::var("DATABASE_URL").unwrap();
    let expected: i64 = sqlx::query_scalar("SELECT current_setting('max_connections')::bigint")
        .fetch_one(&PgPool::connect(&url).await.unwrap())
        .await
        .unwrap();
    let (_server, port) = Server::start(&url, &[], &[]);
    wait_for_metrics_line(port, &format!("perfstack_db_server_max_connections {expected}")).await;
}

/// The memory guard acts at 80 % of the container's memory limit the operator passes in.
#[tokio::test]
async fn serve_guards_memory_at_80_percent_of_the_container_limit() {
    let url = std::env::var("DATABASE_URL").unwrap();
    let limit = perfstack_contract::env::CONTAINER_MEMORY_LIMIT_BYTES;
    let (_server, port) = Server::start(&url, &[], &[(limit, "536870912".to_owned())]);
    wait_for_metrics_line(port, "perfstack_memory_guard_limit_bytes 429496729").await;
}

/// Waits (30 s at most) until `/metrics` on `port` has the line `wanted`.
async fn wait_for_metrics_line(port: u16, wanted: &str) {
    let wanted = format!("\n{wanted}\n");
    let started = Instant::now();
    loop {
        if let Some(mut stream) = connect(port).await {
            get(&mut stream, "/metrics").await;
            let mut text = String::new();
            let _ = stream.read_to_string(&mut text).await;
            if text.contains(&wanted) {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "/metrics never showed {wanted:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
