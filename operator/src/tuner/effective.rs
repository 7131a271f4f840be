//! The pool and HPA bounds the controller writes, in every mode, always within the budget.
//!
//! In mode Auto the tuner's settings in force win; otherwise (Recommend, Off, or no decision yet)
//! the spec's starting values do. Either way the connection budget is applied first, so an
//! autoscaler can never open more connections than PostgreSQL allows — even with tuning Off.
use super::act::Mode;
use super::budget::BudgetPlan;
use super::spec::{Settings, TuningSpec};

/// Settings to write, with the budget plan they keep (for the `ConnectionBudget` condition).
/// `start` is the spec's own pool and generation (`from_crd::spec_settings`); its replica bounds
/// give way to the plan's.
pub fn effective_settings(
    spec: &TuningSpec,
    start: Settings,
    tuned: Option<&Settings>,
    mode: Mode,
) -> (Settings, BudgetPlan) {
    let plan = spec.budget.plan(spec.replicas, spec.pool);
    let wanted = match (mode, tuned) {
        (Mode::Auto, Some(tuned)) => *tuned,
        // Without a decision the pool yields first (PoolCapped), keeping the autoscaler's room.
        _ => Settings {
            pool_max: start.pool_max.min(plan.pool_max),
            hpa_min: plan.replicas_min,
            hpa_max: plan.replicas_max,
            ..start
        },
    };
    (within_budget(&plan, spec, wanted), plan)
}

/// Clamps settings into the plan (the spec may have changed since the tuner decided): the floor
/// within the replica bounds, the pool within what the budget leaves at that floor, the ceiling
/// from the pool. The generation moves on when the pool had to change.
pub fn within_budget(plan: &BudgetPlan, spec: &TuningSpec, wanted: Settings) -> Settings {
    let hpa_min = wanted.hpa_min.clamp(plan.replicas_min, plan.replicas_max);
    let pool_cap = plan.pool_limit.min(spec.budget.pool_for(hpa_min)).max(1);
    let pool_max = wanted.pool_max.clamp(plan.pool_min.min(pool_cap), pool_cap);
    let pool_min = wanted.pool_min.min(pool_max);
    let hpa_max = wanted
        .hpa_max
        .min(plan.replicas_max)
        .min(spec.budget.replicas_for(pool_max))
        .max(hpa_min)
        .max(1);
    let moved = pool_max != wanted.pool_max || pool_min != wanted.pool_min;
    Settings {
        pool_min,
        pool_max,
        hpa_min,
        hpa_max,
        generation: wanted.generation + u64::from(moved),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tuner::budget::{PoolBounds, ReplicaBounds};
    use crate::tuner::testing::settings;

    fn spec(max_connections: u32) -> TuningSpec {
        crate::tuner::testing::spec((2, 40), (2, 10), max_connections)
    }

    const START: Settings = Settings {
        pool_min: 2,
        pool_max: 40,
        hpa_min: 2,
        hpa_max: 10,
        generation: 3,
    };

    /// What the tuner last put in force: pool 2..38, HPA 3..5, generation 7.
    fn tuned() -> Settings {
        settings((2, 38), (3, 5), 7)
    }

    #[test]
    fn off_and_recommend_still_keep_the_budget() {
        for mode in [Mode::Off, Mode::Recommend] {
            let tuned = settings((2, 80), (9, 10), 9);
            let (s, plan) = effective_settings(&spec(200), START, Some(&tuned), mode);
            assert_eq!((s.pool_max, s.hpa_min, s.hpa_max), (19, 2, 10), "{mode:?}");
            assert_eq!(
                s.generation, 3,
                "the spec's values, capped deterministically: same generation"
            );
            assert!(s.peak_connections(&spec(200).budget) + 10 <= 200);
            assert_eq!(plan.verdict.reason(), "PoolCapped");
        }
    }

    #[test]
    fn auto_uses_the_tuned_settings() {
        let (s, _) = effective_settings(&spec(200), START, Some(&tuned()), Mode::Auto);
        assert_eq!(s, tuned());
    }

    #[test]
    fn tuned_settings_are_clamped_after_the_spec_shrank_the_database() {
        let (s, _) = effective_settings(&spec(100), START, Some(&tuned()), Mode::Auto);
        assert_eq!((s.pool_max, s.hpa_min, s.hpa_max, s.generation), (30, 3, 3, 8));
        assert!(s.peak_connections(&spec(100).budget) + 10 <= 100);
    }

    #[test]
    fn over_many_inputs_the_invariant_holds() {
        let mut seed: u64 = 7;
        let mut next = |bound: u32| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            u32::try_from((seed >> 33) % u64::from(bound)).unwrap_or(0)
        };
        for _ in 0..10_000 {
            let mut sp = spec(20 + next(500));
            sp.pool = PoolBounds {
                min: 1 + next(10),
                max: 1 + next(100),
            };
            sp.replicas = ReplicaBounds {
                min: 1 + next(5),
                max: 1 + next(30),
            };
            let tuned = settings((next(20), 1 + next(200)), (next(40), next(40)), 1);
            let (s, _) = effective_settings(&sp, START, Some(&tuned), Mode::Auto);
            assert!(
                s.peak_connections(&sp.budget) + 10 <= u64::from(sp.budget.max_connections),
                "{sp:?} {tuned:?} -> {s:?}"
            );
            assert!(s.pool_min <= s.pool_max && s.hpa_min <= s.hpa_max, "{s:?}");
        }
    }
}
