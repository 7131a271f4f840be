//! Tune: the tuner's Act step inside the reconcile. Before apply it puts the settings in force
//! (tuned in mode Auto, else the spec's — always within the connection budget) into the validated
//! stack; after apply it runs the tuning interval when due, re-applies the tuning ConfigMap and the
//! HPA when the decision changed them, records Events with the reason, and fills `status.tuning`
//! and the ConnectionBudget condition. Decision logic lives in `crate::tuner` (pure).
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Api, Client};

use super::apply::{self, Applied};
use super::{Context, Error, status};
use crate::build::{TUNING_KEY, ValidatedStack, app};
use crate::cli::TunerScrape;
use crate::crd::{PerformanceStack, StackStatus};
use crate::tuner::act::Mode;
use crate::tuner::effective::{StartingPool, effective_settings};
use crate::tuner::registry::{TickRequest, TuningRegistry};
use crate::tuner::scrape::Scraper;
use crate::tuner::stack::AppPods;
use crate::tuner::targets::{MetricsSource, Reach};
use crate::tuner::tuning_file::{PoolTuning, TuningFile};
use crate::tuner::{BudgetPlan, Settings, TuningSpec, from_crd};

/// How long one pod may take to answer `/metrics`.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

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

/// What the tuner needs from a stack for this reconcile.
pub struct Prepared {
    spec: TuningSpec,
    mode: Mode,
    /// `spec.tuning.intervalSeconds`.
    pub interval: Duration,
    timeouts: PoolTuning,
    plan: BudgetPlan,
}

impl Prepared {
    /// Whether the tuner runs for this stack.
    pub fn active(&self) -> bool {
        self.mode != Mode::Off
    }
}

/// After an operator restart, picks up the pool the tuner had put in force from the live tuning
/// ConfigMap (mode Auto only), so a restart does not undo the tuning. HPA bounds restart from the
/// spec. A missing or unreadable ConfigMap leaves the spec's values.
pub async fn recover(tuning: &Tuning, ctx: &Context, key: &str, validated: &ValidatedStack) {
    if tuning.registry.knows(key) || from_crd::mode(&validated.spec) != Mode::Auto {
        return;
    }
    let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &validated.namespace);
    let name = validated.names().tuning();
    let Ok(Some(live)) = config_maps.get_opt(&name).await else {
        return;
    };
    let Some(text) = live.data.as_ref().and_then(|d| d.get(TUNING_KEY)) else {
        return;
    };
    let Ok(file) = TuningFile::parse(text, std::path::Path::new(&name)) else {
        tracing::warn!(configmap = %name, "tuning ConfigMap unreadable; starting from spec.pool");
        return;
    };
    let spec = from_crd::tuning_spec(&validated.spec);
    let plan = spec.budget.plan(spec.replicas, spec.pool);
    let settings = Settings {
        pool_min: file.pool.min_connections,
        pool_max: file.pool.max_connections,
        hpa_min: plan.replicas_min,
        hpa_max: plan.replicas_max,
        generation: file.generation,
    };
    tracing::info!(configmap = %name, generation = file.generation, "tuning picked up from the live ConfigMap");
    tuning.registry.seed(key, spec, settings);
}

/// Before apply: sets `validated.tuned` to the settings to write.
pub fn prepare(tuning: &Tuning, key: &str, validated: &mut ValidatedStack) -> Prepared {
    let spec = from_crd::tuning_spec_with(&validated.spec, tuning.registry.server_limits(key));
    let mode = from_crd::mode(&validated.spec);
    let start: StartingPool = from_crd::starting_pool(&validated.spec, validated.generation);
    let (spec_settings, _) = effective_settings(&spec, start, None, Mode::Off);
    // What the user wrote, not what the pods reported: a first report of an External server's
    // max_connections is no edit (the settings in force are clamped into the new budget instead).
    let fingerprint = format!(
        "{:?} {:?} {:?} {:?}",
        validated.spec.pool, spec.replicas, validated.spec.database, spec.slo
    );
    if tuning.registry.follow_spec(key, fingerprint, spec_settings) {
        tracing::info!("spec.pool, replicas or database changed: tuning restarts from the spec");
    }
    let in_force = tuning.registry.settings_in_force(key);
    let (settings, plan) = effective_settings(&spec, start, in_force.as_ref(), mode);
    validated.tuned = Some(settings);
    Prepared {
        spec,
        mode,
        interval: from_crd::interval(&validated.spec),
        timeouts: from_crd::timeouts(&validated.spec),
        plan,
    }
}

/// After apply: runs the interval when due and applies what it changed.
pub async fn act(
    tuning: &Tuning,
    ctx: &Context,
    stack: &PerformanceStack,
    key: &str,
    validated: &mut ValidatedStack,
    prepared: &Prepared,
    applied: &Applied,
) -> Result<(), Error> {
    if !prepared.active() || applied.api.is_none() {
        return Ok(());
    }
    let selector = validated
        .selector_labels(app::COMPONENT)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let pods = AppPods {
        api: Api::<Pod>::namespaced(ctx.client.clone(), &validated.namespace),
        selector,
        port: u16::try_from(validated.spec.app.port).unwrap_or(8080),
        reach: tuning.reach,
    };
    let Some(seed) = validated.tuned else {
        return Ok(());
    };
    let request = TickRequest {
        spec: prepared.spec.clone(),
        seed,
        interval: prepared.interval,
        pods: &pods,
        source: &tuning.source,
        mode: prepared.mode,
        timeouts: prepared.timeouts,
    };
    let tick = match tuning
        .registry
        .tick_if_due(key, request, Instant::now(), chrono::Utc::now())
        .await
    {
        Ok(Some(tick)) => tick,
        Ok(None) => return Ok(()),
        Err(error) => {
            tracing::warn!(%error, "tuning interval skipped");
            return Ok(());
        }
    };
    tracing::info!(
        reason = %tick.decision.reason,
        applied = tick.act.applied,
        "tuning decision"
    );
    if tick.act.applied && (tick.act.tuning_file.is_some() || tick.act.hpa.is_some()) {
        validated.tuned = Some(tick.decision.settings);
        apply::apply_tuned(validated, ctx).await?;
    }
    for event in &tick.act.events {
        ctx.events
            .publish(stack, event.reason, &event.note, event.warning)
            .await;
    }
    Ok(())
}

/// Fills `status.tuning`, the observed p95 and the ConnectionBudget condition.
pub fn report(
    tuning: &Tuning,
    key: &str,
    prepared: &Prepared,
    generation: Option<i64>,
    status: &mut StackStatus,
    now: &Time,
) {
    status::set_connection_budget(status, &prepared.plan, generation, now);
    if let Some(tuning_status) = tuning.registry.status(key) {
        if let Some(p95) = tuning_status.last_observation.as_ref().and_then(|o| o.p95_ms) {
            status.observed_p95 = Some(format!("{p95}ms"));
        }
        status.tuning = Some(tuning_status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::config::TuningFile;
    use crate::build::hpa::hpa;
    use crate::crd::PerformanceStackSpec;
    use crate::tuner::scrape::Scraper;

    fn stack(spec: PerformanceStackSpec) -> (PerformanceStack, ValidatedStack) {
        let mut stack = PerformanceStack::new("shop", spec);
        stack.metadata.namespace = Some("ns".into());
        stack.metadata.uid = Some("uid".into());
        stack.metadata.generation = Some(3);
        let validated = super::super::validate::validate(&stack).unwrap();
        (stack, validated)
    }

    fn tuning() -> Tuning {
        Tuning::with_source(
            Reach::PodIp,
            MetricsSource::Direct(Scraper::new(SCRAPE_TIMEOUT).unwrap()),
        )
    }

    fn now() -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap())
    }

    #[tokio::test]
    async fn a_restarted_operator_picks_up_the_tuned_pool_from_the_live_config_map() {
        use kube::client::Body;
        let (service, mut handle) = tower_test::mock::pair::<http::Request<Body>, http::Response<Body>>();
        let server = tokio::spawn(async move {
            let (request, send) = handle
                .next_request()
                .await
                .expect("a GET of the tuning ConfigMap");
            assert_eq!(
                request.uri().path(),
                "/api/v1/namespaces/ns/configmaps/shop-tuning"
            );
            let cm = serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "shop-tuning", "namespace": "ns"},
                "data": {"tuning.yaml": "generation: 7\npool:\n  minConnections: 2\n  maxConnections: 15\n  acquireTimeoutMs: 3000\n  idleTimeoutSeconds: 600\n"}
            });
            send.send_response(http::Response::new(Body::from(serde_json::to_vec(&cm).unwrap())));
        });
        let client = kube::Client::new(service, "ns");
        let ctx = Context::new(
            client,
            super::super::AutoscalingApi::V2,
            super::super::StackEvents::disabled(),
            std::sync::Arc::new(crate::metrics::Metrics::default()),
        );
        let (_, mut validated) = stack(PerformanceStackSpec::default());
        let tuning = tuning();
        recover(&tuning, &ctx, "ns/shop", &validated).await;
        server.await.unwrap();
        let _ = prepare(&tuning, "ns/shop", &mut validated);
        let tuned = validated.tuned.unwrap();
        assert_eq!((tuned.pool_max, tuned.generation), (15, 7));
        assert_eq!(TuningFile::from_spec(&validated).pool.max_connections, 15);
    }

    #[test]
    fn builders_write_the_budgeted_pool_and_replicas() {
        // 10 replicas x 20 + 10 reserved = 210 > 200: the pool yields first.
        let mut spec = PerformanceStackSpec::default();
        spec.app.min_replicas = 2;
        spec.app.max_replicas = 10;
        spec.pool.max_connections = 20;
        spec.database.bundled.max_connections = 200;
        spec.database.reserved_connections = 10;
        let (stack, mut validated) = stack(spec);
        let tuning = tuning();
        let prepared = prepare(&tuning, "ns/shop", &mut validated);
        let file = TuningFile::from_spec(&validated);
        assert_eq!((file.generation, file.pool.max_connections), (3, 19));
        let hpa = hpa(&validated).spec.unwrap();
        assert_eq!((hpa.min_replicas, hpa.max_replicas), (Some(2), 10));
        let mut status = stack.status.clone().unwrap_or_default();
        report(&tuning, "ns/shop", &prepared, Some(3), &mut status, &now());
        let budget = status
            .conditions
            .iter()
            .find(|c| c.type_ == status::CONNECTION_BUDGET)
            .unwrap();
        assert_eq!(
            (budget.status.as_str(), budget.reason.as_str()),
            ("True", "PoolCapped")
        );
    }

    #[test]
    fn a_spec_that_cannot_fit_lowers_max_replicas_and_says_so() {
        let mut spec = PerformanceStackSpec::default();
        spec.app.min_replicas = 2;
        spec.app.max_replicas = 40;
        spec.pool.min_connections = 5;
        spec.pool.max_connections = 20;
        spec.database.bundled.max_connections = 110;
        spec.database.reserved_connections = 10;
        let (stack, mut validated) = stack(spec);
        let tuning = tuning();
        let prepared = prepare(&tuning, "ns/shop", &mut validated);
        let hpa = hpa(&validated).spec.unwrap();
        assert_eq!(hpa.max_replicas, 20, "100 available / pool min 5");
        assert_eq!(TuningFile::from_spec(&validated).pool.max_connections, 5);
        let mut status = stack.status.clone().unwrap_or_default();
        report(&tuning, "ns/shop", &prepared, Some(3), &mut status, &now());
        let budget = status
            .conditions
            .iter()
            .find(|c| c.type_ == status::CONNECTION_BUDGET)
            .unwrap();
        assert_eq!(
            (budget.status.as_str(), budget.reason.as_str()),
            ("False", "ReplicasCapped")
        );
        assert!(
            budget
                .message
                .contains("40 x pool min 5 + reserved 10 = 210 > max_connections 110"),
            "{}",
            budget.message
        );
    }

    fn budget_message(tuning: &Tuning, stack: &PerformanceStack, prepared: &Prepared) -> String {
        let mut status = stack.status.clone().unwrap_or_default();
        report(tuning, "ns/shop", prepared, Some(3), &mut status, &now());
        status
            .conditions
            .iter()
            .find(|c| c.type_ == status::CONNECTION_BUDGET)
            .map(|c| c.message.clone())
            .unwrap_or_default()
    }

    #[test]
    fn an_external_database_is_budgeted_with_the_reported_max_connections_once_known() {
        use crate::crd::{DatabaseMode, ExternalSpec, SecretKeyRef};
        use crate::tuner::ServerLimits;
        let mut spec = PerformanceStackSpec::default();
        spec.database.mode = DatabaseMode::External;
        spec.database.external = Some(ExternalSpec {
            secret_ref: SecretKeyRef {
                name: "shop-db".into(),
                key: None,
            },
        });
        spec.app.min_replicas = 2;
        spec.app.max_replicas = 10;
        spec.pool.max_connections = 30;
        spec.database.reserved_connections = 10;
        let (stack, mut validated) = stack(spec);
        let tuning = tuning();
        // Before any pod reported: the fallback (100), and the message says it is assumed.
        let prepared = prepare(&tuning, "ns/shop", &mut validated);
        assert_eq!(TuningFile::from_spec(&validated).pool.max_connections, 9);
        let message = budget_message(&tuning, &stack, &prepared);
        assert!(message.contains("max_connections 100 assumed"), "{message}");
        // The pods reported max_connections = 400: the spec's pool fits.
        tuning.registry.record_server_limits(
            "ns/shop",
            ServerLimits {
                max_connections: 400,
                reserved: 3,
            },
        );
        let prepared = prepare(&tuning, "ns/shop", &mut validated);
        assert_eq!(TuningFile::from_spec(&validated).pool.max_connections, 30);
        let message = budget_message(&tuning, &stack, &prepared);
        assert!(
            message.contains("= 310 <= max_connections 400")
                && message.contains("observed on the external server"),
            "{message}"
        );
    }
}
