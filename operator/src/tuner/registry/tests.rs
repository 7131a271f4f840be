use super::*;
use crate::crd::TuningMode;
use crate::tuner::testing;

const KEY: &str = "ns/a";

fn request(spec: &PerformanceStackSpec, now: Instant) -> TuningRequest<'_> {
    TuningRequest {
        spec,
        generation: 3,
        live_file: None,
        recorded: None,
        app_metrics: None,
        now,
        wall: Utc::now(),
    }
}

#[test]
fn a_stack_is_due_once_per_interval() {
    let registry = TuningRegistry::new();
    let t0 = Instant::now();
    assert!(registry.is_due(KEY, Duration::from_secs(30), t0));
    let entry = Entry::new(
        testing::spec((1, 10), (1, 2), 100),
        testing::settings((1, 5), (1, 2), 4),
    );
    registry.lock().insert(
        KEY.into(),
        Entry {
            last_tick: Some(t0),
            ..entry
        },
    );
    assert!(!registry.is_due(KEY, Duration::from_secs(30), t0 + Duration::from_secs(29)));
    assert!(registry.is_due(KEY, Duration::from_secs(30), t0 + Duration::from_secs(30)));
    assert_eq!(registry.settings_in_force(KEY).map(|s| s.generation), Some(4));
    let spec_values = testing::settings((2, 8), (1, 2), 1);
    assert!(
        !registry.follow_spec(KEY, "pool 10".into(), spec_values),
        "first sighting"
    );
    assert_eq!(
        registry.settings_in_force(KEY).map(|s| s.pool_max),
        Some(5),
        "tuned kept"
    );
    assert!(registry.follow_spec(KEY, "pool 8".into(), spec_values), "an edit");
    let s = registry.settings_in_force(KEY).unwrap();
    assert_eq!(
        (s.pool_max, s.generation),
        (8, 5),
        "spec values at a newer generation"
    );
    registry.forget(KEY);
    assert_eq!(registry.settings_in_force(KEY), None);
}

const LIVE: &str = "generation: 7\npool:\n  minConnections: 2\n  maxConnections: 15\n  acquireTimeoutMs: 3000\n  idleTimeoutSeconds: 600\n";

/// The settings a fresh registry (an operator just restarted) puts in force for `mode`, given the
/// live tuning file `live`: `(pool max, generation)`.
fn after_restart(mode: TuningMode, live: &str) -> (u32, u64) {
    let mut spec = PerformanceStackSpec::default();
    spec.tuning.mode = mode;
    let request = TuningRequest {
        live_file: Some(live),
        ..request(&spec, Instant::now())
    };
    let s = TuningRegistry::new().tune(KEY, request).settings;
    (s.pool_max, s.generation)
}

#[test]
fn a_restarted_operator_picks_up_the_pool_in_force_from_the_live_file() {
    // Auto takes it as the tuner's own; Recommend moves to the spec's pool, but as a pool swap:
    // not before the ceiling leaves room for both pools on every pod.
    assert_eq!(after_restart(TuningMode::Auto, LIVE), (15, 7));
    assert_eq!(
        after_restart(TuningMode::Recommend, LIVE),
        (15, 7),
        "the spec's pool (10) only once there is room for both pools on every pod"
    );
    assert_eq!(
        after_restart(TuningMode::Auto, "generation: [broken"),
        (10, 3),
        "an unreadable file leaves the spec's values"
    );
}

#[test]
fn a_restarted_operator_keeps_the_floor_the_status_recorded() {
    let spec = PerformanceStackSpec::default();
    // Before the restart the tuner had raised the floor from the spec's 2 to 6 during a spike.
    let recorded = testing::settings((2, 15), (6, 10), 7);
    let request = TuningRequest {
        live_file: Some(LIVE),
        recorded: Some(recorded),
        ..request(&spec, Instant::now())
    };
    let s = TuningRegistry::new().tune(KEY, request).settings;
    assert_eq!(
        (s.pool_max, s.hpa_min, s.generation),
        (15, 6, 7),
        "the floor is not lowered by a restart"
    );
}

#[test]
fn an_interval_runs_only_with_the_pods_answers_and_a_failed_listing_waits_an_interval() {
    let spec = PerformanceStackSpec::default();
    let registry = TuningRegistry::new();
    let t0 = Instant::now();
    assert!(registry.wants_metrics(KEY, &spec, t0));
    let idle = registry.tune(KEY, request(&spec, t0));
    assert!(matches!(idle.run, IntervalRun::Idle), "{:?}", idle.run);
    let scraped = Scraped::default();
    let first = registry.tune(
        KEY,
        TuningRequest {
            app_metrics: Some(Ok(&scraped)),
            ..request(&spec, t0)
        },
    );
    assert!(matches!(first.run, IntervalRun::Baseline), "{:?}", first.run);
    assert!(!registry.wants_metrics(KEY, &spec, t0 + Duration::from_secs(59)));
    let later = t0 + Duration::from_secs(60);
    assert!(registry.wants_metrics(KEY, &spec, later));
    let error = TunerError::ListPods("forbidden".into());
    let failed = registry.tune(
        KEY,
        TuningRequest {
            app_metrics: Some(Err(&error)),
            ..request(&spec, later)
        },
    );
    assert!(
        matches!(&failed.run, IntervalRun::Failed(m) if m.contains("forbidden")),
        "{:?}",
        failed.run
    );
    assert!(
        !registry.wants_metrics(KEY, &spec, later + Duration::from_secs(1)),
        "a failed interval counts as one"
    );
    let mut off = PerformanceStackSpec::default();
    off.tuning.mode = TuningMode::Off;
    assert!(!registry.wants_metrics(KEY, &off, later + Duration::from_secs(600)));
}
