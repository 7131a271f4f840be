//! perfstack-operator: deploys perfstack's API, PostgreSQL and Redis from a `PerformanceStack` and keeps
//! them as specified.
pub mod build;
pub mod cli;
pub mod controller;
pub mod crd;
pub mod metrics;
pub mod run;
pub mod telemetry;
pub mod tuner;

pub use crd::{PerformanceStack, PerformanceStackSpec, StackStatus};

/// Field manager for every server-side apply and the name of the operator in events and labels.
pub const MANAGER: &str = "perfstack-operator";

/// The `PerformanceStack` CRD as YAML, as committed in crds/performancestack.yaml.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    use kube::CustomResourceExt;
    serde_yaml::to_string(&PerformanceStack::crd())
}
