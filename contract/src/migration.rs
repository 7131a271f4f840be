//! The report of `perfstack-app migrate`: exactly one line of JSON, on stdout and in the summary file
//! ([`crate::env::MIGRATE_SUMMARY_FILE`]; the migration Job uses `/dev/termination-log`, so the
//! operator reads it from the pod's termination message).
//!
//! Success: `{"migrationsApplied":1,"indexesCreated":["idx_users_email_active"],"indexesRepaired":[],"indexesValid":[]}`.
//! Failure: `{"error":"<message without secrets>"}`.
use serde::{Deserialize, Serialize};

/// Longest report the operator keeps (the kubelet caps termination messages at 4096 bytes).
pub const MAX_REPORT_BYTES: usize = 1024;

/// What a successful run did.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct MigrationSummary {
    /// Schema migrations applied by this run (required: it tells a summary from other JSON).
    pub migrations_applied: u32,
    /// Indexes that did not exist and were built.
    #[serde(default)]
    pub indexes_created: Vec<String>,
    /// Indexes found invalid (an interrupted build) or with an older definition, and rebuilt.
    #[serde(default)]
    pub indexes_repaired: Vec<String>,
    /// Indexes that were already valid.
    #[serde(default)]
    pub indexes_valid: Vec<String>,
}

/// The line `migrate` reports.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(untagged)]
pub enum MigrationReport {
    /// The run failed; the message never carries secrets.
    Failed {
        /// Why, e.g. `could not build index idx_tasks_search: ...`.
        error: String,
    },
    /// The run succeeded.
    Succeeded(MigrationSummary),
}

impl MigrationReport {
    /// The one JSON line (no newline).
    pub fn to_line(&self) -> String {
        // Serializing these plain structs cannot fail; an empty object would still parse back.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }

    /// Reads a report, e.g. a termination message. `None` for text that is not a report (a pod
    /// killed before it wrote one, or another program's message).
    pub fn parse(text: &str) -> Option<Self> {
        let line = text.trim();
        if !line.starts_with('{') {
            return None;
        }
        serde_json::from_str(line).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_round_trips_in_the_documented_shape() {
        let report = MigrationReport::Succeeded(MigrationSummary {
            migrations_applied: 1,
            indexes_created: vec!["idx_users_email_active".into()],
            ..MigrationSummary::default()
        });
        let line = report.to_line();
        assert_eq!(
            line,
            r#"{"migrationsApplied":1,"indexesCreated":["idx_users_email_active"],"indexesRepaired":[],"indexesValid":[]}"#
        );
        assert_eq!(MigrationReport::parse(&format!("{line}\n")), Some(report));
    }

    #[test]
    fn a_failure_round_trips_and_is_not_taken_for_a_summary() {
        let report = MigrationReport::Failed {
            error: "could not build index idx_tasks_search: timeout".into(),
        };
        assert_eq!(
            report.to_line(),
            r#"{"error":"could not build index idx_tasks_search: timeout"}"#
        );
        assert_eq!(MigrationReport::parse(&report.to_line()), Some(report));
    }

    #[test]
    fn other_text_is_no_report() {
        assert_eq!(MigrationReport::parse(""), None);
        assert_eq!(MigrationReport::parse("OOMKilled"), None);
        assert_eq!(MigrationReport::parse("{not json"), None);
        assert_eq!(MigrationReport::parse("{}"), None);
    }

    #[test]
    fn a_newer_app_may_add_fields() {
        let line = r#"{"migrationsApplied":0,"indexesCreated":[],"indexesRepaired":[],"indexesValid":["a"],"seconds":1.5}"#;
        assert!(
            matches!(MigrationReport::parse(line), Some(MigrationReport::Succeeded(s)) if s.indexes_valid == ["a"])
        );
    }
}
