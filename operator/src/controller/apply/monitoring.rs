//! The monitoring part of apply: the PodMonitor and PrometheusRule written when their digest changed,
//! both deleted once `spec.monitoring` was turned off.
use kube::api::{Api, DeleteParams};

use super::{Writer, apply_object, delete_child, digest};
use crate::children::{ValidatedStack, monitoring};
use crate::controller::build::Monitors;
use crate::controller::error::Error;
use crate::controller::observe::ObservedMonitoring;

/// Applies the PodMonitor and the PrometheusRule whose digest changed, or deletes both once monitoring
/// was turned off.
pub(super) async fn write(
    children: &Writer<'_>,
    stack: &ValidatedStack,
    desired: Option<&Monitors>,
    live: Option<&ObservedMonitoring>,
) -> Result<(), Error> {
    let api = |resource| Api::namespaced_with(children.ctx.client.clone(), &stack.namespace, &resource);
    let monitors = api(monitoring::pod_monitor_resource());
    let rules = api(monitoring::prometheus_rule_resource());
    match (desired, live) {
        (Some(desired), Some(ObservedMonitoring::Served { pod_monitor, rule })) => {
            if pod_monitor.as_deref().and_then(digest) != digest(&desired.pod_monitor) {
                apply_object(&monitors, "PodMonitor", &desired.pod_monitor).await?;
            }
            if rule.as_deref().and_then(digest) != digest(&desired.rule) {
                apply_object(&rules, "PrometheusRule", &desired.rule).await?;
            }
        }
        (_, Some(ObservedMonitoring::Retired)) => {
            let names = stack.names();
            let params = DeleteParams::default();
            for (api, kind, name) in [
                (&monitors, "PodMonitor", names.api()),
                (&rules, "PrometheusRule", names.slo_rules()),
            ] {
                if delete_child(api, kind, &name, &params).await? {
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
    Ok(())
}
