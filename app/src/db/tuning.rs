//! Applying the tuning file (docs/contract.md) live. What the file is, how it is parsed and which
//! values it may hold is `perfstack_contract::tuning`; this module only decides whether a file read
//! now changes what is in force, and [`watch`] polls the file and applies valid changes.
use std::{path::PathBuf, time::Duration};

use perfstack_contract::tuning::{TuningFile, TuningFileError};

use super::Db;

/// What to do with a freshly read file, given what is in force.
#[derive(Debug, PartialEq)]
pub enum TuningDecision {
    /// Nothing changed.
    Keep,
    /// Put these settings (and this generation) in force.
    Apply(TuningFile),
    /// The file is bad; keep the last good settings.
    Ignore(TuningFileError),
}

/// Pure decision: apply a valid file whose settings or generation differ from those in force.
pub fn decide(text: &str, in_force: TuningFile) -> TuningDecision {
    match TuningFile::parse(text) {
        Ok(file) if file == in_force => TuningDecision::Keep,
        Ok(file) => TuningDecision::Apply(file),
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
        let (pool, generation) = db.settings();
        match decide(&text, TuningFile { generation, pool }) {
            TuningDecision::Keep => {}
            TuningDecision::Apply(file) => db.apply_settings(file.pool, file.generation),
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
    use perfstack_contract::tuning::{EXAMPLE, PoolSettings};

    use super::*;

    /// What an app starts with: no tuning file (generation 0), the default pool of 2..10.
    fn in_force() -> TuningFile {
        TuningFile {
            generation: 0,
            pool: PoolSettings::default(),
        }
    }

    #[test]
    fn contract_example_parses() {
        let TuningDecision::Apply(file) = decide(EXAMPLE, in_force()) else {
            panic!("expected apply");
        };
        assert_eq!(file.generation, 4);
        assert_eq!(file.pool.max_connections, 20);
        assert_eq!(file.pool.idle_timeout_seconds, 600);
    }

    #[test]
    fn changed_file_is_applied_and_same_file_kept() {
        let TuningDecision::Apply(file) = decide(EXAMPLE, in_force()) else {
            panic!("expected apply");
        };
        assert_eq!(decide(EXAMPLE, file), TuningDecision::Keep);
    }

    #[test]
    fn invalid_files_are_ignored_with_the_reason() {
        let cases = [
            (EXAMPLE.replace("20", "0"), "maxConnections"),
            (EXAMPLE.replace("20", "501"), "maxConnections"),
            (
                EXAMPLE.replace("minConnections: 2", "minConnections: 30"),
                "minConnections",
            ),
            (EXAMPLE.replace("3000", "0"), "acquireTimeoutMs"),
        ];
        for (text, field) in cases {
            match decide(&text, in_force()) {
                TuningDecision::Ignore(TuningFileError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        for text in ["pool: [", "generation: 1\n", "generation: x\npool: {}"] {
            assert!(matches!(
                decide(text, in_force()),
                TuningDecision::Ignore(TuningFileError::Format(_))
            ));
        }
    }
}
