//! Latency and error accounting: one HDR histogram for the run, one per operation, and one per
//! second of the run (closed and summarised as the run moves on, so memory stays flat).
use std::{collections::BTreeMap, time::Duration};

use hdrhistogram::Histogram;

use super::mix::Operation;

/// Longest latency the histograms hold exactly; longer ones are recorded as this (10 minutes).
const HIGHEST_MICROS: u64 = 600_000_000;

/// What one request came to. `latency` counts from its intended send time.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub operation: Operation,
    pub latency: Duration,
    /// From the moment it actually left to its answer: what the server took, without the queueing.
    pub service: Duration,
    /// Seconds from the start of the run to the moment the answer (or failure) arrived.
    pub finished_at: Duration,
    /// `None` when it succeeded (2xx), else a short label (`http_500`, `timeout`, ...).
    pub error: Option<String>,
}

/// Latency quantiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Latency {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Self {
            min: ms(h.min()),
            mean: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// One second of the run, summarised.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecondSummary {
    pub second: u64,
    pub requests: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

/// Per-operation totals.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationSummary {
    pub operation: Operation,
    pub requests: u64,
    pub errors: u64,
    /// From the intended send time (what a user of the SLO sees).
    pub latency_ms: Latency,
    /// From the actual send time (what the server took); far below `latency_ms` means queueing.
    pub service_ms: Latency,
}

/// Counts and histograms of one operation.
#[derive(Debug)]
struct OperationStats {
    requests: u64,
    errors: u64,
    latency: Histogram<u64>,
    service: Histogram<u64>,
}

#[derive(Debug)]
struct Window {
    requests: u64,
    errors: u64,
    histogram: Histogram<u64>,
}

/// Accumulates [`Outcome`]s. Not shared: one collector task owns it.
#[derive(Debug)]
pub struct Recorder {
    all: Histogram<u64>,
    operations: Vec<OperationStats>,
    open: BTreeMap<u64, Window>,
    closed: Vec<SecondSummary>,
    errors_by_kind: BTreeMap<String, u64>,
    requests: u64,
    errors: u64,
}

fn histogram() -> Histogram<u64> {
    // Bounds are constants that the crate accepts; failure here would be a programming error.
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, HIGHEST_MICROS, 3).expect("valid histogram bounds")
}

/// Whole microseconds, at least 1 (the histograms' lowest value).
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        Self {
            all: histogram(),
            operations: Operation::ALL
                .iter()
                .map(|_| OperationStats {
                    requests: 0,
                    errors: 0,
                    latency: histogram(),
                    service: histogram(),
                })
                .collect(),
            open: BTreeMap::new(),
            closed: Vec::new(),
            errors_by_kind: BTreeMap::new(),
            requests: 0,
            errors: 0,
        }
    }

    pub fn record(&mut self, outcome: &Outcome) {
        let micros = micros(outcome.latency);
        self.all.saturating_record(micros);
        self.requests += 1;
        let failed = outcome.error.is_some();
        if let Some(kind) = &outcome.error {
            self.errors += 1;
            *self.errors_by_kind.entry(kind.clone()).or_default() += 1;
        }
        if let Some(op) = self.operations.get_mut(outcome.operation.index()) {
            op.requests += 1;
            op.errors += u64::from(failed);
            op.latency.saturating_record(micros);
            op.service.saturating_record(self::micros(outcome.service));
        }
        // A straggler for a second already summarised counts in the oldest open one.
        let first_open = self.closed.last().map_or(0, |c| c.second + 1);
        let second = outcome.finished_at.as_secs().max(first_open);
        let window = self.open.entry(second).or_insert_with(|| Window {
            requests: 0,
            errors: 0,
            histogram: histogram(),
        });
        window.requests += 1;
        window.errors += u64::from(failed);
        window.histogram.saturating_record(micros);
    }

    /// Summarises and frees every second before `second` (idle ones included); returns the newest.
    pub fn close_before(&mut self, second: u64) -> Option<&SecondSummary> {
        let still_open = self.open.split_off(&second);
        let done = std::mem::replace(&mut self.open, still_open);
        for (s, w) in done {
            self.close_gap_until(s);
            self.closed.push(SecondSummary {
                second: s,
                requests: w.requests,
                errors: w.errors,
                p50_ms: w.histogram.value_at_quantile(0.50) as f64 / 1000.0,
                p95_ms: w.histogram.value_at_quantile(0.95) as f64 / 1000.0,
                p99_ms: w.histogram.value_at_quantile(0.99) as f64 / 1000.0,
            });
        }
        if second != u64::MAX {
            self.close_gap_until(second);
        }
        self.closed.last()
    }

    /// Seconds in which nothing finished still appear (with zero requests) so charts show gaps.
    fn close_gap_until(&mut self, second: u64) {
        let next = self.closed.last().map_or(0, |c| c.second + 1);
        for s in next..second {
            self.closed.push(SecondSummary {
                second: s,
                requests: 0,
                errors: 0,
                p50_ms: 0.0,
                p95_ms: 0.0,
                p99_ms: 0.0,
            });
        }
    }

    pub fn requests(&self) -> u64 {
        self.requests
    }

    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// Closes every window and returns the final figures.
    pub fn finish(mut self) -> Totals {
        self.close_before(u64::MAX);
        let operations = Operation::ALL
            .iter()
            .zip(&self.operations)
            .filter(|(_, stats)| stats.requests > 0)
            .map(|(op, stats)| OperationSummary {
                operation: *op,
                requests: stats.requests,
                errors: stats.errors,
                latency_ms: Latency::of(&stats.latency),
                service_ms: Latency::of(&stats.service),
            })
            .collect();
        Totals {
            requests: self.requests,
            errors: self.errors,
            latency_ms: Latency::of(&self.all),
            operations,
            errors_by_kind: self.errors_by_kind,
            timeline: self.closed,
        }
    }
}

/// Everything the recorder learned.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub requests: u64,
    pub errors: u64,
    pub latency_ms: Latency,
    pub operations: Vec<OperationSummary>,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub timeline: Vec<SecondSummary>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(ms: u64, at_s: u64, error: Option<&str>) -> Outcome {
        Outcome {
            operation: Operation::GetTask,
            latency: Duration::from_millis(ms),
            service: Duration::from_millis(ms / 2),
            finished_at: Duration::from_millis(at_s * 1000 + 500),
            error: error.map(str::to_owned),
        }
    }

    #[test]
    fn quantiles_counts_and_errors() {
        let mut r = Recorder::new();
        for ms in 1..=100 {
            r.record(&outcome(ms, 0, None));
        }
        r.record(&outcome(900, 0, Some("http_500")));
        let t = r.finish();
        assert_eq!((t.requests, t.errors), (101, 1));
        assert!((t.latency_ms.p50 - 51.0).abs() < 0.5, "{}", t.latency_ms.p50);
        assert!((t.latency_ms.p99 - 100.0).abs() < 0.5, "{}", t.latency_ms.p99);
        assert!((t.latency_ms.max - 900.0).abs() < 1.0);
        assert_eq!(t.errors_by_kind["http_500"], 1);
        assert_eq!(t.operations.len(), 1);
        assert_eq!(t.operations[0].errors, 1);
        assert!((t.operations[0].service_ms.p50 - 25.0).abs() < 0.5);
    }

    #[test]
    fn timeline_has_one_entry_per_second_including_idle_ones() {
        let mut r = Recorder::new();
        r.record(&outcome(10, 0, None));
        r.record(&outcome(20, 2, None));
        r.record(&outcome(30, 2, Some("timeout")));
        let newest = r.close_before(2).cloned().unwrap();
        assert_eq!(newest.second, 1);
        assert_eq!(newest.requests, 0);
        let t = r.finish();
        let seconds: Vec<(u64, u64, u64)> = t
            .timeline
            .iter()
            .map(|s| (s.second, s.requests, s.errors))
            .collect();
        assert_eq!(seconds, [(0, 1, 0), (1, 0, 0), (2, 2, 1)]);
        assert!((t.timeline[2].p99_ms - 30.0).abs() < 0.1);
    }
}
