//! Building the process, in one place: `serve` (the API, and the workers unless `--no-workers`)
//! and `worker` (the workers alone) from their configuration. Each connects its dependencies,
//! starts the background tasks (tuning watcher, server-limits watcher, memory guard, workers),
//! listens, and shuts down gracefully on SIGTERM/SIGINT. `http/` only describes the routes;
//! `cli.rs` only picks the subcommand.
mod listener;
mod serve;
mod shutdown;
mod state;
mod worker;

pub use self::{
    serve::serve,
    shutdown::shutdown_signal,
    worker::{run_workers, worker},
};
