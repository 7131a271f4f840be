//! Whole-object tests of every builder for a minimal and a full spec. The expected objects are the
//! reviewed YAML files in operator/tests/golden/; `UPDATE_GOLDEN=1 cargo test -p perfstack-operator`
//! rewrites them after an intended change (review the diff before committing).
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use perfstack_contract::tuning::{PoolSettings, TuningFile};
use serde::Serialize;

use super::config::app_config_map;
use super::hpa::ReplicaRange;
use super::pod::plain_env;
use super::tuning::tuning_config_map;
use super::*;
use crate::crd::{CacheMode, DatabaseMode, DeletionPolicy, ExternalSpec, PerformanceStack, SecretKeyRef};

/// The stack `shop` in `team-a` at generation 3, as validation resolves it: `database` and `cache` are
/// where its URLs come from.
fn validated(spec: PerformanceStackSpec, database: DatabaseSource, cache: CacheSource) -> ValidatedStack {
    let mut stack = PerformanceStack::new("shop", spec.clone());
    stack.metadata.namespace = Some("team-a".into());
    stack.metadata.uid = Some("0b7c6a52-1111-2222-3333-444455556666".into());
    stack.metadata.generation = Some(3);
    ValidatedStack {
        name: "shop".into(),
        namespace: "team-a".into(),
        uid: "0b7c6a52-1111-2222-3333-444455556666".into(),
        generation: 3,
        object_ref: kube::Resource::object_ref(&stack, &()),
        app_image: spec.app.image.clone().unwrap_or_else(default_app_image),
        spec,
        database,
        cache,
        paused: None,
    }
}

fn minimal() -> ValidatedStack {
    validated(
        PerformanceStackSpec::default(),
        DatabaseSource::Bundled,
        CacheSource::Bundled,
    )
}

fn full() -> ValidatedStack {
    let resources = ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".into(), Quantity("250m".into())),
            ("memory".into(), Quantity("256Mi".into())),
        ])),
        limits: Some(BTreeMap::from([("memory".into(), Quantity("512Mi".into()))])),
        ..ResourceRequirements::default()
    };
    let mut spec = PerformanceStackSpec::default();
    spec.app.image = Some("registry.example/perfstack-app:1.4.2".into());
    spec.app.port = 9000;
    spec.app.min_replicas = 3;
    spec.app.max_replicas = 12;
    spec.app.target_cpu_utilization = 60;
    spec.app.resources = Some(resources.clone());
    spec.app.env = vec![plain_env("RUST_LOG", "debug")];
    spec.database.mode = DatabaseMode::External;
    spec.database.external = Some(ExternalSpec::secret("shop-db", Some("url")));
    spec.cache.mode = CacheMode::External;
    spec.cache.external = Some(ExternalSpec::secret("shop-redis", None));
    spec.pool.min_connections = 4;
    spec.pool.max_connections = 40;
    spec.pool.acquire_timeout_ms = 1500;
    spec.pool.idle_timeout_seconds = 120;
    spec.database.migration_secret_ref = Some(SecretKeyRef {
        name: "shop-db-owner".into(),
        key: None,
    });
    spec.auth.enabled = true;
    spec.auth.secret_ref = Some("shop-api-tokens".into());
    spec.deletion_policy = DeletionPolicy::Delete;
    validated(
        spec,
        DatabaseSource::External {
            secret: "shop-db".into(),
            key: "url".into(),
        },
        CacheSource::External {
            secret: "shop-redis".into(),
            key: "redis-url".into(),
        },
    )
}

/// A bundled database and cache with every bundled option set.
fn full_bundled() -> ValidatedStack {
    let mut spec = PerformanceStackSpec::default();
    spec.database.bundled.image = "postgres:15.6".into();
    spec.database.bundled.storage_size = "50Gi".into();
    spec.database.bundled.storage_class_name = Some("fast-ssd".into());
    spec.database.bundled.max_connections = 400;
    spec.database.bundled.resources = Some(ResourceRequirements {
        requests: Some(BTreeMap::from([("cpu".into(), Quantity("1".into()))])),
        ..ResourceRequirements::default()
    });
    spec.cache.image = "redis:7.2".into();
    spec.cache.maxmemory = "1gb".into();
    validated(spec, DatabaseSource::Bundled, CacheSource::Bundled)
}

/// A tuning file carrying the pool `min..=max` with the timeouts `acquire_ms` and `idle_s`, at the
/// stack's generation (what the tuner writes before its first decision).
fn file(min: u32, max: u32, acquire_ms: u64, idle_s: u64) -> TuningFile {
    TuningFile {
        generation: 3,
        pool: PoolSettings {
            min_connections: min,
            max_connections: max,
            acquire_timeout_ms: acquire_ms,
            idle_timeout_seconds: idle_s,
        },
    }
}

/// The spec's replica bounds, as the HPA keeps them without a tuner.
fn spec_replicas(stack: &ValidatedStack) -> ReplicaRange {
    ReplicaRange {
        min: stack.spec.app.min_replicas,
        max: stack.spec.app.max_replicas,
    }
}

/// The YAML a child serializes to.
fn yaml<T: Serialize>(object: &T) -> String {
    crate::to_yaml(object).expect("serializes")
}

/// Compares each `(child, yaml)` of `case` with its golden file (or rewrites them).
fn check(case: &str, children: &[(&str, String)]) {
    for (child, actual) in children {
        let path = format!("{}/tests/golden/{case}/{child}.yaml", env!("CARGO_MANIFEST_DIR"));
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(std::path::Path::new(&path).parent().expect("has parent"))
                .expect("mkdir");
            std::fs::write(&path, actual).expect("write golden");
            continue;
        }
        let expected = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("missing {path}; run with UPDATE_GOLDEN=1"));
        assert!(
            &expected == actual,
            "{case}/{child} differs from {path}:\n--- expected\n{expected}\n--- actual\n{actual}"
        );
    }
}

/// The API's children every stack has: its ConfigMaps (from the tuning file `tuning`), the
/// migration Job, the Deployment (at `replicas`, `None` leaving them to the HPA) and Service.
fn api_children(
    stack: &ValidatedStack,
    tuning: &TuningFile,
    replicas: Option<i32>,
) -> Vec<(&'static str, String)> {
    vec![
        ("app-configmap", yaml(&app_config_map(stack, &tuning.pool))),
        ("tuning-configmap", yaml(&tuning_config_map(stack, tuning))),
        ("migration-job", yaml(&migration::job(stack))),
        (
            "api-deployment",
            yaml(&app::deployment(stack, &stack.app_image, replicas)),
        ),
        ("api-service", yaml(&app::service(stack))),
    ]
}

#[test]
fn minimal_spec_builds_the_expected_children() {
    let stack = minimal();
    let replicas = spec_replicas(&stack);
    let password = &mut || "not-a-real-password".into();
    let secret = credentials::credentials_secret(&stack, credentials::credentials_data(&stack, password));
    let mut children = vec![
        ("credentials-secret", yaml(&secret)),
        ("postgres-statefulset", yaml(&postgres::statefulset(&stack, None))),
        ("postgres-service", yaml(&postgres::service(&stack))),
        ("redis-statefulset", yaml(&redis::statefulset(&stack, None))),
        ("redis-service", yaml(&redis::service(&stack))),
        ("hpa", yaml(&hpa::hpa(&stack, replicas))),
        ("hpa-v2beta2", yaml(&hpa::hpa_v2beta2(&stack, replicas))),
    ];
    children.extend(api_children(&stack, &file(2, 10, 3000, 600), None));
    check("minimal", &children);
}

#[test]
fn full_spec_builds_the_expected_children() {
    let stack = full();
    let bundled = full_bundled();
    let mut children = vec![
        ("hpa", yaml(&hpa::hpa(&stack, spec_replicas(&stack)))),
        (
            "postgres-statefulset",
            yaml(&postgres::statefulset(&bundled, None)),
        ),
        ("redis-statefulset", yaml(&redis::statefulset(&bundled, None))),
    ];
    children.extend(api_children(&stack, &file(4, 40, 1500, 120), Some(3)));
    check("full", &children);
}

/// The default stack with monitoring on, a `release` label for Prometheus to select by, and a
/// stricter SLO than the default.
fn monitored() -> ValidatedStack {
    let mut spec = PerformanceStackSpec::default();
    spec.monitoring.enabled = true;
    spec.monitoring.interval = "15s".into();
    spec.monitoring.labels = BTreeMap::from([("release".into(), "kube-prometheus-stack".into())]);
    spec.slo.p95_latency_ms = 150;
    spec.slo.max_error_rate_percent = 0.5;
    validated(spec, DatabaseSource::Bundled, CacheSource::Bundled)
}

#[test]
fn monitoring_builds_a_pod_monitor_and_slo_rules() {
    let stack = monitored();
    check(
        "monitoring",
        &[
            ("pod-monitor", yaml(&monitoring::pod_monitor(&stack))),
            ("prometheus-rule", yaml(&monitoring::prometheus_rule(&stack))),
        ],
    );
}

#[test]
fn without_a_cache_the_rules_leave_redis_and_jobs_out() {
    let mut stack = monitored();
    let alerts = |stack: &ValidatedStack| {
        let groups = monitoring::rules::groups(stack);
        groups[1]["rules"]
            .as_array()
            .expect("alerts")
            .iter()
            .map(|r| r["alert"].as_str().expect("named").to_owned())
            .collect::<Vec<_>>()
    };
    assert!(alerts(&stack).contains(&"PerfstackRedisDown".to_owned()));
    stack.cache = CacheSource::Disabled;
    assert_eq!(
        alerts(&stack),
        [
            "PerfstackErrorBudgetBurn",
            "PerfstackErrorBudgetBurn",
            "PerfstackLatencyP95AboveTarget",
            "PerfstackPoolSaturated"
        ]
    );
}

#[test]
fn migration_job_name_follows_image_and_database_only() {
    let a = minimal();
    let mut b = minimal();
    b.spec.pool.max_connections = 50;
    assert_eq!(migration::job(&a).metadata.name, migration::job(&b).metadata.name);
    b.app_image = "ghcr.io/perfstack/perfstack-app:9.9.9".into();
    assert_ne!(migration::job(&a).metadata.name, migration::job(&b).metadata.name);
    let name = migration::job(&a).metadata.name.expect("named");
    assert!(
        name.starts_with("shop-migrate-") && name.len() == "shop-migrate-".len() + 10,
        "{name}"
    );
}

#[test]
fn api_deployment_leaves_replicas_to_the_autoscaler_and_rolls_only_on_restart_relevant_config() {
    let stack = minimal();
    let deployment = app::deployment(&stack, "img:1", None);
    assert_eq!(deployment.spec.as_ref().and_then(|s| s.replicas), None);
    let value = serde_json::to_value(&deployment).expect("serializes");
    assert!(
        value["spec"].get("replicas").is_none(),
        "replicas must not be serialized at all"
    );
    let digest = |d: &k8s_openapi::api::apps::v1::Deployment| {
        d.spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.annotations.clone())
    };
    // Pool changes reach running pods through the tuning file: no restart.
    let mut pool = minimal();
    pool.spec.pool.max_connections = 30;
    assert_eq!(
        digest(&deployment),
        digest(&app::deployment(&pool, "img:1", None))
    );
    // Other configuration changes roll the pods.
    let mut port = minimal();
    port.spec.app.port = 9090;
    assert_ne!(
        digest(&deployment),
        digest(&app::deployment(&port, "img:1", None))
    );
}

#[test]
fn generated_passwords_are_long_and_different() {
    let (a, b) = (credentials::generate_password(), credentials::generate_password());
    assert_eq!(a.len(), 32);
    assert_ne!(a, b);
    assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
}

#[test]
fn a_live_statefulset_keeps_its_claim_template_whatever_the_spec_asks() {
    let created = minimal();
    let mut live = postgres::statefulset(&created, None);
    // What the API server adds to a stored template.
    let template = &mut live
        .spec
        .as_mut()
        .unwrap()
        .volume_claim_templates
        .as_mut()
        .unwrap()[0];
    template.spec.as_mut().unwrap().volume_mode = Some("Filesystem".into());
    template.status = Some(Default::default());
    let mut bigger = minimal();
    bigger.spec.database.bundled.storage_size = "50Gi".into();
    bigger.spec.database.bundled.storage_class_name = Some("fast-ssd".into());
    bigger.spec.database.bundled.image = "postgres:16".into();
    let kept = postgres::statefulset(&bigger, Some(&live));
    let claim = &kept.spec.unwrap().volume_claim_templates.unwrap()[0];
    let spec = claim.spec.as_ref().unwrap();
    assert_eq!(
        spec.resources.as_ref().unwrap().requests.as_ref().unwrap()["storage"].0,
        "10Gi",
        "the template cannot change; the claim is expanded instead"
    );
    assert_eq!(spec.storage_class_name, None);
    assert_eq!(
        spec.volume_mode, None,
        "what the API server added is not the operator's"
    );
    assert_eq!(
        claim.metadata.annotations.as_ref().unwrap()[postgres::MAJOR_ANNOTATION],
        "15",
        "the data was created by 15"
    );
    assert!(claim.status.is_none());
    assert_eq!(
        postgres::statefulset(&created, Some(&live)),
        postgres::statefulset(&created, None),
        "unchanged, a live StatefulSet renders as it was written: no second write"
    );
    let redis = redis::statefulset(&bigger, None);
    assert_eq!(
        redis.spec.unwrap().volume_claim_templates.unwrap()[0]
            .metadata
            .name
            .as_deref(),
        Some("data"),
        "Redis keeps its append-only file on a claim too"
    );
}

#[test]
fn postgres_major_versions_come_from_the_image_tag() {
    for (image, major) in [
        ("postgres:15-alpine", Some(15)),
        ("postgres:15.6", Some(15)),
        ("registry.example:5000/db/postgres:16@sha256:abc", Some(16)),
        ("postgres:17beta1", Some(17)),
        ("postgres", None),
        ("postgres:latest", None),
        ("registry.example:5000/postgres", None),
        ("postgres@sha256:abc", None),
    ] {
        assert_eq!(postgres::major_version(image), major, "{image}");
    }
}

#[test]
fn the_credentials_secret_is_never_owned_by_the_stack() {
    let data = credentials::credentials_data(&minimal(), &mut || "x".to_owned());
    let secret = credentials::credentials_secret(&minimal(), data);
    assert_eq!(secret.metadata.owner_references, None);
    assert_eq!(
        secret.metadata.labels.unwrap()[STACK_LABEL],
        "shop",
        "found again by name and label"
    );
}
