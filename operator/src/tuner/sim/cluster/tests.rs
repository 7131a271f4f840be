//! A rolling update in the middle of a spike, every pod and pool counted at every tick.
use super::*;
use crate::tuner::budget::{ConnectionBudget, Transit};
use crate::tuner::testing;

const INTERVAL: Duration = Duration::from_secs(30);

/// Pool 2..40, replicas 1..10, PostgreSQL's 200 connections (10 reserved), counted with `transit`.
fn tuner(transit: Transit, pool: u32) -> Tuner {
    let mut spec = testing::spec((2, 40), (1, 10), 200);
    spec.budget = ConnectionBudget {
        transit,
        ..spec.budget
    };
    let plan = spec.budget.plan(spec.replicas, spec.pool);
    let start = testing::settings((2, pool.min(plan.pool_max)), (1, plan.replicas_max), 1);
    Tuner::new(spec, start)
}

/// 2 minutes of 10 users, 5 minutes of `users` (140: the HPA at 6 pods; 250: at its ceiling of 10),
/// 10 minutes of 10; the rolling update starts 2 minutes into the spike (interval 8).
fn spike(users: f64) -> (Vec<f64>, usize) {
    let minutes = |users: f64, n: usize| vec![users; n * 2];
    (
        [minutes(10.0, 2), minutes(users, 5), minutes(10.0, 10)].concat(),
        8,
    )
}

fn trace(moments: &[Moment]) -> String {
    moments
        .iter()
        .filter(|m| m.at.as_secs().is_multiple_of(15))
        .map(|m| {
            format!(
                "t={:>4}s pods={:>2} rolled={}/{} connections={:>3} pool={:>2} hpa={}..{} p95={:.0}ms",
                m.at.as_secs(),
                m.pods,
                m.rolled.0,
                m.rolled.1,
                m.connections,
                m.settings.pool_max,
                m.settings.hpa_min,
                m.settings.hpa_max,
                m.p95.unwrap_or(0.0) * 1000.0
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The most connections at any moment, plus the reserve.
fn peak(moments: &[Moment]) -> u32 {
    moments.iter().map(|m| m.connections).max().unwrap_or(0) + 10
}

#[test]
fn a_rolling_update_in_the_middle_of_a_spike_keeps_the_budget_at_every_moment() {
    for (users, pool) in [(140.0, 5), (140.0, 10), (250.0, 5), (250.0, 10)] {
        let (load, roll_at) = spike(users);
        let mut tuner = tuner(Transit::Deployment, pool);
        let moments = run(&mut tuner, Some(PoolSwaps::default()), &load, INTERVAL, roll_at);
        assert!(
            peak(&moments) <= 200,
            "{users} users, starting at pool {pool}: {} connections at some moment\n{}",
            peak(&moments),
            trace(&moments)
        );
        let end = moments.last().unwrap();
        assert_eq!(
            end.rolled.0,
            end.rolled.1,
            "the rollout finished\n{}",
            trace(&moments)
        );
        let during = &moments[roll_at * 6..(roll_at + 6) * 6];
        assert!(
            during.iter().any(|m| m.pods > m.rolled.1) && during.iter().any(|m| m.rolled.1 > 4),
            "surge and terminating pods during the spike\n{}",
            trace(&moments)
        );
        // 250 users are more than the model's database serves (1600 rps at full speed).
        let late = &moments[(roll_at + 4) * 6..(roll_at + 6) * 6];
        assert!(
            users > 160.0 || late.iter().all(|m| m.p95.is_some_and(|p| p <= 0.22)),
            "the spike is served within the SLO\n{}",
            trace(&moments)
        );
        if std::env::var_os("TUNER_SIM_TRACE").is_some() {
            eprintln!("{}", trace(&moments));
        }
    }
}

#[test]
fn counting_only_max_replicas_times_the_pool_would_break_it() {
    // The same run with the budget at rest and no order to the pool swaps: the model finds the
    // moments the issue describes.
    let (load, roll_at) = spike(250.0);
    let mut tuner = tuner(Transit::None, 19);
    let moments = run(&mut tuner, None, &load, INTERVAL, roll_at);
    assert!(
        peak(&moments) > 200,
        "the naive budget held ({}): the model does not exercise transit\n{}",
        peak(&moments),
        trace(&moments)
    );
}
