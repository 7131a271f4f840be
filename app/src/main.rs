//! `perfstack-app`: the API that perfstack deploys. Wiring only; the work lives in the library.
use clap::Parser;
use perfstack_app::{cli, telemetry};

/// mimalloc, not glibc's malloc: measured in docs/benchmarks.md ("The allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let traces = telemetry::init(&cli.log);
    let outcome = cli::run(cli).await;
    // Flushes the spans not exported yet (a no-op without trace export).
    drop(traces);
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "perfstack-app failed");
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
