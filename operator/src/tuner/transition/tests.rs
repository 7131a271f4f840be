use super::*;
use crate::tuner::budget::{ConnectionBudget, MaxConnectionsSource, PoolBounds, ReplicaBounds, Transit};
use crate::tuner::testing::settings;

/// Pool 2..40, replicas 1..10, 200 connections with 10 reserved, API pods under a Deployment.
fn spec() -> TuningSpec {
    TuningSpec::new(
        PoolBounds { min: 2, max: 40 },
        ReplicaBounds { min: 1, max: 10 },
        ConnectionBudget {
            max_connections: 200,
            reserved: 10,
            source: MaxConnectionsSource::Spec,
            transit: Transit::Deployment,
        },
    )
}

fn at(seconds: u64) -> Duration {
    Duration::from_secs(seconds)
}

fn seen(alive: u32, generation: u64) -> Option<PodsSeen> {
    Some(PodsSeen {
        alive,
        generation: Some(generation),
    })
}

/// Every pod that can be alive at `s`'s ceiling, each holding `pools` connections, plus the reserve.
fn peak(s: &Settings, pools: u32) -> u32 {
    spec().budget.pods(s.hpa_max) * pools + 10
}

/// In force: pool 5, ceiling 10, generation 3 (10 + 9 in transit pods x 5 = 95); the swaps and
/// what the tuner wants: pool 10 at ceiling 10. 19 x 10 = 190 fits at rest, but while both pools
/// may be open every pod can hold 15: at most 6 replicas (6 + 6 in transit) x 15 = 180.
fn pool_5_growing_to_10() -> (PoolSwaps, Settings) {
    let swaps = PoolSwaps::starting_from(Some(settings((2, 5), (1, 10), 3)));
    (swaps, settings((2, 10), (3, 10), 4))
}

#[test]
fn a_pool_change_leaves_room_for_both_pools_until_every_pod_ran_it_and_drained() {
    let (mut swaps, wanted) = pool_5_growing_to_10();
    let g = swaps.guard(&spec(), wanted, seen(3, 3), at(0));
    assert_eq!(g.settings, settings((2, 10), (3, 6), 4), "{g:?}");
    assert!(peak(&g.settings, 5 + 10) <= 200, "{g:?}");
    // The pods have not all swapped yet; then they have, but their old pools may still be open.
    for (t, generation) in [(60, 3), (90, 4), (200, 4)] {
        let g = swaps.guard(&spec(), wanted, seen(3, generation), at(t));
        assert_eq!(g.settings.hpa_max, 6, "at {t}s: {g:?}");
        assert!(g.held.is_some());
    }
    // 120 s after every pod was seen on generation 4: the ceiling the new pool allows.
    let g = swaps.guard(&spec(), wanted, seen(3, 4), at(210));
    assert_eq!((g.settings.pool_max, g.settings.hpa_max, g.held), (10, 10, None));
}

#[test]
fn without_room_the_ceiling_comes_down_first_and_the_pool_waits() {
    let (mut swaps, wanted) = pool_5_growing_to_10();
    // 9 pods alive: more than the 6 that leave room for both pools.
    let g = swaps.guard(&spec(), wanted, seen(9, 3), at(0));
    assert_eq!(g.settings, settings((2, 5), (3, 6), 3), "{g:?}");
    assert!(g.held.unwrap().contains("waits for room"));
    // Once the HPA came down to 6 pods, the swap starts.
    let g = swaps.guard(&spec(), wanted, seen(6, 3), at(60));
    assert_eq!((g.settings.pool_max, g.settings.generation), (10, 4));
    // A floor above the room keeps the pool as it is instead (replicas first).
    let (mut swaps, _) = pool_5_growing_to_10();
    let g = swaps.guard(&spec(), settings((2, 10), (8, 10), 4), seen(8, 3), at(0));
    assert_eq!(g.settings, settings((2, 5), (8, 8), 3), "{g:?}");
}

#[test]
fn a_shrink_reaches_the_pods_before_the_ceiling_it_allows_is_raised() {
    // In force: pool 20 at ceiling 4 (4 + 3 in transit x 20 = 140).
    let mut swaps = PoolSwaps::starting_from(Some(settings((2, 20), (1, 4), 7)));
    // The tuner shrinks to 8, which would allow ceiling 10 at rest (19 x 8 = 152).
    let wanted = settings((2, 8), (1, 10), 8);
    // Not raised: even lowered, while a pod may hold both pools: (3 + 3 in transit) x 28 = 168.
    let g = swaps.guard(&spec(), wanted, seen(2, 7), at(0));
    assert_eq!((g.settings.pool_max, g.settings.hpa_max), (8, 3), "{g:?}");
    assert!(peak(&g.settings, 20 + 8) <= 200);
    let g = swaps.guard(&spec(), wanted, seen(2, 8), at(30));
    assert_eq!(
        g.settings.hpa_max, 3,
        "every pod runs 8 now; their 20-pools may still be open"
    );
    let g = swaps.guard(&spec(), wanted, seen(2, 8), at(150));
    assert_eq!(g.settings.hpa_max, 10);
}

#[test]
fn without_reports_the_hpa_is_given_time_and_a_swap_lasts_the_unconfirmed_window() {
    let mut swaps = PoolSwaps::starting_from(Some(settings((2, 5), (1, 4), 1)));
    let wanted = settings((2, 10), (1, 10), 2);
    // Nobody saw the pods (tuning Off): the ceiling of 4 in force must have been there long enough
    // for the HPA to have scaled down to it.
    let first = swaps.guard(&spec(), wanted, None, at(0));
    assert_eq!(first.settings, settings((2, 5), (1, 4), 1), "{first:?}");
    assert!(first.held.unwrap().contains("pods alive not seen yet"));
    let started = swaps.guard(&spec(), wanted, None, at(300));
    assert_eq!(
        started.settings,
        settings((2, 10), (1, 6), 2),
        "room for both pools"
    );
    assert!(swaps.guard(&spec(), wanted, None, at(599)).held.is_some());
    assert_eq!(swaps.guard(&spec(), wanted, None, at(600)).settings.hpa_max, 10);
}
