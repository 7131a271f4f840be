//! Cache, pool telemetry, metrics and dashboard against real PostgreSQL and Redis.
//! Needs DATABASE_URL (and starts its own redis-server processes); `make test` provides both.
//! The crate is `cfg(test)` so that clippy treats its helpers as test code.
#![cfg(test)]
mod api_cache;
mod cache;
mod common;
mod dashboard;
mod metrics;
mod pool;
