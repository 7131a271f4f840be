//! Environment variables the operator sets on the API (and migration) containers, by name.
//!
//! The app reads each through its configuration (clap `env = ...`); the operator writes each in its
//! builders and refuses `spec.app.env` entries that would override one ([`OPERATOR_SET`]).

/// PostgreSQL URL (from a Secret). Never logged.
pub const DATABASE_URL: &str = "DATABASE_URL";
/// Redis URL for the shared cache and the job queues (absent when the cache is disabled).
pub const REDIS_URL: &str = "REDIS_URL";
/// Address the HTTP server listens on, e.g. `0.0.0.0:8080`.
pub const LISTEN_ADDR: &str = "LISTEN_ADDR";
/// `json` or `text`.
pub const LOG_FORMAT: &str = "LOG_FORMAT";
/// Path of the tuning file (see [`crate::tuning`]).
pub const TUNING_FILE: &str = "TUNING_FILE";
/// Start value of the pool minimum (the tuning file overrides it live).
pub const DB_POOL_MIN: &str = "DB_POOL_MIN";
/// Start value of the pool maximum (the tuning file overrides it live).
pub const DB_POOL_MAX: &str = "DB_POOL_MAX";
/// Start value of the acquire timeout, in milliseconds.
pub const DB_ACQUIRE_TIMEOUT_MS: &str = "DB_ACQUIRE_TIMEOUT_MS";
/// Start value of the idle timeout, in seconds.
pub const DB_IDLE_TIMEOUT_S: &str = "DB_IDLE_TIMEOUT_S";
/// Resident memory above which the app clears its in-process cache (optional; overrides the
/// share of [`CONTAINER_MEMORY_LIMIT_BYTES`]).
pub const MEMORY_LIMIT_BYTES: &str = "MEMORY_LIMIT_BYTES";
/// The API container's memory limit in bytes, from the downward API (`resourceFieldRef`
/// `limits.memory`; the node's allocatable memory when the container has no limit). The app's
/// memory guard acts at 80 % of it (`MEMORY_LIMIT_PCT`) unless [`MEMORY_LIMIT_BYTES`] is set.
pub const CONTAINER_MEMORY_LIMIT_BYTES: &str = "CONTAINER_MEMORY_LIMIT_BYTES";
/// File `migrate` also writes its summary line to (the migration Job: `/dev/termination-log`).
pub const MIGRATE_SUMMARY_FILE: &str = "MIGRATE_SUMMARY_FILE";

/// Password of the bundled Redis (from the stack's Secret); the app adds it to [`REDIS_URL`].
/// Never logged.
pub const REDIS_PASSWORD: &str = "REDIS_PASSWORD";
/// Bearer token of ordinary API callers (from the stack's token Secret, when auth is on).
pub const API_TOKEN: &str = "API_TOKEN";
/// Bearer token of API administrators (from the stack's token Secret, when auth is on).
pub const API_ADMIN_TOKEN: &str = "API_ADMIN_TOKEN";
/// Role the API connects as (migration Job only): `migrate` creates it, or sets its password, and
/// grants it reads and writes of the app's tables and nothing more.
pub const DB_APP_USER: &str = "DB_APP_USER";
/// Password of [`DB_APP_USER`] (migration Job only, from the stack's credentials Secret). Never logged.
pub const DB_APP_PASSWORD: &str = "DB_APP_PASSWORD";

/// Variables the operator always sets on the API container; `spec.app.env` must not override them.
pub const OPERATOR_SET: &[&str] = &[
    DATABASE_URL,
    REDIS_URL,
    LISTEN_ADDR,
    LOG_FORMAT,
    TUNING_FILE,
    DB_POOL_MIN,
    DB_POOL_MAX,
    DB_ACQUIRE_TIMEOUT_MS,
    DB_IDLE_TIMEOUT_S,
    CONTAINER_MEMORY_LIMIT_BYTES,
    REDIS_PASSWORD,
    API_TOKEN,
    API_ADMIN_TOKEN,
];

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_distinct_upper_snake_case() {
        let mut seen = std::collections::BTreeSet::new();
        for name in super::OPERATOR_SET {
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                "{name}"
            );
            assert!(seen.insert(*name), "{name} listed twice");
        }
    }
}
