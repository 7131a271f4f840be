//! Pool telemetry and live resizing through the tuning file.
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use perfstack_app::db::{Db, tuning};
use perfstack_contract::tuning::PoolSettings;

use crate::common::*;

const SLEEP_SQL: &str = "SELECT pg_sleep($1)";

async fn sleep_query(db: &Db, seconds: f64) -> Result<(), sqlx::Error> {
    db.timed("test.sleep", SLEEP_SQL, |pool| async move {
        sqlx::query(SLEEP_SQL)
            .bind(seconds)
            .execute(&pool)
            .await
            .map(|_| ())
    })
    .await
}

/// Settings with a long acquire timeout: a loaded CI machine may be slow, but only a resize
/// that drops or closes connections under their users could fail an operation.
fn tuning_yaml(generation: u64, min: u32, max: u32) -> String {
    format!(
        "generation: {generation}\npool:\n  minConnections: {min}\n  maxConnections: {max}\n  acquireTimeoutMs: 60000\n  idleTimeoutSeconds: 60\n"
    )
}

/// Replaces the file the way a ConfigMap volume does: write aside, then rename over it.
fn write_tuning(dir: &std::path::Path, text: &str) {
    let aside = dir.join(".tuning.yaml.new");
    std::fs::write(&aside, text).unwrap();
    std::fs::rename(&aside, dir.join("tuning.yaml")).unwrap();
}

async fn wait_for(what: &str, check: impl Fn() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn resize_under_load_fails_no_request() {
    let mut cfg = db_config(4);
    cfg.acquire_timeout_ms = 60_000;
    let db = Db::connect(&cfg).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tuning.yaml");
    let watcher = tokio::spawn(tuning::watch(db.clone(), path, Duration::from_millis(50)));
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let max_waiting = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..24 {
        let (db, stop, ok, failed, max_waiting) = (
            db.clone(),
            stop.clone(),
            ok.clone(),
            failed.clone(),
            max_waiting.clone(),
        );
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Acquire) {
                match sleep_query(&db, 0.005).await {
                    Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(err) => {
                        eprintln!("failed: {err}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
                let waiting = u64::try_from(db.telemetry().waiting.get()).unwrap_or(0);
                max_waiting.fetch_max(waiting, Ordering::Relaxed);
            }
        }));
    }
    let telemetry = db.telemetry().clone();
    let generation = || telemetry.settings_generation.get();
    tokio::time::sleep(Duration::from_millis(300)).await;
    write_tuning(dir.path(), &tuning_yaml(1, 2, 12));
    wait_for("generation 1", || generation() == 1).await;
    assert_eq!(telemetry.max_connections.get(), 12);
    tokio::time::sleep(Duration::from_millis(300)).await;
    write_tuning(dir.path(), &tuning_yaml(2, 0, 3));
    wait_for("generation 2", || generation() == 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    write_tuning(
        dir.path(),
        "generation: 3\npool:\n  minConnections: 5\n  maxConnections: 0\n  acquireTimeoutMs: 1\n  idleTimeoutSeconds: 1\n",
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(generation(), 2, "an invalid file is ignored");
    assert_eq!(telemetry.max_connections.get(), 3, "the last good settings stay");
    write_tuning(dir.path(), &tuning_yaml(4, 1, 8));
    wait_for("generation 4", || generation() == 4).await;
    // A new generation with the same settings keeps the pool.
    write_tuning(dir.path(), &tuning_yaml(5, 1, 8));
    wait_for("generation 5", || generation() == 5).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Release);
    for worker in workers {
        worker.await.unwrap();
    }
    watcher.abort();

    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed during resizes"
    );
    assert!(ok.load(Ordering::Relaxed) > 100, "the load ran");
    assert_eq!(telemetry.pool_swaps.get(), 3);
    assert_eq!(db.settings().0.max_connections, 8);
    assert!(db.pool().size() <= 8);
    assert!(
        max_waiting.load(Ordering::Relaxed) > 0,
        "24 workers on 3..12 connections had to wait"
    );
}

#[tokio::test]
async fn acquire_timeouts_are_counted() {
    let db = db(1).await;
    // A 100 ms acquire timeout, put in force like the tuning file does.
    db.apply_settings(
        PoolSettings {
            min_connections: 1,
            max_connections: 1,
            acquire_timeout_ms: 100,
            idle_timeout_seconds: 60,
        },
        1,
    );
    // Open the one connection first (connecting may take longer than 100 ms on a busy machine).
    let mut warm = false;
    for _ in 0..20 {
        if sleep_query(&db, 0.0).await.is_ok() {
            warm = true;
            break;
        }
    }
    assert!(warm, "the pool never opened its connection");
    let timeouts = db.telemetry().acquire_timeouts.get();
    let holder = {
        let db = db.clone();
        tokio::spawn(async move { sleep_query(&db, 0.6).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = Instant::now();
    let err = sleep_query(&db, 0.0).await.unwrap_err();
    assert!(matches!(err, sqlx::Error::PoolTimedOut), "{err}");
    assert!(start.elapsed() < Duration::from_millis(400));
    assert_eq!(db.telemetry().acquire_timeouts.get(), timeouts + 1);
    holder.await.unwrap().unwrap();
    sleep_query(&db, 0.0).await.unwrap();
    assert_eq!(db.telemetry().waiting.get(), 0);
}

#[tokio::test]
async fn a_waiter_dropped_mid_wait_leaves_the_waiting_gauge() {
    let db = db(1).await;
    sleep_query(&db, 0.0).await.unwrap();
    let holder = {
        let db = db.clone();
        tokio::spawn(async move { sleep_query(&db, 1.0).await })
    };
    // Time for the holder to take the one slot (its connection is open already).
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Callers that give up while waiting for the slot, as a request timeout or a client that
    // disconnects does: their futures are dropped mid-wait.
    for _ in 0..5 {
        let gave_up = tokio::time::timeout(Duration::from_millis(20), sleep_query(&db, 0.0)).await;
        assert!(gave_up.is_err(), "the slot should have been busy");
    }
    assert_eq!(db.telemetry().waiting.get(), 0, "cancelled waiters still counted");
    holder.await.unwrap().unwrap();
}
