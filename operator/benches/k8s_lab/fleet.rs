//! The fleet: the other N - 1 stacks, bundled like the first (their own PostgreSQL and Redis; the
//! lab's Service range is a /16, so three ClusterIPs a stack fit), created in batches by 16
//! concurrent clients: up to [`MILESTONE`] stacks first when more are asked for, then the rest, each
//! batch measured until the operator is steady again. So the figures at 200 stacks and at N come
//! from one run of one operator.
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;

use crate::Bench;
use crate::operator::{Counters, Memory};
use crate::steps::{Stage, create, last_child_seen, mib, percentile, wait_for, wait_quiet};

/// The fleet size measured on the way to a larger N (the memory goal is stated at 200).
pub(crate) const MILESTONE: usize = 200;

/// What one batch of new stacks cost, until the operator was steady again.
pub(crate) struct Growth {
    /// Stacks in the namespace after the batch.
    pub total: usize,
    /// Stacks the batch created.
    pub added: usize,
    created_in: Duration,
    children_all_in: Duration,
    ungated_in: Duration,
    per_stack: Vec<Duration>,
    ready_in: Duration,
    tuned_in: Duration,
    settled_in: Duration,
    during: Counters,
    cpu: f64,
    pub memory: Memory,
}

/// The stack numbers of each batch for `count` stacks in all (`bench-1` exists already).
pub(crate) fn batches(count: usize) -> Vec<std::ops::RangeInclusive<usize>> {
    if count > MILESTONE {
        vec![2..=MILESTONE, MILESTONE + 1..=count]
    } else if count >= 2 {
        vec![2..=count]
    } else {
        Vec::new()
    }
}

/// The name of stack number `i`.
pub(crate) fn name(i: usize) -> String {
    format!("bench-{i}")
}

/// Creates the stacks `batch` and waits until all stacks so far are Ready, tuned and the operator
/// made no write for the quiet time.
pub(crate) async fn grow(bench: &Bench, batch: std::ops::RangeInclusive<usize>) -> anyhow::Result<Growth> {
    let total = *batch.end();
    let names: Vec<String> = batch.map(name).collect();
    let before = bench.operator.counters().await?;
    let cpu_before = bench.operator.cpu_seconds()?;
    let start = Instant::now();
    let created: Vec<(String, Instant)> = futures::stream::iter(names.iter().cloned())
        .map(|name| async move {
            let at = Instant::now();
            create(bench, &name, &bench.template).await.map(|()| (name, at))
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let created_in = start.elapsed();
    let all_names: Vec<String> = (1..=total).map(name).collect();
    let ready_in = wait_for(bench, &all_names, Stage::Ready, Duration::from_secs(1800)).await? - start;
    let tuned_in = wait_for(bench, &all_names, Stage::Tuned, Duration::from_secs(1800)).await? - start;
    let settled_in = wait_quiet(bench, Duration::from_secs(900))
        .await?
        .saturating_duration_since(start);
    let during = bench.operator.counters().await?.since(&before);
    let per_stack: Vec<Duration> = created
        .iter()
        .filter_map(|(name, at)| Some(last_child_seen(bench, name, None)? - *at))
        .collect();
    let last_seen = |except: fn(&str) -> Option<String>| {
        created
            .iter()
            .filter_map(|(name, _)| last_child_seen(bench, name, except(name).as_deref()))
            .max()
            .map_or(Duration::ZERO, |t| t - start)
    };
    Ok(Growth {
        total,
        added: names.len(),
        created_in,
        children_all_in: last_seen(|_| None),
        // Everything but the API Deployment, which waits for the migration Job, i.e. for the
        // controller manager (at its default 20 requests/s) to create the Job's pod and record its
        // success.
        ungated_in: last_seen(|name| Some(format!("Deployment/{name}-api"))),
        per_stack,
        ready_in,
        tuned_in,
        settled_in,
        during,
        cpu: bench.operator.cpu_seconds()? - cpu_before,
        memory: bench.operator.memory()?,
    })
}

/// The batches as a table, one column per batch.
pub(crate) fn table(md: &mut String, bench: &Bench, growths: &[Growth]) -> std::fmt::Result {
    let header: Vec<String> = growths
        .iter()
        .map(|g| format!("to {} stacks (+{})", g.total, g.added))
        .collect();
    writeln!(md, "| measure | {} |", header.join(" | "))?;
    writeln!(md, "| --- |{}", " ---: |".repeat(growths.len()))?;
    let mut row = |label: &str, cell: &dyn Fn(&Growth) -> String| -> std::fmt::Result {
        let cells: Vec<String> = growths.iter().map(cell).collect();
        writeln!(md, "| {label} | {} |", cells.join(" | "))
    };
    let secs = |d: Duration| format!("{:.1} s", d.as_secs_f64());
    row("created by 16 concurrent clients in", &|g| secs(g.created_in))?;
    row("**time until every child of the new stacks existed**", &|g| {
        format!("**{}**", secs(g.children_all_in))
    })?;
    row(
        "time until every child not waiting on a migration Job existed (all but the API Deployments)",
        &|g| secs(g.ungated_in),
    )?;
    row("per stack, `create` to all children: p50 / p95 / max", &|g| {
        format!(
            "{:.1} / {:.1} / {:.1} s",
            percentile(&g.per_stack, 0.50),
            percentile(&g.per_stack, 0.95),
            percentile(&g.per_stack, 1.0)
        )
    })?;
    row("time until every stack Ready", &|g| secs(g.ready_in))?;
    row("time until every stack's tuner decided over all its pods", &|g| {
        secs(g.tuned_in)
    })?;
    row(
        &format!(
            "**time until steady state** (the operator's last write; then none for {} s)",
            bench.quiet.as_secs()
        ),
        &|g| format!("**{}**", secs(g.settled_in)),
    )?;
    row("reconciles / API reads / API writes to get there", &|g| {
        format!(
            "{} / {} / {}",
            g.during.reconciles,
            g.during.reads(),
            g.during.writes()
        )
    })?;
    row(
        "**API requests per new stack** (reads + writes; watches not counted)",
        &|g| {
            let per = (g.during.reads() + g.during.writes()) / g.added.max(1) as f64;
            format!("**{per:.1}**")
        },
    )?;
    row("GETs per new stack, by resource", &|g| {
        g.during.gets_breakdown_per(g.added)
    })?;
    row("writes by verb and resource", &|g| g.during.write_breakdown())?;
    row("operator CPU time to get there (user + system)", &|g| {
        format!("{:.1} s", g.cpu)
    })?;
    row("**operator RSS, steady** (peak so far)", &|g| {
        format!("**{}** ({})", mib(g.memory.rss_kib), mib(g.memory.peak_kib))
    })?;
    Ok(())
}

/// The figures of `growth` under `suffix`-ed keys (`_n` for the last batch, `_200` for the milestone).
pub(crate) fn record(json: &mut serde_json::Map<String, serde_json::Value>, growth: &Growth, suffix: &str) {
    let requests = (growth.during.reads() + growth.during.writes()) / growth.added.max(1) as f64;
    for (key, value) in [
        ("stacks", json!(growth.total)),
        (
            "all_children_seconds",
            json!(growth.children_all_in.as_secs_f64()),
        ),
        ("ungated_children_seconds", json!(growth.ungated_in.as_secs_f64())),
        ("cpu_seconds_to_steady_state", json!(growth.cpu)),
        ("all_ready_seconds", json!(growth.ready_in.as_secs_f64())),
        ("all_tuned_seconds", json!(growth.tuned_in.as_secs_f64())),
        ("steady_state_seconds", json!(growth.settled_in.as_secs_f64())),
        ("writes_to_steady_state", json!(growth.during.writes())),
        ("requests_per_new_stack", json!(requests)),
        ("rss_kib", json!(growth.memory.rss_kib)),
        ("peak_rss_kib", json!(growth.memory.peak_kib)),
    ] {
        json.insert(format!("{key}{suffix}"), value);
    }
}
