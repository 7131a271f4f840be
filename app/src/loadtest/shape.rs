//! What the flags ask the load tester to do: a scenario's own plan, a constant open-model rate
//! (`--rate`, `--duration`), or a capacity search (`--find-capacity`). The flags are checked
//! here, so a bad value is a CLI error before anything is sent.
use std::time::Duration;

use clap::Args;

use super::{capacity::Ladder, scenario::Plan};

/// Longest `--duration` / `--step-duration` accepted: a day; more is a typo.
pub const MAX_SECONDS: f64 = 86_400.0;
/// Highest rate accepted, in requests per second: far above what one load generator can send.
pub const MAX_RATE: f64 = 1_000_000.0;

/// Default of `--duration`, in seconds.
const DURATION_S: f64 = 60.0;
/// Defaults of the search's ladder: from 100 rps, 25 % more each 30 s step, up to 5,000 rps, and
/// the achieved rate within 5 % of the offered one.
const START_RATE: f64 = 100.0;
const STEP_FACTOR: f64 = 1.25;
const MAX_RATE_TRIED: f64 = 5_000.0;
const STEP_DURATION_S: f64 = 30.0;
const MAX_RATE_GAP_PCT: f64 = 5.0;
const REFINE_STEPS: u32 = 2;

/// `--rate` and `--duration`: any open-model rate for the scenario's mix, replacing its plan.
#[derive(Debug, Clone, Args)]
pub struct RateArgs {
    /// Requests per second to send (open model, the scenario's mix) instead of the scenario's
    /// plan; default: none, the scenario's own plan.
    #[arg(long, env = "LOADTEST_RATE", value_parser = parse_rate, allow_negative_numbers = true, conflicts_with = "find_capacity")]
    pub rate: Option<f64>,
    /// How long `--rate` runs, in seconds.
    #[arg(long = "duration", env = "LOADTEST_DURATION_S", default_value_t = DURATION_S, value_parser = parse_seconds, allow_negative_numbers = true)]
    pub duration_s: f64,
}

/// `--find-capacity` and its ladder: the rate rises step by step until the SLO breaks.
#[derive(Debug, Clone, Args)]
pub struct CapacityArgs {
    /// Search the highest rate that holds the SLO (p95, p99, errors, and the achieved rate
    /// within `--max-rate-gap-pct` of the offered one) instead of running a plan.
    #[arg(long, env = "LOADTEST_FIND_CAPACITY")]
    pub find_capacity: bool,
    /// Rate of the first step, in requests per second.
    #[arg(long, env = "LOADTEST_START_RATE", default_value_t = START_RATE, value_parser = parse_rate, allow_negative_numbers = true)]
    pub start_rate: f64,
    /// Each step's rate is the previous one times this (above 1).
    #[arg(long, env = "LOADTEST_STEP_FACTOR", default_value_t = STEP_FACTOR, value_parser = parse_factor, allow_negative_numbers = true)]
    pub step_factor: f64,
    /// Highest rate tried, in requests per second; the search stops there if nothing broke.
    #[arg(long, env = "LOADTEST_MAX_RATE", default_value_t = MAX_RATE_TRIED, value_parser = parse_rate, allow_negative_numbers = true)]
    pub max_rate: f64,
    /// Length of each step, in seconds.
    #[arg(long = "step-duration", env = "LOADTEST_STEP_DURATION_S", default_value_t = STEP_DURATION_S, value_parser = parse_seconds, allow_negative_numbers = true)]
    pub step_duration_s: f64,
    /// A step holds only if the achieved rate (answered requests per second) is within this
    /// share of the offered rate, in percent.
    #[arg(long, env = "LOADTEST_MAX_RATE_GAP_PCT", default_value_t = MAX_RATE_GAP_PCT, value_parser = parse_gap, allow_negative_numbers = true)]
    pub max_rate_gap_pct: f64,
    /// After the first broken step, this many more steps halve the gap between the knee and the
    /// lowest broken rate (0: stop at the first break; the knee is then known to one step factor).
    #[arg(long, env = "LOADTEST_REFINE_STEPS", default_value_t = REFINE_STEPS,
          value_parser = clap::value_parser!(u32).range(0..=10))]
    pub refine_steps: u32,
}

impl Default for RateArgs {
    /// The flags' defaults: the scenario's own plan.
    fn default() -> Self {
        Self {
            rate: None,
            duration_s: DURATION_S,
        }
    }
}

impl Default for CapacityArgs {
    /// The flags' defaults: no search.
    fn default() -> Self {
        Self {
            find_capacity: false,
            start_rate: START_RATE,
            step_factor: STEP_FACTOR,
            max_rate: MAX_RATE_TRIED,
            step_duration_s: STEP_DURATION_S,
            max_rate_gap_pct: MAX_RATE_GAP_PCT,
            refine_steps: REFINE_STEPS,
        }
    }
}

/// What to run, from the flags.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// A fixed plan: the scenario's stages or one constant rate.
    Plan(Plan),
    /// Steps of rising rate until the SLO breaks.
    Capacity {
        ladder: Ladder,
        step: Duration,
        max_rate_gap_pct: f64,
    },
}

/// A flag combination the value parsers cannot judge alone.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ShapeError {
    #[error("--max-rate ({max}) must not be below --start-rate ({start})")]
    MaxBelowStart { start: f64, max: f64 },
}

/// Checks the combination and builds what to run; `plan` is the scenario's own.
pub fn shape(plan: Plan, rate: &RateArgs, capacity: &CapacityArgs) -> Result<Shape, ShapeError> {
    if capacity.find_capacity {
        if capacity.max_rate < capacity.start_rate {
            return Err(ShapeError::MaxBelowStart {
                start: capacity.start_rate,
                max: capacity.max_rate,
            });
        }
        return Ok(Shape::Capacity {
            ladder: Ladder {
                start: capacity.start_rate,
                factor: capacity.step_factor,
                max: capacity.max_rate,
                refine: capacity.refine_steps,
            },
            step: Duration::from_secs_f64(capacity.step_duration_s),
            max_rate_gap_pct: capacity.max_rate_gap_pct,
        });
    }
    Ok(Shape::Plan(match rate.rate {
        Some(r) => Plan::constant(plan.scenario, r, Duration::from_secs_f64(rate.duration_s)),
        None => plan,
    }))
}

fn number(s: &str) -> Result<f64, String> {
    let x: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number"))?;
    if x.is_finite() {
        Ok(x)
    } else {
        Err(format!("{s:?} is not a finite number"))
    }
}

fn within(s: &str, lo_exclusive: f64, hi: f64, what: &str) -> Result<f64, String> {
    let x = number(s)?;
    if x > lo_exclusive && x <= hi {
        Ok(x)
    } else {
        Err(format!(
            "{what} must be above {lo_exclusive} and at most {hi}, got {x}"
        ))
    }
}

/// Requests per second: above 0, at most [`MAX_RATE`].
fn parse_rate(s: &str) -> Result<f64, String> {
    within(s, 0.0, MAX_RATE, "a rate (requests per second)")
}

/// Seconds: above 0, at most [`MAX_SECONDS`].
fn parse_seconds(s: &str) -> Result<f64, String> {
    within(s, 0.0, MAX_SECONDS, "a duration (seconds)")
}

/// The step factor: above 1 (the rate must rise), at most 10.
fn parse_factor(s: &str) -> Result<f64, String> {
    within(s, 1.0, 10.0, "the step factor")
}

/// A share in percent: above 0, at most 100.
fn parse_gap(s: &str) -> Result<f64, String> {
    within(s, 0.0, 100.0, "the rate gap (percent)")
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::loadtest::scenario::{Origin, Scenario};

    #[derive(Debug, Parser)]
    struct Flags {
        #[command(flatten)]
        rate: RateArgs,
        #[command(flatten)]
        capacity: CapacityArgs,
    }

    fn parse(args: &[&str]) -> Result<Flags, String> {
        Flags::try_parse_from(std::iter::once("loadtest").chain(args.iter().copied()))
            .map_err(|e| e.to_string())
    }

    fn baseline() -> Plan {
        Plan::new(Scenario::Baseline, 1.0).unwrap()
    }

    #[test]
    fn defaults_match_the_flags() {
        let flags = parse(&[]).unwrap();
        let d = CapacityArgs::default();
        let c = &flags.capacity;
        assert_eq!(
            (c.find_capacity, c.start_rate, c.step_factor, c.max_rate),
            (d.find_capacity, d.start_rate, d.step_factor, d.max_rate)
        );
        assert_eq!(
            (c.step_duration_s, c.max_rate_gap_pct),
            (d.step_duration_s, d.max_rate_gap_pct)
        );
        let r = RateArgs::default();
        assert_eq!((flags.rate.rate, flags.rate.duration_s), (r.rate, r.duration_s));
        assert_eq!(r.duration_s, 60.0);
        assert_eq!((d.start_rate, d.max_rate), (100.0, 5_000.0));
    }

    #[test]
    fn bad_values_are_cli_errors() {
        for (args, says) in [
            (&["--rate", "0"][..], "must be above 0"),
            (&["--rate", "-5"], "must be above 0"),
            (&["--rate", "fast"], "is not a number"),
            (&["--rate", "inf"], "not a finite number"),
            (&["--duration", "0"], "a duration (seconds) must be above 0"),
            (&["--step-factor", "1"], "the step factor must be above 1"),
            (&["--start-rate", "-1"], "must be above 0"),
            (&["--max-rate-gap-pct", "0"], "must be above 0"),
            (&["--rate", "10", "--find-capacity"], "cannot be used with"),
        ] {
            let err = parse(args).unwrap_err();
            assert!(err.contains(says), "{args:?}: {err}");
        }
    }

    #[test]
    fn max_below_start_is_refused() {
        let flags = parse(&["--find-capacity", "--start-rate", "500", "--max-rate", "100"]).unwrap();
        let err = shape(baseline(), &flags.rate, &flags.capacity).unwrap_err();
        assert_eq!(
            err,
            ShapeError::MaxBelowStart {
                start: 500.0,
                max: 100.0
            }
        );
        assert_eq!(
            err.to_string(),
            "--max-rate (100) must not be below --start-rate (500)"
        );
    }

    #[test]
    fn rate_replaces_the_plan_and_capacity_builds_a_ladder() {
        let flags = parse(&["--rate", "250", "--duration", "2"]).unwrap();
        let Shape::Plan(plan) = shape(baseline(), &flags.rate, &flags.capacity).unwrap() else {
            panic!("a plan");
        };
        assert_eq!(plan.origin, Origin::Rate);
        assert_eq!(plan.planned_requests(), 500);
        assert_eq!(plan.scenario, Scenario::Baseline);

        let flags = parse(&[]).unwrap();
        assert_eq!(
            shape(baseline(), &flags.rate, &flags.capacity).unwrap(),
            Shape::Plan(baseline())
        );

        let flags = parse(&["--find-capacity", "--start-rate", "10", "--max-rate", "40"]).unwrap();
        let Shape::Capacity { ladder, step, .. } = shape(baseline(), &flags.rate, &flags.capacity).unwrap()
        else {
            panic!("a search");
        };
        assert_eq!((ladder.start, ladder.max), (10.0, 40.0));
        assert_eq!(step, Duration::from_secs(30));
    }
}
