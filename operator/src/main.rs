//! `perfstack-operator`: wiring only.
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "perfstack-operator",
    version,
    about = "Deploys and tunes perfstack stacks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the controller against the cluster in KUBECONFIG or in-cluster config.
    Run,
    /// Print the PerformanceStack CustomResourceDefinition as YAML.
    Crdgen,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run | Command::Crdgen => {
            eprintln!("perfstack-operator: not yet");
            std::process::ExitCode::FAILURE
        }
    }
}
