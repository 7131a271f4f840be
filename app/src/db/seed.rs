//! `perfstack-app seed`: a deterministic demo dataset made with set-based SQL.
use crate::{cli::SeedArgs, config::DbConfig};

pub async fn run(_cfg: &DbConfig, _sizes: &SeedArgs) -> anyhow::Result<()> {
    anyhow::bail!("seed: not implemented yet")
}
