//! What can go wrong in the job system (Redis, the database, the mail settings).
use super::record::JobState;

/// Errors of the job system.
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    #[error("the Redis URL is not valid")]
    RedisUrl(#[source] redis::RedisError),
    #[error("Redis command failed")]
    Redis(#[from] redis::RedisError),
    #[error("not connected to Redis yet")]
    NotConnected,
    #[error("database error in a job")]
    Database(#[from] sqlx::Error),
    #[error("jobs in state {0} cannot be listed; fetch them by id")]
    NotListable(JobState),
    #[error("the SMTP settings are not valid")]
    Smtp(#[source] lettre::transport::smtp::Error),
    #[error("MAIL_FROM is not a valid mailbox")]
    MailFrom,
}
