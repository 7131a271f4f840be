use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use kube::client::Body;

use super::*;
use crate::tuner::budget::ConnectionBudget;
use crate::tuner::scrape::Scraper;
use crate::tuner::spec::{PoolBounds, ReplicaBounds};
use crate::tuner::testing::PodMetrics;

/// An app pod's /metrics on 127.0.0.1, its content set by the test.
async fn app(metrics: Arc<Mutex<PodMetrics>>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let router = Router::new().route(
        "/metrics",
        get(move || {
            let m = metrics.lock().unwrap().clone();
            async move { m.render() }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    port
}

/// An API server that lists one Ready pod at 127.0.0.1 and one starting pod, for every call.
fn api_server() -> Api<Pod> {
    let (service, mut handle) = tower_test::mock::pair::<http::Request<Body>, http::Response<Body>>();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            assert_eq!(request.uri().path(), "/api/v1/namespaces/shop/pods");
            let query = request.uri().query().unwrap_or_default().to_owned();
            assert!(query.contains("labelSelector=app%3Dapi"), "{query}");
            let pod = |name: &str, ready: &str, ip: &str| {
                serde_json::json!({
                    "metadata": {"name": name, "namespace": "shop"},
                    "status": {"phase": "Running", "podIP": ip,
                               "conditions": [{"type": "Ready", "status": ready}]}
                })
            };
            let list = serde_json::json!({
                "apiVersion": "v1", "kind": "PodList", "metadata": {},
                "items": [pod("api-0", "True", "127.0.0.1"), pod("api-1", "False", "127.0.0.2")]
            });
            send.send_response(http::Response::new(Body::from(
                serde_json::to_vec(&list).unwrap(),
            )));
        }
    });
    Api::namespaced(kube::Client::new(service, "shop"), "shop")
}

fn spec() -> TuningSpec {
    TuningSpec::new(
        PoolBounds { min: 2, max: 40 },
        ReplicaBounds { min: 1, max: 4 },
        ConnectionBudget {
            max_connections: 200,
            reserved: 10,
            source: Default::default(),
        },
    )
}

const IN_FORCE: Settings = Settings {
    pool_min: 2,
    pool_max: 10,
    hpa_min: 1,
    hpa_max: 4,
    generation: 0,
};

async fn two_ticks(mode: Mode) -> (Option<Tick>, Option<Tick>, StackTuner) {
    let metrics = Arc::new(Mutex::new(PodMetrics {
        pool_max: 10,
        ..PodMetrics::default()
    }));
    let port = app(metrics.clone()).await;
    let pods = AppPods {
        api: api_server(),
        selector: "app=api".into(),
        port,
        reach: Reach::PodIp,
    };
    let source = MetricsSource::Direct(Scraper::new(Duration::from_secs(2)).unwrap());
    let mut stack = StackTuner::new(spec(), IN_FORCE);
    let wall = Utc::now();
    let first = stack
        .tick(
            &pods,
            &source,
            mode,
            PoolTuning::default(),
            Duration::from_secs(0),
            wall,
        )
        .await
        .unwrap();
    *metrics.lock().unwrap() = PodMetrics {
        ok: 3000,
        latency: vec![(0.05, 2900), (0.1, 3000)],
        in_use: 10,
        pool_max: 10,
        waiting: 6,
        acquire: vec![(0.001, 0), (0.05, 3000)],
        server_max_connections: 300,
        server_reserved_connections: 3,
        ..PodMetrics::default()
    };
    let second = stack
        .tick(
            &pods,
            &source,
            mode,
            PoolTuning::default(),
            Duration::from_secs(30),
            wall,
        )
        .await
        .unwrap();
    (first, second, stack)
}

#[tokio::test]
async fn auto_tick_observes_ready_pods_and_plans_the_pool_write() {
    let (first, second, stack) = two_ticks(Mode::Auto).await;
    assert!(first.is_none(), "the first interval only takes the baseline");
    let tick = second.unwrap();
    assert_eq!(
        (tick.observation.pods.asked, tick.observation.pods.answered),
        (1, 1)
    );
    assert!((tick.observation.requests_per_second - 100.0).abs() < 1e-9);
    assert_eq!(
        tick.observation.server,
        Some(crate::tuner::ServerLimits {
            max_connections: 300,
            reserved: 3
        }),
        "the server's limits as the pod reports them"
    );
    let file = tick.act.tuning_file.expect("pool grows: 6 waiting");
    assert_eq!((file.generation, file.pool.max_connections), (1, 20));
    assert_eq!(stack.tuner.settings.pool_max, 20);
    assert_eq!(tick.status.in_force.map(|s| s.pool_max), Some(20));
    assert_eq!(tick.act.events[0].reason, "PoolResized");
}

#[tokio::test]
async fn recommend_tick_keeps_the_settings_in_force() {
    let (_, second, stack) = two_ticks(Mode::Recommend).await;
    let tick = second.unwrap();
    assert!(tick.act.tuning_file.is_none() && !tick.act.applied);
    assert_eq!(tick.decision.settings.pool_max, 20);
    assert_eq!(stack.tuner.settings, IN_FORCE);
    assert_eq!(tick.act.events[0].reason, "TuningRecommended");
}
