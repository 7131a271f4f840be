//! From the `PerformanceStack` spec to the tuner's inputs: the one place where the CRD's integers
//! (`i32`, as Kubernetes writes them) become the tuner's (`u32`/`u64`), so the tuner's own types stay
//! independent of the CRD. The tuner depends on the CRD's spec types, never the other way round.
use std::time::Duration;

use perfstack_contract::tuning::PoolSettings;

use super::act::Mode;
use super::budget::{
    ConnectionBudget, MaxConnectionsSource, PoolBounds, ReplicaBounds, ServerLimits, Transit,
};
use super::spec::{Settings, SloSpec, TuningSpec};
use crate::crd::{DatabaseMode, PerformanceStackSpec, TuningMode};

/// `max_connections` assumed for an External database (PostgreSQL's default) until an app pod has
/// reported the server's own value (`perfstack_db_server_max_connections`, from `SHOW
/// max_connections`); the ConnectionBudget condition message says which one is used.
pub const ASSUMED_EXTERNAL_MAX_CONNECTIONS: u32 = 100;

fn non_negative(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

/// The tuner's spec, before any app pod reported the database server's limits.
pub fn tuning_spec(spec: &PerformanceStackSpec) -> TuningSpec {
    tuning_spec_with(spec, None)
}

/// The connection budget. Bundled: the spec's `maxConnections` (the operator configures the
/// server with it). External: the limits the app pods reported (`server`) — the server's
/// superuser-only slots count as reserved when they exceed `reservedConnections` — else
/// [`ASSUMED_EXTERNAL_MAX_CONNECTIONS`].
pub fn connection_budget(spec: &PerformanceStackSpec, server: Option<ServerLimits>) -> ConnectionBudget {
    let reserved = non_negative(spec.database.reserved_connections);
    match (spec.database.mode, server) {
        (DatabaseMode::Bundled, _) => ConnectionBudget {
            max_connections: non_negative(spec.database.bundled.max_connections),
            reserved,
            source: MaxConnectionsSource::Spec,
            transit: Transit::Deployment,
        },
        (DatabaseMode::External, Some(server)) => ConnectionBudget {
            max_connections: server.max_connections,
            reserved: reserved.max(server.reserved),
            source: MaxConnectionsSource::Observed,
            transit: Transit::Deployment,
        },
        (DatabaseMode::External, None) => ConnectionBudget {
            max_connections: ASSUMED_EXTERNAL_MAX_CONNECTIONS,
            reserved,
            source: MaxConnectionsSource::Assumed,
            transit: Transit::Deployment,
        },
    }
}

/// The tuner's spec, with the database server's limits as the app pods reported them (`None`:
/// not reported yet).
pub fn tuning_spec_with(spec: &PerformanceStackSpec, server: Option<ServerLimits>) -> TuningSpec {
    let mut tuning = TuningSpec::new(
        PoolBounds {
            min: non_negative(spec.pool.min_connections),
            max: non_negative(spec.pool.max_connections),
        },
        ReplicaBounds {
            min: non_negative(spec.app.min_replicas),
            max: non_negative(spec.app.max_replicas),
        },
        connection_budget(spec, server),
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

/// The spec's own settings, as written (no budget applied): `spec.pool` and the `spec.app` replica
/// bounds, carried by tuning-file generation `generation` (the stack's `metadata.generation`).
pub fn spec_settings(spec: &PerformanceStackSpec, generation: i64) -> Settings {
    Settings {
        pool_min: non_negative(spec.pool.min_connections),
        pool_max: non_negative(spec.pool.max_connections),
        hpa_min: non_negative(spec.app.min_replicas),
        hpa_max: non_negative(spec.app.max_replicas),
        generation: u64::try_from(generation).unwrap_or(0),
    }
}

/// `spec.pool` as the contract's pool settings: the acquire and idle timeouts every tuning file
/// keeps (the tuner only moves the minimum and maximum).
pub fn pool_settings(spec: &PerformanceStackSpec) -> PoolSettings {
    PoolSettings {
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
    fn defaults_map_to_the_seed_slo_and_a_budget_they_fit_without_capping() {
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
        assert_eq!(
            (plan.verdict.reason(), plan.pool_max, plan.replicas_max),
            ("Fits", t.pool.max, t.replicas.max),
            "examples/minimal.yaml (spec: {{}}) runs as it asks: {plan}"
        );
        assert_eq!(mode(&spec), Mode::Auto);
    }

    fn external() -> PerformanceStackSpec {
        let mut spec = PerformanceStackSpec::default();
        spec.database.mode = DatabaseMode::External;
        spec.database.reserved_connections = 10;
        spec.database.bundled.max_connections = 5000; // ignored for External
        spec.app.min_replicas = 1;
        spec.app.max_replicas = 10;
        spec.pool.min_connections = 2;
        spec.pool.max_connections = 30;
        spec
    }

    #[test]
    fn external_database_without_a_report_uses_the_documented_fallback_and_says_so() {
        let t = tuning_spec(&external());
        assert_eq!(
            t.budget,
            ConnectionBudget {
                max_connections: ASSUMED_EXTERNAL_MAX_CONNECTIONS,
                reserved: 10,
                source: MaxConnectionsSource::Assumed,
                transit: Transit::Deployment,
            }
        );
        let plan = t.budget.plan(t.replicas, t.pool);
        // 10 replicas (+9 in transit) x 30 + 10 > 100: the pool is capped at (100 - 10) / 19 = 4.
        assert_eq!(plan.pool_max, 4);
        let message = plan.to_string();
        assert!(message.contains("max_connections 100 assumed"), "{message}");
    }

    #[test]
    fn external_database_uses_the_reported_limits_and_says_so() {
        let server = ServerLimits {
            max_connections: 600,
            reserved: 3,
        };
        let t = tuning_spec_with(&external(), Some(server));
        assert_eq!(
            (t.budget.max_connections, t.budget.reserved, t.budget.source),
            (600, 10, MaxConnectionsSource::Observed)
        );
        let plan = t.budget.plan(t.replicas, t.pool);
        // 10 replicas (+9 in transit) x 30 + 10 = 580.
        assert_eq!((plan.pool_max, plan.verdict.reason()), (30, "Fits"));
        let message = plan.to_string();
        assert!(
            message.contains("= 580 <= max_connections 600")
                && message.contains("on the external server: the lowest any app pod reported"),
            "{message}"
        );
        // Superuser-only slots above reservedConnections are kept free too.
        let t = tuning_spec_with(
            &external(),
            Some(ServerLimits {
                max_connections: 400,
                reserved: 25,
            }),
        );
        assert_eq!(t.budget.reserved, 25);
    }

    #[test]
    fn bundled_database_ignores_reports_and_keeps_the_spec() {
        let mut spec = external();
        spec.database.mode = DatabaseMode::Bundled;
        spec.database.bundled.max_connections = 150;
        let server = ServerLimits {
            max_connections: 400,
            reserved: 3,
        };
        let t = tuning_spec_with(&spec, Some(server));
        assert_eq!(
            (t.budget.max_connections, t.budget.source),
            (150, MaxConnectionsSource::Spec)
        );
    }
}
