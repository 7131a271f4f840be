//! HTTP paths of the API that the operator relies on (probes and the tuner's scrape).

/// Liveness: 200 while the process runs.
pub const LIVEZ: &str = "/livez";
/// Readiness: 200 while the pod should receive traffic.
pub const READYZ: &str = "/readyz";
/// Prometheus metrics (names in [`crate::metrics`]).
pub const METRICS: &str = "/metrics";
/// Human-readable summary of the pod and its dependencies.
pub const HEALTH: &str = "/health";
/// Name of the API container's HTTP port.
pub const HTTP_PORT_NAME: &str = "http";
/// Port the API listens on when the spec does not say.
pub const DEFAULT_HTTP_PORT: u16 = 8080;
