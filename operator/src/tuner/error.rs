//! The tuner's one error type: scraping, parsing and writing the tuning file.
use std::path::PathBuf;

/// What can go wrong around the (pure) decision.
#[derive(Debug, thiserror::Error)]
pub enum TunerError {
    /// A `/metrics` body that is not valid exposition text.
    #[error("metrics line {line}: {message}")]
    Exposition {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A pod's `/metrics` could not be fetched.
    #[error("scraping {url}: {source}")]
    Scrape {
        /// The URL asked (pod IP or API-server proxy; never carries credentials).
        url: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// A pod answered with a non-success status.
    #[error("scraping {url}: HTTP {status}")]
    ScrapeStatus {
        /// The URL asked.
        url: String,
        /// The status it answered.
        status: u16,
    },
    /// The app pods could not be listed.
    #[error("listing the app pods: {0}")]
    ListPods(String),
    /// A pod's `/metrics` could not be read through the API server's pod proxy.
    #[error("scraping {path} through the API server: {message}")]
    Proxy {
        /// The proxy path asked.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// Building the HTTP client failed (TLS backend).
    #[error("building the metrics HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// Reading or writing the tuning file failed.
    #[error("tuning file {path}: {source}")]
    TuningFileIo {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The tuning file is not valid YAML of the contract's shape.
    #[error("tuning file {path}: {source}")]
    TuningFileFormat {
        /// The file.
        path: PathBuf,
        /// The YAML error.
        #[source]
        source: serde_yaml::Error,
    },
    /// A command-line value the tuner cannot use.
    #[error("invalid {what}: {message}")]
    InvalidInput {
        /// Which input.
        what: &'static str,
        /// Why.
        message: String,
    },
}
