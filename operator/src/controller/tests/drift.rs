//! Other writers: a hand edit of a field the operator owns is reverted, fields it does not own are
//! left alone, and a write the API server refuses does not stop the others.
use std::sync::{Arc, Mutex};

use http::Method;
use serde_json::{Value, json};

use super::scenario::{Child, Reply, Scenario, json_of};
use super::*;

/// `object` as the API server returns it after the operator's apply, with `others` (manager,
/// fieldsV1) in its managedFields besides the operator's own entry.
fn managed(object: Reply, others: &[(&str, Value)]) -> Reply {
    let Reply::Json(mut object) = object else {
        panic!("a JSON object expected")
    };
    let mut entries = vec![json!({"manager": "perfstack-operator", "operation": "Apply", "fieldsV1": {}})];
    entries.extend(
        others
            .iter()
            .map(|(manager, fields)| json!({"manager": manager, "operation": "Update", "fieldsV1": fields})),
    );
    object["metadata"]["managedFields"] = Value::Array(entries);
    Reply::Json(object)
}

#[tokio::test]
async fn a_hand_edit_is_reverted_and_what_others_own_is_left_alone() {
    let (stack, d, job) = settled().parts();
    let scenario = reads(Scenario::new(stack), &job, |child| match child {
        // `kubectl patch configmap shop-config` changed a value the operator set.
        Child::AppConfig => {
            let Reply::Json(mut edited) = live(&d, child) else {
                unreachable!()
            };
            edited["data"]["LOG_FORMAT"] = json!("text");
            managed(
                Reply::Json(edited),
                &[("kubectl-patch", json!({"f:data": {"f:LOG_FORMAT": {}}}))],
            )
        }
        // Another tool annotated the Service, the HPA controller scaled the Deployment.
        Child::ApiService => {
            let Reply::Json(mut annotated) = live(&d, child) else {
                unreachable!()
            };
            annotated["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"] = json!("shop");
            managed(
                Reply::Json(annotated),
                &[(
                    "argocd-controller",
                    json!({"f:metadata": {"f:annotations": {"f:argocd.argoproj.io/tracking-id": {}}}}),
                )],
            )
        }
        Child::Api => managed(
            live(&d, child),
            &[("kube-controller-manager", json!({"f:spec": {"f:replicas": {}}}))],
        ),
        other => live(&d, other),
    });
    // One write: the edited ConfigMap, applied as desired (force takes the field back).
    scenario
        .apply_checked(Child::AppConfig, &job, |body| {
            assert_eq!(body["data"]["LOG_FORMAT"], "json");
        })
        .run()
        .await;
}

#[tokio::test]
async fn a_refused_child_does_not_stop_the_others_and_every_refusal_is_reported() {
    let (stack, d, job) = built().parts();
    let quota = |name: &str| {
        Reply::Refused(
            403,
            "Forbidden",
            format!("services \"{name}\" is forbidden: exceeded quota: no-services"),
        )
    };
    let report = Arc::new(Mutex::new(Value::Null));
    let seen = report.clone();
    let scenario = reads(Scenario::new(stack).with_events(), &job, |_| Reply::NotFound)
        .call(
            Method::POST,
            format!("/api/v1/namespaces/{NS}/secrets?&fieldManager=perfstack-operator"),
            Reply::Echo,
        )
        .call(
            Method::PATCH,
            format!("{}{}", Child::PostgresService.uri(&job), scenario::APPLY_QUERY),
            quota("shop-postgres"),
        )
        // Refused: the StatefulSet, the ConfigMaps, the migration and the HPA still go ahead.
        .apply(Child::Postgres, &job, json_of(statefulset(&d, Some(1))))
        .call(
            Method::PATCH,
            format!("{}{}", Child::RedisService.uri(&job), scenario::APPLY_QUERY),
            quota("shop-redis"),
        )
        .apply(Child::Redis, &job, Reply::Echo)
        .apply(Child::Hpa, &job, Reply::Echo)
        .apply(Child::AppConfig, &job, Reply::Echo)
        .apply(Child::TuningConfig, &job, Reply::Echo)
        .apply(Child::MigrationJob, &job, Reply::Echo)
        .call(
            Method::PATCH,
            format!("{}{}", Child::ApiService.uri(&job), scenario::APPLY_QUERY),
            quota("shop-api"),
        )
        .status_patch(move |body| *seen.lock().unwrap() = body["status"].clone())
        .event("ApplyFailed")
        .event("PhaseProvisioning");
    let error = scenario.run_result().await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("3 writes refused: applying Service shop-postgres"),
        "{error}"
    );
    let status = report.lock().unwrap().clone();
    assert_eq!(status["phase"], "Provisioning");
    assert_eq!(status["migration"]["state"], "Running", "the Job was created");
    let ready = &status["conditions"][0];
    assert_eq!(
        (&ready["type"], &ready["reason"]),
        (&json!("Ready"), &json!("ApplyFailed"))
    );
    let message = ready["message"].as_str().unwrap();
    for service in ["shop-postgres", "shop-redis", "shop-api"] {
        assert!(
            message.contains(&format!("applying Service {service}: ")),
            "{message}"
        );
    }
}
