use super::*;
use crate::controller::observe::ObservedMigration;
use crate::crd::{MigrationStatus, PerformanceStack, PerformanceStackSpec};

fn migration(state: MigrationState) -> ObservedMigration {
    ObservedMigration {
        status: MigrationStatus {
            job: "shop-migrate-1".into(),
            image: "app:2".into(),
            state,
            summary: None,
            error: None,
        },
        superseded: Vec::new(),
    }
}

#[test]
fn a_new_image_waits_for_its_migration() {
    let running = || Some("app:1".to_owned());
    let succeeded = migration(MigrationState::Succeeded);
    assert_eq!(
        rollout_image(Some(&succeeded), "app:2", running()).as_deref(),
        Some("app:2")
    );
    assert_eq!(rollout_image(None, "app:2", running()).as_deref(), Some("app:2"));
    for pending in [
        MigrationState::WaitingForDatabase,
        MigrationState::Running,
        MigrationState::Failed,
    ] {
        let pending = migration(pending);
        assert_eq!(
            rollout_image(Some(&pending), "app:2", running()).as_deref(),
            Some("app:1")
        );
        assert_eq!(
            rollout_image(Some(&pending), "app:2", None),
            None,
            "no Deployment before the first migration"
        );
    }
}

#[test]
fn replicas_are_left_to_the_autoscaler_when_there_is_one() {
    assert_eq!(api_replicas(AutoscalingApi::V2, 3), None);
    assert_eq!(api_replicas(AutoscalingApi::V2beta2, 3), None);
    assert_eq!(api_replicas(AutoscalingApi::Unavailable, 3), Some(3));
}

fn validated() -> ValidatedStack {
    let mut stack = PerformanceStack::new("shop", PerformanceStackSpec::default());
    stack.metadata.namespace = Some("ns".into());
    stack.metadata.uid = Some("uid".into());
    stack.metadata.generation = Some(3);
    crate::controller::validate::validate(&stack).unwrap()
}

fn decision(pool_max: u32, hpa_max: u32) -> TuningDecision {
    TuningDecision {
        settings: Settings {
            pool_min: 2,
            pool_max,
            hpa_min: 2,
            hpa_max,
            generation: 7,
        },
        budget: None,
        events: Vec::new(),
        status: None,
        requeue: None,
    }
}

#[test]
fn the_decided_settings_reach_the_tuning_file_and_the_hpa_once_each() {
    let stack = validated();
    let observed = Observed::default();
    let desired = build(&stack, &decision(15, 6), &observed).unwrap();
    let text = &desired.tuning_config.data.as_ref().unwrap()["tuning.yaml"];
    let file = TuningFile::parse(text).unwrap();
    assert_eq!(file, tuning_file(&stack, &decision(15, 6).settings));
    assert_eq!(
        (
            file.generation,
            file.pool.min_connections,
            file.pool.max_connections
        ),
        (7, 2, 15)
    );
    assert_eq!(
        (file.pool.acquire_timeout_ms, file.pool.idle_timeout_seconds),
        (3000, 600),
        "spec.pool's timeouts kept"
    );
    let env = desired.app_config.data.as_ref().unwrap();
    assert_eq!(
        (env["DB_POOL_MIN"].as_str(), env["DB_POOL_MAX"].as_str()),
        ("2", "15"),
        "a starting pod builds the pool in force, not spec.pool's (no pool it replaces at once)"
    );
    let Some(Autoscaler::V2(hpa)) = &desired.hpa else {
        panic!("autoscaling/v2 HPA expected")
    };
    let spec = hpa.spec.as_ref().unwrap();
    assert_eq!((spec.min_replicas, spec.max_replicas), (Some(2), 6));
    assert!(
        desired.api.is_some(),
        "migrations off in the observation: the API runs the desired image"
    );
    for digest in [
        desired.tuning_config.annotations().get(APPLIED_DIGEST_ANNOTATION),
        hpa.as_ref().annotations().get(APPLIED_DIGEST_ANNOTATION),
    ] {
        assert_eq!(digest.map(String::len), Some(16), "{digest:?}");
    }
    let other = build(&stack, &decision(16, 6), &observed).unwrap();
    assert_ne!(
        other.tuning_config.annotations().get(APPLIED_DIGEST_ANNOTATION),
        desired.tuning_config.annotations().get(APPLIED_DIGEST_ANNOTATION),
        "another pool is another digest, so apply writes it"
    );
}

#[test]
fn no_autoscaling_api_means_no_hpa_and_fixed_replicas() {
    let stack = validated();
    let observed = Observed {
        autoscaling: AutoscalingApi::Unavailable,
        ..Observed::default()
    };
    let desired = build(&stack, &decision(19, 10), &observed).unwrap();
    assert!(desired.hpa.is_none());
    let replicas = desired.api.and_then(|d| d.spec).and_then(|s| s.replicas);
    assert_eq!(replicas, Some(2), "spec.app.minReplicas");
}
