//! One rule per condition: what the observed and applied children say about each part of the stack,
//! and how a condition is set so that `lastTransitionTime` moves only when its status does.
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use perfstack_contract::migration::MigrationReport;

use crate::children::{Pause, ValidatedStack, pod};
use crate::controller::apply::Applied;
use crate::controller::context::AutoscalingApi;
use crate::controller::observe::{ExternalSecret, Observed, ObservedMonitoring};
use crate::crd::{MigrationState, MigrationStatus, VolumeState, VolumeStatus};
use crate::tuner::{BudgetPlan, Settings};

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
/// The data volumes have, or are getting, the size and class the spec asks for.
pub const STORAGE: &str = "Storage";
/// The stack is paused: the operator only observes it.
pub const SUSPENDED: &str = "Suspended";
/// The PodMonitor and PrometheusRule exist (`spec.monitoring.enabled` only).
pub const MONITORING: &str = "Monitoring";

/// Reasons of the Ready condition that report a failure rather than progress: the only condition
/// reasons recorded as Events (as Warnings, when Ready turns to one).
pub const FAILURE_REASONS: [&str; 6] = [
    "InvalidSpec",
    "ReadFailed",
    "ApplyFailed",
    "DeleteFailed",
    "RenderFailed",
    "MigrationFailed",
];

/// A condition to set.
pub struct Verdict {
    /// Condition type.
    pub type_: &'static str,
    /// Whether its status is True.
    pub ok: bool,
    /// PascalCase reason.
    pub reason: &'static str,
    /// What a reader needs to know.
    pub message: String,
}

fn verdict(type_: &'static str, ok: bool, reason: &'static str, message: String) -> Verdict {
    Verdict {
        type_,
        ok,
        reason,
        message,
    }
}

/// Sets `verdict` in `conditions`, keeping lastTransitionTime when the status did not change.
pub fn set_condition(conditions: &mut Vec<Condition>, verdict: Verdict, generation: Option<i64>, now: &Time) {
    let status = if verdict.ok { "True" } else { "False" };
    let last_transition_time = conditions
        .iter()
        .find(|c| c.type_ == verdict.type_ && c.status == status)
        .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
    let condition = Condition {
        type_: verdict.type_.into(),
        status: status.into(),
        reason: verdict.reason.into(),
        message: verdict.message,
        observed_generation: generation,
        last_transition_time,
    };
    match conditions.iter_mut().find(|c| c.type_ == verdict.type_) {
        Some(existing) => *existing = condition,
        None => conditions.push(condition),
    }
}

/// Puts the conditions in the documented order.
pub fn sort_conditions(conditions: &mut [Condition]) {
    let order = [
        READY,
        DATABASE_READY,
        CACHE_READY,
        MIGRATIONS_APPLIED,
        APP_READY,
        AUTOSCALING,
        STORAGE,
        CONNECTION_BUDGET,
        SUSPENDED,
        MONITORING,
    ];
    conditions.sort_by_key(|c| order.iter().position(|t| *t == c.type_).unwrap_or(order.len()));
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

fn external(type_: &'static str, ok_reason: &'static str, field: &str, found: ExternalSecret) -> Verdict {
    match found {
        ExternalSecret::Ready => verdict(
            type_,
            true,
            ok_reason,
            format!("using the URL in the Secret named by {field}"),
        ),
        ExternalSecret::MissingKey => verdict(
            type_,
            false,
            "SecretKeyNotFound",
            format!("the Secret named by {field} has no such key"),
        ),
        ExternalSecret::Missing => verdict(
            type_,
            false,
            "SecretNotFound",
            format!("the Secret named by {field} does not exist"),
        ),
    }
}

/// DatabaseReady: the user's Secret (external) or the StatefulSet's ready replica (bundled).
pub fn database(stack: &ValidatedStack, observed: &Observed, applied: &Applied) -> Verdict {
    if let Some(found) = observed.external_database {
        return external(
            DATABASE_READY,
            "ExternalDatabaseConfigured",
            "spec.database.external.secretRef",
            found,
        );
    }
    let ready = applied.postgres.as_ref().is_some_and(pod::is_ready);
    let reasons = ["PostgresReady", "PostgresNotReady"];
    stateful_set(DATABASE_READY, reasons, &stack.names().postgres(), ready)
}

/// The verdict on a bundled single-replica StatefulSet: the first reason when it is ready, the
/// second while it waits for its replica.
fn stateful_set(
    type_: &'static str,
    [ready_reason, waiting_reason]: [&'static str; 2],
    name: &str,
    ready: bool,
) -> Verdict {
    if ready {
        verdict(type_, true, ready_reason, format!("StatefulSet {name} is ready"))
    } else {
        let message = format!("waiting for StatefulSet {name}: 0/1 replicas ready");
        verdict(type_, false, waiting_reason, message)
    }
}

/// CacheReady: the user's Secret (external), the Redis Deployment (bundled), or no cache.
pub fn cache(observed: &Observed, applied: &Applied) -> Verdict {
    if let Some(found) = observed.external_cache {
        return external(
            CACHE_READY,
            "ExternalCacheConfigured",
            "spec.cache.external.secretRef",
            found,
        );
    }
    match &applied.redis {
        None => verdict(
            CACHE_READY,
            true,
            "CacheDisabled",
            "the API runs without a cache".into(),
        ),
        Some(redis) => {
            let name = redis.metadata.name.clone().unwrap_or_default();
            let reasons = ["RedisReady", "RedisNotReady"];
            stateful_set(CACHE_READY, reasons, &name, pod::is_ready(redis))
        }
    }
}

/// MigrationsApplied: where the migration of the desired image stands; a succeeded one quotes what
/// `migrate` reported (the contract's one JSON line), a failed one why.
pub fn migration(migration: Option<&MigrationStatus>) -> Verdict {
    let Some(MigrationStatus {
        job,
        state,
        summary,
        error,
        ..
    }) = migration
    else {
        return verdict(
            MIGRATIONS_APPLIED,
            true,
            "MigrationsDisabled",
            "spec.migrations.enabled is false".into(),
        );
    };
    match state {
        MigrationState::WaitingForDatabase => verdict(
            MIGRATIONS_APPLIED,
            false,
            "WaitingForDatabase",
            format!("Job {job} starts once the database is ready"),
        ),
        MigrationState::Running => verdict(
            MIGRATIONS_APPLIED,
            false,
            "MigrationRunning",
            format!("Job {job} is running"),
        ),
        MigrationState::Succeeded => {
            let message = match summary {
                Some(summary) => format!(
                    "Job {job} succeeded: {}",
                    MigrationReport::Succeeded(summary.clone()).to_line()
                ),
                None => format!("Job {job} succeeded"),
            };
            verdict(MIGRATIONS_APPLIED, true, "MigrationSucceeded", message)
        }
        MigrationState::Failed => verdict(
            MIGRATIONS_APPLIED,
            false,
            "MigrationFailed",
            format!(
                "Job {job} failed (delete it to retry): {}",
                error.as_deref().unwrap_or("no termination message")
            ),
        ),
    }
}

/// AppReady: the API Deployment is rolled out and has a ready replica.
pub fn app(stack: &ValidatedStack, applied: &Applied) -> Verdict {
    match &applied.api {
        None => verdict(
            APP_READY,
            false,
            "WaitingForMigration",
            "the API is deployed once its migration succeeded".into(),
        ),
        Some(api) => {
            let (ok, msg) = deployment_available(api);
            let reason = if ok {
                "DeploymentAvailable"
            } else {
                "DeploymentProgressing"
            };
            let message = format!("Deployment {}: {msg}", stack.names().api());
            verdict(APP_READY, ok, reason, message)
        }
    }
}

/// Autoscaling: which autoscaling API the HPA was written with, if any.
pub fn autoscaling(stack: &ValidatedStack, observed: &Observed) -> Verdict {
    let (min, max) = (stack.spec.app.min_replicas, stack.spec.app.max_replicas);
    match observed.autoscaling {
        AutoscalingApi::V2 => verdict(
            AUTOSCALING,
            true,
            "HorizontalPodAutoscalerReady",
            format!("autoscaling/v2 HPA scales the API between {min} and {max} replicas"),
        ),
        AutoscalingApi::V2beta2 => verdict(
            AUTOSCALING,
            true,
            "AutoscalingV2NotServed",
            format!(
                "this cluster does not serve autoscaling/v2; the HPA was created with autoscaling/v2beta2 and scales the API between {min} and {max} replicas"
            ),
        ),
        AutoscalingApi::Unavailable => verdict(
            AUTOSCALING,
            false,
            "AutoscalingApiUnavailable",
            format!(
                "this cluster serves neither autoscaling/v2 nor autoscaling/v2beta2; the API runs a fixed {min} replicas"
            ),
        ),
    }
}

/// ConnectionBudget: the tuner's budget plan (the message has the arithmetic).
pub fn connection_budget(plan: &BudgetPlan) -> Verdict {
    verdict(
        CONNECTION_BUDGET,
        plan.verdict.satisfied(),
        plan.verdict.reason(),
        plan.to_string(),
    )
}

/// Storage: True while every data volume has (or is growing to) what the spec asks; False, with
/// each reason and what to do, when a change of size or class cannot be carried out.
pub fn storage(volumes: &[VolumeStatus]) -> Verdict {
    if volumes.is_empty() {
        return verdict(
            STORAGE,
            true,
            "NoVolumes",
            "the stack keeps no data volume (external database and cache)".into(),
        );
    }
    let rank = |state: VolumeState| match state {
        VolumeState::AsSpecified => 0,
        VolumeState::Pending => 1,
        VolumeState::Expanding => 2,
        VolumeState::ExpansionRefused | VolumeState::ShrinkRefused | VolumeState::ClassImmutable => 3,
    };
    let worst = volumes
        .iter()
        .map(|v| v.state)
        .max_by_key(|s| rank(*s))
        .unwrap_or(VolumeState::AsSpecified);
    let describe = |v: &VolumeStatus| match (&v.message, &v.capacity) {
        (Some(message), _) => message.clone(),
        (None, Some(capacity)) => format!("{} {:?}: {} of {}", v.claim, v.state, capacity, v.size),
        (None, None) => format!("{} {:?}: {}", v.claim, v.state, v.size),
    };
    let message = volumes.iter().map(describe).collect::<Vec<_>>().join("; ");
    let reason = match worst {
        VolumeState::AsSpecified => "AsSpecified",
        VolumeState::Pending => "Pending",
        VolumeState::Expanding => "Expanding",
        VolumeState::ExpansionRefused => "ExpansionRefused",
        VolumeState::ShrinkRefused => "ShrinkRefused",
        VolumeState::ClassImmutable => "ClassImmutable",
    };
    verdict(STORAGE, rank(worst) < 3, reason, message)
}

/// Suspended: whether the operator leaves the stack alone, why, and that the tuner is frozen with
/// `settings` in force.
pub fn suspended(pause: Option<&Pause>, settings: &Settings) -> Verdict {
    match pause {
        None => verdict(
            SUSPENDED,
            false,
            "Reconciling",
            "the operator keeps the stack as its spec says".into(),
        ),
        Some(pause) => verdict(
            SUSPENDED,
            true,
            pause.reason,
            format!(
                "{}: the operator writes nothing but this status until it is set back (conditions are \
                 still observed); the tuner is frozen: pool {}-{} and HPA {}-{} stay in force, no \
                 interval runs",
                pause.switch, settings.pool_min, settings.pool_max, settings.hpa_min, settings.hpa_max
            ),
        ),
    }
}

/// Whether `conditions` has `type_` with status True.
pub fn condition_is_true(conditions: &[Condition], type_: &str) -> bool {
    conditions.iter().any(|c| c.type_ == type_ && c.status == "True")
}

/// Monitoring: whether the PodMonitor and PrometheusRule exist, or why not. `None`: monitoring is off
/// (or being retired), and the condition is not shown.
pub fn monitoring(stack: &ValidatedStack, observed: &Observed) -> Option<Verdict> {
    let names = stack.names();
    match observed.monitoring.as_ref()? {
        ObservedMonitoring::Served { .. } => Some(verdict(
            MONITORING,
            true,
            "MonitoringCreated",
            format!(
                "PodMonitor {} scrapes the API pods; PrometheusRule {} alerts on spec.slo",
                names.api(),
                names.slo_rules()
            ),
        )),
        ObservedMonitoring::NotServed => Some(verdict(
            MONITORING,
            false,
            "MonitoringKindsNotServed",
            "this cluster does not serve monitoring.coreos.com/v1 PodMonitor and PrometheusRule (install the Prometheus Operator's CRDs); the rest of the stack is deployed without them".into(),
        )),
        ObservedMonitoring::Retired => None,
    }
}
