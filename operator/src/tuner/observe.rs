//! From `/metrics` text to one [`Observation`] per tuning interval.
//!
//! A [`PodSnapshot`] holds one pod's counters and gauges at one instant (names from
//! `perfstack_contract::metrics`). [`aggregate`] turns the snapshots at the start and end of an interval into
//! cluster-wide figures: latency percentiles come from the histogram bucket deltas summed over
//! every pod (never an average of per-pod percentiles), a pod whose counters went down restarted
//! and contributes its counters since the restart, and pods that did not answer are counted and
//! named, never guessed.
use std::collections::BTreeMap;

use perfstack_contract::metrics::{self, samples};

use super::budget::ServerLimits;
use super::exposition::Sample;
use super::histogram::Histogram;

/// One pod's metrics at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodSnapshot {
    /// Finished requests (`perfstack_http_requests_total`, all label sets).
    pub requests: f64,
    /// Of which 5xx.
    pub server_errors: f64,
    /// Request latency (`perfstack_http_request_duration_seconds`), summed over routes.
    pub latency: Histogram,
    /// Open connections in use.
    pub pool_in_use: f64,
    /// Open idle connections.
    pub pool_idle: f64,
    /// Pool minimum in force.
    pub pool_min: f64,
    /// Pool maximum in force.
    pub pool_max: f64,
    /// Tasks waiting for a connection.
    pub pool_waiting: f64,
    /// Connection acquire time.
    pub acquire: Histogram,
    /// Acquires that timed out.
    pub acquire_timeouts: f64,
    /// `generation` of the tuning file in force (0: none).
    pub generation: u64,
    /// The database server's `max_connections` as the pod read it (0: not read yet).
    pub server_max_connections: f64,
    /// Server slots ordinary roles cannot use, as the pod read them.
    pub server_reserved_connections: f64,
}

impl PodSnapshot {
    /// Reads the tuner's families (the contract's sample names) out of parsed samples; other
    /// families are ignored.
    pub fn from_samples(samples: &[Sample]) -> Self {
        let mut snap = PodSnapshot::default();
        for s in samples {
            if !s.value.is_finite() {
                continue;
            }
            match s.name.as_str() {
                samples::HTTP_REQUESTS_TOTAL => {
                    snap.requests += s.value;
                    if s.label(metrics::STATUS_CLASS) == Some(metrics::SERVER_ERROR_CLASS) {
                        snap.server_errors += s.value;
                    }
                }
                samples::HTTP_REQUEST_DURATION_BUCKET => add_bucket(&mut snap.latency, s),
                samples::DB_POOL_CONNECTIONS => match s.label(metrics::STATE) {
                    Some(metrics::STATE_IN_USE) => snap.pool_in_use += s.value,
                    Some(metrics::STATE_IDLE) => snap.pool_idle += s.value,
                    _ => {}
                },
                samples::DB_POOL_MIN_CONNECTIONS => snap.pool_min = s.value,
                samples::DB_POOL_MAX_CONNECTIONS => snap.pool_max = s.value,
                samples::DB_POOL_WAITING => snap.pool_waiting = s.value,
                samples::DB_POOL_ACQUIRE_DURATION_BUCKET => add_bucket(&mut snap.acquire, s),
                samples::DB_POOL_ACQUIRE_TIMEOUTS_TOTAL => snap.acquire_timeouts += s.value,
                samples::DB_SERVER_MAX_CONNECTIONS => snap.server_max_connections = s.value,
                samples::DB_SERVER_RESERVED_CONNECTIONS => snap.server_reserved_connections = s.value,
                samples::DB_POOL_SETTINGS_GENERATION => {
                    snap.generation = if s.value >= 0.0 { s.value as u64 } else { 0 }
                }
                _ => {}
            }
        }
        snap
    }
}

fn add_bucket(h: &mut Histogram, s: &Sample) {
    let le = match s.label("le") {
        Some("+Inf" | "Inf") => f64::INFINITY,
        Some(text) => match text.parse::<f64>() {
            Ok(v) => v,
            Err(_) => return,
        },
        None => return,
    };
    h.add(le, s.value);
}

/// Who was asked and who answered in one interval.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodCounts {
    /// Pods asked (the Ready pods, or the local app).
    pub asked: u32,
    /// Pods that answered at the end of the interval.
    pub answered: u32,
    /// Names of the pods that did not answer (their traffic is missing, not estimated).
    pub unanswered: Vec<String>,
    /// Answering pods with no snapshot at the start (new pods): gauges used, counters not.
    pub without_baseline: u32,
    /// Answering pods whose counters went down (restarted): counters since the restart used.
    pub restarted: u32,
}

/// Pool figures summed over the answering pods.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoolObservation {
    /// Connections in use.
    pub in_use: f64,
    /// Idle connections.
    pub idle: f64,
    /// Sum of the pods' pool maxima.
    pub max: f64,
    /// The busiest pod's connections in use.
    pub peak_in_use_per_pod: f64,
    /// Tasks waiting for a connection.
    pub waiting: f64,
    /// 95th percentile time to acquire a connection (seconds) over the interval.
    pub acquire_p95: Option<f64>,
    /// Acquire timeouts during the interval.
    pub acquire_timeouts: f64,
}

/// Everything the decision needs to know about one interval.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    /// Interval length in seconds.
    pub seconds: f64,
    /// Who answered.
    pub pods: PodCounts,
    /// Request latency p95 over the interval, seconds (`None`: no requests).
    pub p95: Option<f64>,
    /// Request latency p99 over the interval, seconds.
    pub p99: Option<f64>,
    /// Finished requests per second.
    pub requests_per_second: f64,
    /// Share of 5xx responses (0 without requests).
    pub error_rate: f64,
    /// Connection pool.
    pub pool: PoolObservation,
    /// Lowest tuning generation any answering pod reported, at start or end.
    pub generation_lowest: u64,
    /// Highest tuning generation any answering pod reported.
    pub generation_highest: u64,
    /// The database server's limits: the lowest `max_connections` and the largest reserve any
    /// answering pod reported (`None`: no pod has read them yet, or an older app that does not
    /// export them).
    pub server: Option<ServerLimits>,
}

impl Observation {
    /// The generation every answering pod ran for the whole interval, if they agree.
    pub fn settled_generation(&self) -> Option<u64> {
        (self.pods.answered > 0 && self.generation_lowest == self.generation_highest)
            .then_some(self.generation_lowest)
    }

    /// Pool utilisation: connections in use over the pools' maxima (0 without pools).
    pub fn pool_utilisation(&self) -> f64 {
        if self.pool.max > 0.0 {
            self.pool.in_use / self.pool.max
        } else {
            0.0
        }
    }
}

/// One pod's answer at the end of the interval: its snapshot, or why there is none.
pub type PodAnswer = (String, Result<PodSnapshot, String>);

/// Combines the snapshots at the start of an interval (`start`, by pod name) with the answers at
/// its end into one observation over `seconds`.
pub fn aggregate(start: &BTreeMap<String, PodSnapshot>, end: &[PodAnswer], seconds: f64) -> Observation {
    let mut obs = Observation {
        seconds,
        generation_lowest: u64::MAX,
        ..Observation::default()
    };
    let mut latency = Histogram::default();
    let mut acquire = Histogram::default();
    let (mut requests, mut errors) = (0.0, 0.0);
    for (pod, answer) in end {
        obs.pods.asked += 1;
        let snap = match answer {
            Ok(snap) => snap,
            Err(_) => {
                obs.pods.unanswered.push(pod.clone());
                continue;
            }
        };
        obs.pods.answered += 1;
        obs.pool.in_use += snap.pool_in_use;
        obs.pool.idle += snap.pool_idle;
        obs.pool.max += snap.pool_max;
        obs.pool.waiting += snap.pool_waiting;
        obs.pool.peak_in_use_per_pod = obs.pool.peak_in_use_per_pod.max(snap.pool_in_use);
        obs.server = cautious_limits(obs.server, snap);
        let mut lowest = snap.generation;
        let mut highest = snap.generation;
        match start.get(pod) {
            None => obs.pods.without_baseline += 1,
            Some(before) => {
                lowest = lowest.min(before.generation);
                highest = highest.max(before.generation);
                let delta = pod_delta(before, snap);
                if delta.restarted {
                    obs.pods.restarted += 1;
                }
                requests += delta.requests;
                errors += delta.server_errors;
                latency.merge(&delta.latency);
                acquire.merge(&delta.acquire);
                obs.pool.acquire_timeouts += delta.acquire_timeouts;
            }
        }
        obs.generation_lowest = obs.generation_lowest.min(lowest);
        obs.generation_highest = obs.generation_highest.max(highest);
    }
    if obs.pods.answered == 0 {
        obs.generation_lowest = 0;
    }
    obs.p95 = latency.quantile(0.95);
    obs.p99 = latency.quantile(0.99);
    obs.pool.acquire_p95 = acquire.quantile(0.95);
    obs.requests_per_second = if seconds > 0.0 { requests / seconds } else { 0.0 };
    obs.error_rate = if requests > 0.0 { errors / requests } else { 0.0 };
    obs
}

/// `known` combined with the limits `snap` reports, the cautious way: the lower `max_connections`
/// and the larger reserve. Pods of one stack share one server, but any one pod may be wrong (it read
/// before the server's limit was lowered) or hostile (the image is the stack owner's choice): the
/// budget must never trust the most generous report.
fn cautious_limits(known: Option<ServerLimits>, snap: &PodSnapshot) -> Option<ServerLimits> {
    let as_count = |v: f64| (v.is_finite() && v >= 1.0).then(|| v.min(f64::from(u32::MAX)) as u32);
    let reported = as_count(snap.server_max_connections).map(|max_connections| ServerLimits {
        max_connections,
        reserved: as_count(snap.server_reserved_connections).unwrap_or(0),
    });
    match (known, reported) {
        (Some(a), Some(b)) => Some(ServerLimits {
            max_connections: a.max_connections.min(b.max_connections),
            reserved: a.reserved.max(b.reserved),
        }),
        (a, b) => a.or(b),
    }
}

struct PodDelta {
    requests: f64,
    server_errors: f64,
    latency: Histogram,
    acquire: Histogram,
    acquire_timeouts: f64,
    restarted: bool,
}

/// Counter increases of one pod; if any counter went down the process restarted, and everything
/// it counted since then (its current values) is the increase.
fn pod_delta(before: &PodSnapshot, after: &PodSnapshot) -> PodDelta {
    let latency = after.latency.delta_since(&before.latency);
    let acquire = after.acquire.delta_since(&before.acquire);
    let reset = latency.is_none()
        || acquire.is_none()
        || after.requests < before.requests
        || after.server_errors < before.server_errors
        || after.acquire_timeouts < before.acquire_timeouts;
    match (reset, latency, acquire) {
        (false, Some(latency), Some(acquire)) => PodDelta {
            requests: after.requests - before.requests,
            server_errors: after.server_errors - before.server_errors,
            latency,
            acquire,
            acquire_timeouts: after.acquire_timeouts - before.acquire_timeouts,
            restarted: false,
        },
        _ => PodDelta {
            requests: after.requests,
            server_errors: after.server_errors,
            latency: after.latency.clone(),
            acquire: after.acquire.clone(),
            acquire_timeouts: after.acquire_timeouts,
            restarted: true,
        },
    }
}

#[cfg(test)]
mod tests;
