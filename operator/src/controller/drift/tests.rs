use serde_json::{Value, json};

use super::*;

const MANAGER: &str = "perfstack-operator";

/// The app ConfigMap as the operator applies it.
fn desired() -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {
            "name": "shop-config", "namespace": "team-a",
            "labels": {"perfstack.dev/stack": "shop"},
            "annotations": {"perfstack.dev/applied-digest": "abc"},
            "ownerReferences": [{"apiVersion": "perfstack.dev/v1alpha1", "kind": "PerformanceStack",
                "name": "shop", "uid": "uid-1", "controller": true}],
        },
        "data": {"LOG_FORMAT": "json", "DB_POOL_MAX": "19"},
    })
}

/// What the operator's apply owns of [`desired`].
fn ours() -> Value {
    json!({
        "manager": MANAGER, "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {
                "f:labels": {"f:perfstack.dev/stack": {}},
                "f:annotations": {"f:perfstack.dev/applied-digest": {}},
                "f:ownerReferences": {"k:{\"uid\":\"uid-1\"}": {".": {}, "f:apiVersion": {}, "f:controller": {}, "f:kind": {}, "f:name": {}, "f:uid": {}}},
            },
            "f:data": {"f:LOG_FORMAT": {}, "f:DB_POOL_MAX": {}},
        },
    })
}

/// `desired` as the API server returns it, with `managers` in `metadata.managedFields` and `edit`
/// applied to it.
fn live(managers: Vec<Value>, edit: impl FnOnce(&mut Value)) -> Value {
    let mut live = desired();
    live["metadata"]["resourceVersion"] = json!("42");
    live["metadata"]["managedFields"] = Value::Array(managers);
    edit(&mut live);
    live
}

#[test]
fn a_child_as_applied_has_not_drifted_whatever_others_added() {
    let other_tool = json!({
        "manager": "argocd-controller", "operation": "Update",
        "fieldsV1": {"f:metadata": {"f:annotations": {"f:argocd.argoproj.io/tracking-id": {}}}},
    });
    let live = live(vec![ours(), other_tool], |l| {
        l["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"] = json!("x");
    });
    assert_eq!(drift(&desired(), &live, MANAGER), None);
}

#[test]
fn a_field_set_by_another_manager_is_drift() {
    let patch = json!({
        "manager": "kubectl-patch", "operation": "Update",
        "fieldsV1": {"f:data": {"f:LOG_FORMAT": {}}},
    });
    let live = live(vec![ours(), patch], |l| l["data"]["LOG_FORMAT"] = json!("text"));
    assert_eq!(
        drift(&desired(), &live, MANAGER),
        Some(Drift::TakenOver {
            manager: "kubectl-patch".into(),
            field: "data.LOG_FORMAT".into()
        })
    );
}

#[test]
fn a_removed_field_and_another_digest_are_drift() {
    let removed = live(vec![ours()], |l| {
        l["data"].as_object_mut().unwrap().remove("DB_POOL_MAX");
    });
    assert_eq!(
        drift(&desired(), &removed, MANAGER),
        Some(Drift::Missing {
            field: "data.DB_POOL_MAX".into()
        })
    );
    let older = live(vec![ours()], |l| {
        l["metadata"]["annotations"]["perfstack.dev/applied-digest"] = json!("old");
    });
    assert_eq!(drift(&desired(), &older, MANAGER), Some(Drift::Changed));
}

/// The API Deployment's container, as desired, as another manager edited it, and under an HPA.
#[test]
fn list_items_resolve_by_their_keys_and_replicas_under_an_hpa_are_not_ours() {
    let desired = json!({
        "metadata": {"annotations": {"perfstack.dev/applied-digest": "d"}},
        "spec": {
            "strategy": {"rollingUpdate": {"maxUnavailable": 0}},
            "template": {"spec": {"containers": [{"name": "api", "image": "app:1", "args": ["serve"],
                "securityContext": {"allowPrivilegeEscalation": false}}]}},
        },
    });
    let mut live = desired.clone();
    live["spec"]["replicas"] = json!(7);
    live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = json!("IfNotPresent");
    let hpa = json!({"manager": "kube-controller-manager", "operation": "Update", "subresource": "scale",
        "fieldsV1": {"f:spec": {"f:replicas": {}}}});
    live["metadata"]["managedFields"] = json!([hpa]);
    assert_eq!(
        drift(&desired, &live, MANAGER),
        None,
        "defaults and replicas are not drift"
    );
    let set_image = json!({"manager": "kubectl-set", "operation": "Update", "fieldsV1": {"f:spec": {"f:template": {"f:spec":
        {"f:containers": {"k:{\"name\":\"api\"}": {"f:image": {}}}}}}}});
    let escalate = json!({"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {"f:spec": {"f:template": {"f:spec":
        {"f:containers": {"k:{\"name\":\"api\"}": {"f:securityContext": {"f:allowPrivilegeEscalation": {}}}}}}}}});
    for (edit, field) in [
        (set_image, "spec.template.spec.containers[name=api].image"),
        (
            escalate,
            "spec.template.spec.containers[name=api].securityContext.allowPrivilegeEscalation",
        ),
    ] {
        live["metadata"]["managedFields"] = json!([edit]);
        match drift(&desired, &live, MANAGER) {
            Some(Drift::TakenOver { field: found, .. }) => assert_eq!(found, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    let sidecar = json!({"manager": "istio", "operation": "Update", "fieldsV1": {"f:spec": {"f:template": {"f:spec":
        {"f:containers": {"k:{\"name\":\"proxy\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}}});
    live["metadata"]["managedFields"] = json!([sidecar]);
    assert_eq!(
        drift(&desired, &live, MANAGER),
        None,
        "another tool's container is its own"
    );
}
