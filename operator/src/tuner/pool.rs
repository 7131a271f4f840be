//! The per-pod pool maximum from waiting, acquire time and idle connections.
//!
//! Grows when pods wait for connections (waiting acquirers, slow or timed-out acquires) to cover
//! what was in use plus what waited, with 25 % headroom, at most doubling per step, and only as
//! far as the connection budget allows at the replicas the HPA floor and the running pods need.
//! Shrinks when no pod waited during the whole stabilization window and the busiest pod's peak
//! use, plus 50 % and one spare, is at most three quarters of the pool (at most halving per step).
//! A tuning decision waits until every answering pod ran the last generation for a whole interval;
//! only the budget may lower the pool on stale data, because it is a safety limit.
use std::time::Duration;

use super::budget::BudgetPlan;
use super::history::{Change, History};
use super::hpa::{ceil_u32, ms};
use super::observe::Observation;
use super::spec::{Settings, TuningSpec};

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
}

/// Decides the pool maximum. `replicas_needed` is the most replicas the budget must leave room
/// for (the new HPA floor, or the pods running now if more).
pub fn decide_pool(
    settings: &Settings,
    obs: &Observation,
    spec: &TuningSpec,
    plan: &BudgetPlan,
    history: &History,
    now: Duration,
    replicas_needed: u32,
) -> PoolOutcome {
    let current = settings.pool_max;
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
    if obs.settled_generation() != Some(settings.generation) {
        return outcome(
            current,
            format!(
                "pool held: waiting for every pod to run generation {} for a whole interval \
                 (pods report {}..{})",
                settings.generation, obs.generation_lowest, obs.generation_highest
            ),
        );
    }
    let load = format!(
        "{in_use:.1} in use and {waiting:.1} waiting per pod of max {current}, acquire p95 {}, {} timeouts",
        obs.pool.acquire_p95.map_or_else(|| "n/a".to_owned(), ms),
        obs.pool.acquire_timeouts
    );
    if pressure {
        let want = ceil_u32((in_use + waiting) * 1.25)
            .max(current + 1)
            .min(current.saturating_mul(2));
        let new = want.min(cap);
        if new <= current {
            return outcome(
                current,
                format!("{load}: pool cannot grow past {cap} (spec max / connection budget)"),
            );
        }
        return outcome(new, format!("{load}: pool max {current} -> {new}"));
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
    let peak = recent
        .iter()
        .map(|i| i.peak_in_use_per_pod)
        .fold(obs.pool.peak_in_use_per_pod, f64::max);
    let target = ceil_u32(peak * 1.5 + 1.0).max(plan.pool_min);
    if f64::from(target) <= f64::from(current) * 0.75 {
        let new = target.max(current.div_ceil(2));
        return outcome(
            new,
            format!("{load}, peak {peak:.1} over the window: pool max {current} -> {new}"),
        );
    }
    outcome(current, format!("{load}: pool held"))
}
