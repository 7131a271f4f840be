//! The stack's data: the credentials Secret loses an earlier operator's owner reference, a larger
//! volume is asked of the claim (a refusal is reported, not retried, and stops nothing), and the
//! Redis Deployment of earlier operators gives way to the StatefulSet.
use std::sync::{Arc, Mutex};

use http::Method;
use serde_json::{Value, json};

use super::scenario::{APPLY_QUERY, Child, Reply, Scenario, json_of};
use super::*;

/// The stack as a previous reconcile left it (settled), its spec then edited by `edit`; the live
/// children are the ones built before the edit.
fn edited(edit: impl FnOnce(&mut PerformanceStackSpec)) -> (PerformanceStack, Desired, String) {
    let (mut stack, before, job) = settled().parts();
    edit(&mut stack.spec);
    (stack, before, job)
}

#[tokio::test]
async fn a_credentials_secret_owned_by_a_stack_loses_the_owner_reference() {
    let (stack, d, job) = edited(|_| {});
    let legacy = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {
        "name": "shop-credentials", "resourceVersion": "5", "labels": {"perfstack.dev/stack": "shop"},
        "ownerReferences": [{"apiVersion": "perfstack.dev/v1alpha1", "kind": "PerformanceStack",
            "name": "shop", "uid": "uid-1", "controller": true, "blockOwnerDeletion": true}]},
        // Every key the stack needs is there: no key is added.
        "data": {"username": "eA==", "password": "eA==", "database-url": "eA==", "app-username": "eA==",
            "app-password": "eA==", "app-database-url": "eA==", "redis-password": "eA=="}});
    // Its only write: the patch taking the owner reference off (a resourceVersion-locked merge patch).
    reads(Scenario::new(stack), &job, |child| match child {
        Child::Credentials => Reply::Json(legacy.clone()),
        other => live(&d, other),
    })
    .checked(
        Method::PATCH,
        format!("{}?", Child::Credentials.uri(&job)),
        Reply::Echo,
        |body| {
            assert_eq!(
                body,
                &json!({"metadata": {"ownerReferences": [], "resourceVersion": "5"}})
            )
        },
    )
    .run()
    .await;
}

/// A reconcile of the stack whose `storageSize` grew to 20Gi, where the claim expansion is answered
/// by `answer`; returns the status it wrote.
async fn expand(answer: Reply) -> Value {
    let (stack, d, job) = edited(|spec| spec.database.bundled.storage_size = "20Gi".into());
    let written = Arc::new(Mutex::new(Value::Null));
    let seen = written.clone();
    let uri = format!("{}{APPLY_QUERY}", Child::PostgresClaim.uri(&job));
    // No StatefulSet write: its claim template is kept as it is (the API server refuses a change).
    reads(Scenario::new(stack), &job, |child| live(&d, child))
        .checked(Method::PATCH, uri, answer, |body| {
            assert_eq!(body["spec"]["resources"]["requests"]["storage"], "20Gi");
        })
        .status_patch(move |body| *seen.lock().unwrap() = body["status"].clone())
        .run()
        .await;
    written.lock().unwrap().clone()
}

fn storage(status: &Value) -> (&str, &str) {
    let condition = condition_in(status, "Storage");
    (
        condition["status"].as_str().unwrap(),
        condition["reason"].as_str().unwrap(),
    )
}

#[tokio::test]
async fn a_larger_volume_is_asked_of_the_claim() {
    let status = expand(Reply::Echo).await;
    assert_eq!(status["volumes"][0]["state"], "Expanding");
    assert_eq!(storage(&status), ("True", "Expanding"));
    assert_eq!(status["phase"], "Ready");
}

#[tokio::test]
async fn a_refused_expansion_is_reported_stops_nothing_and_is_not_asked_again() {
    let refusal = Reply::Refused(
        403,
        "Forbidden",
        "only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize".into(),
    );
    let status = expand(refusal).await;
    let volume = &status["volumes"][0];
    assert_eq!(
        (&volume["claim"], &volume["state"]),
        (&json!("data-shop-postgres-0"), &json!("ExpansionRefused"))
    );
    assert!(
        volume["message"]
            .as_str()
            .unwrap()
            .contains("must support resize"),
        "{volume}"
    );
    assert_eq!(storage(&status), ("False", "ExpansionRefused"));
    assert_eq!(
        status["phase"], "Ready",
        "the stack still serves; only the size could not change"
    );
    // The next reconcile reads the refusal from status and does not ask again: no write at all.
    let (mut stack, d, job) = edited(|spec| spec.database.bundled.storage_size = "20Gi".into());
    stack.status = Some(serde_json::from_value(status).unwrap());
    reads(Scenario::new(stack), &job, |child| live(&d, child))
        .run()
        .await;
}

#[tokio::test]
async fn the_redis_deployment_of_an_earlier_operator_gives_way_to_the_statefulset() {
    let (stack, d, job) = settled().parts();
    let old = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "shop-redis", "labels": {"perfstack.dev/stack": "shop"}}});
    reads(Scenario::new(stack), &job, |child| match child {
        Child::Redis => Reply::NotFound,
        Child::RedisDeployment => Reply::Json(old.clone()),
        other => live(&d, other),
    })
    .apply(
        Child::Redis,
        &job,
        json_of(with_ready(d.redis.clone().unwrap().1, Some(1))),
    )
    .checked(
        Method::DELETE,
        Child::RedisDeployment.uri(&job),
        Reply::Json(json!({"kind": "Status", "apiVersion": "v1", "status": "Success"})),
        |body| assert_eq!(body["propagationPolicy"], "Background"),
    )
    .run()
    .await;
}

#[tokio::test]
async fn another_postgres_major_version_is_refused_before_anything_is_written() {
    let (stack, d, job) = edited(|spec| spec.database.bundled.image = "postgres:16-alpine".into());
    let action = reads(Scenario::new(stack).with_events(), &job, |child| live(&d, child))
        .status_patch(|body| {
            let ready = &body["status"]["conditions"][0];
            assert_eq!(
                (&ready["type"], &ready["reason"]),
                (&json!("Ready"), &json!("InvalidSpec"))
            );
            let message = ready["message"].as_str().unwrap();
            assert!(
                message.contains("spec.database.bundled.image: postgres:16-alpine is PostgreSQL 16")
                    && message.contains("pg_dumpall"),
                "{message}"
            );
            assert_eq!(body["status"]["phase"], "Failed");
        })
        .event("InvalidSpec")
        .event("PhaseFailed")
        .run()
        .await;
    assert_eq!(action, kube::runtime::controller::Action::await_change());
}
