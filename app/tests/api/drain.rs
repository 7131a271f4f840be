//! The real `serve` process around its life: it starts without its database and Redis and becomes
//! ready once they answer; it drops clients that are slow to send headers; and on SIGTERM under
//! load from the load tester it fails readiness first, keeps serving through the drain delay, then
//! stops accepting and finishes what it accepted: no request it accepted fails.
use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use perfstack_app::loadtest::{
    client::ApiClient,
    discover, driver,
    scenario::{Plan, Scenario},
};
use sqlx::PgPool;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{
    helpers::{database_url, spawn},
    proxy::Proxy,
};

/// `perfstack-app serve` on a free port with `env` and `flags`, killed when dropped.
struct Serve {
    child: Child,
    port: u16,
}

impl Serve {
    fn start(env: &[(&str, &str)], flags: &[&str]) -> Self {
        let port = perfstack_tests::spare_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_perfstack-app"));
        command
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(flags)
            .env_remove("REDIS_URL")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (name, value) in env {
            command.env(name, value);
        }
        Self {
            child: command.spawn().unwrap(),
            port,
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The status of GET `path`, or `None` when no connection could be opened.
    async fn status(&self, path: &str) -> Option<u16> {
        let client = ApiClient::new(&self.base(), Duration::from_secs(5), 1).ok()?;
        match client.send(http::Method::GET, path, None).await {
            Ok(answer) => Some(answer.status.as_u16()),
            Err(err) if err.kind() == "connect" => None,
            Err(err) => panic!("GET {path}: {err}"),
        }
    }

    async fn wait_for(&self, path: &str, status: u16, within: Duration) {
        let started = Instant::now();
        while self.status(path).await != Some(status) {
            assert!(started.elapsed() < within, "GET {path} never answered {status}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// 50 users, 10 projects, 1,000 tasks, for the load tester to find.
async fn seed(pool: &PgPool) {
    sqlx::raw_sql(
        "INSERT INTO users (email, username) SELECT 'u' || g || '@example.test', 'user' || g FROM generate_series(1, 50) g;
         INSERT INTO projects (owner_id, name) SELECT (SELECT min(id) FROM users) + g % 50, 'p' || g FROM generate_series(1, 10) g;
         INSERT INTO tasks (project_id, title, priority, assignee_id, due_date)
         SELECT (SELECT min(id) FROM projects) + g % 10, 't' || g, g % 5, (SELECT min(id) FROM users) + g % 50,
                DATE '2027-01-01' + g % 300 FROM generate_series(1, 1000) g;",
    )
    .execute(pool)
    .await
    .unwrap();
}

#[sqlx::test(migrations = false)]
async fn sigterm_under_load_drains_without_failing_an_accepted_request(pool: PgPool) {
    let _app = spawn(pool.clone()).await;
    seed(&pool).await;
    let url = database_url(&pool);
    let mut server = Serve::start(
        &[("DATABASE_URL", &url)],
        &[
            "--drain-delay-s",
            "2",
            "--shutdown-grace-s",
            "10",
            "--db-pool-max",
            "10",
        ],
    );
    server.wait_for("/readyz", 200, Duration::from_secs(30)).await;
    let client = ApiClient::new(&server.base(), Duration::from_secs(10), 20).unwrap();
    let data = discover::discover(&client).await.unwrap();
    // The baseline shape (50 requests per second) for about 9 s; SIGTERM after 3 s.
    let plan = Plan::new(Scenario::Baseline, 0.03).unwrap();
    let load =
        tokio::spawn(async move { driver::drive(&plan, client, data, 7, std::future::pending()).await });
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let signalled = Instant::now();

    // Readiness fails while the process still serves; later the listener closes.
    let mut unready_at = None;
    let closed_at = loop {
        match server.status("/readyz").await {
            Some(503) => {
                unready_at.get_or_insert_with(|| signalled.elapsed());
            }
            Some(other) => assert!(unready_at.is_none(), "readiness came back: {other}"),
            None => break signalled.elapsed(),
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(30),
            "the listener never closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let unready_at = unready_at.expect("readiness never answered 503 before the listener closed");
    assert!(unready_at < closed_at);

    let figures = load.await.unwrap();
    let totals = figures.totals;
    let failed: u64 = totals
        .errors_by_kind
        .iter()
        .filter(|(kind, _)| kind.as_str() != "connect")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(failed, 0, "accepted requests failed: {:?}", totals.errors_by_kind);
    assert!(totals.requests > 100, "too little load: {}", totals.requests);
    let exited = tokio::task::spawn_blocking(move || {
        let status = server.child.wait();
        (status, signalled.elapsed())
    })
    .await
    .unwrap();
    let (status, took) = exited;
    assert!(status.unwrap().success(), "serve did not exit cleanly");
    // drain 2 s + grace 10 s + pool close 3 s, with room for a loaded machine
    assert!(took < Duration::from_secs(25), "exit took {took:?}");
    eprintln!(
        "drain: readiness 503 after {unready_at:?}, listener closed after {closed_at:?}, exit after {took:?}, {} requests, refused {:?}",
        totals.requests,
        totals.errors_by_kind.get("connect")
    );
}

#[sqlx::test(migrations = false)]
async fn serve_starts_without_its_database_and_redis_and_gets_ready_when_they_answer(pool: PgPool) {
    let app = spawn(pool.clone()).await;
    let user = app.user("patient").await;
    let mut proxy = Proxy::to_postgres();
    let url = proxy.url(&database_url(&pool));
    let redis = format!("redis://127.0.0.1:{}/", perfstack_tests::spare_port());
    let server = Serve::start(&[("DATABASE_URL", &url), ("REDIS_URL", &redis)], &[]);
    server.wait_for("/livez", 200, Duration::from_secs(30)).await;
    assert_eq!(
        server.status("/readyz").await,
        Some(503),
        "unready without its database"
    );
    assert_eq!(server.status(&format!("/api/v1/users/{user}")).await, Some(503));
    assert_eq!(
        server.status("/api/v1/jobs?state=dead").await,
        Some(503),
        "no queue without Redis"
    );

    proxy.start().await;
    server.wait_for("/readyz", 200, Duration::from_secs(60)).await;
    assert_eq!(server.status(&format!("/api/v1/users/{user}")).await, Some(200));
    assert_eq!(
        server.status("/health").await,
        Some(503),
        "/health reports Redis down"
    );
}

#[sqlx::test(migrations = false)]
async fn a_client_slow_to_send_its_headers_is_dropped(pool: PgPool) {
    let _app = spawn(pool.clone()).await;
    let url = database_url(&pool);
    let server = Serve::start(&[("DATABASE_URL", &url)], &["--header-read-timeout-ms", "500"]);
    server.wait_for("/livez", 200, Duration::from_secs(30)).await;
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    stream
        .write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection stayed open");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        !String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"),
        "a half-sent request was served"
    );
}
