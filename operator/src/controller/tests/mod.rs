//! Reconcile scenarios against a mocked API server (tower-test). Each scenario scripts every call the
//! reconcile must make (method, URI, body) and fails on a missing, different or extra call.
mod mock;

use std::time::Duration;

use http::Method;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::batch::v1::{Job, JobStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Resource;
use kube::runtime::controller::Action;
use serde_json::{Value, json};

use super::apply::{Applied, with_applied_digest};
use super::migrate::MigrationState;
use super::{AutoscalingApi, FINALIZER};
use crate::build::config::{TuningFile, app_config_map, tuning_config_map};
use crate::build::{ValidatedStack, app, hpa, migration, postgres, redis};
use crate::crd::{DeletionPolicy, PerformanceStack, PerformanceStackSpec};
use mock::*;

fn stack(spec: PerformanceStackSpec) -> PerformanceStack {
    let mut stack = PerformanceStack::new("shop", spec);
    stack.metadata.namespace = Some(NS.into());
    stack.metadata.uid = Some("uid-1".into());
    stack.metadata.generation = Some(1);
    stack.metadata.finalizers = Some(vec![FINALIZER.into()]);
    stack
}

fn validated(stack: &PerformanceStack) -> ValidatedStack {
    super::validate::validate(stack).unwrap()
}

fn stack_json(stack: &PerformanceStack) -> Value {
    serde_json::to_value(stack).unwrap()
}

fn is_apply_of(kind: &'static str, name: String) -> impl Fn(&Value) + Send + 'static {
    move |body| {
        assert_eq!(body["kind"], kind);
        assert_eq!(body["metadata"]["name"], name.as_str());
        assert_eq!(body["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        assert!(body["metadata"]["annotations"]["perfstack.dev/applied-digest"].is_string());
    }
}

const APPLY_QUERY: &str = "?&force=true&fieldManager=perfstack-operator";

#[tokio::test]
async fn first_reconcile_creates_every_child_and_reports_provisioning() {
    let stack = stack(PerformanceStackSpec::default());
    let names = validated(&stack).names();
    let job = migration::job(&validated(&stack)).metadata.name.unwrap();
    let apply = |uri: String, kind: &'static str, name: String| {
        checked(
            Method::PATCH,
            format!("{uri}{APPLY_QUERY}"),
            Reply::Echo,
            is_apply_of(kind, name),
        )
    };
    let events_uri = format!("/apis/events.k8s.io/v1/namespaces/{NS}/events");
    let script = vec![
        call(
            Method::GET,
            core("secrets", &names.credentials()),
            Reply::NotFound,
        ),
        checked(
            Method::POST,
            format!("/api/v1/namespaces/{NS}/secrets?&fieldManager=perfstack-operator"),
            Reply::Echo,
            |body| {
                let data = &body["stringData"];
                assert_eq!(data["password"].as_str().map(str::len), Some(32));
                assert!(
                    data["database-url"]
                        .as_str()
                        .unwrap()
                        .starts_with("postgres://perfstack:")
                );
            },
        ),
        call(Method::GET, core("services", &names.postgres()), Reply::NotFound),
        apply(core("services", &names.postgres()), "Service", names.postgres()),
        call(
            Method::GET,
            apps("statefulsets", &names.postgres()),
            Reply::NotFound,
        ),
        // The database comes up ready here, so the migration Job starts in this same pass.
        checked(
            Method::PATCH,
            format!("{}{APPLY_QUERY}", apps("statefulsets", &names.postgres())),
            Reply::Json(json_of(ready_statefulset(&validated(&stack)))),
            is_apply_of("StatefulSet", names.postgres()),
        ),
        call(Method::GET, core("services", &names.redis()), Reply::NotFound),
        apply(core("services", &names.redis()), "Service", names.redis()),
        call(Method::GET, apps("deployments", &names.redis()), Reply::NotFound),
        apply(apps("deployments", &names.redis()), "Deployment", names.redis()),
        call(Method::GET, core("configmaps", &names.config()), Reply::NotFound),
        apply(core("configmaps", &names.config()), "ConfigMap", names.config()),
        call(Method::GET, core("configmaps", &names.tuning()), Reply::NotFound),
        checked(
            Method::PATCH,
            format!("{}{APPLY_QUERY}", core("configmaps", &names.tuning())),
            Reply::Echo,
            |body| {
                let file = body["data"]["tuning.yaml"].as_str().unwrap();
                assert!(file.contains("maxConnections: 20"), "{file}");
            },
        ),
        call(Method::GET, apps("deployments", &names.api()), Reply::NotFound),
        call(
            Method::GET,
            ns_path("/apis/batch/v1", "jobs", &job),
            Reply::NotFound,
        ),
        checked(Method::POST, events_uri.clone(), Reply::Echo, |body| {
            assert_eq!(body["reason"], "MigrationStarted")
        }),
        checked(
            Method::PATCH,
            format!("{}{APPLY_QUERY}", ns_path("/apis/batch/v1", "jobs", &job)),
            Reply::Echo,
            |body| {
                let args = &body["spec"]["template"]["spec"]["containers"][0]["args"];
                assert_eq!(
                    args,
                    &json!(["migrate", "--summary-file", "/dev/termination-log"])
                );
            },
        ),
        // No API Deployment yet: it starts only after the migration succeeded.
        call(Method::GET, core("services", &names.api()), Reply::NotFound),
        apply(core("services", &names.api()), "Service", names.api()),
        call(
            Method::GET,
            ns_path("/apis/autoscaling/v2", "horizontalpodautoscalers", &names.api()),
            Reply::NotFound,
        ),
        apply(
            ns_path("/apis/autoscaling/v2", "horizontalpodautoscalers", &names.api()),
            "HorizontalPodAutoscaler",
            names.api(),
        ),
        checked(
            Method::PATCH,
            format!("{}/status?", stacks("shop")),
            Reply::Json(stack_json(&stack)),
            |body| {
                let status = &body["status"];
                assert_eq!(status["phase"], "Provisioning");
                assert_eq!(status["observedGeneration"], 1);
                assert_eq!(status["apiUrl"], "http://shop-api.team-a.svc:8080");
                let types: Vec<&str> = status["conditions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["type"].as_str().unwrap())
                    .collect();
                assert_eq!(
                    types,
                    [
                        "Ready",
                        "DatabaseReady",
                        "CacheReady",
                        "MigrationsApplied",
                        "AppReady",
                        "Autoscaling"
                    ]
                );
                assert_eq!(status["conditions"][0]["status"], "False");
            },
        ),
        checked(Method::POST, events_uri.clone(), Reply::Echo, |body| {
            assert_eq!(body["reason"], "PostgresReady")
        }),
        checked(Method::POST, events_uri.clone(), Reply::Echo, |body| {
            assert_eq!(body["reason"], "HorizontalPodAutoscalerReady")
        }),
        checked(Method::POST, events_uri, Reply::Echo, |body| {
            assert_eq!(body["reason"], "PhaseProvisioning")
        }),
    ];
    let action = run_scenario(stack, true, script).await;
    assert_eq!(action, Action::requeue(Duration::from_secs(300)));
}

fn ready_statefulset(stack: &ValidatedStack) -> StatefulSet {
    let mut set = with_applied_digest(postgres::statefulset(stack)).unwrap();
    set.status = Some(StatefulSetStatus {
        replicas: 1,
        ready_replicas: Some(1),
        ..StatefulSetStatus::default()
    });
    set
}

fn ready_deployment(desired: Deployment) -> Deployment {
    let mut deployment = with_applied_digest(desired).unwrap();
    deployment.metadata.generation = Some(1);
    deployment.status = Some(DeploymentStatus {
        observed_generation: Some(1),
        replicas: Some(2),
        ready_replicas: Some(2),
        updated_replicas: Some(2),
        available_replicas: Some(2),
        ..DeploymentStatus::default()
    });
    deployment
}

fn json_of<K: serde::Serialize>(object: K) -> Value {
    serde_json::to_value(object).unwrap()
}

#[tokio::test]
async fn steady_state_reconcile_reads_but_never_writes() {
    let mut stack = stack(PerformanceStackSpec::default());
    let v = validated(&stack);
    let names = v.names();
    let mut job: Job = with_applied_digest(migration::job(&v)).unwrap();
    job.status = Some(JobStatus {
        succeeded: Some(1),
        ..JobStatus::default()
    });
    let job_name = job.metadata.name.clone().unwrap();
    let postgres_set = ready_statefulset(&v);
    let redis_deployment = ready_deployment(redis::deployment(&v));
    let api_deployment = ready_deployment(app::deployment(&v, &v.app_image, None));
    // The status a previous reconcile wrote for exactly these children.
    let applied = Applied {
        postgres: Some(postgres_set.clone()),
        redis: Some(redis_deployment.clone()),
        migration: Some(MigrationState::Succeeded {
            job: job_name.clone(),
            summary: Some("{\"migrationsApplied\":2}".into()),
        }),
        api: Some(api_deployment.clone()),
        autoscaling: AutoscalingApi::V2,
        ..Applied::default()
    };
    let earlier = Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap());
    stack.status = Some(super::status::compute(&stack, &v, &applied, &earlier));
    assert_eq!(
        stack.status.as_ref().unwrap().phase,
        Some(crate::crd::Phase::Ready)
    );

    let digest = |object: Value| Reply::Json(object);
    let script = vec![
        call(
            Method::GET,
            core("secrets", &names.credentials()),
            Reply::Json(
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": names.credentials()}}),
            ),
        ),
        call(
            Method::GET,
            core("services", &names.postgres()),
            digest(json_of(with_applied_digest(postgres::service(&v)).unwrap())),
        ),
        call(
            Method::GET,
            apps("statefulsets", &names.postgres()),
            digest(json_of(postgres_set)),
        ),
        call(
            Method::GET,
            core("services", &names.redis()),
            digest(json_of(with_applied_digest(redis::service(&v)).unwrap())),
        ),
        call(
            Method::GET,
            apps("deployments", &names.redis()),
            digest(json_of(redis_deployment)),
        ),
        call(
            Method::GET,
            core("configmaps", &names.config()),
            digest(json_of(with_applied_digest(app_config_map(&v)).unwrap())),
        ),
        call(
            Method::GET,
            core("configmaps", &names.tuning()),
            digest(json_of(
                with_applied_digest(tuning_config_map(&v, &TuningFile::from_spec(&v)).unwrap()).unwrap(),
            )),
        ),
        call(
            Method::GET,
            apps("deployments", &names.api()),
            digest(json_of(api_deployment)),
        ),
        call(
            Method::GET,
            ns_path("/apis/batch/v1", "jobs", &job_name),
            digest(json_of(job)),
        ),
        call(
            Method::GET,
            core("services", &names.api()),
            digest(json_of(with_applied_digest(app::service(&v)).unwrap())),
        ),
        call(
            Method::GET,
            ns_path("/apis/autoscaling/v2", "horizontalpodautoscalers", &names.api()),
            digest(json_of(with_applied_digest(hpa::hpa(&v)).unwrap())),
        ),
        // Nothing else: no apply, no status patch, no Event.
    ];
    run_scenario(stack, true, script).await;
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
    let script = vec![checked(
        Method::PATCH,
        format!("{}/status?", stacks("shop")),
        Reply::Json(stack_json(&stack)),
        |body| {
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
        },
    )];
    let action = run_scenario(stack, false, script).await;
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
    let script = vec![checked(
        Method::PATCH,
        format!("{}?", stacks("shop")),
        Reply::Json(stack_json(&stack)),
        |body| {
            assert_eq!(body[1]["op"], "add");
            assert_eq!(body[1]["value"], json!([FINALIZER]));
        },
    )];
    assert_eq!(run_scenario(stack, false, script).await, Action::await_change());
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
    let stack = deleting(DeletionPolicy::Delete);
    let pvc_list = json!({
        "apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": {},
        "items": [{"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": {"name": "data-shop-postgres-0"}}]
    });
    let script = vec![
        call(
            Method::GET,
            format!(
                "/api/v1/namespaces/{NS}/persistentvolumeclaims?&labelSelector=perfstack.dev%2Fstack%3Dshop"
            ),
            Reply::Json(pvc_list),
        ),
        // Already gone: tolerated.
        call(
            Method::DELETE,
            core("persistentvolumeclaims", "data-shop-postgres-0"),
            Reply::NotFound,
        ),
        checked(
            Method::PATCH,
            format!("{}?", stacks("shop")),
            Reply::Json(stack_json(&stack)),
            removes_finalizer,
        ),
    ];
    assert_eq!(run_scenario(stack, false, script).await, Action::await_change());
}

#[tokio::test]
async fn deletion_with_retain_policy_keeps_volumes_and_orphans_the_credentials() {
    let stack = deleting(DeletionPolicy::Retain);
    let script = vec![
        checked(
            Method::PATCH,
            format!("{}?", core("secrets", "shop-credentials")),
            Reply::NotFound,
            |body| {
                assert_eq!(body, &json!({"metadata": {"ownerReferences": null}}));
            },
        ),
        checked(
            Method::PATCH,
            format!("{}?", stacks("shop")),
            Reply::Json(stack_json(&stack)),
            removes_finalizer,
        ),
    ];
    assert_eq!(run_scenario(stack, false, script).await, Action::await_change());
}

#[test]
fn backoff_grows_exponentially_with_jitter_and_is_capped() {
    use super::backoff;
    assert_eq!(backoff(1, 1.0), Duration::from_secs(2));
    assert_eq!(backoff(1, 0.0), Duration::from_secs(1));
    assert_eq!(backoff(4, 1.0), Duration::from_secs(16));
    assert_eq!(backoff(30, 1.0), Duration::from_secs(300));
    assert!(backoff(3, 0.3) < backoff(3, 0.9));
}

#[tokio::test]
async fn migration_waits_for_the_database() {
    let stack = stack(PerformanceStackSpec::default());
    let v = validated(&stack);
    let names = v.names();
    let mut starting = ready_statefulset(&v);
    starting.status = None;
    let json = |object: Value| Reply::Json(object);
    let script = vec![
        call(
            Method::GET,
            core("secrets", &names.credentials()),
            json(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": names.credentials()}})),
        ),
        call(
            Method::GET,
            core("services", &names.postgres()),
            json(json_of(with_applied_digest(postgres::service(&v)).unwrap())),
        ),
        call(
            Method::GET,
            apps("statefulsets", &names.postgres()),
            json(json_of(starting)),
        ),
        call(
            Method::GET,
            core("services", &names.redis()),
            json(json_of(with_applied_digest(redis::service(&v)).unwrap())),
        ),
        call(
            Method::GET,
            apps("deployments", &names.redis()),
            json(json_of(ready_deployment(redis::deployment(&v)))),
        ),
        call(
            Method::GET,
            core("configmaps", &names.config()),
            json(json_of(with_applied_digest(app_config_map(&v)).unwrap())),
        ),
        call(
            Method::GET,
            core("configmaps", &names.tuning()),
            json(json_of(
                with_applied_digest(tuning_config_map(&v, &TuningFile::from_spec(&v)).unwrap()).unwrap(),
            )),
        ),
        call(Method::GET, apps("deployments", &names.api()), Reply::NotFound),
        // The Job is looked up but not created while PostgreSQL is not ready.
        call(
            Method::GET,
            ns_path(
                "/apis/batch/v1",
                "jobs",
                &migration::job(&v).metadata.name.unwrap(),
            ),
            Reply::NotFound,
        ),
        call(
            Method::GET,
            core("services", &names.api()),
            json(json_of(with_applied_digest(app::service(&v)).unwrap())),
        ),
        call(
            Method::GET,
            ns_path("/apis/autoscaling/v2", "horizontalpodautoscalers", &names.api()),
            json(json_of(with_applied_digest(hpa::hpa(&v)).unwrap())),
        ),
        checked(
            Method::PATCH,
            format!("{}/status?", stacks("shop")),
            Reply::Json(stack_json(&stack)),
            |body| {
                let migration = &body["status"]["conditions"][3];
                assert_eq!(migration["type"], "MigrationsApplied");
                assert_eq!(migration["reason"], "WaitingForDatabase");
            },
        ),
    ];
    run_scenario(stack, false, script).await;
}

#[tokio::test]
async fn suspended_stack_only_reports_suspended() {
    let stack = stack(PerformanceStackSpec {
        suspend: true,
        ..PerformanceStackSpec::default()
    });
    let script = vec![checked(
        Method::PATCH,
        format!("{}/status?", stacks("shop")),
        Reply::Json(stack_json(&stack)),
        |body| {
            assert_eq!(body["status"]["phase"], "Suspended");
        },
    )];
    assert_eq!(run_scenario(stack, false, script).await, Action::await_change());
}
