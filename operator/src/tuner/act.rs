//! Act, the pure part: what a decision means in each mode — whether its settings go into force, the
//! Events to record, and what `status.tuning` reports (in the tuner's terms; the controller renders
//! it into the CRD's status). The controller performs the writes; nothing here talks to the cluster.
use chrono::{DateTime, Utc};

use super::decide::Decision;
use super::history::Change;
use super::observe::Observation;
use super::spec::Settings;

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

/// What a decision calls for in a mode.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ActPlan {
    /// Whether the decided settings go into force now (Auto, something changed): the controller then
    /// writes them into the tuning ConfigMap and the HPA. Otherwise they are only recommended.
    pub applied: bool,
    /// Events to record.
    pub events: Vec<TuningEvent>,
}

/// Turns a decision into what the mode makes of it.
pub fn plan(mode: Mode, decision: &Decision) -> ActPlan {
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

/// The last decision, as the tuner remembers it for `status.tuning`.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRecord {
    /// When it was made.
    pub time: DateTime<Utc>,
    /// What it wanted.
    pub settings: Settings,
    /// Whether it was applied (mode Auto), or changed nothing.
    pub applied: bool,
    /// Why, in words.
    pub reason: String,
}

/// What `status.tuning` reports after an interval, in the tuner's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct TuningReport {
    /// Settings in force.
    pub in_force: Settings,
    /// The last decision.
    pub last_decision: DecisionRecord,
    /// The interval it was made on.
    pub last_observation: Observation,
}

impl TuningReport {
    /// The report after `decision` on `obs` at `time`, acted on as `act` says.
    pub fn after(decision: &Decision, act: &ActPlan, obs: &Observation, time: DateTime<Utc>) -> Self {
        let in_force = if act.applied {
            decision.settings
        } else {
            decision.before
        };
        Self {
            in_force,
            last_decision: DecisionRecord {
                time,
                settings: decision.settings,
                applied: act.applied || !decision.changed(),
                reason: decision.reason.clone(),
            },
            last_observation: obs.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
