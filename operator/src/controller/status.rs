//! Status: compute the stack's status from what the apply step found live. Pure, so every phase and
//! condition rule is unit-tested; conditions keep `lastTransitionTime` while their status is unchanged.
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::AutoscalingApi;
use super::apply::{Applied, ExternalSecret};
use super::migrate::MigrationState;
use super::validate::InvalidSpec;
use crate::build::ValidatedStack;
use crate::crd::{PerformanceStack, Phase, StackStatus};

/// Condition types, in the order they appear in status.
pub const READY: &str = "Ready";
/// The database answers (bundled) or is configured (external).
pub const DATABASE_READY: &str = "DatabaseReady";
/// The cache is available, external, or disabled.
pub const CACHE_READY: &str = "CacheReady";
/// The API Deployment is rolled out and available.
pub const APP_READY: &str = "AppReady";
/// The migration of the desired image succeeded.
pub const MIGRATIONS_APPLIED: &str = "MigrationsApplied";
/// The HPA exists, and with which API.
pub const AUTOSCALING: &str = "Autoscaling";
/// maxReplicas x pool max + reserved fits PostgreSQL's max_connections (the tuner's invariant).
pub const CONNECTION_BUDGET: &str = "ConnectionBudget";

/// Start of the MigrationsApplied message of a succeeded Job; the summary follows it.
pub fn migration_message_prefix(job: &str) -> String {
    format!("Job {job} succeeded")
}

/// A condition to set: status, reason, message.
struct Observed(&'static str, bool, &'static str, String);

/// Sets `observed` in `conditions`, keeping lastTransitionTime when the status did not change.
fn set_condition(conditions: &mut Vec<Condition>, observed: Observed, generation: Option<i64>, now: &Time) {
    let Observed(type_, ok, reason, message) = observed;
    let status = if ok { "True" } else { "False" };
    let last_transition_time = conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
    let condition = Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time,
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(existing) => *existing = condition,
        None => conditions.push(condition),
    }
}

/// Looks up a condition's status.
pub fn condition_is_true(status: &StackStatus, type_: &str) -> Option<bool> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status == "True")
}

fn deployment_available(deployment: &Deployment) -> (bool, String) {
    let generation = deployment.metadata.generation.unwrap_or(0);
    let status = deployment.status.clone().unwrap_or_default();
    let wanted = status.replicas.unwrap_or(0);
    let ready = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let rolled_out = status.observed_generation.unwrap_or(0) >= generation && updated >= wanted;
    (
        ready >= 1 && rolled_out,
        format!("{ready}/{wanted} replicas ready"),
    )
}

fn external_condition(
    type_: &'static str,
    ok_reason: &'static str,
    field: &str,
    found: ExternalSecret,
) -> Observed {
    match found {
        ExternalSecret::Ready => Observed(
            type_,
            true,
            ok_reason,
            format!("using the URL in the Secret named by {field}"),
        ),
        ExternalSecret::MissingKey => Observed(
            type_,
            false,
            "SecretKeyNotFound",
            format!("the Secret named by {field} has no such key"),
        ),
        ExternalSecret::Missing => Observed(
            type_,
            false,
            "SecretNotFound",
            format!("the Secret named by {field} does not exist"),
        ),
    }
}

fn database_condition(stack: &ValidatedStack, applied: &Applied) -> Observed {
    if let Some(found) = applied.external_database_secret {
        return external_condition(
            DATABASE_READY,
            "ExternalDatabaseConfigured",
            "spec.database.external.secretRef",
            found,
        );
    }
    let ready = applied
        .postgres
        .as_ref()
        .and_then(|s| s.status.as_ref())
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    if ready >= 1 {
        Observed(
            DATABASE_READY,
            true,
            "PostgresReady",
            format!("StatefulSet {} is ready", stack.names().postgres()),
        )
    } else {
        Observed(
            DATABASE_READY,
            false,
            "PostgresNotReady",
            format!(
                "waiting for StatefulSet {}: 0/1 replicas ready",
                stack.names().postgres()
            ),
        )
    }
}

fn cache_condition(applied: &Applied) -> Observed {
    if let Some(found) = applied.external_cache_secret {
        return external_condition(
            CACHE_READY,
            "ExternalCacheConfigured",
            "spec.cache.external.secretRef",
            found,
        );
    }
    match &applied.redis {
        None => Observed(
            CACHE_READY,
            true,
            "CacheDisabled",
            "the API runs without a cache".into(),
        ),
        Some(redis) => match deployment_available(redis) {
            (true, msg) => Observed(CACHE_READY, true, "RedisReady", msg),
            (false, msg) => Observed(CACHE_READY, false, "RedisNotReady", msg),
        },
    }
}

fn migration_condition(applied: &Applied) -> Observed {
    match applied.migration.clone().unwrap_or(MigrationState::Disabled) {
        MigrationState::Disabled => Observed(
            MIGRATIONS_APPLIED,
            true,
            "MigrationsDisabled",
            "spec.migrations.enabled is false".into(),
        ),
        MigrationState::WaitingForDatabase { job } => Observed(
            MIGRATIONS_APPLIED,
            false,
            "WaitingForDatabase",
            format!("Job {job} starts once the database is ready"),
        ),
        MigrationState::Running { job } => Observed(
            MIGRATIONS_APPLIED,
            false,
            "MigrationRunning",
            format!("Job {job} is running"),
        ),
        MigrationState::Succeeded { job, summary } => {
            let prefix = migration_message_prefix(&job);
            let message = summary.map_or_else(|| prefix.clone(), |s| format!("{prefix}: {s}"));
            Observed(MIGRATIONS_APPLIED, true, "MigrationSucceeded", message)
        }
        MigrationState::Failed { job, message } => Observed(
            MIGRATIONS_APPLIED,
            false,
            "MigrationFailed",
            format!(
                "Job {job} failed (delete it to retry): {}",
                message.unwrap_or_else(|| "no termination message".into())
            ),
        ),
    }
}

fn app_condition(stack: &ValidatedStack, applied: &Applied) -> Observed {
    match &applied.api {
        None => Observed(
            APP_READY,
            false,
            "WaitingForMigration",
            "the API is deployed once its migration succeeded".into(),
        ),
        Some(api) => match deployment_available(api) {
            (true, msg) => Observed(
                APP_READY,
                true,
                "DeploymentAvailable",
                format!("Deployment {}: {msg}", stack.names().api()),
            ),
            (false, msg) => Observed(
                APP_READY,
                false,
                "DeploymentProgressing",
                format!("Deployment {}: {msg}", stack.names().api()),
            ),
        },
    }
}

fn autoscaling_condition(stack: &ValidatedStack, applied: &Applied) -> Observed {
    let (min, max) = (stack.spec.app.min_replicas, stack.spec.app.max_replicas);
    match applied.autoscaling {
        AutoscalingApi::V2 => Observed(
            AUTOSCALING,
            true,
            "HorizontalPodAutoscalerReady",
            format!("autoscaling/v2 HPA scales the API between {min} and {max} replicas"),
        ),
        AutoscalingApi::V2beta2 => Observed(
            AUTOSCALING,
            true,
            "AutoscalingV2NotServed",
            format!(
                "this cluster does not serve autoscaling/v2; the HPA was created with autoscaling/v2beta2 and scales the API between {min} and {max} replicas"
            ),
        ),
        AutoscalingApi::Unavailable => Observed(
            AUTOSCALING,
            false,
            "AutoscalingApiUnavailable",
            format!(
                "this cluster serves neither autoscaling/v2 nor autoscaling/v2beta2; the API runs a fixed {min} replicas"
            ),
        ),
    }
}

/// The status of a stack whose children were applied.
pub fn compute(
    stack: &PerformanceStack,
    validated: &ValidatedStack,
    applied: &Applied,
    now: &Time,
) -> StackStatus {
    let old = stack.status.clone().unwrap_or_default();
    let generation = stack.metadata.generation;
    let mut conditions = old.conditions.clone();
    let parts = [
        database_condition(validated, applied),
        cache_condition(applied),
        migration_condition(applied),
        app_condition(validated, applied),
    ];
    let blocker = parts.iter().find(|o| !o.1).map(|o| (o.2, o.3.clone()));
    for part in parts {
        set_condition(&mut conditions, part, generation, now);
    }
    set_condition(
        &mut conditions,
        autoscaling_condition(validated, applied),
        generation,
        now,
    );
    let (phase, reason) = match &blocker {
        None => (Phase::Ready, "StackReady"),
        Some(("MigrationFailed", _)) => (Phase::Failed, "MigrationFailed"),
        // An upgrade's migration: the previous version keeps serving, nothing is degraded.
        Some((reason @ ("MigrationRunning" | "WaitingForDatabase"), _)) if applied.api.is_some() => {
            (Phase::Provisioning, *reason)
        }
        Some((reason, _)) if matches!(old.phase, Some(Phase::Ready | Phase::Degraded)) => {
            (Phase::Degraded, *reason)
        }
        Some((reason, _)) => (Phase::Provisioning, *reason),
    };
    let ready = match blocker {
        None => Observed(
            READY,
            true,
            "StackReady",
            "database, cache, migrations and API are ready".into(),
        ),
        Some((reason, message)) => Observed(READY, false, reason, message),
    };
    set_condition(&mut conditions, ready, generation, now);
    sort_conditions(&mut conditions);
    let pool = &validated.spec.pool;
    let pool_in_force = validated.tuned.map_or_else(
        || format!("{}-{}", pool.min_connections, pool.max_connections),
        |t| format!("{}-{}", t.pool_min, t.pool_max),
    );
    StackStatus {
        observed_generation: generation,
        phase: Some(phase),
        reason: Some(reason.into()),
        conditions,
        api_url: Some(validated.api_url()),
        app_image: applied.api.as_ref().and_then(super::apply::running_image),
        replicas: Some(
            applied
                .api
                .as_ref()
                .and_then(|d| d.status.as_ref()?.ready_replicas)
                .unwrap_or(0),
        ),
        pool: Some(pool_in_force),
        observed_p95: old.observed_p95,
        tuning: old.tuning,
    }
}

/// The status of a stack whose spec is invalid: Ready=False naming the field; the rest unchanged.
pub fn invalid(stack: &PerformanceStack, error: &InvalidSpec, now: &Time) -> StackStatus {
    not_ready(
        stack,
        "InvalidSpec",
        format!("invalid spec: {error}"),
        now,
        |_| Phase::Failed,
    )
}

/// The stack's status with Ready False (`reason`, `message`), the phase `phase` makes of the
/// previous one, and every other condition as it was.
fn not_ready(
    stack: &PerformanceStack,
    reason: &'static str,
    message: String,
    now: &Time,
    phase: impl FnOnce(Option<Phase>) -> Phase,
) -> StackStatus {
    let mut status = stack.status.clone().unwrap_or_default();
    let generation = stack.metadata.generation;
    set_condition(
        &mut status.conditions,
        Observed(READY, false, reason, message),
        generation,
        now,
    );
    sort_conditions(&mut status.conditions);
    status.observed_generation = generation;
    status.phase = Some(phase(status.phase));
    status.reason = Some(reason.into());
    status
}

/// The status after a reconcile that the API server refused (or that could not reach it): Ready False
/// with `reason` and what failed, every other condition as it was. The phase is Degraded for a stack
/// that was Ready, Provisioning for one still being created, and kept otherwise (Failed, Degraded).
pub fn reconcile_failed(
    stack: &PerformanceStack,
    reason: &'static str,
    message: String,
    now: &Time,
) -> StackStatus {
    not_ready(stack, reason, message, now, |before| match before {
        Some(Phase::Ready) => Phase::Degraded,
        None | Some(Phase::Pending | Phase::Suspended) => Phase::Provisioning,
        Some(other) => other,
    })
}

/// The status of a suspended stack: conditions as they were, phase Suspended.
pub fn suspended(stack: &PerformanceStack) -> StackStatus {
    let mut status = stack.status.clone().unwrap_or_default();
    status.observed_generation = stack.metadata.generation;
    status.phase = Some(Phase::Suspended);
    status.reason = Some("Suspended".into());
    status
}

/// Sets the ConnectionBudget condition from the tuner's budget plan (the message has the numbers).
pub fn set_connection_budget(
    status: &mut StackStatus,
    plan: &crate::tuner::BudgetPlan,
    generation: Option<i64>,
    now: &Time,
) {
    let (ok, reason) = (plan.verdict.satisfied(), plan.verdict.reason());
    let observed = Observed(CONNECTION_BUDGET, ok, reason, plan.to_string());
    set_condition(&mut status.conditions, observed, generation, now);
    sort_conditions(&mut status.conditions);
}

fn sort_conditions(conditions: &mut [Condition]) {
    let order = [
        READY,
        DATABASE_READY,
        CACHE_READY,
        MIGRATIONS_APPLIED,
        APP_READY,
        AUTOSCALING,
        CONNECTION_BUDGET,
    ];
    conditions.sort_by_key(|c| order.iter().position(|t| *t == c.type_).unwrap_or(order.len()));
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
