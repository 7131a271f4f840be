//! Reconciles that touch no child: an invalid spec, a new stack's finalizer, deletion under each
//! policy, a suspended stack, a reconcile that loses leadership half way.
use http::Method;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Resource;
use kube::runtime::controller::Action;
use serde_json::{Value, json};

use super::scenario::{Child, NS, Reply, Scenario};
use super::stack;
use crate::controller::FINALIZER;
use crate::crd::{DeletionPolicy, PerformanceStack, PerformanceStackSpec};

#[tokio::test]
async fn invalid_spec_sets_ready_false_naming_the_field_and_touches_no_child() {
    let mut spec = PerformanceStackSpec::default();
    spec.pool.min_connections = 50;
    spec.pool.max_connections = 20;
    let mut stack = stack(spec);
    // Written by the tuner; the controller's patch must leave it alone.
    stack.status = Some(crate::crd::StackStatus {
        observed_p95: Some("120ms".into()),
        ..crate::crd::StackStatus::default()
    });
    let action = Scenario::new(stack)
        .status_patch(|body| {
            let status = &body["status"];
            assert!(status.get("observedP95").is_none(), "{status}");
            assert_eq!(status["phase"], "Failed");
            let ready = &status["conditions"][0];
            assert_eq!(ready["type"], "Ready");
            assert_eq!(ready["status"], "False");
            assert_eq!(ready["reason"], "InvalidSpec");
            assert!(
                ready["message"]
                    .as_str()
                    .unwrap()
                    .contains("spec.pool.minConnections"),
                "{ready}"
            );
        })
        .run()
        .await;
    assert_eq!(
        action,
        Action::await_change(),
        "an invalid spec waits for a change instead of retrying"
    );
}

#[tokio::test]
async fn new_stack_gets_the_finalizer_first() {
    let mut stack = stack(PerformanceStackSpec::default());
    stack.metadata.finalizers = None;
    Scenario::new(stack)
        .stack_patch(|body| {
            assert_eq!(body[1]["op"], "add");
            assert_eq!(body[1]["value"], json!([FINALIZER]));
        })
        .run_then_await_change()
        .await;
}

fn deleting(policy: DeletionPolicy) -> PerformanceStack {
    let mut stack = stack(PerformanceStackSpec {
        deletion_policy: policy,
        ..PerformanceStackSpec::default()
    });
    stack.meta_mut().deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
    stack
}

fn removes_finalizer(body: &Value) {
    assert_eq!(
        body[0],
        json!({"op": "test", "path": "/metadata/finalizers/0", "value": FINALIZER})
    );
    assert_eq!(body[1], json!({"op": "remove", "path": "/metadata/finalizers/0"}));
}

#[tokio::test]
async fn deletion_with_delete_policy_removes_volumes_then_the_finalizer() {
    let pvc_list = json!({
        "apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": {},
        "items": [{"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": {"name": "data-shop-postgres-0"}}]
    });
    Scenario::new(deleting(DeletionPolicy::Delete))
        .call(
            Method::GET,
            format!(
                "/api/v1/namespaces/{NS}/persistentvolumeclaims?&labelSelector=perfstack.dev%2Fstack%3Dshop"
            ),
            Reply::Json(pvc_list),
        )
        // Already gone: tolerated.
        .call(
            Method::DELETE,
            format!("/api/v1/namespaces/{NS}/persistentvolumeclaims/data-shop-postgres-0"),
            Reply::NotFound,
        )
        .stack_patch(removes_finalizer)
        .run_then_await_change()
        .await;
}

#[tokio::test]
async fn deletion_with_retain_policy_keeps_volumes_and_orphans_the_credentials() {
    Scenario::new(deleting(DeletionPolicy::Retain))
        .checked(
            Method::PATCH,
            format!("{}?", Child::Credentials.uri("")),
            Reply::NotFound,
            |body| {
                assert_eq!(body, &json!({"metadata": {"ownerReferences": null}}));
            },
        )
        .stack_patch(removes_finalizer)
        .run_then_await_change()
        .await;
}

#[tokio::test]
async fn suspended_stack_only_reports_suspended() {
    let stack = stack(PerformanceStackSpec {
        suspend: true,
        ..PerformanceStackSpec::default()
    });
    Scenario::new(stack)
        .status_patch(|body| {
            assert_eq!(body["status"]["phase"], "Suspended");
        })
        .run_then_await_change()
        .await;
}

#[tokio::test]
async fn a_reconcile_that_loses_leadership_stops_writing_at_once() {
    let super::Built { stack, job, .. } = super::built();
    let fence = crate::fence::WriteFence::open();
    let closes = fence.clone();
    // The Lease is lost while the last read is answered: not one write may follow, not even the
    // status that would report the failure.
    let last = *Child::ALL.last().unwrap();
    let scenario = super::reads_of(
        Scenario::new(stack).fenced_by(&fence),
        &Child::ALL[..Child::ALL.len() - 1],
        &job,
        |_| Reply::NotFound,
    )
    .checked(Method::GET, last.uri(&job), Reply::NotFound, move |_| {
        closes.close()
    });
    let error = scenario.run_result().await.unwrap_err();
    assert!(
        super::super::ErrorChain(&error)
            .to_string()
            .contains("lost leadership"),
        "{error}"
    );
}
