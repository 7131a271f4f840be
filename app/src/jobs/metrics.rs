//! Job metrics: queue depth, attempt durations and outcomes, retries, dead letters, recovered leases,
//! jobs enqueued again from PostgreSQL.
//! [`JobMetrics::register`] adds them to the app's prometheus-client registry (names in docs/metrics.md).
use prometheus_client::{
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

use super::{record::Queue, store::QueueDepth};
use crate::metrics::{RegisterMetrics, StaticLabels};

/// `{queue="email"}`.
type QueueLabel = StaticLabels<1>;
/// `{queue="email",outcome="succeeded"}`: `succeeded`, `failed` or `timed_out`; or
/// `{queue="email",state="ready"}`: `ready`, `scheduled`, `running` or `dead`.
type QueueAnd = StaticLabels<2>;

fn duration_histogram() -> Histogram {
    // 5 ms .. ~5.5 min: emails take milliseconds, reports up to their 5 minute timeout.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.005, 2.0, 17,
    ))
}

/// The job metric families. Cheap to clone (shared inside).
#[derive(Clone)]
pub struct JobMetrics {
    attempts: Family<QueueAnd, Counter>,
    duration: Family<QueueLabel, Histogram, fn() -> Histogram>,
    retries: Family<QueueLabel, Counter>,
    dead_letters: Family<QueueLabel, Counter>,
    recovered: Family<QueueLabel, Counter>,
    reenqueued: Family<QueueLabel, Counter>,
    in_flight: Family<QueueLabel, Gauge>,
    depth: Family<QueueAnd, Gauge>,
}

/// Outcomes of an attempt (`outcome` label of `perfstack_job_attempts_total`).
pub const OUTCOMES: [&str; 3] = ["succeeded", "failed", "timed_out"];

impl Default for JobMetrics {
    /// Every counter of every queue starts at 0, exported before anything happened: `rate()` and
    /// `increase()` need a sample before the first event, or the first dead letter (the one the
    /// PerfstackJobsDeadLettered alert waits for) would go unseen.
    fn default() -> Self {
        let metrics = Self {
            attempts: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            retries: Family::default(),
            dead_letters: Family::default(),
            recovered: Family::default(),
            reenqueued: Family::default(),
            in_flight: Family::default(),
            depth: Family::default(),
        };
        for queue in Queue::ALL {
            for outcome in OUTCOMES {
                metrics
                    .attempts
                    .get_or_create(&[("queue", queue.as_str()), ("outcome", outcome)])
                    .inc_by(0);
            }
            for family in [
                &metrics.retries,
                &metrics.dead_letters,
                &metrics.recovered,
                &metrics.reenqueued,
            ] {
                family.get_or_create(&queue_labels(queue)).inc_by(0);
            }
            metrics.in_flight.get_or_create(&queue_labels(queue)).set(0);
        }
        metrics
    }
}

fn queue_labels(queue: Queue) -> QueueLabel {
    [("queue", queue.as_str())]
}

impl RegisterMetrics for JobMetrics {
    fn register(&self, registry: &mut Registry) {
        JobMetrics::register(self, registry);
    }
}

impl JobMetrics {
    /// Adds every family to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "perfstack_job_attempts",
            "Finished job attempts, by queue and outcome",
            self.attempts.clone(),
        );
        registry.register(
            "perfstack_job_duration_seconds",
            "Duration of job attempts",
            self.duration.clone(),
        );
        registry.register(
            "perfstack_job_retries",
            "Failed attempts that were scheduled to run again",
            self.retries.clone(),
        );
        registry.register(
            "perfstack_job_dead_letters",
            "Jobs moved to the dead-letter set (no attempts left or a permanent failure)",
            self.dead_letters.clone(),
        );
        registry.register(
            "perfstack_job_recovered",
            "Jobs taken back from a worker whose lease expired (crashed or hung)",
            self.recovered.clone(),
        );
        registry.register(
            "perfstack_job_reenqueued",
            "Jobs enqueued again from their PostgreSQL record because Redis had lost them",
            self.reenqueued.clone(),
        );
        registry.register(
            "perfstack_jobs_in_flight",
            "Handlers running in this process",
            self.in_flight.clone(),
        );
        registry.register(
            "perfstack_job_queue_depth",
            "Jobs per queue and place (ready, scheduled, running, dead), sampled from Redis",
            self.depth.clone(),
        );
    }

    pub fn attempt_finished(&self, queue: Queue, outcome: &'static str, seconds: f64) {
        self.attempts
            .get_or_create(&[("queue", queue.as_str()), ("outcome", outcome)])
            .inc();
        self.duration.get_or_create(&queue_labels(queue)).observe(seconds);
    }

    pub fn retried(&self, queue: Queue) {
        self.retries.get_or_create(&queue_labels(queue)).inc();
    }

    pub fn dead_lettered(&self, queue: Queue, count: u64) {
        self.dead_letters
            .get_or_create(&queue_labels(queue))
            .inc_by(count);
    }

    pub fn recovered(&self, queue: Queue, count: u64) {
        self.recovered.get_or_create(&queue_labels(queue)).inc_by(count);
    }

    pub fn reenqueued(&self, queue: Queue, count: u64) {
        self.reenqueued.get_or_create(&queue_labels(queue)).inc_by(count);
    }

    pub fn in_flight(&self, queue: Queue) -> Gauge {
        self.in_flight.get_or_create(&queue_labels(queue)).clone()
    }

    pub fn set_depth(&self, queue: Queue, depth: QueueDepth) {
        for (state, value) in [
            ("ready", depth.ready),
            ("scheduled", depth.scheduled),
            ("running", depth.running),
            ("dead", depth.dead),
        ] {
            self.depth
                .get_or_create(&[("queue", queue.as_str()), ("state", state)])
                .set(i64::try_from(value).unwrap_or(i64::MAX));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts that the text format of `registry` has each of `lines`.
    fn assert_exported(registry: &Registry, lines: &[&str]) {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
        for line in lines {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn counters_are_exported_at_zero_before_anything_happened() {
        let mut registry = Registry::default();
        JobMetrics::default().register(&mut registry);
        assert_exported(
            &registry,
            &[
                "perfstack_job_dead_letters_total{queue=\"email\"} 0",
                "perfstack_job_dead_letters_total{queue=\"report\"} 0",
                "perfstack_job_attempts_total{queue=\"report\",outcome=\"timed_out\"} 0",
                "perfstack_job_retries_total{queue=\"email\"} 0",
            ],
        );
    }

    #[test]
    fn families_are_exported_under_their_documented_names() {
        let metrics = JobMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        metrics.attempt_finished(Queue::Email, "succeeded", 0.01);
        metrics.retried(Queue::Email);
        metrics.dead_lettered(Queue::Report, 1);
        metrics.recovered(Queue::Report, 2);
        metrics.reenqueued(Queue::Email, 4);
        metrics.set_depth(
            Queue::Email,
            QueueDepth {
                ready: 3,
                ..QueueDepth::default()
            },
        );
        assert_exported(
            &registry,
            &[
                "perfstack_job_attempts_total{queue=\"email\",outcome=\"succeeded\"} 1",
                "perfstack_job_duration_seconds_count{queue=\"email\"} 1",
                "perfstack_job_retries_total{queue=\"email\"} 1",
                "perfstack_job_dead_letters_total{queue=\"report\"} 1",
                "perfstack_job_recovered_total{queue=\"report\"} 2",
                "perfstack_job_reenqueued_total{queue=\"email\"} 4",
                "perfstack_job_queue_depth{queue=\"email\",state=\"ready\"} 3",
            ],
        );
    }
}
