//! API tests: the real router driven with `oneshot`, each test on a fresh PostgreSQL database
//! (`#[sqlx::test]` creates and drops it) migrated by our own `migrate`.
mod errors;
mod explain;
mod export;
mod helpers;
mod migrate;
mod projects;
mod tasks;
mod users;
