//! `perfstack-app loadtest`: drives the API with an open-model load (baseline, peak, stress,
//! spike), checks the SLOs and writes a JSON and an HTML report.
//!
//! `shape` turns the flags into what to run (a scenario's plan, a constant `--rate`, or a
//! `--find-capacity` search, which `capacity` drives), `scenario` plans the intended send times,
//! `mix` draws what each request does, `driver` sends them on time through `client`, `stats`
//! keeps the histograms, `verdict` applies the thresholds and `report` writes the results;
//! `ledger` records the writes the API acknowledged (`--ledger`, for fault tests).
pub mod capacity;
pub mod client;
pub mod discover;
pub mod driver;
pub mod ledger;
pub mod mix;
pub mod report;
pub mod scenario;
pub mod shape;
pub mod stats;
pub mod verdict;

use std::{path::PathBuf, sync::Arc, time::Duration};

use clap::Args;

use self::{
    client::{ApiClient, ClientError},
    discover::DiscoverError,
    ledger::Ledger,
    report::{Report, ReportError, Written},
    scenario::{Plan, SCALE_RANGE, Scenario},
    shape::{CapacityArgs, RateArgs, Shape, ShapeError},
    verdict::{Measured, Thresholds},
};

/// Flags of `perfstack-app loadtest`.
#[derive(Debug, Clone, Args)]
pub struct LoadtestArgs {
    /// Base URL of the API, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "LOADTEST_BASE_URL")]
    pub base_url: String,
    /// Load shape to run.
    #[arg(long, value_enum, default_value_t = Scenario::Baseline)]
    pub scenario: Scenario,
    /// Multiplies every stage's duration (0.01 runs the 5-minute baseline in 3 seconds).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Directory for `<scenario>.json` and `<scenario>.html`.
    #[arg(long, default_value = "loadtest-results")]
    pub out: PathBuf,
    /// Seed of the request mix; the same seed and dataset give the same requests.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// A request with no complete answer after this long counts as an error, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub request_timeout_ms: u64,
    /// Bearer token to send, for a stack with auth on (the admin token: the mix deletes). Never
    /// logged.
    #[arg(long, env = "LOADTEST_TOKEN", hide_env_values = true)]
    pub token: Option<secrecy::SecretString>,
    /// Percent of requests (0-100) that ask for a report job (`POST /reports`) on top of the mix;
    /// 0 (the default) keeps the mix the benchmarks measure.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub report_pct: u32,
    /// Records every acknowledged write (created and changed task ids, report job ids) as JSON
    /// lines in this file, to compare with what the stack holds afterwards (e2e/faults.sh).
    #[arg(long)]
    pub ledger: Option<PathBuf>,
    #[command(flatten)]
    pub thresholds: Thresholds,
    #[command(flatten)]
    pub rate: RateArgs,
    #[command(flatten)]
    pub capacity: CapacityArgs,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadtestError {
    #[error("--scale must be within {lo}..={hi}, got {0}", lo = SCALE_RANGE.start(), hi = SCALE_RANGE.end())]
    Scale(f64),
    #[error(transparent)]
    Shape(#[from] ShapeError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("could not discover the seeded data")]
    Discover(#[from] DiscoverError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("SLO checks failed: {0}")]
    ChecksFailed(String),
    #[error("--find-capacity runs a search, not a plan (see `capacity::run`)")]
    NotAPlan,
    #[error("no rate held the SLO: the first step ({0} rps) broke it")]
    NoCapacity(f64),
    #[error("could not write the ledger {0:?}")]
    Ledger(PathBuf, #[source] std::io::Error),
}

/// A finished run and where its report went.
#[derive(Debug)]
pub struct Finished {
    pub report: Report,
    pub written: Written,
}

/// The client for a run: the base URL, the timeout, the token, and one keep-alive connection per
/// virtual user (`max_vus`).
fn client_for(args: &LoadtestArgs, max_vus: u32) -> Result<ApiClient, ClientError> {
    let timeout = Duration::from_millis(args.request_timeout_ms);
    let client = ApiClient::new(&args.base_url, timeout, max_vus as usize)?;
    match &args.token {
        Some(token) => client.with_token(secrecy::ExposeSecret::expose_secret(token)),
        None => Ok(client),
    }
}

/// What the flags ask for: a plan (the scenario's, or `--rate`'s) or a capacity search.
pub fn shape_of(args: &LoadtestArgs) -> Result<Shape, LoadtestError> {
    let plan = Plan::new(args.scenario, args.scale).ok_or(LoadtestError::Scale(args.scale))?;
    Ok(shape::shape(plan, &args.rate, &args.capacity)?)
}

/// Runs the plan the flags ask for (the scenario's or `--rate`'s) and writes the report; the
/// returned report says whether the checks passed. A capacity search is [`capacity::run`].
pub async fn execute(args: &LoadtestArgs) -> Result<Finished, LoadtestError> {
    let plan = match shape_of(args)? {
        Shape::Plan(plan) => plan,
        Shape::Capacity { .. } => return Err(LoadtestError::NotAPlan),
    };
    let client = client_for(args, plan.max_vus())?;
    let data = discover::discover(&client).await?;
    let dataset = report::DatasetSummary::from(&data);
    eprintln!(
        "loadtest {}: {} requests over {:.1}s, up to {} virtual users, against {}",
        plan.name(),
        plan.planned_requests(),
        plan.duration().as_secs_f64(),
        plan.max_vus(),
        args.base_url
    );
    let provenance = report::Provenance::now(&args.base_url, args.seed);
    let ledger = match &args.ledger {
        Some(path) => Some(Arc::new(
            Ledger::create(path).map_err(|source| LoadtestError::Ledger(path.clone(), source))?,
        )),
        None => None,
    };
    let extras = driver::Extras {
        report_pct: args.report_pct,
        ledger: ledger.clone(),
    };
    let figures = driver::drive_with(
        &plan,
        client,
        data,
        args.seed,
        extras,
        crate::signal::interrupted(),
    )
    .await;
    if let (Some(ledger), Some(path)) = (&ledger, &args.ledger) {
        ledger
            .flush()
            .map_err(|source| LoadtestError::Ledger(path.clone(), source))?;
    }
    if figures.interrupted {
        eprintln!("interrupted: stopped sending, the report covers what was sent");
    }
    let elapsed = figures.elapsed.as_secs_f64().max(f64::EPSILON);
    let totals = figures.totals;
    let throughput_rps = totals.requests as f64 / elapsed;
    let error_rate_pct = if totals.requests == 0 {
        100.0
    } else {
        totals.errors as f64 * 100.0 / totals.requests as f64
    };
    let checks = args.thresholds.check(&Measured {
        p95_ms: totals.latency_ms.p95,
        p99_ms: totals.latency_ms.p99,
        error_pct: error_rate_pct,
        rps: throughput_rps,
        planned_rps: plan.planned_rate(),
    });
    let report = Report {
        provenance,
        planned_requests: plan.planned_requests(),
        plan,
        sent_requests: figures.sent,
        interrupted: figures.interrupted,
        elapsed_seconds: elapsed,
        throughput_rps,
        error_rate_pct,
        dataset,
        thresholds: args.thresholds.clone(),
        passed: checks.iter().all(|c| c.passed),
        checks,
        results: totals,
    };
    let written = report::write(&report, &args.out).await?;
    Ok(Finished { report, written })
}

/// The subcommand: runs, prints the verdict, and fails (exit code 1) when a check fails, or for
/// a capacity search when not even its first step held.
pub async fn run(args: &LoadtestArgs) -> Result<(), LoadtestError> {
    if let Shape::Capacity {
        ladder,
        step,
        max_rate_gap_pct,
    } = shape_of(args)?
    {
        let search = capacity::Search {
            ladder,
            step,
            max_rate_gap_pct,
        };
        let written = capacity::run(args, search).await?;
        println!("{}", written.json.display());
        println!("{}", written.text_path.display());
        return match (written.report.knee_rps, written.report.steps.first()) {
            (None, Some(first)) if !first.held && first.checks.iter().any(|c| !c.passed) => {
                Err(LoadtestError::NoCapacity(first.rate))
            }
            _ => Ok(()),
        };
    }
    let Finished { report, written } = execute(args).await?;
    for c in &report.checks {
        let mark = if c.passed { "pass" } else { "FAIL" };
        eprintln!("  {mark}  {:<24} actual {:.2}", c.rule, c.actual);
    }
    println!("{}", written.json.display());
    println!("{}", written.html.display());
    if report.passed {
        Ok(())
    } else {
        let failed: Vec<&str> = report
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.rule.as_str())
            .collect();
        Err(LoadtestError::ChecksFailed(failed.join(", ")))
    }
}
