//! Pool swaps, ordered so the connection budget holds while they happen.
//!
//! A pod puts a new tuning file's pool in force at once and closes the replaced one only when its
//! last user has returned it, at the latest [`REPLACED_POOL_DRAIN`] later (docs/contract.md, "The
//! tuning file"). Until then a pod may hold both pools: `old + new` connections, on every pod that
//! can be alive. So a pool change is written only while the HPA's ceiling leaves room for both
//! pools on every pod ([`ConnectionBudget::replicas_for`]`(old + new)`), and no pod more than that
//! ceiling runs; otherwise the ceiling comes down first and the change waits. Until every pod
//! reports the new generation (`perfstack_db_pool_settings_generation`) and the drain bound has
//! passed, the ceiling stays there and no other pool change is made: a pool shrink reaches the pods
//! before the ceiling it allows is raised.
use std::time::Duration;

use super::budget::ConnectionBudget;
use super::spec::{Settings, TuningSpec};

/// How long a pod keeps a replaced pool open at most: the app's drain limit (`DRAIN_LIMIT` in
/// app/src/db/pool.rs; the contract states it).
pub const REPLACED_POOL_DRAIN: Duration = Duration::from_secs(120);
/// Without reports from the pods (tuning Off: nobody scrapes them), how long after a write every
/// pod is taken to have swapped and drained: the kubelet's refresh of a ConfigMap volume (about a
/// minute, up to two), the app's poll of the file, and [`REPLACED_POOL_DRAIN`].
pub const UNCONFIRMED_SWAP: Duration = Duration::from_secs(300);

/// What the pods reported this time (only when they were scraped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodsSeen {
    /// API pods alive: listed, Ready or not, terminating ones included.
    pub alive: u32,
    /// The tuning generation every one of them runs (the lowest), when every pod answered.
    pub generation: Option<u64>,
}

/// A pool change on its way to the pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Swap {
    /// The pool maximum the pods ran before.
    from_pool: u32,
    /// What was written.
    to: Settings,
    /// When.
    written_at: Duration,
    /// When every pod was first seen running `to.generation`.
    confirmed_at: Option<Duration>,
}

/// The settings that may reach the pods now, and why they differ from what was wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guarded {
    /// Settings to write.
    pub settings: Settings,
    /// Why a wanted change waits, if one does.
    pub held: Option<String>,
}

/// One stack's pool swaps: what was last written and the swap under way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolSwaps {
    written: Option<Settings>,
    open: Option<Swap>,
    /// Since when the ceiling written has been at its current value or lower: without pods seen,
    /// a lowered ceiling is trusted only once the HPA had [`UNCONFIRMED_SWAP`] to scale down.
    ceiling_since: Option<(u32, Duration)>,
}

impl PoolSwaps {
    /// Swaps starting from what the pods run now (`None`: nothing known, the first write starts
    /// them).
    pub fn starting_from(in_force: Option<Settings>) -> Self {
        Self {
            written: in_force,
            open: None,
            ceiling_since: None,
        }
    }

    /// Whether a swap is under way at `now` (it is over once confirmed and drained, or, never
    /// confirmed, after [`UNCONFIRMED_SWAP`]).
    pub fn swapping(&self, now: Duration) -> bool {
        self.open.is_some_and(|swap| match swap.confirmed_at {
            Some(confirmed) => now < confirmed + REPLACED_POOL_DRAIN,
            None => now < swap.written_at + UNCONFIRMED_SWAP,
        })
    }

    /// The settings that may be written at `now` when `wanted` are (already within the budget at
    /// rest), given what the pods reported (`seen`, when they were scraped).
    pub fn guard(
        &mut self,
        spec: &TuningSpec,
        wanted: Settings,
        seen: Option<PodsSeen>,
        now: Duration,
    ) -> Guarded {
        let budget = &spec.budget;
        if let Some(swap) = self.open.as_mut()
            && swap.confirmed_at.is_none()
            && seen
                .and_then(|s| s.generation)
                .is_some_and(|g| g >= swap.to.generation)
        {
            swap.confirmed_at = Some(now);
        }
        if !self.swapping(now) {
            self.open = None;
        }
        let written = *self.written.get_or_insert(wanted);
        let guarded = match self.open {
            Some(swap) => hold_swap(budget, swap, wanted),
            None if same_pool(&written, &wanted) => Guarded {
                settings: wanted,
                held: None,
            },
            None => self.start(spec, written, wanted, seen, now),
        };
        self.written = Some(guarded.settings);
        let ceiling = guarded.settings.hpa_max;
        if self.ceiling_since.is_none_or(|(since, _)| ceiling > since) {
            self.ceiling_since = Some((ceiling, now));
        } else if let Some((since, _)) = self.ceiling_since.as_mut() {
            *since = (*since).min(ceiling);
        }
        guarded
    }

    /// How many pods may be alive: those seen now, else, when the ceiling in force has been this
    /// low for long enough for the HPA to scale down, that ceiling (else more than any room).
    fn alive(&self, written: &Settings, seen: Option<PodsSeen>, now: Duration) -> u32 {
        if let Some(seen) = seen {
            return seen.alive;
        }
        match self.ceiling_since {
            Some((ceiling, since)) if now >= since + UNCONFIRMED_SWAP => ceiling.max(written.hpa_max),
            _ => u32::MAX,
        }
    }

    /// Starts the swap from `written`'s pool to `wanted`'s when there is room for both pools on
    /// every pod; else lowers the ceiling towards that room and keeps the pool.
    fn start(
        &mut self,
        spec: &TuningSpec,
        written: Settings,
        wanted: Settings,
        seen: Option<PodsSeen>,
        now: Duration,
    ) -> Guarded {
        let budget = &spec.budget;
        let room = budget.replicas_for(written.pool_max.saturating_add(wanted.pool_max));
        // No more pods than the room may be alive (see `alive`).
        let alive = self.alive(&written, seen, now);
        if room >= 1 && alive <= room && wanted.hpa_min <= room {
            let settings = within_ceiling(wanted, room);
            self.open = Some(Swap {
                from_pool: written.pool_max,
                to: settings,
                written_at: now,
                confirmed_at: None,
            });
            return Guarded { settings, held: None };
        }
        // The pool in force stays; its own ceiling, no higher than what leaves room for the swap
        // (but never below the floor the load needs: then the pool change waits for the load).
        // Not raised meanwhile either: the swap starts once no more pods than the room can be alive.
        let plan = budget.plan(spec.replicas, spec.pool);
        let own = plan
            .replicas_max
            .min(budget.replicas_for(written.pool_max))
            .max(1);
        let ceiling = own.min(room.min(written.hpa_max).max(wanted.hpa_min)).max(1);
        let settings = Settings {
            pool_min: written.pool_min,
            pool_max: written.pool_max,
            generation: written.generation,
            ..within_ceiling(wanted, ceiling)
        };
        Guarded {
            settings,
            held: Some(format!(
                "pool {} -> {} waits for room for both pools on every pod: at most {room} replicas \
                 ({}, floor {})",
                written.pool_max,
                wanted.pool_max,
                match alive {
                    u32::MAX => "pods alive not seen yet".to_owned(),
                    n => format!("{n} alive"),
                },
                wanted.hpa_min
            )),
        }
    }
}

/// During a swap: the pool written, the ceiling within room for both pools.
fn hold_swap(budget: &ConnectionBudget, swap: Swap, wanted: Settings) -> Guarded {
    let room = budget
        .replicas_for(swap.from_pool.saturating_add(swap.to.pool_max))
        .max(1);
    let settings = Settings {
        pool_min: swap.to.pool_min,
        pool_max: swap.to.pool_max,
        generation: swap.to.generation,
        ..within_ceiling(wanted, room)
    };
    let held = (!same_pool(&settings, &wanted) || settings.hpa_max < wanted.hpa_max).then(|| {
        format!(
            "pool {} -> {} is reaching the pods: until every pod runs generation {} and its old pool \
             is closed, at most {room} replicas and no other pool change",
            swap.from_pool, swap.to.pool_max, swap.to.generation
        )
    });
    Guarded { settings, held }
}

/// `settings` with the HPA bounds no higher than `ceiling`.
fn within_ceiling(settings: Settings, ceiling: u32) -> Settings {
    let hpa_max = settings.hpa_max.min(ceiling).max(1);
    Settings {
        hpa_max,
        hpa_min: settings.hpa_min.min(hpa_max),
        ..settings
    }
}

fn same_pool(a: &Settings, b: &Settings) -> bool {
    a.pool_max == b.pool_max && a.pool_min == b.pool_min
}

#[cfg(test)]
mod tests;
