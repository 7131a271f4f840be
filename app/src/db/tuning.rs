//! The tuning file (docs/contract.md): pool settings the operator writes into a mounted ConfigMap.
//! Parsing and validation are pure; [`watch`] polls the file and applies valid changes live.
use std::{path::PathBuf, time::Duration};

use serde::Deserialize;

use super::{Db, PoolSettings};

/// Largest accepted `maxConnections`.
pub const MAX_CONNECTIONS_LIMIT: u32 = 500;
/// Largest accepted `acquireTimeoutMs`.
pub const MAX_ACQUIRE_TIMEOUT_MS: u64 = 600_000;

/// The file as written by the operator.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TuningFile {
    pub generation: u64,
    pub pool: PoolSection,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PoolSection {
    pub min_connections: u32,
    pub max_connections: u32,
    pub acquire_timeout_ms: u64,
    pub idle_timeout_seconds: u64,
}

/// Why a tuning file was ignored.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TuningError {
    #[error("the tuning file is not valid YAML for the expected shape: {0}")]
    Parse(String),
    #[error("pool.{field}: {message}")]
    Invalid { field: &'static str, message: String },
}

fn invalid(field: &'static str, message: impl Into<String>) -> TuningError {
    TuningError::Invalid {
        field,
        message: message.into(),
    }
}

/// A valid file's generation and settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    pub generation: u64,
    pub settings: PoolSettings,
}

/// Parses and validates the file text.
pub fn parse(text: &str) -> Result<Tuning, TuningError> {
    let file: TuningFile = serde_yaml::from_str(text).map_err(|err| TuningError::Parse(err.to_string()))?;
    let pool = &file.pool;
    if !(1..=MAX_CONNECTIONS_LIMIT).contains(&pool.max_connections) {
        return Err(invalid(
            "maxConnections",
            format!("must be within 1..={MAX_CONNECTIONS_LIMIT}"),
        ));
    }
    if pool.min_connections > pool.max_connections {
        return Err(invalid(
            "minConnections",
            "must not be larger than maxConnections",
        ));
    }
    if !(1..=MAX_ACQUIRE_TIMEOUT_MS).contains(&pool.acquire_timeout_ms) {
        return Err(invalid(
            "acquireTimeoutMs",
            format!("must be within 1..={MAX_ACQUIRE_TIMEOUT_MS}"),
        ));
    }
    Ok(Tuning {
        generation: file.generation,
        settings: PoolSettings {
            min_connections: pool.min_connections,
            max_connections: pool.max_connections,
            acquire_timeout_ms: pool.acquire_timeout_ms,
            idle_timeout_s: pool.idle_timeout_seconds,
        },
    })
}

/// What to do with a freshly read file, given what is in force.
#[derive(Debug, PartialEq)]
pub enum TuningDecision {
    /// Nothing changed.
    Keep,
    /// Put these settings in force.
    Apply(Tuning),
    /// The file is bad; keep the last good settings.
    Ignore(TuningError),
}

/// Pure decision: apply a valid file whose settings or generation differ from those in force.
pub fn decide(text: &str, in_force: Tuning) -> TuningDecision {
    match parse(text) {
        Ok(tuning) if tuning == in_force => TuningDecision::Keep,
        Ok(tuning) => TuningDecision::Apply(tuning),
        Err(err) => TuningDecision::Ignore(err),
    }
}

/// Polls `path` every `interval` (ConfigMap volumes change by symlink swap, so we compare
/// content rather than wait for inotify events) and applies valid changes to `db`.
/// Runs until the task is dropped.
pub async fn watch(db: Db, path: PathBuf, interval: Duration) {
    let mut last_text: Option<String> = None;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let text = match tokio::fs::read_to_string(&path).await {
            Ok(text) => text,
            Err(err) => {
                if last_text.is_some() || err.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), error = %err, "cannot read the tuning file; keeping the settings in force");
                }
                continue;
            }
        };
        if last_text.as_deref() == Some(text.as_str()) {
            continue;
        }
        let (settings, generation) = db.settings();
        match decide(&text, Tuning { generation, settings }) {
            TuningDecision::Keep => {}
            TuningDecision::Apply(tuning) => db.apply_settings(tuning.settings, tuning.generation),
            TuningDecision::Ignore(err) => tracing::warn!(
                path = %path.display(),
                error = %err,
                "ignoring an invalid tuning file; the last good settings stay in force"
            ),
        }
        last_text = Some(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "generation: 4\npool:\n  minConnections: 2\n  maxConnections: 20\n  acquireTimeoutMs: 3000\n  idleTimeoutSeconds: 600\n";

    fn in_force() -> Tuning {
        Tuning {
            generation: 0,
            settings: PoolSettings {
                min_connections: 2,
                max_connections: 10,
                acquire_timeout_ms: 3000,
                idle_timeout_s: 600,
            },
        }
    }

    #[test]
    fn contract_example_parses() {
        let tuning = parse(GOOD).unwrap();
        assert_eq!(tuning.generation, 4);
        assert_eq!(tuning.settings.max_connections, 20);
        assert_eq!(tuning.settings.idle_timeout_s, 600);
    }

    #[test]
    fn changed_file_is_applied_and_same_file_kept() {
        let TuningDecision::Apply(tuning) = decide(GOOD, in_force()) else {
            panic!("expected apply");
        };
        assert_eq!(decide(GOOD, tuning), TuningDecision::Keep);
    }

    #[test]
    fn invalid_files_are_ignored_with_the_reason() {
        let cases = [
            (GOOD.replace("20", "0"), "maxConnections"),
            (GOOD.replace("20", "501"), "maxConnections"),
            (
                GOOD.replace("minConnections: 2", "minConnections: 30"),
                "minConnections",
            ),
            (GOOD.replace("3000", "0"), "acquireTimeoutMs"),
        ];
        for (text, field) in cases {
            match decide(&text, in_force()) {
                TuningDecision::Ignore(TuningError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        for text in ["pool: [", "generation: 1\n", "generation: x\npool: {}"] {
            assert!(matches!(
                decide(text, in_force()),
                TuningDecision::Ignore(TuningError::Parse(_))
            ));
        }
    }
}
