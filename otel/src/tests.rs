use std::collections::HashMap;
use std::time::Duration;

use tracing_subscriber::prelude::*;

use super::*;
use crate::receiver::OtlpReceiver;

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
    move |name| vars.get(name).cloned()
}

#[test]
fn nothing_is_exported_without_an_endpoint_or_when_turned_off() {
    assert_eq!(OtlpSettings::from_env(env(&[])).unwrap(), None);
    assert_eq!(OtlpSettings::from_env(env(&[(ENDPOINT, " ")])).unwrap(), None);
    let on = [(ENDPOINT, "http://collector:4318/")];
    assert_eq!(
        OtlpSettings::from_env(env(&on)).unwrap(),
        Some(OtlpSettings {
            traces_endpoint: "http://collector:4318/v1/traces".into()
        })
    );
    assert_eq!(
        OtlpSettings::from_env(env(&[on[0], (SDK_DISABLED, "true")])).unwrap(),
        None
    );
    assert_eq!(
        OtlpSettings::from_env(env(&[on[0], (TRACES_EXPORTER, "none")])).unwrap(),
        None
    );
    let traces = OtlpSettings::from_env(env(&[on[0], (TRACES_ENDPOINT, "http://t:1/x")])).unwrap();
    assert_eq!(traces.unwrap().traces_endpoint, "http://t:1/x");
    assert!(matches!(
        OtlpSettings::from_env(env(&[on[0], (PROTOCOL, "grpc")])),
        Err(OtlpError::Protocol(p)) if p == "grpc"
    ));
    assert!(OtlpSettings::from_env(env(&[on[0], (PROTOCOL, "http/protobuf")])).is_ok());
}

#[test]
fn propagation_helpers_do_nothing_while_disabled() {
    let span = tracing::info_span!("nothing");
    assert_eq!(traceparent(&span), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_the_receiver_with_the_incoming_trace_id() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let settings = OtlpSettings::from_env(env(&[(ENDPOINT, &receiver.endpoint())]))
        .unwrap()
        .unwrap();
    let (layer, export) = layer("perfstack-otel-test", &settings).unwrap();
    let subscriber = tracing_subscriber::registry().with(layer);
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let carried = tracing::subscriber::with_default(subscriber, || {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "traceparent",
            format!("00-{trace_id}-00f067aa0ba902b7-01").parse().unwrap(),
        );
        let request = tracing::info_span!("request");
        set_parent_from_headers(&request, &headers);
        let carried = request.in_scope(|| traceparent(&tracing::info_span!("enqueue")));
        // Another process would do this with the carried traceparent.
        let job = tracing::info_span!("job");
        set_parent_from_traceparent(&job, carried.as_deref().unwrap_or_default());
        drop(job);
        carried
    });
    drop(export);
    let carried = carried.expect("a traceparent while enabled");
    assert!(carried.starts_with(&format!("00-{trace_id}-")), "{carried}");
    let spans = receiver.wait_for(Duration::from_secs(10), |s| s.len() >= 3).await;
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    for name in ["request", "enqueue", "job"] {
        let span = spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{name} in {names:?}"));
        assert_eq!(span.trace_id, trace_id, "{name}");
        assert_eq!(span.service, "perfstack-otel-test");
    }
    let request = spans.iter().find(|s| s.name == "request").unwrap();
    assert_eq!(request.parent_span_id, "00f067aa0ba902b7");
}
