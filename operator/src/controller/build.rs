//! Build (step 4): the desired children, pure — the validated stack, the tuner's decision and what
//! observe found (the migration's progress, the image the API runs, the StatefulSets' claim
//! templates, which cannot change) in, each child rendered once with the digest annotation the apply
//! step compares out. The credentials Secret is the exception: apply builds it only when it is
//! missing, with a fresh password.
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::DynamicObject;
use kube::{Resource, ResourceExt};
use perfstack_contract::tuning::TuningFile;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::context::AutoscalingApi;
use super::error::Error;
use super::observe::{Observed, ObservedMigration, ObservedMonitoring};
use super::tune::TuningDecision;
use crate::children::hpa::ReplicaRange;
use crate::children::{
    CacheSource, DatabaseSource, ValidatedStack, app, config, hex_prefix, hpa, migration, monitoring,
    postgres, redis, tuning,
};
use crate::crd::MigrationState;
use crate::tuner::{Settings, from_crd};

/// Annotation holding the digest of the content the operator last applied to a child.
pub const APPLIED_DIGEST_ANNOTATION: &str = "perfstack.dev/applied-digest";

/// The HPA in the autoscaling version the cluster serves (boxed: both objects are large).
#[derive(Clone, Debug)]
pub enum Autoscaler {
    /// autoscaling/v2.
    V2(Box<HorizontalPodAutoscaler>),
    /// autoscaling/v2beta2.
    V2beta2(Box<DynamicObject>),
}

/// Every child the stack should have, as the operator applies them.
#[derive(Clone, Debug)]
pub struct Desired {
    /// PostgreSQL's headless Service and StatefulSet (bundled database).
    pub postgres: Option<(Service, StatefulSet)>,
    /// Redis' Service and StatefulSet (bundled cache).
    pub redis: Option<(Service, StatefulSet)>,
    /// The API's configuration ConfigMap.
    pub app_config: ConfigMap,
    /// The tuning ConfigMap with the decided pool.
    pub tuning_config: ConfigMap,
    /// The migration Job of the desired image (migrations enabled).
    pub migration: Option<Job>,
    /// The API Deployment, once an image may run (see [`rollout_image`]).
    pub api: Option<Deployment>,
    /// The API Service.
    pub api_service: Service,
    /// The HPA with the decided replica bounds (none when the cluster serves no autoscaling API).
    pub hpa: Option<Autoscaler>,
    /// The PodMonitor and the PrometheusRule (monitoring on, and the cluster serves their kinds).
    pub monitoring: Option<Monitors>,
}

/// The Prometheus Operator objects of a stack.
#[derive(Clone, Debug)]
pub struct Monitors {
    /// Scrapes the API pods.
    pub pod_monitor: DynamicObject,
    /// The SLO alerts.
    pub rule: DynamicObject,
}

/// Renders every desired child of `stack`.
pub fn build(
    stack: &ValidatedStack,
    decision: &TuningDecision,
    observed: &Observed,
) -> Result<Desired, Error> {
    let postgres = match stack.database {
        DatabaseSource::Bundled => Some((
            digested(postgres::service(stack))?,
            digested(postgres::statefulset(stack, observed.postgres.as_ref()))?,
        )),
        DatabaseSource::External { .. } => None,
    };
    let redis = match stack.cache {
        CacheSource::Bundled => Some((
            digested(redis::service(stack))?,
            digested(redis::statefulset(stack, observed.redis.as_ref()))?,
        )),
        CacheSource::External { .. } | CacheSource::Disabled => None,
    };
    let migration = match stack.spec.migrations.enabled {
        true => Some(digested(migration::job(stack))?),
        false => None,
    };
    let running = observed.api.as_ref().and_then(running_image);
    let api = match rollout_image(observed.migration.as_ref(), &stack.app_image, running) {
        Some(image) => {
            let replicas = api_replicas(observed.autoscaling, stack.spec.app.min_replicas);
            Some(digested(app::deployment(stack, &image, replicas))?)
        }
        None => None,
    };
    let replicas = replica_range(&decision.settings);
    let hpa = match observed.autoscaling {
        AutoscalingApi::V2 => Some(Autoscaler::V2(Box::new(digested(hpa::hpa(stack, replicas))?))),
        AutoscalingApi::V2beta2 => Some(Autoscaler::V2beta2(Box::new(digested(hpa::hpa_v2beta2(
            stack, replicas,
        ))?))),
        AutoscalingApi::Unavailable => None,
    };
    let file = tuning_file(stack, &decision.settings);
    let monitoring = match observed.monitoring {
        Some(ObservedMonitoring::Served { .. }) => Some(Monitors {
            pod_monitor: digested(monitoring::pod_monitor(stack))?,
            rule: digested(monitoring::prometheus_rule(stack))?,
        }),
        _ => None,
    };
    Ok(Desired {
        postgres,
        redis,
        app_config: digested(config::app_config_map(stack, &file.pool))?,
        tuning_config: digested(tuning::tuning_config_map(stack, &file))?,
        migration,
        api,
        api_service: digested(app::service(stack))?,
        hpa,
        monitoring,
    })
}

/// The tuning file carrying the decided pool, with `spec.pool`'s timeouts.
pub fn tuning_file(stack: &ValidatedStack, settings: &Settings) -> TuningFile {
    settings.tuning_file(&from_crd::pool_settings(&stack.spec))
}

/// The decided HPA bounds in Kubernetes' integers (the one place they are converted).
pub fn replica_range(settings: &Settings) -> ReplicaRange {
    let to_i32 = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    ReplicaRange {
        min: to_i32(settings.hpa_min),
        max: to_i32(settings.hpa_max),
    }
}

/// `child` with the digest annotation of its content set, as the operator applies it.
pub fn digested<K: Resource + Serialize>(mut child: K) -> Result<K, Error> {
    let bytes = serde_json::to_vec(&child).map_err(|source| Error::Build {
        kind: std::any::type_name::<K>().rsplit("::").next().unwrap_or("child"),
        name: child.name_any(),
        source,
    })?;
    let digest = hex_prefix(&Sha256::digest(&bytes), 8);
    child
        .annotations_mut()
        .insert(APPLIED_DIGEST_ANNOTATION.into(), digest);
    Ok(child)
}

/// The image the API Deployment should run: the desired one once its migration succeeded (or when
/// migrations are off); until then the image it runs now, or none (no Deployment yet) on a new stack.
pub fn rollout_image(
    migration: Option<&ObservedMigration>,
    desired: &str,
    running: Option<String>,
) -> Option<String> {
    match migration.map(|m| m.status.state) {
        None | Some(MigrationState::Succeeded) => Some(desired.to_owned()),
        Some(_) => running,
    }
}

/// The replicas the operator writes into the API Deployment: none while an HPA owns the count.
pub fn api_replicas(autoscaling: AutoscalingApi, min_replicas: i32) -> Option<i32> {
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

#[cfg(test)]
mod tests;
