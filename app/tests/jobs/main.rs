//! Tests of the job system against the real Redis and PostgreSQL from `scripts/services.sh`
//! (`source .run/env`). Every test uses its own Redis key prefix and (with `#[sqlx::test]`) its
//! own database, so they run in parallel.
// The crate-level `cfg(test)` marks the helpers as test code too, so clippy's
// allow-unwrap-in-tests covers them.
#![cfg(test)]
mod api;
mod assignment;
mod crash;
mod durability;
mod handlers;
mod limits;
mod relay;
mod runtime;
mod support;
