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
    /// Tune the pool of an app running on this machine (no cluster): scrape its /metrics,
    /// decide, write the tuning file it watches, print every decision with its reason.
    Local(perfstack_operator::tuner::act_local::LocalArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Local(args) => perfstack_operator::tuner::act_local::main(args),
        Command::Run | Command::Crdgen => {
            eprintln!("perfstack-operator: not yet");
            std::process::ExitCode::FAILURE
        }
    }
}
