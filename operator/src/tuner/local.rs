//! `perfstack-operator local`: the observe-decide-act loop against an app on this machine.
//!
//! Pool only (one process, replicas fixed at 1): every interval it scrapes the app's `/metrics`,
//! aggregates the interval, asks [`Tuner`] and, when the pool settings change, writes the tuning
//! file (the contract's [`TuningFile`]) atomically with the next `generation`. Every decision is
//! printed with its reason.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use perfstack_contract::tuning::{PoolSettings, TuningFile};

use super::budget::{ConnectionBudget, Transit};
use super::budget::{PoolBounds, ReplicaBounds};
use super::decide::{Decision, Tuner};
use super::error::TunerError;
use super::observe::{PodSnapshot, aggregate};
use super::scrape::{Scraper, Target};
use super::spec::{Settings, SloSpec, TuningSpec};

/// Command-line flags of `perfstack-operator local`.
#[derive(Debug, Clone, clap::Args)]
pub struct LocalArgs {
    /// Base URL of the running app; its `/metrics` is scraped.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub app_url: String,
    /// Tuning file the app watches (`TUNING_FILE` of the app).
    #[arg(long, default_value = ".run/tuning.yaml")]
    pub tuning_file: PathBuf,
    /// Time between decisions (e.g. `30s`, `500ms`, `2m`).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub interval: Duration,
    /// PostgreSQL `max_connections` (services.sh starts it with 200; PostgreSQL's default is 100).
    #[arg(long, default_value_t = 100)]
    pub db_max_connections: u32,
    /// Connections to leave to everything but the app (migrations, psql, superuser reserve).
    #[arg(long, default_value_t = 10)]
    pub reserved: u32,
    /// Smallest pool the tuner may set.
    #[arg(long, default_value_t = 2)]
    pub pool_min: u32,
    /// Largest pool the tuner may set.
    #[arg(long, default_value_t = 50)]
    pub pool_max: u32,
    /// p95 latency objective (e.g. `200ms`).
    #[arg(long, default_value = "200ms", value_parser = parse_duration)]
    pub slo_p95: Duration,
    /// How long the pool must look oversized before it shrinks.
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    pub stabilization: Duration,
    /// Stop after this many decisions (default: run until interrupted).
    #[arg(long)]
    pub iterations: Option<u64>,
}

/// Parses `250ms`, `30s`, `5m`, `1h` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected e.g. 30s, 500ms, 2m"))?;
    let millis = match unit {
        "ms" => n,
        "" | "s" => n.saturating_mul(1000),
        "m" => n.saturating_mul(60_000),
        "h" => n.saturating_mul(3_600_000),
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    if millis == 0 {
        return Err(format!("{text:?}: must be positive"));
    }
    Ok(Duration::from_millis(millis))
}

impl LocalArgs {
    fn spec(&self) -> TuningSpec {
        let mut spec = TuningSpec::new(
            PoolBounds {
                min: self.pool_min,
                max: self.pool_max,
            },
            ReplicaBounds { min: 1, max: 1 },
            ConnectionBudget {
                max_connections: self.db_max_connections,
                reserved: self.reserved,
                source: Default::default(),
                transit: Transit::None,
            },
        );
        spec.slo = SloSpec {
            p95: self.slo_p95,
            ..SloSpec::default()
        };
        spec.scale_down_stabilization = self.stabilization;
        spec
    }
}

/// Starting point: the tuning file if there is one, else what the app reports, else defaults.
fn initial_file(existing: Option<TuningFile>, app: Option<&PodSnapshot>, spec: &TuningSpec) -> TuningFile {
    if let Some(file) = existing {
        return file;
    }
    let mut pool = PoolSettings::default();
    if let Some(snap) = app.filter(|s| s.pool_max >= 1.0) {
        pool.max_connections = snap.pool_max as u32;
        pool.min_connections = (snap.pool_min.max(0.0) as u32).min(pool.max_connections);
    }
    pool.max_connections = pool
        .max_connections
        .clamp(spec.pool.min.max(1), spec.pool.max.max(1));
    pool.min_connections = pool.min_connections.min(pool.max_connections);
    TuningFile {
        generation: app.map_or(0, |s| s.generation),
        pool,
    }
}

/// Runs the loop; `report` receives one line per decision (stdout in the binary).
pub async fn run(args: &LocalArgs, mut report: impl FnMut(&str)) -> Result<(), TunerError> {
    let spec = args.spec();
    let scraper = Scraper::new((args.interval / 2).clamp(Duration::from_secs(1), Duration::from_secs(5)))?;
    let target = Target {
        name: "local".into(),
        url: format!("{}/metrics", args.app_url.trim_end_matches('/')),
    };
    let targets = [target];
    // The app may still be starting (`make run` starts both): give it one interval to answer.
    let deadline = Instant::now() + args.interval;
    let mut first = scraper.scrape_all(&targets).await;
    while first.iter().any(|(_, a)| a.is_err()) && Instant::now() < deadline {
        tokio::time::sleep((args.interval / 10).min(Duration::from_secs(1))).await;
        first = scraper.scrape_all(&targets).await;
    }
    let first_snapshot = first.first().and_then(|(_, a)| a.as_ref().ok());
    let mut file = initial_file(read_file(&args.tuning_file)?, first_snapshot, &spec);
    let settings = Settings {
        pool_min: file.pool.min_connections,
        pool_max: file.pool.max_connections,
        hpa_min: 1,
        hpa_max: 1,
        generation: file.generation,
    };
    let plan = spec.budget.plan(spec.replicas, spec.pool);
    report(&format!(
        "perfstack tuner (local): {} every {:?}; pool {}..{} at generation {}; budget {}: {plan}",
        targets[0].url,
        args.interval,
        settings.pool_min,
        settings.pool_max,
        settings.generation,
        plan.verdict.reason()
    ));
    let mut tuner = Tuner::new(spec, settings);
    let mut baseline = snapshots(&first);
    let started = Instant::now();
    let mut last = started;
    let mut done = 0u64;
    while args.iterations.is_none_or(|n| done < n) {
        tokio::time::sleep(args.interval).await;
        let answers = scraper.scrape_all(&targets).await;
        let now = Instant::now();
        let obs = aggregate(&baseline, &answers, now.duration_since(last).as_secs_f64());
        last = now;
        baseline = snapshots(&answers);
        for (name, answer) in &answers {
            if let Err(e) = answer {
                report(&format!("{name}: no answer: {e}"));
            }
        }
        let decision = tuner.step(&obs, now.duration_since(started));
        if decision.pool_settings_changed() {
            file = decision.settings.tuning_file(&file.pool);
            write_file(&file, &args.tuning_file)?;
        }
        report(&describe(&decision, now.duration_since(started), &obs));
        done += 1;
    }
    Ok(())
}

fn snapshots(answers: &[super::observe::PodAnswer]) -> BTreeMap<String, PodSnapshot> {
    answers
        .iter()
        .filter_map(|(name, a)| a.as_ref().ok().map(|s| (name.clone(), s.clone())))
        .collect()
}

fn describe(d: &Decision, at: Duration, obs: &super::observe::Observation) -> String {
    let action = if d.pool_settings_changed() {
        format!(
            "pool {}..{} -> {}..{}, wrote generation {}",
            d.before.pool_min,
            d.before.pool_max,
            d.settings.pool_min,
            d.settings.pool_max,
            d.settings.generation
        )
    } else {
        format!("pool {}..{} kept", d.settings.pool_min, d.settings.pool_max)
    };
    format!(
        "[{:>5}s] {:.1} rps, p95 {}, errors {:.2} %: {action} | {}",
        at.as_secs(),
        obs.requests_per_second,
        obs.p95.map_or_else(|| "n/a".into(), super::hpa::ms),
        obs.error_rate * 100.0,
        d.reason
    )
}

/// Reads the tuning file at `path`; `Ok(None)` when it does not exist yet.
pub fn read_file(path: &Path) -> Result<Option<TuningFile>, TunerError> {
    match std::fs::read_to_string(path) {
        Ok(text) => TuningFile::parse(&text)
            .map(Some)
            .map_err(|source| file_error(path, source)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(io_error(path, source)),
    }
}

/// Writes `file` to `path` atomically: a temporary file in the same directory, flushed to disk,
/// then renamed over the old one (the app reads the old or the new file, never a mix).
pub fn write_file(file: &TuningFile, path: &Path) -> Result<(), TunerError> {
    file.validate().map_err(|source| file_error(path, source))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
    let name = path
        .file_name()
        .map_or_else(|| "tuning.yaml".into(), |n| n.to_string_lossy().into_owned());
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&temp)?;
        f.write_all(file.render().as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if let Err(source) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(io_error(path, source));
    }
    Ok(())
}

fn file_error(path: &Path, source: perfstack_contract::tuning::TuningFileError) -> TunerError {
    TunerError::TuningFile {
        path: path.to_owned(),
        source,
    }
}

fn io_error(path: &Path, source: std::io::Error) -> TunerError {
    TunerError::TuningFileIo {
        path: path.to_owned(),
        source,
    }
}

/// The subcommand on the caller's runtime: runs the loop until Ctrl-C or `--iterations`.
pub async fn command(args: LocalArgs) -> std::process::ExitCode {
    let result = tokio::select! {
        r = run(&args, |line| println!("{line}")) => r,
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("perfstack-operator local: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The subcommand from synchronous code: [`command`] on a runtime of its own.
pub fn main(args: LocalArgs) -> std::process::ExitCode {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(command(args)),
        Err(e) => {
            eprintln!("perfstack-operator local: starting the runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests;
