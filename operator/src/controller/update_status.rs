//! Update status (step 7): write the computed status only when it differs from what the stack shows,
//! and record an Event for every condition that changed status and for a phase change.
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::context::Context;
use super::error::Error;
use crate::crd::{PerformanceStack, StackStatus};

/// A transition worth an Event: (reason, note, is_warning).
pub type Transition = (String, String, bool);

/// Condition status changes (not reason or message changes) and phase changes between `old` and `new`, as Events.
pub fn transitions(old: &StackStatus, new: &StackStatus) -> Vec<Transition> {
    let mut out = Vec::new();
    for condition in &new.conditions {
        let before = old.conditions.iter().find(|c| c.type_ == condition.type_);
        let changed = before.is_none_or(|b| b.status != condition.status);
        // A condition first appearing as False is the normal start of provisioning, not news.
        let first_false = before.is_none() && condition.status != "True";
        if changed && !first_false {
            out.push((
                condition.reason.clone(),
                format!("{}: {}", condition.type_, condition.message),
                condition.status != "True",
            ));
        }
    }
    if old.phase != new.phase
        && let Some(phase) = new.phase
    {
        let warning = matches!(phase, crate::crd::Phase::Failed | crate::crd::Phase::Degraded);
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
