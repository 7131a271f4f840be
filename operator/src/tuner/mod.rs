//! The tuner: observe the app's metrics, decide pool size and HPA bounds, act on them.
//!
//! Pure (no I/O, time passed in):
//! - inputs: [`spec`] (the tuner's own types), [`from_crd`] (from the `PerformanceStack` spec: the
//!   tuner depends on the CRD's spec types, never the CRD on the tuner);
//! - [`budget`]: the invariant `pods(maxReplicas) * poolMax + reserved <= max_connections`, the pods
//!   a rollout and terminations add counted; [`transition`]: pool swaps ordered so it holds while
//!   old pools drain;
//! - observing: [`exposition`] (Prometheus text), [`histogram`], [`observe`] (one interval);
//! - deciding: [`decide`](mod@decide) with [`hpa`] (floor), [`pool`] (pool size) and [`history`] (memory);
//! - acting: [`act`] (mode → settings in force, Events, the report for `status.tuning`),
//!   [`effective`] (what the controller writes in every mode);
//! - [`stack`] (one stack's interval) and [`registry`] (all stacks' tuners: the controller's one
//!   call per reconcile, [`registry::TuningRegistry::tune`]).
//!
//! I/O: [`scrape`] and [`targets`] (fetch `/metrics` by pod IP or API-server proxy; the
//! controller's observe step calls them), [`local`] (the `perfstack-operator local` loop and its
//! atomic tuning-file write). How the decision works: `docs/tuning.md`.
pub mod act;
pub mod budget;
pub mod decide;
pub mod effective;
pub mod error;
pub mod exposition;
pub mod from_crd;
pub mod histogram;
pub mod history;
pub mod hpa;
pub mod local;
pub mod observe;
pub mod pool;
pub mod registry;
pub mod scrape;
pub mod spec;
pub mod stack;
pub mod targets;
pub mod transition;

#[cfg(test)]
mod sim;
#[cfg(test)]
pub(crate) mod testing;

pub use budget::{
    BudgetPlan, BudgetVerdict, ConnectionBudget, MaxConnectionsSource, PoolBounds, ReplicaBounds,
    ServerLimits,
};
pub use decide::{Decision, Tuner, decide};
pub use error::TunerError;
pub use history::History;
pub use observe::Observation;
pub use spec::{Settings, SloSpec, TuningSpec};
