//! Test support: the specs, settings and observations the tuner's tests start from, and pod metrics
//! rendered in the contract's exposition format, the way the app does.
use std::fmt::Write;

use super::budget::{ConnectionBudget, Transit};
use super::budget::{PoolBounds, ReplicaBounds};
use super::observe::{Observation, PodCounts, PoolObservation};
use super::spec::{Settings, TuningSpec};

/// A tuning spec with the pool bounds `pool`, the replica bounds `replicas` and PostgreSQL's
/// `max_connections`, 10 of them reserved.
pub fn spec(pool: (u32, u32), replicas: (u32, u32), max_connections: u32) -> TuningSpec {
    TuningSpec::new(
        PoolBounds {
            min: pool.0,
            max: pool.1,
        },
        ReplicaBounds {
            min: replicas.0,
            max: replicas.1,
        },
        ConnectionBudget {
            max_connections,
            reserved: 10,
            source: Default::default(),
            transit: Transit::None,
        },
    )
}

/// Settings in force: the pool `pool`, the HPA bounds `hpa`, at tuning-file `generation`.
pub fn settings(pool: (u32, u32), hpa: (u32, u32), generation: u64) -> Settings {
    Settings {
        pool_min: pool.0,
        pool_max: pool.1,
        hpa_min: hpa.0,
        hpa_max: hpa.1,
        generation,
    }
}

/// An interval on `pods` pods, each with `in_use` connections in use and `waiting` tasks waiting, at
/// `p95_ms` and `rps` in total; every pod ran `generation` throughout.
pub fn observation(
    pods: u32,
    p95_ms: f64,
    rps: f64,
    in_use: f64,
    waiting: f64,
    generation: u64,
) -> Observation {
    let n = f64::from(pods);
    Observation {
        seconds: 30.0,
        pods: PodCounts {
            asked: pods,
            answered: pods,
            ..PodCounts::default()
        },
        p95: Some(p95_ms / 1000.0),
        p99: Some(p95_ms * 1.5 / 1000.0),
        requests_per_second: rps,
        error_rate: 0.0,
        pool: PoolObservation {
            in_use: in_use * n,
            idle: 0.0,
            max: 0.0,
            peak_in_use_per_pod: in_use,
            waiting: waiting * n,
            acquire_p95: Some(if waiting > 0.0 { 0.05 } else { 0.001 }),
            acquire_timeouts: 0.0,
        },
        generation_lowest: generation,
        generation_highest: generation,
        server: None,
    }
}

/// Counters and gauges of one pod, rendered by [`PodMetrics::render`].
#[derive(Debug, Clone, Default)]
pub struct PodMetrics {
    /// 2xx responses.
    pub ok: u64,
    /// 5xx responses.
    pub server_errors: u64,
    /// Cumulative latency buckets `(le, count)`, finite bounds only; `+Inf` = ok + errors.
    pub latency: Vec<(f64, u64)>,
    pub in_use: u64,
    pub idle: u64,
    pub pool_min: u64,
    pub pool_max: u64,
    pub waiting: u64,
    /// Cumulative acquire buckets `(le, count)`; `+Inf` = the last count.
    pub acquire: Vec<(f64, u64)>,
    pub timeouts: u64,
    pub generation: u64,
    /// The database server's `max_connections` as the pod read it (0: not yet, as the app says).
    pub server_max_connections: u64,
    pub server_reserved_connections: u64,
}

impl PodMetrics {
    /// The exposition text, with each counter split over two routes so tests exercise summing.
    pub fn render(&self) -> String {
        let mut out = String::from("# TYPE perfstack_http_requests_total counter\n");
        let routes = [("/api/v1/users", "GET"), ("/api/v1/tasks/{id}", "PATCH")];
        let halves = |n: u64| [n / 2, n - n / 2];
        for (class, n) in [("2xx", self.ok), ("5xx", self.server_errors)] {
            for ((route, method), part) in routes.iter().zip(halves(n)) {
                let _ = writeln!(
                    out,
                    "perfstack_http_requests_total{{route=\"{route}\",method=\"{method}\",status_class=\"{class}\"}} {part}"
                );
            }
        }
        out.push_str("# TYPE perfstack_http_request_duration_seconds histogram\n");
        let total = self.ok + self.server_errors;
        for ((route, method), i) in routes.iter().zip(0..) {
            let mut buckets: Vec<(String, u64)> = self
                .latency
                .iter()
                .map(|&(le, c)| (le.to_string(), halves(c)[i]))
                .collect();
            buckets.push(("+Inf".into(), halves(total)[i]));
            for (le, c) in buckets {
                let _ = writeln!(
                    out,
                    "perfstack_http_request_duration_seconds_bucket{{route=\"{route}\",method=\"{method}\",le=\"{le}\"}} {c}"
                );
            }
            let _ = writeln!(
                out,
                "perfstack_http_request_duration_seconds_count{{route=\"{route}\",method=\"{method}\"}} {}",
                halves(total)[i]
            );
        }
        let _ = writeln!(
            out,
            "perfstack_db_pool_connections{{state=\"idle\"}} {}",
            self.idle
        );
        let _ = writeln!(
            out,
            "perfstack_db_pool_connections{{state=\"in_use\"}} {}",
            self.in_use
        );
        let _ = writeln!(out, "perfstack_db_pool_min_connections {}", self.pool_min);
        let _ = writeln!(out, "perfstack_db_pool_max_connections {}", self.pool_max);
        let _ = writeln!(out, "perfstack_db_pool_waiting {}", self.waiting);
        let acquired = self.acquire.last().map_or(0, |&(_, c)| c);
        for &(le, c) in &self.acquire {
            let _ = writeln!(
                out,
                "perfstack_db_pool_acquire_duration_seconds_bucket{{le=\"{le}\"}} {c}"
            );
        }
        let _ = writeln!(
            out,
            "perfstack_db_pool_acquire_duration_seconds_bucket{{le=\"+Inf\"}} {acquired}"
        );
        let _ = writeln!(out, "perfstack_db_pool_acquire_timeouts_total {}", self.timeouts);
        let _ = writeln!(out, "perfstack_db_pool_settings_generation {}", self.generation);
        let _ = writeln!(
            out,
            "perfstack_db_server_max_connections {}",
            self.server_max_connections
        );
        let _ = writeln!(
            out,
            "perfstack_db_server_reserved_connections {}",
            self.server_reserved_connections
        );
        out.push_str("# EOF\n");
        out
    }
}
