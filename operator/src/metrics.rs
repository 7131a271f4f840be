//! Operator metrics in the Prometheus text format: reconciles, failures by reason, reconcile duration
//! stacks per phase, and requests to the Kubernetes API by verb and resource.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use kube::ResourceExt;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::crd::{PerformanceStack, Phase};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KubeRequestLabels {
    verb: &'static str,
    resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: String,
}

/// The operator's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    reconciles: Counter,
    failures: Family<ReasonLabel, Counter>,
    duration: Histogram,
    stacks: Family<PhaseLabel, Gauge>,
    kube_requests: Family<KubeRequestLabels, Counter>,
    phases: Mutex<HashMap<String, Phase>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("perfstack_operator");
        let reconciles = Counter::default();
        let failures = Family::<ReasonLabel, Counter>::default();
        let duration = Histogram::new(exponential_buckets(0.005, 2.0, 12));
        let stacks = Family::<PhaseLabel, Gauge>::default();
        registry.register("reconciles", "Reconciles started", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Failed reconciles by reason",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile took",
            duration.clone(),
        );
        registry.register("stacks", "PerformanceStacks by phase", stacks.clone());
        let kube_requests = Family::<KubeRequestLabels, Counter>::default();
        registry.register(
            "kube_requests",
            "Requests sent to the Kubernetes API, by verb and resource",
            kube_requests.clone(),
        );
        for phase in Phase::ALL {
            stacks
                .get_or_create(&PhaseLabel {
                    phase: phase.as_str().into(),
                })
                .set(0);
        }
        Self {
            registry,
            reconciles,
            failures,
            duration,
            stacks,
            kube_requests,
            phases: Mutex::new(HashMap::new()),
        }
    }
}

/// Observes the duration of one reconcile when dropped.
pub struct ReconcileTimer<'a> {
    started: Instant,
    histogram: &'a Histogram,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.histogram.observe(self.started.elapsed().as_secs_f64());
    }
}

impl Metrics {
    /// Counts a reconcile and times it until the returned guard is dropped.
    pub fn reconcile_started(&self) -> ReconcileTimer<'_> {
        self.reconciles.inc();
        ReconcileTimer {
            started: Instant::now(),
            histogram: &self.duration,
        }
    }

    /// Counts a failed reconcile.
    pub fn reconcile_failed(&self, reason: &str) {
        self.failures
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc();
    }

    /// Counts one request to the Kubernetes API: `verb` as the API server spells it (`get`,
    /// `patch`, ...), `resource` its plural (with a subresource, `pods/proxy`).
    pub fn kube_request(&self, verb: &'static str, resource: &str) {
        self.kube_requests
            .get_or_create(&KubeRequestLabels {
                verb,
                resource: resource.into(),
            })
            .inc();
    }

    /// Records the phase a stack is in.
    pub fn set_phase(&self, stack: &PerformanceStack, phase: Option<Phase>) {
        let key = format!("{}/{}", stack.namespace().unwrap_or_default(), stack.name_any());
        let mut phases = self
            .phases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match phase {
            Some(phase) => phases.insert(key, phase),
            None => phases.remove(&key),
        };
        self.publish_phases(&phases);
    }

    /// Forgets a deleted stack.
    pub fn forget(&self, stack: &PerformanceStack) {
        self.set_phase(stack, None);
    }

    fn publish_phases(&self, phases: &HashMap<String, Phase>) {
        for phase in Phase::ALL {
            let count = phases.values().filter(|p| **p == phase).count();
            self.stacks
                .get_or_create(&PhaseLabel {
                    phase: phase.as_str().into(),
                })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }

    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_stacks_per_phase_and_failures() {
        let metrics = Metrics::default();
        let mut stack = PerformanceStack::new("a", Default::default());
        stack.metadata.namespace = Some("ns".into());
        metrics.set_phase(&stack, Some(Phase::Ready));
        metrics.reconcile_failed("apply");
        drop(metrics.reconcile_started());
        let text = metrics.encode().unwrap();
        assert!(
            text.contains("perfstack_operator_stacks{phase=\"Ready\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("perfstack_operator_stacks{phase=\"Failed\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("perfstack_operator_reconcile_errors_total{reason=\"apply\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("perfstack_operator_reconcile_duration_seconds_count 1"),
            "{text}"
        );
        metrics.forget(&stack);
        assert!(
            metrics
                .encode()
                .unwrap()
                .contains("perfstack_operator_stacks{phase=\"Ready\"} 0")
        );
    }
}
