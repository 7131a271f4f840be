//! The API's shared state as `serve` builds it: the entity cache (its Redis keys named after the
//! database), list totals, the metrics registry with every area's families, and the dashboard.
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::Semaphore;

use crate::{
    cache::{Cache, CacheError},
    config::ServeConfig,
    db::{Db, stats, task_inserts::TaskInserts, totals::ListTotals},
    http::{
        AppState, Shared,
        auth::Tokens,
        health::{Lifecycle, external::ExternalService},
        rate_limit::RateLimiter,
    },
    jobs::{JobQueue, mailer::Mailer, metrics::JobMetrics},
    metrics::Metrics,
};

impl AppState {
    /// Like [`AppState::try_new`]; a Redis URL that does not parse is logged and the cache runs
    /// without L2 (`serve` uses `try_new` and refuses to start instead).
    pub fn new(db: Db, config: ServeConfig) -> Self {
        match Self::try_new(db.clone(), config.clone()) {
            Ok(state) => state,
            Err(err) => {
                tracing::error!(error = %err, "cache without Redis");
                let mut config = config;
                config.cache.redis_url = None;
                let cache = Cache::without_redis(&config.cache);
                Self::assemble(db, config, cache)
            }
        }
    }

    /// State with a cache built from `config` (Redis from `--redis-url`) and a registry holding the
    /// database, cache, job and totals families. Needs a Tokio runtime.
    pub fn try_new(db: Db, config: ServeConfig) -> Result<Self, CacheError> {
        let cache = Cache::scoped(&config.cache, config.cache.expose_redis_url().as_deref(), None)?;
        if cache.has_l2() {
            let (db, cache) = (db.clone(), cache.clone());
            tokio::spawn(async move { name_cache_scope(&db, &cache).await });
        }
        Ok(Self::assemble(db, config, cache))
    }

    fn assemble(db: Db, config: ServeConfig, cache: Cache) -> Self {
        db.set_waiter_warning(config.pool.db_waiters_warning);
        let job_metrics = JobMetrics::default();
        let task_inserts = TaskInserts::start(db.clone(), (&config.task_inserts).into());
        let totals = ListTotals::new((&config.totals).into());
        let metrics = Metrics::new(&[
            db.telemetry(),
            cache.telemetry(),
            &job_metrics,
            totals.telemetry(),
        ]);
        let external = config
            .health
            .external
            .iter()
            .cloned()
            .map(ExternalService::Tcp)
            .collect();
        let export_lane = Arc::new(Semaphore::new(config.exports.max_concurrent.max(1)));
        let tokens = Arc::new(Tokens::from_config(&config.auth));
        let report_limiter = Arc::new(RateLimiter::new(&config.reports));
        Self::from_shared(Shared {
            db,
            started: Instant::now(),
            external,
            config: Arc::new(config),
            exports: Arc::default(),
            export_lane,
            lifecycle: Arc::new(Lifecycle::running()),
            tokens,
            report_limiter,
            task_inserts,
            jobs: None,
            job_metrics,
            cache,
            totals,
            metrics,
            dashboard: Arc::default(),
        })
    }

    /// With `lifecycle` (`serve` starts one that waits for the database) instead of a running one.
    pub fn with_lifecycle(mut self, lifecycle: Arc<Lifecycle>) -> Self {
        self.shared_mut().lifecycle = lifecycle;
        self
    }

    /// With the job queues (routes under /api/v1/jobs, /reports, /outbox; assignment emails).
    pub fn with_jobs(mut self, jobs: Option<JobQueue>) -> Self {
        self.shared_mut().jobs = jobs;
        self
    }

    /// With the SMTP server of `mailer` among the external services `/health` checks (nothing
    /// changes for the outbox-only mailer).
    pub fn with_mailer(mut self, mailer: &Mailer) -> Self {
        if matches!(mailer, Mailer::Smtp { .. }) {
            let mut external = self.external.to_vec();
            external.push(ExternalService::Smtp(mailer.clone()));
            self.shared_mut().external = external.into();
        }
        self
    }
}

/// Names the cache's Redis scope after the database, retrying until the database answers.
async fn name_cache_scope(db: &Db, cache: &Cache) {
    loop {
        match stats::cache_scope(db).await {
            Ok(scope) => {
                cache.set_scope(&scope);
                return;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot identify the database yet; Redis cache waits");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
