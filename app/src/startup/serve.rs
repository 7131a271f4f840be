//! `perfstack-app serve`: the API, its background tasks (tuning file, server limits, pool monitor,
//! memory guard) and, unless `--no-workers`, the job workers.
//!
//! Start: the process listens at once and keeps trying the database (and Redis) in the background;
//! it is unready until the database has answered, never crash-looping on a dependency that is not
//! there yet. Without Redis the cache and the job routes are degraded (`/health`, metrics).
//!
//! Shutdown on SIGTERM/SIGINT, within the pod's termination grace period (30 s, set by the
//! operator):
//! 1. readiness fails at once, responses carry `Connection: close`, the workers stop claiming;
//! 2. the process keeps serving and accepting for `--drain-delay-s` (default 5 s) while the
//!    Service's endpoints drop it;
//! 3. the listener closes; requests in flight get `--shutdown-grace-s` (default 15 s);
//! 4. the workers' running jobs get `--job-shutdown-grace-s` from step 1 (default 20 s);
//! 5. the pool closes within `--pool-close-timeout-ms` (default 3 s).
//!
//! With the defaults the whole sequence ends within max(5 + 15, 20) + 3 = 23 s.
use std::{sync::Arc, time::Duration};

use tokio::sync::watch;

use super::{
    listener::{ConnectionLimits, serve_until},
    shutdown::shutdown_signal,
    worker::run_workers,
};
use crate::{
    config::{JobsConfig, ServeConfig, ServeWorkers},
    db::{Db, pool_monitor, server_limits, tuning},
    http::{AppState, health::Lifecycle, router},
    jobs::{JobContext, JobQueue, mailer::Mailer, worker::Worker},
};

/// Runs `serve` on `db` (not connected yet: `/readyz` fails until it answers) until a shutdown
/// signal, then shuts down in the order above.
pub async fn serve(
    db: Db,
    cfg: ServeConfig,
    jobs_cfg: JobsConfig,
    workers: ServeWorkers,
) -> anyhow::Result<()> {
    let lifecycle = Arc::new(Lifecycle::starting());
    tokio::spawn(wait_for_database(db.clone(), Arc::clone(&lifecycle)));
    let jobs = match cfg.cache.expose_redis_url() {
        Some(url) => Some(JobQueue::connect(&url, jobs_cfg.clone()).await?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(cfg.server.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "perfstack-app listening");
    let server = cfg.server.clone();
    let mailer = Mailer::from_config(&jobs_cfg)?;
    let state = AppState::try_new(db.clone(), cfg)?
        .with_jobs(jobs)
        .with_mailer(&mailer)
        .with_lifecycle(Arc::clone(&lifecycle));
    if !state.cache.wait_until_ready(Duration::from_secs(2)).await {
        tracing::warn!("Redis not reachable at start; serving without L2 until it is");
    }
    start_background_tasks(&state);
    let (stop_workers, workers_stopped) = watch::channel(false);
    let worker = match (&state.jobs, workers.no_workers) {
        (Some(queue), false) => {
            let ctx = JobContext {
                db: db.clone(),
                mailer,
            };
            let worker = Worker::new(queue, state.job_metrics.clone());
            Some(tokio::spawn(run_workers(worker, ctx, workers_stopped)))
        }
        _ => None,
    };
    let (stop_accepting, accepting_stopped) = watch::channel(false);
    let connections = ConnectionLimits {
        header_read_timeout: server.header_read_timeout(),
        grace: server.shutdown_grace(),
    };
    let http = tokio::spawn(serve_until(
        listener,
        router(state),
        connections,
        accepting_stopped,
    ));

    shutdown_signal().await;
    lifecycle.start_draining();
    let _ = stop_workers.send(true);
    tracing::info!(
        drain_delay_s = server.drain_delay_s,
        "draining: readiness fails, still serving until the endpoints drop this pod"
    );
    tokio::time::sleep(server.drain_delay()).await;
    let _ = stop_accepting.send(true);
    let _ = http.await;
    if let Some(worker) = worker {
        // Stopped with the signal; bounded by JOBS_SHUTDOWN_GRACE_S.
        let _ = worker.await;
    }
    if tokio::time::timeout(server.pool_close_timeout(), db.pool().close())
        .await
        .is_err()
    {
        tracing::warn!("the database pool did not close in time");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Marks the process ready once the database answers (retrying with backoff until it does).
async fn wait_for_database(db: Db, lifecycle: Arc<Lifecycle>) {
    db.wait_until_answering().await;
    lifecycle.database_answered();
    tracing::info!("the database answered; ready");
}

/// The tuning-file watcher, the server-limits watcher, the pool monitor and the memory guard.
fn start_background_tasks(state: &AppState) {
    if let Some(path) = state.config.tuning.tuning_file.clone() {
        tracing::info!(path = %path.display(), "watching the tuning file");
        tokio::spawn(tuning::watch(
            state.db.clone(),
            path,
            state.config.tuning.poll_interval(),
        ));
    }
    tokio::spawn(server_limits::watch(
        state.db.clone(),
        server_limits::REFRESH_INTERVAL,
    ));
    if let Some(interval) = state.config.pool.log_interval() {
        tokio::spawn(pool_monitor::watch(state.db.clone(), interval));
    }
    let memory = &state.config.memory;
    state
        .cache
        .start_memory_guard(memory.threshold_bytes(), memory.sample_interval());
}
