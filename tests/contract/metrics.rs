//! The metrics the tuner reads: the app's own registry, encoded as it serves `/metrics`, parsed by the
//! tuner's reader, gives back every figure the app recorded.
use perfstack_app::db::telemetry::DbTelemetry;
use perfstack_app::metrics::{Metrics, RequestLabels, RouteLabels};
use perfstack_contract::tuning::PoolSettings;
use perfstack_operator::tuner::exposition;
use perfstack_operator::tuner::observe::PodSnapshot;

fn exported() -> String {
    let db = DbTelemetry::default();
    let metrics = Metrics::new(&[&db]);
    let settings = PoolSettings {
        min_connections: 2,
        max_connections: 7,
        acquire_timeout_ms: 3000,
        idle_timeout_seconds: 600,
    };
    db.settings_in_force(&settings, 5);
    db.server_limits(200, 3);
    db.pool_occupancy(7, 2);
    db.waiting.set(4);
    db.acquire_timeouts.inc_by(2);
    db.acquire_duration.observe(0.004);
    for (status_class, count) in [("2xx", 90_u64), ("5xx", 10)] {
        metrics
            .http
            .requests
            .get_or_create(&RequestLabels {
                route: "/api/v1/users/{id}",
                method: "GET",
                status_class,
            })
            .inc_by(count);
    }
    let route = RouteLabels {
        route: "/api/v1/users/{id}",
        method: "GET",
    };
    for _ in 0..100 {
        metrics.http.duration.get_or_create(&route).observe(0.012);
    }
    metrics.encode().expect("the exposition")
}

#[test]
fn the_tuner_reads_every_figure_the_app_exports() {
    let text = exported();
    let samples = exposition::parse(&text).expect("the tuner parses the app's exposition");
    let pod = PodSnapshot::from_samples(&samples);
    assert_eq!(
        (pod.requests, pod.server_errors),
        (100.0, 10.0),
        "requests by status class"
    );
    assert_eq!(pod.latency.total(), 100.0, "latency buckets");
    let p95 = pod.latency.quantile(0.95).expect("a p95");
    assert!(
        (0.01..=0.015).contains(&p95),
        "p95 {p95} within the 10-15 ms bucket"
    );
    assert_eq!(
        (pod.pool_in_use, pod.pool_idle),
        (5.0, 2.0),
        "connections by state"
    );
    assert_eq!((pod.pool_min, pod.pool_max, pod.pool_waiting), (2.0, 7.0, 4.0));
    assert_eq!(pod.acquire.total(), 1.0, "acquire-time buckets");
    assert_eq!(pod.acquire_timeouts, 2.0);
    assert_eq!(pod.generation, 5, "tuning generation in force");
    assert_eq!(
        (pod.server_max_connections, pod.server_reserved_connections),
        (200.0, 3.0)
    );
}

#[test]
fn every_family_the_contract_lists_is_in_the_apps_exposition_with_its_labels() {
    let text = exported();
    let samples = exposition::parse(&text).expect("parsed");
    for family in perfstack_contract::metrics::TUNER_READS {
        let sample = family.sample();
        let found: Vec<_> = samples.iter().filter(|s| s.name == sample).collect();
        assert!(!found.is_empty(), "{sample} missing from the app's /metrics");
        for label in family.labels {
            assert!(
                found.iter().all(|s| s.label(label).is_some()),
                "{sample} without label {label}"
            );
        }
    }
}
