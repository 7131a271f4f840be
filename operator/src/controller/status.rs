//! Status (step 6): compute the stack's status from what observe found, what apply left live and what
//! the tuner decided. Pure, so every phase and condition rule is unit-tested (one rule per condition
//! in [`conditions`]); conditions keep `lastTransitionTime` while their status is unchanged.
pub mod conditions;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::apply::Applied;
use super::build::running_image;
use super::observe::Observed;
use super::tune::TuningDecision;
use super::validate::InvalidSpec;
use crate::children::ValidatedStack;
use crate::crd::{PerformanceStack, Phase, StackStatus};
use conditions::{READY, Verdict, set_condition, sort_conditions};

/// The time conditions are stamped with.
pub fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// The status of a stack whose children were applied.
pub fn compute(
    stack: &PerformanceStack,
    validated: &ValidatedStack,
    observed: &Observed,
    applied: &Applied,
    decision: &TuningDecision,
    now: &Time,
) -> StackStatus {
    let old = stack.status.clone().unwrap_or_default();
    let generation = stack.metadata.generation;
    let mut conditions = old.conditions.clone();
    let parts = [
        conditions::database(validated, observed, applied),
        conditions::cache(observed, applied),
        conditions::migration(applied.migration.as_ref()),
        conditions::app(validated, applied),
    ];
    // Refused writes come first: every other child was written and is shown as it is.
    let blocker = super::failure::refused_verdict(&applied.refused).or_else(|| {
        parts
            .iter()
            .find(|v| !v.ok)
            .map(|v| (v.reason, v.message.clone()))
    });
    for part in parts {
        set_condition(&mut conditions, part, generation, now);
    }
    set_condition(
        &mut conditions,
        conditions::autoscaling(validated, observed),
        generation,
        now,
    );
    set_condition(
        &mut conditions,
        conditions::storage(&applied.volumes),
        generation,
        now,
    );
    set_condition(
        &mut conditions,
        conditions::suspended(validated.paused.as_ref(), &decision.settings),
        generation,
        now,
    );
    match conditions::monitoring(validated, observed) {
        Some(verdict) => set_condition(&mut conditions, verdict, generation, now),
        None => conditions.retain(|c| c.type_ != conditions::MONITORING),
    }
    if let Some(plan) = &decision.budget {
        set_condition(
            &mut conditions,
            conditions::connection_budget(plan),
            generation,
            now,
        );
    }
    let (phase, reason) = match (&blocker, &validated.paused) {
        (_, Some(pause)) => (Phase::Suspended, pause.reason),
        (blocker, None) => phase_of(blocker.as_ref(), applied, old.phase),
    };
    let ready = match blocker {
        None => Verdict {
            type_: READY,
            ok: true,
            reason: "StackReady",
            message: "database, cache, migrations and API are ready".into(),
        },
        Some((reason, message)) => Verdict {
            type_: READY,
            ok: false,
            reason,
            message,
        },
    };
    set_condition(&mut conditions, ready, generation, now);
    sort_conditions(&mut conditions);
    let (tuning, observed_p95) = match &decision.status {
        Some(tuning) => {
            let p95 = tuning.last_observation.as_ref().and_then(|o| o.p95_ms);
            let observed_p95 = p95.map(|ms| format!("{ms}ms")).or(old.observed_p95);
            (Some(tuning.clone()), observed_p95)
        }
        None => (old.tuning, old.observed_p95),
    };
    let settings = &decision.settings;
    StackStatus {
        observed_generation: generation,
        phase: Some(phase),
        reason: Some(reason.into()),
        conditions,
        api_url: Some(validated.api_url()),
        app_image: applied.api.as_ref().and_then(running_image),
        replicas: Some(
            applied
                .api
                .as_ref()
                .and_then(|d| d.status.as_ref()?.ready_replicas)
                .unwrap_or(0),
        ),
        pool: Some(format!("{}-{}", settings.pool_min, settings.pool_max)),
        observed_p95,
        migration: applied.migration.clone(),
        tuning,
        volumes: applied.volumes.clone(),
    }
}

/// The phase of a stack that is not paused, and its reason: Ready without a `blocker` (the reason
/// and message of what keeps it from being ready), else Failed, Provisioning or Degraded.
fn phase_of(
    blocker: Option<&(&'static str, String)>,
    applied: &Applied,
    before: Option<Phase>,
) -> (Phase, &'static str) {
    match blocker {
        None => (Phase::Ready, "StackReady"),
        Some(("MigrationFailed", _)) => (Phase::Failed, "MigrationFailed"),
        // An upgrade's migration: the previous version keeps serving, nothing is degraded.
        Some((reason @ ("MigrationRunning" | "WaitingForDatabase"), _)) if applied.api.is_some() => {
            (Phase::Provisioning, *reason)
        }
        Some((reason, _)) if matches!(before, Some(Phase::Ready | Phase::Degraded)) => {
            (Phase::Degraded, *reason)
        }
        Some((reason, _)) => (Phase::Provisioning, *reason),
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
    let verdict = Verdict {
        type_: READY,
        ok: false,
        reason,
        message,
    };
    set_condition(&mut status.conditions, verdict, generation, now);
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

#[cfg(test)]
mod tests;
