//! The monitors: a query over the threshold is logged with its operation, duration and statement
//! text, never with the values bound to it; the pool monitor logs the pool's figures periodically.
use std::{
    io::Write,
    sync::{Arc, Mutex},
    time::Duration,
};

use perfstack_app::db::{
    Db, QueryMonitor,
    migrate::{self, MigrateOptions},
    pool_monitor, users,
};
use sqlx::PgPool;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Captures this thread's log events as JSON lines until the guard is dropped.
    fn json_logs() -> (Self, tracing::subscriber::DefaultGuard) {
        let captured = Self::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || writer.clone())
            .finish();
        // Not tracing's own `set_default`: other tests' threads reach the same callsites (see `scoped`).
        (captured, perfstack_otel::scoped::set_default(subscriber))
    }
}

#[sqlx::test(migrations = false)]
async fn slow_queries_are_logged_without_their_values(pool: PgPool) {
    let quiet = Db::from_pool(pool.clone(), QueryMonitor::new(Duration::from_secs(3600)));
    migrate::apply(&quiet, &MigrateOptions::default()).await.unwrap();

    let (captured, _guard) = Captured::json_logs();

    // everything is "slow" with a zero threshold
    let db = Db::from_pool(pool, QueryMonitor::new(Duration::ZERO));
    let found = users::find_active_by_email(&db, "very-secret-address@example.com")
        .await
        .unwrap();
    assert!(found.is_none());

    let logs = captured.text();
    let line = logs
        .lines()
        .find(|l| l.contains("users.find_active_by_email"))
        .unwrap_or_else(|| panic!("no slow-query line in {logs}"));
    let event: serde_json::Value = serde_json::from_str(line).unwrap();
    let fields = &event["fields"];
    assert_eq!(fields["message"], "slow query");
    assert_eq!(event["level"], "WARN");
    assert!(fields["duration_ms"].as_f64().unwrap() >= 0.0);
    let statement = fields["statement"].as_str().unwrap();
    assert!(statement.contains("WHERE email = $1"), "{statement}");
    assert!(
        !logs.contains("very-secret-address"),
        "a bound value reached the log"
    );

    // under the threshold nothing is logged
    let before = captured.text().len();
    users::find_active_by_email(&quiet, "x@example.com")
        .await
        .unwrap();
    assert_eq!(captured.text().len(), before);
}

#[sqlx::test(migrations = false)]
async fn the_pool_monitor_logs_the_pool_periodically(pool: PgPool) {
    let (captured, _guard) = Captured::json_logs();

    let db = Db::from_pool(pool, QueryMonitor::new(Duration::from_secs(3600)));
    let held = db.pool().acquire().await.unwrap();
    let monitor = tokio::spawn(pool_monitor::watch(db.clone(), Duration::from_millis(100)));
    tokio::time::sleep(Duration::from_millis(350)).await;
    monitor.abort();
    drop(held);

    let logs = captured.text();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter(|l| l.contains("database pool"))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        (2..=4).contains(&lines.len()),
        "one line per interval, none at start: {logs}"
    );
    let fields = &lines[0]["fields"];
    assert_eq!(lines[0]["level"], "INFO");
    assert!(fields["size"].as_u64().unwrap() >= 1, "{fields}");
    assert!(
        fields["in_use"].as_u64().unwrap() >= 1,
        "the held connection: {fields}"
    );
    assert_eq!(fields["waiting"], 0);
    assert_eq!(fields["max_connections"], db.pool_snapshot().max_connections);
    assert_eq!(fields["acquire_timeouts"], 0);
}
