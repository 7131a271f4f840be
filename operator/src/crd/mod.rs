//! The `PerformanceStack` custom resource: what a user asks for (spec) and what the operator reports (status).
//!
//! Every `///` on a field becomes that field's description in the CRD, so they are written for users.
//! Spec parts for the deployed components live here; pool, SLO, tuning and data policies in
//! [`policy`]; what a Prometheus Operator gets in [`monitoring`]; the status in [`status`].
mod monitoring;
mod policy;
pub mod quantity;
mod status;

use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements};
use kube::{CustomResource, KubeSchema};
pub use monitoring::MonitoringSpec;
pub use policy::{DeletionPolicy, MigrationsSpec, PoolSpec, SloSpec, TuningMode, TuningSpec};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
pub use status::{
    DecisionRecord, MigrationState, MigrationStatus, ObservationSummary, Phase, StackStatus, TunedSettings,
    TuningStatus, VolumeState, VolumeStatus,
};

/// The API group of the custom resource.
pub const GROUP: &str = "perfstack.dev";
/// The served version of the custom resource.
pub const VERSION: &str = "v1alpha1";

/// A complete perfstack deployment: the API, its PostgreSQL database, its Redis cache, the database
/// migration, autoscaling and the connection-pool settings the tuner adjusts.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "perfstack.dev",
    version = "v1alpha1",
    kind = "PerformanceStack",
    plural = "performancestacks",
    shortname = "pstack",
    namespaced,
    status = "StackStatus",
    validation = Rule::new("size(self.metadata.name) <= 40").message("metadata.name must be at most 40 characters (child names append up to 19)"),
    doc = "A perfstack deployment: the API with its PostgreSQL database and Redis cache, migrated, autoscaled and with a tuned connection pool.",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase","description":"Lifecycle phase of the stack"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status","description":"Whether the whole stack serves traffic"}"#,
    printcolumn = r#"{"name":"P95","type":"string","jsonPath":".status.observedP95","description":"Observed p95 request latency"}"#,
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".status.replicas","description":"Ready API replicas"}"#,
    printcolumn = r#"{"name":"Pool","type":"string","jsonPath":".status.pool","description":"Connection pool min-max per API pod"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PerformanceStackSpec {
    /// The API deployment: image, port, resources, replica bounds and extra environment.
    #[serde(default)]
    pub app: AppSpec,
    /// Where the PostgreSQL database comes from: deployed by the operator (Bundled) or yours (External).
    #[serde(default)]
    pub database: DatabaseSpec,
    /// Where the Redis cache comes from: Bundled, External, or Disabled (the API then runs without a cache).
    #[serde(default)]
    pub cache: CacheSpec,
    /// Connection pool of each API pod: the starting point and the bounds within which tuning may move it.
    #[serde(default)]
    pub pool: PoolSpec,
    /// Service level objectives the tuner steers towards.
    #[serde(default)]
    pub slo: SloSpec,
    /// How the operator tunes the connection pool at run time.
    #[serde(default)]
    pub tuning: TuningSpec,
    /// Database schema migrations run as a Job before a new API image rolls out.
    #[serde(default)]
    pub migrations: MigrationsSpec,
    /// Bearer-token authentication of the API. Off by default: anyone who reaches the Service may
    /// call every route.
    #[serde(default)]
    pub auth: AuthSpec,
    /// A PodMonitor and SLO alerts (PrometheusRule) for a Prometheus Operator; off by default.
    #[serde(default)]
    pub monitoring: MonitoringSpec,
    /// When true, the operator stops changing anything that belongs to this stack until it is set back to
    /// false. Running workloads are left as they are.
    #[serde(default)]
    pub suspend: bool,
    /// What happens to stored data when the stack is deleted: Retain keeps the PostgreSQL and Redis
    /// volumes and the credentials Secret (none of them is ever owned by the stack, so no garbage
    /// collection can take them), Delete removes exactly those.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// The API deployment.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.minReplicas <= self.maxReplicas").message("app.minReplicas must not exceed app.maxReplicas"))]
#[serde(rename_all = "camelCase")]
pub struct AppSpec {
    /// Container image of the API. Defaults to the image released with this operator version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// TCP port the API listens on inside its pods and on its Service.
    #[serde(default = "default_app_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// CPU and memory requests and limits of each API container. Default: requests 100m CPU and 128Mi
    /// memory, memory limit 512Mi (the autoscaler needs CPU requests to compute utilisation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "quantity::resources_schema")]
    pub resources: Option<ResourceRequirements>,
    /// Fewest API replicas; the autoscaler never goes below it.
    #[serde(default = "default_min_replicas")]
    #[schemars(range(min = 1, max = 100))]
    pub min_replicas: i32,
    /// Most API replicas; the autoscaler never goes above it.
    #[serde(default = "default_max_replicas")]
    #[schemars(range(min = 1, max = 100))]
    pub max_replicas: i32,
    /// Average CPU utilisation (percent of requests) the autoscaler aims for.
    #[serde(default = "default_target_cpu")]
    #[schemars(range(min = 1, max = 100))]
    pub target_cpu_utilization: i32,
    /// Extra environment variables for the API containers. Variables the operator sets itself
    /// (DATABASE_URL, REDIS_URL, LISTEN_ADDR, TUNING_FILE, LOG_FORMAT, DB_POOL_*) cannot be overridden.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
}

impl Default for AppSpec {
    fn default() -> Self {
        Self {
            image: None,
            port: default_app_port(),
            resources: None,
            min_replicas: default_min_replicas(),
            max_replicas: default_max_replicas(),
            target_cpu_utilization: default_target_cpu(),
            env: Vec::new(),
        }
    }
}

/// Bearer tokens for the API: an API token for ordinary calls, an admin token for deletes, jobs,
/// the outbox and the dashboard. Probes, /metrics and /openapi.json stay open.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AuthSpec {
    /// When true, every API route except the probes, /metrics and /openapi.json needs a token.
    #[serde(default)]
    pub enabled: bool,
    /// A Secret in the stack's namespace holding the tokens under the keys api-token and
    /// admin-token. When not set, the operator generates both once into the stack's credentials
    /// Secret (<stack>-credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub secret_ref: Option<String>,
}

/// Where the database comes from.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DatabaseMode {
    /// The operator deploys PostgreSQL as a StatefulSet with a persistent volume.
    #[default]
    Bundled,
    /// You provide the database; a Secret holds its connection URL.
    External,
}

/// The PostgreSQL database.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.mode != 'External' || has(self.external)").message("database.external.secretRef is required when database.mode is External"))]
#[serde(rename_all = "camelCase")]
pub struct DatabaseSpec {
    /// Bundled deploys PostgreSQL in the stack's namespace; External uses database.external.
    #[serde(default)]
    pub mode: DatabaseMode,
    /// Settings of the bundled PostgreSQL (used when mode is Bundled).
    #[serde(default)]
    pub bundled: BundledDatabaseSpec,
    /// Your own database (required when mode is External).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalSpec>,
    /// External mode: the Secret and key of the URL the migration Job connects with, for a role that
    /// owns the schema while external.secretRef names a role that may only read and write rows
    /// (see docs/install.md). Default: external.secretRef, one role for both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration_secret_ref: Option<SecretKeyRef>,
    /// Connections kept free for administration and migrations; the pools of all API pods together stay
    /// below the server's max_connections minus this number.
    #[serde(default = "default_reserved_connections")]
    #[schemars(range(min = 0, max = 1000))]
    pub reserved_connections: i32,
}

impl Default for DatabaseSpec {
    fn default() -> Self {
        Self {
            mode: DatabaseMode::Bundled,
            bundled: BundledDatabaseSpec::default(),
            external: None,
            migration_secret_ref: None,
            reserved_connections: default_reserved_connections(),
        }
    }
}

/// The bundled PostgreSQL.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BundledDatabaseSpec {
    /// PostgreSQL container image.
    #[serde(default = "default_postgres_image")]
    pub image: String,
    /// Size of the data volume, e.g. 10Gi.
    #[serde(default = "default_storage_size")]
    #[schemars(schema_with = "quantity::schema")]
    pub storage_size: String,
    /// StorageClass of the data volume; the cluster default when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// PostgreSQL's max_connections setting.
    #[serde(default = "default_max_connections")]
    #[schemars(range(min = 10, max = 10000))]
    pub max_connections: i32,
    /// CPU and memory requests and limits of the PostgreSQL container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "quantity::resources_schema")]
    pub resources: Option<ResourceRequirements>,
}

impl Default for BundledDatabaseSpec {
    fn default() -> Self {
        Self {
            image: default_postgres_image(),
            storage_size: default_storage_size(),
            storage_class_name: None,
            max_connections: default_max_connections(),
            resources: None,
        }
    }
}

/// A service you run yourself, reached through a URL kept in a Secret.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSpec {
    /// The Secret (in the stack's namespace) and key holding the connection URL.
    pub secret_ref: SecretKeyRef,
}

impl ExternalSpec {
    /// The URL under `key` (`None`: the mode's default key) of the Secret `name`.
    pub fn secret(name: &str, key: Option<&str>) -> Self {
        Self {
            secret_ref: SecretKeyRef {
                name: name.to_owned(),
                key: key.map(str::to_owned),
            },
        }
    }
}

/// A key in a Secret of the stack's namespace.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret whose value is the URL; database-url for a database, redis-url for a cache
    /// when not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Where the cache comes from.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CacheMode {
    /// The operator deploys Redis as a StatefulSet (its append-only file on a persistent volume)
    /// and a Service.
    #[default]
    Bundled,
    /// You provide Redis; a Secret holds its URL.
    External,
    /// The API runs without a cache.
    Disabled,
}

/// The Redis cache.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.mode != 'External' || has(self.external)").message("cache.external.secretRef is required when cache.mode is External"))]
#[serde(rename_all = "camelCase")]
pub struct CacheSpec {
    /// Bundled deploys Redis; External uses cache.external; Disabled runs the API without a cache.
    #[serde(default)]
    pub mode: CacheMode,
    /// Redis container image (Bundled mode).
    #[serde(default = "default_redis_image")]
    pub image: String,
    /// Redis maxmemory setting (Bundled mode), e.g. 256mb. Keys are evicted least-recently-used first.
    #[serde(default = "default_maxmemory")]
    #[schemars(regex(pattern = r"^[0-9]+(kb|mb|gb)?$"))]
    pub maxmemory: String,
    /// CPU and memory requests and limits of the Redis container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "quantity::resources_schema")]
    pub resources: Option<ResourceRequirements>,
    /// Size of the volume holding Redis' append-only file (the job queues), e.g. 1Gi (Bundled mode).
    #[serde(default = "default_cache_storage_size")]
    #[schemars(schema_with = "quantity::schema")]
    pub storage_size: String,
    /// StorageClass of that volume; the cluster default when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// Your own Redis (required when mode is External).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalSpec>,
}

impl Default for CacheSpec {
    fn default() -> Self {
        Self {
            mode: CacheMode::Bundled,
            image: default_redis_image(),
            maxmemory: default_maxmemory(),
            resources: None,
            storage_size: default_cache_storage_size(),
            storage_class_name: None,
            external: None,
        }
    }
}

fn default_app_port() -> i32 {
    8080
}
fn default_min_replicas() -> i32 {
    2
}
fn default_max_replicas() -> i32 {
    10
}
fn default_target_cpu() -> i32 {
    70
}
fn default_reserved_connections() -> i32 {
    10
}
fn default_postgres_image() -> String {
    "postgres:15-alpine".to_owned()
}
fn default_storage_size() -> String {
    "10Gi".to_owned()
}
fn default_max_connections() -> i32 {
    200
}
fn default_redis_image() -> String {
    "redis:7-alpine".to_owned()
}
fn default_maxmemory() -> String {
    "256mb".to_owned()
}
fn default_cache_storage_size() -> String {
    "1Gi".to_owned()
}
