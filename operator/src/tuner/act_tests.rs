use std::time::Duration;

use chrono::TimeZone;

use super::*;
use crate::tuner::budget::ConnectionBudget;
use crate::tuner::decide::decide;
use crate::tuner::history::History;
use crate::tuner::observe::{PodCounts, PoolObservation};
use crate::tuner::spec::{PoolBounds, ReplicaBounds, TuningSpec};

fn spec() -> TuningSpec {
    TuningSpec::new(
        PoolBounds { min: 2, max: 40 },
        ReplicaBounds { min: 1, max: 10 },
        ConnectionBudget {
            max_connections: 200,
            reserved: 10,
            source: Default::default(),
        },
    )
}

fn busy() -> Observation {
    Observation {
        seconds: 30.0,
        pods: PodCounts {
            asked: 2,
            answered: 2,
            ..PodCounts::default()
        },
        p95: Some(0.3),
        p99: Some(0.45),
        requests_per_second: 200.0,
        error_rate: 0.0,
        pool: PoolObservation {
            in_use: 38.0,
            max: 38.0,
            peak_in_use_per_pod: 19.0,
            waiting: 12.0,
            acquire_p95: Some(0.05),
            ..PoolObservation::default()
        },
        generation_lowest: 1,
        generation_highest: 1,
        server: None,
    }
}

fn decision() -> Decision {
    let before = Settings {
        pool_min: 2,
        pool_max: 19,
        hpa_min: 2,
        hpa_max: 10,
        generation: 1,
    };
    decide(
        &before,
        &History::default(),
        &busy(),
        &spec(),
        Duration::from_secs(60),
    )
}

#[test]
fn auto_writes_the_file_and_the_hpa_with_one_event() {
    let act = plan(Mode::Auto, &decision(), PoolTuning::default());
    assert!(act.applied);
    let file = act.tuning_file.unwrap();
    assert_eq!(
        (
            file.generation,
            file.pool.min_connections,
            file.pool.max_connections
        ),
        (2, 2, 38)
    );
    assert_eq!(file.pool.acquire_timeout_ms, 3000, "timeouts kept");
    assert_eq!(act.hpa, Some(HpaBounds { min: 3, max: 5 }));
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
    let act = plan(Mode::Recommend, &d, PoolTuning::default());
    assert!(!act.applied && act.tuning_file.is_none() && act.hpa.is_none());
    assert_eq!(act.events[0].reason, "TuningRecommended");
    let status = TuningStatus::after(
        &d,
        &act,
        &busy(),
        Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
    );
    assert_eq!(
        status.in_force.as_ref().map(|s| s.pool_max),
        Some(19),
        "settings in force unchanged"
    );
    let record = status.last_decision.as_ref().unwrap();
    assert_eq!(
        (record.settings.pool_max, record.applied, record.time.as_str()),
        (38, false, "2026-01-02T03:04:05Z")
    );
    assert_eq!(plan(Mode::Off, &d, PoolTuning::default()), ActPlan::default());
}

#[test]
fn a_decision_that_changes_nothing_writes_nothing() {
    let mut d = decision();
    d.settings = d.before;
    assert_eq!(plan(Mode::Auto, &d, PoolTuning::default()), ActPlan::default());
}

#[test]
fn status_is_camel_case_and_rounded() {
    let d = decision();
    let act = plan(Mode::Auto, &d, PoolTuning::default());
    let status = TuningStatus::after(
        &d,
        &act,
        &busy(),
        Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
    );
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["inForce"]["poolMax"], 38);
    assert_eq!(json["inForce"]["minReplicas"], 3);
    assert_eq!(json["lastObservation"]["p95Ms"], 300);
    assert_eq!(json["lastObservation"]["poolUtilisationPercent"], 100);
    assert_eq!(json["lastObservation"]["waiting"], 12);
    assert_eq!(json["lastDecision"]["applied"], true);
}

#[test]
fn budget_condition_is_false_with_numbers_when_pool_min_does_not_fit() {
    let b = ConnectionBudget {
        max_connections: 100,
        reserved: 10,
        source: Default::default(),
    };
    let (status, reason, message) =
        budget_condition(&b.plan(ReplicaBounds { min: 2, max: 20 }, PoolBounds { min: 5, max: 20 }));
    assert_eq!((status, reason), ("False", "ReplicasCapped"));
    assert!(
        message.contains("20 x pool min 5 + reserved 10 = 110 > max_connections 100"),
        "{message}"
    );
    let (status, reason, _) =
        budget_condition(&b.plan(ReplicaBounds { min: 1, max: 4 }, PoolBounds { min: 2, max: 20 }));
    assert_eq!((status, reason), ("True", "Fits"));
}
