//! The two-level cache: levels, single flight, cross-replica eviction, Redis outages, freshness.
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use perfstack_app::cache::telemetry::{L1, L2};

use crate::common::*;

#[tokio::test]
async fn hits_and_misses_at_both_levels() {
    let (redis, db, id) = with_widget(4, "first").await;
    let a = cache(Some(&redis)).await;
    let b = cache(Some(&redis)).await;
    let queries = || db.telemetry().query_count(WIDGET_OP);

    let before = queries();
    assert_eq!(cached_widget(&a, &db, id).await.unwrap().name, "first");
    assert_eq!(queries(), before + 1, "a cold read goes to the database");
    assert_eq!((a.telemetry().misses(&L1), a.telemetry().misses(&L2)), (1, 1));

    assert_eq!(cached_widget(&a, &db, id).await.unwrap().name, "first");
    assert_eq!(queries(), before + 1, "a warm read does not");
    assert_eq!(a.telemetry().hits(&L1), 1);

    assert_eq!(cached_widget(&b, &db, id).await.unwrap().name, "first");
    assert_eq!(queries(), before + 1, "another replica finds it in Redis");
    assert_eq!((b.telemetry().misses(&L1), b.telemetry().hits(&L2)), (1, 1));

    assert_eq!(
        cached_widget(&a, &db, i64::MAX).await,
        None,
        "absent rows are not errors"
    );
    assert_eq!(a.telemetry().redis_error_count(), 0);
}

#[tokio::test]
async fn hundred_concurrent_misses_make_one_query() {
    let (redis, db, id) = with_widget(10, "popular").await;
    let cache = cache(Some(&redis)).await;
    let before = db.telemetry().query_count(WIDGET_OP);
    let reads = (0..100).map(|_| cached_widget_slow(&cache, &db, id, 100));
    let results = futures::future::join_all(reads).await;
    assert!(
        results
            .iter()
            .all(|w| w.as_ref().is_some_and(|w| w.name == "popular"))
    );
    assert_eq!(db.telemetry().query_count(WIDGET_OP) - before, 1);
}

#[tokio::test]
async fn a_write_evicts_every_replica_within_a_second() {
    let (redis, db, id) = with_widget(4, "old").await;
    let writer = cache(Some(&redis)).await;
    let reader = cache(Some(&redis)).await;
    assert_eq!(cached_widget(&reader, &db, id).await.unwrap().name, "old");
    assert_eq!(cached_widget(&reader, &db, id).await.unwrap().name, "old");
    assert_eq!(reader.telemetry().hits(&L1), 1, "the reader holds it in L1");

    rename_widget(&db, id, "new").await;
    evict_widget(&writer, id).await;
    let start = Instant::now();
    loop {
        if cached_widget(&reader, &db, id).await.unwrap().name == "new" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "the reader still serves the old value"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let remote = reader.telemetry().eviction("remote").get();
    assert_eq!(remote, 1);
}

#[tokio::test]
async fn redis_outage_degrades_to_the_database_and_recovers() {
    let mut redis = RedisServer::start().await;
    let db = db(4).await;
    widgets(&db).await;
    let cache = cache(Some(&redis)).await;
    let first = insert_widget(&db, "before").await;
    assert_eq!(cached_widget(&cache, &db, first).await.unwrap().name, "before");
    let errors_before = cache.telemetry().redis_error_count();

    redis.stop();
    for n in 0..20 {
        let id = insert_widget(&db, &format!("during {n}")).await;
        let start = Instant::now();
        let widget = cached_widget(&cache, &db, id).await.unwrap();
        assert_eq!(widget.name, format!("during {n}"));
        // Redis costs at most its 50 ms timeouts; the bound leaves room for a loaded machine.
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "a read waited {:?}",
            start.elapsed()
        );
        // A write while Redis is down still succeeds and is remembered for later.
        evict_widget(&cache, id).await;
    }
    assert!(
        cache.telemetry().redis_error_count() > errors_before,
        "the outage is counted"
    );
    assert_eq!(cache.redis_up().await, Some(false));

    redis.restart().await;
    let after = insert_widget(&db, "after").await;
    let start = Instant::now();
    loop {
        // Once `cache` reaches Redis again, the first read stores the key there and the next
        // one (L1 cleared) finds it in L2.
        let l2_hits = cache.telemetry().hits(&L2);
        cache.clear_l1();
        cached_widget(&cache, &db, after).await.unwrap();
        if cache.telemetry().hits(&L2) > l2_hits {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the cache did not use Redis again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(cache.redis_up().await, Some(true));
    evictions_reach_redis(&cache).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_redis_costs_reads_only_its_timeout() {
    let (redis, db) = with_widgets(4).await;
    let cache = cache(Some(&redis)).await;
    let errors_before = cache.telemetry().redis_error_count();
    let mut conn = redis.connection().await.unwrap();
    // Redis answers nothing for two seconds.
    let sleeper = tokio::spawn(async move {
        redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg(2)
            .query_async::<()>(&mut conn)
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = Instant::now();
    for n in 0..5 {
        let id = insert_widget(&db, &format!("slow {n}")).await;
        assert_eq!(
            cached_widget(&cache, &db, id).await.unwrap().name,
            format!("slow {n}")
        );
    }
    let elapsed = start.elapsed();
    assert!(
        elapsed < Duration::from_millis(1500),
        "5 reads took {elapsed:?} while Redis slept"
    );
    assert!(
        cache.telemetry().redis_error_count() > errors_before,
        "the timeout is counted"
    );
    sleeper.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_read_after_a_write_returns_the_old_value() {
    let (redis, db, id) = with_widget(10, "0").await;
    let replica = cache(Some(&redis)).await;
    let other = cache(Some(&redis)).await;
    let committed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let violations = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for n in 0..6 {
        let (db, committed, stop, violations) =
            (db.clone(), committed.clone(), stop.clone(), violations.clone());
        let cache = if n % 2 == 0 {
            replica.clone()
        } else {
            other.clone()
        };
        let same_replica = n % 2 == 0;
        readers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Acquire) {
                let floor = committed.load(Ordering::Acquire);
                // Slow loads race the writes on purpose.
                let widget = cached_widget_slow(&cache, &db, id, 3).await.unwrap();
                let seen: u64 = widget.name.parse().unwrap();
                if same_replica && seen < floor {
                    violations.fetch_add(1, Ordering::Relaxed);
                }
                // An L1 hit never waits; let the writer run.
                tokio::task::yield_now().await;
            }
        }));
    }
    for version in 1..=40u64 {
        rename_widget(&db, id, &version.to_string()).await;
        evict_widget(&replica, id).await;
        committed.store(version, Ordering::Release);
        let seen = cached_widget(&replica, &db, id).await.unwrap();
        assert_eq!(seen.name, version.to_string(), "read right after write {version}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::Release);
    for reader in readers {
        reader.await.unwrap();
    }
    assert_eq!(
        violations.load(Ordering::Relaxed),
        0,
        "reads after a write saw an older value"
    );
    // Redis must not keep an old value either: a fresh replica reads the last one (once any
    // eviction that Redis was too slow to take has been retried).
    evictions_reach_redis(&replica).await;
    let fresh = cache(Some(&redis)).await;
    assert_eq!(cached_widget(&fresh, &db, id).await.unwrap().name, "40");
}

#[tokio::test]
async fn the_cache_never_lists_keys() {
    let (redis, db) = with_widgets(4).await;
    let cache = cache(Some(&redis)).await;
    for n in 0..5 {
        let id = insert_widget(&db, &format!("w{n}")).await;
        cached_widget(&cache, &db, id).await.unwrap();
        rename_widget(&db, id, "renamed").await;
        evict_widget(&cache, id).await;
        cache.clear_l1();
        cached_widget(&cache, &db, id).await.unwrap();
    }
    let stats = redis.command_stats().await;
    assert!(stats.contains("cmdstat_mget"), "the cache did use Redis: {stats}");
    assert!(!stats.contains("cmdstat_keys"), "KEYS was called: {stats}");
}

#[tokio::test]
async fn memory_guard_clears_l1_above_the_limit() {
    let db = db(2).await;
    widgets(&db).await;
    let cache = cache(None).await;
    let id = insert_widget(&db, "big").await;
    cached_widget(&cache, &db, id).await.unwrap();
    cache.refresh_gauges().await;
    assert_eq!(cache.telemetry().l1_entries.get(), 1);
    let rss = perfstack_app::metrics::process::resident_bytes().unwrap();
    assert_eq!(
        cache.guard_memory(rss, rss / 2),
        perfstack_app::cache::memory_guard::GuardAction::ClearL1
    );
    cache.refresh_gauges().await;
    assert_eq!(cache.telemetry().l1_entries.get(), 0);
    let before = db.telemetry().query_count(WIDGET_OP);
    cached_widget(&cache, &db, id).await.unwrap();
    assert_eq!(
        db.telemetry().query_count(WIDGET_OP),
        before + 1,
        "the next read reloads"
    );
}
