//! `perfstack-operator monitoring-rules`: the Prometheus rule file of a stack, exactly as its
//! PrometheusRule carries it (`children::monitoring::rules`), so `promtool check rules` and
//! `promtool test rules` run against the operator's real output (scripts/test.d/46-monitoring-rules.sh).
use std::path::PathBuf;

use clap::Args;

use crate::children::monitoring::rules;
use crate::controller::validate::validate;
use crate::crd::PerformanceStack;

/// Options of `monitoring-rules`.
#[derive(Debug, Clone, Args)]
pub struct RuleFileArgs {
    /// A PerformanceStack manifest (YAML); without metadata.namespace it is taken to live in `default`.
    #[arg(long)]
    pub stack: PathBuf,
}

/// Why the rule file could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RuleFileError {
    #[error("reading {0}")]
    Read(String, #[source] std::io::Error),
    #[error("{0} is not a PerformanceStack")]
    Parse(String, #[source] Box<serde_saphyr::Error>),
    #[error("invalid stack")]
    Invalid(#[source] crate::controller::validate::InvalidSpec),
    #[error("rendering the rules")]
    Render(#[source] serde_saphyr::ser::Error),
}

/// The rule file (`groups:`) of the stack in `args.stack`.
pub fn render(args: &RuleFileArgs) -> Result<String, RuleFileError> {
    let path = args.stack.display().to_string();
    let text = std::fs::read_to_string(&args.stack).map_err(|e| RuleFileError::Read(path.clone(), e))?;
    let mut stack: PerformanceStack =
        serde_saphyr::from_str(&text).map_err(|e| RuleFileError::Parse(path, Box::new(e)))?;
    let meta = &mut stack.metadata;
    meta.namespace.get_or_insert_with(|| "default".into());
    meta.uid.get_or_insert_with(|| "rule-file".into());
    let validated = validate(&stack).map_err(RuleFileError::Invalid)?;
    let file = serde_json::json!({ "groups": rules::groups(&validated) });
    crate::to_yaml(&file).map_err(RuleFileError::Render)
}
