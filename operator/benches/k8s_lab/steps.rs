//! The bench's steps against the cluster and the operator: creating, touching and deleting stacks,
//! and waiting for stages; plus the small figures helpers.
use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use kube::ResourceExt;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use perfstack_operator::PerformanceStack;
use serde_json::json;

use crate::Bench;
use crate::operator::Counters;

/// Deletes every stack and waits until the operator's finalizer let the last one go.
pub(crate) async fn delete_all(bench: &Bench) -> anyhow::Result<Duration> {
    let start = Instant::now();
    bench
        .stacks
        .delete_collection(&Default::default(), &ListParams::default())
        .await?;
    let deadline = start + Duration::from_secs(600);
    while !bench
        .stacks
        .list_metadata(&ListParams::default())
        .await?
        .items
        .is_empty()
    {
        if Instant::now() > deadline {
            bail!("stacks still present 600 s after their deletion");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(start.elapsed())
}

pub(crate) fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

pub(crate) fn percentile(values: &[Duration], q: f64) -> f64 {
    let mut sorted: Vec<f64> = values.iter().map(Duration::as_secs_f64).collect();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

pub(crate) async fn create(bench: &Bench, name: &str, template: &PerformanceStack) -> anyhow::Result<()> {
    let mut stack = template.clone();
    stack.metadata.name = Some(name.into());
    bench
        .stacks
        .create(&PostParams::default(), &stack)
        .await
        .with_context(|| format!("creating {name}"))?;
    Ok(())
}

pub(crate) fn children_of(bench: &Bench, stack: &str) -> Vec<(String, Instant)> {
    let seen = bench
        .seen
        .lock()
        .map(|s| s.get(stack).cloned())
        .unwrap_or_default();
    let mut children: Vec<(String, Instant)> = seen.unwrap_or_default().into_iter().collect();
    children.sort_by_key(|(_, t)| *t);
    children
}

/// When the last child of `stack` (other than `except`, `Kind/name`) first appeared.
pub(crate) fn last_child_seen(bench: &Bench, stack: &str, except: Option<&str>) -> Option<Instant> {
    children_of(bench, stack)
        .into_iter()
        .filter(|(child, _)| Some(child.as_str()) != except)
        .map(|(_, seen)| seen)
        .max()
}

pub(crate) fn acted_since(bench: &Bench, start: Instant, stack: &str) -> Vec<(Duration, String)> {
    let prefix = format!("{stack}: ");
    bench
        .acted
        .lock()
        .map(|a| {
            a.iter()
                .filter(|(t, what)| *t >= start && what.starts_with(&prefix))
                .map(|(t, what)| (*t - start, what[prefix.len()..].to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// How far a stack has come.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stage {
    /// Ready for its current generation.
    Ready,
    /// Ready, the HPA raised the API to its minimum, and the tuner made a decision having seen every
    /// one of those pods (its first decision comes two tuning intervals after the API is up).
    Tuned,
}

pub(crate) fn stage_of(stack: &PerformanceStack) -> Option<Stage> {
    let status = stack.status.clone().unwrap_or_default();
    let current = status.observed_generation == stack.metadata.generation;
    let ready = status
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let min_pods = u32::try_from(stack.spec.app.min_replicas).unwrap_or(1);
    let tuned = status.tuning.as_ref().is_some_and(|t| {
        t.last_decision.is_some() && t.last_observation.as_ref().is_some_and(|o| o.pods >= min_pods)
    });
    match (current && ready, tuned) {
        (false, _) => None,
        (true, false) => Some(Stage::Ready),
        (true, true) => Some(Stage::Tuned),
    }
}

/// Waits until every named stack reached `stage`; returns when that was seen.
pub(crate) async fn wait_for(
    bench: &Bench,
    names: &[String],
    stage: Stage,
    timeout: Duration,
) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + timeout;
    loop {
        let list = bench.stacks.list(&ListParams::default()).await?;
        let stages: HashMap<String, Option<Stage>> =
            list.items.iter().map(|s| (s.name_any(), stage_of(s))).collect();
        let waiting = names
            .iter()
            .filter(|n| stages.get(*n).copied().flatten().is_none_or(|s| s < stage))
            .count();
        if waiting == 0 {
            return Ok(Instant::now());
        }
        if Instant::now() > deadline {
            bail!(
                "{waiting} of {} stacks short of the awaited stage after {} s",
                names.len(),
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until the operator made no write for `bench.quiet`; returns when its last write was seen.
pub(crate) async fn wait_quiet(bench: &Bench, timeout: Duration) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + timeout;
    let mut writes = bench.operator.counters().await?.writes();
    let mut last = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = bench.operator.counters().await?.writes();
        if now != writes {
            writes = now;
            last = Instant::now();
        } else if last.elapsed() >= bench.quiet {
            return Ok(last);
        }
        if Instant::now() > deadline {
            bail!("the operator kept writing for {} s", timeout.as_secs());
        }
    }
}

/// Touches each stack's metadata `rounds` times (no spec change) and returns what the operator did.
pub(crate) async fn touch_and_count(
    bench: &Bench,
    names: &[String],
    rounds: usize,
) -> anyhow::Result<Counters> {
    let before = bench.operator.counters().await?;
    for round in 0..rounds {
        let reconciles = bench.operator.counters().await?.reconciles;
        for name in names {
            let patch =
                json!({"metadata": {"annotations": {"bench.perfstack.dev/touch": round.to_string()}}});
            bench
                .stacks
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
        let wanted = reconciles + names.len() as f64;
        let deadline = Instant::now() + Duration::from_secs(60);
        while bench.operator.counters().await?.reconciles < wanted {
            if Instant::now() > deadline {
                bail!("touched stacks were not reconciled within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(bench.operator.counters().await?.since(&before))
}

/// What the operator did, unprompted, over `window`.
pub(crate) async fn steady_window(bench: &Bench, window: Duration) -> anyhow::Result<Counters> {
    let before = bench.operator.counters().await?;
    tokio::time::sleep(window).await;
    Ok(bench.operator.counters().await?.since(&before))
}
