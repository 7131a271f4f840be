//! What every reconcile shares: the client, the children as the watches see them, the autoscaling API
//! the cluster serves, Events, metrics, failure counts for backoff, and the tuner.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use kube::{Api, Client, Resource, ResourceExt};

use super::events::StackEvents;
use super::watched::WatchedChildren;
use crate::cli::TunerScrape;
use crate::crd::PerformanceStack;
use crate::metrics::Metrics;
use crate::tuner::registry::TuningRegistry;
use crate::tuner::scrape::Scraper;
use crate::tuner::targets::{MetricsSource, Reach};

/// How long one pod may take to answer `/metrics`.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// Which HorizontalPodAutoscaler API the cluster serves (discovered at start-up).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AutoscalingApi {
    /// autoscaling/v2 (Kubernetes 1.23 and later).
    #[default]
    V2,
    /// Only autoscaling/v2beta2 (older clusters).
    V2beta2,
    /// Neither; the API runs a fixed number of replicas.
    Unavailable,
}

impl AutoscalingApi {
    /// Asks the API server which autoscaling versions it serves.
    pub async fn discover(client: &Client) -> Result<Self, kube::Error> {
        let groups = client.list_api_groups().await?;
        let versions: Vec<String> = groups
            .groups
            .iter()
            .filter(|g| g.name == "autoscaling")
            .flat_map(|g| g.versions.iter().map(|v| v.version.clone()))
            .collect();
        Ok(if versions.iter().any(|v| v == "v2") {
            Self::V2
        } else if versions.iter().any(|v| v == "v2beta2") {
            Self::V2beta2
        } else {
            Self::Unavailable
        })
    }
}

/// The tuner wired into the controller.
pub struct Tuning {
    /// Per-stack tuners.
    pub registry: TuningRegistry,
    /// How pods are reached.
    pub reach: Reach,
    /// How their metrics are read.
    pub source: MetricsSource,
}

impl Tuning {
    /// With `Auto`, pods are scraped by IP in a cluster (KUBERNETES_SERVICE_HOST set) and through
    /// the API server's pod proxy with the operator's credentials from a laptop.
    pub fn new(client: &Client, scrape: TunerScrape) -> Self {
        let by_ip = match scrape {
            TunerScrape::Auto => std::env::var_os("KUBERNETES_SERVICE_HOST").is_some(),
            TunerScrape::PodIp => true,
            TunerScrape::Proxy => false,
        };
        let direct = Scraper::new(SCRAPE_TIMEOUT).ok().filter(|_| by_ip);
        let (reach, source) = match direct {
            Some(scraper) => (Reach::PodIp, MetricsSource::Direct(scraper)),
            None => (
                Reach::ApiServerProxy,
                MetricsSource::Proxy(client.clone(), SCRAPE_TIMEOUT),
            ),
        };
        Self::with_source(reach, source)
    }

    /// A tuner reaching pods as given (tests: pod IPs on 127.0.0.1).
    pub fn with_source(reach: Reach, source: MetricsSource) -> Self {
        Self {
            registry: TuningRegistry::new(),
            reach,
            source,
        }
    }
}

/// Everything a reconcile needs, shared by all reconciles.
pub struct Context {
    /// Client for the Kubernetes API.
    pub client: Client,
    /// The children as the controller's watches last saw them: observe reads them there instead of
    /// with a GET each (none: every read is a GET).
    pub watched: WatchedChildren,
    /// The autoscaling API version HPAs are written with.
    pub autoscaling: AutoscalingApi,
    /// Records Events about stacks.
    pub events: StackEvents,
    /// Operator metrics (reconciles, errors, durations, stacks by phase).
    pub metrics: Arc<Metrics>,
    /// Consecutive failed reconciles per stack (namespace/name), for exponential backoff.
    pub failures: Mutex<HashMap<String, u32>>,
    /// The pool/HPA tuner; `None` writes spec.pool and spec.app replicas unchanged.
    pub tuning: Option<Tuning>,
}

impl Context {
    /// A context with no failures recorded yet.
    pub fn new(
        client: Client,
        autoscaling: AutoscalingApi,
        events: StackEvents,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            client,
            watched: WatchedChildren::none(),
            autoscaling,
            events,
            metrics,
            failures: Mutex::new(HashMap::new()),
            tuning: None,
        }
    }

    /// The same context with the tuner wired in.
    pub fn with_tuning(mut self, tuning: Tuning) -> Self {
        self.tuning = Some(tuning);
        self
    }

    /// The same context reading children from the stores of `watched`.
    pub fn with_watched(mut self, watched: WatchedChildren) -> Self {
        self.watched = watched;
        self
    }

    /// Counts a failed reconcile of `key`; returns how many failed in a row.
    pub fn record_failure(&self, key: String) -> u32 {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let count = failures.entry(key).or_insert(0);
        *count = count.saturating_add(1);
        *count
    }

    /// The API of kind `K` in `namespace`.
    pub fn api<K>(&self, namespace: &str) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Forgets the failures of `key` after a successful reconcile.
    pub fn clear_failures(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}

/// `namespace/name`: a stack's key for per-stack state (failure counts, the tuner).
pub fn stack_key(stack: &PerformanceStack) -> String {
    format!("{}/{}", stack.namespace().unwrap_or_default(), stack.name_any())
}
