//! Configuration from flags and environment: one `clap::Args` group per concern, flattened into the
//! subcommands by `cli.rs`. A leaf module: it imports no other module of the app, so every layer
//! can take the group it needs without a loop back here. Environment names the operator sets come
//! from `perfstack_contract::env`; secrets are wrapped so that they cannot be printed.
mod database;
mod defaults;
mod jobs;
mod limits;
pub mod redis;
mod serve;

pub use self::{
    database::DbConfig,
    jobs::{JobsConfig, ServeWorkers, WorkerConfig},
    limits::{
        AuthConfig, DEFAULT_QUEUE_PER_CONNECTION, DEFAULT_STATEMENT_TIMEOUT_MS, ExportConfig,
        ReportLimitConfig, SessionLimits, TaskInsertConfig,
    },
    serve::{
        CacheConfig, DEFAULT_COUNT_CACHE_MAX_ENTRIES, DEFAULT_COUNT_CACHE_SLOW_MS,
        DEFAULT_COUNT_CACHE_TTL_MS, DEFAULT_COUNT_CACHE_WRITE_REFRESH_MS, DEFAULT_WAITER_WARNING,
        DashboardConfig, ExternalEndpoint, HealthConfig, ListTotalsConfig, MemoryGuardConfig,
        PoolTelemetryConfig, ServeConfig, ServerConfig, TuningConfig,
    },
};
