use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::client::Body;

use super::*;
use crate::tuner::testing::PodMetrics;

fn pod(name: &str, phase: &str, ready: bool, ip: Option<&str>, terminating: bool) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("shop".into()),
            deletion_timestamp: terminating.then_some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)),
            ..ObjectMeta::default()
        },
        status: Some(PodStatus {
            phase: Some(phase.into()),
            pod_ip: ip.map(Into::into),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..PodCondition::default()
            }]),
            ..PodStatus::default()
        }),
        ..Pod::default()
    }
}

fn pods() -> Vec<Pod> {
    vec![
        pod("api-b", "Running", true, Some("10.0.0.2"), false),
        pod("api-a", "Running", true, Some("10.0.0.1"), false),
        pod("api-starting", "Running", false, Some("10.0.0.3"), false),
        pod("api-pending", "Pending", false, None, false),
        pod("api-leaving", "Running", true, Some("10.0.0.4"), true),
        pod("api-v6", "Running", true, Some("fd00::5"), false),
    ]
}

#[test]
fn only_ready_running_pods_with_an_ip_are_asked() {
    let t = targets_from_pods(&pods(), 8080, Reach::PodIp);
    let urls: Vec<&str> = t.targets.iter().map(|t| t.url.as_str()).collect();
    assert_eq!(
        urls,
        [
            "http://10.0.0.1:8080/metrics",
            "http://10.0.0.2:8080/metrics",
            "http://[fd00::5]:8080/metrics"
        ]
    );
    assert_eq!(t.not_ready, ["api-leaving", "api-pending", "api-starting"]);
}

#[test]
fn proxy_paths_name_namespace_pod_and_port() {
    let t = targets_from_pods(&pods(), 8080, Reach::ApiServerProxy);
    assert_eq!(
        t.targets[0].url,
        "/api/v1/namespaces/shop/pods/api-a:8080/proxy/metrics"
    );
}

/// The Kubernetes API as the test answers it through the returned handle.
type ApiHandle = tower_test::mock::Handle<http::Request<Body>, http::Response<Body>>;

fn mock_api() -> (kube::Client, ApiHandle) {
    let (service, handle) = tower_test::mock::pair::<http::Request<Body>, http::Response<Body>>();
    (kube::Client::new(service, "default"), handle)
}

/// Scrapes pod `api-a` through the API server proxy `times` over, the API server answered by
/// `server`; the answers of each scrape.
async fn scrape_through_proxy<F>(times: usize, server: impl FnOnce(ApiHandle) -> F) -> Vec<Vec<PodAnswer>>
where
    F: Future<Output = ()> + Send + 'static,
{
    let (client, handle) = mock_api();
    let server = tokio::spawn(server(handle));
    let source = MetricsSource::Proxy(client, Duration::from_secs(5));
    let targets = targets_from_pods(&pods()[1..2], 8080, Reach::ApiServerProxy).targets;
    let mut scrapes = Vec::new();
    for _ in 0..times {
        scrapes.push(source.scrape_all(&targets).await);
    }
    server.await.unwrap();
    scrapes
}

#[tokio::test]
async fn proxy_scrape_goes_through_the_api_server() {
    let scrapes = scrape_through_proxy(1, |mut handle| async move {
        let (request, send) = handle.next_request().await.expect("one request");
        assert_eq!(request.method(), http::Method::GET);
        assert_eq!(
            request.uri().path(),
            "/api/v1/namespaces/shop/pods/api-a:8080/proxy/metrics"
        );
        let text = PodMetrics {
            ok: 7,
            pool_max: 9,
            generation: 2,
            ..PodMetrics::default()
        }
        .render();
        send.send_response(http::Response::new(Body::from(text.into_bytes())));
    })
    .await;
    assert_eq!(first_answer(&scrapes[0]), ("api-a", 7.0, 9.0, 2));
}

#[tokio::test]
async fn proxy_scrape_refuses_redirects_and_oversized_bodies() {
    let scrapes = scrape_through_proxy(2, |mut handle| async move {
        let (_, send) = handle.next_request().await.expect("first request");
        let redirect = http::Response::builder()
            .status(302)
            .header("location", "http://169.254.169.254/")
            .body(Body::empty())
            .unwrap();
        send.send_response(redirect);
        let (_, send) = handle.next_request().await.expect("second request");
        let huge = vec![b'x'; crate::tuner::scrape::MAX_BODY_BYTES + 1];
        send.send_response(http::Response::new(Body::from(huge)));
    })
    .await;
    let error = scrapes[0][0].1.as_ref().unwrap_err();
    assert!(error.ends_with("HTTP 302"), "{error}");
    let error = scrapes[1][0].1.as_ref().unwrap_err();
    assert!(error.contains("larger than 4194304 bytes"), "{error}");
}

/// The first pod's name, requests, pool maximum and generation.
fn first_answer(answers: &[PodAnswer]) -> (&str, f64, f64, u64) {
    let (name, answer) = &answers[0];
    let snap = answer.as_ref().unwrap();
    (name.as_str(), snap.requests, snap.pool_max, snap.generation)
}

/// An app pod's /metrics on 127.0.0.1.
async fn app_on_loopback(metrics: PodMetrics) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = metrics.render();
    let router = axum::Router::new().route("/metrics", axum::routing::get(move || async move { body }));
    tokio::spawn(async move { axum::serve(listener, router).await });
    port
}

/// An API server that lists one Ready pod at 127.0.0.1 and one starting pod.
fn api_server() -> kube::Api<Pod> {
    let (client, mut handle) = mock_api();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            assert_eq!(request.uri().path(), "/api/v1/namespaces/shop/pods");
            let query = request.uri().query().unwrap_or_default().to_owned();
            assert!(query.contains("labelSelector=app%3Dapi"), "{query}");
            let list = serde_json::json!({
                "apiVersion": "v1", "kind": "PodList", "metadata": {},
                "items": [
                    serde_json::to_value(pod("api-0", "Running", true, Some("127.0.0.1"), false)).unwrap(),
                    serde_json::to_value(pod("api-1", "Running", false, Some("127.0.0.2"), false)).unwrap(),
                ]
            });
            send.send_response(http::Response::new(Body::from(
                serde_json::to_vec(&list).unwrap(),
            )));
        }
    });
    kube::Api::namespaced(client, "shop")
}

#[tokio::test]
async fn app_pods_are_listed_by_label_and_only_the_ready_ones_scraped() {
    let port = app_on_loopback(PodMetrics {
        ok: 3000,
        pool_max: 10,
        generation: 4,
        ..PodMetrics::default()
    })
    .await;
    let pods = AppPods {
        api: api_server(),
        selector: "app=api".into(),
        port,
        reach: Reach::PodIp,
    };
    let source = MetricsSource::Direct(crate::tuner::scrape::Scraper::new(Duration::from_secs(2)).unwrap());
    let scraped = pods.scrape(&source).await.unwrap();
    let answers = &scraped.answers;
    assert_eq!(answers.len(), 1, "the starting pod is not asked: {answers:?}");
    assert_eq!(first_answer(answers), ("api-0", 3000.0, 10.0, 4));
    assert_eq!(scraped.alive, 2, "but it is alive, and counted");
    assert_eq!(
        scraped.seen().generation,
        None,
        "a pod that did not answer may run another generation"
    );
}
