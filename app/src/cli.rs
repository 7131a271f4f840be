//! Subcommands: `serve`, `migrate`, `seed`, `loadtest`.
use clap::{Args, Parser, Subcommand};

use crate::{
    config::{DbConfig, ServeConfig},
    db, http,
    loadtest::{self, LoadtestArgs},
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
    /// Drive a running API with a load scenario, check the SLOs, write JSON and HTML reports.
    /// Exits 1 when a check fails.
    Loadtest(LoadtestArgs),
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
        Command::Serve { db, serve } => http::serve(db, serve).await,
        Command::Migrate { db } => {
            let summary = db::migrate::run(&db).await?;
            println!("{}", serde_json::to_string(&summary)?);
            Ok(())
        }
        Command::Seed { db, sizes } => db::seed::run(&db, &sizes).await,
        Command::Loadtest(args) => Ok(loadtest::run(&args).await?),
    }
}
