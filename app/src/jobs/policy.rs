//! Retry policy of a queue: how many attempts, how long to wait between them, how long one may run.
//! Pure decisions, no I/O, so the rules are tested on their own.
use std::time::Duration;

use super::record::Queue;
use crate::config::JobsConfig;

/// How a queue treats its jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuePolicy {
    /// Handlers of this queue that may run at once in one process.
    pub concurrency: usize,
    /// Attempts a job gets before it is dead-lettered (at least 1).
    pub max_attempts: u32,
    /// Wait before the second attempt; every further wait doubles.
    pub base_delay: Duration,
    /// Longest wait between two attempts, whatever the doubling says.
    pub max_delay: Duration,
    /// How long one attempt may run before it counts as failed.
    pub timeout: Duration,
}

/// What happens to a job after an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Run again after this delay.
    RetryIn(Duration),
    /// No attempts left (or the failure is permanent): move to the dead-letter set.
    DeadLetter,
}

impl QueuePolicy {
    /// The policy `config` sets for `queue`.
    pub fn for_queue(config: &JobsConfig, queue: Queue) -> Self {
        let (concurrency, max_attempts, timeout_ms) = match queue {
            Queue::Email => (
                config.email_concurrency,
                config.email_max_attempts,
                config.email_timeout_ms,
            ),
            Queue::Report => (
                config.report_concurrency,
                config.report_max_attempts,
                config.report_timeout_ms,
            ),
        };
        Self {
            concurrency: concurrency.max(1),
            max_attempts: max_attempts.max(1),
            base_delay: Duration::from_millis(config.retry_base_delay_ms),
            max_delay: Duration::from_millis(config.retry_max_delay_ms.max(config.retry_base_delay_ms)),
            timeout: Duration::from_millis(timeout_ms.max(1)),
        }
    }

    /// Decides the fate of a job whose attempt number `attempt` (1-based) failed.
    pub fn after_failure(&self, attempt: u32, permanent: bool) -> AfterFailure {
        if permanent || attempt >= self.max_attempts {
            AfterFailure::DeadLetter
        } else {
            AfterFailure::RetryIn(self.backoff(attempt))
        }
    }

    /// Exponential backoff: `base_delay * 2^(attempt-1)`, capped at `max_delay`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(31);
        self.base_delay
            .checked_mul(1u32 << exponent)
            .map_or(self.max_delay, |d| d.min(self.max_delay))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> QueuePolicy {
        QueuePolicy {
            concurrency: 5,
            max_attempts: 3,
            base_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(3600),
            timeout: Duration::from_secs(60),
        }
    }

    #[test]
    fn backoff_doubles_from_the_base_delay() {
        let p = email();
        assert_eq!(p.backoff(1), Duration::from_secs(5));
        assert_eq!(p.backoff(2), Duration::from_secs(10));
        assert_eq!(p.backoff(3), Duration::from_secs(20));
    }

    #[test]
    fn backoff_is_capped() {
        let p = email();
        assert_eq!(p.backoff(30), Duration::from_secs(3600));
        assert_eq!(p.backoff(u32::MAX), Duration::from_secs(3600));
    }

    #[test]
    fn retries_until_the_last_attempt_then_dead_letters() {
        let p = email();
        assert_eq!(
            p.after_failure(1, false),
            AfterFailure::RetryIn(Duration::from_secs(5))
        );
        assert_eq!(
            p.after_failure(2, false),
            AfterFailure::RetryIn(Duration::from_secs(10))
        );
        assert_eq!(p.after_failure(3, false), AfterFailure::DeadLetter);
    }

    #[test]
    fn permanent_failures_are_not_retried() {
        assert_eq!(email().after_failure(1, true), AfterFailure::DeadLetter);
    }
}
