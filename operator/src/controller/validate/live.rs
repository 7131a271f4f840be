//! Validation against what exists: a spec that is valid on its own but that the stack's data
//! cannot follow. A PostgreSQL image of another major version than the one that created the data
//! directory would crash-loop on it, so it is refused, saying how to upgrade.
use crate::children::{ValidatedStack, postgres, volume};
use crate::controller::observe::Observed;

use super::{InvalidSpec, invalid};

/// Refuses `stack`'s spec when the data `observed` found cannot follow it.
pub fn against_live(stack: &ValidatedStack, observed: &Observed) -> Result<(), InvalidSpec> {
    let image = &stack.spec.database.bundled.image;
    let (Some(wanted), Some((created, by))) = (postgres::major_version(image), data_major(stack, observed))
    else {
        return Ok(());
    };
    if wanted == created {
        return Ok(());
    }
    Err(invalid(
        "spec.database.bundled.image",
        format!(
            "{image} is PostgreSQL {wanted}, but the data directory was created by PostgreSQL {created} ({by}); \
             a server cannot open another major version's data. Keep a {created} image, or upgrade: dump the \
             database (kubectl exec {set}-0 -- pg_dumpall -U perfstack > dump.sql), create a stack with the new \
             image and restore the dump into it (psql -f dump.sql), then delete this one (docs/operator.md)",
            set = stack.names().postgres(),
        ),
    ))
}

/// The PostgreSQL major version of the stack's data, and where that was read: the image the live
/// StatefulSet runs, else the annotation of a claim kept from an earlier stack of the same name.
fn data_major(stack: &ValidatedStack, observed: &Observed) -> Option<(u32, String)> {
    let running = observed
        .postgres
        .as_ref()
        .and_then(|set| set.spec.as_ref()?.template.spec.as_ref())
        .and_then(|pod| pod.containers.iter().find(|c| c.name == postgres::COMPONENT))
        .and_then(|container| container.image.clone());
    if let Some(image) = running {
        return postgres::major_version(&image).map(|major| (major, format!("StatefulSet image {image}")));
    }
    let claim = volume::claim_name(&stack.names().postgres());
    observed
        .claims
        .iter()
        .find(|(name, _)| *name == claim)
        .and_then(|(_, found)| {
            found
                .as_ref()?
                .metadata
                .annotations
                .as_ref()?
                .get(postgres::MAJOR_ANNOTATION)
        })
        .and_then(|major| major.parse().ok())
        .map(|major| (major, format!("claim {claim}")))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;
    use crate::crd::{PerformanceStack, PerformanceStackSpec};

    fn stack(image: &str) -> ValidatedStack {
        let mut spec = PerformanceStackSpec::default();
        spec.database.bundled.image = image.into();
        let mut stack = PerformanceStack::new("shop", spec);
        stack.metadata.namespace = Some("ns".into());
        stack.metadata.uid = Some("uid".into());
        super::super::validate(&stack).unwrap()
    }

    #[test]
    fn another_major_version_than_the_running_one_is_refused_saying_how_to_upgrade() {
        let observed = Observed {
            postgres: Some(postgres::statefulset(&stack("postgres:15-alpine"), None)),
            ..Observed::default()
        };
        assert!(
            against_live(&stack("postgres:15.8"), &observed).is_ok(),
            "a minor upgrade is fine"
        );
        let refused = against_live(&stack("postgres:16-alpine"), &observed).unwrap_err();
        assert_eq!(refused.field, "spec.database.bundled.image");
        assert!(
            refused
                .message
                .contains("created by PostgreSQL 15 (StatefulSet image postgres:15-alpine)")
                && refused.message.contains("pg_dumpall"),
            "{refused}"
        );
        assert!(
            against_live(&stack("postgres:latest"), &observed).is_ok(),
            "unknown: not refused"
        );
    }

    #[test]
    fn a_kept_claim_says_which_version_created_its_data() {
        let claim = PersistentVolumeClaim {
            metadata: ObjectMeta {
                annotations: Some([(postgres::MAJOR_ANNOTATION.to_owned(), "15".to_owned())].into()),
                ..ObjectMeta::default()
            },
            ..PersistentVolumeClaim::default()
        };
        let observed = Observed {
            claims: vec![("data-shop-postgres-0".into(), Some(claim))],
            ..Observed::default()
        };
        let refused = against_live(&stack("postgres:17"), &observed).unwrap_err();
        assert!(
            refused.message.contains("(claim data-shop-postgres-0)"),
            "{refused}"
        );
        assert!(
            against_live(&stack("postgres:15"), &Observed::default()).is_ok(),
            "new data"
        );
    }
}
