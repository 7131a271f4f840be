//! Cache, pool telemetry, metrics and dashboard against real PostgreSQL and Redis.
//! Needs DATABASE_URL (and starts its own redis-server processes); `make test` provides both.
//! Modules are `cfg(test)` so that clippy treats their helpers as test code.
#[cfg(test)]
mod api_cache;
#[cfg(test)]
mod cache;
#[cfg(test)]
mod common;
#[cfg(test)]
mod dashboard;
#[cfg(test)]
mod metrics;
#[cfg(test)]
mod pool;
