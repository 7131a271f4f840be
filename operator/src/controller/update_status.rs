//! Update status (step 7): write the computed status only when it differs from what the stack shows,
//! and record an Event for a phase change or a failure. Condition transitions are not Events: a new
//! stack turns half a dozen conditions True, and 200 stacks starting would spend most of their writes
//! on Events nobody reads; the conditions themselves say it.
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::context::Context;
use super::error::Error;
use super::status::conditions::{FAILURE_REASONS, READY};
use crate::crd::{PerformanceStack, Phase, StackStatus};

/// A transition worth an Event: (reason, note, is_warning).
pub type Transition = (String, String, bool);

/// The Events between `old` and `new`: a phase change (a Warning into Failed or Degraded), and the
/// Ready condition turning to a failure reason (`ApplyFailed`, `InvalidSpec`, ...; a Warning), each
/// once per transition.
pub fn transitions(old: &StackStatus, new: &StackStatus) -> Vec<Transition> {
    let mut out = Vec::new();
    let ready = |status: &StackStatus| status.conditions.iter().find(|c| c.type_ == READY).cloned();
    if let Some(now) = ready(new)
        && FAILURE_REASONS.contains(&now.reason.as_str())
        && ready(old).is_none_or(|before| before.reason != now.reason || before.status != now.status)
    {
        out.push((now.reason.clone(), now.message.clone(), true));
    }
    if old.phase != new.phase
        && let Some(phase) = new.phase
    {
        let warning = matches!(phase, Phase::Failed | Phase::Degraded);
        out.push((
            format!("Phase{}", phase.as_str()),
            format!("phase is now {}", phase.as_str()),
            warning,
        ));
    }
    out
}

/// Patches the status subresource when `new` differs from the stack's status, then records Events.
pub async fn write(ctx: &Context, stack: &PerformanceStack, new: StackStatus) -> Result<(), Error> {
    let old = stack.status.clone().unwrap_or_default();
    ctx.metrics.set_phase(stack, new.phase);
    if old == new {
        return Ok(());
    }
    let name = stack.metadata.name.clone().unwrap_or_default();
    let namespace = stack.metadata.namespace.clone().unwrap_or_default();
    let api: Api<PerformanceStack> = Api::namespaced(ctx.client.clone(), &namespace);
    // A merge patch of the fields the controller owns. observedP95 belongs to the tuner: without a
    // tuner in this process it is left out of the patch, keeping a value another writer put there
    // after this reconcile read the stack; with one (controller/tune.rs) the reconcile computed it.
    let mut owned = new.clone();
    if ctx.tuning.is_none() {
        owned.observed_p95 = None;
    }
    let patch = json!({ "status": owned });
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| Error::UpdateStatus { source })?;
    let regarding = stack.object_ref(&());
    for (reason, note, warning) in transitions(&old, &new) {
        ctx.events.publish(&regarding, &reason, &note, warning).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

    use super::*;

    fn status(phase: Phase, conditions: &[(&str, &str, &str)]) -> StackStatus {
        StackStatus {
            phase: Some(phase),
            conditions: conditions
                .iter()
                .map(|(type_, status, reason)| Condition {
                    type_: (*type_).into(),
                    status: (*status).into(),
                    reason: (*reason).into(),
                    message: format!("{type_} {reason}"),
                    observed_generation: None,
                    last_transition_time: crate::controller::status::now(),
                })
                .collect(),
            ..StackStatus::default()
        }
    }

    #[test]
    fn conditions_turning_true_are_no_events_but_the_phase_change_is() {
        let old = status(Phase::Provisioning, &[("Ready", "False", "PostgresNotReady")]);
        let new = status(
            Phase::Ready,
            &[
                ("Ready", "True", "StackReady"),
                ("DatabaseReady", "True", "PostgresReady"),
                ("AppReady", "True", "DeploymentAvailable"),
            ],
        );
        assert_eq!(
            transitions(&old, &new),
            [("PhaseReady".to_owned(), "phase is now Ready".to_owned(), false)]
        );
    }

    #[test]
    fn a_failure_is_a_warning_once() {
        let old = status(Phase::Provisioning, &[("Ready", "False", "PostgresNotReady")]);
        let failed = status(Phase::Provisioning, &[("Ready", "False", "ApplyFailed")]);
        assert_eq!(
            transitions(&old, &failed),
            [("ApplyFailed".to_owned(), "Ready ApplyFailed".to_owned(), true)]
        );
        assert!(
            transitions(&failed, &failed).is_empty(),
            "the same failure again: no Event"
        );
        let degraded = status(Phase::Degraded, &[("Ready", "False", "PostgresNotReady")]);
        let ready = status(Phase::Ready, &[("Ready", "True", "StackReady")]);
        assert_eq!(
            transitions(&ready, &degraded),
            [(
                "PhaseDegraded".to_owned(),
                "phase is now Degraded".to_owned(),
                true
            )],
            "waiting for a child is no failure: only the phase says it"
        );
    }
}
