//! The data volumes of the bundled PostgreSQL and Redis, and the one-replica StatefulSets that carry
//! their claim templates (one PersistentVolumeClaim per StatefulSet, `data-<stack>-<component>-0`). These claims hold the
//! stack's data, so they never get an owner reference: no garbage-collection path can take them
//! (docs/operator.md, "Deleting a stack").
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSpec, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::ValidatedStack;

/// Name of the claim template (and the volume in the pod).
pub const DATA_VOLUME: &str = "data";

/// What the spec asks of a component's data volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeSpec {
    /// The size, a quantity (`10Gi`).
    pub size: String,
    /// The StorageClass; the cluster's default when `None`.
    pub class: Option<String>,
    /// Annotations the claim is created with (what the data was created by).
    pub annotations: BTreeMap<String, String>,
}

/// The name of the claim the StatefulSet `set` makes for its only pod.
pub fn claim_name(set: &str) -> String {
    format!("{DATA_VOLUME}-{set}-0")
}

/// The one-replica StatefulSet `name` of the pod that plays `component` (`pod`, mounting
/// [`DATA_VOLUME`]), its data on the claim `volume` asks for; `live` is the StatefulSet as it exists,
/// whose claim template is kept.
pub fn statefulset(
    stack: &ValidatedStack,
    name: String,
    component: &str,
    pod: PodSpec,
    volume: &VolumeSpec,
    live: Option<&StatefulSet>,
) -> StatefulSet {
    StatefulSet {
        metadata: stack.child_meta(name.clone(), component),
        spec: Some(StatefulSetSpec {
            replicas: Some(1),
            service_name: Some(name),
            selector: super::pod::selector(stack, component),
            template: super::pod::template(stack, component, pod),
            volume_claim_templates: Some(claim_templates(live, || claim_template(stack, component, volume))),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

/// The claim template of a new StatefulSet of `component`, from the spec.
pub fn claim_template(stack: &ValidatedStack, component: &str, volume: &VolumeSpec) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(DATA_VOLUME.into()),
            labels: Some(stack.labels(component)),
            annotations: (!volume.annotations.is_empty()).then(|| volume.annotations.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: volume.class.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".into(),
                    Quantity(volume.size.clone()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

/// The claim templates a StatefulSet keeps: the live ones once it exists (the API server refuses
/// any change of them, so a changed size or class is carried out on the claim itself, see
/// `controller/storage.rs`), else a new one from the spec. A live template is kept as the operator
/// wrote it (the fields it sets, not those the API server added), so that an unchanged StatefulSet
/// renders as it did and is not written again.
pub fn claim_templates(
    live: Option<&StatefulSet>,
    new: impl FnOnce() -> PersistentVolumeClaim,
) -> Vec<PersistentVolumeClaim> {
    let kept = live
        .and_then(|set| set.spec.as_ref())
        .and_then(|spec| spec.volume_claim_templates.as_ref())
        .filter(|templates| !templates.is_empty());
    match kept {
        Some(templates) => templates.iter().map(as_written).collect(),
        None => vec![new()],
    }
}

/// The fields of a live claim template the builders set.
fn as_written(live: &PersistentVolumeClaim) -> PersistentVolumeClaim {
    let spec = live.spec.clone().unwrap_or_default();
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: live.metadata.name.clone(),
            labels: live.metadata.labels.clone(),
            annotations: live.metadata.annotations.clone(),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: spec.access_modes,
            storage_class_name: spec.storage_class_name,
            resources: Some(VolumeResourceRequirements {
                requests: spec.resources.and_then(|r| r.requests),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}
