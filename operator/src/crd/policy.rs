//! Spec parts that steer behaviour rather than deploy something: connection pool, SLOs, tuning,
//! migrations and the data deletion policy.
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Connection pool of each API pod.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.minConnections <= self.maxConnections").message("pool.minConnections must not exceed pool.maxConnections"))]
#[serde(rename_all = "camelCase")]
pub struct PoolSpec {
    /// Connections each pod keeps open even when idle (starting value).
    #[serde(default = "default_pool_min")]
    #[schemars(range(min = 0, max = 500))]
    pub min_connections: i32,
    /// Most connections each pod may open (starting value, and the upper bound for tuning).
    #[serde(default = "default_pool_max")]
    #[schemars(range(min = 1, max = 500))]
    pub max_connections: i32,
    /// How long a request waits for a free connection before failing, in milliseconds.
    #[serde(default = "default_acquire_timeout_ms")]
    #[schemars(range(min = 1, max = 600000))]
    pub acquire_timeout_ms: i32,
    /// Idle connections above the minimum are closed after this many seconds.
    #[serde(default = "default_idle_timeout_s")]
    #[schemars(range(min = 1, max = 86400))]
    pub idle_timeout_seconds: i32,
}

impl Default for PoolSpec {
    fn default() -> Self {
        Self {
            min_connections: default_pool_min(),
            max_connections: default_pool_max(),
            acquire_timeout_ms: default_acquire_timeout_ms(),
            idle_timeout_seconds: default_idle_timeout_s(),
        }
    }
}

/// Service level objectives.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.p95LatencyMs <= self.p99LatencyMs").message("slo.p95LatencyMs must not exceed slo.p99LatencyMs"))]
#[serde(rename_all = "camelCase")]
pub struct SloSpec {
    /// Target 95th percentile request latency, in milliseconds.
    #[serde(default = "default_p95_ms")]
    #[schemars(range(min = 1, max = 60000))]
    pub p95_latency_ms: i32,
    /// Target 99th percentile request latency, in milliseconds.
    #[serde(default = "default_p99_ms")]
    #[schemars(range(min = 1, max = 60000))]
    pub p99_latency_ms: i32,
    /// Highest acceptable share of 5xx responses, in percent.
    #[serde(default = "default_error_rate")]
    #[schemars(range(min = 0.0, max = 100.0))]
    pub max_error_rate_percent: f64,
}

impl Default for SloSpec {
    fn default() -> Self {
        Self {
            p95_latency_ms: default_p95_ms(),
            p99_latency_ms: default_p99_ms(),
            max_error_rate_percent: default_error_rate(),
        }
    }
}

/// How pool tuning acts.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TuningMode {
    /// Apply pool decisions to the running API pods.
    #[default]
    Auto,
    /// Compute decisions and report them in status without applying them.
    Recommend,
    /// No tuning: the pool keeps the values in spec.pool.
    Off,
}

/// Pool tuning.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TuningSpec {
    /// Auto applies decisions, Recommend only reports them, Off disables tuning.
    #[serde(default)]
    pub mode: TuningMode,
    /// Seconds between two tuning evaluations.
    #[serde(default = "default_tuning_interval")]
    #[schemars(range(min = 10, max = 3600))]
    pub interval_seconds: i32,
    /// A larger pool is applied only after the evidence held for this many seconds.
    #[serde(default = "default_scale_up_window")]
    #[schemars(range(min = 0, max = 3600))]
    pub scale_up_stabilization_seconds: i32,
    /// A smaller pool is applied only after the evidence held for this many seconds.
    #[serde(default = "default_scale_down_window")]
    #[schemars(range(min = 0, max = 3600))]
    pub scale_down_stabilization_seconds: i32,
}

impl Default for TuningSpec {
    fn default() -> Self {
        Self {
            mode: TuningMode::Auto,
            interval_seconds: default_tuning_interval(),
            scale_up_stabilization_seconds: default_scale_up_window(),
            scale_down_stabilization_seconds: default_scale_down_window(),
        }
    }
}

/// Schema migrations.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MigrationsSpec {
    /// Run `perfstack-app migrate` as a Job whenever the API image or the database changes, and roll
    /// out a new API image only after it succeeded.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

impl Default for MigrationsSpec {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// What happens to data when the stack is deleted.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeletionPolicy {
    /// Keep the PostgreSQL and Redis volumes and the credentials Secret; a stack created again
    /// under the same name takes them back.
    #[default]
    Retain,
    /// Delete the PostgreSQL and Redis volumes and the credentials Secret with the stack.
    Delete,
}

fn default_pool_min() -> i32 {
    2
}
/// 10: the defaults' 10 replicas, with the 9 pods a rollout and terminations can add, times 10, plus
/// 10 reserved, fill the bundled server's 200 exactly (docs/tuning.md).
fn default_pool_max() -> i32 {
    10
}
fn default_acquire_timeout_ms() -> i32 {
    3000
}
fn default_idle_timeout_s() -> i32 {
    600
}
fn default_p95_ms() -> i32 {
    200
}
fn default_p99_ms() -> i32 {
    500
}
fn default_error_rate() -> f64 {
    1.0
}
fn default_tuning_interval() -> i32 {
    60
}
fn default_scale_up_window() -> i32 {
    60
}
fn default_scale_down_window() -> i32 {
    300
}
fn default_true() -> bool {
    true
}
