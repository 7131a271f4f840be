//! The tuner's one error type: scraping, and reading or writing the tuning file (local mode).
use std::path::PathBuf;

use perfstack_contract::tuning::TuningFileError;

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
    /// A pod's `/metrics` body was larger than the operator reads.
    #[error("scraping {url}: the body is larger than {limit} bytes")]
    TooLarge {
        /// The URL (or proxy path) asked.
        url: String,
        /// The most the operator reads.
        limit: usize,
    },
    /// A pod's `/metrics` held more samples than the operator parses.
    #[error("metrics: more than {limit} samples")]
    TooManySamples {
        /// The most the operator parses.
        limit: usize,
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
    /// The tuning file does not have the contract's shape or breaks a bound.
    #[error("tuning file {path}: {source}")]
    TuningFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: TuningFileError,
    },
}
