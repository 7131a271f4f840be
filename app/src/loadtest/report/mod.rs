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

/// Everything a run produced, as written to `<scenario>.json`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub version: &'static str,
    pub base_url: String,
    pub seed: u64,
    pub started_at: String,
    pub plan: Plan,
    pub planned_requests: u64,
    pub sent_requests: u64,
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

/// Writes `<dir>/<scenario>.json` and `<dir>/<scenario>.html`.
pub async fn write(report: &Report, dir: &Path) -> Result<Written, ReportError> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| ReportError::CreateDir(dir.to_owned(), e))?;
    let name = report.plan.scenario.name();
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
