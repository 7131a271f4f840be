//! One stack's tuning loop state, for the controller: list the Ready app pods, scrape them,
//! aggregate the interval, decide, and plan the writes for the mode. The controller calls
//! [`StackTuner::tick`] once per `spec.tuning.intervalSeconds` and performs the [`ActPlan`].
use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;

use super::act::{ActPlan, Mode, TuningStatus, plan};
use super::decide::{Decision, Tuner};
use super::error::TunerError;
use super::observe::{Observation, PodSnapshot, aggregate};
use super::spec::{Settings, TuningSpec};
use super::targets::{MetricsSource, Reach, targets_from_pods};
use super::tuning_file::PoolTuning;

/// What one interval produced.
#[derive(Debug, Clone)]
pub struct Tick {
    /// The interval's figures.
    pub observation: Observation,
    /// The decision.
    pub decision: Decision,
    /// The writes it calls for in this mode.
    pub act: ActPlan,
    /// `status.tuning` after it.
    pub status: TuningStatus,
}

/// Where the app pods are.
#[derive(Debug, Clone)]
pub struct AppPods {
    /// Pods of the stack's namespace.
    pub api: Api<Pod>,
    /// Label selector of the app pods (e.g. `app.kubernetes.io/instance=shop,app.kubernetes.io/component=api`).
    pub selector: String,
    /// Container port serving `/metrics`.
    pub port: u16,
    /// Pod IP (in-cluster) or API-server proxy (laptop).
    pub reach: Reach,
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
    /// Starts from the settings in force (read back from the tuning ConfigMap and the HPA, so an
    /// operator restart continues where it was).
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

    /// One interval at monotonic time `now` (any fixed origin) and wall time `wall`. The first
    /// call only takes the baseline and returns `None`; so does mode Off.
    pub async fn tick(
        &mut self,
        pods: &AppPods,
        source: &MetricsSource,
        mode: Mode,
        timeouts: PoolTuning,
        now: Duration,
        wall: DateTime<Utc>,
    ) -> Result<Option<Tick>, TunerError> {
        if mode == Mode::Off {
            self.baseline.clear();
            self.baseline_at = None;
            return Ok(None);
        }
        let list = pods
            .api
            .list(&ListParams::default().labels(&pods.selector))
            .await
            .map_err(|e| TunerError::ListPods(e.to_string()))?;
        let targets = targets_from_pods(&list.items, pods.port, pods.reach);
        let answers = source.scrape_all(&targets.targets).await;
        let previous = std::mem::take(&mut self.baseline);
        self.baseline = answers
            .iter()
            .filter_map(|(name, a)| a.as_ref().ok().map(|s| (name.clone(), s.clone())))
            .collect();
        let Some(since) = self.baseline_at.replace(now) else {
            return Ok(None);
        };
        let observation = aggregate(&previous, &answers, now.saturating_sub(since).as_secs_f64());
        let decision = self.tuner.step(&observation, now);
        let act = plan(mode, &decision, timeouts);
        if !act.applied {
            // Recommend: nothing was written, the settings in force stay.
            self.tuner.settings = decision.before;
        }
        let status = TuningStatus::after(&decision, &act, &observation, wall);
        Ok(Some(Tick {
            observation,
            decision,
            act,
            status,
        }))
    }
}

#[cfg(test)]
#[path = "stack_tests.rs"]
mod tests;
