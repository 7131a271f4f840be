//! Command line: `run` (the controller), `crdgen` (print the CRD), `local` (tune a local app) and
//! `monitoring-rules` (print a stack's SLO rules).
use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};

use crate::telemetry::LogFormat;

/// perfstack-operator: deploys and tunes perfstack stacks.
#[derive(Debug, Parser)]
#[command(
    name = "perfstack-operator",
    version,
    about = "Deploys and tunes perfstack stacks"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller against the cluster in KUBECONFIG or the in-cluster config.
    Run(RunArgs),
    /// Print the PerformanceStack CustomResourceDefinition as YAML.
    Crdgen,
    /// Tune the pool of an app running on this machine (no cluster): scrape its /metrics,
    /// decide, write the tuning file it watches, print every decision with its reason.
    Local(crate::tuner::local::LocalArgs),
    /// Print the Prometheus rule file (SLO alerts) the operator puts into a stack's PrometheusRule.
    MonitoringRules(crate::rule_file::RuleFileArgs),
}

/// Options of `run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Namespaces to watch, comma separated; all namespaces when empty.
    #[arg(long, env = "WATCH_NAMESPACES", value_delimiter = ',', default_value = "")]
    pub namespaces: Vec<String>,
    /// Address of the HTTP server for /metrics, /healthz and /readyz.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Reconcile only while holding the Lease, so several replicas can run.
    #[arg(long, env = "LEADER_ELECTION", value_parser = clap::builder::FalseyValueParser::new())]
    pub leader_election: bool,
    /// Name of the leader-election Lease.
    #[arg(long, env = "LEASE_NAME", default_value = "perfstack-operator")]
    pub lease_name: String,
    /// Namespace of the Lease; defaults to POD_NAMESPACE, then the kubeconfig's namespace.
    #[arg(long, env = "LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "json")]
    pub log_format: LogFormat,
    /// How the tuner reaches the app pods' /metrics: by pod IP (in a cluster), through the API
    /// server's pod proxy (from a laptop), or auto (pod IP when running in a cluster).
    #[arg(long, env = "TUNER_SCRAPE", value_enum, default_value = "auto")]
    pub tuner_scrape: TunerScrape,
    /// Reconciles that may run at once across all stacks (a stack is never reconciled twice at
    /// once); more queue until one finishes. Bounds the operator's connections to the API server and
    /// its memory when many stacks change together (start-up, a chart upgrade). 0: no limit.
    #[arg(long, env = "MAX_CONCURRENT_RECONCILES", default_value_t = DEFAULT_MAX_CONCURRENT_RECONCILES)]
    pub max_concurrent_reconciles: u16,
}

/// Default of `--max-concurrent-reconciles`.
pub const DEFAULT_MAX_CONCURRENT_RECONCILES: u16 = 8;

/// How the tuner reaches pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TunerScrape {
    /// Pod IP in a cluster, pod proxy outside.
    Auto,
    /// `http://<podIP>:<port>/metrics`.
    PodIp,
    /// `/api/v1/namespaces/<ns>/pods/<pod>:<port>/proxy/metrics`.
    Proxy,
}

impl RunArgs {
    /// The namespaces to watch, without empty entries; empty means all.
    pub fn watched_namespaces(&self) -> Vec<String> {
        self.namespaces
            .iter()
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_flags_parse_as_the_chart_passes_them() {
        let cli = Cli::try_parse_from([
            "perfstack-operator",
            "run",
            "--namespaces",
            "a, b,,",
            "--metrics-addr",
            "127.0.0.1:9090",
            "--leader-election",
            "--lease-name",
            "lease",
            "--lease-namespace",
            "ops",
            "--log-format",
            "text",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("run expected")
        };
        assert_eq!(args.watched_namespaces(), ["a", "b"]);
        assert_eq!(args.metrics_addr.port(), 9090);
        assert!(args.leader_election);
        assert_eq!(args.lease_name, "lease");
        assert_eq!(args.lease_namespace.as_deref(), Some("ops"));
        assert_eq!(args.log_format, LogFormat::Text);
    }

    #[test]
    fn run_defaults_watch_everything_without_leader_election() {
        let Command::Run(args) = Cli::try_parse_from(["perfstack-operator", "run"])
            .unwrap()
            .command
        else {
            panic!("run expected")
        };
        assert!(args.watched_namespaces().is_empty());
        assert!(!args.leader_election);
        assert_eq!(args.metrics_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(args.log_format, LogFormat::Json);
    }
}
