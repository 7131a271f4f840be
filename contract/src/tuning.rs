//! The tuning file: pool settings the operator (or `perfstack-operator local`) writes and the app
//! applies live, without restarting. YAML, in the tuning ConfigMap under [`TUNING_KEY`], mounted at
//! [`TUNING_DIR`]:
//!
//! ```yaml
//! generation: 4
//! pool:
//!   minConnections: 2
//!   maxConnections: 20
//!   acquireTimeoutMs: 3000
//!   idleTimeoutSeconds: 600
//! ```
//!
//! A file that does not have this shape (unknown keys included) or breaks a bound is refused by
//! [`TuningFile::parse`]; the app then keeps the last good settings.
use std::ops::RangeInclusive;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where the tuning ConfigMap is mounted in the API pods.
pub const TUNING_DIR: &str = "/etc/perfstack/tuning";
/// Data key of the tuning file in the tuning ConfigMap (and the file's name under [`TUNING_DIR`]).
pub const TUNING_KEY: &str = "tuning.yaml";
/// Accepted `pool.maxConnections`.
pub const MAX_CONNECTIONS: RangeInclusive<u32> = 1..=500;
/// Accepted `pool.acquireTimeoutMs`.
pub const ACQUIRE_TIMEOUT_MS: RangeInclusive<u64> = 1..=600_000;

/// The example above as text: a file every reader accepts (the tests of both sides parse it).
pub const EXAMPLE: &str = "generation: 4\npool:\n  minConnections: 2\n  maxConnections: 20\n  acquireTimeoutMs: 3000\n  idleTimeoutSeconds: 600\n";

/// Path of the tuning file inside an API pod.
pub fn mounted_path() -> String {
    format!("{TUNING_DIR}/{TUNING_KEY}")
}

/// Connection-pool settings of one API process.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PoolSettings {
    /// Connections kept open even when idle (`0 <= min <= max`).
    pub min_connections: u32,
    /// Most connections the pool opens ([`MAX_CONNECTIONS`]).
    pub max_connections: u32,
    /// How long an acquire waits for a connection before failing, ms ([`ACQUIRE_TIMEOUT_MS`]).
    pub acquire_timeout_ms: u64,
    /// How long an idle connection above the minimum stays open, s.
    pub idle_timeout_seconds: u64,
}

impl Default for PoolSettings {
    /// The app's defaults when nothing is configured: 2..10 connections, 3 s acquire, 600 s idle.
    fn default() -> Self {
        Self {
            min_connections: 2,
            max_connections: 10,
            acquire_timeout_ms: 3000,
            idle_timeout_seconds: 600,
        }
    }
}

impl PoolSettings {
    /// Checks the contract's bounds; the error names the field.
    pub fn validate(&self) -> Result<(), TuningFileError> {
        if !MAX_CONNECTIONS.contains(&self.max_connections) {
            return Err(TuningFileError::invalid(
                "maxConnections",
                format!("{} is outside {MAX_CONNECTIONS:?}", self.max_connections),
            ));
        }
        if self.min_connections > self.max_connections {
            return Err(TuningFileError::invalid(
                "minConnections",
                format!(
                    "{} is larger than maxConnections {}",
                    self.min_connections, self.max_connections
                ),
            ));
        }
        if !ACQUIRE_TIMEOUT_MS.contains(&self.acquire_timeout_ms) {
            return Err(TuningFileError::invalid(
                "acquireTimeoutMs",
                format!("{} is outside {ACQUIRE_TIMEOUT_MS:?}", self.acquire_timeout_ms),
            ));
        }
        Ok(())
    }

    /// `acquireTimeoutMs` as a duration.
    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }

    /// `idleTimeoutSeconds` as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_seconds)
    }
}

/// The whole file.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TuningFile {
    /// Increases with every change the writer makes; the app exports the one in force
    /// (`perfstack_db_pool_settings_generation`), so the tuner knows when every pod runs it.
    pub generation: u64,
    /// The pool settings.
    pub pool: PoolSettings,
}

/// Why a tuning file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TuningFileError {
    /// Not YAML of the file's shape.
    #[error("not a tuning file: {0}")]
    Format(String),
    /// A value outside its bounds.
    #[error("pool.{field}: {message}")]
    Invalid {
        /// The field under `pool`, as written in the file (camelCase).
        field: &'static str,
        /// What is wrong with its value.
        message: String,
    },
}

impl TuningFileError {
    fn invalid(field: &'static str, message: String) -> Self {
        Self::Invalid { field, message }
    }
}

impl TuningFile {
    /// Parses and validates the file's text.
    pub fn parse(text: &str) -> Result<Self, TuningFileError> {
        let file: TuningFile =
            serde_saphyr::from_str(text).map_err(|e| TuningFileError::Format(first_line(&e.to_string())))?;
        file.validate()?;
        Ok(file)
    }

    /// Checks the contract's bounds.
    pub fn validate(&self) -> Result<(), TuningFileError> {
        self.pool.validate()
    }

    /// The file's text, byte for byte the same for the same settings (so a writer can compare).
    pub fn render(&self) -> String {
        let p = &self.pool;
        format!(
            "# Written by the perfstack tuner; the app reloads it without restarting.\n\
             generation: {}\npool:\n  minConnections: {}\n  maxConnections: {}\n  \
             acquireTimeoutMs: {}\n  idleTimeoutSeconds: {}\n",
            self.generation,
            p.min_connections,
            p.max_connections,
            p.acquire_timeout_ms,
            p.idle_timeout_seconds
        )
    }
}

/// The parser's messages quote the input with a caret; the first line says what is wrong.
fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> TuningFile {
        TuningFile {
            generation: 4,
            pool: PoolSettings {
                min_connections: 2,
                max_connections: 20,
                acquire_timeout_ms: 3000,
                idle_timeout_seconds: 600,
            },
        }
    }

    #[test]
    fn the_documented_example_parses_and_renders_back() {
        assert_eq!(TuningFile::parse(EXAMPLE), Ok(good()));
        let text = good().render();
        assert!(text.ends_with(EXAMPLE), "{text}");
        assert_eq!(TuningFile::parse(&text), Ok(good()));
    }

    #[test]
    fn every_bound_is_refused_with_its_field() {
        // The documented example with `field` set to `value` instead.
        let with = |field: &str, value: u64| {
            let text: String = EXAMPLE
                .lines()
                .map(|line| match line.split_once(": ") {
                    Some((key, _)) if key.trim() == field => format!("{key}: {value}\n"),
                    _ => format!("{line}\n"),
                })
                .collect();
            assert_ne!(text, EXAMPLE, "{field} is in the example");
            text
        };
        let cases = [
            ("maxConnections", 0, "0 is outside 1..=500"),
            ("maxConnections", 501, "501 is outside"),
            ("minConnections", 30, "30 is larger than maxConnections 20"),
            ("acquireTimeoutMs", 0, "0 is outside"),
            ("acquireTimeoutMs", 600_001, "600001 is outside"),
        ];
        for (field, value, message) in cases {
            match TuningFile::parse(&with(field, value)) {
                Err(TuningFileError::Invalid { field: f, message: m }) => {
                    assert_eq!(f, field);
                    assert!(m.contains(message), "{field}: {m}");
                }
                other => panic!("{field}: {other:?}"),
            }
        }
        // The bounds themselves are accepted.
        for (field, value) in [
            ("maxConnections", 500),
            ("acquireTimeoutMs", 600_000),
            ("minConnections", 20),
        ] {
            let text = with(field, value);
            assert!(TuningFile::parse(&text).is_ok(), "{text}");
        }
    }

    #[test]
    fn other_shapes_are_refused() {
        for text in [
            "",
            "pool: [",
            "generation: 1\n",
            "generation: x\npool: {}",
            "generation: -1\npool: {minConnections: 1, maxConnections: 2, acquireTimeoutMs: 1, idleTimeoutSeconds: 1}",
            &format!("{EXAMPLE}extra: 1\n"),
            &EXAMPLE.replace("idleTimeoutSeconds", "idleTimeoutS"),
        ] {
            assert!(
                matches!(TuningFile::parse(text), Err(TuningFileError::Format(_))),
                "{text:?}: {:?}",
                TuningFile::parse(text)
            );
        }
    }

    #[test]
    fn the_error_text_names_the_field_and_stays_on_one_line() {
        let err = TuningFile::parse(&EXAMPLE.replace("20", "501"))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "pool.maxConnections: 501 is outside 1..=500");
        let err = TuningFile::parse("pool: [").unwrap_err().to_string();
        assert!(
            err.starts_with("not a tuning file: ") && !err.contains('\n'),
            "{err}"
        );
    }
}
