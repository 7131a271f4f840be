//! Act, the pure part: what a decision means in each mode — the tuning file to write, the HPA
//! bounds to set, the Events to record, `status.tuning` and the `ConnectionBudget` condition.
//! The controller performs the writes; nothing here talks to the cluster.
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::budget::BudgetPlan;
use super::decide::Decision;
use super::history::Change;
use super::observe::Observation;
use super::spec::Settings;
use super::tuning_file::{PoolTuning, TuningFile};

/// What the tuner may do (`spec.tuning.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Write the tuning ConfigMap and the HPA bounds.
    Auto,
    /// Decide and report only.
    Recommend,
    /// Neither decide nor report.
    Off,
}

/// The HPA bounds to set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HpaBounds {
    /// `minReplicas`.
    pub min: u32,
    /// `maxReplicas`.
    pub max: u32,
}

/// An Event to record about the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TuningEvent {
    /// PascalCase reason.
    pub reason: &'static str,
    /// Short note with the numbers and the decision's reason.
    pub note: String,
    /// Warning rather than Normal.
    pub warning: bool,
}

/// The writes a decision calls for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ActPlan {
    /// New tuning file for the tuning ConfigMap (Auto, pool changed).
    pub tuning_file: Option<TuningFile>,
    /// New HPA bounds (Auto, floor or ceiling changed).
    pub hpa: Option<HpaBounds>,
    /// Events to record.
    pub events: Vec<TuningEvent>,
    /// Whether the decided settings are now in force (Auto) or only recommended.
    pub applied: bool,
}

/// Turns a decision into writes. `timeouts` carries the acquire/idle timeouts the file keeps.
pub fn plan(mode: Mode, decision: &Decision, timeouts: PoolTuning) -> ActPlan {
    let s = decision.settings;
    let b = decision.before;
    let pool_changed = decision.pool_settings_changed();
    let hpa_changed = s.hpa_min != b.hpa_min || s.hpa_max != b.hpa_max;
    let mut out = ActPlan::default();
    if mode == Mode::Off || !(pool_changed || hpa_changed) {
        return out;
    }
    let what = describe_change(&b, &s, decision);
    if mode == Mode::Recommend {
        out.events.push(TuningEvent {
            reason: "TuningRecommended",
            note: format!("{what} (mode Recommend: not applied): {}", decision.reason),
            warning: false,
        });
        return out;
    }
    out.applied = true;
    if pool_changed {
        out.tuning_file = Some(TuningFile {
            generation: s.generation,
            pool: PoolTuning {
                min_connections: s.pool_min,
                max_connections: s.pool_max,
                ..timeouts
            },
        });
    }
    if hpa_changed {
        out.hpa = Some(HpaBounds {
            min: s.hpa_min,
            max: s.hpa_max,
        });
    }
    let reason = match (pool_changed, decision.floor) {
        (true, _) => "PoolResized",
        (false, Change::Up) => "ReplicaFloorRaised",
        (false, Change::Down) => "ReplicaFloorLowered",
        (false, Change::Hold) => "ReplicaCeilingChanged",
    };
    out.events.push(TuningEvent {
        reason,
        note: format!("{what}: {}", decision.reason),
        warning: false,
    });
    out
}

fn describe_change(b: &Settings, s: &Settings, d: &Decision) -> String {
    let mut parts = Vec::new();
    if d.pool_settings_changed() {
        parts.push(format!(
            "pool {}..{} -> {}..{} (generation {})",
            b.pool_min, b.pool_max, s.pool_min, s.pool_max, s.generation
        ));
    }
    if s.hpa_min != b.hpa_min || s.hpa_max != b.hpa_max {
        parts.push(format!(
            "HPA {}..{} -> {}..{}",
            b.hpa_min, b.hpa_max, s.hpa_min, s.hpa_max
        ));
    }
    parts.join(", ")
}

/// The `ConnectionBudget` condition: `(status, reason, message)`.
pub fn budget_condition(plan: &BudgetPlan) -> (&'static str, &'static str, String) {
    let status = if plan.verdict.satisfied() { "True" } else { "False" };
    (status, plan.verdict.reason(), plan.to_string())
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

impl From<Settings> for TunedSettings {
    fn from(s: Settings) -> Self {
        Self {
            pool_min: s.pool_min,
            pool_max: s.pool_max,
            min_replicas: s.hpa_min,
            max_replicas: s.hpa_max,
            generation: s.generation,
        }
    }
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

impl From<&Observation> for ObservationSummary {
    fn from(o: &Observation) -> Self {
        let round1 = |x: f64| (x * 10.0).round() / 10.0;
        Self {
            p95_ms: o.p95.map(|p| (p * 1000.0).round() as u64),
            p99_ms: o.p99.map(|p| (p * 1000.0).round() as u64),
            requests_per_second: round1(o.requests_per_second),
            error_rate_percent: (o.error_rate * 10_000.0).round() / 100.0,
            pool_utilisation_percent: (o.pool_utilisation() * 100.0).round() as u32,
            waiting: o.pool.waiting.round().max(0.0) as u32,
            pods: o.pods.asked,
            pods_answered: o.pods.answered,
            unanswered: o.pods.unanswered.clone(),
        }
    }
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

impl TuningStatus {
    /// The status after `decision` on `obs` at `time`, acted on as `act` says.
    pub fn after(decision: &Decision, act: &ActPlan, obs: &Observation, time: DateTime<Utc>) -> Self {
        let in_force = if act.applied {
            decision.settings
        } else {
            decision.before
        };
        Self {
            in_force: Some(in_force.into()),
            last_decision: Some(DecisionRecord {
                time: time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                settings: decision.settings.into(),
                applied: act.applied || !decision.changed(),
                reason: decision.reason.clone(),
            }),
            last_observation: Some(obs.into()),
        }
    }
}

#[cfg(test)]
#[path = "act_tests.rs"]
mod tests;
