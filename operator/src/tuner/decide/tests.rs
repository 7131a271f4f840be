use std::time::Duration;

use super::*;
use crate::tuner::testing;
use crate::tuner::testing::observation as obs;

fn spec() -> TuningSpec {
    testing::spec((2, 40), (1, 10), 200)
}

fn settings(pool_max: u32, hpa_min: u32, generation: u64) -> Settings {
    testing::settings((2, pool_max), (hpa_min, 10), generation)
}

fn at(seconds: u64) -> Duration {
    Duration::from_secs(seconds)
}

/// The decision on `obs` at time 0 of a tuner with no memory, `settings` in force.
fn first(settings: Settings, obs: Observation) -> Decision {
    later(settings, &History::default(), obs, 0)
}

/// The decision on `obs` at `seconds`, remembering `history`, `settings` in force.
fn later(settings: Settings, history: &History, obs: Observation, seconds: u64) -> Decision {
    decide(&settings, history, &obs, &spec(), at(seconds))
}

/// Asserts that the HPA floor in force, `floor`, stays on `obs` at `seconds`, remembering `history`.
fn assert_floor_kept(floor: u32, history: &History, obs: Observation, seconds: u64) {
    let d = later(settings(10, floor, 0), history, obs, seconds);
    assert_eq!(d.settings.hpa_min, floor, "{}", d.reason);
}

/// A tuner's memory of `intervals`, in order.
fn remembering(intervals: &[Interval]) -> History {
    let mut history = History::default();
    for interval in intervals {
        history.record(*interval, spec().scale_down_stabilization);
    }
    history
}

/// A past interval at `seconds` that asked for a floor of `floor_recommendation` at `rps` with
/// `in_use_total` connections in use (the busiest pod 1): no pool pressure, nothing changed.
fn calm(seconds: u64, floor_recommendation: u32, rps: f64, in_use_total: f64) -> Interval {
    Interval {
        at: at(seconds),
        floor_recommendation,
        requests_per_second: rps,
        peak_in_use_per_pod: 1.0,
        in_use_total,
        pool_pressure: false,
        pool_change: Change::Hold,
        floor_change: Change::Hold,
    }
}

#[test]
fn slow_p95_raises_the_floor_at_once_by_the_hpa_formula() {
    let d = first(settings(10, 2, 0), obs(2, 300.0, 200.0, 3.0, 0.0, 0));
    assert_eq!(d.settings.hpa_min, 3, "ceil(2 * 300/200) = 3: {}", d.reason);
    assert_eq!(d.floor, Change::Up);
    assert!(d.reason.contains("p95 300 ms > SLO 200 ms"), "{}", d.reason);
    assert_eq!(d.overload_rps_per_pod, Some(100.0));
}

#[test]
fn scale_up_is_bounded() {
    let d = first(settings(10, 1, 0), obs(1, 5000.0, 10.0, 1.0, 0.0, 0));
    assert_eq!(d.settings.hpa_min, 5, "max(2 x 1, 1 + 4): {}", d.reason);
    assert!(
        d.reason.contains("wants 25 replicas, bounded to 5"),
        "{}",
        d.reason
    );
}

#[test]
fn within_tolerance_nothing_moves() {
    for p95 in [181.0, 200.0, 219.0] {
        let d = first(settings(10, 3, 0), obs(3, p95, 300.0, 3.0, 0.0, 0));
        assert!(!d.changed(), "{p95}: {}", d.reason);
    }
}

#[test]
fn floor_is_lowered_only_after_a_whole_window_of_low_recommendations() {
    let mut tuner = Tuner::new(spec(), settings(10, 6, 0));
    // Comfortably below from the start: the first 300 s only collect recommendations.
    let quiet = obs(6, 40.0, 60.0, 1.0, 0.0, 0);
    for t in (0..300).step_by(30) {
        let d = tuner.step(&quiet, at(t));
        assert_eq!(d.settings.hpa_min, 6, "t={t}: {}", d.reason);
    }
    let d = tuner.step(&quiet, at(300));
    assert_eq!(d.floor, Change::Down, "{}", d.reason);
    assert_eq!(d.settings.hpa_min, 2, "ceil(6 x 40/200) = 2: {}", d.reason);
}

#[test]
fn a_raise_is_not_undone_inside_the_window() {
    let mut tuner = Tuner::new(spec(), settings(10, 2, 0));
    for t in (0..=300).step_by(30) {
        tuner.step(&obs(2, 150.0, 100.0, 1.0, 0.0, 0), at(t));
    }
    let up = tuner.step(&obs(2, 400.0, 400.0, 2.0, 0.0, 0), at(330));
    assert_eq!(up.settings.hpa_min, 4, "{}", up.reason);
    for t in (360..630).step_by(30) {
        let d = tuner.step(&obs(4, 30.0, 40.0, 1.0, 0.0, 0), at(t));
        assert_eq!(d.settings.hpa_min, 4, "t={t}: {}", d.reason);
    }
    let down = tuner.step(&obs(4, 30.0, 40.0, 1.0, 0.0, 0), at(660));
    assert_eq!(down.floor, Change::Down, "{}", down.reason);
}

#[test]
fn lowering_keeps_per_pod_load_below_the_load_that_broke_the_slo() {
    let mut history = remembering(&[calm(0, 1, 300.0, 4.0)]);
    history.note_overload(100.0);
    // p95 is far below target, but 4 pods carry 300 rps: 2 pods would carry 150 each.
    // ceil(300 / 80) = 4.
    assert_floor_kept(4, &history, obs(4, 20.0, 300.0, 1.0, 0.0, 0), 400);
}

#[test]
fn waiting_pods_grow_the_pool_and_the_ceiling_gives_way_within_the_budget() {
    let d = first(settings(19, 2, 1), obs(2, 190.0, 200.0, 19.0, 6.0, 1));
    assert_eq!(d.pool, Change::Up, "{}", d.reason);
    // ceil((19 + 6) * 1.5) = 38 (= doubling), within spec max 40 and 190 / 2 replicas.
    assert_eq!(d.settings.pool_max, 38, "{}", d.reason);
    assert_eq!(d.settings.hpa_max, 5, "190 / 38 = 5: {}", d.reason);
    assert_eq!(d.settings.generation, 2);
    assert!(d.pool_settings_changed());
    assert!(d.settings.peak_connections(&spec().budget) + 10 <= 200);
}

#[test]
fn pool_waits_for_every_pod_to_run_the_last_generation() {
    let mut o = obs(2, 400.0, 200.0, 10.0, 6.0, 3);
    o.generation_lowest = 2;
    let d = first(settings(10, 2, 3), o);
    assert_eq!(d.settings.pool_max, 10, "{}", d.reason);
    assert!(
        d.reason.contains("waiting for every pod to run generation 3"),
        "{}",
        d.reason
    );
    assert_eq!(d.settings.generation, 3);
}

#[test]
fn budget_lowers_the_pool_even_on_stale_data() {
    let mut o = obs(8, 400.0, 800.0, 30.0, 0.0, 3);
    o.generation_lowest = 2;
    // Floor 8 (pods running) x pool 30 > 190 available.
    let d = first(settings(30, 8, 3), o);
    assert!(d.settings.hpa_min >= 8);
    assert!(
        u64::from(d.settings.hpa_max) * u64::from(d.settings.pool_max) <= 190,
        "{:?}: {}",
        d.settings,
        d.reason
    );
    assert_eq!(d.pool, Change::Down);
}

#[test]
fn idle_pool_shrinks_after_a_window_without_pressure() {
    let mut tuner = Tuner::new(spec(), settings(20, 1, 0));
    let idle = obs(1, 20.0, 10.0, 2.0, 0.0, 0);
    let mut shrunk = None;
    for t in (0..=600).step_by(30) {
        let idle = Observation {
            generation_lowest: tuner.settings.generation,
            generation_highest: tuner.settings.generation,
            ..idle.clone()
        };
        let d = tuner.step(&idle, at(t));
        if d.pool == Change::Down && shrunk.is_none() {
            shrunk = Some((t, d.settings.pool_max));
        }
    }
    assert_eq!(shrunk, Some((300, 10)), "halved at most, once the window spans");
    assert_eq!(
        tuner.settings.pool_max, 5,
        "peak 2 x 1.5 + 1 = 4, but no lower than half of 10"
    );
}

#[test]
fn decision_is_deterministic() {
    let o = obs(3, 350.0, 300.0, 8.0, 2.0, 0);
    let a = decide(&settings(10, 3, 0), &History::default(), &o, &spec(), at(90));
    let b = decide(&settings(10, 3, 0), &History::default(), &o, &spec(), at(90));
    assert_eq!(a, b);
}

/// The worked example of docs/tuning.md, on the operator's budget (a Deployment's pods in transit
/// counted); keep both in step.
#[test]
fn worked_example_from_the_docs() {
    let mut spec = spec();
    spec.budget.transit = crate::tuner::budget::Transit::Deployment;
    let plan = spec.budget.plan(spec.replicas, spec.pool);
    assert_eq!((plan.verdict.reason(), plan.pool_max), ("PoolCapped", 10));
    let d = decide(
        &settings(10, 2, 1),
        &History::default(),
        &obs(2, 300.0, 200.0, 10.0, 6.0, 1),
        &spec,
        at(0),
    );
    let s = d.settings;
    assert_eq!(
        (s.hpa_min, s.pool_max, s.hpa_max, s.generation),
        (3, 20, 4, 2),
        "{}",
        d.reason
    );
    assert_eq!(s.peak_connections(&spec.budget) + 10, 150);
    // The swap on the pods: both pools (10 + 20) fit 3 replicas (+3 in transit) = 180, and 2 pods
    // run: the pool goes out at once, under a ceiling of 3 until every pod ran it and drained.
    let mut swaps = crate::tuner::transition::PoolSwaps::starting_from(Some(settings(10, 2, 1)));
    let seen = crate::tuner::transition::PodsSeen {
        alive: 2,
        generation: Some(1),
    };
    let guarded = swaps.guard(&spec, s, Some(seen), at(0));
    assert_eq!(
        (
            guarded.settings.pool_max,
            guarded.settings.hpa_min,
            guarded.settings.hpa_max
        ),
        (20, 3, 3)
    );
    println!("{}", d.reason);
}

#[test]
fn slow_p95_while_pods_are_still_starting_never_lowers_the_floor() {
    // Floor 6 in force, only 2 pods Ready yet, p95 above the SLO: ceil(2 x 1.5) = 3 < 6, with a
    // whole window of low recommendations behind it.
    let history = remembering(&[0, 300, 600].map(|t| calm(t, 2, 100.0, 2.0)));
    assert_floor_kept(6, &history, obs(2, 300.0, 200.0, 3.0, 0.0, 0), 900);
}
