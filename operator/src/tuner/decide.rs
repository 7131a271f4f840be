//! The decision: (settings in force, history, observation, spec, now) -> settings to write, why.
//!
//! Pure and deterministic: no I/O, no clock (time is passed in), same inputs same answer.
//! Order of the steps, each documented in its module:
//! 1. [`ConnectionBudget::plan`](super::budget::ConnectionBudget::plan): the bounds that keep
//!    `pods(maxReplicas) * poolMax + reserved <= max_connections` (pods in transit counted);
//! 2. [`hpa`](super::hpa): the HPA floor from p95 with the HPA's semantics and stabilization;
//! 3. [`pool`](super::pool): the pool maximum from waiting and idle connections, never on stale
//!    data, within what the budget leaves at the replicas step 2 needs;
//! 4. the HPA ceiling: the most replicas whose pools fit the budget, within the spec.
//!
//! Modes (Auto, Recommend, Off) are the caller's business: this only says what should be; when it
//! reaches the pods is [`super::transition`]'s.
use std::time::Duration;

use super::budget::BudgetPlan;
use super::history::{Change, Growth, History, Interval};
use super::hpa::{recommend_floor, stabilize};
use super::observe::Observation;
use super::pool::decide_pool;
use super::spec::{Inputs, Settings, TuningSpec};

/// What the tuner wants in force after an interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Settings that were in force.
    pub before: Settings,
    /// Settings to write (generation bumped when the pool settings changed).
    pub settings: Settings,
    /// Pool maximum direction.
    pub pool: Change,
    /// HPA floor direction.
    pub floor: Change,
    /// HPA ceiling direction.
    pub ceiling: Change,
    /// The budget the settings keep.
    pub budget: BudgetPlan,
    /// Human-readable reason (for Events, status and the local mode's output).
    pub reason: String,
    /// What the history must remember of this interval.
    pub interval: Interval,
    /// Per-pod load at which the SLO broke this interval, if it did.
    pub overload_rps_per_pod: Option<f64>,
    /// A pool growth to remember, to judge it once the pods run it.
    pub growth: Option<Growth>,
    /// Pool growth paused until then.
    pub pause_growth_until: Option<Duration>,
}

impl Decision {
    /// Whether anything differs from the settings that were in force.
    pub fn changed(&self) -> bool {
        self.settings != self.before
    }

    /// Whether the tuning file must be rewritten (pool settings changed).
    pub fn pool_settings_changed(&self) -> bool {
        self.settings.pool_max != self.before.pool_max || self.settings.pool_min != self.before.pool_min
    }
}

/// Decides the settings for the next interval. See the module docs for the order of the steps.
pub fn decide(
    settings: &Settings,
    history: &History,
    obs: &Observation,
    spec: &TuningSpec,
    now: Duration,
) -> Decision {
    let inputs = Inputs {
        settings,
        history,
        obs,
        spec,
        now,
    };
    let plan = spec.budget.plan(spec.replicas, spec.pool);
    let bounds = (plan.replicas_min, plan.replicas_max);
    let floor_now = settings.hpa_min.clamp(bounds.0, bounds.1);
    let window = spec.scale_down_stabilization;

    let recommendation = recommend_floor(&inputs, floor_now, bounds);
    let floor = stabilize(floor_now, recommendation.replicas, history, now, window).clamp(bounds.0, bounds.1);
    let replicas_needed = floor.max(obs.pods.asked).min(plan.replicas_max);

    // On the way down, one knob at a time: the pool does not shrink while the floor drops.
    let may_shrink = floor >= floor_now;
    let pool = decide_pool(&inputs, &plan, replicas_needed, may_shrink);
    let pool_min = plan.pool_min.min(pool.max);
    let ceiling = plan
        .replicas_max
        .min(spec.budget.replicas_for(pool.max))
        .max(floor)
        .max(1);

    let pool_changed = pool.max != settings.pool_max || pool_min != settings.pool_min;
    let new = Settings {
        pool_min,
        pool_max: pool.max,
        hpa_min: floor,
        hpa_max: ceiling,
        generation: settings.generation + u64::from(pool_changed),
    };
    let floor_change = Change::between(settings.hpa_min, floor);
    let pool_change = Change::between(settings.pool_max, pool.max);
    let ceiling_change = Change::between(settings.hpa_max, ceiling);

    let mut reason = vec![format!(
        "{}; HPA floor {}",
        recommendation.reason,
        transition(settings.hpa_min, floor)
    )];
    if floor < recommendation.replicas {
        reason.push(format!("floor capped at maxReplicas {}", plan.replicas_max));
    } else if floor > recommendation.replicas && floor_change == Change::Hold {
        reason.push("lowering waits for the stabilization window".into());
    }
    reason.push(pool.reason.clone());
    if ceiling_change != Change::Hold {
        let pods = spec.budget.pods(ceiling);
        let in_transit = match pods - ceiling {
            0 => String::new(),
            n => format!(" (+{n} in transit)"),
        };
        reason.push(format!(
            "HPA max {} (budget: {ceiling}{in_transit} x {} + {} reserved = {} <= {})",
            transition(settings.hpa_max, ceiling),
            pool.max,
            spec.budget.reserved,
            u64::from(pods) * u64::from(pool.max) + u64::from(spec.budget.reserved),
            spec.budget.max_connections
        ));
    }
    if !plan.verdict.satisfied() {
        reason.push(format!("budget {}: {plan}", plan.verdict.reason()));
    }

    Decision {
        before: *settings,
        settings: new,
        pool: pool_change,
        floor: floor_change,
        ceiling: ceiling_change,
        budget: plan,
        reason: reason.join("; "),
        interval: Interval {
            at: now,
            floor_recommendation: recommendation.replicas,
            requests_per_second: obs.requests_per_second,
            peak_in_use_per_pod: obs.pool.peak_in_use_per_pod,
            in_use_total: obs.pool.in_use,
            pool_pressure: pool.pressure,
            pool_change,
            floor_change,
        },
        overload_rps_per_pod: recommendation.overload_rps_per_pod,
        growth: pool.growth,
        pause_growth_until: pool.pause_growth_until,
    }
}

fn transition(before: u32, after: u32) -> String {
    if before == after {
        format!("held at {after}")
    } else {
        format!("{before} -> {after}")
    }
}

/// The decision with its memory: feed it one observation per interval. Still pure: the caller
/// owns the clock and does the I/O.
#[derive(Debug, Clone)]
pub struct Tuner {
    /// What the user asked for.
    pub spec: TuningSpec,
    /// Settings in force.
    pub settings: Settings,
    /// Memory across intervals.
    pub history: History,
}

impl Tuner {
    /// A tuner starting from `settings` with no memory.
    pub fn new(spec: TuningSpec, settings: Settings) -> Self {
        Self {
            spec,
            settings,
            history: History::default(),
        }
    }

    /// Decides on `obs` at `now`, remembers the interval and takes the new settings as in force.
    pub fn step(&mut self, obs: &Observation, now: Duration) -> Decision {
        let decision = decide(&self.settings, &self.history, obs, &self.spec, now);
        self.history
            .record(decision.interval, self.spec.scale_down_stabilization);
        if let Some(rps) = decision.overload_rps_per_pod {
            self.history.note_overload(rps);
        }
        if let Some(growth) = decision.growth {
            self.history.note_growth(growth);
        }
        if let Some(until) = decision.pause_growth_until {
            self.history.pause_growth(until);
        }
        self.settings = decision.settings;
        decision
    }
}

#[cfg(test)]
mod tests;
