//! The SLO assertions checked at the end of a run. Pure: figures in, verdict out.
use clap::Args;

/// Limits a run must meet; defaults are the SLOs (p95 < 200 ms, p99 < 500 ms, errors < 1 %,
/// throughput > 100 rps). Tests lower or raise them to force either outcome.
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
    /// Completed requests per second over the run must be above this.
    #[arg(long = "min-rps", default_value_t = 100.0)]
    pub min_rps: f64,
}

/// The figures the thresholds apply to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub error_pct: f64,
    pub rps: f64,
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
            Check {
                name: "throughput",
                rule: format!("throughput > {} rps", self.min_rps),
                limit: self.min_rps,
                actual: m.rps,
                passed: m.rps > self.min_rps,
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slo() -> Thresholds {
        Thresholds {
            max_p95_ms: 200.0,
            max_p99_ms: 500.0,
            max_error_pct: 1.0,
            min_rps: 100.0,
        }
    }

    #[test]
    fn a_good_run_passes_every_check() {
        let m = Measured {
            p95_ms: 12.0,
            p99_ms: 40.0,
            error_pct: 0.0,
            rps: 500.0,
        };
        assert!(slo().check(&m).iter().all(|c| c.passed));
    }

    #[test]
    fn each_limit_fails_on_its_own() {
        let good = Measured {
            p95_ms: 12.0,
            p99_ms: 40.0,
            error_pct: 0.0,
            rps: 500.0,
        };
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
            ("throughput", Measured { rps: 100.0, ..good }),
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
