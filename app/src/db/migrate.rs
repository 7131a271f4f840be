//! `perfstack-app migrate`: schema migrations, then the indexes, built concurrently and repaired
//! when a failed build left them INVALID.
use serde::Serialize;

use crate::config::DbConfig;

/// The one line of JSON `migrate` prints (contract with the operator: docs/contract.md).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MigrateSummary {
    /// Schema migrations applied by this run.
    pub migrations_applied: u32,
    /// Indexes that did not exist and were built.
    pub indexes_created: Vec<String>,
    /// Indexes found INVALID, dropped and rebuilt.
    pub indexes_repaired: Vec<String>,
    /// Indexes that were already valid.
    pub indexes_valid: Vec<String>,
}

pub async fn run(_cfg: &DbConfig) -> anyhow::Result<MigrateSummary> {
    anyhow::bail!("migrate: not implemented yet")
}
