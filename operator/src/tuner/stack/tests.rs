use chrono::Utc;

use super::*;
use crate::tuner::exposition::parse;
use crate::tuner::testing::{self, PodMetrics};

fn spec() -> TuningSpec {
    testing::spec((2, 40), (1, 4), 200)
}

const IN_FORCE: Settings = Settings {
    pool_min: 2,
    pool_max: 10,
    hpa_min: 1,
    hpa_max: 4,
    generation: 0,
};

/// One Ready pod's answer, and one pod that did not answer.
fn answers(metrics: &PodMetrics) -> Vec<PodAnswer> {
    let snapshot = PodSnapshot::from_samples(&parse(&metrics.render()).unwrap());
    vec![
        ("api-0".into(), Ok(snapshot)),
        ("api-1".into(), Err("connection refused".into())),
    ]
}

/// Two intervals 30 s apart: an idle pool, then 100 rps with 6 tasks waiting for a full pool of 10.
fn two_ticks(mode: Mode) -> (Option<Tick>, Option<Tick>, StackTuner) {
    let mut stack = StackTuner::new(spec(), IN_FORCE);
    let wall = Utc::now();
    let idle = PodMetrics {
        pool_max: 10,
        ..PodMetrics::default()
    };
    let first = stack.tick(&answers(&idle), mode, Duration::from_secs(0), wall);
    let busy = PodMetrics {
        ok: 3000,
        latency: vec![(0.05, 2900), (0.1, 3000)],
        in_use: 10,
        pool_max: 10,
        waiting: 6,
        acquire: vec![(0.001, 0), (0.05, 3000)],
        server_max_connections: 300,
        server_reserved_connections: 3,
        ..PodMetrics::default()
    };
    let second = stack.tick(&answers(&busy), mode, Duration::from_secs(30), wall);
    (first, second, stack)
}

#[test]
fn auto_tick_observes_the_answers_and_puts_the_pool_growth_in_force() {
    let (first, second, stack) = two_ticks(Mode::Auto);
    assert!(first.is_none(), "the first interval only takes the baseline");
    let tick = second.unwrap();
    assert_eq!(
        (tick.observation.pods.asked, tick.observation.pods.answered),
        (2, 1)
    );
    assert_eq!(tick.observation.pods.unanswered, ["api-1"]);
    assert!((tick.observation.requests_per_second - 100.0).abs() < 1e-9);
    assert_eq!(
        tick.observation.server,
        Some(crate::tuner::ServerLimits {
            max_connections: 300,
            reserved: 3
        }),
        "the server's limits as the pod reports them"
    );
    assert!(tick.act.applied, "pool grows: 6 waiting");
    let s = tick.decision.settings;
    assert_eq!((s.generation, s.pool_max), (1, 20));
    assert_eq!(stack.tuner.settings.pool_max, 20);
    assert_eq!(tick.report.in_force.pool_max, 20);
    assert_eq!(tick.act.events[0].reason, "PoolResized");
}

#[test]
fn recommend_tick_keeps_the_settings_in_force() {
    let (_, second, stack) = two_ticks(Mode::Recommend);
    let tick = second.unwrap();
    assert!(!tick.act.applied);
    assert_eq!(tick.decision.settings.pool_max, 20);
    assert_eq!(stack.tuner.settings, IN_FORCE);
    assert_eq!(tick.act.events[0].reason, "TuningRecommended");
}

#[test]
fn mode_off_forgets_the_baseline() {
    let mut stack = StackTuner::new(spec(), IN_FORCE);
    let metrics = PodMetrics::default();
    let wall = Utc::now();
    assert!(
        stack
            .tick(&answers(&metrics), Mode::Auto, Duration::ZERO, wall)
            .is_none()
    );
    assert!(
        stack
            .tick(&answers(&metrics), Mode::Off, Duration::from_secs(30), wall)
            .is_none()
    );
    assert!(
        stack
            .tick(&answers(&metrics), Mode::Auto, Duration::from_secs(60), wall)
            .is_none(),
        "after Off the next interval is a baseline again"
    );
}
