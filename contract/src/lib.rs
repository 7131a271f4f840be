//! The contract between `perfstack-operator` and `perfstack-app` (docs/contract.md).
//!
//! Everything one side writes and the other reads is defined here once, so a change to the contract
//! is a change to this crate and both sides see it at compile time:
//! - [`tuning`]: the tuning file (pool settings the operator writes, the app applies live);
//! - [`env`]: the environment variables the operator sets on the API containers;
//! - [`metrics`]: the metric families (names and labels) the tuner reads from the API pods;
//! - [`migration`]: the one JSON line `perfstack-app migrate` reports;
//! - [`probes`]: the HTTP paths the operator's probes and scrapes use.
//!
//! The crate is pure (no I/O): parsing, validation and rendering only.
pub mod env;
pub mod metrics;
pub mod migration;
pub mod probes;
pub mod tuning;
