//! Cleanup: run when a stack is deleted, before its finalizer is removed. Children go with the stack
//! through garbage collection (owner references); what outlives it depends on spec.deletionPolicy.
//! Every step tolerates children that are already gone.
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use serde_json::json;

use super::context::{Context, stack_key};
use super::error::{Error, unless_gone};
use crate::children::{ChildNames, STACK_LABEL};
use crate::crd::{DeletionPolicy, PerformanceStack};

/// Retain: orphans the credentials Secret so it outlives the stack together with the database volume
/// it unlocks. Delete: removes the database volumes (the Secret goes with the stack).
pub async fn cleanup(stack: &PerformanceStack, ctx: &Context) -> Result<Action, Error> {
    let namespace = stack.namespace().unwrap_or_default();
    let name = stack.name_any();
    if let Some(tuning) = &ctx.tuning {
        tuning.registry.forget(&stack_key(stack));
    }
    match stack.spec.deletion_policy {
        DeletionPolicy::Retain => {
            let secrets: Api<Secret> = ctx.api(&namespace);
            let secret = ChildNames::new(&name).credentials();
            let patch = json!({ "metadata": { "ownerReferences": null } });
            let orphaned = secrets
                .patch(&secret, &PatchParams::default(), &Patch::Merge(&patch))
                .await;
            if unless_gone(orphaned)
                .map_err(|source| cleanup_failed("orphaning the credentials Secret", source))?
                .is_some()
            {
                tracing::info!(secret, "kept credentials Secret (deletionPolicy Retain)");
            }
        }
        DeletionPolicy::Delete => {
            let claims: Api<PersistentVolumeClaim> = ctx.api(&namespace);
            let selector = format!("{STACK_LABEL}={name}");
            let list = claims
                .list_metadata(&ListParams::default().labels(&selector))
                .await
                .map_err(|source| cleanup_failed("listing database volumes", source))?;
            for claim in list.items.iter().map(|c| c.name_any()) {
                let deleted = claims.delete(&claim, &DeleteParams::default()).await;
                if unless_gone(deleted)
                    .map_err(|source| cleanup_failed("deleting a database volume", source))?
                    .is_some()
                {
                    tracing::info!(claim, "deleted database volume (deletionPolicy Delete)");
                }
            }
        }
    }
    ctx.metrics.forget(stack);
    Ok(Action::await_change())
}

fn cleanup_failed(what: &'static str, source: kube::Error) -> Error {
    Error::Cleanup { what, source }
}
