//! Tune (step 3): the one call into the tuner per reconcile. Given what observe read (the live tuning
//! file, and the API pods' metrics when the interval was due) it returns the [`TuningDecision`]: the
//! settings in force within the connection budget, the budget plan, the Events to record and the
//! `status.tuning` to report. Pure apart from the tuner's own memory; decision logic lives in
//! `crate::tuner`. Without a tuner the spec's pool and replicas are written unchanged.
use std::time::{Duration, Instant};

use super::observe::Observed;
use crate::children::{ValidatedStack, tuning};
use crate::crd::{DecisionRecord, ObservationSummary, TunedSettings, TuningStatus};
use crate::tuner::act::{Mode, TuningEvent, TuningReport};
use crate::tuner::registry::{IntervalRun, TuningRegistry, TuningRequest};
use crate::tuner::{BudgetPlan, Observation, Settings, from_crd};

/// What the tuner decided for this reconcile.
#[derive(Clone, Debug, PartialEq)]
pub struct TuningDecision {
    /// Pool and HPA bounds to write (the tuning ConfigMap and the HPA carry them).
    pub settings: Settings,
    /// How the spec fits the connection budget (the `ConnectionBudget` condition); `None` without
    /// a tuner.
    pub budget: Option<BudgetPlan>,
    /// Events to record about the stack (a decision that changed something).
    pub events: Vec<TuningEvent>,
    /// `status.tuning` to report; `None` leaves what the status shows.
    pub status: Option<TuningStatus>,
    /// Requeue within this while tuning is on, so intervals come on time.
    pub requeue: Option<Duration>,
}

/// Decides the settings for `stack` from what was observed. `registry` is the tuner (`None`: the
/// spec's pool and replicas, no budget).
pub fn tune(
    registry: Option<&TuningRegistry>,
    stack: &ValidatedStack,
    observed: &Observed,
) -> TuningDecision {
    let Some(registry) = registry else {
        return TuningDecision {
            settings: from_crd::spec_settings(&stack.spec, stack.generation),
            budget: None,
            events: Vec::new(),
            status: None,
            requeue: None,
        };
    };
    let request = TuningRequest {
        spec: &stack.spec,
        generation: stack.generation,
        live_file: observed.tuning_config.as_ref().and_then(tuning::file_text),
        recorded: observed
            .recorded
            .tuning
            .as_ref()
            .and_then(|t| t.in_force.as_ref())
            .map(recorded_settings),
        app_metrics: observed.app_metrics.as_ref().map(Result::as_ref),
        now: Instant::now(),
        wall: chrono::Utc::now(),
    };
    let outcome = registry.tune(&stack.key(), request);
    let events = match outcome.run {
        IntervalRun::Decided(tick) => {
            tracing::info!(
                reason = %tick.decision.reason,
                applied = tick.act.applied,
                "tuning decision"
            );
            tick.act.events
        }
        IntervalRun::Failed(error) => {
            tracing::warn!(%error, "tuning interval skipped");
            Vec::new()
        }
        IntervalRun::Idle | IntervalRun::Baseline => Vec::new(),
    };
    TuningDecision {
        settings: outcome.settings,
        budget: Some(outcome.plan),
        events,
        status: outcome.report.as_ref().map(tuning_status),
        requeue: (outcome.mode != Mode::Off).then_some(outcome.interval),
    }
}

/// The decision while the stack is paused: the tuner is frozen. No interval runs and nothing is
/// written; the settings are those in force (the live tuning file's pool, the HPA bounds the status
/// recorded), for the `Suspended` condition to say; `status.tuning` and the `ConnectionBudget`
/// condition stay as they were.
pub fn frozen(stack: &ValidatedStack, observed: &Observed) -> TuningDecision {
    let spec = from_crd::spec_settings(&stack.spec, stack.generation);
    let recorded = observed
        .recorded
        .tuning
        .as_ref()
        .and_then(|t| t.in_force.as_ref())
        .map(recorded_settings);
    let file = observed
        .tuning_config
        .as_ref()
        .and_then(tuning::file_text)
        .and_then(|text| perfstack_contract::tuning::TuningFile::parse(text).ok());
    let hpa = recorded.unwrap_or(spec);
    let settings = match file {
        Some(file) => Settings {
            pool_min: file.pool.min_connections,
            pool_max: file.pool.max_connections,
            generation: file.generation,
            ..hpa
        },
        None => Settings {
            hpa_min: hpa.hpa_min,
            hpa_max: hpa.hpa_max,
            ..spec
        },
    };
    TuningDecision {
        settings,
        budget: None,
        events: Vec::new(),
        status: None,
        requeue: None,
    }
}

/// The tuner's report as `status.tuning` shows it.
pub fn tuning_status(report: &TuningReport) -> TuningStatus {
    let record = &report.last_decision;
    TuningStatus {
        in_force: Some(tuned_settings(report.in_force)),
        last_decision: Some(DecisionRecord {
            time: record.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            settings: tuned_settings(record.settings),
            applied: record.applied,
            reason: record.reason.clone(),
        }),
        last_observation: Some(observation_summary(&report.last_observation)),
    }
}

/// Settings as `status.tuning` recorded them.
fn recorded_settings(s: &TunedSettings) -> Settings {
    Settings {
        pool_min: s.pool_min,
        pool_max: s.pool_max,
        hpa_min: s.min_replicas,
        hpa_max: s.max_replicas,
        generation: s.generation,
    }
}

fn tuned_settings(s: Settings) -> TunedSettings {
    TunedSettings {
        pool_min: s.pool_min,
        pool_max: s.pool_max,
        min_replicas: s.hpa_min,
        max_replicas: s.hpa_max,
        generation: s.generation,
    }
}

/// An interval's figures, rounded so that small noise does not churn the status.
fn observation_summary(o: &Observation) -> ObservationSummary {
    let round1 = |x: f64| (x * 10.0).round() / 10.0;
    ObservationSummary {
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

#[cfg(test)]
mod tests;
