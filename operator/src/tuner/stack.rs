//! One stack's tuning loop state, for the controller: keep the scrape baseline, aggregate the
//! interval, decide, and say what the mode makes of it. Pure: the controller's observe step scrapes
//! the pods ([`super::targets::AppPods`]) and hands the answers to [`StackTuner::tick`] once per
//! `spec.tuning.intervalSeconds`.
use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::act::{ActPlan, Mode, TuningReport, plan};
use super::decide::{Decision, Tuner};
use super::observe::{Observation, PodAnswer, PodSnapshot, aggregate};
use super::spec::{Settings, TuningSpec};

/// What one interval produced.
#[derive(Debug, Clone)]
pub struct Tick {
    /// The interval's figures.
    pub observation: Observation,
    /// The decision.
    pub decision: Decision,
    /// What the mode makes of it.
    pub act: ActPlan,
    /// `status.tuning` after it.
    pub report: TuningReport,
}

/// A stack's tuner and its scrape baseline.
#[derive(Debug, Clone)]
pub struct StackTuner {
    /// Decision and memory.
    pub tuner: Tuner,
    baseline: BTreeMap<String, PodSnapshot>,
    baseline_at: Option<Duration>,
}

impl StackTuner {
    /// Starts from the settings in force (read back from the tuning ConfigMap after an operator
    /// restart, so it continues where it was, or the spec's within the budget).
    pub fn new(spec: TuningSpec, in_force: Settings) -> Self {
        Self {
            tuner: Tuner::new(spec, in_force),
            baseline: BTreeMap::new(),
            baseline_at: None,
        }
    }

    /// Takes a changed spec; memory and settings in force stay.
    pub fn respec(&mut self, spec: TuningSpec) {
        self.tuner.spec = spec;
    }

    /// One interval ending with the pods' `answers`, at monotonic time `now` (any fixed origin) and
    /// wall time `wall`. The first call only takes the baseline and returns `None`; so does mode Off.
    pub fn tick(
        &mut self,
        answers: &[PodAnswer],
        mode: Mode,
        now: Duration,
        wall: DateTime<Utc>,
    ) -> Option<Tick> {
        if mode == Mode::Off {
            self.baseline.clear();
            self.baseline_at = None;
            return None;
        }
        let previous = std::mem::take(&mut self.baseline);
        self.baseline = answers
            .iter()
            .filter_map(|(name, a)| a.as_ref().ok().map(|s| (name.clone(), s.clone())))
            .collect();
        let since = self.baseline_at.replace(now)?;
        let observation = aggregate(&previous, answers, now.saturating_sub(since).as_secs_f64());
        let decision = self.tuner.step(&observation, now);
        let act = plan(mode, &decision);
        if !act.applied {
            // Recommend: nothing was written, the settings in force stay.
            self.tuner.settings = decision.before;
        }
        let report = TuningReport::after(&decision, &act, &observation, wall);
        Some(Tick {
            observation,
            decision,
            act,
            report,
        })
    }
}

#[cfg(test)]
mod tests;
