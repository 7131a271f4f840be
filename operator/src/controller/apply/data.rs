//! The writes that touch a stack's data: the credentials Secret, the data volumes' claims, and the
//! Redis Deployment the StatefulSet replaced. None of the data-bearing objects ever gets an owner
//! reference (so no garbage collection can take them, whatever way the stack is deleted); a stack
//! created again under the same name finds them by name and uses them as they are.
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use super::{Writer, apply_params, delete};
use crate::children::{STACK_LABEL, ValidatedStack, credentials, postgres, redis, volume};
use crate::controller::error::{Error, Write};
use crate::controller::observe::Observed;
use crate::controller::storage::{self, Resize};
use crate::crd::VolumeStatus;

impl Writer<'_> {
    /// Creates the credentials Secret if it does not exist. An existing one is never rewritten; an
    /// owner reference to a stack (set by operators before this one) is taken off it, so that it
    /// survives every way of deleting the stack.
    pub(super) async fn credentials(&mut self, stack: &ValidatedStack, existing: Option<&Secret>) {
        let secrets: Api<Secret> = self.ctx.api(self.namespace);
        let name = stack.names().credentials();
        let refused = |source| Error::Apply {
            write: Write::Apply,
            kind: "Secret",
            name: name.clone(),
            source,
        };
        let wanted = credentials::credentials_data(stack, &mut credentials::generate_password);
        if let Some(existing) = existing {
            if existing.labels().get(STACK_LABEL) == Some(&stack.name) {
                let result = disown(&secrets, existing).await.map_err(refused);
                self.keep(result);
            }
            // Keys the stack needs and the Secret lacks (a newer operator, auth turned on) are
            // added once; existing values never change.
            let missing = credentials::missing(existing, wanted);
            if !missing.is_empty() {
                let keys: Vec<&String> = missing.keys().collect();
                tracing::info!(name, ?keys, "adding generated keys to the credentials Secret");
                let patch = json!({ "stringData": missing });
                let result = secrets
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| ())
                    .map_err(refused);
                self.keep(result);
            }
            return;
        }
        let secret = credentials::credentials_secret(stack, wanted);
        tracing::info!(name, "creating credentials Secret");
        let params = PostParams {
            field_manager: Some(crate::MANAGER.into()),
            ..PostParams::default()
        };
        match secrets.create(&params, &secret).await {
            Ok(_) => {}
            // Created concurrently (e.g. by a previous leader): the existing one wins.
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(source) => self.refused.push(refused(source)),
        }
    }

    /// Deletes the Redis Deployment operators before the StatefulSet created, once the StatefulSet
    /// exists (the Service then selects the StatefulSet's pod only).
    pub(super) async fn retire_redis_deployment(&mut self, stack: &ValidatedStack, old: Option<&Deployment>) {
        let Some(old) = old.filter(|d| d.labels().get(STACK_LABEL) == Some(&stack.name)) else {
            return;
        };
        let deployments: Api<Deployment> = self.ctx.api(self.namespace);
        let deleted = delete(&deployments, "Deployment", &old.name_any()).await;
        if self.keep(deleted).flatten().is_some() {
            tracing::info!(
                name = old.name_any(),
                "deleted the Redis Deployment the StatefulSet replaces"
            );
        }
    }

    /// Carries out a change of the data volumes' size on their claims (`storage.rs` decides); an
    /// expansion the API server refuses is a volume state, not a failed reconcile.
    pub(super) async fn volumes(&mut self, stack: &ValidatedStack, observed: &Observed) -> Vec<VolumeStatus> {
        let claims: Api<PersistentVolumeClaim> = self.ctx.api(self.namespace);
        let mut volumes = Vec::new();
        for (name, status, resize) in plans(stack, observed) {
            let Resize::Expand(size) = resize else {
                volumes.push(status);
                continue;
            };
            tracing::info!(claim = name, size, "expanding volume");
            let patch = json!({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
                "spec": {"resources": {"requests": {"storage": size}}},
            });
            match claims.patch(&name, &apply_params(), &Patch::Apply(&patch)).await {
                Ok(_) => volumes.push(status),
                // Refused by admission (the StorageClass does not allow expansion) or validation.
                Err(kube::Error::Api(refusal)) if matches!(refusal.code, 403 | 422) => {
                    tracing::warn!(claim = name, reason = refusal.message, "volume expansion refused");
                    volumes.push(storage::refused(status, &refusal.message));
                }
                Err(source) => {
                    self.refused.push(Error::Apply {
                        write: Write::Apply,
                        kind: "PersistentVolumeClaim",
                        name,
                        source,
                    });
                    volumes.push(status);
                }
            }
        }
        volumes
    }
}

/// Where each data volume stands, with nothing written (a paused stack).
pub(super) fn volume_states(stack: &ValidatedStack, observed: &Observed) -> Vec<VolumeStatus> {
    plans(stack, observed)
        .into_iter()
        .map(|(_, status, _)| status)
        .collect()
}

/// Each observed claim, where it stands against the spec and what to write (`storage.rs`).
fn plans(stack: &ValidatedStack, observed: &Observed) -> Vec<(String, VolumeStatus, Resize)> {
    let names = stack.names();
    let wanted = [
        (volume::claim_name(&names.postgres()), postgres::volume(stack)),
        (volume::claim_name(&names.redis()), redis::volume(stack)),
    ];
    observed
        .claims
        .iter()
        .filter_map(|(name, claim)| {
            let (_, wanted) = wanted.iter().find(|(n, _)| n == name)?;
            let recorded = observed.recorded.volumes.iter().find(|v| &v.claim == name);
            let (status, resize) = storage::plan(name, wanted, claim.as_ref(), recorded);
            Some((name.clone(), status, resize))
        })
        .collect()
}

/// Takes owner references to a PerformanceStack off `secret` (a Secret without any is left alone).
async fn disown(secrets: &Api<Secret>, secret: &Secret) -> Result<(), kube::Error> {
    let Some(patch) = credentials::disowning_patch(secret) else {
        return Ok(());
    };
    tracing::info!(
        name = secret.name_any(),
        "taking the stack's owner reference off the credentials Secret"
    );
    secrets
        .patch(&secret.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}
