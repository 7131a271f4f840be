//! Apply: bring every child of a validated stack to its desired state and return what is live.
//!
//! Writes happen only when a child is missing or its desired content changed (tracked by a digest
//! annotation), so a steady stack costs reads and no writes.
use std::fmt::Debug;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::migrate::{MigrationState, ensure_migration};
use super::{AutoscalingApi, Context, Error};
use crate::build::config::{TuningFile, app_config_map, tuning_config_map};
use crate::build::{CacheSource, DatabaseSource, ValidatedStack, app, credentials, hpa, postgres, redis};

/// Annotation holding the digest of the content the operator last applied to a child.
pub const APPLIED_DIGEST_ANNOTATION: &str = "perfstack.dev/applied-digest";

/// Server-side apply parameters for every child. One field manager owns everything the operator
/// writes; `force` takes fields back from whoever changed them by hand, since the stack's spec is the
/// source of truth (fields the operator does not set, like replicas under an HPA, stay untouched).
pub fn apply_params() -> PatchParams {
    PatchParams::apply(crate::MANAGER).force()
}

/// What the operator found of a Secret the user references (it reads key names, never values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExternalSecret {
    /// The Secret exists and holds the key.
    Ready,
    /// The Secret exists without the key.
    MissingKey,
    /// No such Secret.
    Missing,
}

async fn check_external_secret(
    secrets: &Api<Secret>,
    name: &str,
    key: &str,
) -> Result<ExternalSecret, Error> {
    Ok(match get_child(secrets, "Secret", name).await? {
        None => ExternalSecret::Missing,
        Some(secret) => {
            let in_data = secret.data.as_ref().is_some_and(|d| d.contains_key(key));
            let in_string_data = secret.string_data.as_ref().is_some_and(|d| d.contains_key(key));
            if in_data || in_string_data {
                ExternalSecret::Ready
            } else {
                ExternalSecret::MissingKey
            }
        }
    })
}

/// What is live after the apply step; status is computed from this alone.
#[derive(Clone, Debug, Default)]
pub struct Applied {
    /// The PostgreSQL StatefulSet (bundled database only).
    pub postgres: Option<StatefulSet>,
    /// The user's database Secret (external database only).
    pub external_database_secret: Option<ExternalSecret>,
    /// The Redis Deployment (bundled cache only).
    pub redis: Option<Deployment>,
    /// The user's cache Secret (external cache only).
    pub external_cache_secret: Option<ExternalSecret>,
    /// The migration of the desired image.
    pub migration: Option<MigrationState>,
    /// The API Deployment; None until an image has been migrated.
    pub api: Option<Deployment>,
    /// Which autoscaling API the HPA was written with.
    pub autoscaling: AutoscalingApi,
}

fn digest_of<K: Serialize>(object: &K) -> Result<String, Error> {
    let bytes = serde_json::to_vec(object).map_err(Error::Serialize)?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// `desired` with the digest annotation of its content set, as the operator applies it.
pub fn with_applied_digest<K: Resource + Serialize>(mut desired: K) -> Result<K, Error> {
    let digest = digest_of(&desired)?;
    desired
        .annotations_mut()
        .insert(APPLIED_DIGEST_ANNOTATION.into(), digest);
    Ok(desired)
}

/// Applies `desired` unless `live` already carries the same digest; returns the live object.
pub async fn apply_child<K>(api: &Api<K>, kind: &'static str, desired: K, live: Option<K>) -> Result<K, Error>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
{
    let name = desired.name_any();
    let desired = with_applied_digest(desired)?;
    if let Some(live) = live
        && live.annotations().get(APPLIED_DIGEST_ANNOTATION)
            == desired.annotations().get(APPLIED_DIGEST_ANNOTATION)
    {
        return Ok(live);
    }
    tracing::info!(kind, name, "applying child");
    api.patch(&name, &apply_params(), &Patch::Apply(&desired))
        .await
        .map_err(|source| Error::Apply { kind, name, source })
}

/// Reads a child, `None` when it does not exist.
pub async fn get_child<K>(api: &Api<K>, kind: &'static str, name: &str) -> Result<Option<K>, Error>
where
    K: Resource + DeserializeOwned + Clone + Debug,
{
    api.get_opt(name).await.map_err(|source| Error::Read {
        kind,
        name: name.to_owned(),
        source,
    })
}

/// Reads then applies a child.
pub async fn ensure<K>(api: &Api<K>, kind: &'static str, desired: K) -> Result<K, Error>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
{
    let live = get_child(api, kind, &desired.name_any()).await?;
    apply_child(api, kind, desired, live).await
}

/// Applies every child of `stack`. `previous_migration` is the MigrationsApplied message already in
/// status, so a finished migration's summary is not read again.
pub async fn apply_all(
    stack: &ValidatedStack,
    ctx: &Context,
    previous_migration: Option<&str>,
) -> Result<Applied, Error> {
    let client = ctx.client.clone();
    let ns = stack.namespace.as_str();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let mut applied = Applied {
        autoscaling: ctx.autoscaling.clone(),
        ..Applied::default()
    };

    match &stack.database {
        DatabaseSource::Bundled => {
            ensure_credentials(&secrets, stack).await?;
            ensure(&services, "Service", postgres::service(stack)).await?;
            let sets: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
            applied.postgres = Some(ensure(&sets, "StatefulSet", postgres::statefulset(stack)).await?);
        }
        DatabaseSource::External { secret, key } => {
            applied.external_database_secret = Some(check_external_secret(&secrets, secret, key).await?);
        }
    }
    match &stack.cache {
        CacheSource::Bundled => {
            ensure(&services, "Service", redis::service(stack)).await?;
            applied.redis = Some(ensure(&deployments, "Deployment", redis::deployment(stack)).await?);
        }
        CacheSource::External { secret, key } => {
            applied.external_cache_secret = Some(check_external_secret(&secrets, secret, key).await?);
        }
        CacheSource::Disabled => {}
    }
    ensure(&config_maps, "ConfigMap", app_config_map(stack)).await?;
    ensure_tuning_config_map(stack, &config_maps).await?;

    let live_api = get_child(&deployments, "Deployment", &stack.names().api()).await?;
    let database_ready = match (&applied.postgres, applied.external_database_secret) {
        (_, Some(found)) => found == ExternalSecret::Ready,
        (Some(set), None) => set.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0) >= 1,
        (None, None) => false,
    };
    let migration = if stack.spec.migrations.enabled {
        Some(ensure_migration(stack, ctx, previous_migration, database_ready).await?)
    } else {
        None
    };
    let image = rollout_image(
        migration.as_ref(),
        &stack.app_image,
        live_api.as_ref().and_then(running_image),
    );
    applied.migration = Some(migration.unwrap_or(MigrationState::Disabled));
    if let Some(image) = image {
        let replicas = api_replicas(&ctx.autoscaling, stack.spec.app.min_replicas);
        let desired = app::deployment(stack, &image, replicas);
        applied.api = Some(apply_child(&deployments, "Deployment", desired, live_api).await?);
    }
    ensure(&services, "Service", app::service(stack)).await?;
    ensure_hpa(stack, ctx).await?;
    Ok(applied)
}

/// Applies the tuning ConfigMap (pool settings the app reloads live).
async fn ensure_tuning_config_map(stack: &ValidatedStack, config_maps: &Api<ConfigMap>) -> Result<(), Error> {
    let tuning = tuning_config_map(stack, &TuningFile::from_spec(stack)).map_err(Error::TuningFile)?;
    ensure(config_maps, "ConfigMap", tuning).await?;
    Ok(())
}

/// Applies the HPA with the autoscaling API the cluster serves (none when it serves neither).
async fn ensure_hpa(stack: &ValidatedStack, ctx: &Context) -> Result<(), Error> {
    let client = ctx.client.clone();
    let ns = stack.namespace.as_str();
    match &ctx.autoscaling {
        AutoscalingApi::V2 => {
            let hpas: Api<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler> =
                Api::namespaced(client, ns);
            ensure(&hpas, "HorizontalPodAutoscaler", hpa::hpa(stack)).await?;
        }
        AutoscalingApi::V2beta2 => {
            let hpas: Api<kube::api::DynamicObject> =
                Api::namespaced_with(client, ns, &hpa::v2beta2_resource());
            ensure(&hpas, "HorizontalPodAutoscaler", hpa::hpa_v2beta2(stack)).await?;
        }
        AutoscalingApi::Unavailable => {}
    }
    Ok(())
}

/// Applies the two children the tuner changes between reconciles: the tuning ConfigMap and the HPA.
pub async fn apply_tuned(stack: &ValidatedStack, ctx: &Context) -> Result<(), Error> {
    let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &stack.namespace);
    ensure_tuning_config_map(stack, &config_maps).await?;
    ensure_hpa(stack, ctx).await
}

/// The image the API Deployment should run: the desired one once its migration succeeded (or when
/// migrations are off); until then the image it runs now, or none (no Deployment yet) on a new stack.
pub fn rollout_image(
    migration: Option<&MigrationState>,
    desired: &str,
    running: Option<String>,
) -> Option<String> {
    match migration {
        None | Some(MigrationState::Succeeded { .. }) => Some(desired.to_owned()),
        Some(_) => running,
    }
}

/// The replicas the operator writes into the API Deployment: none while an HPA owns the count.
pub fn api_replicas(autoscaling: &AutoscalingApi, min_replicas: i32) -> Option<i32> {
    match autoscaling {
        AutoscalingApi::Unavailable => Some(min_replicas),
        AutoscalingApi::V2 | AutoscalingApi::V2beta2 => None,
    }
}

/// The image of the API container in a live Deployment.
pub fn running_image(deployment: &Deployment) -> Option<String> {
    deployment
        .spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .iter()
        .find(|c| c.name == app::CONTAINER)?
        .image
        .clone()
}

/// A credentials Secret kept by `deletionPolicy: Retain` has no owner; the stack of the same name that
/// finds it takes it back (owner reference only: its data is never touched).
async fn adopt_retained_credentials(
    secrets: &Api<Secret>,
    stack: &ValidatedStack,
    existing: &Secret,
) -> Result<(), Error> {
    let orphan = existing.owner_references().is_empty();
    let ours = existing.labels().get(crate::build::STACK_LABEL) == Some(&stack.name);
    if !(orphan && ours) {
        return Ok(());
    }
    let name = existing.name_any();
    tracing::info!(name, "adopting retained credentials Secret");
    let patch = serde_json::json!({ "metadata": { "ownerReferences": [stack.owner_reference()] } });
    secrets
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| Error::Apply {
            kind: "Secret",
            name,
            source,
        })?;
    Ok(())
}

/// Creates the credentials Secret if it does not exist. An existing one is never rewritten.
async fn ensure_credentials(secrets: &Api<Secret>, stack: &ValidatedStack) -> Result<(), Error> {
    let name = stack.names().credentials();
    if let Some(existing) = get_child(secrets, "Secret", &name).await? {
        return adopt_retained_credentials(secrets, stack, &existing).await;
    }
    let secret = credentials::credentials_secret(stack, &credentials::generate_password());
    tracing::info!(name, "creating credentials Secret");
    match secrets
        .create(
            &PostParams {
                field_manager: Some(crate::MANAGER.into()),
                ..PostParams::default()
            },
            &secret,
        )
        .await
    {
        Ok(_) => Ok(()),
        // Created concurrently (e.g. by a previous leader): the existing one wins.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(source) => Err(Error::Apply {
            kind: "Secret",
            name,
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_image_waits_for_its_migration() {
        let running = || Some("app:1".to_owned());
        let job = || "shop-migrate-1".to_owned();
        let succeeded = MigrationState::Succeeded {
            job: job(),
            summary: None,
        };
        assert_eq!(
            rollout_image(Some(&succeeded), "app:2", running()).as_deref(),
            Some("app:2")
        );
        assert_eq!(rollout_image(None, "app:2", running()).as_deref(), Some("app:2"));
        for pending in [
            MigrationState::WaitingForDatabase { job: job() },
            MigrationState::Running { job: job() },
            MigrationState::Failed {
                job: job(),
                message: None,
            },
        ] {
            assert_eq!(
                rollout_image(Some(&pending), "app:2", running()).as_deref(),
                Some("app:1")
            );
            assert_eq!(
                rollout_image(Some(&pending), "app:2", None),
                None,
                "no Deployment before the first migration"
            );
        }
    }

    #[test]
    fn replicas_are_left_to_the_autoscaler_when_there_is_one() {
        assert_eq!(api_replicas(&AutoscalingApi::V2, 3), None);
        assert_eq!(api_replicas(&AutoscalingApi::V2beta2, 3), None);
        assert_eq!(api_replicas(&AutoscalingApi::Unavailable, 3), Some(3));
    }
}
