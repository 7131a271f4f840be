//! Logging (JSON in-cluster or human-readable text, filtered by RUST_LOG, default info) and, when the
//! standard OTLP variables name an endpoint, trace export: every reconcile is a trace, with the
//! operator's steps and its requests to the API server as spans (`perfstack-otel`).
use perfstack_otel::TraceExport;
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, Layer};

/// `service.name` of the operator's traces unless `OTEL_SERVICE_NAME` says otherwise.
pub const SERVICE_NAME: &str = "perfstack-operator";

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, with the current span (the stack) in each.
    Json,
    /// Human-readable lines.
    Text,
}

/// What traces export: the operator's spans down to debug, the kube client's requests, others from info.
pub fn exported() -> Targets {
    Targets::new()
        .with_default(Level::INFO)
        .with_target("perfstack_operator", Level::DEBUG)
        .with_target("kube_client", Level::DEBUG)
}

/// Installs the global subscriber. Call once, at start-up; keep the returned guard until the process
/// ends (dropping it flushes the spans not exported yet).
pub fn init(format: LogFormat) -> Option<TraceExport> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Json => logs.json().with_current_span(true).with_span_list(false).boxed(),
        LogFormat::Text => logs.boxed(),
    };
    let traces = perfstack_otel::from_env(SERVICE_NAME);
    tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(traces.layer.map(|layer| layer.with_filter(exported())))
        .init();
    if let Some(error) = traces.problem {
        tracing::error!(error = %error, "traces are not exported");
    }
    traces.export
}
