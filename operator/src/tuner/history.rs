//! What the decision remembers between intervals: recent recommendations and changes (for the
//! stabilization window) and the per-pod load at which the SLO last broke (to lower the HPA floor
//! no further than is safe).
use std::collections::VecDeque;
use std::time::Duration;

/// Which way a knob moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Raised.
    Up,
    /// Lowered.
    Down,
    /// Unchanged.
    Hold,
}

impl Change {
    /// The direction from `before` to `after`.
    pub fn between(before: u32, after: u32) -> Self {
        match after.cmp(&before) {
            std::cmp::Ordering::Greater => Self::Up,
            std::cmp::Ordering::Less => Self::Down,
            std::cmp::Ordering::Equal => Self::Hold,
        }
    }
}

/// One past interval as the decision saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// When it was decided.
    pub at: Duration,
    /// HPA floor the latency asked for (before stabilization).
    pub floor_recommendation: u32,
    /// Requests per second over all pods.
    pub requests_per_second: f64,
    /// The busiest pod's connections in use.
    pub peak_in_use_per_pod: f64,
    /// Connections in use over all pods.
    pub in_use_total: f64,
    /// Whether pods waited for connections.
    pub pool_pressure: bool,
    /// What happened to the pool maximum.
    pub pool_change: Change,
    /// What happened to the HPA floor.
    pub floor_change: Change,
}

/// A pool growth and what the pods saw just before it, to judge whether it helped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Growth {
    /// Generation that carried the larger pool.
    pub generation: u64,
    /// p95 before (seconds).
    pub p95: Option<f64>,
    /// Waiting acquirers per pod before.
    pub waiting_per_pod: f64,
    /// Acquire p95 before (seconds).
    pub acquire_p95: Option<f64>,
    /// Requests per second per answering pod before.
    pub rps_per_pod: f64,
}

/// The decision's memory, trimmed to the stabilization window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    intervals: VecDeque<Interval>,
    /// Requests per second per pod when p95 last exceeded the SLO (beyond the tolerance).
    overload_rps_per_pod: Option<f64>,
    /// The last pool growth.
    last_growth: Option<Growth>,
    /// No pool growth before this time (a growth did not help).
    growth_paused_until: Option<Duration>,
}

impl History {
    /// Remembers an interval and forgets those older than `window` before it, keeping the newest
    /// of those so [`History::spans`] can tell that a whole window was seen.
    pub fn record(&mut self, interval: Interval, window: Duration) {
        let horizon = interval.at.saturating_sub(window);
        self.intervals.push_back(interval);
        while self.intervals.get(1).is_some_and(|i| i.at <= horizon) {
            self.intervals.pop_front();
        }
    }

    /// Whether the memory reaches back a whole `window` before `now` (not so after a start).
    pub fn spans(&self, now: Duration, window: Duration) -> bool {
        let (Some(first), Some(horizon)) = (self.intervals.front(), now.checked_sub(window)) else {
            return false;
        };
        first.at <= horizon
    }

    /// Remembers the per-pod load at which the SLO broke.
    pub fn note_overload(&mut self, rps_per_pod: f64) {
        if rps_per_pod.is_finite() && rps_per_pod > 0.0 {
            self.overload_rps_per_pod = Some(rps_per_pod);
        }
    }

    /// Per-pod load at which the SLO last broke.
    pub fn overload_rps_per_pod(&self) -> Option<f64> {
        self.overload_rps_per_pod
    }

    /// Remembers a pool growth.
    pub fn note_growth(&mut self, growth: Growth) {
        self.last_growth = Some(growth);
    }

    /// The last pool growth.
    pub fn last_growth(&self) -> Option<Growth> {
        self.last_growth
    }

    /// Pauses pool growth until `until`.
    pub fn pause_growth(&mut self, until: Duration) {
        self.growth_paused_until = Some(until);
    }

    /// Until when pool growth is paused, if it is at `now`.
    pub fn growth_paused(&self, now: Duration) -> Option<Duration> {
        self.growth_paused_until.filter(|until| now < *until)
    }

    /// Intervals decided within `window` before `now` (inclusive), oldest first.
    pub fn within(&self, now: Duration, window: Duration) -> impl Iterator<Item = &Interval> {
        let horizon = now.saturating_sub(window);
        self.intervals
            .iter()
            .filter(move |i| i.at >= horizon && i.at <= now)
    }

    /// The most recent interval, if any.
    pub fn last(&self) -> Option<&Interval> {
        self.intervals.back()
    }
}
