//! Apply (step 5): every write a reconcile makes, and nothing else. Each desired child is written with
//! server-side apply only when its digest differs from the live one observe found, so a steady stack
//! costs no write; the credentials Secret is created once (or adopted back); the migration Job is
//! created once the database is ready; superseded migration Jobs are deleted; the tuner's Events are
//! published. Returns what is live afterwards, for the status.
use std::fmt::Debug;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::build::{APPLIED_DIGEST_ANNOTATION, Autoscaler, Desired};
use super::context::Context;
use super::error::{Error, Write};
use super::observe::{ExternalSecret, Observed, state_of};
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

fn namespaced<K>(client: &Client, stack: &ValidatedStack) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    Api::namespaced(client.clone(), &stack.namespace)
}

/// Writes what differs between `desired` and `observed`, in dependency order.
pub async fn apply(
    ctx: &Context,
    stack: &ValidatedStack,
    observed: &Observed,
    desired: &Desired,
    decision: &TuningDecision,
) -> Result<Applied, Error> {
    let client = &ctx.client;
    let services: Api<Service> = namespaced(client, stack);
    let deployments: Api<Deployment> = namespaced(client, stack);
    let config_maps: Api<ConfigMap> = namespaced(client, stack);
    let mut applied = Applied::default();

    if let Some((service, set)) = &desired.postgres {
        ensure_credentials(&namespaced(client, stack), stack, observed.credentials.as_ref()).await?;
        write(&services, "Service", service, observed.postgres_service.as_ref()).await?;
        let sets: Api<StatefulSet> = namespaced(client, stack);
        applied.postgres = write(&sets, "StatefulSet", set, observed.postgres.as_ref()).await?;
    }
    if let Some((service, deployment)) = &desired.redis {
        write(&services, "Service", service, observed.redis_service.as_ref()).await?;
        applied.redis = write(&deployments, "Deployment", deployment, observed.redis.as_ref()).await?;
    }
    write(
        &config_maps,
        "ConfigMap",
        &desired.app_config,
        observed.app_config.as_ref(),
    )
    .await?;
    write(
        &config_maps,
        "ConfigMap",
        &desired.tuning_config,
        observed.tuning_config.as_ref(),
    )
    .await?;
    // The database as it is after this pass's writes: a StatefulSet applied ready starts the Job now.
    let database_ready = match (&applied.postgres, observed.external_database) {
        (_, Some(found)) => found == ExternalSecret::Ready,
        (Some(set), None) => postgres::is_ready(set),
        (None, None) => false,
    };
    applied.migration = match (&desired.migration, &observed.migration) {
        (Some(job), Some(migration)) => {
            let mut status = migration.status.clone();
            if !migration.job_exists() && database_ready {
                ctx.events.migration_started(stack, &status.job).await;
                let jobs: Api<Job> = namespaced(client, stack);
                if let Some(created) = write(&jobs, "Job", job, None).await? {
                    status.state = state_of(&created);
                }
            }
            delete_jobs(&namespaced(client, stack), &migration.superseded).await?;
            Some(status)
        }
        _ => None,
    };
    applied.api = match &desired.api {
        Some(api) => write(&deployments, "Deployment", api, observed.api.as_ref()).await?,
        None => observed.api.clone(),
    };
    write(
        &services,
        "Service",
        &desired.api_service,
        observed.api_service.as_ref(),
    )
    .await?;
    write_hpa(client, stack, desired.hpa.as_ref(), observed.hpa.as_ref()).await?;
    for event in &decision.events {
        ctx.events
            .publish(&stack.object_ref, event.reason, &event.note, event.warning)
            .await;
    }
    Ok(applied)
}

/// Applies `desired` unless `live` already carries its digest; returns the live object either way
/// (what the API server answered, or `live`).
async fn write<K>(api: &Api<K>, kind: &'static str, desired: &K, live: Option<&K>) -> Result<Option<K>, Error>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
{
    if let Some(live) = live
        && digest(live) == digest(desired)
    {
        return Ok(Some(live.clone()));
    }
    let name = desired.name_any();
    tracing::info!(kind, name, "applying child");
    api.patch(&name, &apply_params(), &Patch::Apply(desired))
        .await
        .map(Some)
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

/// Applies the HPA in the version the cluster serves.
async fn write_hpa(
    client: &Client,
    stack: &ValidatedStack,
    desired: Option<&Autoscaler>,
    live: Option<&DynamicObject>,
) -> Result<(), Error> {
    const KIND: &str = "HorizontalPodAutoscaler";
    let live = live.and_then(digest);
    match desired {
        Some(Autoscaler::V2(hpa)) if digest(hpa.as_ref()) != live => {
            let hpas: Api<HorizontalPodAutoscaler> = namespaced(client, stack);
            write(&hpas, KIND, hpa.as_ref(), None).await?;
        }
        Some(Autoscaler::V2beta2(hpa)) if digest(hpa.as_ref()) != live => {
            let hpas: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), &stack.namespace, &hpa::v2beta2_resource());
            write(&hpas, KIND, hpa.as_ref(), None).await?;
        }
        _ => {}
    }
    Ok(())
}

/// Deletes the migration Jobs of earlier images (their pods go with them).
async fn delete_jobs(jobs: &Api<Job>, names: &[String]) -> Result<(), Error> {
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    for name in names {
        match jobs.delete(name, &params).await {
            Ok(_) => tracing::info!(job = name, "deleted superseded migration Job"),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(source) => {
                return Err(Error::Apply {
                    write: Write::Delete,
                    kind: "Job",
                    name: name.clone(),
                    source,
                });
            }
        }
    }
    Ok(())
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
