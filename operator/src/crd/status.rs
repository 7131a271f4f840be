//! What the operator reports about a stack.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
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
    /// Ready, DatabaseReady, CacheReady, AppReady, MigrationsApplied and Autoscaling.
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
    /// The tuner: settings in force, its last decision (time, reason) and last observation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuning: Option<crate::tuner::act::TuningStatus>,
}
