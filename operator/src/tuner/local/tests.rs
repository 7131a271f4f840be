use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::routing::get;

use super::*;
use crate::tuner::testing::PodMetrics;

/// A stand-in for the app that honours the tuning file like the real one: it reports the pool
/// maximum and generation of the file in force, and a full pool whose waiting tasks drop as it
/// grows (60 / pool max), so each growth visibly helps.
async fn app_reading(tuning_file: PathBuf) -> String {
    let served = Arc::new(AtomicU64::new(0));
    let metrics = move || {
        let served = served.clone();
        let tuning_file = tuning_file.clone();
        async move {
            let n = served.fetch_add(100, Ordering::SeqCst) + 100;
            let file = read_file(&tuning_file).ok().flatten();
            let (pool_max, generation) =
                file.map_or((10, 0), |f| (u64::from(f.pool.max_connections), f.generation));
            PodMetrics {
                ok: n,
                latency: vec![(0.05, n / 2), (0.1, n), (0.5, n)],
                in_use: pool_max,
                pool_min: 2,
                pool_max,
                waiting: 60 / pool_max.max(1),
                acquire: vec![(0.001, 0), (0.05, n)],
                generation,
                ..PodMetrics::default()
            }
            .render()
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, Router::new().route("/metrics", get(metrics))).await });
    format!("http://{addr}")
}

fn args(app_url: String, tuning_file: &Path, iterations: u64) -> LocalArgs {
    LocalArgs {
        app_url,
        tuning_file: tuning_file.to_owned(),
        interval: Duration::from_millis(50),
        db_max_connections: 100,
        reserved: 10,
        pool_min: 2,
        pool_max: 50,
        slo_p95: Duration::from_millis(200),
        stabilization: Duration::from_secs(300),
        iterations: Some(iterations),
    }
}

#[tokio::test]
async fn local_loop_grows_the_pool_one_confirmed_generation_at_a_time() {
    let dir = std::env::temp_dir().join(format!("perfstack-local-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let tuning_file = dir.join("tuning.yaml");
    let url = app_reading(tuning_file.clone()).await;
    let mut lines = Vec::new();
    run(&args(url, &tuning_file, 5), |l| lines.push(l.to_owned()))
        .await
        .unwrap();
    let all = lines.join("\n");
    let file = read_file(&tuning_file).unwrap().unwrap();
    // 10 -> 20 (gen 1), wait, 20 -> 35 (gen 2), wait, 35 -> 50 (gen 3, spec max).
    assert_eq!((file.generation, file.pool.max_connections), (3, 50), "{all}");
    assert_eq!(all.matches("wrote generation").count(), 3, "{all}");
    assert!(all.contains("pool 2..10 -> 2..20, wrote generation 1"), "{all}");
    assert!(all.contains("waiting for every pod to run generation 1"), "{all}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn unreachable_app_is_reported_and_nothing_is_written() {
    let dir = std::env::temp_dir().join(format!("perfstack-local-gone-{}", std::process::id()));
    let tuning_file = dir.join("tuning.yaml");
    let mut lines = Vec::new();
    run(&args("http://127.0.0.1:9".into(), &tuning_file, 2), |l| {
        lines.push(l.to_owned())
    })
    .await
    .unwrap();
    let all = lines.join("\n");
    assert!(all.contains("local: no answer"), "{all}");
    assert!(all.contains("no pod answered"), "{all}");
    assert!(!tuning_file.exists());
}

#[test]
fn durations_parse_with_units() {
    assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
    assert!(parse_duration("0s").is_err());
    assert!(parse_duration("5 parsecs").is_err());
    assert!(parse_duration("").is_err());
}

#[test]
fn the_file_is_written_atomically_and_read_back() {
    let dir = std::env::temp_dir().join(format!("perfstack-local-write-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("tuning.yaml");
    assert_eq!(read_file(&path).unwrap(), None);
    let mut file = TuningFile::default();
    write_file(&file, &path).unwrap();
    file.generation = 2;
    file.pool.max_connections = 30;
    write_file(&file, &path).unwrap();
    assert_eq!(read_file(&path).unwrap(), Some(file));
    let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().filter_map(Result::ok).collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    file.pool.max_connections = 501;
    assert!(
        write_file(&file, &path)
            .unwrap_err()
            .to_string()
            .contains("pool.maxConnections"),
        "a file breaking a bound is never written"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
