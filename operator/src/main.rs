//! `perfstack-operator`: wiring only.
use std::process::ExitCode;

use clap::Parser;
use perfstack_operator::cli::{Cli, Command};

/// mimalloc, not glibc's malloc: measured in docs/benchmarks.md ("The allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Local(args) => perfstack_operator::tuner::local::command(args).await,
        Command::Crdgen => match perfstack_operator::crd_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("perfstack-operator: rendering the CRD: {error}");
                ExitCode::FAILURE
            }
        },
        Command::MonitoringRules(args) => match perfstack_operator::rule_file::render(&args) {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!(
                    "perfstack-operator: {}",
                    perfstack_operator::controller::ErrorChain(&error)
                );
                ExitCode::FAILURE
            }
        },
        Command::Run(args) => {
            let traces = perfstack_operator::telemetry::init(args.log_format);
            let code = match perfstack_operator::run::run(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!(error = format!("{error:#}"), "operator stopped");
                    ExitCode::FAILURE
                }
            };
            drop(traces);
            code
        }
    }
}
