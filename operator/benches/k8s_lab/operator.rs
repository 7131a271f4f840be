//! The operator under test: a child process of the bench, its /metrics, and its memory.
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use perfstack_operator::kube_requests::WRITE_VERBS;
use tokio::process::{Child, Command};

/// A running `perfstack-operator run`, watching one namespace, without leader election.
pub struct Operator {
    child: Child,
    metrics_url: String,
}

impl Operator {
    pub async fn start(binary: &Path, namespace: &str, port: u16, log: &Path) -> anyhow::Result<Self> {
        let log_path = log;
        let log = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = Command::new(binary)
            .args(["run", "--namespaces", namespace, "--log-format", "json"])
            .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "info")
            .env("POD_NAME", "bench-operator")
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let metrics_url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "the operator exited ({status}) before it was ready; see {}",
                    log_path.display()
                );
            }
            let ready = reqwest::get(format!("{metrics_url}/readyz")).await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Ok(Self { child, metrics_url });
            }
            if Instant::now() > deadline {
                bail!(
                    "the operator did not become ready in 30 s; see {}",
                    log_path.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn pid(&self) -> anyhow::Result<u32> {
        self.child.id().context("the operator exited")
    }

    /// Current and peak resident memory in KiB (VmRSS, VmHWM).
    pub fn memory(&self) -> anyhow::Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("{name} missing in /proc status"))
        };
        Ok(Memory {
            rss_kib: field("VmRSS:")?,
            peak_kib: field("VmHWM:")?,
        })
    }

    /// CPU time used so far, user + system (from /proc/PID/stat, in clock ticks of 1/100 s, the
    /// USER_HZ of every mainstream Linux build).
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()?))?;
        // Fields after the command name (which may contain spaces) start at the state, field 3.
        let after = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .context("unreadable /proc stat")?;
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| -> anyhow::Result<f64> {
            Ok(fields.get(i).context("short /proc stat")?.parse::<f64>()?)
        };
        // utime and stime are fields 14 and 15, i.e. 11 and 12 after the state.
        Ok((ticks(11)? + ticks(12)?) / 100.0)
    }

    pub async fn counters(&self) -> anyhow::Result<Counters> {
        let text = reqwest::get(format!("{}/metrics", self.metrics_url))
            .await?
            .error_for_status()?
            .text()
            .await?;
        Ok(Counters::parse(&text))
    }

    /// SIGTERM, then wait for the graceful shutdown.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let pid = self.pid()?;
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await?;
        match tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => self.child.kill().await?,
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Memory {
    pub rss_kib: u64,
    pub peak_kib: u64,
}

/// The operator's reconcile count and its Kubernetes API requests by (verb, resource).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counters {
    pub reconciles: f64,
    pub requests: BTreeMap<(String, String), f64>,
}

impl Counters {
    fn parse(text: &str) -> Self {
        let mut counters = Self::default();
        for line in text.lines() {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            if series == "perfstack_operator_reconciles_total" {
                counters.reconciles = value;
            } else if let Some(labels) = series
                .strip_prefix("perfstack_operator_kube_requests_total{")
                .and_then(|l| l.strip_suffix('}'))
            {
                let label = |name: &str| {
                    labels
                        .split(',')
                        .find_map(|kv| kv.strip_prefix(&format!("{name}=\"")))
                        .map(|v| v.trim_end_matches('"').to_owned())
                        .unwrap_or_default()
                };
                counters
                    .requests
                    .insert((label("verb"), label("resource")), value);
            }
        }
        counters
    }

    pub fn writes(&self) -> f64 {
        self.sum(|verb| WRITE_VERBS.contains(&verb))
    }

    /// Writes per reconcile (0 without reconciles).
    pub fn writes_per_reconcile(&self) -> f64 {
        self.writes() / self.reconciles.max(1.0)
    }

    /// Reads per reconcile (0 without reconciles).
    pub fn reads_per_reconcile(&self) -> f64 {
        self.reads() / self.reconciles.max(1.0)
    }

    pub fn reads(&self) -> f64 {
        self.sum(|verb| !WRITE_VERBS.contains(&verb) && verb != "watch")
    }

    fn sum(&self, pick: impl Fn(&str) -> bool) -> f64 {
        self.requests
            .iter()
            .filter(|((verb, _), _)| pick(verb))
            .map(|(_, n)| n)
            // A sum of nothing is -0.0; + 0.0 makes it print as 0.
            .sum::<f64>()
            + 0.0
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            reconciles: self.reconciles - earlier.reconciles,
            requests: self
                .requests
                .iter()
                .map(|(k, n)| (k.clone(), n - earlier.requests.get(k).copied().unwrap_or(0.0)))
                .filter(|(_, n)| *n > 0.0)
                .collect(),
        }
    }

    /// The write requests as `verb resource: n` items.
    pub fn write_breakdown(&self) -> String {
        self.breakdown(|verb| WRITE_VERBS.contains(&verb), 1.0)
    }

    /// The reads (GET and LIST) per reconcile as `verb resource: n` items.
    pub fn read_breakdown_per_reconcile(&self) -> String {
        let reads = |verb: &str| !WRITE_VERBS.contains(&verb) && verb != "watch";
        self.breakdown(reads, self.reconciles.max(1.0))
    }

    /// Every GET.
    pub fn gets(&self) -> f64 {
        self.sum(|verb| verb == "get")
    }

    /// GETs of the stacks' children per reconcile (0 without reconciles): every GET but those of pods
    /// (the tuner's scrapes through the pod proxy) and of the stacks themselves.
    pub fn child_gets_per_reconcile(&self) -> f64 {
        let child_gets: f64 = self
            .requests
            .iter()
            .filter(|((verb, resource), _)| {
                verb == "get" && !resource.starts_with("pods") && !resource.starts_with("performancestacks")
            })
            .map(|(_, n)| n)
            .sum();
        // A sum of nothing is -0.0; + 0.0 makes it print as 0.
        (child_gets + 0.0) / self.reconciles.max(1.0)
    }

    /// The GETs per `stacks` stacks as `resource: n` items.
    pub fn gets_breakdown_per(&self, stacks: usize) -> String {
        self.breakdown(|verb| verb == "get", stacks.max(1) as f64)
            .replace("get ", "")
    }

    /// The requests whose verb passes `pick`, each count divided by `per`, as `verb resource: n` items.
    fn breakdown(&self, pick: impl Fn(&str) -> bool, per: f64) -> String {
        let items: Vec<String> = self
            .requests
            .iter()
            .filter(|((verb, _), n)| pick(verb) && **n > 0.0)
            .map(|((verb, resource), n)| format!("{verb} {resource}: {}", round2(n / per)))
            .collect();
        if items.is_empty() {
            "none".into()
        } else {
            items.join(", ")
        }
    }
}

/// `n` with at most two decimals, and none when it is whole.
fn round2(n: f64) -> String {
    let text = format!("{n:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}
