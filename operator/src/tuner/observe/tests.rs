use std::collections::BTreeMap;

use super::*;
use crate::tuner::exposition::parse;
use crate::tuner::testing::PodMetrics;

fn snap(m: &PodMetrics) -> PodSnapshot {
    PodSnapshot::from_samples(&parse(&m.render()).unwrap())
}

fn buckets(counts: [u64; 4]) -> Vec<(f64, u64)> {
    vec![
        (0.05, counts[0]),
        (0.1, counts[1]),
        (0.5, counts[2]),
        (1.0, counts[3]),
    ]
}

/// A pod's counters at the start of the interval, on generation 3 with an empty pool: `ok`
/// requests, latency `buckets`, connection acquires within 1 ms and 10 ms, acquire timeouts.
fn at_start(ok: u64, latency: [u64; 4], acquire: [u64; 2], timeouts: u64) -> PodMetrics {
    PodMetrics {
        ok,
        latency: buckets(latency),
        acquire: vec![(0.001, acquire[0]), (0.01, acquire[1])],
        timeouts,
        generation: 3,
        ..PodMetrics::default()
    }
}

fn pod_a(start: bool) -> PodMetrics {
    if start {
        at_start(100, [90, 100, 100, 100], [100, 100], 1)
    } else {
        PodMetrics {
            ok: 1000,
            server_errors: 10,
            latency: buckets([900, 1000, 1010, 1010]),
            in_use: 4,
            idle: 1,
            pool_min: 1,
            pool_max: 5,
            waiting: 2,
            acquire: vec![(0.001, 200), (0.01, 300)],
            timeouts: 4,
            generation: 3,
            ..PodMetrics::default()
        }
    }
}

fn pod_b(start: bool, end_generation: u64) -> PodMetrics {
    if start {
        at_start(500, [0, 0, 0, 500], [400, 500], 5)
    } else {
        // Restarted: counters below the start values.
        PodMetrics {
            ok: 90,
            latency: buckets([0, 0, 0, 90]),
            in_use: 1,
            idle: 4,
            pool_max: 5,
            acquire: vec![(0.001, 0), (0.01, 0)],
            timeouts: 2,
            generation: end_generation,
            ..PodMetrics::default()
        }
    }
}

fn pod_d() -> PodMetrics {
    PodMetrics {
        ok: 50,
        latency: buckets([50, 50, 50, 50]),
        idle: 2,
        pool_max: 5,
        generation: 3,
        ..PodMetrics::default()
    }
}

fn observe(end_generation_b: u64) -> Observation {
    let start: BTreeMap<String, PodSnapshot> = [
        ("a".to_owned(), snap(&pod_a(true))),
        ("b".to_owned(), snap(&pod_b(true, 3))),
        ("c".to_owned(), snap(&pod_a(true))),
    ]
    .into_iter()
    .collect();
    let end = vec![
        ("a".to_owned(), Ok(snap(&pod_a(false)))),
        ("b".to_owned(), Ok(snap(&pod_b(false, end_generation_b)))),
        ("c".to_owned(), Err("connection refused".to_owned())),
        ("d".to_owned(), Ok(snap(&pod_d()))),
    ];
    aggregate(&start, &end, 10.0)
}

#[test]
fn snapshot_reads_every_contract_family() {
    let s = snap(&pod_a(false));
    assert_eq!((s.requests, s.server_errors), (1010.0, 10.0));
    assert_eq!(s.latency.total(), 1010.0);
    assert_eq!(
        (s.pool_in_use, s.pool_idle, s.pool_min, s.pool_max),
        (4.0, 1.0, 1.0, 5.0)
    );
    assert_eq!((s.pool_waiting, s.acquire_timeouts, s.generation), (2.0, 4.0, 3));
    assert_eq!(s.acquire.total(), 300.0);
}

#[test]
fn interval_sums_bucket_deltas_and_counts_pods() {
    let o = observe(3);
    assert_eq!(o.pods.asked, 4);
    assert_eq!(o.pods.answered, 3);
    assert_eq!(o.pods.unanswered, vec!["c".to_owned()]);
    assert_eq!((o.pods.restarted, o.pods.without_baseline), (1, 1));
    // 910 requests from a, 90 since b restarted; d has no baseline, c did not answer.
    assert!(
        (o.requests_per_second - 100.0).abs() < 1e-9,
        "{}",
        o.requests_per_second
    );
    assert!((o.error_rate - 0.01).abs() < 1e-9, "{}", o.error_rate);
    // Summed deltas: 810 <= 50 ms, 900 <= 100 ms, 910 <= 500 ms, 1000 <= 1 s.
    let p95 = o.p95.unwrap();
    assert!((p95 - (0.5 + 0.5 * 40.0 / 90.0)).abs() < 1e-9, "{p95}");
    let p99 = o.p99.unwrap();
    assert!((p99 - (0.5 + 0.5 * 80.0 / 90.0)).abs() < 1e-9, "{p99}");
    assert_eq!((o.pool.in_use, o.pool.idle, o.pool.max), (5.0, 7.0, 15.0));
    assert_eq!((o.pool.waiting, o.pool.peak_in_use_per_pod), (2.0, 4.0));
    assert_eq!(o.pool.acquire_timeouts, 5.0);
    let acquire_p95 = o.pool.acquire_p95.unwrap();
    assert!(
        (acquire_p95 - (0.001 + 0.009 * 0.9)).abs() < 1e-9,
        "{acquire_p95}"
    );
    assert_eq!(o.settled_generation(), Some(3));
    assert!((o.pool_utilisation() - 5.0 / 15.0).abs() < 1e-9);
}

#[test]
fn generation_is_settled_only_when_every_answering_pod_agrees() {
    let o = observe(4);
    assert_eq!((o.generation_lowest, o.generation_highest), (3, 4));
    assert_eq!(o.settled_generation(), None);
}

#[test]
fn no_answers_means_no_figures_rather_than_zeros_guessed_as_quiet() {
    let end = vec![("a".to_owned(), Err("timeout".to_owned()))];
    let o = aggregate(&BTreeMap::new(), &end, 30.0);
    assert_eq!((o.pods.asked, o.pods.answered), (1, 0));
    assert_eq!((o.p95, o.settled_generation()), (None, None));
}

fn with_server(max: f64, reserved: f64) -> PodSnapshot {
    let text = format!(
        "# TYPE perfstack_db_server_max_connections gauge\nperfstack_db_server_max_connections {max}\n\
         # TYPE perfstack_db_server_reserved_connections gauge\nperfstack_db_server_reserved_connections {reserved}\n"
    );
    PodSnapshot::from_samples(&parse(&text).unwrap())
}

#[test]
fn server_limits_are_the_most_cautious_any_answering_pod_reported() {
    // One wrong (or hostile) pod claiming a huge server must not inflate the budget: the lowest
    // max_connections counts, and the largest reserve.
    let end: Vec<PodAnswer> = vec![
        ("a".into(), Ok(with_server(200.0, 3.0))),
        ("b".into(), Ok(with_server(0.0, 0.0))), // not read yet
        ("c".into(), Ok(with_server(10_000.0, 5.0))),
        ("d".into(), Err("timeout".into())),
    ];
    let obs = aggregate(&BTreeMap::new(), &end, 30.0);
    assert_eq!(
        obs.server,
        Some(ServerLimits {
            max_connections: 200,
            reserved: 5
        })
    );
}

#[test]
fn server_limits_are_unknown_when_no_pod_reports_them() {
    let end: Vec<PodAnswer> = vec![
        ("a".into(), Ok(with_server(0.0, 0.0))),
        ("b".into(), Ok(PodSnapshot::default())),
        ("c".into(), Err("refused".into())),
    ];
    assert_eq!(aggregate(&BTreeMap::new(), &end, 30.0).server, None);
}
