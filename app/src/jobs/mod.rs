//! Background jobs that are never lost: the `email` and `report` queues in Redis, their record in
//! PostgreSQL (`ledger`, re-enqueued by `reconcile` when Redis loses them), their workers, and the
//! handlers that send notification emails and compute reports.
//!
//! Why not a job library: apalis-redis 1.0 (the obvious candidate) hardcodes 25 attempts and a linear
//! backoff in its Lua (`handle_results.lua`), so neither "3 attempts with exponential backoff from 5 s"
//! nor "2 attempts" can be expressed in storage; its per-attempt state lives in the worker's memory,
//! so a SIGKILL loses the attempt count. This module is the reliable-queue pattern instead, small
//! enough to read: atomic Lua moves between ready / scheduled / running / dead, leases renewed by a
//! heartbeat, a reaper for leases that expire, and handlers idempotent by job id.
pub mod email;
pub mod error;
pub mod handler;
pub mod ledger;
pub mod mailer;
pub mod metrics;
pub mod notify;
pub mod policy;
pub mod queue;
pub mod reconcile;
pub mod record;
pub mod relay;
pub mod report;
pub mod store;
pub mod worker;

pub use self::{
    error::JobsError,
    handler::{JobContext, JobFailure, JobHandler},
    queue::JobQueue,
    record::{JobId, JobRecord, JobState, NewJob, Queue},
    store::JobStore,
};
