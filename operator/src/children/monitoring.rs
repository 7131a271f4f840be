//! What a Prometheus Operator gets for a stack with `spec.monitoring.enabled`: a PodMonitor scraping
//! every API pod's `/metrics`, and a PrometheusRule with the stack's SLO alerts ([`rules`]). Both are
//! `monitoring.coreos.com/v1` kinds from another project's CRDs, so they are built as dynamic objects;
//! the operator creates them only where the cluster serves those kinds.
pub mod rules;

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use perfstack_contract::probes::{HTTP_PORT_NAME, METRICS};
use serde_json::json;

use super::{ValidatedStack, app};

/// API group and version of the Prometheus Operator's kinds.
pub const API_VERSION: &str = "monitoring.coreos.com/v1";
/// Component label of the monitoring objects.
pub const COMPONENT: &str = "monitoring";
/// Label every scraped series of the stack carries (set by the PodMonitor), so that rules and
/// dashboards can tell stacks of one namespace apart.
pub const STACK_SERIES_LABEL: &str = "stack";

/// ApiResource of PodMonitors.
pub fn pod_monitor_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("monitoring.coreos.com", "v1", "PodMonitor"),
        "podmonitors",
    )
}

/// ApiResource of PrometheusRules.
pub fn prometheus_rule_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("monitoring.coreos.com", "v1", "PrometheusRule"),
        "prometheusrules",
    )
}

/// A child of `kind` called `name` with `spec`, labelled for the stack plus `spec.monitoring.labels`.
fn monitoring_object(
    stack: &ValidatedStack,
    resource: &ApiResource,
    name: String,
    spec: serde_json::Value,
) -> DynamicObject {
    let mut object = DynamicObject::new(&name, resource).within(&stack.namespace);
    let mut metadata = stack.child_meta(name, COMPONENT);
    if let Some(labels) = metadata.labels.as_mut() {
        for (key, value) in &stack.spec.monitoring.labels {
            labels.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    object.metadata = metadata;
    object.data = json!({ "spec": spec });
    object
}

/// The PodMonitor `S-api`: every API pod's `/metrics` on its `http` port at `spec.monitoring.interval`,
/// each series labelled `stack=S` (Prometheus adds `namespace` and `pod`).
pub fn pod_monitor(stack: &ValidatedStack) -> DynamicObject {
    let spec = json!({
        "selector": { "matchLabels": stack.selector_labels(app::COMPONENT) },
        "podMetricsEndpoints": [{
            "port": HTTP_PORT_NAME,
            "path": METRICS,
            "interval": stack.spec.monitoring.interval,
            "relabelings": [{
                "action": "replace",
                "targetLabel": STACK_SERIES_LABEL,
                "replacement": stack.name,
            }],
        }],
    });
    monitoring_object(stack, &pod_monitor_resource(), stack.names().api(), spec)
}

/// The PrometheusRule `S-slo`: the rule groups of [`rules::groups`].
pub fn prometheus_rule(stack: &ValidatedStack) -> DynamicObject {
    let spec = json!({ "groups": rules::groups(stack) });
    monitoring_object(
        stack,
        &prometheus_rule_resource(),
        stack.names().slo_rules(),
        spec,
    )
}
