//! What the operator reports about a stack: phase, conditions, the migration and the tuner.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use perfstack_contract::migration::MigrationSummary;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Lifecycle phase of a stack.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Phase {
    /// Accepted, nothing created yet.
    #[default]
    Pending,
    /// Children are being created or rolled out.
    Provisioning,
    /// Every part of the stack is ready.
    Ready,
    /// The stack was ready before and a part of it no longer is.
    Degraded,
    /// spec.suspend is true.
    Suspended,
    /// The stack cannot be deployed as specified.
    Failed,
}

impl Phase {
    /// Every phase, for metrics that report a count per phase.
    pub const ALL: [Phase; 6] = [
        Phase::Pending,
        Phase::Provisioning,
        Phase::Ready,
        Phase::Degraded,
        Phase::Suspended,
        Phase::Failed,
    ];

    /// The phase as written in status.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Provisioning => "Provisioning",
            Phase::Ready => "Ready",
            Phase::Degraded => "Degraded",
            Phase::Suspended => "Suspended",
            Phase::Failed => "Failed",
        }
    }
}

/// What the operator observed about the stack.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct StackStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Lifecycle phase: Pending, Provisioning, Ready, Degraded, Suspended or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Why the stack is in its phase, in one PascalCase word.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Ready, DatabaseReady, CacheReady, AppReady, MigrationsApplied, Autoscaling, ConnectionBudget and,
    /// with spec.monitoring, Monitoring.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// In-cluster URL of the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// API image the Deployment runs (it changes only after that image's migration succeeded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_image: Option<String>,
    /// Ready API replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Connection pool per API pod in force, as min-max.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// Latest observed p95 request latency, e.g. 120ms (reported by the tuner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_p95: Option<String>,
    /// The migration of the desired API image: its Job, where it stands and what it reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<MigrationStatus>,
    /// The tuner: settings in force, its last decision (time, reason) and last observation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuning: Option<TuningStatus>,
    /// The data volumes (PostgreSQL's and Redis' claims): size asked for, size they have, and whether
    /// a change of the spec could be carried out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeStatus>,
}

/// Where a data volume stands against the spec.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum VolumeState {
    /// The claim has the size and class the spec asks for.
    AsSpecified,
    /// The claim does not exist yet, or is not bound to a volume yet.
    Pending,
    /// The claim asks for the new size; the volume has not grown to it yet.
    Expanding,
    /// The API server refused to expand the claim (its StorageClass does not allow expansion);
    /// not tried again for the same size.
    ExpansionRefused,
    /// The spec asks for less than the claim has: volumes cannot shrink.
    ShrinkRefused,
    /// The spec names another StorageClass than the claim's: a claim's class cannot change.
    ClassImmutable,
}

/// One data volume, as `status.volumes` shows it.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeStatus {
    /// The PersistentVolumeClaim, e.g. data-shop-postgres-0.
    pub claim: String,
    /// The size the spec asks for.
    pub size: String,
    /// The size the volume has (the claim's status.capacity), once bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<String>,
    /// AsSpecified, Pending, Expanding, ExpansionRefused, ShrinkRefused or ClassImmutable.
    pub state: VolumeState,
    /// Why, when the spec could not be carried out (the API server's words for a refusal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Where the migration of an API image stands.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrationState {
    /// The Job is not created yet because the database is not ready (a Job started earlier would
    /// burn its retries against a database that is still starting).
    WaitingForDatabase,
    /// The Job exists and has not finished.
    Running,
    /// The Job succeeded; the API rolls out to its image.
    Succeeded,
    /// The Job failed; delete it to retry.
    Failed,
}

/// The migration Job of the desired API image.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MigrationStatus {
    /// Name of the Job (it changes with the image and the database).
    pub job: String,
    /// The API image whose migration the Job runs.
    pub image: String,
    /// WaitingForDatabase, Running, Succeeded or Failed.
    pub state: MigrationState,
    /// What `perfstack-app migrate` reported after it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<MigrationSummary>,
    /// Why it failed, as the Job's pod reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Settings as shown in `status.tuning`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TunedSettings {
    /// Pool minimum per API pod.
    pub pool_min: u32,
    /// Pool maximum per API pod.
    pub pool_max: u32,
    /// HPA minReplicas.
    pub min_replicas: u32,
    /// HPA maxReplicas.
    pub max_replicas: u32,
    /// Generation of the tuning file carrying the pool settings.
    pub generation: u64,
}

/// The last decision, as shown in `status.tuning`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct DecisionRecord {
    /// When it was made (RFC 3339).
    pub time: String,
    /// What it wanted.
    pub settings: TunedSettings,
    /// Whether it was applied (mode Auto) or only recommended.
    pub applied: bool,
    /// Why, in words.
    pub reason: String,
}

/// The last observation, as shown in `status.tuning` (rounded so small noise does not churn).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ObservationSummary {
    /// p95 request latency over the interval, milliseconds (absent without requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95_ms: Option<u64>,
    /// p99 request latency over the interval, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<u64>,
    /// Requests per second over all pods.
    pub requests_per_second: f64,
    /// Share of 5xx responses, percent.
    pub error_rate_percent: f64,
    /// Connections in use over the pools' maxima, percent.
    pub pool_utilisation_percent: u32,
    /// Tasks waiting for a connection, over all pods.
    pub waiting: u32,
    /// Ready pods asked.
    pub pods: u32,
    /// Pods that answered.
    pub pods_answered: u32,
    /// Pods that did not answer (their traffic is missing from the figures).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unanswered: Vec<String>,
}

/// `status.tuning`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TuningStatus {
    /// Settings in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_force: Option<TunedSettings>,
    /// The last decision with its time and reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_decision: Option<DecisionRecord>,
    /// The last observation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_observation: Option<ObservationSummary>,
}
