use super::*;

fn plan_in(transit: Transit, max_conn: u32, reserved: u32, r: (u32, u32), p: (u32, u32)) -> BudgetPlan {
    ConnectionBudget {
        max_connections: max_conn,
        reserved,
        source: MaxConnectionsSource::Spec,
        transit,
    }
    .plan(
        ReplicaBounds { min: r.0, max: r.1 },
        PoolBounds { min: p.0, max: p.1 },
    )
}

/// The plan for one process per replica and nothing in transit: the arithmetic alone.
fn plan(max_conn: u32, reserved: u32, r: (u32, u32), p: (u32, u32)) -> BudgetPlan {
    plan_in(Transit::None, max_conn, reserved, r, p)
}

#[test]
fn spec_that_fits_is_kept() {
    let p = plan(200, 10, (1, 10), (2, 19));
    assert_eq!(
        (p.replicas_max, p.pool_max, p.verdict),
        (10, 19, BudgetVerdict::Fits)
    );
    assert!(p.verdict.satisfied());
}

#[test]
fn pool_ceiling_is_lowered_before_replicas() {
    let p = plan(200, 10, (2, 10), (5, 50));
    assert_eq!((p.replicas_max, p.pool_max), (10, 19));
    assert_eq!(p.verdict, BudgetVerdict::PoolCapped);
    assert!(p.verdict.satisfied());
    assert!(p.to_string().contains("capped at 19 (200 total)"), "{p}");
}

#[test]
fn replicas_are_lowered_when_pool_min_does_not_fit_and_message_has_numbers() {
    let p = plan(100, 10, (2, 20), (5, 20));
    assert_eq!((p.replicas_max, p.pool_max), (18, 5));
    assert_eq!(p.verdict, BudgetVerdict::ReplicasCapped);
    assert!(!p.verdict.satisfied());
    assert_eq!(
        p.to_string(),
        "even at pool min: maxReplicas 20 x pool min 5 + reserved 10 = 110 > max_connections \
         100; maxReplicas lowered to 18 (100 total) (max_connections 100 as \
         configured (spec.database.bundled.maxConnections))"
    );
}

#[test]
fn exhausted_budget_is_reported_and_single_pod_gets_the_rest() {
    let p = plan(20, 17, (1, 4), (5, 10));
    assert_eq!(p.verdict, BudgetVerdict::Exhausted);
    assert_eq!(
        (p.replicas_max, p.replicas_min, p.pool_max, p.pool_min),
        (1, 1, 3, 3)
    );
    assert!(p.to_string().contains("leaves 3 connections"), "{p}");
}

#[test]
fn a_deployment_counts_its_surge_and_its_terminating_pods() {
    assert_eq!(
        [1, 4, 5, 10, 20].map(|r| (surge(r), pods_at_most(r))),
        [(1, 4), (1, 7), (2, 11), (3, 19), (5, 35)]
    );
    // The defaults: 10 replicas (+9 in transit) x pool 10 + 10 reserved = 200: they fit as they are.
    let p = plan_in(Transit::Deployment, 200, 10, (2, 10), (2, 10));
    assert_eq!(
        (p.verdict, p.replicas_max, p.pool_max),
        (BudgetVerdict::Fits, 10, 10)
    );
    assert_eq!(p.peak_connections(), 200);
    assert!(
        p.to_string().starts_with(
            "maxReplicas 10 (+9 in transit) x pool max 10 + reserved 10 = 200 <= max_connections 200"
        ),
        "{p}"
    );
    // The old defaults (pool 20) no longer fit as asked: the pool yields to 10.
    let p = plan_in(Transit::Deployment, 200, 10, (2, 10), (2, 20));
    assert_eq!((p.verdict, p.pool_max), (BudgetVerdict::PoolCapped, 10));
    let b = p.budget;
    assert_eq!(
        (b.replicas_for(10), b.replicas_for(11), b.pool_for(10)),
        (10, 8, 10)
    );
}

/// Property: over many inputs and both transit models, the plan keeps the invariant whenever
/// one pod and its transit can have a connection, keeps min <= max on both knobs, never raises
/// what was asked, and gives up no more than needed (one more pool connection or replica would
/// break the budget).
#[test]
fn invariant_holds_over_many_inputs() {
    let mut seed: u64 = 0x5eed;
    let mut next = |bound: u32| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        u32::try_from((seed >> 33) % u64::from(bound)).unwrap_or(0)
    };
    for round in 0..40_000 {
        let transit = if round % 2 == 0 {
            Transit::None
        } else {
            Transit::Deployment
        };
        let max_conn = next(1_000);
        let reserved = next(60);
        let r = (next(12), next(120));
        let p = (next(30), next(520));
        let plan = plan_in(transit, max_conn, reserved, r, p);
        let b = plan.budget;
        let avail = u64::from(max_conn.saturating_sub(reserved));
        let pods = |replicas: u32| u64::from(b.pods(replicas));
        assert!(
            plan.replicas_min >= 1 && plan.replicas_min <= plan.replicas_max,
            "{plan:?}"
        );
        assert!(plan.pool_min >= 1 && plan.pool_min <= plan.pool_max, "{plan:?}");
        assert!(plan.pool_max <= plan.pool_limit, "{plan:?}");
        assert!(
            avail < pods(1) || u64::from(plan.pool_limit) * pods(1) <= avail,
            "{plan:?}"
        );
        assert!(plan.replicas_max <= r.1.max(r.0).max(1), "{plan:?}");
        assert!(plan.pool_max <= p.1.max(p.0).max(1), "{plan:?}");
        if avail >= pods(1) {
            assert!(
                plan.peak_connections() <= u64::from(max_conn),
                "invariant broken: {plan:?}"
            );
        } else {
            assert_eq!(plan.verdict, BudgetVerdict::Exhausted);
        }
        match plan.verdict {
            BudgetVerdict::Fits => {}
            BudgetVerdict::PoolCapped => assert!(
                pods(plan.replicas_max) * u64::from(plan.pool_max + 1) > avail,
                "pool capped more than needed: {plan:?}"
            ),
            BudgetVerdict::ReplicasCapped => assert!(
                pods(plan.replicas_max + 1) * u64::from(plan.pool_max) > avail,
                "replicas capped more than needed: {plan:?}"
            ),
            BudgetVerdict::Exhausted => assert!(avail < pods(1) * u64::from(p.0.max(1))),
        }
    }
}
