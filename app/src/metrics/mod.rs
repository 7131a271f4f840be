//! Prometheus metrics of the API: one registry, the HTTP families recorded by [`http::track`],
//! and the families other areas own (pool, queries, cache, memory) registered into it.
//! The families the tuner reads take name, unit and HELP text from `perfstack_contract::metrics`
//! (docs/contract.md); the others are listed in docs/metrics.md.
pub mod cpu;
pub mod http;
pub mod process;
pub mod route_stats;
pub mod text_format;

use std::sync::Arc;

use perfstack_contract::metrics::{self as contract, HTTP_REQUEST_DURATION, HTTP_REQUESTS};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Metric, Registry, Unit},
};

use self::route_stats::RouteStats;

/// Latency buckets in seconds, 1 ms .. 5 s, about 12 per decade at the low end so that
/// p50/p95/p99 can be interpolated within a few percent.
pub const LATENCY_BUCKETS: [f64; 24] = [
    0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4,
    0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0,
];

/// A histogram with [`LATENCY_BUCKETS`].
pub fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Labels whose names and values are written in the code, e.g. `[("level", "l1")]`, encoded as
/// `{level="l1"}`: families labelled so need no label struct of their own.
pub type StaticLabels<const N: usize> = [(&'static str, &'static str); N];

/// Registers a family the tuner reads under the name, unit and HELP text the contract gives it.
pub fn register_contract(registry: &mut Registry, family: &contract::Family, metric: impl Metric) {
    match family.unit {
        Some("seconds") => registry.register_with_unit(family.name, family.help, Unit::Seconds, metric),
        Some(unit) => registry.register_with_unit(family.name, family.help, Unit::Other(unit.into()), metric),
        None => registry.register(family.name, family.help, metric),
    }
}

/// Labels of a finished request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: &'static str,
    pub method: &'static str,
    pub status_class: &'static str,
}

/// Labels of a request latency observation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: &'static str,
    pub method: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The HTTP families, recorded by the middleware.
#[derive(Clone)]
pub struct HttpMetrics {
    pub requests: Family<RequestLabels, Counter>,
    pub duration: HistogramFamily<RouteLabels>,
    pub in_flight: Gauge,
    /// Requests turned away by a limit, an outage or auth, by reason (`http::error::Rejection`).
    pub rejections: Family<StaticLabels<1>, Counter>,
    /// Exports cut off because their client read nothing for the idle timeout.
    pub export_cutoffs: Counter,
}

/// Something that owns metric families and adds them to the registry.
pub trait RegisterMetrics {
    fn register(&self, registry: &mut Registry);
}

/// The registry and the HTTP metrics. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub http: HttpMetrics,
    pub routes: Arc<RouteStats>,
}

impl Metrics {
    /// A registry with the HTTP and process families plus those of `parts`.
    pub fn new(parts: &[&dyn RegisterMetrics]) -> Self {
        let mut registry = Registry::default();
        let http = HttpMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
            in_flight: Gauge::default(),
            rejections: Family::default(),
            export_cutoffs: Counter::default(),
        };
        register_contract(&mut registry, &HTTP_REQUESTS, http.requests.clone());
        register_contract(&mut registry, &HTTP_REQUEST_DURATION, http.duration.clone());
        registry.register(
            "perfstack_http_requests_in_flight",
            "HTTP requests being served",
            http.in_flight.clone(),
        );
        registry.register(
            "perfstack_http_rejections",
            "Requests turned away by a limit, an outage or auth, by reason",
            http.rejections.clone(),
        );
        registry.register(
            "perfstack_http_export_cutoffs",
            "Exports cut off because their client read nothing for the idle timeout",
            http.export_cutoffs.clone(),
        );
        process::register(&mut registry);
        for part in parts {
            part.register(&mut registry);
        }
        Self {
            registry: Arc::new(registry),
            http,
            routes: Arc::new(RouteStats::default()),
        }
    }

    /// The registry in the Prometheus text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}
