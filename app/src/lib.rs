//! The perfstack API: users, projects and tasks served by axum over PostgreSQL (sqlx) and Redis.
pub mod cache;
pub mod cli;
pub mod config;
pub mod db;
pub mod http;
pub mod jobs;
pub mod loadtest;
pub mod metrics;
pub mod signal;
pub mod startup;
pub mod telemetry;
