//! Phase and condition rules of [`super::compute`].
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, StatefulSet, StatefulSetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::crd::PerformanceStackSpec;

fn at(second: i64) -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000 + second).unwrap())
}

fn stack() -> PerformanceStack {
    let mut stack = PerformanceStack::new("shop", PerformanceStackSpec::default());
    stack.metadata.namespace = Some("ns".into());
    stack.metadata.uid = Some("uid".into());
    stack.metadata.generation = Some(2);
    stack
}

fn deployment(ready: i32) -> Deployment {
    Deployment {
        status: Some(DeploymentStatus {
            replicas: Some(2),
            ready_replicas: Some(ready),
            updated_replicas: Some(2),
            ..DeploymentStatus::default()
        }),
        ..Deployment::default()
    }
}

fn applied(ready: bool, migration: MigrationState) -> Applied {
    let n = i32::from(ready);
    Applied {
        postgres: Some(StatefulSet {
            status: Some(StatefulSetStatus {
                ready_replicas: Some(n),
                ..StatefulSetStatus::default()
            }),
            ..StatefulSet::default()
        }),
        redis: Some(deployment(n)),
        migration: Some(migration),
        api: Some(deployment(2 * n)),
        autoscaling: AutoscalingApi::V2beta2,
        ..Applied::default()
    }
}

fn succeeded() -> MigrationState {
    MigrationState::Succeeded {
        job: "shop-migrate-1".into(),
        summary: Some("{\"migrationsApplied\":1}".into()),
    }
}

fn condition<'a>(status: &'a StackStatus, type_: &str) -> &'a Condition {
    status.conditions.iter().find(|c| c.type_ == type_).unwrap()
}

#[test]
fn everything_ready_makes_the_stack_ready() {
    let stack = stack();
    let status = compute(&stack, &validate(&stack), &applied(true, succeeded()), &at(0));
    assert_eq!(status.phase, Some(Phase::Ready));
    assert_eq!(condition(&status, READY).status, "True");
    assert_eq!(
        condition(&status, MIGRATIONS_APPLIED).message,
        "Job shop-migrate-1 succeeded: {\"migrationsApplied\":1}"
    );
    assert_eq!(condition(&status, AUTOSCALING).reason, "AutoscalingV2NotServed");
    assert_eq!(status.observed_generation, Some(2));
    assert_eq!(status.replicas, Some(2));
    assert_eq!(status.pool.as_deref(), Some("2-20"));
}

#[test]
fn last_transition_time_moves_only_when_the_status_changes() {
    let mut stack = stack();
    let v = validate(&stack);
    stack.status = Some(compute(&stack, &v, &applied(true, succeeded()), &at(0)));
    let same = compute(&stack, &v, &applied(true, succeeded()), &at(60));
    assert_eq!(
        same,
        stack.status.clone().unwrap(),
        "an unchanged stack yields an identical status"
    );
    let down = compute(&stack, &v, &applied(false, succeeded()), &at(120));
    assert_eq!(condition(&down, READY).last_transition_time, at(120));
    assert_eq!(condition(&down, AUTOSCALING).last_transition_time, at(0));
}

#[test]
fn losing_readiness_after_ready_is_degraded_and_a_failed_migration_is_failed() {
    let mut stack = stack();
    let v = validate(&stack);
    stack.status = Some(compute(&stack, &v, &applied(true, succeeded()), &at(0)));
    let degraded = compute(&stack, &v, &applied(false, succeeded()), &at(1));
    assert_eq!(degraded.phase, Some(Phase::Degraded));
    assert_eq!(degraded.reason.as_deref(), Some("PostgresNotReady"));
    let failed = MigrationState::Failed {
        job: "shop-migrate-2".into(),
        message: Some("relation exists".into()),
    };
    let failed = compute(&stack, &v, &applied(true, failed), &at(2));
    assert_eq!(failed.phase, Some(Phase::Failed));
    assert!(condition(&failed, READY).message.contains("relation exists"));
    let upgrading = compute(
        &stack,
        &v,
        &applied(true, MigrationState::Running { job: "j".into() }),
        &at(3),
    );
    assert_eq!(upgrading.phase, Some(Phase::Provisioning));
}

#[test]
fn invalid_spec_keeps_other_conditions_and_names_the_field() {
    let mut stack = stack();
    let v = validate(&stack);
    stack.status = Some(compute(&stack, &v, &applied(true, succeeded()), &at(0)));
    let error = InvalidSpec {
        field: "spec.pool.maxConnections".into(),
        message: "0 is outside 1..=500".into(),
    };
    let status = invalid(&stack, &error, &at(5));
    assert_eq!(status.phase, Some(Phase::Failed));
    assert_eq!(condition(&status, READY).reason, "InvalidSpec");
    assert!(
        condition(&status, READY)
            .message
            .contains("spec.pool.maxConnections")
    );
    assert_eq!(
        condition(&status, APP_READY).status,
        "True",
        "children's conditions are left as they were"
    );
}

fn validate(stack: &PerformanceStack) -> ValidatedStack {
    crate::controller::validate::validate(stack).unwrap()
}

#[test]
fn external_secrets_are_reported_by_what_is_missing() {
    let stack = stack();
    let v = validate(&stack);
    let mut external = applied(true, succeeded());
    external.postgres = None;
    external.redis = None;
    external.external_database_secret = Some(ExternalSecret::MissingKey);
    external.external_cache_secret = Some(ExternalSecret::Missing);
    let status = compute(&stack, &v, &external, &at(0));
    assert_eq!(condition(&status, DATABASE_READY).reason, "SecretKeyNotFound");
    assert_eq!(condition(&status, CACHE_READY).reason, "SecretNotFound");
    assert!(
        condition(&status, CACHE_READY)
            .message
            .contains("spec.cache.external.secretRef")
    );
    assert_eq!(condition(&status, READY).reason, "SecretKeyNotFound");
    external.external_database_secret = Some(ExternalSecret::Ready);
    external.external_cache_secret = Some(ExternalSecret::Ready);
    let status = compute(&stack, &v, &external, &at(0));
    assert_eq!(status.phase, Some(Phase::Ready));
}

#[test]
fn a_refused_apply_shows_in_ready_and_degrades_only_a_ready_stack() {
    let mut stack = stack();
    let first = reconcile_failed(
        &stack,
        "ApplyFailed",
        "applying Service shop-api: quota".into(),
        &at(1),
    );
    assert_eq!(
        first.phase,
        Some(Phase::Provisioning),
        "a new stack is still provisioning"
    );
    assert_eq!(condition(&first, READY).reason, "ApplyFailed");
    assert_eq!(condition(&first, READY).status, "False");
    assert_eq!(first.observed_generation, Some(2));

    let v = validate(&stack);
    stack.status = Some(compute(&stack, &v, &applied(true, succeeded()), &at(0)));
    assert_eq!(stack.status.as_ref().unwrap().phase, Some(Phase::Ready));
    let degraded = reconcile_failed(
        &stack,
        "ApplyFailed",
        "applying Service shop-api: quota".into(),
        &at(5),
    );
    assert_eq!(degraded.phase, Some(Phase::Degraded));
    assert_eq!(degraded.reason.as_deref(), Some("ApplyFailed"));
    assert_eq!(condition(&degraded, READY).last_transition_time, at(5));
    assert_eq!(
        condition(&degraded, APP_READY).status,
        "True",
        "other conditions stay as they were"
    );

    stack.status = Some(degraded.clone());
    let again = reconcile_failed(
        &stack,
        "ApplyFailed",
        "applying Service shop-api: quota".into(),
        &at(9),
    );
    assert_eq!(
        again, degraded,
        "the same failure again changes nothing (no status write)"
    );
}
