//! Cleanup: run when a stack is deleted, before its finalizer is removed. Children go with the stack
//! through garbage collection (owner references); what outlives it depends on spec.deletionPolicy.
//! Every step tolerates children that are already gone.
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use serde_json::json;

use super::context::{Context, stack_key};
use super::error::Error;
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
            let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
            let secret = ChildNames::new(&name).credentials();
            let patch = json!({ "metadata": { "ownerReferences": null } });
            match secrets
                .patch(&secret, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => tracing::info!(secret, "kept credentials Secret (deletionPolicy Retain)"),
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(source) => {
                    return Err(Error::Cleanup {
                        what: "orphaning the credentials Secret",
                        source,
                    });
                }
            }
        }
        DeletionPolicy::Delete => {
            let claims: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &namespace);
            let selector = format!("{STACK_LABEL}={name}");
            let list = claims
                .list_metadata(&ListParams::default().labels(&selector))
                .await
                .map_err(|source| Error::Cleanup {
                    what: "listing database volumes",
                    source,
                })?;
            for claim in list.items.iter().map(|c| c.name_any()) {
                match claims.delete(&claim, &DeleteParams::default()).await {
                    Ok(_) => tracing::info!(claim, "deleted database volume (deletionPolicy Delete)"),
                    Err(kube::Error::Api(status)) if status.code == 404 => {}
                    Err(source) => {
                        return Err(Error::Cleanup {
                            what: "deleting a database volume",
                            source,
                        });
                    }
                }
            }
        }
    }
    ctx.metrics.forget(stack);
    Ok(Action::await_change())
}
