//! Apply (step 5): every write a reconcile makes, and nothing else. Each desired child is written with
//! server-side apply only when it drifted from the live one observe found (`drift.rs`: another digest,
//! a field another manager took over, a field removed), so a steady stack costs no write and a hand
//! edit is reverted; the data-bearing objects (credentials, volumes) are handled in [`data`], the PodMonitor and
//! PrometheusRule of `spec.monitoring` in [`monitoring`]; the
//! migration Job is created once the database is ready; superseded migration Jobs are deleted; the
//! tuner's Events are published.
//!
//! A write the API server refuses does not stop the others: every child is tried, and the refusals
//! are returned with what is live, for the status to show all of them (the reconcile then fails and
//! is retried with backoff).
mod data;
mod monitoring;

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PropagationPolicy};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::build::{Autoscaler, Desired};
use super::context::Context;
use super::drift::drift;
use super::error::{Error, Write, unless_gone};
use super::observe::{ExternalSecret, Observed, ObservedMigration, state_of};
use super::tune::TuningDecision;
use crate::children::{ValidatedStack, hpa, pod};
use crate::crd::{MigrationStatus, VolumeStatus};

/// Server-side apply parameters for every child. One field manager owns everything the operator
/// writes; `force` takes fields back from whoever changed them by hand, since the stack's spec is the
/// source of truth (fields the operator does not set, like replicas under an HPA, stay untouched).
pub fn apply_params() -> PatchParams {
    PatchParams::apply(crate::MANAGER).force()
}

/// What is live after the apply step (the children whose state the status reports).
#[derive(Debug, Default)]
pub struct Applied {
    /// The PostgreSQL StatefulSet (bundled database only).
    pub postgres: Option<StatefulSet>,
    /// The Redis StatefulSet (bundled cache only).
    pub redis: Option<StatefulSet>,
    /// The API Deployment; None until an image has been migrated.
    pub api: Option<Deployment>,
    /// The migration of the desired image (None: migrations disabled).
    pub migration: Option<MigrationStatus>,
    /// The data volumes after this pass (`status.volumes`, the `Storage` condition).
    pub volumes: Vec<VolumeStatus>,
    /// The writes the API server refused (the others went ahead).
    pub refused: Vec<Error>,
}

impl Applied {
    /// What is live when nothing is written (a paused stack): the children as observed, the volumes
    /// as they stand.
    pub fn as_observed(stack: &ValidatedStack, observed: &Observed) -> Self {
        Self {
            postgres: observed.postgres.clone(),
            redis: observed.redis.clone(),
            api: observed.api.clone(),
            migration: observed.migration.as_ref().map(|m| m.status.clone()),
            volumes: data::volume_states(stack, observed),
            refused: Vec::new(),
        }
    }
}

/// Writes what differs between `desired` and `observed`, in dependency order, trying every child
/// even after a refusal.
pub async fn apply(
    ctx: &Context,
    stack: &ValidatedStack,
    observed: &Observed,
    desired: &Desired,
    decision: &TuningDecision,
) -> Applied {
    let mut w = Writer {
        ctx,
        namespace: &stack.namespace,
        refused: Vec::new(),
    };
    let mut applied = Applied::default();
    if crate::children::credentials::needed(stack) {
        w.credentials(stack, observed.credentials.as_ref()).await;
    }
    if let Some((service, set)) = &desired.postgres {
        w.write(service, observed.postgres_service.as_ref()).await;
        applied.postgres = w.write(set, observed.postgres.as_ref()).await;
    }
    if let Some((service, set)) = &desired.redis {
        w.write(service, observed.redis_service.as_ref()).await;
        applied.redis = w.write(set, observed.redis.as_ref()).await;
        if applied.redis.is_some() {
            w.retire_redis_deployment(stack, observed.superseded_redis.as_ref())
                .await;
        }
    }
    applied.volumes = w.volumes(stack, observed).await;
    // The HPA before the pool: a ceiling lowered to make room for a pool swap is in force before
    // any pod can see the new pool (the tuner raises a ceiling only once a swap is over).
    w.write_hpa(stack, desired.hpa.as_ref(), observed.hpa.as_ref())
        .await;
    w.write(&desired.app_config, observed.app_config.as_ref()).await;
    w.write(&desired.tuning_config, observed.tuning_config.as_ref())
        .await;
    // The database as it is after this pass's writes: a StatefulSet applied ready starts the Job now.
    let database_ready = match (&applied.postgres, observed.external_database) {
        (_, Some(found)) => found == ExternalSecret::Ready,
        (Some(set), None) => pod::is_ready(set),
        (None, None) => false,
    };
    if let (Some(job), Some(migration)) = (&desired.migration, &observed.migration) {
        applied.migration = Some(w.migrate(job, migration, database_ready).await);
    }
    applied.api = match &desired.api {
        Some(api) => w.write(api, observed.api.as_ref()).await,
        None => observed.api.clone(),
    };
    w.write(&desired.api_service, observed.api_service.as_ref()).await;
    w.monitoring(stack, desired.monitoring.as_ref(), observed.monitoring.as_ref())
        .await;
    for event in &decision.events {
        ctx.events
            .publish(&stack.object_ref, event.reason, &event.note, event.warning)
            .await;
    }
    applied.refused = w.refused;
    applied
}

/// Writes the children of one stack's namespace, keeping the refusals.
struct Writer<'a> {
    ctx: &'a Context,
    namespace: &'a str,
    refused: Vec<Error>,
}

impl Writer<'_> {
    /// Applies `desired` unless `live` is as the operator applied it; returns the live object
    /// either way (what the API server answered, or `live`; `live` also when the write was refused).
    async fn write<K>(&mut self, desired: &K, live: Option<&K>) -> Option<K>
    where
        K: k8s_openapi::Resource
            + Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Serialize
            + DeserializeOwned
            + Clone
            + Debug,
    {
        if !needs_apply(desired, live) {
            return live.cloned();
        }
        let api = self.ctx.api(self.namespace);
        match apply_object(&api, K::KIND, desired).await {
            Ok(applied) => Some(applied),
            Err(error) => {
                self.refused.push(error);
                live.cloned()
            }
        }
    }

    /// Keeps `result`'s error among the refusals; its value otherwise.
    fn keep<T>(&mut self, result: Result<T, Error>) -> Option<T> {
        result.map_err(|error| self.refused.push(error)).ok()
    }

    /// Creates the migration Job once the database is ready (it is immutable: an existing one is only
    /// read), and deletes the Jobs a newly succeeded one superseded. Returns where it stands now.
    async fn migrate(
        &mut self,
        job: &Job,
        migration: &ObservedMigration,
        database_ready: bool,
    ) -> MigrationStatus {
        let mut status = migration.status.clone();
        if !migration.job_exists()
            && database_ready
            && let Some(created) = self.write(job, None).await
        {
            status.state = state_of(&created);
        }
        let jobs: Api<Job> = self.ctx.api(self.namespace);
        for name in &migration.superseded {
            let deleted = delete(&jobs, "Job", name).await;
            if self.keep(deleted).flatten().is_some() {
                tracing::info!(job = name, "deleted superseded migration Job");
            }
        }
        status
    }

    /// Applies the HPA (in the version the cluster serves) when it drifted.
    async fn write_hpa(
        &mut self,
        stack: &ValidatedStack,
        desired: Option<&Autoscaler>,
        live: Option<&DynamicObject>,
    ) {
        match desired {
            Some(Autoscaler::V2(hpa)) if needs_apply(hpa.as_ref(), live) => {
                self.write(hpa.as_ref(), None).await;
            }
            Some(Autoscaler::V2beta2(hpa)) if needs_apply(hpa.as_ref(), live) => {
                let resource = hpa::v2beta2_resource();
                let hpas = Api::namespaced_with(self.ctx.client.clone(), &stack.namespace, &resource);
                let applied = apply_object(&hpas, "HorizontalPodAutoscaler", hpa.as_ref()).await;
                self.keep(applied);
            }
            _ => {}
        }
    }
}

/// Whether `desired` must be applied: nothing is live, or the live object drifted (logged with why).
fn needs_apply<D: Serialize + Resource, L: Serialize>(desired: &D, live: Option<&L>) -> bool {
    let Some(live) = live else { return true };
    let json = |value: serde_json::Result<serde_json::Value>| value.unwrap_or_default();
    let (want, have) = (
        json(serde_json::to_value(desired)),
        json(serde_json::to_value(live)),
    );
    match drift(&want, &have, crate::MANAGER) {
        None => false,
        Some(why) => {
            tracing::info!(name = desired.name_any(), %why, "child drifted");
            true
        }
    }
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

/// Deletes the `kind` `name` in the background (what it owns goes with it); `None` when it was gone.
async fn delete<K>(api: &Api<K>, kind: &'static str, name: &str) -> Result<Option<()>, Error>
where
    K: Resource + DeserializeOwned + Clone + Debug,
{
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    unless_gone(api.delete(name, &params).await)
        .map(|deleted| deleted.map(|_| ()))
        .map_err(|source| Error::Apply {
            write: Write::Delete,
            kind,
            name: name.to_owned(),
            source,
        })
}
