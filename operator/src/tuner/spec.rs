//! The tuner's inputs: what the user asked for (SLO, and the bounds and budget of [`super::budget`]),
//! the settings in force, and everything one decision reads ([`Inputs`]).
//!
//! These map one-to-one from the `PerformanceStack` spec (`spec.slo`, `spec.pool`,
//! `spec.app.replicas`, `spec.database`, `spec.tuning`; see [`super::from_crd`]). [`Settings`] is the
//! decision layer's one representation of the pool (and HPA bounds); [`Settings::tuning_file`] turns
//! it into the contract's tuning file.
use std::time::Duration;

use perfstack_contract::tuning::{PoolSettings, TuningFile};

use super::budget::{ConnectionBudget, PoolBounds, ReplicaBounds};
use super::history::History;
use super::observe::Observation;

/// Latency and error objectives the tuner steers towards (`spec.slo`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SloSpec {
    /// 95th percentile request latency target.
    pub p95: Duration,
    /// 99th percentile request latency target (reported; p95 drives the decision).
    pub p99: Duration,
    /// Largest acceptable share of 5xx responses, 0.0..=1.0.
    pub max_error_rate: f64,
}

impl Default for SloSpec {
    /// The seed's objectives: 200 ms p95, 500 ms p99, 1 % errors.
    fn default() -> Self {
        Self {
            p95: Duration::from_millis(200),
            p99: Duration::from_millis(500),
            max_error_rate: 0.01,
        }
    }
}

/// Everything the decision needs from the spec.
#[derive(Debug, Clone, PartialEq)]
pub struct TuningSpec {
    /// Objectives.
    pub slo: SloSpec,
    /// Per-pod pool bounds.
    pub pool: PoolBounds,
    /// Replica bounds.
    pub replicas: ReplicaBounds,
    /// PostgreSQL `max_connections` and the connections kept for others.
    pub budget: ConnectionBudget,
    /// How long a lower recommendation must persist before the tuner lowers a knob
    /// (the HPA's `scaleDown.stabilizationWindowSeconds`, default 300 s).
    pub scale_down_stabilization: Duration,
    /// Relative band around the target in which nothing changes (the HPA's 10 %).
    pub tolerance: f64,
}

impl TuningSpec {
    /// A spec with the seed's SLO, the HPA's default tolerance and stabilization window.
    pub fn new(pool: PoolBounds, replicas: ReplicaBounds, budget: ConnectionBudget) -> Self {
        Self {
            slo: SloSpec::default(),
            pool,
            replicas,
            budget,
            scale_down_stabilization: Duration::from_secs(300),
            tolerance: 0.1,
        }
    }
}

/// The settings in force: what the last decision wrote (or what the stack started with).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Pool minimum per pod.
    pub pool_min: u32,
    /// Pool maximum per pod.
    pub pool_max: u32,
    /// HPA `minReplicas`.
    pub hpa_min: u32,
    /// HPA `maxReplicas`.
    pub hpa_max: u32,
    /// Tuning-file generation carrying `pool_min`/`pool_max` (0: none written yet).
    pub generation: u64,
}

impl Settings {
    /// Connections the settings can open at most under `budget`, every pod that can be alive at
    /// once counted (the reserve not included).
    pub fn peak_connections(&self, budget: &super::budget::ConnectionBudget) -> u64 {
        u64::from(budget.pods(self.hpa_max)) * u64::from(self.pool_max)
    }

    /// The tuning file carrying these settings: the pool minimum and maximum at their generation,
    /// `base`'s acquire and idle timeouts (the tuner never changes those). The one place the tuner's
    /// settings become the contract's file.
    pub fn tuning_file(&self, base: &PoolSettings) -> TuningFile {
        TuningFile {
            generation: self.generation,
            pool: PoolSettings {
                min_connections: self.pool_min,
                max_connections: self.pool_max,
                ..*base
            },
        }
    }
}

/// What every step of the decision reads.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// Settings in force.
    pub settings: &'a Settings,
    /// Memory of past intervals.
    pub history: &'a History,
    /// This interval.
    pub obs: &'a Observation,
    /// What the user asked for.
    pub spec: &'a TuningSpec,
    /// The time of the decision (any fixed origin).
    pub now: Duration,
}
