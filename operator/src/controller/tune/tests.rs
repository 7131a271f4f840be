use std::collections::BTreeMap;

use chrono::TimeZone;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::controller::apply::Applied;
use crate::controller::build::{replica_range, tuning_file};
use crate::controller::status::{compute, conditions::CONNECTION_BUDGET};
use crate::crd::{PerformanceStack, PerformanceStackSpec, StackStatus};
use crate::tuner::ServerLimits;
use crate::tuner::observe::PoolObservation;

fn stack(spec: PerformanceStackSpec) -> (PerformanceStack, ValidatedStack) {
    let mut stack = PerformanceStack::new("shop", spec);
    stack.metadata.namespace = Some("ns".into());
    stack.metadata.uid = Some("uid".into());
    stack.metadata.generation = Some(3);
    let validated = crate::controller::validate::validate(&stack).unwrap();
    (stack, validated)
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap())
}

/// The status the decision leads to (children as observed: none).
fn status_after(
    stack: &PerformanceStack,
    validated: &ValidatedStack,
    decision: &TuningDecision,
) -> StackStatus {
    compute(
        stack,
        validated,
        &Observed::default(),
        &Applied::default(),
        decision,
        &now(),
    )
}

fn budget(status: &StackStatus) -> (String, String, String) {
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == CONNECTION_BUDGET)
        .unwrap();
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

fn live_tuning(text: &str) -> ConfigMap {
    ConfigMap {
        data: Some(BTreeMap::from([("tuning.yaml".to_owned(), text.to_owned())])),
        ..ConfigMap::default()
    }
}

#[test]
fn a_restarted_operator_picks_up_the_tuned_pool_from_the_live_config_map() {
    let (_, validated) = stack(PerformanceStackSpec::default());
    let registry = TuningRegistry::new();
    let observed = Observed {
        tuning_config: Some(live_tuning(
            "generation: 7\npool:\n  minConnections: 2\n  maxConnections: 15\n  acquireTimeoutMs: 3000\n  idleTimeoutSeconds: 600\n",
        )),
        ..Observed::default()
    };
    let decision = tune(Some(&registry), &validated, &observed);
    let s = decision.settings;
    assert_eq!((s.pool_max, s.generation), (15, 7));
    assert_eq!(tuning_file(&validated, &s).pool.max_connections, 15);
}

#[test]
fn a_restarted_operator_keeps_the_hpa_bounds_its_status_recorded() {
    let (_, validated) = stack(PerformanceStackSpec::default());
    let recorded = TuningStatus {
        in_force: Some(TunedSettings {
            pool_min: 2,
            pool_max: 15,
            min_replicas: 6,
            max_replicas: 10,
            generation: 7,
        }),
        ..TuningStatus::default()
    };
    let observed = Observed {
        tuning_config: Some(live_tuning(
            "generation: 7\npool:\n  minConnections: 2\n  maxConnections: 15\n  acquireTimeoutMs: 3000\n  idleTimeoutSeconds: 600\n",
        )),
        recorded: StackStatus {
            tuning: Some(recorded),
            ..StackStatus::default()
        },
        ..Observed::default()
    };
    let decision = tune(Some(&TuningRegistry::new()), &validated, &observed);
    let replicas = replica_range(&decision.settings);
    assert_eq!(
        (replicas.min, decision.settings.pool_max),
        (6, 15),
        "the floor raised before the restart stays (the spec says 2)"
    );
}

#[test]
fn without_a_tuner_the_spec_is_written_as_it_is() {
    let (stack, validated) = stack(PerformanceStackSpec::default());
    let decision = tune(None, &validated, &Observed::default());
    let file = tuning_file(&validated, &decision.settings);
    assert_eq!((file.generation, file.pool.max_connections), (3, 10));
    assert_eq!(replica_range(&decision.settings).max, 10);
    assert_eq!((decision.budget, decision.requeue), (None, None));
    let status = status_after(&stack, &validated, &decision);
    assert!(
        status.conditions.iter().all(|c| c.type_ != CONNECTION_BUDGET),
        "no tuner, no budget condition"
    );
}

/// Replicas 2..=`max_replicas`, the pool `pool`, a bundled server of `max_connections` of which 10
/// are reserved.
fn budget_spec(max_replicas: i32, pool: (i32, i32), max_connections: i32) -> PerformanceStackSpec {
    let mut spec = PerformanceStackSpec::default();
    spec.app.min_replicas = 2;
    spec.app.max_replicas = max_replicas;
    (spec.pool.min_connections, spec.pool.max_connections) = pool;
    spec.database.bundled.max_connections = max_connections;
    spec.database.reserved_connections = 10;
    spec
}

#[test]
fn builders_write_the_budgeted_pool_and_replicas() {
    // 10 replicas (+9 in transit) x 20 + 10 reserved = 390 > 200: the pool yields first, to 190 / 19.
    let (stack, validated) = stack(budget_spec(10, (2, 20), 200));
    let registry = TuningRegistry::new();
    let decision = tune(Some(&registry), &validated, &Observed::default());
    let file = tuning_file(&validated, &decision.settings);
    assert_eq!((file.generation, file.pool.max_connections), (3, 10));
    let replicas = replica_range(&decision.settings);
    assert_eq!((replicas.min, replicas.max), (2, 10));
    assert_eq!(decision.requeue, Some(Duration::from_secs(60)));
    let (status, reason, _) = budget(&status_after(&stack, &validated, &decision));
    assert_eq!((status.as_str(), reason.as_str()), ("True", "PoolCapped"));
}

#[test]
fn a_spec_that_cannot_fit_lowers_max_replicas_and_says_so() {
    let (stack, validated) = stack(budget_spec(40, (5, 20), 110));
    let registry = TuningRegistry::new();
    let decision = tune(Some(&registry), &validated, &Observed::default());
    assert_eq!(
        replica_range(&decision.settings).max,
        11,
        "100 available / pool min 5 = 20 pods: 11 replicas and 9 in transit"
    );
    assert_eq!(
        tuning_file(&validated, &decision.settings).pool.max_connections,
        5
    );
    let (status, reason, message) = budget(&status_after(&stack, &validated, &decision));
    assert_eq!((status.as_str(), reason.as_str()), ("False", "ReplicasCapped"));
    assert!(
        message.contains(
            "maxReplicas 40 (+30 in transit) x pool min 5 + reserved 10 = 360 > max_connections 110"
        ),
        "{message}"
    );
}

#[test]
fn an_external_database_is_budgeted_with_the_reported_max_connections_once_known() {
    use crate::crd::{DatabaseMode, ExternalSpec};
    let mut spec = budget_spec(10, (2, 30), 200);
    spec.database.mode = DatabaseMode::External;
    spec.database.external = Some(ExternalSpec::secret("shop-db", None));
    let (stack, validated) = stack(spec);
    let registry = TuningRegistry::new();
    // Before any pod reported: the fallback (100), and the message says it is assumed: 90 / 19.
    let decision = tune(Some(&registry), &validated, &Observed::default());
    assert_eq!(
        tuning_file(&validated, &decision.settings).pool.max_connections,
        4
    );
    let (_, _, message) = budget(&status_after(&stack, &validated, &decision));
    assert!(message.contains("max_connections 100 assumed"), "{message}");
    // The pods reported max_connections = 600: the spec's pool fits (19 pods x 30 + 10 = 580). It
    // reaches the pods once there is room for both pools on each (the ceiling comes down first).
    registry.record_server_limits(
        "ns/shop",
        ServerLimits {
            max_connections: 600,
            reserved: 3,
        },
    );
    let mut decision = tune(Some(&registry), &validated, &Observed::default());
    for _ in 0..2 {
        decision = tune(Some(&registry), &validated, &pods_seen(2));
    }
    assert_eq!(
        tuning_file(&validated, &decision.settings).pool.max_connections,
        30
    );
    let (_, _, message) = budget(&status_after(&stack, &validated, &decision));
    assert!(
        message.contains("= 580 <= max_connections 600")
            && message.contains("on the external server: the lowest any app pod reported"),
        "{message}"
    );
}

/// What observe found when it scraped `alive` API pods, none of them Ready yet (no interval runs
/// on them, but the pool swaps see how many pods are alive).
fn pods_seen(alive: u32) -> Observed {
    Observed {
        app_metrics: Some(Ok(crate::tuner::targets::Scraped {
            answers: Vec::new(),
            alive,
        })),
        ..Observed::default()
    }
}

#[test]
fn status_tuning_is_camel_case_and_rounded() {
    let settings = |pool_max, hpa_min, hpa_max| Settings {
        pool_min: 2,
        pool_max,
        hpa_min,
        hpa_max,
        generation: 2,
    };
    let busy = crate::tuner::testing::observation(2, 300.0, 200.04, 19.0, 6.1, 1);
    let observation = Observation {
        p99: Some(0.4499),
        pool: PoolObservation {
            max: 38.0,
            ..busy.pool
        },
        ..busy
    };
    let report = TuningReport {
        in_force: settings(38, 3, 5),
        last_decision: crate::tuner::act::DecisionRecord {
            time: chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
            settings: settings(38, 3, 5),
            applied: true,
            reason: "p95 300 ms > SLO 200 ms".into(),
        },
        last_observation: observation,
    };
    let json = serde_json::to_value(tuning_status(&report)).unwrap();
    assert_eq!(json["inForce"]["poolMax"], 38);
    assert_eq!(json["inForce"]["minReplicas"], 3);
    assert_eq!(json["lastObservation"]["p95Ms"], 300);
    assert_eq!(json["lastObservation"]["p99Ms"], 450);
    assert_eq!(json["lastObservation"]["requestsPerSecond"], 200.0);
    assert_eq!(json["lastObservation"]["poolUtilisationPercent"], 100);
    assert_eq!(json["lastObservation"]["waiting"], 12);
    assert_eq!(json["lastDecision"]["applied"], true);
    assert_eq!(json["lastDecision"]["time"], "2026-01-02T03:04:05Z");
}
