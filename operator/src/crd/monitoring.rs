//! `spec.monitoring`: what the operator hands a Prometheus Operator (PodMonitor, PrometheusRule).
use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Prometheus Operator objects for the stack.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MonitoringSpec {
    /// When true and the cluster serves the Prometheus Operator's monitoring.coreos.com/v1 kinds, the
    /// operator creates a PodMonitor scraping every API pod's /metrics and a PrometheusRule with alerts
    /// derived from spec.slo (error budget burn rate, p95 above target, pool saturation, dead-lettered
    /// jobs, Redis down). When the kinds are not served, the Monitoring condition says so and the rest
    /// of the stack is deployed as usual.
    #[serde(default)]
    pub enabled: bool,
    /// How often Prometheus scrapes the API pods, e.g. 30s.
    #[serde(default = "default_interval")]
    #[schemars(regex(pattern = r"^[0-9]+(ms|s|m)$"))]
    pub interval: String,
    /// Extra labels on the PodMonitor and the PrometheusRule, e.g. the `release` label your Prometheus
    /// selects monitors and rules by.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl Default for MonitoringSpec {
    fn default() -> Self {
        Self {
            enabled: false,
            interval: default_interval(),
            labels: BTreeMap::new(),
        }
    }
}

fn default_interval() -> String {
    "30s".to_owned()
}
