//! `perfstack-operator local` as a user runs it: the binary against an HTTP server serving the
//! app's metrics, with a tuning file it must write.
use std::process::Command;

use axum::Router;
use axum::routing::get;

/// Metrics of an app whose 5-connection pool is full with 4 tasks waiting, at generation 0.
const METRICS: &str = "\
perfstack_http_requests_total{route=\"/api/v1/users\",method=\"GET\",status_class=\"2xx\"} 100
perfstack_http_request_duration_seconds_bucket{route=\"/api/v1/users\",method=\"GET\",le=\"0.1\"} 100
perfstack_http_request_duration_seconds_bucket{route=\"/api/v1/users\",method=\"GET\",le=\"+Inf\"} 100
perfstack_db_pool_connections{state=\"in_use\"} 5
perfstack_db_pool_connections{state=\"idle\"} 0
perfstack_db_pool_min_connections 1
perfstack_db_pool_max_connections 5
perfstack_db_pool_waiting 4
perfstack_db_pool_settings_generation 0
";

#[test]
fn local_subcommand_prints_decisions_and_writes_the_tuning_file() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move {
        axum::serve(
            listener,
            Router::new().route("/metrics", get(|| async { METRICS })),
        )
        .await
    });

    let dir = std::env::temp_dir().join(format!("perfstack-local-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let tuning_file = dir.join("tuning.yaml");
    let output = Command::new(env!("CARGO_BIN_EXE_perfstack-operator"))
        .args([
            "local",
            "--app-url",
            &format!("http://{addr}"),
            "--interval",
            "200ms",
            "--iterations",
            "2",
        ])
        .arg("--tuning-file")
        .arg(&tuning_file)
        .args(["--db-max-connections", "40", "--reserved", "10"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("budget Fits") || stdout.contains("budget PoolCapped"),
        "{stdout}"
    );
    assert!(
        stdout.contains("pool 1..5 -> 2..10, wrote generation 1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("waiting for every pod to run generation 1"),
        "{stdout}"
    );
    let written = std::fs::read_to_string(&tuning_file).unwrap();
    assert!(
        written.contains("generation: 1\npool:\n  minConnections: 2\n  maxConnections: 10\n"),
        "{written}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
