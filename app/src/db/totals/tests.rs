//! Unit tests of the totals cache: coalescing of counts and of write retirements, what is cached.
use std::sync::atomic::{AtomicU64, Ordering};

use super::*;

/// A filter of some table: ids, and free text like a search term.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
struct Filter {
    owner: Option<i64>,
    search: Option<String>,
}

impl ListFilter for Filter {
    fn free_text_bytes(&self) -> usize {
        self.search.as_ref().map_or(0, String::len)
    }
}

fn all(table: Table) -> TotalOf {
    TotalOf::new(table, Filter::default())
}

#[test]
fn writes_within_the_refresh_period_are_coalesced_and_none_is_lost() {
    let period = Duration::from_secs(1);
    let t0 = Instant::now();
    let mut g = Generation::default();
    assert!(g.wrote(t0, period), "a first write retires at once");
    assert_eq!(g.value, 1);
    assert!(!g.wrote(t0 + Duration::from_millis(100), period));
    assert!(!g.wrote(t0 + Duration::from_millis(900), period));
    assert!(!g.settle(t0 + Duration::from_millis(999), period));
    assert_eq!(g.value, 1, "within the period the totals stand");
    assert!(
        g.settle(t0 + Duration::from_millis(1000), period),
        "the pending writes retire them"
    );
    assert_eq!(g.value, 2);
    assert!(
        !g.settle(t0 + Duration::from_secs(5), period),
        "nothing pending, nothing to retire"
    );
    assert!(
        g.wrote(t0 + Duration::from_secs(5), period),
        "a write after a quiet period retires at once"
    );
    assert_eq!(g.value, 3);
    let mut every = Generation::default();
    assert!(every.wrote(t0, Duration::ZERO) && every.wrote(t0, Duration::ZERO));
    assert_eq!(every.value, 2, "a zero period retires on every write");
}

#[tokio::test]
async fn concurrent_misses_run_one_count() {
    let totals = ListTotals::default();
    let runs = Arc::new(AtomicU64::new(0));
    let lookups = (0..20).map(|_| {
        let (totals, runs) = (totals.clone(), Arc::clone(&runs));
        async move {
            totals
                .get_or_count(all(Table::Tasks), || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok(42)
                })
                .await
        }
    });
    let results = futures::future::join_all(lookups).await;
    assert!(results.iter().all(|r| matches!(r, Ok(42))));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let t = totals.telemetry();
    assert_eq!(t.count("tasks", Lookup::Miss), 1);
    assert_eq!(
        t.count("tasks", Lookup::Hit) + t.count("tasks", Lookup::Coalesced),
        19
    );
}

#[tokio::test]
async fn a_write_retires_only_its_tables_totals() {
    let totals = ListTotals::default();
    let count = |n: i64| move || async move { Ok::<_, sqlx::Error>(n) };
    let tasks = || all(Table::Tasks);
    let users = || all(Table::Users);
    assert_eq!(totals.get_or_count(tasks(), count(1)).await.unwrap(), 1);
    assert_eq!(totals.get_or_count(users(), count(10)).await.unwrap(), 10);
    totals.wrote(Table::Tasks);
    assert_eq!(totals.get_or_count(tasks(), count(2)).await.unwrap(), 2);
    assert_eq!(totals.get_or_count(users(), count(11)).await.unwrap(), 10);
}

#[tokio::test]
async fn failed_counts_long_texts_and_zero_ttl_are_not_cached() {
    let totals = ListTotals::default();
    let of = || all(Table::Projects);
    let failed = totals
        .get_or_count(of(), || async { Err(sqlx::Error::PoolTimedOut) })
        .await;
    assert!(matches!(failed, Err(sqlx::Error::PoolTimedOut)));
    assert_eq!(totals.get_or_count(of(), || async { Ok(3) }).await.unwrap(), 3);

    let long_search = || {
        TotalOf::new(
            Table::Tasks,
            Filter {
                search: Some("x".repeat(MAX_CACHED_TEXT_BYTES + 1)),
                ..Filter::default()
            },
        )
    };
    assert_eq!(
        totals
            .get_or_count(long_search(), || async { Ok(1) })
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        totals
            .get_or_count(long_search(), || async { Ok(2) })
            .await
            .unwrap(),
        2
    );

    let uncached = ListTotals::new(TotalsSettings {
        ttl: Duration::ZERO,
        ..TotalsSettings::default()
    });
    assert_eq!(uncached.get_or_count(of(), || async { Ok(1) }).await.unwrap(), 1);
    assert_eq!(uncached.get_or_count(of(), || async { Ok(2) }).await.unwrap(), 2);
}

#[tokio::test]
async fn totals_are_kept_per_table_and_filter_set() {
    /// Another table's filter type, equal in shape to `Filter`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
    struct Other {
        owner: Option<i64>,
        search: Option<String>,
    }
    impl ListFilter for Other {}

    let totals = ListTotals::default();
    let count = |n: i64| move || async move { Ok::<_, sqlx::Error>(n) };
    let owned = |owner| {
        let filter = Filter {
            owner: Some(owner),
            ..Filter::default()
        };
        TotalOf::new(Table::Projects, filter)
    };
    assert_eq!(totals.get_or_count(owned(1), count(1)).await.unwrap(), 1);
    assert_eq!(totals.get_or_count(owned(2), count(2)).await.unwrap(), 2);
    assert_eq!(
        totals.get_or_count(owned(1), count(9)).await.unwrap(),
        1,
        "the same filters hit"
    );
    assert_eq!(totals.get_or_count(all(Table::Users), count(3)).await.unwrap(), 3);
    assert_eq!(
        totals.get_or_count(all(Table::Projects), count(4)).await.unwrap(),
        4
    );
    let other = TotalOf::new(Table::Projects, Other::default());
    assert_eq!(
        totals.get_or_count(other, count(5)).await.unwrap(),
        5,
        "filters of another type never share a total"
    );
}

#[tokio::test]
async fn a_slow_count_keeps_its_total_through_writes_until_the_ttl() {
    let totals = ListTotals::new(TotalsSettings {
        ttl: Duration::from_millis(400),
        write_refresh: Duration::ZERO,
        slow_count: Some(Duration::from_millis(30)),
        ..TotalsSettings::default()
    });
    let slow = |n: i64| {
        move || async move {
            tokio::time::sleep(Duration::from_millis(40)).await;
            Ok::<_, sqlx::Error>(n)
        }
    };
    let fast = |n: i64| move || async move { Ok::<_, sqlx::Error>(n) };
    let (tasks, users) = (|| all(Table::Tasks), || all(Table::Users));
    assert_eq!(totals.get_or_count(tasks(), slow(1)).await.unwrap(), 1);
    assert_eq!(totals.get_or_count(users(), fast(10)).await.unwrap(), 10);
    totals.wrote(Table::Tasks);
    totals.wrote(Table::Users);
    assert_eq!(
        totals.get_or_count(tasks(), fast(2)).await.unwrap(),
        1,
        "the slow total outlives the write"
    );
    assert_eq!(
        totals.get_or_count(users(), fast(11)).await.unwrap(),
        11,
        "the fast one does not"
    );
    assert_eq!(totals.telemetry().slow_counts("tasks"), 1);
    assert_eq!(totals.telemetry().slow_counts("users"), 0);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(
        totals.get_or_count(tasks(), fast(3)).await.unwrap(),
        3,
        "the TTL still ends it"
    );

    let off = ListTotals::new(TotalsSettings {
        write_refresh: Duration::ZERO,
        slow_count: None,
        ..TotalsSettings::default()
    });
    assert_eq!(off.get_or_count(tasks(), slow(1)).await.unwrap(), 1);
    off.wrote(Table::Tasks);
    assert_eq!(off.get_or_count(tasks(), fast(2)).await.unwrap(), 2);
}
