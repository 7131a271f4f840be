//! `perfstack-app serve`: the API, its background tasks (tuning file, server limits, pool monitor,
//! memory guard) and, unless `--no-workers`, the job workers.
use std::time::Duration;

use tokio::sync::watch;

use super::{shutdown::shutdown_signal, worker::run_workers};
use crate::{
    config::{DbConfig, JobsConfig, ServeConfig, ServeWorkers},
    db::{Db, pool_monitor, server_limits, tuning},
    http::{AppState, router},
    jobs::{JobContext, JobQueue, mailer::Mailer, worker::Worker},
};

/// Connects, serves on the configured address, and shuts down gracefully on SIGTERM/SIGINT:
/// the listener closes at once, in-flight requests get `shutdown_grace_s` to finish.
/// Unless `--no-workers`, the job workers run alongside and drain on the same signal.
pub async fn serve(
    db_cfg: DbConfig,
    cfg: ServeConfig,
    jobs_cfg: JobsConfig,
    workers: ServeWorkers,
) -> anyhow::Result<()> {
    let db = Db::connect(&db_cfg).await?;
    let jobs = match cfg.cache.expose_redis_url() {
        Some(url) => Some(JobQueue::connect(url, jobs_cfg.clone()).await?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(cfg.server.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "perfstack-app listening");
    let grace = Duration::from_secs(cfg.server.shutdown_grace_s);
    let mailer = Mailer::from_config(&jobs_cfg)?;
    let state = AppState::try_new(db.clone(), cfg)?
        .with_jobs(jobs)
        .with_mailer(&mailer);
    if !state.cache.wait_until_ready(Duration::from_secs(2)).await {
        tracing::warn!("Redis not reachable at start; serving without L2 until it is");
    }
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
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let worker = match (&state.jobs, workers.no_workers) {
        (Some(queue), false) => {
            let ctx = JobContext {
                db: db.clone(),
                mailer,
            };
            let worker = Worker::new(queue, state.job_metrics.clone());
            Some(tokio::spawn(run_workers(worker, ctx, stop_tx.subscribe())))
        }
        _ => None,
    };
    let server = axum::serve(listener, router(state)).with_graceful_shutdown(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let deadline = async move {
        let _ = stop_rx.wait_for(|stopped| *stopped).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => result?,
        () = deadline => tracing::warn!(grace_s = grace.as_secs(), "grace period over; dropping unfinished requests"),
    }
    if let Some(worker) = worker {
        // Stops on the same signal; bounded by JOBS_SHUTDOWN_GRACE_S.
        let _ = worker.await;
    }
    db.pool().close().await;
    tracing::info!("stopped");
    Ok(())
}
