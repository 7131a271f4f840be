//! Observe (step 2): every read a reconcile makes, before anything is written — the credentials or
//! the user's Secrets, each live child, the migration Job (and, once it finished, what its pod
//! reported), and, when the tuning interval is due, the API pods' `/metrics`. The children the
//! operator labels come from the stores its watches keep ([`super::watched`]), a GET only while a
//! store has not listed them yet; the user's Secrets, the monitoring objects and pods are asked for.
mod migration;
mod monitoring;

use std::fmt::Debug;
use std::time::Instant;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret, Service};
use kube::Resource;
use kube::api::{Api, DynamicObject};
use perfstack_contract::probes::DEFAULT_HTTP_PORT;
use serde::de::DeserializeOwned;

use super::context::{AutoscalingApi, Context};
use super::error::Error;
use super::watched::WatchedKind;
use crate::children::{CacheSource, DatabaseSource, ValidatedStack, app, credentials, hpa, volume};
use crate::controller::status::conditions::{MONITORING, condition_is_true};
use crate::crd::StackStatus;
use crate::tuner::TunerError;
use crate::tuner::targets::{AppPods, Scraped};

pub use migration::{ObservedMigration, state_of};
pub use monitoring::ObservedMonitoring;

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

/// Everything a reconcile read, as it was before this reconcile wrote anything. `None`: absent (or
/// not part of this stack's configuration).
#[derive(Debug, Default)]
pub struct Observed {
    /// The generated credentials Secret (bundled database).
    pub credentials: Option<Secret>,
    /// The user's database Secret (external database only).
    pub external_database: Option<ExternalSecret>,
    /// The user's cache Secret (external cache only).
    pub external_cache: Option<ExternalSecret>,
    /// The PostgreSQL headless Service (bundled database).
    pub postgres_service: Option<Service>,
    /// The PostgreSQL StatefulSet (bundled database).
    pub postgres: Option<StatefulSet>,
    /// The Redis Service (bundled cache).
    pub redis_service: Option<Service>,
    /// The Redis StatefulSet (bundled cache).
    pub redis: Option<StatefulSet>,
    /// The Redis Deployment operators before the StatefulSet created (its data was on an
    /// `emptyDir`); the apply step deletes it once the StatefulSet exists.
    pub superseded_redis: Option<Deployment>,
    /// The data volumes' claims (PostgreSQL's, then Redis'), as they exist: `(name, claim)`.
    pub claims: Vec<(String, Option<PersistentVolumeClaim>)>,
    /// The API's configuration ConfigMap.
    pub app_config: Option<ConfigMap>,
    /// The tuning ConfigMap (also what a restarted tuner picks its pool up from).
    pub tuning_config: Option<ConfigMap>,
    /// The stack's status as this reconcile found it: a finished migration's outcome, the tuner's
    /// settings in force (what a restarted tuner picks its HPA bounds up from), the volumes'
    /// refused expansions (not retried for the same size).
    pub recorded: StackStatus,
    /// The API Deployment; absent until an image has been migrated.
    pub api: Option<Deployment>,
    /// The migration of the desired image (migrations enabled only).
    pub migration: Option<ObservedMigration>,
    /// The API Service.
    pub api_service: Option<Service>,
    /// The HPA, in whichever autoscaling version the cluster serves.
    pub hpa: Option<DynamicObject>,
    /// The autoscaling API the cluster serves.
    pub autoscaling: AutoscalingApi,
    /// The API pods' answers when the tuning interval was due (`Err`: they could not be listed).
    pub app_metrics: Option<Result<Scraped, TunerError>>,
    /// The PodMonitor and PrometheusRule (`None`: monitoring off, nothing to retire).
    pub monitoring: Option<ObservedMonitoring>,
}

/// Reads an object with a GET, `None` when it does not exist.
async fn get<K>(api: &Api<K>, kind: &'static str, name: &str) -> Result<Option<K>, Error>
where
    K: Resource + DeserializeOwned + Clone + Debug,
{
    api.get_opt(name).await.map_err(Error::observing(kind, name))
}

/// Reads the child `name` from its watched store, or with a GET while the store is not synced.
async fn read<K>(ctx: &Context, ns: &str, kind: &'static str, name: &str) -> Result<Option<K>, Error>
where
    K: WatchedKind + Clone + Debug,
{
    match ctx.watched.read(ns, name) {
        Some(found) => Ok(found),
        None => get(&ctx.api(ns), kind, name).await,
    }
}

/// Reads everything the reconcile of `stack` needs. `recorded` is the stack's status as it was: a
/// finished migration Job's outcome is taken from there instead of its pods, and a restarted tuner
/// its settings in force; it also says whether monitoring objects were created before.
pub async fn observe(
    ctx: &Context,
    stack: &ValidatedStack,
    recorded: Option<&StackStatus>,
) -> Result<Observed, Error> {
    let ns = &stack.namespace;
    let names = stack.names();
    let secrets: Api<Secret> = ctx.api(ns);
    ctx.watched.synced(ns).await;
    let mut observed = Observed {
        autoscaling: ctx.autoscaling,
        recorded: recorded.cloned().unwrap_or_default(),
        ..Observed::default()
    };
    if credentials::needed(stack) {
        // The one child the operator creates instead of applying (its passwords are generated
        // once): one the store does not hold yet is looked for with a GET before it is created.
        let name = names.credentials();
        observed.credentials = match ctx.watched.read(ns, &name) {
            Some(Some(secret)) => Some(secret),
            Some(None) | None => get(&secrets, "Secret", &name).await?,
        };
    }
    match &stack.database {
        DatabaseSource::Bundled => {
            let postgres = data_set(ctx, ns, names.postgres()).await?;
            (observed.postgres_service, observed.postgres) = (postgres.service, postgres.set);
            observed.claims.push(postgres.claim);
        }
        DatabaseSource::External { secret, key } => {
            observed.external_database = Some(external_secret(&secrets, secret, key).await?);
        }
    }
    match &stack.cache {
        CacheSource::Bundled => {
            let redis = data_set(ctx, ns, names.redis()).await?;
            (observed.redis_service, observed.redis) = (redis.service, redis.set);
            observed.claims.push(redis.claim);
            observed.superseded_redis = read(ctx, ns, "Deployment", &names.redis()).await?;
        }
        CacheSource::External { secret, key } => {
            observed.external_cache = Some(external_secret(&secrets, secret, key).await?);
        }
        CacheSource::Disabled => {}
    }
    observed.app_config = read(ctx, ns, "ConfigMap", &names.config()).await?;
    observed.tuning_config = read(ctx, ns, "ConfigMap", &names.tuning()).await?;
    observed.api = read(ctx, ns, "Deployment", &names.api()).await?;
    if stack.spec.migrations.enabled {
        let migration = recorded.and_then(|s| s.migration.as_ref());
        observed.migration = Some(migration::observe(ctx, stack, migration).await?);
    }
    observed.api_service = read(ctx, ns, "Service", &names.api()).await?;
    observed.hpa = live_hpa(ctx, stack).await?;
    let monitored_before = recorded.is_some_and(|s| condition_is_true(&s.conditions, MONITORING));
    observed.monitoring = monitoring::observe(ctx, stack, monitored_before).await?;
    // The tuner ticks only once the API Deployment exists (before, there are no pods to ask), and
    // never while the stack is paused (it is frozen).
    if let Some(tuning) = &ctx.tuning
        && observed.api.is_some()
        && stack.paused.is_none()
        && tuning
            .registry
            .wants_metrics(&stack.key(), &stack.spec, Instant::now())
    {
        let pods = AppPods {
            api: ctx.api::<Pod>(ns),
            selector: selector_text(stack),
            port: u16::try_from(stack.spec.app.port).unwrap_or(DEFAULT_HTTP_PORT),
            reach: tuning.reach,
        };
        observed.app_metrics = Some(pods.scrape(&tuning.source).await);
    }
    Ok(observed)
}

/// A bundled component as it exists: its Service, its StatefulSet and its data claim.
struct DataSet {
    service: Option<Service>,
    set: Option<StatefulSet>,
    claim: (String, Option<PersistentVolumeClaim>),
}

/// Reads the Service and StatefulSet `name` and the StatefulSet's data claim.
async fn data_set(ctx: &Context, ns: &str, name: String) -> Result<DataSet, Error> {
    let service = read(ctx, ns, "Service", &name).await?;
    let set = read(ctx, ns, "StatefulSet", &name).await?;
    let claim = volume::claim_name(&name);
    let found = read(ctx, ns, "PersistentVolumeClaim", &claim).await?;
    Ok(DataSet {
        service,
        set,
        claim: (claim, found),
    })
}

/// The live HPA, of the version the cluster serves: from its store, or read as a dynamic object.
async fn live_hpa(ctx: &Context, stack: &ValidatedStack) -> Result<Option<DynamicObject>, Error> {
    let resource = match ctx.autoscaling {
        AutoscalingApi::V2 => hpa::v2_resource(),
        AutoscalingApi::V2beta2 => hpa::v2beta2_resource(),
        AutoscalingApi::Unavailable => return Ok(None),
    };
    let name = stack.names().api();
    if let Some(found) = ctx.watched.read_hpa(&stack.namespace, &name) {
        return Ok(found);
    }
    let hpas: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &stack.namespace, &resource);
    get(&hpas, "HorizontalPodAutoscaler", &name).await
}

/// Whether the user's Secret `name` exists and holds `key` (a GET: the user's Secrets are not watched).
async fn external_secret(secrets: &Api<Secret>, name: &str, key: &str) -> Result<ExternalSecret, Error> {
    Ok(match get(secrets, "Secret", name).await? {
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

/// The API pods' label selector as text (`k=v,k=v`).
fn selector_text(stack: &ValidatedStack) -> String {
    stack
        .selector_labels(app::COMPONENT)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}
