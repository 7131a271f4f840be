//! Storage: what a change of `storageSize` or `storageClassName` means for a data volume, pure.
//!
//! A StatefulSet's claim templates cannot change (the API server refuses the whole StatefulSet), so
//! the builders keep the live templates and the change is carried out on the claim itself: a larger
//! size is asked of the claim (the API server's `PersistentVolumeClaimResize` admission lets it
//! through when the claim's StorageClass allows expansion, and refuses it otherwise); a smaller size
//! or another class cannot be carried out at all. Each outcome is a [`VolumeState`] in
//! `status.volumes` and the `Storage` condition, never a failed reconcile: the rest of the stack
//! goes on (image rollouts, tuning, the HPA).
use k8s_openapi::api::core::v1::PersistentVolumeClaim;

use crate::children::volume::VolumeSpec;
use crate::crd::quantity;
use crate::crd::{VolumeState, VolumeStatus};

/// What the apply step should do with a claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resize {
    /// Nothing.
    Keep,
    /// Ask for this size (an expansion).
    Expand(String),
}

/// Where the claim `name` stands against `wanted`, and what to write. `claim` is the claim as it
/// exists; `recorded` is the volume as the stack's status last showed it (an expansion the API server
/// refused is not asked again for the same size).
pub fn plan(
    name: &str,
    wanted: &VolumeSpec,
    claim: Option<&PersistentVolumeClaim>,
    recorded: Option<&VolumeStatus>,
) -> (VolumeStatus, Resize) {
    let status = |state, capacity: Option<String>, message: Option<String>| VolumeStatus {
        claim: name.to_owned(),
        size: wanted.size.clone(),
        capacity,
        state,
        message,
    };
    let Some(claim) = claim else {
        return (status(VolumeState::Pending, None, None), Resize::Keep);
    };
    let spec = claim.spec.clone().unwrap_or_default();
    let claim_status = claim.status.clone().unwrap_or_default();
    let size_of = |map: Option<
        &std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >| { map.and_then(|m| m.get("storage")).map(|q| q.0.clone()) };
    let requested = size_of(spec.resources.as_ref().and_then(|r| r.requests.as_ref()));
    let capacity = size_of(claim_status.capacity.as_ref());
    let bound = claim_status.phase.as_deref() == Some("Bound");
    if let Some(class) = &wanted.class
        && spec.storage_class_name.as_ref() != Some(class)
    {
        let message = format!(
            "storageClassName is {class} but claim {name} was created with {}; a claim's class cannot change: \
             move the data (pg_dump/pg_restore, or a Redis dump) to a stack created with the new class",
            spec.storage_class_name
                .as_deref()
                .unwrap_or("the cluster default")
        );
        return (
            status(VolumeState::ClassImmutable, capacity, Some(message)),
            Resize::Keep,
        );
    }
    let value = |q: &Option<String>| q.as_deref().and_then(quantity::parse);
    let (wanted_bytes, requested_bytes) = (quantity::parse(&wanted.size), value(&requested));
    match (wanted_bytes, requested_bytes) {
        (Some(w), Some(r)) if w < r => {
            let message = format!(
                "storageSize {} is smaller than claim {name}'s {}; volumes cannot shrink",
                wanted.size,
                requested.unwrap_or_default()
            );
            (
                status(VolumeState::ShrinkRefused, capacity, Some(message)),
                Resize::Keep,
            )
        }
        (Some(w), Some(r)) if w > r => {
            if let Some(refused) = recorded.filter(|v| {
                v.claim == name && v.size == wanted.size && v.state == VolumeState::ExpansionRefused
            }) {
                return (
                    status(VolumeState::ExpansionRefused, capacity, refused.message.clone()),
                    Resize::Keep,
                );
            }
            if !bound {
                return (status(VolumeState::Pending, capacity, None), Resize::Keep);
            }
            (
                status(VolumeState::Expanding, capacity, None),
                Resize::Expand(wanted.size.clone()),
            )
        }
        _ if !bound => (status(VolumeState::Pending, capacity, None), Resize::Keep),
        _ if value(&capacity).zip(requested_bytes).is_some_and(|(c, r)| c < r) => {
            (status(VolumeState::Expanding, capacity, None), Resize::Keep)
        }
        _ => (status(VolumeState::AsSpecified, capacity, None), Resize::Keep),
    }
}

/// The volume after the API server refused to expand it (`why`, in its words).
pub fn refused(mut volume: VolumeStatus, why: &str) -> VolumeStatus {
    volume.state = VolumeState::ExpansionRefused;
    volume.message = Some(format!(
        "the API server refused to expand claim {} to {}: {why} (its StorageClass must allow volume expansion)",
        volume.claim, volume.size
    ));
    volume
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::{
        PersistentVolumeClaimSpec, PersistentVolumeClaimStatus, VolumeResourceRequirements,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    use super::*;

    fn wanted(size: &str, class: Option<&str>) -> VolumeSpec {
        VolumeSpec {
            size: size.into(),
            class: class.map(Into::into),
            annotations: BTreeMap::new(),
        }
    }

    fn claim(requested: &str, capacity: &str, phase: &str) -> PersistentVolumeClaim {
        let storage = |q: &str| Some(BTreeMap::from([("storage".to_owned(), Quantity(q.into()))]));
        PersistentVolumeClaim {
            spec: Some(PersistentVolumeClaimSpec {
                storage_class_name: Some("standard".into()),
                resources: Some(VolumeResourceRequirements {
                    requests: storage(requested),
                    ..VolumeResourceRequirements::default()
                }),
                ..PersistentVolumeClaimSpec::default()
            }),
            status: Some(PersistentVolumeClaimStatus {
                phase: Some(phase.into()),
                capacity: (!capacity.is_empty()).then(|| storage(capacity)).flatten(),
                ..PersistentVolumeClaimStatus::default()
            }),
            ..PersistentVolumeClaim::default()
        }
    }

    fn state(size: &str, class: Option<&str>, live: &PersistentVolumeClaim) -> (VolumeState, Resize) {
        let (status, resize) = plan("data-shop-postgres-0", &wanted(size, class), Some(live), None);
        (status.state, resize)
    }

    #[test]
    fn a_larger_size_expands_a_bound_claim_and_waits_for_an_unbound_one() {
        let bound = claim("10Gi", "10Gi", "Bound");
        assert_eq!(
            state("10Gi", None, &bound),
            (VolumeState::AsSpecified, Resize::Keep)
        );
        assert_eq!(
            state("20Gi", Some("standard"), &bound),
            (VolumeState::Expanding, Resize::Expand("20Gi".into()))
        );
        assert_eq!(
            state("20Gi", None, &claim("10Gi", "", "Pending")),
            (VolumeState::Pending, Resize::Keep)
        );
        assert_eq!(
            state("20Gi", None, &claim("20Gi", "10Gi", "Bound")),
            (VolumeState::Expanding, Resize::Keep),
            "asked already: waits for the volume to grow"
        );
        assert_eq!(
            state("10240Mi", None, &bound),
            (VolumeState::AsSpecified, Resize::Keep),
            "sizes compare by value"
        );
    }

    #[test]
    fn what_cannot_be_carried_out_says_why_and_writes_nothing() {
        let bound = claim("10Gi", "10Gi", "Bound");
        let (status, resize) = plan("c", &wanted("5Gi", None), Some(&bound), None);
        assert_eq!((status.state, resize), (VolumeState::ShrinkRefused, Resize::Keep));
        assert!(status.message.unwrap().contains("volumes cannot shrink"));
        let (status, resize) = plan("c", &wanted("20Gi", Some("fast")), Some(&bound), None);
        assert_eq!(
            (status.state, resize),
            (VolumeState::ClassImmutable, Resize::Keep)
        );
        assert!(status.message.unwrap().contains("created with standard"));
        let refusal = refused(
            plan("c", &wanted("20Gi", None), Some(&bound), None).0,
            "forbidden",
        );
        assert_eq!(refusal.state, VolumeState::ExpansionRefused);
        let (again, resize) = plan("c", &wanted("20Gi", None), Some(&bound), Some(&refusal));
        assert_eq!(
            (again.state, resize, again.message),
            (
                VolumeState::ExpansionRefused,
                Resize::Keep,
                refusal.message.clone()
            ),
            "a refused size is not asked again"
        );
        let (other, resize) = plan("c", &wanted("30Gi", None), Some(&bound), Some(&refusal));
        assert_eq!(
            (other.state, resize),
            (VolumeState::Expanding, Resize::Expand("30Gi".into())),
            "another size is"
        );
    }
}
