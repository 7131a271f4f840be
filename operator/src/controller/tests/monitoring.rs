//! `spec.monitoring`: the PodMonitor and PrometheusRule where the cluster serves their kinds, a
//! condition where it does not (the rest of the stack unaffected), and their removal once turned off.
use http::Method;
use serde_json::{Value, json};

use super::scenario::{NS, Reply, Scenario};
use super::{desired, live, reads, settled_status, stack, validated};
use crate::crd::{PerformanceStack, PerformanceStackSpec};
use perfstack_contract::migration::MigrationSummary;

const DISCOVERY: &str = "/apis/monitoring.coreos.com/v1";

fn monitoring_uri(plural: &str, name: &str) -> String {
    format!("{DISCOVERY}/namespaces/{NS}/{plural}/{name}")
}

/// A settled stack (every child live and ready) whose spec has monitoring `enabled`.
fn settled(enabled: bool) -> (PerformanceStack, String) {
    let mut spec = PerformanceStackSpec::default();
    spec.monitoring.enabled = enabled;
    let mut stack = stack(spec);
    stack.status = Some(settled_status(&stack, MigrationSummary::default()));
    let job = crate::children::migration::job_name(&validated(&stack));
    (stack, job)
}

fn served() -> Reply {
    Reply::Json(json!({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "monitoring.coreos.com/v1",
        "resources": [
            {"name": "podmonitors", "singularName": "podmonitor", "namespaced": true, "kind": "PodMonitor", "verbs": ["get", "patch"]},
            {"name": "prometheusrules", "singularName": "prometheusrule", "namespaced": true, "kind": "PrometheusRule", "verbs": ["get", "patch"]}
        ]
    }))
}

fn monitoring_condition(body: &Value) -> Value {
    body["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Monitoring")
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn served_kinds_get_a_pod_monitor_and_slo_rules() {
    let (stack, job) = settled(true);
    let d = desired(&validated(&stack));
    reads(Scenario::new(stack).with_events(), &job, |child| live(&d, child))
        .call(Method::GET, DISCOVERY, served())
        .call(
            Method::GET,
            monitoring_uri("podmonitors", "shop-api"),
            Reply::NotFound,
        )
        .call(
            Method::GET,
            monitoring_uri("prometheusrules", "shop-slo"),
            Reply::NotFound,
        )
        .checked(
            Method::PATCH,
            format!(
                "{}?&force=true&fieldManager=perfstack-operator",
                monitoring_uri("podmonitors", "shop-api")
            ),
            Reply::Echo,
            |body| {
                assert_eq!(body["kind"], "PodMonitor");
                assert_eq!(body["spec"]["podMetricsEndpoints"][0]["port"], "http");
                assert_eq!(body["metadata"]["ownerReferences"][0]["uid"], "uid-1");
            },
        )
        .checked(
            Method::PATCH,
            format!(
                "{}?&force=true&fieldManager=perfstack-operator",
                monitoring_uri("prometheusrules", "shop-slo")
            ),
            Reply::Echo,
            |body| {
                assert_eq!(body["kind"], "PrometheusRule");
                let alerts = body["spec"]["groups"][1]["rules"].to_string();
                assert!(alerts.contains("PerfstackErrorBudgetBurn"), "{alerts}");
            },
        )
        .status_patch(|body| {
            let condition = monitoring_condition(body);
            assert_eq!(condition["status"], "True", "{condition}");
            assert_eq!(condition["reason"], "MonitoringCreated");
            assert_eq!(body["status"]["phase"], "Ready");
        })
        .run()
        .await;
}

#[tokio::test]
async fn kinds_not_served_are_reported_and_the_stack_stays_ready() {
    let (stack, job) = settled(true);
    let d = desired(&validated(&stack));
    // No monitoring read or write after the 404; the other children are as they were (no apply).
    reads(Scenario::new(stack).with_events(), &job, |child| live(&d, child))
        .call(Method::GET, DISCOVERY, Reply::NotFound)
        .status_patch(|body| {
            let condition = monitoring_condition(body);
            assert_eq!(condition["status"], "False", "{condition}");
            assert_eq!(condition["reason"], "MonitoringKindsNotServed");
            assert!(
                condition["message"]
                    .as_str()
                    .unwrap()
                    .contains("Prometheus Operator")
            );
            assert_eq!(body["status"]["phase"], "Ready");
            assert_eq!(body["status"]["conditions"][0]["status"], "True");
        })
        .run()
        .await;
}

#[tokio::test]
async fn turning_monitoring_off_deletes_what_was_created() {
    let (mut stack, job) = settled(false);
    let now = crate::controller::status::now();
    if let Some(status) = stack.status.as_mut() {
        crate::controller::status::conditions::set_condition(
            &mut status.conditions,
            crate::controller::status::conditions::Verdict {
                type_: "Monitoring",
                ok: true,
                reason: "MonitoringCreated",
                message: "created".into(),
            },
            Some(1),
            &now,
        );
    }
    let d = desired(&validated(&stack));
    reads(Scenario::new(stack), &job, |child| live(&d, child))
        .call(
            Method::DELETE,
            monitoring_uri("podmonitors", "shop-api"),
            Reply::Echo,
        )
        // Gone already: counts as deleted.
        .call(
            Method::DELETE,
            monitoring_uri("prometheusrules", "shop-slo"),
            Reply::NotFound,
        )
        .status_patch(|body| {
            assert_eq!(monitoring_condition(body), Value::Null, "{body}");
        })
        .run()
        .await;
}
