//! The children as the controller's watches last saw them: one store per watched kind, fed by the
//! same watch streams that trigger reconciles (`run.rs` hands each stream to both), so that observe
//! reads a child from memory instead of sending a GET per child per reconcile. A store keeps each
//! child as the JSON text of what [`lean`] leaves of it ([`TextStore`]): at 200 bundled stacks that is
//! ~5 MB where kube's reflector stores of typed objects held ~25 MB.
//!
//! Only the kinds the operator labels itself are here (the watches select the operator's label), so
//! a child missing from a synced store does not exist (or its creation has not reached the watch yet:
//! the apply step writes with server-side apply, which is the same write whether the child exists or
//! not). A store answers only once its first list is complete: a reconcile waits for that a short
//! while, and reads what is still not listed then with GETs, so that a starting operator never takes
//! a child it has not listed yet for a missing one.
mod store;

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use kube::Resource;
use kube::api::{ApiResource, DynamicObject, TypeMeta};
use serde::de::DeserializeOwned;

pub use store::{TextStore, TextWriter, text_store};

/// How long a read waits for a store's first list before it sends a GET instead.
const SYNC_WAIT: Duration = Duration::from_secs(10);

/// The stores of every scope the operator watches (one per controller: a namespace, or all).
#[derive(Clone)]
pub struct WatchedChildren {
    scopes: Vec<(Option<String>, ChildStores)>,
    /// How long [`Self::synced`] waits.
    sync_wait: Duration,
}

impl Default for WatchedChildren {
    fn default() -> Self {
        Self {
            scopes: Vec::new(),
            sync_wait: SYNC_WAIT,
        }
    }
}

impl WatchedChildren {
    /// No stores: every read is a GET.
    pub fn none() -> Self {
        Self::default()
    }

    /// Adds the stores of the controller watching `namespace` (`None`: every namespace).
    pub fn add_scope(&mut self, namespace: Option<String>, stores: ChildStores) {
        self.scopes.push((namespace, stores));
    }

    /// The same stores, [`Self::synced`] waiting `wait` at most (tests: a store that never syncs).
    #[cfg(test)]
    pub fn with_sync_wait(mut self, wait: Duration) -> Self {
        self.sync_wait = wait;
        self
    }

    /// The stores that hold the children in `namespace`, if one of the scopes covers it.
    fn covering(&self, namespace: &str) -> Option<&ChildStores> {
        self.scopes
            .iter()
            .find(|(scope, _)| scope.as_deref().is_none_or(|ns| ns == namespace))
            .map(|(_, stores)| stores)
    }

    /// Waits (a short while at most) until every store covering `namespace` listed its kind once; a
    /// reconcile asks once, before its reads, so a store that is late costs one wait, not one per read.
    pub async fn synced(&self, namespace: &str) {
        let Some(stores) = self.covering(namespace) else {
            return;
        };
        if tokio::time::timeout(self.sync_wait, stores.all_ready())
            .await
            .is_err()
        {
            tracing::debug!(namespace, "child stores not synced yet; reading with GETs");
        }
    }

    /// The child `name` of kind `K` in `namespace` as its synced store holds it (`Some(None)`:
    /// absent), or `None` when no synced store answers (the caller sends a GET).
    pub fn read<K: WatchedKind>(&self, namespace: &str, name: &str) -> Option<Option<K>> {
        K::store(self.covering(namespace)?).get(namespace, name)
    }

    /// The HorizontalPodAutoscaler `name` in `namespace`, as [`Self::read`] does for typed kinds. A
    /// dynamic object listed by a watch lacks `apiVersion` and `kind` (list items do not repeat them):
    /// they are set again, as a GET would return them, since drift compares them with the desired HPA.
    pub fn read_hpa(&self, namespace: &str, name: &str) -> Option<Option<DynamicObject>> {
        let (store, resource) = self.covering(namespace)?.hpas.as_ref()?;
        let found = store.get(namespace, name)?;
        Some(found.map(|mut hpa| {
            hpa.types.get_or_insert_with(|| TypeMeta {
                api_version: resource.api_version.clone(),
                kind: resource.kind.clone(),
            });
            hpa
        }))
    }
}

/// One scope's stores, a reader per watched kind (the writers go to the watch streams).
#[derive(Clone)]
pub struct ChildStores {
    secrets: TextStore<Secret>,
    claims: TextStore<PersistentVolumeClaim>,
    config_maps: TextStore<ConfigMap>,
    services: TextStore<Service>,
    stateful_sets: TextStore<StatefulSet>,
    deployments: TextStore<Deployment>,
    jobs: TextStore<Job>,
    /// The HPAs, in the autoscaling version the cluster serves (`None`: it serves none).
    hpas: Option<(TextStore<DynamicObject>, ApiResource)>,
}

/// The writing halves of one scope's [`ChildStores`]: each is fed by its watch (`run.rs`).
pub struct ChildWriters {
    pub secrets: TextWriter<Secret>,
    pub claims: TextWriter<PersistentVolumeClaim>,
    pub config_maps: TextWriter<ConfigMap>,
    pub services: TextWriter<Service>,
    pub stateful_sets: TextWriter<StatefulSet>,
    pub deployments: TextWriter<Deployment>,
    pub jobs: TextWriter<Job>,
    pub hpas: Option<(TextWriter<DynamicObject>, ApiResource)>,
}

impl ChildStores {
    /// Empty stores and their writers; `hpa`: the autoscaling resource the cluster serves.
    pub fn new(hpa: Option<ApiResource>) -> (Self, ChildWriters) {
        let (secrets, secrets_w) = text_store();
        let (claims, claims_w) = text_store();
        let (config_maps, config_maps_w) = text_store();
        let (services, services_w) = text_store();
        let (stateful_sets, stateful_sets_w) = text_store();
        let (deployments, deployments_w) = text_store();
        let (jobs, jobs_w) = text_store();
        let hpa = hpa.map(|resource| {
            let (store, writer) = text_store();
            ((store, resource.clone()), (writer, resource))
        });
        let (hpas, hpas_w) = hpa.unzip();
        let stores = Self {
            secrets,
            claims,
            config_maps,
            services,
            stateful_sets,
            deployments,
            jobs,
            hpas,
        };
        let writers = ChildWriters {
            secrets: secrets_w,
            claims: claims_w,
            config_maps: config_maps_w,
            services: services_w,
            stateful_sets: stateful_sets_w,
            deployments: deployments_w,
            jobs: jobs_w,
            hpas: hpas_w,
        };
        (stores, writers)
    }
}

impl ChildStores {
    /// Resolves once every store listed its kind (or lost its writer: its reads then go to GETs).
    async fn all_ready(&self) {
        futures::join!(
            self.secrets.listed(),
            self.claims.listed(),
            self.config_maps.listed(),
            self.services.listed(),
            self.stateful_sets.listed(),
            self.deployments.listed(),
            self.jobs.listed(),
        );
        if let Some((hpas, _)) = &self.hpas {
            hpas.listed().await;
        }
    }
}

/// A kind of child kept in a store of [`ChildStores`].
pub trait WatchedKind:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope> + DeserializeOwned + 'static
{
    /// Its store.
    fn store(stores: &ChildStores) -> &TextStore<Self>;
}

macro_rules! watched_kind {
    ($($kind:ty => $field:ident),* $(,)?) => {
        $(impl WatchedKind for $kind {
            fn store(stores: &ChildStores) -> &TextStore<Self> {
                &stores.$field
            }
        })*
    };
}

watched_kind! {
    Secret => secrets,
    PersistentVolumeClaim => claims,
    ConfigMap => config_maps,
    Service => services,
    StatefulSet => stateful_sets,
    Deployment => deployments,
    Job => jobs,
}

/// What a store keeps of a watched child: its `metadata.managedFields` without the operator's own
/// entry and without entries that own only `status` (the largest parts of an applied object; drift
/// reads only other managers' entries, and only where they own a field the operator sets, never status).
pub fn lean<K: Resource>(object: &mut K) {
    if let Some(entries) = object.meta_mut().managed_fields.as_mut() {
        entries.retain(|entry| {
            let ours = entry.manager.as_deref() == Some(crate::MANAGER);
            let beyond_status = entry
                .fields_v1
                .as_ref()
                .and_then(|fields| fields.0.as_object())
                .is_some_and(|top| top.keys().any(|key| key != "f:status" && key != "."));
            !ours && beyond_status
        });
    }
}

/// What the controller keeps of a watched stack: everything but `metadata.managedFields`, which
/// nothing reads.
pub fn lean_stack(stack: &mut crate::crd::PerformanceStack) {
    stack.metadata.managed_fields = None;
}

/// What a store keeps of a watched Secret: [`lean`], and its key names with empty values (the
/// operator reads which keys its credentials Secret has, never the values, so they stay out of its
/// memory).
pub fn lean_secret(secret: &mut Secret) {
    lean(secret);
    for value in secret.data.iter_mut().flat_map(|data| data.values_mut()) {
        value.0.clear();
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::ByteString;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};
    use serde_json::json;

    use super::*;

    fn entry(manager: &str, fields: serde_json::Value) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.into()),
            fields_v1: Some(FieldsV1(fields)),
            ..ManagedFieldsEntry::default()
        }
    }

    #[test]
    fn a_stored_child_keeps_only_other_managers_entries_beyond_status() {
        let mut config = ConfigMap::default();
        config.metadata.managed_fields = Some(vec![
            entry(crate::MANAGER, json!({"f:data": {"f:key": {}}})),
            entry("kubectl-edit", json!({"f:data": {"f:key": {}}})),
            entry("kube-controller-manager", json!({"f:status": {"f:replicas": {}}})),
            entry("kubectl-label", json!({".": {}, "f:metadata": {"f:labels": {}}})),
        ]);
        lean(&mut config);
        let managers: Vec<_> = config
            .metadata
            .managed_fields
            .iter()
            .flatten()
            .map(|e| e.manager.clone().unwrap_or_default())
            .collect();
        assert_eq!(managers, ["kubectl-edit", "kubectl-label"]);
    }

    #[test]
    fn a_stored_secret_keeps_its_key_names_and_no_value() {
        let mut secret = Secret {
            data: Some([("password".to_owned(), ByteString(b"s3cret".to_vec()))].into()),
            ..Secret::default()
        };
        lean_secret(&mut secret);
        let data = secret.data.unwrap_or_default();
        assert_eq!(data.keys().collect::<Vec<_>>(), ["password"]);
        assert!(data.values().all(|v| v.0.is_empty()));
    }
}
