//! The tuner: observe the app's metrics, decide pool size and HPA bounds, act on them.
//!
//! Pure parts (no I/O, time passed in): [`spec`] (inputs), [`budget`] (the connection-budget
//! invariant), [`exposition`] and [`observe`] (Prometheus text to an interval observation),
//! [`decide`] and [`hpa`] (the decision). I/O parts: [`scrape`] (fetch `/metrics` from pods) and
//! [`act_local`] (the `perfstack-operator local` loop writing the tuning file).
//! How the decision works, with a worked example: `docs/tuning.md`.
pub mod act;
pub mod act_local;
pub mod budget;
pub mod decide;
pub mod effective;
pub mod error;
pub mod exposition;
pub mod from_crd;
pub mod histogram;
pub mod history;
pub mod hpa;
pub mod observe;
pub mod pool;
pub mod registry;
pub mod scrape;
pub mod spec;
pub mod stack;
pub mod targets;
pub mod tuning_file;

#[cfg(test)]
mod sim;
#[cfg(test)]
mod testing;

pub use budget::{BudgetPlan, BudgetVerdict, ConnectionBudget};
pub use decide::{Decision, Tuner, decide};
pub use error::TunerError;
pub use history::History;
pub use observe::Observation;
pub use spec::{PoolBounds, ReplicaBounds, Settings, SloSpec, TuningSpec};
