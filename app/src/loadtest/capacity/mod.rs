//! `loadtest --find-capacity`: runs the scenario's mix at rising open-model rates, one step each,
//! until a step breaks the SLO, and reports the knee (the last rate that held) and what saturated.
//!
//! `decide` holds the pure decisions (ladder, step verdict, knee, saturated resource), `observe`
//! reads the API's `/metrics` during each step, `report` writes the JSON and the text table.
pub mod decide;
pub mod observe;
pub mod report;

use std::time::Duration;

use tokio::sync::watch;

pub use self::decide::Ladder;
use self::{
    decide::{Resource, StepFigures, Stopped},
    observe::Observer,
    report::{CapacityReport, StepReport},
};
use super::{
    LoadtestArgs, LoadtestError, discover,
    driver::{self, RunFigures},
    report::Provenance,
    scenario::Plan,
};
use crate::metrics::cpu::process_seconds;

/// How the search climbs: the ladder, each step's length, and the allowed gap between the
/// achieved and the offered rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Search {
    pub ladder: Ladder,
    pub step: Duration,
    pub max_rate_gap_pct: f64,
}

/// Runs the search to its end (a broken step, `--max-rate`, or Ctrl-C) and writes the report.
pub async fn run(args: &LoadtestArgs, search: Search) -> Result<report::Written, LoadtestError> {
    let max_plan = Plan::constant(args.scenario, search.ladder.max, search.step);
    let client = super::client_for(args, max_plan.max_vus())?;
    let data = discover::discover(&client).await?;
    let provenance = Provenance::now(&args.base_url, args.seed);
    eprintln!(
        "capacity search against {}: {} mix, {} s steps from {} rps (x{}) up to {} rps{}\n{}",
        args.base_url,
        args.scenario.name(),
        search.step.as_secs_f64(),
        search.ladder.start,
        search.ladder.factor,
        search.ladder.max,
        report::refine_note(&search.ladder),
        report::HEADER
    );
    let interrupted = interrupt_flag();
    let machine_cores = std::thread::available_parallelism().map_or(0.0, |n| n.get() as f64);
    let mut steps: Vec<StepReport> = Vec::new();
    let mut rate = search.ladder.start;
    // What gave out on the first broken step; refined steps after it only narrow the knee.
    let mut saturated: Option<Resource> = None;
    let stopped = loop {
        let plan = Plan::constant(args.scenario, rate, search.step);
        eprintln!(
            "step {}: {rate} rps for {:.1} s",
            steps.len() + 1,
            search.step.as_secs_f64()
        );
        let observer = Observer::start(client.clone());
        let cpu_before = process_seconds();
        let seed = args.seed.wrapping_add(steps.len() as u64);
        let stop = stopped_by(interrupted.clone());
        let run = driver::drive(&plan, client.clone(), data.clone(), seed, stop).await;
        let generator_cores = process_seconds()
            .zip(cpu_before)
            .map(|(after, before)| (after - before) / run.elapsed.as_secs_f64().max(f64::EPSILON));
        let signs = observer
            .finish()
            .await
            .signs(run.elapsed, generator_cores, machine_cores);
        let figures = step_figures(&plan, &run, signs);
        let step = StepReport::new(rate, &run, figures, &args.thresholds, search.max_rate_gap_pct);
        eprintln!("  {}", report::step_line(&step));
        let (held, was_interrupted) = (step.held, run.interrupted);
        steps.push(step);
        if was_interrupted {
            break Stopped::Interrupted;
        }
        if !held && saturated.is_none() {
            let first = steps.first().map_or(figures, |s| s.figures);
            saturated = Some(decide::saturated(&figures, &first, search.max_rate_gap_pct));
        }
        let history: Vec<(f64, bool)> = steps.iter().map(|s| (s.rate, s.held)).collect();
        match search.ladder.after(&history) {
            Some(next) => rate = next,
            None if saturated.is_some() => break Stopped::SloBroken,
            None => break Stopped::MaxRate,
        }
    };
    let held: Vec<(f64, bool)> = steps.iter().map(|s| (s.rate, s.held)).collect();
    let report = CapacityReport {
        provenance,
        scenario: args.scenario,
        ladder: search.ladder,
        step_seconds: search.step.as_secs_f64(),
        max_rate_gap_pct: search.max_rate_gap_pct,
        thresholds: args.thresholds.clone(),
        knee_rps: decide::knee(&held),
        stopped,
        saturated,
        steps,
    };
    let written = report::write(&report, &args.out).await?;
    eprint!("{}", written.text);
    Ok(written)
}

/// The figures a step is judged and explained by.
fn step_figures(plan: &Plan, run: &RunFigures, signs: decide::Signs) -> StepFigures {
    let totals = &run.totals;
    let elapsed = run.elapsed.as_secs_f64().max(f64::EPSILON);
    let planned = plan.duration().as_secs_f64().max(f64::EPSILON);
    let behind = run.last_sent_at.saturating_sub(plan.last_send_at());
    StepFigures {
        offered_rps: plan.planned_rate(),
        // Over the step's length at least: a healthy step answers its last request before the
        // step ends and achieves the offered rate; one that falls behind stretches past it.
        achieved_rps: totals.requests as f64 / elapsed.max(planned),
        p95_ms: totals.latency_ms.p95,
        p99_ms: totals.latency_ms.p99,
        error_pct: if totals.requests == 0 {
            100.0
        } else {
            totals.errors as f64 * 100.0 / totals.requests as f64
        },
        send_behind_pct: behind.as_secs_f64() * 100.0 / planned,
        vu_waits: run.vu_waits,
        signs,
    }
}

/// A flag set once by Ctrl-C / SIGTERM, so every step (and the gap between steps) sees it.
fn interrupt_flag() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        crate::signal::interrupted().await;
        let _ = tx.send(true);
    });
    rx
}

/// Resolves once the flag is set.
async fn stopped_by(mut flag: watch::Receiver<bool>) {
    if flag.wait_for(|set| *set).await.is_err() {
        std::future::pending::<()>().await;
    }
}
