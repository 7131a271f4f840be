//! Operator metrics in the Prometheus text format: reconciles, failures by reason, reconcile duration,
//! stacks per phase, requests to the Kubernetes API by verb and resource, and the pool and HPA bounds
//! each stack runs with (the tuner's decisions over time, for dashboards).
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
use crate::tuner::Settings;

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

/// A stack. `stack_namespace`, not `namespace`: Prometheus sets `namespace` to the operator's own when
/// it scrapes the operator.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StackLabels {
    stack_namespace: String,
    stack: String,
}

impl StackLabels {
    fn of(stack: &PerformanceStack) -> Self {
        Self {
            stack_namespace: stack.namespace().unwrap_or_default(),
            stack: stack.name_any(),
        }
    }
}

/// The settings a stack runs with, one gauge each.
#[derive(Default)]
struct InForce {
    pool_min: Family<StackLabels, Gauge>,
    pool_max: Family<StackLabels, Gauge>,
    replicas_min: Family<StackLabels, Gauge>,
    replicas_max: Family<StackLabels, Gauge>,
}

impl InForce {
    fn register(&self, registry: &mut Registry) {
        for (name, help, family) in [
            (
                "tuned_pool_min_connections",
                "Pool minimum per API pod the stack runs with (the tuner's decision, or spec.pool)",
                &self.pool_min,
            ),
            (
                "tuned_pool_max_connections",
                "Pool maximum per API pod the stack runs with (the tuner's decision, or spec.pool)",
                &self.pool_max,
            ),
            (
                "tuned_min_replicas",
                "HPA minReplicas the stack runs with (the tuner's decision, or spec.app)",
                &self.replicas_min,
            ),
            (
                "tuned_max_replicas",
                "HPA maxReplicas the stack runs with (the tuner's decision, or spec.app)",
                &self.replicas_max,
            ),
        ] {
            registry.register(name, help, family.clone());
        }
    }

    fn families(&self) -> [&Family<StackLabels, Gauge>; 4] {
        [
            &self.pool_min,
            &self.pool_max,
            &self.replicas_min,
            &self.replicas_max,
        ]
    }
}

/// The operator's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    reconciles: Counter,
    failures: Family<ReasonLabel, Counter>,
    duration: Histogram,
    in_flight: Gauge,
    concurrency_limit: Gauge,
    stacks: Family<PhaseLabel, Gauge>,
    kube_requests: Family<KubeRequestLabels, Counter>,
    in_force: InForce,
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
        let in_flight = Gauge::default();
        registry.register(
            "reconciles_in_flight",
            "Reconciles running now; at reconcile_concurrency_limit, further ones queue",
            in_flight.clone(),
        );
        let concurrency_limit = Gauge::default();
        registry.register(
            "reconcile_concurrency_limit",
            "Reconciles that may run at once (--max-concurrent-reconciles; 0: no limit)",
            concurrency_limit.clone(),
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
        let in_force = InForce::default();
        in_force.register(&mut registry);
        Self {
            registry,
            reconciles,
            failures,
            duration,
            in_flight,
            concurrency_limit,
            stacks,
            kube_requests,
            in_force,
            phases: Mutex::new(HashMap::new()),
        }
    }
}

/// Observes the duration of one reconcile when dropped.
pub struct ReconcileTimer<'a> {
    started: Instant,
    histogram: &'a Histogram,
    in_flight: &'a Gauge,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.histogram.observe(self.started.elapsed().as_secs_f64());
        self.in_flight.dec();
    }
}

impl Metrics {
    /// Counts a reconcile, and times it and counts it in flight until the returned guard is dropped.
    pub fn reconcile_started(&self) -> ReconcileTimer<'_> {
        self.reconciles.inc();
        self.in_flight.inc();
        ReconcileTimer {
            started: Instant::now(),
            histogram: &self.duration,
            in_flight: &self.in_flight,
        }
    }

    /// Records how many reconciles may run at once (0: no limit).
    pub fn set_concurrency_limit(&self, limit: u16) {
        self.concurrency_limit.set(i64::from(limit));
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

    /// Records the pool and HPA bounds `stack` runs with after this reconcile.
    pub fn settings_in_force(&self, stack: &PerformanceStack, settings: &Settings) {
        let labels = StackLabels::of(stack);
        let values = [
            settings.pool_min,
            settings.pool_max,
            settings.hpa_min,
            settings.hpa_max,
        ];
        for (family, value) in self.in_force.families().into_iter().zip(values) {
            family.get_or_create(&labels).set(i64::from(value));
        }
    }

    /// Forgets a deleted stack.
    pub fn forget(&self, stack: &PerformanceStack) {
        self.set_phase(stack, None);
        let labels = StackLabels::of(stack);
        for family in self.in_force.families() {
            family.remove(&labels);
        }
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
        metrics.settings_in_force(&stack, &crate::tuner::from_crd::spec_settings(&stack.spec, 1));
        let text = metrics.encode().unwrap();
        for line in [
            "perfstack_operator_tuned_pool_min_connections{stack_namespace=\"ns\",stack=\"a\"} 2",
            "perfstack_operator_tuned_pool_max_connections{stack_namespace=\"ns\",stack=\"a\"} 10",
            "perfstack_operator_tuned_min_replicas{stack_namespace=\"ns\",stack=\"a\"} 2",
            "perfstack_operator_tuned_max_replicas{stack_namespace=\"ns\",stack=\"a\"} 10",
        ] {
            assert!(text.contains(line), "missing {line} in {text}");
        }
        metrics.forget(&stack);
        let text = metrics.encode().unwrap();
        assert!(text.contains("perfstack_operator_stacks{phase=\"Ready\"} 0"));
        assert!(
            !text.contains("stack=\"a\""),
            "a deleted stack's settings stay: {text}"
        );
    }
}
