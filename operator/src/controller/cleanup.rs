//! Cleanup: run when a stack is deleted, before its finalizer is removed. The children the stack
//! owns go with it through garbage collection; the data-bearing ones (the credentials Secret and
//! the PostgreSQL and Redis claims) are never owned by it, so what happens to them is decided here
//! alone, by `spec.deletionPolicy`:
//! - Retain: nothing is deleted. A Secret an earlier operator version gave an owner reference loses
//!   it, so that it survives the stack too.
//! - Delete: exactly the objects the operator made are deleted, by name (`data-S-postgres-0`,
//!   `data-S-redis-0`, `S-credentials`), and only when they carry the stack's label: a claim another
//!   tool labelled with the stack is not the operator's to delete.
//!
//! Every step tolerates objects that are already gone, so cleanup can run again.
use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::context::{Context, stack_key};
use super::error::{Error, unless_gone};
use crate::children::{ChildNames, STACK_LABEL, credentials, volume};
use crate::crd::{DeletionPolicy, PerformanceStack};

/// Keeps or deletes the stack's data as its deletion policy says, then forgets the stack.
pub async fn cleanup(stack: &PerformanceStack, ctx: &Context) -> Result<Action, Error> {
    let namespace = stack.namespace().unwrap_or_default();
    let name = stack.name_any();
    let names = ChildNames::new(&name);
    if let Some(tuning) = &ctx.tuning {
        tuning.registry.forget(&stack_key(stack));
    }
    let secrets: Api<Secret> = ctx.api(&namespace);
    let claims: Api<PersistentVolumeClaim> = ctx.api(&namespace);
    match stack.spec.deletion_policy {
        DeletionPolicy::Retain => {
            if let Some(secret) = ours(&secrets, &names.credentials(), &name).await? {
                disown(&secrets, &secret).await?;
                tracing::info!(
                    secret = secret.name_any(),
                    "kept credentials Secret (deletionPolicy Retain)"
                );
            }
        }
        DeletionPolicy::Delete => {
            for claim in [
                volume::claim_name(&names.postgres()),
                volume::claim_name(&names.redis()),
            ] {
                if let Some(found) = ours(&claims, &claim, &name).await? {
                    remove(&claims, &found).await?;
                    tracing::info!(claim, "deleted data volume (deletionPolicy Delete)");
                }
            }
            if let Some(found) = ours(&secrets, &names.credentials(), &name).await? {
                remove(&secrets, &found).await?;
                tracing::info!(
                    secret = found.name_any(),
                    "deleted credentials Secret (deletionPolicy Delete)"
                );
            }
        }
    }
    ctx.metrics.forget(stack);
    Ok(Action::await_change())
}

/// The object `name` if it exists and carries the label of the stack `stack`.
async fn ours<K>(api: &Api<K>, name: &str, stack: &str) -> Result<Option<K>, Error>
where
    K: Resource + DeserializeOwned + Clone + Debug,
{
    let found = api
        .get_opt(name)
        .await
        .map_err(|source| cleanup_failed("reading the stack's data", source))?;
    Ok(found.filter(|object| object.labels().get(STACK_LABEL).map(String::as_str) == Some(stack)))
}

/// Deletes `object`, only if it is still the one that was read (its uid).
async fn remove<K>(api: &Api<K>, object: &K) -> Result<(), Error>
where
    K: Resource<Scope = NamespaceResourceScope> + DeserializeOwned + Clone + Debug,
{
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: object.uid(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    unless_gone(api.delete(&object.name_any(), &params).await)
        .map(|_| ())
        .map_err(|source| cleanup_failed("deleting the stack's data", source))
}

/// Takes owner references to a PerformanceStack off `secret`, which earlier operator versions set.
async fn disown(secrets: &Api<Secret>, secret: &Secret) -> Result<(), Error> {
    let Some(patch) = credentials::disowning_patch(secret) else {
        return Ok(());
    };
    let patched = secrets
        .patch(&secret.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await;
    unless_gone(patched)
        .map(|_| ())
        .map_err(|source| cleanup_failed("taking the owner reference off the credentials Secret", source))
}

fn cleanup_failed(what: &'static str, source: kube::Error) -> Error {
    Error::Cleanup { what, source }
}
