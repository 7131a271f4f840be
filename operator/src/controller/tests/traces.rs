//! Traces of the operator: with an OTLP endpoint, a reconcile is exported as a trace whose root is the
//! `reconcile` span of the stack (in a cluster, kube's client adds a child span per request to the API
//! server; the mocked client here has none). The receiver is an OTLP/HTTP server in this test process.
use std::time::Duration;

use perfstack_otel::OtlpSettings;
use perfstack_otel::receiver::OtlpReceiver;
use tracing_subscriber::prelude::*;

use super::scenario::Scenario;
use super::stack;
use crate::crd::PerformanceStackSpec;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconcile_is_exported_as_one_trace() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let endpoint = receiver.endpoint();
    let settings =
        OtlpSettings::from_env(|name| (name == perfstack_otel::ENDPOINT).then(|| endpoint.clone()))
            .unwrap()
            .unwrap();
    let (layer, export) = perfstack_otel::layer(crate::telemetry::SERVICE_NAME, &settings).unwrap();
    let subscriber = tracing_subscriber::registry().with(layer.with_filter(crate::telemetry::exported()));
    // Not tracing's own `set_default`: other tests' threads reach the same callsites (see `scoped`).
    let guard = perfstack_otel::scoped::set_default(subscriber);
    // An invalid spec: the reconcile's only call is the status patch.
    let mut spec = PerformanceStackSpec::default();
    spec.pool.min_connections = 50;
    spec.pool.max_connections = 20;
    Scenario::new(stack(spec))
        .status_patch(|body| assert_eq!(body["status"]["phase"], "Failed"))
        .run_then_await_change()
        .await;
    drop(guard);
    // Flushing blocks on the export; not on a runtime thread the receiver may need.
    tokio::task::spawn_blocking(move || drop(export)).await.unwrap();
    let spans = receiver
        .wait_for(Duration::from_secs(10), |spans| {
            spans.iter().any(|s| s.name == "reconcile")
        })
        .await;
    let reconcile = spans
        .iter()
        .find(|s| s.name == "reconcile")
        .unwrap_or_else(|| panic!("no reconcile span in {spans:?}"));
    assert_eq!(reconcile.service, "perfstack-operator");
    assert_eq!(reconcile.parent_span_id, "", "each reconcile starts a trace");
    assert_eq!(
        reconcile.attributes.get("stack").map(String::as_str),
        Some("shop")
    );
}
