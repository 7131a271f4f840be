//! Apply (step 5): every write a reconcile makes, and nothing else. Each desired child is written with
//! server-side apply only when its digest differs from the live one observe found, so a steady stack
//! costs no write; the credentials Secret is created once (or adopted back); the migration Job is
//! created once the database is ready; superseded migration Jobs are deleted; the tuner's Events are
//! published. Returns what is live afterwards, for the status.
mod monitoring;

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::build::{APPLIED_DIGEST_ANNOTATION, Autoscaler, Desired};
use super::context::Context;
use super::error::{Error, Write, unless_gone};
use super::observe::{ExternalSecret, Observed, ObservedMigration, state_of};
use super::tune::TuningDecision;
use crate::children::{STACK_LABEL, ValidatedStack, credentials, hpa, postgres};
use crate::crd::MigrationStatus;

/// Server-side apply parameters for every child. One field manager owns everything the operator
/// writes; `force` takes fields back from whoever changed them by hand, since the stack's spec is the
/// source of truth (fields the operator does not set, like replicas under an HPA, stay untouched).
pub fn apply_params() -> PatchParams {
    PatchParams::apply(crate::MANAGER).force()
}

/// What is live after the apply step (the children whose state the status reports).
#[derive(Clone, Debug, Default)]
pub struct Applied {
    /// The PostgreSQL StatefulSet (bundled database only).
    pub postgres: Option<StatefulSet>,
    /// The Redis Deployment (bundled cache only).
    pub redis: Option<Deployment>,
    /// The API Deployment; None until an image has been migrated.
    pub api: Option<Deployment>,
    /// The migration of the desired image (None: migrations disabled).
    pub migration: Option<MigrationStatus>,
}

/// Writes what differs between `desired` and `observed`, in dependency order.
pub async fn apply(
    ctx: &Context,
    stack: &ValidatedStack,
    observed: &Observed,
    desired: &Desired,
    decision: &TuningDecision,
) -> Result<Applied, Error> {
    let children = Writer {
        ctx,
        namespace: &stack.namespace,
    };
    let mut applied = Applied::default();
    if let Some((service, set)) = &desired.postgres {
        ensure_credentials(&ctx.api(&stack.namespace), stack, observed.credentials.as_ref()).await?;
        children
            .write(service, observed.postgres_service.as_ref())
            .await?;
        applied.postgres = children.write(set, observed.postgres.as_ref()).await?;
    }
    if let Some((service, deployment)) = &desired.redis {
        children.write(service, observed.redis_service.as_ref()).await?;
        applied.redis = children.write(deployment, observed.redis.as_ref()).await?;
    }
    children
        .write(&desired.app_config, observed.app_config.as_ref())
        .await?;
    children
        .write(&desired.tuning_config, observed.tuning_config.as_ref())
        .await?;
    // The database as it is after this pass's writes: a StatefulSet applied ready starts the Job now.
    let database_ready = match (&applied.postgres, observed.external_database) {
        (_, Some(found)) => found == ExternalSecret::Ready,
        (Some(set), None) => postgres::is_ready(set),
        (None, None) => false,
    };
    if let (Some(job), Some(migration)) = (&desired.migration, &observed.migration) {
        applied.migration = Some(migrate(&children, stack, job, migration, database_ready).await?);
    }
    applied.api = match &desired.api {
        Some(api) => children.write(api, observed.api.as_ref()).await?,
        None => observed.api.clone(),
    };
    children
        .write(&desired.api_service, observed.api_service.as_ref())
        .await?;
    write_hpa(&children, stack, desired.hpa.as_ref(), observed.hpa.as_ref()).await?;
    monitoring::write(
        &children,
        stack,
        desired.monitoring.as_ref(),
        observed.monitoring.as_ref(),
    )
    .await?;
    for event in &decision.events {
        ctx.events
            .publish(&stack.object_ref, event.reason, &event.note, event.warning)
            .await;
    }
    Ok(applied)
}

/// Writes the children of one stack's namespace.
struct Writer<'a> {
    ctx: &'a Context,
    namespace: &'a str,
}

impl Writer<'_> {
    /// Applies `desired` unless `live` already carries its digest; returns the live object either
    /// way (what the API server answered, or `live`).
    async fn write<K>(&self, desired: &K, live: Option<&K>) -> Result<Option<K>, Error>
    where
        K: k8s_openapi::Resource
            + Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Serialize
            + DeserializeOwned
            + Clone
            + Debug,
    {
        if let Some(live) = live
            && digest(live) == digest(desired)
        {
            return Ok(Some(live.clone()));
        }
        apply_object(&self.ctx.api(self.namespace), K::KIND, desired)
            .await
            .map(Some)
    }
}

/// Creates the migration Job once the database is ready (it is immutable: an existing one is only
/// read), and deletes the Jobs a newly succeeded one superseded. Returns where it stands now.
async fn migrate(
    children: &Writer<'_>,
    stack: &ValidatedStack,
    job: &Job,
    migration: &ObservedMigration,
    database_ready: bool,
) -> Result<MigrationStatus, Error> {
    let mut status = migration.status.clone();
    if !migration.job_exists() && database_ready {
        children.ctx.events.migration_started(stack, &status.job).await;
        if let Some(created) = children.write(job, None).await? {
            status.state = state_of(&created);
        }
    }
    delete_jobs(&children.ctx.api(children.namespace), &migration.superseded).await?;
    Ok(status)
}

/// Applies the HPA (in the version the cluster serves) when its digest changed.
async fn write_hpa(
    children: &Writer<'_>,
    stack: &ValidatedStack,
    desired: Option<&Autoscaler>,
    live: Option<&DynamicObject>,
) -> Result<(), Error> {
    let live = live.and_then(digest);
    match desired {
        Some(Autoscaler::V2(hpa)) if digest(hpa.as_ref()) != live => {
            children.write(hpa.as_ref(), None).await?;
        }
        Some(Autoscaler::V2beta2(hpa)) if digest(hpa.as_ref()) != live => {
            let resource = hpa::v2beta2_resource();
            let hpas = Api::namespaced_with(children.ctx.client.clone(), &stack.namespace, &resource);
            apply_object(&hpas, "HorizontalPodAutoscaler", hpa.as_ref()).await?;
        }
        _ => {}
    }
    Ok(())
}

/// Server-side applies `desired` (a `kind`) and returns what the API server answered.
async fn apply_object<K>(api: &Api<K>, kind: &'static str, desired: &K) -> Result<K, Error>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
{
    let name = desired.name_any();
    tracing::info!(kind, name, "applying child");
    api.patch(&name, &apply_params(), &Patch::Apply(desired))
        .await
        .map_err(|source| Error::Apply {
            write: Write::Apply,
            kind,
            name,
            source,
        })
}

fn digest<K: Resource>(object: &K) -> Option<&String> {
    object.annotations().get(APPLIED_DIGEST_ANNOTATION)
}

/// Deletes the migration Jobs of earlier images (their pods go with them).
async fn delete_jobs(jobs: &Api<Job>, names: &[String]) -> Result<(), Error> {
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    for name in names {
        if delete_child(jobs, "Job", name, &params).await? {
            tracing::info!(job = name, "deleted superseded migration Job");
        }
    }
    Ok(())
}

/// Deletes the child `name` (a `kind`); false when it was gone already, which counts as deleted.
async fn delete_child<K>(
    api: &Api<K>,
    kind: &'static str,
    name: &str,
    params: &DeleteParams,
) -> Result<bool, Error>
where
    K: Resource + DeserializeOwned + Clone + Debug,
{
    let deleted = unless_gone(api.delete(name, params).await).map_err(|source| Error::Apply {
        write: Write::Delete,
        kind,
        name: name.to_owned(),
        source,
    })?;
    Ok(deleted.is_some())
}

/// Creates the credentials Secret if it does not exist. An existing one is never rewritten; one kept
/// by `deletionPolicy: Retain` has no owner, and the stack of the same name takes it back (owner
/// reference only: its data is never touched).
async fn ensure_credentials(
    secrets: &Api<Secret>,
    stack: &ValidatedStack,
    existing: Option<&Secret>,
) -> Result<(), Error> {
    let name = stack.names().credentials();
    let refused = |source| Error::Apply {
        write: Write::Apply,
        kind: "Secret",
        name: name.clone(),
        source,
    };
    if let Some(existing) = existing {
        let orphan = existing.owner_references().is_empty();
        let ours = existing.labels().get(STACK_LABEL) == Some(&stack.name);
        if orphan && ours {
            tracing::info!(name, "adopting retained credentials Secret");
            let patch = serde_json::json!({ "metadata": { "ownerReferences": [stack.owner_reference()] } });
            secrets
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(refused)?;
        }
        return Ok(());
    }
    let secret = credentials::credentials_secret(stack, &credentials::generate_password());
    tracing::info!(name, "creating credentials Secret");
    let params = PostParams {
        field_manager: Some(crate::MANAGER.into()),
        ..PostParams::default()
    };
    match secrets.create(&params, &secret).await {
        Ok(_) => Ok(()),
        // Created concurrently (e.g. by a previous leader): the existing one wins.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(source) => Err(refused(source)),
    }
}
