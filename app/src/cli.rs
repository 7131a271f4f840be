//! Subcommands: `serve`, `migrate`, `seed`, `worker`, `loadtest`. Wiring only: each subcommand is
//! its flag groups (`config`) and one call (`startup`, `db::migrate`, `db::seed`, `loadtest`).
use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use perfstack_contract::{env, migration::MigrationReport};
use secrecy::SecretString;

use crate::{
    config::{DbConfig, JobsConfig, ServeConfig, ServeWorkers, SessionLimits, WorkerConfig},
    db::{self, Db, migrate::MigrateOptions, roles::AppRole, seed::SeedSizes},
    loadtest::{self, LoadtestArgs},
    startup,
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
    Serve(Box<ServeArgs>),
    /// Run the background job workers (email, report) without the API.
    Worker(Box<WorkerArgs>),
    /// Apply migrations and build or repair indexes; prints one line of JSON.
    Migrate {
        #[command(flatten)]
        db: DbConfig,
        #[command(flatten)]
        opts: MigrateArgs,
    },
    /// Replace users, projects and tasks with a deterministic demo dataset (demo databases only).
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

/// Flags of `serve` (boxed: they are many).
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbConfig,
    #[command(flatten)]
    pub limits: SessionLimits,
    #[command(flatten)]
    pub serve: ServeConfig,
    #[command(flatten)]
    pub jobs: JobsConfig,
    #[command(flatten)]
    pub workers: ServeWorkers,
}

/// Flags of `worker` (boxed, like `serve`'s).
#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub db: DbConfig,
    #[command(flatten)]
    pub limits: SessionLimits,
    #[command(flatten)]
    pub worker: WorkerConfig,
    #[command(flatten)]
    pub jobs: JobsConfig,
}

/// Flags of `migrate`.
#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// Also write the JSON summary line to this file (the migration Job uses /dev/termination-log).
    #[arg(long = "summary-file", env = env::MIGRATE_SUMMARY_FILE)]
    pub summary_file: Option<PathBuf>,
    /// Longest wait for a table lock before an index build gives up and is retried, in milliseconds.
    #[arg(
        long = "lock-timeout-ms",
        env = "MIGRATE_LOCK_TIMEOUT_MS",
        default_value_t = 5000
    )]
    pub lock_timeout_ms: u64,
    /// Role the API connects as: created (or its password set) and granted reads and writes of
    /// the app's tables and nothing more, after the migrations. Needs `--app-password`.
    #[arg(long = "app-user", env = env::DB_APP_USER, requires = "app_password")]
    pub app_user: Option<String>,
    /// Password of `--app-user`. Never logged.
    #[arg(long = "app-password", env = env::DB_APP_PASSWORD, hide_env_values = true, requires = "app_user")]
    pub app_password: Option<SecretString>,
}

impl MigrateArgs {
    /// The app role to set up, when one is given.
    pub fn app_role(&self) -> Option<AppRole> {
        match (&self.app_user, &self.app_password) {
            (Some(name), Some(password)) => Some(AppRole {
                name: name.clone(),
                password: password.clone(),
            }),
            _ => None,
        }
    }
}

/// How much demo data `seed` makes.
#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    /// Users to make (ids 1..=N; 80% active).
    #[arg(long, default_value_t = 10_000)]
    pub users: u32,
    /// Projects to make, owned by seeded users.
    #[arg(long, default_value_t = 2_000)]
    pub projects: u32,
    /// Tasks to make, spread evenly over the projects.
    #[arg(long, default_value_t = 100_000)]
    pub tasks: u32,
}

impl SeedArgs {
    pub fn sizes(&self) -> SeedSizes {
        SeedSizes {
            users: self.users,
            projects: self.projects,
            tasks: self.tasks,
        }
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let ServeArgs {
                db,
                limits,
                serve,
                jobs,
                workers,
            } = *args;
            startup::serve(Db::connect_lazy(&db, &limits)?, serve, jobs, workers).await
        }
        Command::Worker(args) => {
            let WorkerArgs {
                db,
                limits,
                worker,
                jobs,
            } = *args;
            startup::worker(Db::connect_lazy(&db, &limits)?, worker, jobs).await
        }
        Command::Migrate { db, opts } => migrate(&db, &opts).await,
        Command::Seed { db, sizes } => {
            let handle = Db::connect(&db).await?;
            let started = std::time::Instant::now();
            db::seed::apply(&handle, sizes.sizes()).await?;
            tracing::info!(
                users = sizes.users,
                projects = sizes.projects,
                tasks = sizes.tasks,
                seconds = started.elapsed().as_secs_f64(),
                "demo data seeded"
            );
            Ok(())
        }
        Command::Loadtest(args) => Ok(loadtest::run(&args).await?),
    }
}

/// Runs migrate and reports one JSON line (the contract's [`MigrationReport`]) on stdout and in the
/// summary file. On failure only the summary file gets it (`{"error": "..."}`), so the operator can
/// show why.
async fn migrate(cfg: &DbConfig, args: &MigrateArgs) -> anyhow::Result<()> {
    let opts = MigrateOptions {
        lock_timeout: Duration::from_millis(args.lock_timeout_ms),
    };
    let result = async {
        let handle = Db::connect(cfg).await?;
        let summary = db::migrate::apply(&handle, &opts).await?;
        if let Some(role) = args.app_role() {
            db::roles::ensure_app_role(&handle, &role)
                .await
                .with_context(|| format!("could not set up the app role {}", role.name))?;
        }
        handle.pool().close().await;
        anyhow::Ok(summary)
    }
    .await;
    let report = match &result {
        Ok(summary) => MigrationReport::Succeeded(summary.clone()),
        Err(err) => MigrationReport::Failed {
            error: format!("{err:#}"),
        },
    };
    let line = report.to_line();
    if let Some(path) = &args.summary_file
        && let Err(err) = std::fs::write(path, format!("{line}\n"))
    {
        tracing::warn!(path = %path.display(), error = %err, "could not write the summary file");
    }
    result?;
    println!("{line}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Flattened argument groups (db, serve, jobs) must not reuse an argument name.
    #[test]
    fn every_subcommand_has_consistent_arguments() {
        super::Cli::command().debug_assert();
    }
}
