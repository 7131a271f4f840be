//! From the `PerformanceStack` spec to the tuner's inputs (one place, so the tuner's own types stay
//! independent of the CRD).
use std::time::Duration;

use super::act::Mode;
use super::budget::ConnectionBudget;
use super::effective::StartingPool;
use super::spec::{PoolBounds, ReplicaBounds, SloSpec, TuningSpec};
use super::tuning_file::PoolTuning;
use crate::crd::{DatabaseMode, PerformanceStackSpec, TuningMode};

/// `max_connections` assumed for an External database (PostgreSQL's default) until the operator can
/// ask it (`SHOW max_connections`); the ConnectionBudget condition message shows the number used.
pub const ASSUMED_EXTERNAL_MAX_CONNECTIONS: u32 = 100;

fn non_negative(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

/// The tuner's spec.
pub fn tuning_spec(spec: &PerformanceStackSpec) -> TuningSpec {
    let max_connections = match spec.database.mode {
        DatabaseMode::Bundled => non_negative(spec.database.bundled.max_connections),
        DatabaseMode::External => ASSUMED_EXTERNAL_MAX_CONNECTIONS,
    };
    let mut tuning = TuningSpec::new(
        PoolBounds {
            min: non_negative(spec.pool.min_connections),
            max: non_negative(spec.pool.max_connections),
        },
        ReplicaBounds {
            min: non_negative(spec.app.min_replicas),
            max: non_negative(spec.app.max_replicas),
        },
        ConnectionBudget {
            max_connections,
            reserved: non_negative(spec.database.reserved_connections),
        },
    );
    tuning.slo = SloSpec {
        p95: Duration::from_millis(u64::from(non_negative(spec.slo.p95_latency_ms))),
        p99: Duration::from_millis(u64::from(non_negative(spec.slo.p99_latency_ms))),
        max_error_rate: (spec.slo.max_error_rate_percent / 100.0).clamp(0.0, 1.0),
    };
    tuning.scale_down_stabilization = Duration::from_secs(u64::from(non_negative(
        spec.tuning.scale_down_stabilization_seconds,
    )));
    tuning
}

/// `spec.tuning.mode`.
pub fn mode(spec: &PerformanceStackSpec) -> Mode {
    match spec.tuning.mode {
        TuningMode::Auto => Mode::Auto,
        TuningMode::Recommend => Mode::Recommend,
        TuningMode::Off => Mode::Off,
    }
}

/// `spec.tuning.intervalSeconds` (at least 1 s).
pub fn interval(spec: &PerformanceStackSpec) -> Duration {
    Duration::from_secs(u64::from(non_negative(spec.tuning.interval_seconds).max(1)))
}

/// `spec.pool` as the starting point, carried by tuning-file generation `generation`.
pub fn starting_pool(spec: &PerformanceStackSpec, generation: i64) -> StartingPool {
    StartingPool {
        min: non_negative(spec.pool.min_connections),
        max: non_negative(spec.pool.max_connections),
        generation: u64::try_from(generation).unwrap_or(0),
    }
}

/// The acquire and idle timeouts the tuning file keeps from `spec.pool`.
pub fn timeouts(spec: &PerformanceStackSpec) -> PoolTuning {
    PoolTuning {
        min_connections: non_negative(spec.pool.min_connections),
        max_connections: non_negative(spec.pool.max_connections),
        acquire_timeout_ms: u64::from(non_negative(spec.pool.acquire_timeout_ms)),
        idle_timeout_seconds: u64::from(non_negative(spec.pool.idle_timeout_seconds)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_map_to_the_seed_slo_and_a_budget_that_caps_the_pool() {
        let spec = PerformanceStackSpec::default();
        let t = tuning_spec(&spec);
        assert_eq!(
            t.slo.p95,
            Duration::from_millis(u64::from(non_negative(spec.slo.p95_latency_ms)))
        );
        assert_eq!(
            t.budget.max_connections,
            non_negative(spec.database.bundled.max_connections)
        );
        assert_eq!(t.replicas.max, non_negative(spec.app.max_replicas));
        let plan = t.budget.plan(t.replicas, t.pool);
        assert!(
            plan.peak_connections() <= u64::from(t.budget.max_connections),
            "{plan}"
        );
        assert_eq!(mode(&spec), Mode::Auto);
    }
}
