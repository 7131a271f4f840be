//! OpenTelemetry traces for perfstack's processes (the API and the operator), exported over OTLP only
//! when the standard variables name an endpoint (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_ENDPOINT`; `OTEL_EXPORTER_OTLP_HEADERS`, `_TIMEOUT`, `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_BSP_*` are honoured by the SDK itself). Without one nothing is
//! installed: no exporter thread, no OpenTelemetry layer, and the propagation helpers return at once.
//!
//! Spans are the `tracing` spans the code already opens, bridged by `tracing-opentelemetry`; context
//! crosses process boundaries as a W3C `traceparent` ([`set_parent_from_headers`] for HTTP requests,
//! [`traceparent`] / [`set_parent_from_traceparent`] for anything stored, like a queued job).
mod propagation;
#[cfg(feature = "receiver")]
pub mod receiver;
pub mod scoped;

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::registry::LookupSpan;

pub use propagation::{set_parent_from_headers, set_parent_from_traceparent, traceparent};

/// The endpoint for traces only, used as is.
pub const TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// The collector's base URL; `/v1/traces` is appended.
pub const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// `http/protobuf` (the default, and the only protocol this build speaks) or another one.
pub const PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
/// `true` turns the SDK off whatever else is set.
pub const SDK_DISABLED: &str = "OTEL_SDK_DISABLED";
/// `none` turns trace export off.
pub const TRACES_EXPORTER: &str = "OTEL_TRACES_EXPORTER";

/// Whether a layer was installed; read by the propagation helpers so that they cost nothing without it.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether traces are exported by this process.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Where traces go, from the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtlpSettings {
    /// The URL spans are posted to (`.../v1/traces`).
    pub traces_endpoint: String,
}

/// Why traces could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("{PROTOCOL}={0} is not supported: this build exports OTLP over HTTP/protobuf (port 4318)")]
    Protocol(String),
    #[error("building the OTLP exporter: {0}")]
    Exporter(#[source] opentelemetry_otlp::ExporterBuildError),
}

impl OtlpSettings {
    /// The settings `var` (an environment lookup) describes; `None` when no endpoint is set, or the
    /// SDK or trace export is turned off. An unsupported protocol is an error, not a silent no-op.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, OtlpError> {
        let set = |name: &str| var(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        if set(SDK_DISABLED).is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || set(TRACES_EXPORTER).is_some_and(|v| v.eq_ignore_ascii_case("none"))
        {
            return Ok(None);
        }
        let traces_endpoint = match (set(TRACES_ENDPOINT), set(ENDPOINT)) {
            (Some(traces), _) => traces,
            (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
            (None, None) => return Ok(None),
        };
        if let Some(protocol) = set(PROTOCOL).filter(|p| p != "http/protobuf") {
            return Err(OtlpError::Protocol(protocol));
        }
        Ok(Some(Self { traces_endpoint }))
    }

    /// The settings of this process's environment.
    pub fn from_process_env() -> Result<Option<Self>, OtlpError> {
        Self::from_env(|name| std::env::var(name).ok())
    }
}

/// Keeps the exporter running; dropping it flushes the spans not sent yet and stops it.
pub struct TraceExport {
    provider: SdkTracerProvider,
}

impl Drop for TraceExport {
    fn drop(&mut self) {
        if let Err(error) = self.provider.shutdown() {
            eprintln!("perfstack-otel: flushing traces at exit: {error}");
        }
    }
}

/// The `tracing` layer exporting spans as `service` (unless `OTEL_SERVICE_NAME` names it), and the
/// guard that keeps the export running. Also installs the W3C trace-context propagator.
pub fn layer<S>(
    service: &'static str,
    settings: &OtlpSettings,
) -> Result<(OpenTelemetryLayer<S, SdkTracer>, TraceExport), OtlpError>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    let endpoint = settings.traces_endpoint.clone();
    // The blocking HTTP client must not be created (or dropped) on an async runtime's thread; the
    // batch processor then owns it on its own thread.
    let exporter = std::thread::spawn(move || {
        opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint)
            .build()
    })
    .join()
    .map_err(|_| {
        OtlpError::Exporter(opentelemetry_otlp::ExporterBuildError::InternalFailure(
            "the exporter thread panicked".into(),
        ))
    })?
    .map_err(OtlpError::Exporter)?;
    let mut resource = Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_ok_and(|name| name.trim().is_empty())
        || std::env::var_os("OTEL_SERVICE_NAME").is_none()
    {
        resource = resource.with_service_name(service);
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer(service);
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    ENABLED.store(true, Ordering::Relaxed);
    Ok((
        tracing_opentelemetry::layer().with_tracer(tracer),
        TraceExport { provider },
    ))
}

/// What the environment asks a process for: the layer and the guard keeping the export running when
/// traces are exported, and why not when they were asked for but cannot be (to be logged once the
/// subscriber is installed).
pub struct FromEnv<S> {
    /// Install it (with a filter of its own) next to the log layer.
    pub layer: Option<OpenTelemetryLayer<S, SdkTracer>>,
    /// Keep it until the process ends.
    pub export: Option<TraceExport>,
    /// An endpoint was set, but the exporter could not be set up.
    pub problem: Option<OtlpError>,
}

/// [`layer`] as this process's environment configures it (nothing without an endpoint).
pub fn from_env<S>(service: &'static str) -> FromEnv<S>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    let built = OtlpSettings::from_process_env()
        .and_then(|settings| settings.map(|s| layer(service, &s)).transpose());
    match built {
        Ok(Some((layer, export))) => FromEnv {
            layer: Some(layer),
            export: Some(export),
            problem: None,
        },
        Ok(None) => FromEnv {
            layer: None,
            export: None,
            problem: None,
        },
        Err(problem) => FromEnv {
            layer: None,
            export: None,
            problem: Some(problem),
        },
    }
}

#[cfg(test)]
mod tests;
