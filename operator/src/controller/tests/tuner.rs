//! The tuner across an operator restart: what it had put in force before (the pool in the live
//! tuning file, the HPA bounds in `status.tuning`) stays; nothing is written back to the spec's.
use http::Method;
use serde_json::json;

use super::scenario::{Child, NS, Reply, Scenario};
use super::*;
use crate::crd::{StackStatus, TunedSettings, TuningStatus};
use crate::tuner::Settings;

#[tokio::test]
async fn a_restarted_operator_keeps_the_tuned_pool_and_floor_and_writes_no_child() {
    let mut spec = PerformanceStackSpec::default();
    spec.pool.max_connections = 40;
    let mut stack = stack(spec);
    let v = validated(&stack);
    // Before the restart, during a spike, the tuner had grown the pool to 15 and raised the floor
    // to 6 (the ceiling 6 the budget leaves: 6 + 6 in transit x 15 + 10 = 190).
    let tuned = Settings {
        pool_min: 2,
        pool_max: 15,
        hpa_min: 6,
        hpa_max: 6,
        generation: 7,
    };
    let decision = TuningDecision {
        settings: tuned,
        ..super::decision(&v)
    };
    let d = build(&v, &decision, &Observed::default()).unwrap();
    stack.status = Some(StackStatus {
        tuning: Some(TuningStatus {
            in_force: Some(TunedSettings {
                pool_min: 2,
                pool_max: 15,
                min_replicas: 6,
                max_replicas: 6,
                generation: 7,
            }),
            ..TuningStatus::default()
        }),
        ..settled_status(&stack, MigrationSummary::default())
    });
    let job = job_name(&v);
    // Every child read, then the API pods listed for the first interval (none Ready yet: it only
    // takes a baseline). No child is written: neither the HPA (still 6..6) nor the pool (still 15).
    // The pods come from the API server's watch cache (resourceVersion=0), not from etcd.
    reads(Scenario::new(stack).with_tuner(), &job, |child| live(&d, child))
        .call(
            Method::GET,
            format!(
                "/api/v1/namespaces/{NS}/pods?&labelSelector={}&resourceVersion=0&resourceVersionMatch=NotOlderThan",
                "app.kubernetes.io%2Fcomponent%3Dapi%2Capp.kubernetes.io%2Finstance%3Dshop%2Capp.kubernetes.io%2Fname%3Dperfstack"
            ),
            Reply::Json(json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": []})),
        )
        .status_patch(|body| {
            let status = &body["status"];
            assert_eq!(status["pool"], "2-15", "the tuned pool, not the spec's");
            assert_eq!(status["tuning"]["inForce"]["minReplicas"], 6);
            assert_eq!(condition_in(status, "ConnectionBudget")["status"], "True");
        })
        .run()
        .await;
}

#[tokio::test]
async fn a_smaller_pool_goes_out_under_a_ceiling_that_leaves_room_for_both_pools_hpa_first() {
    let (mut stack, d, job) = settled().parts();
    stack.spec.pool.max_connections = 8;
    stack.metadata.generation = Some(2);
    // Two API pods alive, none Ready (the listing counts them all).
    let pod =
        |name: &str| json!({"metadata": {"name": name, "namespace": NS}, "status": {"phase": "Pending"}});
    let pods = json!({"apiVersion": "v1", "kind": "PodList", "metadata": {},
        "items": [pod("shop-api-a"), pod("shop-api-b")]});
    reads(Scenario::new(stack).with_tuner(), &job, |child| live(&d, child))
        .call(
            Method::GET,
            format!("/api/v1/namespaces/{NS}/pods?"),
            Reply::Json(pods),
        )
        // While a pod may hold its 10-pool and the new 8-pool: (4 + 3 in transit) x 18 + 10 = 136,
        // and the HPA is written before any pod can read the new pool.
        .apply_checked(Child::Hpa, &job, |body| {
            assert_eq!(
                (&body["spec"]["minReplicas"], &body["spec"]["maxReplicas"]),
                (&json!(2), &json!(4))
            );
        })
        .apply_checked(Child::AppConfig, &job, |body| {
            assert_eq!(body["data"]["DB_POOL_MAX"], "8")
        })
        .apply_checked(Child::TuningConfig, &job, |body| {
            let file = body["data"]["tuning.yaml"].as_str().unwrap();
            assert!(file.contains("maxConnections: 8"), "{file}");
        })
        .status_patch(|body| {
            let budget = condition_in(&body["status"], "ConnectionBudget");
            assert_eq!(budget["reason"], "Fits", "the defaults fit: {budget}");
        })
        .run()
        .await;
}
