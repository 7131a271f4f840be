//! Phase and condition rules of [`super::compute`].
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, StatefulSet, StatefulSetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use perfstack_contract::migration::MigrationSummary;

use super::conditions::{APP_READY, AUTOSCALING, CACHE_READY, DATABASE_READY, MIGRATIONS_APPLIED};
use super::*;
use crate::controller::context::AutoscalingApi;
use crate::controller::observe::ExternalSecret;
use crate::crd::{MigrationState, MigrationStatus, PerformanceStackSpec};
use crate::tuner::from_crd;

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

/// What a reconcile observed and left live.
struct Children {
    observed: Observed,
    applied: Applied,
}

/// Every child ready (or none), on a cluster serving only autoscaling/v2beta2.
fn children(ready: bool, migration: MigrationStatus) -> Children {
    let n = i32::from(ready);
    Children {
        observed: Observed {
            autoscaling: AutoscalingApi::V2beta2,
            ..Observed::default()
        },
        applied: Applied {
            postgres: Some(StatefulSet {
                status: Some(StatefulSetStatus {
                    ready_replicas: Some(n),
                    ..StatefulSetStatus::default()
                }),
                ..StatefulSet::default()
            }),
            redis: Some(StatefulSet {
                status: Some(StatefulSetStatus {
                    ready_replicas: Some(n),
                    ..StatefulSetStatus::default()
                }),
                ..StatefulSet::default()
            }),
            migration: Some(migration),
            api: Some(deployment(2 * n)),
            ..Applied::default()
        },
    }
}

fn migration(job: &str, state: MigrationState) -> MigrationStatus {
    MigrationStatus {
        job: job.into(),
        image: "ghcr.io/perfstack/perfstack-app:1".into(),
        state,
        summary: None,
        error: None,
    }
}

fn succeeded() -> MigrationStatus {
    MigrationStatus {
        summary: Some(MigrationSummary {
            migrations_applied: 1,
            ..MigrationSummary::default()
        }),
        ..migration("shop-migrate-1", MigrationState::Succeeded)
    }
}

/// The status of `stack` with `children`, at `second`, without a tuner.
fn status_of(stack: &PerformanceStack, children: &Children, second: i64) -> StackStatus {
    let validated = validate(stack);
    let decision = TuningDecision {
        settings: from_crd::spec_settings(&validated.spec, validated.generation),
        budget: None,
        events: Vec::new(),
        status: None,
        requeue: None,
    };
    compute(
        stack,
        &validated,
        &children.observed,
        &children.applied,
        &decision,
        &at(second),
    )
}

fn condition<'a>(status: &'a StackStatus, type_: &str) -> &'a Condition {
    status.conditions.iter().find(|c| c.type_ == type_).unwrap()
}

#[test]
fn everything_ready_makes_the_stack_ready() {
    let stack = stack();
    let status = status_of(&stack, &children(true, succeeded()), 0);
    assert_eq!(status.phase, Some(Phase::Ready));
    assert_eq!(condition(&status, READY).status, "True");
    assert_eq!(
        condition(&status, MIGRATIONS_APPLIED).message,
        "Job shop-migrate-1 succeeded: {\"migrationsApplied\":1,\"indexesCreated\":[],\"indexesRepaired\":[],\"indexesValid\":[]}"
    );
    assert_eq!(
        status.migration,
        Some(succeeded()),
        "the migration as a typed field, never parsed back from the message"
    );
    assert_eq!(condition(&status, AUTOSCALING).reason, "AutoscalingV2NotServed");
    assert_eq!(status.observed_generation, Some(2));
    assert_eq!(status.replicas, Some(2));
    assert_eq!(status.pool.as_deref(), Some("2-10"));
}

#[test]
fn last_transition_time_moves_only_when_the_status_changes() {
    let mut stack = stack();
    stack.status = Some(status_of(&stack, &children(true, succeeded()), 0));
    let same = status_of(&stack, &children(true, succeeded()), 60);
    assert_eq!(
        same,
        stack.status.clone().unwrap(),
        "an unchanged stack yields an identical status"
    );
    let down = status_of(&stack, &children(false, succeeded()), 120);
    assert_eq!(condition(&down, READY).last_transition_time, at(120));
    assert_eq!(condition(&down, AUTOSCALING).last_transition_time, at(0));
}

#[test]
fn losing_readiness_after_ready_is_degraded_and_a_failed_migration_is_failed() {
    let mut stack = stack();
    stack.status = Some(status_of(&stack, &children(true, succeeded()), 0));
    let degraded = status_of(&stack, &children(false, succeeded()), 1);
    assert_eq!(degraded.phase, Some(Phase::Degraded));
    assert_eq!(degraded.reason.as_deref(), Some("PostgresNotReady"));
    let failed = MigrationStatus {
        error: Some("relation exists".into()),
        ..migration("shop-migrate-2", MigrationState::Failed)
    };
    let failed = status_of(&stack, &children(true, failed), 2);
    assert_eq!(failed.phase, Some(Phase::Failed));
    assert!(condition(&failed, READY).message.contains("relation exists"));
    let upgrading = status_of(
        &stack,
        &children(true, migration("j", MigrationState::Running)),
        3,
    );
    assert_eq!(upgrading.phase, Some(Phase::Provisioning));
}

#[test]
fn invalid_spec_keeps_other_conditions_and_names_the_field() {
    let mut stack = stack();
    stack.status = Some(status_of(&stack, &children(true, succeeded()), 0));
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
    let mut external = children(true, succeeded());
    external.applied.postgres = None;
    external.applied.redis = None;
    external.observed.external_database = Some(ExternalSecret::MissingKey);
    external.observed.external_cache = Some(ExternalSecret::Missing);
    let status = status_of(&stack, &external, 0);
    assert_eq!(condition(&status, DATABASE_READY).reason, "SecretKeyNotFound");
    assert_eq!(condition(&status, CACHE_READY).reason, "SecretNotFound");
    assert!(
        condition(&status, CACHE_READY)
            .message
            .contains("spec.cache.external.secretRef")
    );
    assert_eq!(condition(&status, READY).reason, "SecretKeyNotFound");
    external.observed.external_database = Some(ExternalSecret::Ready);
    external.observed.external_cache = Some(ExternalSecret::Ready);
    let status = status_of(&stack, &external, 0);
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

    stack.status = Some(status_of(&stack, &children(true, succeeded()), 0));
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

#[test]
fn the_connection_budget_is_false_with_numbers_when_pool_min_does_not_fit() {
    use crate::tuner::{ConnectionBudget, PoolBounds, ReplicaBounds};
    let b = ConnectionBudget {
        max_connections: 100,
        reserved: 10,
        source: Default::default(),
        transit: Default::default(),
    };
    let verdict = super::conditions::connection_budget(
        &b.plan(ReplicaBounds { min: 2, max: 20 }, PoolBounds { min: 5, max: 20 }),
    );
    assert_eq!((verdict.ok, verdict.reason), (false, "ReplicasCapped"));
    assert!(
        verdict.message.contains(
            "maxReplicas 20 (+15 in transit) x pool min 5 + reserved 10 = 185 > max_connections 100"
        ),
        "{}",
        verdict.message
    );
    // One replica (+3 in transit) x 20 + 10 = 90.
    let verdict = super::conditions::connection_budget(
        &b.plan(ReplicaBounds { min: 1, max: 1 }, PoolBounds { min: 2, max: 20 }),
    );
    assert_eq!((verdict.ok, verdict.reason), (true, "Fits"));
}

#[test]
fn a_migration_without_a_report_or_disabled_is_still_described() {
    let stack = stack();
    let bare = status_of(
        &stack,
        &children(true, migration("shop-migrate-1", MigrationState::Succeeded)),
        0,
    );
    assert_eq!(
        condition(&bare, MIGRATIONS_APPLIED).message,
        "Job shop-migrate-1 succeeded"
    );
    let failed = status_of(
        &stack,
        &children(true, migration("shop-migrate-1", MigrationState::Failed)),
        0,
    );
    assert!(
        condition(&failed, MIGRATIONS_APPLIED)
            .message
            .ends_with("(delete it to retry): no termination message")
    );
    let mut disabled = children(true, succeeded());
    disabled.applied.migration = None;
    let status = status_of(&stack, &disabled, 0);
    assert_eq!(
        condition(&status, MIGRATIONS_APPLIED).reason,
        "MigrationsDisabled"
    );
    assert_eq!(status.migration, None);
}
