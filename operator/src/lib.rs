//! perfstack-operator: deploys perfstack's API, PostgreSQL and Redis from a `PerformanceStack` and keeps
//! them as specified.
pub mod children;
pub mod cli;
pub mod controller;
pub mod crd;
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
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    use kube::CustomResourceExt;
    serde_yaml::to_string(&PerformanceStack::crd()).map(|yaml| quote_yaml11_booleans(&yaml))
}

/// Plain scalars that YAML 1.1 readers, Kubernetes' among them, take for booleans.
const YAML11_BOOLEANS: [&str; 16] = [
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
];

/// Quotes sequence items and mapping values that YAML 1.1 would read as booleans. serde_yaml writes
/// YAML 1.2, where `Off` is a string; `kubectl apply` would turn the `tuning.mode` enum value `Off`
/// into `false`, and the string "Off" could then never be set.
fn quote_yaml11_booleans(yaml: &str) -> String {
    let mut out = String::with_capacity(yaml.len());
    for line in yaml.lines() {
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        match (body.strip_prefix("- "), body.split_once(": ")) {
            (Some(item), _) if YAML11_BOOLEANS.contains(&item) => {
                out.push_str(&format!("{indent}- '{item}'"));
            }
            (None, Some((key, value))) if YAML11_BOOLEANS.contains(&value) => {
                out.push_str(&format!("{indent}{key}: '{value}'"));
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::quote_yaml11_booleans;

    #[test]
    fn yaml11_booleans_are_quoted_and_nothing_else_changes() {
        let yaml = "enum:\n- Auto\n- Off\nmode: No\ndescription: Off disables tuning.\nname: Offset\n";
        assert_eq!(
            quote_yaml11_booleans(yaml),
            "enum:\n- Auto\n- 'Off'\nmode: 'No'\ndescription: Off disables tuning.\nname: Offset\n"
        );
    }
}
