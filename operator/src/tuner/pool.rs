//! The per-pod pool maximum from waiting, acquire time and idle connections.
//!
//! Grows when pods wait for connections (waiting acquirers, slow or timed-out acquires) to cover
//! what was in use plus what waited, with 50 % headroom, at most doubling per step, and only as
//! far as the connection budget allows at the replicas the HPA floor and the running pods need.
//! Shrinks when no pod waited during the whole stabilization window and twice the peak need per
//! pod, plus one spare, is at most three quarters of the pool (at most halving per step). The need
//! is the busiest pod's use, or all connections in use spread over the fewest replicas the spec
//! allows, whichever is more, so that lowering the HPA floor later does not call for a bigger pool;
//! the shrink target always lies above what a growth step sets, so the two cannot chase each other.
//! A tuning decision waits until every answering pod ran the last generation for a whole interval;
//! only the budget may lower the pool on stale data, because it is a safety limit. A growth that,
//! at the same load per pod (±10 %), lowered neither waiting, acquire time nor p95 means more connections do not
//! help (typically a saturated database): growth then pauses for a stabilization window.
use std::time::Duration;

use super::budget::BudgetPlan;
use super::history::{Change, Growth};
use super::hpa::{ceil_u32, ms};
use super::spec::Inputs;

/// Waiting acquirers per pod (averaged over pods) that count as pressure.
const WAITING_PER_POD: f64 = 0.5;

/// The pool maximum to set, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolOutcome {
    /// New pool maximum per pod.
    pub max: u32,
    /// Pods waited for connections this interval.
    pub pressure: bool,
    /// Why, for the decision's reason.
    pub reason: String,
    /// The growth to remember (when the pool grows).
    pub growth: Option<Growth>,
    /// Pause growth until then (the last growth did not help).
    pub pause_growth_until: Option<Duration>,
}

/// Decides the pool maximum. `replicas_needed` is the most replicas the budget must leave room
/// for (the new HPA floor, or the pods running now if more); `may_shrink` is false while the
/// floor drops (one knob down at a time).
pub fn decide_pool(
    inputs: &Inputs<'_>,
    plan: &BudgetPlan,
    replicas_needed: u32,
    may_shrink: bool,
) -> PoolOutcome {
    let Inputs {
        history,
        obs,
        spec,
        now,
        ..
    } = *inputs;
    let (current, generation) = (inputs.settings.pool_max, inputs.settings.generation);
    let cap = plan
        .pool_limit
        .min(spec.budget.pool_for(replicas_needed.max(1)))
        .max(1);
    let answered = f64::from(obs.pods.answered.max(1));
    let waiting = obs.pool.waiting / answered;
    let in_use = obs.pool.in_use / answered;
    let acquire_limit = (spec.slo.p95.as_secs_f64() * 0.05).max(0.005);
    let slow_acquire = obs.pool.acquire_p95.is_some_and(|p| p > acquire_limit);
    let pressure = obs.pods.answered > 0
        && (waiting >= WAITING_PER_POD || slow_acquire || obs.pool.acquire_timeouts > 0.0);
    let outcome = |max: u32, reason: String| PoolOutcome {
        max,
        pressure,
        reason,
        growth: None,
        pause_growth_until: None,
    };

    if current > cap {
        return outcome(
            cap,
            format!(
                "pool max {current} -> {cap}: {replicas_needed} replicas x {current} would break \
                 the connection budget ({} available)",
                spec.budget.available()
            ),
        );
    }
    if obs.pods.answered == 0 {
        return outcome(current, "pool held: no pod answered".into());
    }
    if obs.settled_generation() != Some(generation) {
        return outcome(
            current,
            format!(
                "pool held: waiting for every pod to run generation {} for a whole interval \
                 (pods report {}..{})",
                generation, obs.generation_lowest, obs.generation_highest
            ),
        );
    }
    let load = format!(
        "{in_use:.1} in use and {waiting:.1} waiting per pod of max {current}, acquire p95 {}, {:.0} timeouts",
        obs.pool.acquire_p95.map_or_else(|| "n/a".to_owned(), ms),
        obs.pool.acquire_timeouts
    );
    if pressure {
        if let Some(until) = history.growth_paused(now) {
            return outcome(
                current,
                format!(
                    "{load}: pool growth paused for {}s more: the last growth did not help \
                     (database saturated?)",
                    until.saturating_sub(now).as_secs()
                ),
            );
        }
        if let Some(g) = history.last_growth().filter(|g| g.generation == generation)
            && (obs.requests_per_second / answered - g.rps_per_pod).abs() <= g.rps_per_pod * 0.1
            && !helped(&g, obs.p95, waiting, obs.pool.acquire_p95)
        {
            let until = now + spec.scale_down_stabilization;
            return PoolOutcome {
                pause_growth_until: Some(until),
                ..outcome(
                    current,
                    format!(
                        "{load}: the last growth (generation {}) lowered neither waiting nor \
                         latency at the same load; database saturated? pool growth paused for {}s",
                        g.generation,
                        spec.scale_down_stabilization.as_secs()
                    ),
                )
            };
        }
        let want = ceil_u32((in_use + waiting) * 1.5)
            .max(current + 1)
            .min(current.saturating_mul(2));
        let new = want.min(cap);
        if new <= current {
            return outcome(
                current,
                format!("{load}: pool cannot grow past {cap} (spec max / connection budget)"),
            );
        }
        return PoolOutcome {
            growth: Some(Growth {
                generation: generation + 1,
                p95: obs.p95,
                waiting_per_pod: waiting,
                acquire_p95: obs.pool.acquire_p95,
                rps_per_pod: obs.requests_per_second / answered,
            }),
            ..outcome(new, format!("{load}: pool max {current} -> {new}"))
        };
    }
    if !may_shrink {
        return outcome(current, format!("{load}: pool held while the HPA floor drops"));
    }
    let window = spec.scale_down_stabilization;
    let recent: Vec<_> = history.within(now, window).collect();
    if !history.spans(now, window)
        || recent
            .iter()
            .any(|i| i.pool_pressure || i.pool_change == Change::Up)
    {
        return outcome(
            current,
            format!("{load}: pool held inside the stabilization window"),
        );
    }
    // Size for the busiest pod, and for all connections in use landing on the fewest pods the
    // floor may drop to, so a later lower floor does not need a bigger pool again.
    let peak = recent
        .iter()
        .map(|i| i.peak_in_use_per_pod)
        .fold(obs.pool.peak_in_use_per_pod, f64::max);
    let total = recent
        .iter()
        .map(|i| i.in_use_total)
        .fold(obs.pool.in_use, f64::max);
    let need = peak.max(total / f64::from(plan.replicas_min.max(1)));
    let target = ceil_u32(need * 2.0 + 1.0).max(plan.pool_min);
    if f64::from(target) <= f64::from(current) * 0.75 {
        let new = target.max(current.div_ceil(2));
        return outcome(
            new,
            format!("{load}, {need:.1} needed per pod at peak over the window: pool max {current} -> {new}"),
        );
    }
    outcome(current, format!("{load}: pool held"))
}

/// Whether the pods are better off than just before `growth`: p95 down 10 %, or waiting or
/// acquire time down 30 %.
fn helped(growth: &Growth, p95: Option<f64>, waiting_per_pod: f64, acquire_p95: Option<f64>) -> bool {
    let lower = |now: Option<f64>, before: Option<f64>, factor: f64| matches!((now, before), (Some(n), Some(b)) if n < b * factor);
    lower(p95, growth.p95, 0.9)
        || lower(acquire_p95, growth.acquire_p95, 0.7)
        || waiting_per_pod < growth.waiting_per_pod * 0.7
}
