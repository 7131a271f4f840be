//! perfstack-operator: deploys perfstack's API, PostgreSQL and Redis from a `PerformanceStack` and keeps
//! them as specified.
pub mod children;
pub mod cli;
pub mod controller;
pub mod crd;
pub mod fence;
pub mod kube_requests;
pub mod metrics;
pub mod rule_file;
pub mod run;
pub mod telemetry;
pub mod tuner;

pub use crd::{PerformanceStack, PerformanceStackSpec, StackStatus};

/// Field manager for every server-side apply and the name of the operator in events and labels.
pub const MANAGER: &str = "perfstack-operator";

/// The `PerformanceStack` CRD as YAML, as committed in crds/performancestack.yaml.
pub fn crd_yaml() -> Result<String, serde_saphyr::ser::Error> {
    use kube::CustomResourceExt;
    to_yaml(&PerformanceStack::crd())
}

/// YAML as the operator writes it (the CRD, the golden files of its children), with serde-saphyr,
/// the maintained YAML crate kube already depends on (serde_yaml is deprecated).
///
/// Plain scalars that YAML 1.1 readers, Kubernetes' among them, take for booleans (`Off`, `no`, ...)
/// come out quoted: `kubectl apply` would otherwise turn the `tuning.mode` enum value `Off` into
/// `false`, and the string "Off" could then never be set. Long strings stay on one line (no folded
/// block scalars), so a changed description is a one-line diff.
pub fn to_yaml<T: serde::Serialize>(value: &T) -> Result<String, serde_saphyr::ser::Error> {
    serde_saphyr::to_string_with_options(
        value,
        serde_saphyr::ser_options! { folded_wrap_chars: usize::MAX },
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::to_yaml;

    #[test]
    fn yaml11_booleans_are_quoted_and_nothing_else_changes() {
        let value = BTreeMap::from([
            ("enum", vec!["Auto", "Off"]),
            ("mode", vec!["No"]),
            ("description", vec!["Off disables tuning."]),
            ("name", vec!["Offset"]),
        ]);
        assert_eq!(
            to_yaml(&value).unwrap(),
            "description:\n- Off disables tuning.\nenum:\n- Auto\n- \"Off\"\nmode:\n- \"No\"\nname:\n- Offset\n"
        );
    }
}
