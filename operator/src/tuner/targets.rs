//! Which pods to observe and how to reach them: Ready app pods by pod IP (in-cluster), or through
//! the API server's pod proxy (from a laptop, where pod IPs are not routable). The controller's
//! observe step calls [`AppPods::scrape`] when a stack's tuning interval is due.
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams};

use http_body_util::{BodyExt, Limited};

use super::error::TunerError;
use super::observe::{PodAnswer, PodSnapshot};
use super::scrape::{MAX_BODY_BYTES, Scraper, Target, snapshot_of};
use super::transition::PodsSeen;

/// How the operator reaches pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// `http://<podIP>:<port>/metrics` (the operator runs in the cluster).
    PodIp,
    /// `/api/v1/namespaces/<ns>/pods/<name>:<port>/proxy/metrics` through the API server.
    ApiServerProxy,
}

/// The pods to scrape, and the ones left out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodTargets {
    /// Ready pods with an address.
    pub targets: Vec<Target>,
    /// Pods not Ready (or without an IP, or terminating): not asked, listed for the status.
    pub not_ready: Vec<String>,
}

/// Picks the Ready, running, not-terminating pods and builds their metrics URLs.
pub fn targets_from_pods(pods: &[Pod], port: u16, reach: Reach) -> PodTargets {
    let mut out = PodTargets::default();
    for pod in pods {
        let name = pod.name_any();
        let status = pod.status.as_ref();
        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        let running = status.and_then(|s| s.phase.as_deref()) == Some("Running");
        let ip = status
            .and_then(|s| s.pod_ip.as_deref())
            .filter(|ip| !ip.is_empty());
        let terminating = pod.metadata.deletion_timestamp.is_some();
        match (ready && running && !terminating, ip) {
            (true, Some(ip)) => {
                let url = match reach {
                    Reach::PodIp if ip.contains(':') => format!("http://[{ip}]:{port}/metrics"),
                    Reach::PodIp => format!("http://{ip}:{port}/metrics"),
                    Reach::ApiServerProxy => format!(
                        "/api/v1/namespaces/{}/pods/{name}:{port}/proxy/metrics",
                        pod.namespace().unwrap_or_default()
                    ),
                };
                out.targets.push(Target { name, url });
            }
            _ => out.not_ready.push(name),
        }
    }
    out.targets.sort_by(|a, b| a.name.cmp(&b.name));
    out.not_ready.sort();
    out
}

/// Where a stack's app pods are.
#[derive(Debug, Clone)]
pub struct AppPods {
    /// Pods of the stack's namespace.
    pub api: Api<Pod>,
    /// Label selector of the app pods (e.g. `app.kubernetes.io/instance=shop,app.kubernetes.io/component=api`).
    pub selector: String,
    /// Container port serving `/metrics`.
    pub port: u16,
    /// Pod IP (in-cluster) or API-server proxy (laptop).
    pub reach: Reach,
}

impl AppPods {
    /// Lists the pods and scrapes the Ready ones; every asked pod answers with its snapshot or why
    /// there is none. Fails only when the pods cannot be listed.
    pub async fn scrape(&self, source: &MetricsSource) -> Result<Scraped, TunerError> {
        // From the API server's watch cache (`resourceVersion=0`), as the HPA's own informers see
        // pods: a list at the latest version reads every pod of the namespace from etcd, which at
        // 1,000 stacks was the API server's largest cost (docs/benchmarks.md). A list a moment old
        // is fine here: the next interval lists again.
        let list = self
            .api
            .list(&ListParams::default().labels(&self.selector).match_any())
            .await
            .map_err(|e| TunerError::ListPods(e.to_string()))?;
        let targets = targets_from_pods(&list.items, self.port, self.reach);
        let alive = targets.targets.len() + targets.not_ready.len();
        Ok(Scraped {
            answers: source.scrape_all(&targets.targets).await,
            alive: u32::try_from(alive).unwrap_or(u32::MAX),
        })
    }
}

/// The API pods of one scrape.
#[derive(Debug, Clone, Default)]
pub struct Scraped {
    /// The Ready pods' answers.
    pub answers: Vec<PodAnswer>,
    /// Every API pod listed: Ready or not, terminating ones included (each may hold a pool).
    pub alive: u32,
}

impl Scraped {
    /// What the pool swaps need of it: the pods alive, and the tuning generation all of them run
    /// (only when every pod is Ready and answered: a silent one may still run an older one).
    pub fn seen(&self) -> PodsSeen {
        let complete = u32::try_from(self.answers.len()).is_ok_and(|n| n == self.alive);
        let generations: Option<Vec<u64>> = self
            .answers
            .iter()
            .map(|(_, answer)| answer.as_ref().ok().map(|s| s.generation))
            .collect();
        PodsSeen {
            alive: self.alive,
            generation: generations.filter(|_| complete).and_then(|g| g.into_iter().min()),
        }
    }
}

/// Where `/metrics` comes from: direct HTTP or the API server's proxy.
#[derive(Clone)]
pub enum MetricsSource {
    /// Direct HTTP to pod IPs.
    Direct(Scraper),
    /// Through the API server with the operator's credentials, each call bounded by the timeout.
    Proxy(kube::Client, Duration),
}

impl MetricsSource {
    /// Scrapes every target concurrently, answers in the targets' order.
    pub async fn scrape_all(&self, targets: &[Target]) -> Vec<PodAnswer> {
        match self {
            Self::Direct(scraper) => scraper.scrape_all(targets).await,
            Self::Proxy(client, timeout) => {
                let answers = join_all(targets.iter().map(|t| proxy_scrape(client, &t.url, *timeout))).await;
                targets
                    .iter()
                    .zip(answers)
                    .map(|(t, a)| (t.name.clone(), a.map_err(|e| e.to_string())))
                    .collect()
            }
        }
    }
}

/// One pod's `/metrics` through the API server's pod proxy, bounded like a direct scrape: the whole
/// request within `timeout`, a 3xx or any other non-success is an error (never followed), and at
/// most [`MAX_BODY_BYTES`] of body.
async fn proxy_scrape(
    client: &kube::Client,
    path: &str,
    timeout: Duration,
) -> Result<PodSnapshot, TunerError> {
    let unreachable = |message: String| TunerError::Proxy {
        path: path.to_owned(),
        message,
    };
    let request = http::Request::get(path)
        .body(kube::client::Body::empty())
        .map_err(|e| unreachable(e.to_string()))?;
    let read = async {
        let response = client
            .send(request)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(unreachable(format!("HTTP {}", status.as_u16())));
        }
        Limited::new(response.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
            .map(|body| body.to_bytes())
            .map_err(|_| TunerError::TooLarge {
                url: path.to_owned(),
                limit: MAX_BODY_BYTES,
            })
    };
    let body = tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| unreachable(format!("no answer within {timeout:?}")))??;
    snapshot_of(&body)
}

#[cfg(test)]
mod tests;
