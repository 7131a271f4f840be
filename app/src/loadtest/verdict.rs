//! The SLO assertions checked at the end of a run. Pure: figures in, verdict out.
use clap::Args;

/// Limits a run must meet; defaults are the SLOs (p95 < 200 ms, p99 < 500 ms, errors < 1 %,
/// throughput > 100 rps). Throughput is judged against the scenario's own plan: at least
/// `min_plan_pct` of its planned rate, and the 100 rps floor where the plan is above it (the
/// baseline plans 50 rps and could never reach 100). Tests lower or raise them to force either
/// outcome.
#[derive(Debug, Clone, Args, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Thresholds {
    /// The 95th percentile latency must be below this, in milliseconds.
    #[arg(long = "max-p95-ms", default_value_t = 200.0)]
    pub max_p95_ms: f64,
    /// The 99th percentile latency must be below this, in milliseconds.
    #[arg(long = "max-p99-ms", default_value_t = 500.0)]
    pub max_p99_ms: f64,
    /// Failed requests (non-2xx, timeouts, connection errors) must be below this share, in percent.
    #[arg(long = "max-error-pct", default_value_t = 1.0)]
    pub max_error_pct: f64,
    /// Completed requests per second over the run must be above this, where the scenario plans
    /// more than this (the design document's floor).
    #[arg(long = "min-rps", default_value_t = 100.0)]
    pub min_rps: f64,
    /// Completed requests per second over the run must be above this share of the scenario's
    /// planned rate, in percent (a server that falls behind its plan finishes late).
    #[arg(long = "min-plan-pct", default_value_t = 90.0)]
    pub min_plan_pct: f64,
}

impl Default for Thresholds {
    /// The SLOs, as the flags' defaults.
    fn default() -> Self {
        Self {
            max_p95_ms: 200.0,
            max_p99_ms: 500.0,
            max_error_pct: 1.0,
            min_rps: 100.0,
            min_plan_pct: 90.0,
        }
    }
}

/// The figures the thresholds apply to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub error_pct: f64,
    pub rps: f64,
    /// The rate the scenario planned: its requests over its duration.
    pub planned_rps: f64,
}

/// One assertion and how the run fared.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    pub name: &'static str,
    /// Human form, e.g. `p95 < 200 ms`.
    pub rule: String,
    pub limit: f64,
    pub actual: f64,
    pub passed: bool,
}

impl Thresholds {
    pub fn check(&self, m: &Measured) -> Vec<Check> {
        let below = |name, unit: &str, limit: f64, actual: f64| Check {
            name,
            rule: format!("{name} < {limit} {unit}"),
            limit,
            actual,
            passed: actual < limit,
        };
        vec![
            below("p95", "ms", self.max_p95_ms, m.p95_ms),
            below("p99", "ms", self.max_p99_ms, m.p99_ms),
            below("errorRate", "%", self.max_error_pct, m.error_pct),
            self.throughput(m),
        ]
    }

    /// Throughput against the plan: above `min_plan_pct` of the planned rate, and above `min_rps`
    /// when the plan itself is above it.
    fn throughput(&self, m: &Measured) -> Check {
        let share = m.planned_rps * self.min_plan_pct / 100.0;
        let plan = format!(
            "{} % of the planned {} rps",
            self.min_plan_pct,
            round(m.planned_rps)
        );
        let (limit, basis) = if m.planned_rps > self.min_rps && self.min_rps > share {
            (self.min_rps, format!("the floor; {plan} is {}", round(share)))
        } else {
            (share, plan)
        };
        Check {
            name: "throughput",
            rule: format!("throughput > {} rps ({basis})", round(limit)),
            limit,
            actual: m.rps,
            passed: m.rps > limit,
        }
    }
}

/// `x` with at most two decimals, for rules people read.
fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slo() -> Thresholds {
        Thresholds::default()
    }

    #[test]
    fn the_default_is_the_slo_and_the_flags_defaults() {
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            thresholds: Thresholds,
        }
        let parsed = <Flags as clap::Parser>::parse_from(["loadtest"]).thresholds;
        for t in [Thresholds::default(), parsed] {
            let values = (
                t.max_p95_ms,
                t.max_p99_ms,
                t.max_error_pct,
                t.min_rps,
                t.min_plan_pct,
            );
            assert_eq!(values, (200.0, 500.0, 1.0, 100.0, 90.0));
        }
    }

    /// A healthy run of a scenario planning `planned_rps` that kept up with its plan.
    fn kept_up(planned_rps: f64) -> Measured {
        Measured {
            p95_ms: 12.0,
            p99_ms: 40.0,
            error_pct: 0.0,
            rps: planned_rps * 0.998,
            planned_rps,
        }
    }

    fn throughput(m: &Measured) -> Check {
        let checks = slo().check(m);
        checks.into_iter().find(|c| c.name == "throughput").unwrap()
    }

    #[test]
    fn a_good_run_passes_every_check() {
        assert!(slo().check(&kept_up(500.0)).iter().all(|c| c.passed));
    }

    #[test]
    fn a_healthy_baseline_passes_though_it_plans_less_than_the_floor() {
        // The baseline plans 50 rps: the floor of 100 could never be met.
        let check = throughput(&kept_up(50.0));
        assert!(check.passed, "{check:?}");
        assert_eq!(check.limit, 45.0);
        assert_eq!(check.rule, "throughput > 45 rps (90 % of the planned 50 rps)");
        let behind = Measured {
            rps: 30.0,
            ..kept_up(50.0)
        };
        assert!(!throughput(&behind).passed);
    }

    #[test]
    fn the_floor_holds_where_the_plan_is_above_it() {
        // 90 % of 105 rps is below the floor: the floor is the limit.
        let check = throughput(&Measured {
            rps: 99.0,
            ..kept_up(105.0)
        });
        assert_eq!(check.limit, 100.0);
        assert!(!check.passed);
        assert_eq!(
            check.rule,
            "throughput > 100 rps (the floor; 90 % of the planned 105 rps is 94.5)"
        );
        // Far above the floor, the plan is the stricter limit.
        let peak = Measured {
            rps: 300.0,
            ..kept_up(500.0)
        };
        assert_eq!(throughput(&peak).limit, 450.0);
        assert!(!throughput(&peak).passed);
    }

    #[test]
    fn each_limit_fails_on_its_own() {
        let good = kept_up(500.0);
        let cases = [
            (
                "p95",
                Measured {
                    p95_ms: 200.0,
                    ..good
                },
            ),
            (
                "p99",
                Measured {
                    p99_ms: 650.0,
                    ..good
                },
            ),
            (
                "errorRate",
                Measured {
                    error_pct: 1.5,
                    ..good
                },
            ),
            ("throughput", Measured { rps: 450.0, ..good }),
        ];
        for (name, m) in cases {
            let failed: Vec<&str> = slo()
                .check(&m)
                .iter()
                .filter(|c| !c.passed)
                .map(|c| c.name)
                .collect();
            assert_eq!(failed, [name]);
        }
    }
}
