//! The capacity search's results: `capacity.json` and `capacity.txt` (the same steps and knee as a
//! table people read; also printed on stderr).
use std::{collections::BTreeMap, fmt::Write, path::PathBuf};

use super::decide::{self, Ladder, Resource, StepFigures, Stopped};
use crate::loadtest::{
    driver::RunFigures,
    report::{Provenance, ReportError},
    scenario::Scenario,
    stats::Latency,
    verdict::{Check, Thresholds},
};

/// Everything a search produced, as written to `capacity.json`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityReport {
    #[serde(flatten)]
    pub provenance: Provenance,
    /// Whose mix was sent (every scenario sends the same mix).
    pub scenario: Scenario,
    pub ladder: Ladder,
    pub step_seconds: f64,
    pub max_rate_gap_pct: f64,
    pub thresholds: Thresholds,
    pub steps: Vec<StepReport>,
    /// The highest rate that held below every broken one (refined steps included); `None` when
    /// nothing held below the lowest broken rate.
    pub knee_rps: Option<f64>,
    pub stopped: Stopped,
    /// What gave out on the broken step (only when the SLO broke).
    pub saturated: Option<Resource>,
}

/// One step of the search.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepReport {
    pub rate: f64,
    pub requests: u64,
    pub errors: u64,
    pub elapsed_seconds: f64,
    pub figures: StepFigures,
    pub latency_ms: Latency,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub checks: Vec<Check>,
    /// Every check passed (and the step ran to its end).
    pub held: bool,
}

impl StepReport {
    pub fn new(rate: f64, run: &RunFigures, figures: StepFigures, slo: &Thresholds, gap_pct: f64) -> Self {
        let checks = decide::judge(slo, gap_pct, &figures);
        Self {
            rate,
            requests: run.totals.requests,
            errors: run.totals.errors,
            elapsed_seconds: run.elapsed.as_secs_f64(),
            figures,
            latency_ms: run.totals.latency_ms,
            errors_by_kind: run.totals.errors_by_kind.clone(),
            held: !run.interrupted && checks.iter().all(|c| c.passed),
            checks,
        }
    }
}

/// Paths of the written files and the text that went into `capacity.txt`.
#[derive(Debug, Clone)]
pub struct Written {
    pub json: PathBuf,
    pub text_path: PathBuf,
    pub text: String,
    pub report: CapacityReport,
}

/// Writes `<dir>/capacity.json` and `<dir>/capacity.txt`.
pub async fn write(report: &CapacityReport, dir: &std::path::Path) -> Result<Written, ReportError> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| ReportError::CreateDir(dir.to_owned(), e))?;
    let json = dir.join("capacity.json");
    let text_path = dir.join("capacity.txt");
    let body = serde_json::to_vec_pretty(report).map_err(ReportError::Encode)?;
    tokio::fs::write(&json, body)
        .await
        .map_err(|e| ReportError::Write(json.clone(), e))?;
    let text = render(report);
    tokio::fs::write(&text_path, &text)
        .await
        .map_err(|e| ReportError::Write(text_path.clone(), e))?;
    Ok(Written {
        json,
        text_path,
        text,
        report: report.clone(),
    })
}

/// The table's column names, above the rows of [`step_line`].
pub const HEADER: &str = "    rate  achieved    p95 ms    p99 ms  errors  pool wait  app cores  result";

/// One row of the table: `  1525.0    1519.3      12.4      40.1   0.00%          3       1.21  held`.
pub fn step_line(s: &StepReport) -> String {
    let opt = |v: Option<f64>, digits: usize| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"));
    let failed: Vec<&str> = s.checks.iter().filter(|c| !c.passed).map(|c| c.name).collect();
    let result = if s.held {
        "held".to_owned()
    } else if failed.is_empty() {
        "interrupted".to_owned()
    } else {
        format!("BROKE ({})", failed.join(", "))
    };
    let f = &s.figures;
    format!(
        "{:>8.1}  {:>8.1}  {:>8.1}  {:>8.1}  {:>5.2}%  {:>9}  {:>9}  {result}",
        s.rate,
        f.achieved_rps,
        f.p95_ms,
        f.p99_ms,
        f.error_pct,
        opt(f.signs.pool_waiting_max, 0),
        opt(f.signs.app_cores, 2),
    )
}

/// The whole text report: the settings, one row per step, the knee and what saturated.
pub fn render(r: &CapacityReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "capacity search against {}: {} mix, {} s steps from {} rps (x{}) up to {} rps{}",
        r.provenance.base_url,
        r.scenario.name(),
        r.step_seconds,
        r.ladder.start,
        r.ladder.factor,
        r.ladder.max,
        refine_note(&r.ladder)
    );
    let _ = writeln!(
        out,
        "SLO per step: p95 < {} ms, p99 < {} ms, errors < {} %, achieved rate within {} % of the offered one",
        r.thresholds.max_p95_ms, r.thresholds.max_p99_ms, r.thresholds.max_error_pct, r.max_rate_gap_pct
    );
    let _ = writeln!(out, "{HEADER}");
    for step in &r.steps {
        let _ = writeln!(out, "{}", step_line(step));
    }
    let knee = r.knee_rps.map_or_else(
        || "none (the first step broke)".to_owned(),
        |k| format!("{k} rps"),
    );
    let why = match (r.stopped, r.saturated) {
        (Stopped::SloBroken, Some(resource)) => format!("SLO broken; saturated: {}", resource_name(resource)),
        (Stopped::SloBroken, None) => "SLO broken".to_owned(),
        (Stopped::MaxRate, _) => "every rate up to --max-rate held; the knee is at or above it".to_owned(),
        (Stopped::Interrupted, _) => "interrupted".to_owned(),
    };
    let _ = writeln!(out, "knee: {knee}; {why}");
    out
}

/// How the header names the bisection after the first break (nothing when there is none).
pub fn refine_note(ladder: &Ladder) -> String {
    match ladder.refine {
        0 => String::new(),
        1 => ", then 1 step between the knee and the lowest broken rate".to_owned(),
        n => format!(", then up to {n} steps halving the gap between the knee and the lowest broken rate"),
    }
}

/// How a resource reads in the text report.
pub fn resource_name(r: Resource) -> &'static str {
    match r {
        Resource::DatabasePool => "database pool (requests waited for connections, queries stayed fast)",
        Resource::Postgresql => "PostgreSQL (queries slowed down; the pool waited on them)",
        Resource::AppCpu => "app CPU (the machine's cores were busy, mostly with the API)",
        Resource::LoadGenerator => "load generator (it could not offer the rate)",
        Resource::Unknown => "unknown (no sign in /metrics or the load generator)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadtest::capacity::decide::Signs;

    fn step(rate: f64, held: bool) -> StepReport {
        let figures = StepFigures {
            offered_rps: rate,
            achieved_rps: rate,
            p95_ms: if held { 10.0 } else { 300.0 },
            p99_ms: 20.0,
            error_pct: 0.0,
            send_behind_pct: 0.0,
            vu_waits: 0,
            signs: Signs {
                pool_waiting_max: Some(if held { 0.0 } else { 25.0 }),
                app_cores: Some(0.5),
                machine_cores: 2.0,
                ..Signs::default()
            },
        };
        let slo = Thresholds::default();
        StepReport {
            rate,
            requests: 100,
            errors: 0,
            elapsed_seconds: 1.0,
            latency_ms: Latency::default(),
            errors_by_kind: BTreeMap::new(),
            checks: decide::judge(&slo, 5.0, &figures),
            figures,
            held,
        }
    }

    #[test]
    fn text_and_json_carry_the_steps_and_the_knee() {
        let report = CapacityReport {
            provenance: Provenance::now("http://127.0.0.1:1", 1),
            scenario: Scenario::Peak,
            ladder: Ladder {
                start: 100.0,
                factor: 2.0,
                max: 800.0,
                refine: 1,
            },
            step_seconds: 30.0,
            max_rate_gap_pct: 5.0,
            thresholds: Thresholds::default(),
            steps: vec![
                step(100.0, true),
                step(200.0, true),
                step(400.0, false),
                step(300.0, true),
            ],
            knee_rps: Some(300.0),
            stopped: Stopped::SloBroken,
            saturated: Some(Resource::DatabasePool),
        };
        let text = render(&report);
        assert!(
            text.contains("knee: 300 rps; SLO broken; saturated: database pool"),
            "{text}"
        );
        assert!(
            text.contains("up to 800 rps, then 1 step between the knee"),
            "{text}"
        );
        assert!(text.contains("BROKE (p95)"), "{text}");
        assert_eq!(text.lines().filter(|l| l.ends_with("held")).count(), 3, "{text}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["kneeRps"], 300.0);
        assert_eq!(json["ladder"]["refine"], 1);
        assert_eq!(json["saturated"], "databasePool");
        assert_eq!(json["stopped"], "sloBroken");
        assert_eq!(json["steps"].as_array().unwrap().len(), 4);
        assert_eq!(json["steps"][2]["held"], false);
        assert_eq!(json["steps"][2]["figures"]["signs"]["poolWaitingMax"], 25.0);
    }
}
