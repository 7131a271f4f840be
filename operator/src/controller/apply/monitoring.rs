//! The monitoring part of apply: the PodMonitor and PrometheusRule written when they drifted, both
//! deleted once `spec.monitoring` was turned off.
use kube::api::Api;

use super::{Writer, apply_object, delete, needs_apply};
use crate::children::{ValidatedStack, monitoring};
use crate::controller::build::Monitors;
use crate::controller::observe::ObservedMonitoring;

impl Writer<'_> {
    /// Applies the PodMonitor and the PrometheusRule that drifted, or deletes both once monitoring
    /// was turned off. A refused write joins the other refusals.
    pub(super) async fn monitoring(
        &mut self,
        stack: &ValidatedStack,
        desired: Option<&Monitors>,
        live: Option<&ObservedMonitoring>,
    ) {
        let client = self.ctx.client.clone();
        let api = |resource| Api::namespaced_with(client.clone(), &stack.namespace, &resource);
        let monitors = api(monitoring::pod_monitor_resource());
        let rules = api(monitoring::prometheus_rule_resource());
        match (desired, live) {
            (Some(desired), Some(ObservedMonitoring::Served { pod_monitor, rule })) => {
                if needs_apply(&desired.pod_monitor, pod_monitor.as_deref()) {
                    let applied = apply_object(&monitors, "PodMonitor", &desired.pod_monitor).await;
                    self.keep(applied);
                }
                if needs_apply(&desired.rule, rule.as_deref()) {
                    let applied = apply_object(&rules, "PrometheusRule", &desired.rule).await;
                    self.keep(applied);
                }
            }
            (_, Some(ObservedMonitoring::Retired)) => {
                let names = stack.names();
                for (api, kind, name) in [
                    (&monitors, "PodMonitor", names.api()),
                    (&rules, "PrometheusRule", names.slo_rules()),
                ] {
                    let deleted = delete(api, kind, &name).await;
                    if self.keep(deleted).flatten().is_some() {
                        tracing::info!(
                            kind,
                            name,
                            "deleted monitoring child (spec.monitoring turned off)"
                        );
                    }
                }
            }
            _ => {}
        }
    }
}
