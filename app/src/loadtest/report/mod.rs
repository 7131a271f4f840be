//! The results of a run: a JSON document and a self-contained HTML page, written side by side.
pub mod html;
mod svg;

use std::path::{Path, PathBuf};

use super::{
    mix::Dataset,
    scenario::Plan,
    stats::Totals,
    verdict::{Check, Thresholds},
};

/// Where a report's figures came from, at the top of each report: the build that measured, the
/// server it measured, the seed of the request mix and when the run started.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    pub version: &'static str,
    pub base_url: String,
    pub seed: u64,
    pub started_at: String,
}

impl Provenance {
    /// This build against `base_url` with `seed`, starting now.
    pub fn now(base_url: &str, seed: u64) -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION"),
            base_url: base_url.to_owned(),
            seed,
            started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}

/// Everything a run produced, as written to `<scenario>.json`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    #[serde(flatten)]
    pub provenance: Provenance,
    pub plan: Plan,
    pub planned_requests: u64,
    pub sent_requests: u64,
    /// The run was stopped (Ctrl-C / SIGTERM) before the schedule was done.
    pub interrupted: bool,
    pub elapsed_seconds: f64,
    pub throughput_rps: f64,
    pub error_rate_pct: f64,
    pub dataset: DatasetSummary,
    pub thresholds: Thresholds,
    pub checks: Vec<Check>,
    pub passed: bool,
    pub results: Totals,
}

/// How much discovered data the mix drew from.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasetSummary {
    pub sampled_users: usize,
    pub sampled_projects: usize,
    pub sampled_tasks: usize,
    pub total_projects: u64,
    pub total_tasks: u64,
}

impl From<&Dataset> for DatasetSummary {
    fn from(d: &Dataset) -> Self {
        Self {
            sampled_users: d.user_ids.len(),
            sampled_projects: d.project_ids.len(),
            sampled_tasks: d.task_ids.len(),
            total_projects: d.total_projects,
            total_tasks: d.total_tasks,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("could not create the output directory {0}")]
    CreateDir(PathBuf, #[source] std::io::Error),
    #[error("could not write {0}")]
    Write(PathBuf, #[source] std::io::Error),
    #[error("could not encode the report as JSON")]
    Encode(#[source] serde_json::Error),
}

/// Paths of the written files.
#[derive(Debug, Clone)]
pub struct Written {
    pub json: PathBuf,
    pub html: PathBuf,
}

/// Writes `<dir>/<name>.json` and `<dir>/<name>.html` (`name`: the scenario, or `rate`).
pub async fn write(report: &Report, dir: &Path) -> Result<Written, ReportError> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| ReportError::CreateDir(dir.to_owned(), e))?;
    let name = report.plan.name();
    let json = dir.join(format!("{name}.json"));
    let html = dir.join(format!("{name}.html"));
    let body = serde_json::to_vec_pretty(report).map_err(ReportError::Encode)?;
    tokio::fs::write(&json, body)
        .await
        .map_err(|e| ReportError::Write(json.clone(), e))?;
    tokio::fs::write(&html, html::render(report))
        .await
        .map_err(|e| ReportError::Write(html.clone(), e))?;
    Ok(Written { json, html })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::loadtest::{
        mix::Operation,
        scenario::Scenario,
        stats::{Outcome, Recorder},
        verdict::Measured,
    };

    fn report() -> Report {
        let mut recorder = Recorder::new();
        for i in 0..300u64 {
            recorder.record(&Outcome {
                operation: if i % 3 == 0 {
                    Operation::CreateTask
                } else {
                    Operation::GetTask
                },
                latency: Duration::from_millis(5 + i % 40),
                service: Duration::from_millis(5),
                finished_at: Duration::from_millis(i * 10),
                error: (i == 7).then(|| "http_500".to_owned()),
            });
        }
        let results = recorder.finish();
        let thresholds = Thresholds {
            max_p95_ms: 200.0,
            max_p99_ms: 500.0,
            max_error_pct: 1.0,
            min_rps: 100.0,
            min_plan_pct: 90.0,
        };
        let plan = Plan::new(Scenario::Spike, 0.01).unwrap();
        let checks = thresholds.check(&Measured {
            p95_ms: results.latency_ms.p95,
            p99_ms: results.latency_ms.p99,
            error_pct: 0.33,
            rps: 99.0,
            planned_rps: plan.planned_rate(),
        });
        Report {
            provenance: Provenance::now("http://example.test/<x>", 1),
            planned_requests: plan.planned_requests(),
            plan,
            sent_requests: 300,
            interrupted: false,
            elapsed_seconds: 3.0,
            throughput_rps: 99.0,
            error_rate_pct: 0.33,
            dataset: DatasetSummary::from(&Dataset::default()),
            thresholds,
            passed: false,
            checks,
            results,
        }
    }

    #[test]
    fn html_has_both_charts_and_the_verdict() {
        let html = html::render(&report());
        assert!(html.contains(r#"<svg id="latency-chart""#));
        assert!(html.contains(r#"<svg id="throughput-chart""#));
        assert_eq!(html.matches("<polyline").count(), 6);
        assert!(html.contains("FAILED"));
        assert!(html.contains("throughput &gt; 126 rps (90 % of the planned 140 rps)"));
        assert!(html.contains("http://example.test/&lt;x&gt;"));
        assert!(!html.contains("<script"));
    }

    #[tokio::test]
    async fn json_and_html_are_written_side_by_side() {
        let dir = std::env::temp_dir().join(format!("perfstack-report-{}", std::process::id()));
        let written = write(&report(), &dir).await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&written.json).unwrap()).unwrap();
        assert_eq!(written.json, dir.join("spike.json"));
        assert_eq!(json["plan"]["scenario"], "spike");
        assert_eq!(json["plan"]["stages"][1]["vus"], 100);
        assert_eq!(json["results"]["errorsByKind"]["http_500"], 1);
        assert_eq!(json["results"]["timeline"].as_array().unwrap().len(), 3);
        assert_eq!(json["checks"][3]["passed"], false);
        assert!(
            std::fs::read_to_string(&written.html)
                .unwrap()
                .starts_with("<!DOCTYPE html>")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
