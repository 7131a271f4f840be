//! The mocked API server: serves a scripted list of expected calls and fails on anything else.
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response};
use kube::Client;
use kube::client::Body;
use kube::runtime::controller::Action;
use serde_json::{Value, json};

use super::super::{AutoscalingApi, Context, StackEvents, reconcile};
use crate::crd::PerformanceStack;
use crate::metrics::Metrics;

pub(super) type Check = Box<dyn Fn(&Value) + Send>;

/// How the mock answers a call.
pub(super) enum Reply {
    /// 200 with this body.
    Json(Value),
    /// 200 (201 for POST) with the request body echoed back, as an apply or create would.
    Echo,
    /// 404 Not Found.
    NotFound,
}

/// One expected call.
pub(super) struct Call {
    pub(super) method: Method,
    /// The request URI must start with this (path and the start of the query).
    uri: String,
    check: Option<Check>,
    reply: Reply,
}

pub(super) fn call(method: Method, uri: impl Into<String>, reply: Reply) -> Call {
    Call {
        method,
        uri: uri.into(),
        check: None,
        reply,
    }
}

pub(super) fn checked(
    method: Method,
    uri: impl Into<String>,
    reply: Reply,
    check: impl Fn(&Value) + Send + 'static,
) -> Call {
    Call {
        method,
        uri: uri.into(),
        check: Some(Box::new(check)),
        reply,
    }
}

pub(super) const NS: &str = "team-a";

pub(super) fn ns_path(group_path: &str, plural: &str, name: &str) -> String {
    format!("{group_path}/namespaces/{NS}/{plural}/{name}")
}

pub(super) fn core(plural: &str, name: &str) -> String {
    ns_path("/api/v1", plural, name)
}

pub(super) fn apps(plural: &str, name: &str) -> String {
    ns_path("/apis/apps/v1", plural, name)
}

pub(super) fn stacks(name: &str) -> String {
    ns_path("/apis/perfstack.dev/v1alpha1", "performancestacks", name)
}

pub(super) fn not_found() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "not found", "reason": "NotFound", "code": 404})
}

/// Serves `script` in order, then fails if any further call arrives.
pub(super) async fn serve(
    mut handle: tower_test::mock::Handle<Request<Body>, Response<Body>>,
    script: Vec<Call>,
) {
    for expected in script {
        let next = tokio::time::timeout(Duration::from_secs(2), handle.next_request()).await;
        let (request, send) = match next {
            Ok(Some(pair)) => pair,
            _ => panic!("expected {} {} but no call came", expected.method, expected.uri),
        };
        let uri = request.uri().to_string();
        assert_eq!(
            request.method(),
            expected.method,
            "method of call to {uri} (expected {})",
            expected.uri
        );
        assert!(
            uri.starts_with(&expected.uri),
            "expected a call to {}, got {uri}",
            expected.uri
        );
        let bytes = request.into_body().collect_bytes().await.unwrap_or_default();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if let Some(check) = &expected.check {
            check(&body);
        }
        let (status, reply) = match expected.reply {
            Reply::Json(value) => (200, value),
            Reply::Echo => (if expected.method == Method::POST { 201 } else { 200 }, body),
            Reply::NotFound => (404, not_found()),
        };
        let response = Response::builder()
            .status(status)
            .body(Body::from(serde_json::to_vec(&reply).unwrap()))
            .unwrap();
        send.send_response(response);
    }
    if let Ok(Some((request, _))) =
        tokio::time::timeout(Duration::from_millis(300), handle.next_request()).await
    {
        panic!("unexpected call: {} {}", request.method(), request.uri());
    }
}

/// Runs one reconcile of `stack` against `script`.
pub(super) async fn run_scenario(stack: PerformanceStack, events: bool, script: Vec<Call>) -> Action {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, NS);
    let events = if events {
        StackEvents::new(client.clone(), Some("test".into()))
    } else {
        StackEvents::disabled()
    };
    let ctx = Arc::new(Context::new(
        client,
        AutoscalingApi::V2,
        events,
        Arc::new(Metrics::default()),
    ));
    let server = tokio::spawn(serve(handle, script));
    let result = tokio::time::timeout(Duration::from_secs(10), reconcile(Arc::new(stack), ctx)).await;
    if let Err(panic) = server.await {
        std::panic::resume_unwind(panic.into_panic());
    }
    result.expect("reconcile finished").expect("reconcile succeeded")
}
