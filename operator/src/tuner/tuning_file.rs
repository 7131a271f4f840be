//! The tuning file (`docs/contract.md`, "The tuning file"): render, parse, validate, and write it
//! atomically so the app never reads half a file.
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::TunerError;

/// Pool settings the app applies live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolTuning {
    /// Connections kept open (0 <= min <= max).
    pub min_connections: u32,
    /// Pool size limit (1..=500).
    pub max_connections: u32,
    /// How long an acquire waits before failing (1..=600000).
    pub acquire_timeout_ms: u64,
    /// How long an idle connection above the minimum stays open.
    pub idle_timeout_seconds: u64,
}

impl Default for PoolTuning {
    fn default() -> Self {
        Self {
            min_connections: 2,
            max_connections: 10,
            acquire_timeout_ms: 3000,
            idle_timeout_seconds: 600,
        }
    }
}

/// The whole file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TuningFile {
    /// Increases with every change the tuner makes; the app exports the one in force.
    pub generation: u64,
    /// Pool settings.
    pub pool: PoolTuning,
}

impl TuningFile {
    /// Checks the contract's bounds; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        let p = &self.pool;
        if !(1..=500).contains(&p.max_connections) {
            return Err(format!(
                "pool.maxConnections {} not in 1..=500",
                p.max_connections
            ));
        }
        if p.min_connections > p.max_connections {
            return Err(format!(
                "pool.minConnections {} > pool.maxConnections {}",
                p.min_connections, p.max_connections
            ));
        }
        if !(1..=600_000).contains(&p.acquire_timeout_ms) {
            return Err(format!(
                "pool.acquireTimeoutMs {} not in 1..=600000",
                p.acquire_timeout_ms
            ));
        }
        Ok(())
    }

    /// The YAML text (also the tuning ConfigMap's `tuning.yaml`).
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

    /// Parses and validates YAML text.
    pub fn parse(text: &str, path: &Path) -> Result<Self, TunerError> {
        let file: TuningFile = serde_yaml::from_str(text).map_err(|source| TunerError::TuningFileFormat {
            path: path.to_owned(),
            source,
        })?;
        file.validate().map_err(|message| TunerError::InvalidInput {
            what: "tuning file",
            message: format!("{}: {message}", path.display()),
        })?;
        Ok(file)
    }

    /// Reads `path`; `Ok(None)` when it does not exist yet.
    pub fn read(path: &Path) -> Result<Option<Self>, TunerError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(io_error(path, source)),
        }
    }

    /// Writes `path` atomically: a temporary file in the same directory, flushed to disk, then
    /// renamed over the old one (readers see the old or the new file, never a mix).
    pub fn write_atomic(&self, path: &Path) -> Result<(), TunerError> {
        self.validate().map_err(|message| TunerError::InvalidInput {
            what: "tuning settings",
            message,
        })?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
        let name = path
            .file_name()
            .map_or_else(|| "tuning.yaml".into(), |n| n.to_string_lossy().into_owned());
        let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let result = (|| {
            let mut f = std::fs::File::create(&temp)?;
            f.write_all(self.render().as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&temp, path)
        })();
        if let Err(source) = result {
            let _ = std::fs::remove_file(&temp);
            return Err(io_error(path, source));
        }
        Ok(())
    }
}

fn io_error(path: &Path, source: std::io::Error) -> TunerError {
    TunerError::TuningFileIo {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("perfstack-tuner-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn round_trips_in_the_contract_shape() {
        let file = TuningFile {
            generation: 4,
            pool: PoolTuning {
                min_connections: 2,
                max_connections: 20,
                acquire_timeout_ms: 3000,
                idle_timeout_seconds: 600,
            },
        };
        let text = file.render();
        assert!(
            text.contains("generation: 4\npool:\n  minConnections: 2\n  maxConnections: 20\n"),
            "{text}"
        );
        assert_eq!(TuningFile::parse(&text, Path::new("t.yaml")).unwrap(), file);
    }

    #[test]
    fn invalid_files_are_rejected_with_the_field_named() {
        let text = "generation: 1\npool: {minConnections: 9, maxConnections: 3, acquireTimeoutMs: 1, idleTimeoutSeconds: 1}\n";
        let err = TuningFile::parse(text, Path::new("t.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("pool.minConnections 9 > pool.maxConnections 3"),
            "{err}"
        );
        assert!(TuningFile::parse("generation: [", Path::new("t.yaml")).is_err());
    }

    #[test]
    fn writes_atomically_and_reads_back() {
        let dir = temp_dir("write");
        let path = dir.join("tuning.yaml");
        assert_eq!(TuningFile::read(&path).unwrap(), None);
        let mut file = TuningFile::default();
        file.write_atomic(&path).unwrap();
        file.generation = 2;
        file.pool.max_connections = 30;
        file.write_atomic(&path).unwrap();
        assert_eq!(TuningFile::read(&path).unwrap(), Some(file));
        let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().filter_map(Result::ok).collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
