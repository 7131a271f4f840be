//! API tests: the real router driven with `oneshot`, each test on a fresh PostgreSQL database
//! (`#[sqlx::test]` creates and drops it) migrated by our own `migrate`.
// This whole binary is test code (a panic is how a helper reports a broken precondition); the
// crate-level `cfg(test)` lets clippy's allow-unwrap-in-tests cover the helpers too.
#![cfg(test)]
mod auth;
mod drain;
mod errors;
mod explain;
mod export;
mod health;
mod helpers;
mod limits;
mod migrate;
mod monitor;
mod outage;
mod process;
mod projects;
mod proxy;
mod roles;
mod round_trips;
mod seed;
mod serve;
mod tasks;
mod totals;
mod traces;
mod users;
