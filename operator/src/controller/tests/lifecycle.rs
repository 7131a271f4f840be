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

/// Asserts that `status` is Ready False for an invalid spec, its message containing `refusal`.
fn assert_invalid_spec(status: &Value, refusal: &str) {
    let ready = &status["conditions"][0];
    assert_eq!(ready["type"], "Ready");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "InvalidSpec");
    let message = ready["message"].as_str().unwrap();
    assert!(message.contains(refusal), "{ready}");
}

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
            assert_invalid_spec(status, "spec.pool.minConnections");
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
async fn an_invalid_resource_quantity_is_refused_before_any_child_is_written() {
    let mut spec = PerformanceStackSpec::default();
    spec.app.resources = Some(k8s_openapi::api::core::v1::ResourceRequirements {
        requests: Some(
            [(
                "cpu".to_owned(),
                k8s_openapi::apimachinery::pkg::api::resource::Quantity("lots".into()),
            )]
            .into(),
        ),
        ..Default::default()
    });
    Scenario::new(stack(spec))
        .status_patch(|body| {
            let refusal = "spec.app.resources.requests.cpu: \"lots\" is not a Kubernetes quantity";
            assert_invalid_spec(&body["status"], refusal);
        })
        .run_then_await_change()
        .await;
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

/// A data-bearing object `kind` `name`, labelled as the stack `shop`'s (or not), with uid `uid` and,
/// when `owned`, the owner reference an earlier operator version gave it.
fn data_object(kind: &str, name: &str, labelled: bool, owned: bool) -> Reply {
    let labels = if labelled {
        json!({"perfstack.dev/stack": "shop"})
    } else {
        json!({})
    };
    let owners = if owned {
        json!([{"apiVersion": "perfstack.dev/v1alpha1", "kind": "PerformanceStack", "name": "shop",
            "uid": "uid-0", "controller": true}])
    } else {
        json!([])
    };
    Reply::Json(json!({
        "apiVersion": "v1", "kind": kind,
        "metadata": {"name": name, "namespace": NS, "uid": format!("uid-{name}"), "resourceVersion": "7",
            "labels": labels, "ownerReferences": owners},
    }))
}

/// Where the data object `name` of `kind` (a claim or the Secret) is read and deleted.
fn data_uri(kind: &str, name: &str) -> String {
    let plural = match kind {
        "PersistentVolumeClaim" => "persistentvolumeclaims",
        _ => "secrets",
    };
    format!("/api/v1/namespaces/{NS}/{plural}/{name}")
}

/// The body of a delete that only deletes the object that was read.
fn deletes_uid(name: &'static str) -> impl Fn(&Value) + Send + 'static {
    move |body| assert_eq!(body["preconditions"]["uid"], format!("uid-{name}"))
}

/// The deletion step's calls on a data object, by name.
impl Scenario {
    /// The GET of the data object `name` of `kind`, found as [`data_object`] describes it.
    fn finds(self, kind: &str, name: &'static str, labelled: bool, owned: bool) -> Self {
        let found = data_object(kind, name, labelled, owned);
        self.call(Method::GET, data_uri(kind, name), found)
    }

    /// The DELETE of the data object `name` of `kind`, only of the one read, answered `reply`.
    fn deletes(self, kind: &str, name: &'static str, reply: Reply) -> Self {
        self.checked(Method::DELETE, data_uri(kind, name), reply, deletes_uid(name))
    }
}

#[tokio::test]
async fn deletion_with_delete_policy_removes_exactly_the_data_the_operator_made() {
    let deleted = || Reply::Json(json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}));
    const CLAIM: &str = "PersistentVolumeClaim";
    // By name only: no list, so a claim another tool labelled with the stack is never seen. A claim
    // of the right name without the stack's label is not the operator's either.
    Scenario::new(deleting(DeletionPolicy::Delete))
        .finds(CLAIM, "data-shop-postgres-0", true, false)
        .deletes(CLAIM, "data-shop-postgres-0", deleted())
        .finds(CLAIM, "data-shop-redis-0", false, false)
        .finds("Secret", "shop-credentials", true, false)
        // Gone meanwhile: tolerated.
        .deletes("Secret", "shop-credentials", Reply::NotFound)
        .stack_patch(removes_finalizer)
        .run_then_await_change()
        .await;
}

#[tokio::test]
async fn deletion_with_retain_policy_deletes_nothing_and_disowns_a_legacy_secret() {
    Scenario::new(deleting(DeletionPolicy::Retain))
        .finds("Secret", "shop-credentials", true, true)
        .checked(
            Method::PATCH,
            format!("{}?", Child::Credentials.uri("")),
            Reply::NotFound,
            |body| {
                assert_eq!(
                    body,
                    &json!({"metadata": {"ownerReferences": [], "resourceVersion": "7"}})
                );
            },
        )
        .stack_patch(removes_finalizer)
        .run_then_await_change()
        .await;
    // A Secret this operator created has no owner reference: nothing to write at all.
    Scenario::new(deleting(DeletionPolicy::Retain))
        .finds("Secret", "shop-credentials", true, false)
        .stack_patch(removes_finalizer)
        .run_then_await_change()
        .await;
}

/// A paused stack, settled before the pause, whose API Deployment has since lost its ready pods and
/// whose spec was edited meanwhile (a larger pool): every child is read, none written, and the status
/// says what is observed now, with `Suspended` and why.
async fn paused(pause: impl FnOnce(&mut PerformanceStack), reason: &'static str) {
    let (mut stack, d, job) = super::settled().parts();
    stack.spec.pool.max_connections = 8;
    pause(&mut stack);
    let action = super::reads(Scenario::new(stack).with_events(), &job, |child| match child {
        Child::Api => {
            let mut api = super::ready_deployment(d.api.as_ref().unwrap());
            api.status.as_mut().unwrap().ready_replicas = Some(0);
            super::scenario::json_of(api)
        }
        other => super::live(&d, other),
    })
    .status_patch(move |body| {
        let status = &body["status"];
        assert_eq!(
            (&status["phase"], &status["reason"]),
            (&json!("Suspended"), &json!(reason))
        );
        let condition = |type_: &str| super::condition_in(status, type_).clone();
        let suspended = condition("Suspended");
        assert_eq!(
            (&suspended["status"], &suspended["reason"]),
            (&json!("True"), &json!(reason))
        );
        let message = suspended["message"].as_str().unwrap();
        assert!(
            message.contains("the tuner is frozen: pool 2-10 and HPA 2-10 stay in force"),
            "{message}"
        );
        assert_eq!(
            condition("AppReady")["reason"],
            "DeploymentProgressing",
            "conditions are still observed"
        );
        assert_eq!(condition("Ready")["status"], "False");
    })
    .event("PhaseSuspended")
    .run()
    .await;
    assert_eq!(action, Action::requeue(std::time::Duration::from_secs(300)));
}

#[tokio::test]
async fn a_suspended_stack_is_observed_and_never_written() {
    paused(|stack| stack.spec.suspend = true, "SpecSuspend").await;
}

#[tokio::test]
async fn the_paused_annotation_pauses_a_stack_a_gitops_tool_owns() {
    paused(
        |stack| {
            stack.metadata.annotations =
                Some([("perfstack.dev/paused".to_owned(), "true".to_owned())].into());
        },
        "PausedByAnnotation",
    )
    .await;
}

#[tokio::test]
async fn a_reconcile_that_loses_leadership_stops_writing_at_once() {
    let super::Built { stack, job, .. } = super::built();
    let fence = crate::fence::WriteFence::open();
    let closes = fence.clone();
    // A new stack: the stores hold none of its children, and the credentials Secret is looked for
    // with a GET (the only request before the writes). The Lease is lost while that read is
    // answered: not one write may follow, not even the status that would report the failure.
    let scenario = Scenario::new(stack).fenced_by(&fence).checked(
        Method::GET,
        Child::Credentials.uri(&job),
        Reply::NotFound,
        move |_| closes.close(),
    );
    let scenario = super::reads_of(scenario, &Child::ALL[1..], &job, |_| Reply::NotFound);
    assert_eq!(scenario.expected_calls(), 1);
    let error = scenario.run_result().await.unwrap_err();
    assert!(
        super::super::ErrorChain(&error)
            .to_string()
            .contains("lost leadership"),
        "{error}"
    );
}
