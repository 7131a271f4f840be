//! One place that sets up logging and, when an OTLP endpoint is configured, trace export for every
//! subcommand. Logs and traces filter separately: `--log-filter` decides what is logged, while the
//! spans the API opens for its database and Redis calls (debug level) are exported whenever traces
//! are on, and cost nothing (their callsites stay disabled) when they are not.
pub mod spans;

use clap::{Args, ValueEnum};
use perfstack_contract::env;
use perfstack_otel::TraceExport;
use tracing::Level;
use tracing_subscriber::{EnvFilter, Layer, filter::Targets, fmt, prelude::*};

/// `service.name` of the API's traces unless `OTEL_SERVICE_NAME` says otherwise.
pub const SERVICE_NAME: &str = "perfstack-app";

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Logging flags shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log format.
    #[arg(long, env = env::LOG_FORMAT, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Log filter in `RUST_LOG` syntax.
    #[arg(
        long,
        env = "RUST_LOG",
        default_value = "info,sqlx=warn,tower_http=warn",
        global = true
    )]
    pub log_filter: String,
}

/// What traces export: the API's own spans down to debug (requests, jobs, SQL, Redis), and other
/// crates' from info.
fn exported() -> Targets {
    Targets::new()
        .with_default(Level::INFO)
        .with_target("perfstack_app", Level::DEBUG)
}

/// Installs the global subscriber, with trace export when the OTLP variables name an endpoint. Keep
/// the returned guard until the process ends: dropping it flushes the spans not sent yet. Safe to
/// call once; later calls are ignored.
pub fn init(args: &LogArgs) -> Option<TraceExport> {
    let filter = EnvFilter::try_new(&args.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = match args.log_format {
        LogFormat::Json => fmt::layer().json().with_current_span(true).boxed(),
        LogFormat::Text => fmt::layer().with_writer(std::io::stderr).boxed(),
    };
    let traces = perfstack_otel::from_env(SERVICE_NAME);
    let result = tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(traces.layer.map(|layer| layer.with_filter(exported())))
        .try_init();
    drop(result);
    if let Some(error) = traces.problem {
        tracing::error!(error = %error, "traces are not exported");
    }
    traces.export
}
