//! Reconcile scenarios against a mocked API server (tower-test). Each scenario scripts every call the
//! reconcile must make (method, URI, body) and fails on a missing, different or extra call. Reads
//! come first (the observe step), writes after (the apply step).
mod data;
mod drift;
mod lifecycle;
mod migration;
mod monitoring;
mod scenario;
mod traces;
mod tuner;

use std::time::Duration;

use http::Method;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, StatefulSet, StatefulSetStatus};
use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::JobStatus;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimStatus, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::runtime::controller::Action;
use perfstack_contract::migration::MigrationSummary;
use serde_json::{Value, json};

use super::FINALIZER;
use super::apply::Applied;
use super::build::{Autoscaler, Desired, build};
use super::observe::Observed;
use super::tune::{TuningDecision, tune};
use crate::children::ValidatedStack;
use crate::crd::{MigrationState, MigrationStatus, PerformanceStack, PerformanceStackSpec};
use scenario::{Child, NS, Reply, Scenario, json_of};

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

/// What the reconcile decides without a tuner: the spec's pool and replicas.
fn decision(v: &ValidatedStack) -> TuningDecision {
    tune(None, v, &Observed::default())
}

/// Every child as the reconcile of `stack` builds it once its migration succeeded.
fn desired(v: &ValidatedStack) -> Desired {
    build(v, &decision(v), &Observed::default()).unwrap()
}

/// The name of the migration Job of the stack's desired image.
fn job_name(v: &ValidatedStack) -> String {
    crate::children::migration::job_name(v)
}

/// A stack of the default spec and what its reconcile builds.
struct Built {
    stack: PerformanceStack,
    v: ValidatedStack,
    desired: Desired,
    /// The name of the migration Job of the desired image.
    job: String,
}

impl Built {
    /// The stack, its desired children and the migration Job's name: what most tests need.
    fn parts(self) -> (PerformanceStack, Desired, String) {
        (self.stack, self.desired, self.job)
    }
}

fn built() -> Built {
    let stack = stack(PerformanceStackSpec::default());
    let v = validated(&stack);
    Built {
        desired: desired(&v),
        job: job_name(&v),
        stack,
        v,
    }
}

/// A settled stack of the default spec (Ready, its migration done) and what its reconcile builds.
fn settled() -> Built {
    let mut built = built();
    built.stack.status = Some(settled_status(&built.stack, MigrationSummary::default()));
    built
}

fn ready_deployment(desired: &Deployment) -> Deployment {
    let mut deployment = desired.clone();
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

/// PostgreSQL's StatefulSet as desired, with `ready` replicas ready (no status: `None`).
fn statefulset(desired: &Desired, ready: Option<i32>) -> StatefulSet {
    let set = desired.postgres.clone().map(|(_, set)| set).unwrap_or_default();
    with_ready(set, ready)
}

fn with_ready(mut set: StatefulSet, ready: Option<i32>) -> StatefulSet {
    set.status = ready.map(|ready| StatefulSetStatus {
        replicas: 1,
        ready_replicas: Some(ready),
        ..StatefulSetStatus::default()
    });
    set
}

/// The data volume claim `name` of the stack, bound with `size`, as the StatefulSet controller made it.
fn claim(name: &str, size: &str) -> PersistentVolumeClaim {
    let storage = || Some(BTreeMap::from([("storage".to_owned(), Quantity(size.into()))]));
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            resources: Some(VolumeResourceRequirements {
                requests: storage(),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        status: Some(PersistentVolumeClaimStatus {
            phase: Some("Bound".into()),
            capacity: storage(),
            ..PersistentVolumeClaimStatus::default()
        }),
    }
}

/// The stack's two claims at the default sizes, and what the storage step makes of them.
fn claims(v: &ValidatedStack) -> [(String, PersistentVolumeClaim, crate::children::volume::VolumeSpec); 2] {
    use crate::children::{postgres, redis, volume::claim_name};
    let names = v.names();
    [
        (claim_name(&names.postgres()), "10Gi", postgres::volume(v)),
        (claim_name(&names.redis()), "1Gi", redis::volume(v)),
    ]
    .map(|(name, size, wanted)| (name.clone(), claim(&name, size), wanted))
}

/// `child` as a previous reconcile left it: as desired, ready, its migration succeeded.
fn live(desired: &Desired, child: Child) -> Reply {
    let (postgres_service, _) = desired.postgres.clone().unwrap_or_default();
    let (redis_service, redis) = desired.redis.clone().unwrap_or_default();
    match child {
        // Every key a bundled database and Redis need, as this operator generated them.
        Child::Credentials => Reply::Json(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "shop-credentials"},
            "data": {
                "username": "eA==", "password": "eA==", "database-url": "eA==", "app-username": "eA==",
                "app-password": "eA==", "app-database-url": "eA==", "redis-password": "eA=="
            }
        })),
        Child::PostgresService => json_of(postgres_service),
        Child::Postgres => json_of(statefulset(desired, Some(1))),
        Child::PostgresClaim => json_of(claim("data-shop-postgres-0", "10Gi")),
        Child::RedisService => json_of(redis_service),
        Child::Redis => json_of(with_ready(redis, Some(1))),
        Child::RedisDeployment => Reply::NotFound,
        Child::RedisClaim => json_of(claim("data-shop-redis-0", "1Gi")),
        Child::AppConfig => json_of(&desired.app_config),
        Child::TuningConfig => json_of(&desired.tuning_config),
        Child::Api => json_of(ready_deployment(desired.api.as_ref().unwrap())),
        Child::MigrationJob => {
            let mut job = desired.migration.clone().unwrap();
            job.status = Some(JobStatus {
                succeeded: Some(1),
                ..JobStatus::default()
            });
            json_of(job)
        }
        Child::ApiService => json_of(&desired.api_service),
        Child::Hpa => match &desired.hpa {
            Some(Autoscaler::V2(hpa)) => json_of(hpa.as_ref()),
            other => panic!("autoscaling/v2 expected: {other:?}"),
        },
    }
}

/// The observe step's reads of every child, each answered by `reply`.
fn reads(scenario: Scenario, job: &str, reply: impl FnMut(Child) -> Reply) -> Scenario {
    reads_of(scenario, &Child::ALL, job, reply)
}

/// The observe step's reads of `children`, each answered by `reply`.
fn reads_of(
    scenario: Scenario,
    children: &[Child],
    job: &str,
    mut reply: impl FnMut(Child) -> Reply,
) -> Scenario {
    children
        .iter()
        .fold(scenario, |s, child| s.read(*child, job, reply(*child)))
}

/// The status a previous reconcile wrote for children left as [`live`] describes them, the
/// migration having reported `summary`.
fn settled_status(stack: &PerformanceStack, summary: MigrationSummary) -> crate::crd::StackStatus {
    let v = validated(stack);
    let d = desired(&v);
    let applied = Applied {
        postgres: Some(statefulset(&d, Some(1))),
        redis: d.redis.clone().map(|(_, redis)| with_ready(redis, Some(1))),
        api: d.api.as_ref().map(ready_deployment),
        migration: Some(MigrationStatus {
            job: job_name(&v),
            image: v.app_image.clone(),
            state: MigrationState::Succeeded,
            summary: Some(summary),
            error: None,
        }),
        volumes: claims(&v)
            .iter()
            .map(|(name, claim, wanted)| crate::controller::storage::plan(name, wanted, Some(claim), None).0)
            .collect(),
        refused: Vec::new(),
    };
    let earlier = Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap());
    super::status::compute(stack, &v, &Observed::default(), &applied, &decision(&v), &earlier)
}

/// The condition `type_` of a status as the operator wrote it.
fn condition_in<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|conditions| conditions.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {status}"))
}

fn condition_types(status: &Value) -> Vec<&str> {
    status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn first_reconcile_creates_every_child_and_reports_provisioning() {
    let (stack, d, job) = built().parts();
    let scenario = reads(Scenario::new(stack).with_events(), &job, |_| Reply::NotFound)
        .checked(
            Method::POST,
            format!("/api/v1/namespaces/{NS}/secrets?&fieldManager=perfstack-operator"),
            Reply::Echo,
            |body| {
                assert!(
                    body["metadata"].get("ownerReferences").is_none(),
                    "the credentials are never owned: no garbage collection may delete them"
                );
                let data = &body["stringData"];
                assert_eq!(data["password"].as_str().map(str::len), Some(32));
                assert!(
                    data["database-url"]
                        .as_str()
                        .unwrap()
                        .starts_with("postgres://perfstack:")
                );
            },
        )
        .apply(Child::PostgresService, &job, Reply::Echo)
        // The database comes up ready here, so the migration Job starts in this same pass.
        .apply(Child::Postgres, &job, json_of(statefulset(&d, Some(1))))
        .apply(Child::RedisService, &job, Reply::Echo)
        .apply(Child::Redis, &job, Reply::Echo)
        // The HPA before the pool (a ceiling comes down before a pool change can reach a pod).
        .apply(Child::Hpa, &job, Reply::Echo)
        .apply(Child::AppConfig, &job, Reply::Echo)
        .apply_checked(Child::TuningConfig, &job, |body| {
            let file = body["data"]["tuning.yaml"].as_str().unwrap();
            assert!(file.contains("maxConnections: 10"), "{file}");
        })
        .apply_checked(Child::MigrationJob, &job, |body| {
            let args = &body["spec"]["template"]["spec"]["containers"][0]["args"];
            assert_eq!(
                args,
                &json!(["migrate", "--summary-file", "/dev/termination-log"])
            );
        })
        // No API Deployment yet: it starts only after the migration succeeded.
        .apply(Child::ApiService, &job, Reply::Echo)
        .status_patch(move |body| {
            let status = &body["status"];
            assert_eq!(status["phase"], "Provisioning");
            assert_eq!(status["observedGeneration"], 1);
            assert_eq!(status["apiUrl"], "http://shop-api.team-a.svc:8080");
            assert_eq!(
                condition_types(status),
                [
                    "Ready",
                    "DatabaseReady",
                    "CacheReady",
                    "MigrationsApplied",
                    "AppReady",
                    "Autoscaling",
                    "Storage",
                    "Suspended"
                ]
            );
            assert_eq!(status["conditions"][0]["status"], "False");
            assert_eq!(status["migration"]["state"], "Running");
            assert_eq!(status["migration"]["job"], job.as_str());
        })
        // Conditions turning True are no Events: only the phase change is.
        .event("PhaseProvisioning");
    assert_eq!(scenario.run().await, Action::requeue(Duration::from_secs(300)));
}

/// A Ready stack whose migration reported two migrations, every child [`live`].
fn steady() -> (PerformanceStack, Desired, String) {
    let (mut stack, d, job) = built().parts();
    let summary = MigrationSummary {
        migrations_applied: 2,
        ..MigrationSummary::default()
    };
    stack.status = Some(settled_status(&stack, summary));
    assert_eq!(
        stack.status.as_ref().unwrap().phase,
        Some(crate::crd::Phase::Ready)
    );
    (stack, d, job)
}

#[tokio::test]
async fn steady_state_reconcile_sends_no_request_at_all() {
    let (stack, d, job) = steady();
    // Every child comes from the stores the watches fill: no GET. The finished migration's summary
    // comes from status: no pod is read for it. Nothing else: no apply, no status patch, no Event.
    let scenario = reads(Scenario::new(stack).with_events(), &job, |child| live(&d, child));
    assert_eq!(scenario.expected_calls(), 0, "the scenario expects no call");
    scenario.run().await;
}

#[tokio::test]
async fn before_the_stores_synced_a_steady_reconcile_reads_each_child_with_a_get_and_never_writes() {
    let (stack, d, job) = steady();
    // A GET per child, in observe's order, and nothing else.
    let scenario = reads(
        Scenario::new(stack).with_events().with_unsynced_stores(),
        &job,
        |child| live(&d, child),
    );
    assert_eq!(scenario.expected_calls(), Child::ALL.len());
    scenario.run().await;
}

#[tokio::test]
async fn migration_waits_for_the_database() {
    let (stack, d, job) = built().parts();
    let starting = statefulset(&d, None);
    reads(Scenario::new(stack), &job, |child| match child {
        Child::Postgres => json_of(&starting),
        // The Job is looked up but not created while PostgreSQL is not ready.
        Child::Api | Child::MigrationJob => Reply::NotFound,
        other => live(&d, other),
    })
    .status_patch(|body| {
        let migration = &body["status"]["conditions"][3];
        assert_eq!(migration["type"], "MigrationsApplied");
        assert_eq!(migration["reason"], "WaitingForDatabase");
        assert_eq!(body["status"]["migration"]["state"], "WaitingForDatabase");
    })
    .run()
    .await;
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
