//! Scenarios: step, the seed's spike, slow ramp, steady state. Each asserts convergence to the
//! SLO within a bounded number of intervals, no reversal inside a stabilization window, the
//! budget at every step, and shrinking back once the load drops.
use std::time::Duration;

use super::*;
use crate::tuner::budget::ReplicaBounds;
use crate::tuner::budget::{ConnectionBudget, Transit};
use crate::tuner::testing;

const INTERVAL: Duration = Duration::from_secs(30);

fn start(pool_max: u32, hpa_min: u32) -> Tuner {
    Tuner::new(
        testing::spec((2, 50), (1, 10), 200),
        testing::settings((2, pool_max), (hpa_min, 10), 0),
    )
}

/// `minutes` of constant `users`.
fn hold(users: f64, minutes: u32) -> Vec<f64> {
    vec![users; (minutes * 2) as usize]
}

fn slo(tuner: &Tuner) -> f64 {
    tuner.spec.slo.p95.as_secs_f64() * (1.0 + tuner.spec.tolerance)
}

fn trace(steps: &[Step]) -> String {
    steps
        .iter()
        .map(|s| {
            format!(
                "t={:>4}s users={:>5.1} replicas={:>2} pool={:>2} p95={:>6.1}ms -> floor={} max={} pool={} | {}",
                s.at.as_secs(),
                s.users,
                s.replicas,
                s.pool,
                s.observation.p95.unwrap_or(0.0) * 1000.0,
                s.settings.hpa_min,
                s.settings.hpa_max,
                s.settings.pool_max,
                s.reason
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The invariants every scenario must keep.
fn assert_safe(tuner: &Tuner, steps: &[Step]) {
    let budget = tuner.spec.budget;
    let window = tuner.spec.scale_down_stabilization;
    for s in steps {
        let peak =
            u64::from(s.settings.hpa_max) * u64::from(s.settings.pool_max) + u64::from(budget.reserved);
        assert!(
            peak <= u64::from(budget.max_connections),
            "budget broken at {:?}\n{}",
            s.at,
            trace(steps)
        );
        assert!(
            s.settings.hpa_min <= s.settings.hpa_max,
            "floor above max\n{}",
            trace(steps)
        );
    }
    for (name, knob) in [("floor", 0), ("pool", 1)] {
        let value = |s: &Settings| if knob == 0 { s.hpa_min } else { s.pool_max };
        let mut last: Option<(Duration, bool)> = None;
        let mut before = value(&tuner_start(steps));
        for s in steps {
            let now = value(&s.settings);
            if now != before {
                let up = now > before;
                if let Some((at, was_up)) = last {
                    assert!(
                        was_up == up || s.at - at >= window,
                        "{name} reversed within the window at {:?}\n{}",
                        s.at,
                        trace(steps)
                    );
                }
                last = Some((s.at, up));
            }
            before = now;
        }
    }
}

/// Settings before the first step: the first step's input.
fn tuner_start(steps: &[Step]) -> Settings {
    let first = &steps[0];
    Settings {
        pool_max: first.pool,
        hpa_min: first.replicas,
        ..first.settings
    }
}

/// p95 is within the SLO from interval `from + within` up to `to` (exclusive).
fn assert_converges(tuner: &Tuner, steps: &[Step], from: usize, within: usize, to: usize) {
    let limit = slo(tuner);
    for (i, s) in steps.iter().enumerate().take(to).skip(from + within) {
        let p95 = s.observation.p95.unwrap_or(0.0);
        assert!(
            p95 <= limit,
            "interval {i}: p95 {p95:.3}s above the SLO\n{}",
            trace(steps)
        );
    }
}

#[test]
fn step_converges_and_holds() {
    let mut tuner = start(5, 1);
    let load = [hold(10.0, 5), hold(60.0, 20)].concat();
    let steps = run(&mut tuner, &load, INTERVAL);
    assert_safe(&tuner, &steps);
    assert_converges(&tuner, &steps, 10, 3, steps.len());
    let last = steps.last().map(|s| s.settings);
    assert!(
        last.is_some_and(|s| s.hpa_min >= 2),
        "60 users need more than one pod\n{}",
        trace(&steps)
    );
}

#[test]
fn seed_spike_is_absorbed_and_everything_shrinks_back() {
    let mut tuner = start(5, 1);
    let load = [hold(10.0, 2), hold(100.0, 1), hold(10.0, 2), hold(10.0, 15)].concat();
    let steps = run(&mut tuner, &load, INTERVAL);
    assert_safe(&tuner, &steps);
    // The spike starts at interval 4; two intervals later the stack serves it within the SLO.
    assert_converges(&tuner, &steps, 4, 1, 6);
    assert_converges(&tuner, &steps, 6, 0, steps.len());
    let peak_floor = steps.iter().map(|s| s.settings.hpa_min).max().unwrap_or(0);
    assert!(
        peak_floor >= 3,
        "the spike must raise the floor\n{}",
        trace(&steps)
    );
    let end = tuner.settings;
    assert_eq!(
        end.hpa_min,
        1,
        "floor back to the spec minimum\n{}",
        trace(&steps)
    );
    assert!(end.pool_max <= 5, "pool back near its start\n{}", trace(&steps));
    if std::env::var_os("TUNER_SIM_TRACE").is_some() {
        eprintln!("{}", trace(&steps));
    }
}

#[test]
fn slow_ramp_tracks_the_slo_without_oscillating() {
    let mut tuner = start(5, 1);
    let load: Vec<f64> = (0..40).map(|k| 5.0 + 75.0 * f64::from(k) / 39.0).collect();
    let steps = run(&mut tuner, &[load, hold(80.0, 5)].concat(), INTERVAL);
    assert_safe(&tuner, &steps);
    let late = steps
        .iter()
        .filter(|s| s.observation.p95.unwrap_or(0.0) > slo(&tuner))
        .count();
    assert!(late <= 4, "{late} intervals above the SLO\n{}", trace(&steps));
    let floor_moves = steps
        .windows(2)
        .filter(|p| p[1].settings.hpa_min != p[0].settings.hpa_min)
        .count();
    assert!(
        floor_moves <= 3,
        "{floor_moves} floor changes on a ramp\n{}",
        trace(&steps)
    );
    assert!(
        tuner.settings.hpa_min >= 2,
        "80 users need two pods\n{}",
        trace(&steps)
    );
    assert_converges(&tuner, &steps, 40, 0, steps.len());
}

#[test]
fn steady_state_sheds_oversized_settings_then_stays_put() {
    let mut tuner = start(30, 6);
    let steps = run(&mut tuner, &hold(30.0, 30), INTERVAL);
    assert_safe(&tuner, &steps);
    assert_converges(&tuner, &steps, 0, 0, steps.len());
    let end = tuner.settings;
    assert!(
        end.hpa_min < 6 && end.pool_max < 30,
        "oversized settings kept: {end:?}\n{}",
        trace(&steps)
    );
    let tail = &steps[steps.len() - 20..];
    assert!(
        tail.windows(2).all(|p| p[0].settings == p[1].settings),
        "still moving in the last 10 minutes\n{}",
        trace(&steps)
    );
}

#[test]
fn model_is_sane() {
    let light = observe(10.0, 1, 5, (0, 0), 30.0);
    let p95 = light.p95.unwrap_or(0.0);
    assert!(p95 > 0.02 && p95 < 0.2, "{p95}");
    assert_eq!(light.error_rate, 0.0);
    let saturated = observe(100.0, 1, 5, (0, 0), 30.0);
    assert!(
        saturated.error_rate > 0.5 && saturated.pool.waiting > 10.0,
        "{saturated:?}"
    );
    let more_pool = observe(30.0, 2, 20, (0, 0), 30.0).p95.unwrap_or(0.0);
    let less_pool = observe(30.0, 2, 4, (0, 0), 30.0).p95.unwrap_or(0.0);
    assert!(less_pool > more_pool, "{less_pool} vs {more_pool}");
}

#[test]
fn tight_budget_trades_pool_for_replicas_and_never_exceeds_it() {
    let mut tuner = start(5, 1);
    tuner.spec.budget = ConnectionBudget {
        max_connections: 60,
        reserved: 10,
        source: Default::default(),
        transit: Transit::None,
    };
    let load = [hold(10.0, 2), hold(100.0, 3), hold(10.0, 15)].concat();
    let steps = run(&mut tuner, &load, INTERVAL);
    assert_safe(&tuner, &steps);
    let during = &steps[4..10];
    assert!(
        during.iter().any(|s| s.settings.hpa_max < 10),
        "a bigger pool must lower maxReplicas within 50 connections\n{}",
        trace(&steps)
    );
    assert_converges(&tuner, &steps, 4, 2, 10);
}

#[test]
fn saturated_database_pauses_pool_growth_instead_of_piling_on_connections() {
    // At most 3 replicas: the budget would let each pool grow to the spec's 50.
    let mut tuner = start(5, 2);
    tuner.spec.replicas = ReplicaBounds { min: 1, max: 3 };
    let model = Model { db_cores: 6.0 };
    let steps = run_on(&model, &mut tuner, &hold(60.0, 15), INTERVAL);
    assert_safe(&tuner, &steps);
    assert!(
        steps.iter().any(|s| s.reason.contains("database saturated")),
        "the useless growth must be noticed\n{}",
        trace(&steps)
    );
    let peak_pool = steps.iter().map(|s| s.settings.pool_max).max().unwrap_or(0);
    assert!(
        peak_pool <= 20,
        "pool grew to {peak_pool} against a saturated database\n{}",
        trace(&steps)
    );
    if std::env::var_os("TUNER_SIM_TRACE").is_some() {
        eprintln!("{}", trace(&steps));
    }
}
