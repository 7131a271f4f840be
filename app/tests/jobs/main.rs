//! Tests of the job system against the real Redis and PostgreSQL from `scripts/services.sh`
//! (`source .run/env`). Every test uses its own Redis key prefix and (with `#[sqlx::test]`) its
//! own database, so they run in parallel.
// `cfg(test)` marks the helpers as test code too, so clippy's allow-unwrap-in-tests covers them.
#[cfg(test)]
mod api;
#[cfg(test)]
mod assignment;
#[cfg(test)]
mod crash;
#[cfg(test)]
mod handlers;
#[cfg(test)]
mod relay;
#[cfg(test)]
mod runtime;
#[cfg(test)]
mod support;
