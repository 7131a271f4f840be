//! Subcommands: `serve`, `migrate`, `seed`, `worker`.
use clap::{Args, Parser, Subcommand};

use crate::{
    config::{DbConfig, ServeConfig},
    db, http,
    jobs::{JobsConfig, config::ServeWorkers, standalone::WorkerArgs},
    telemetry::LogArgs,
};

#[derive(Debug, Parser)]
#[command(
    name = "perfstack-app",
    version,
    about = "The perfstack API: users, projects and tasks"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API.
    Serve {
        #[command(flatten)]
        db: DbConfig,
        #[command(flatten)]
        serve: ServeConfig,
        #[command(flatten)]
        jobs: JobsConfig,
        #[command(flatten)]
        workers: ServeWorkers,
    },
    /// Run the background job workers (email, report) without the API.
    Worker {
        #[command(flatten)]
        db: DbConfig,
        #[command(flatten)]
        worker: WorkerArgs,
        #[command(flatten)]
        jobs: JobsConfig,
    },
    /// Apply migrations and build or repair indexes; prints one line of JSON.
    Migrate {
        #[command(flatten)]
        db: DbConfig,
    },
    /// Fill the database with a deterministic demo dataset.
    Seed {
        #[command(flatten)]
        db: DbConfig,
        #[command(flatten)]
        sizes: SeedArgs,
    },
}

/// How much demo data `seed` makes.
#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    #[arg(long, default_value_t = 10_000)]
    pub users: u32,
    #[arg(long, default_value_t = 2_000)]
    pub projects: u32,
    #[arg(long, default_value_t = 100_000)]
    pub tasks: u32,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            db,
            serve,
            jobs,
            workers,
        } => http::serve(db, serve, jobs, workers).await,
        Command::Worker { db, worker, jobs } => crate::jobs::standalone::run(db, worker, jobs).await,
        Command::Migrate { db } => {
            let summary = db::migrate::run(&db).await?;
            println!("{}", serde_json::to_string(&summary)?);
            Ok(())
        }
        Command::Seed { db, sizes } => db::seed::run(&db, &sizes).await,
    }
}
