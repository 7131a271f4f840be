use std::time::Duration;

use chrono::TimeZone;
use perfstack_contract::tuning::PoolSettings;

use super::*;
use crate::tuner::decide::decide;
use crate::tuner::history::History;
use crate::tuner::testing;

/// Two pods at p95 300 ms, each pool of 19 full with 6 tasks waiting, on generation 1.
fn busy() -> Observation {
    testing::observation(2, 300.0, 200.0, 19.0, 6.0, 1)
}

fn decision() -> Decision {
    decide(
        &testing::settings((2, 19), (2, 10), 1),
        &History::default(),
        &busy(),
        &testing::spec((2, 40), (1, 10), 200),
        Duration::from_secs(60),
    )
}

#[test]
fn auto_puts_the_pool_and_the_hpa_in_force_with_one_event() {
    let d = decision();
    let act = plan(Mode::Auto, &d);
    assert!(act.applied);
    let s = d.settings;
    assert_eq!((s.generation, s.pool_min, s.pool_max), (2, 2, 38));
    let file = s.tuning_file(&PoolSettings::default());
    assert_eq!(
        (file.generation, file.pool.max_connections),
        (2, 38),
        "the file carries the decision"
    );
    assert_eq!(file.pool.acquire_timeout_ms, 3000, "timeouts kept");
    assert_eq!((s.hpa_min, s.hpa_max), (3, 5));
    assert_eq!(act.events.len(), 1);
    assert_eq!(act.events[0].reason, "PoolResized");
    assert!(
        act.events[0]
            .note
            .starts_with("pool 2..19 -> 2..38 (generation 2), HPA 2..10 -> 3..5: p95 300 ms"),
        "{}",
        act.events[0].note
    );
}

#[test]
fn recommend_reports_without_writing_and_off_does_nothing() {
    let d = decision();
    let act = plan(Mode::Recommend, &d);
    assert!(!act.applied);
    assert_eq!(act.events[0].reason, "TuningRecommended");
    let time = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    let report = TuningReport::after(&d, &act, &busy(), time);
    assert_eq!(report.in_force.pool_max, 19, "settings in force unchanged");
    let record = &report.last_decision;
    assert_eq!(
        (record.settings.pool_max, record.applied, record.time),
        (38, false, time)
    );
    assert_eq!(plan(Mode::Off, &d), ActPlan::default());
}

#[test]
fn a_decision_that_changes_nothing_writes_nothing() {
    let mut d = decision();
    d.settings = d.before;
    assert_eq!(plan(Mode::Auto, &d), ActPlan::default());
}
