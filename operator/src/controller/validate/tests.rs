use super::*;
use crate::crd::PerformanceStackSpec;

fn stack(spec: PerformanceStackSpec) -> PerformanceStack {
    let mut stack = PerformanceStack::new("demo", spec);
    stack.metadata.namespace = Some("ns".into());
    stack.metadata.uid = Some("uid-1".into());
    stack
}

#[test]
fn defaults_are_valid_and_resolve_the_image() {
    let validated = validate(&stack(PerformanceStackSpec::default())).unwrap();
    assert_eq!(validated.app_image, default_app_image());
    assert_eq!(validated.database, DatabaseSource::Bundled);
    assert_eq!(validated.cache, CacheSource::Bundled);
}

#[test]
fn a_stack_is_paused_by_spec_or_by_annotation() {
    let mut spec = PerformanceStackSpec::default();
    assert_eq!(validate(&stack(spec.clone())).unwrap().paused, None);
    let mut annotated = stack(spec.clone());
    annotated.metadata.annotations = Some([(PAUSED_ANNOTATION.to_owned(), "true".to_owned())].into());
    assert_eq!(
        validate(&annotated).unwrap().paused.map(|p| p.reason),
        Some("PausedByAnnotation")
    );
    spec.suspend = true;
    assert_eq!(
        validate(&stack(spec)).unwrap().paused.map(|p| p.reason),
        Some("SpecSuspend")
    );
}

#[test]
fn pool_min_above_max_names_the_field() {
    let mut spec = PerformanceStackSpec::default();
    spec.pool.min_connections = 30;
    spec.pool.max_connections = 20;
    let err = validate(&stack(spec)).unwrap_err();
    assert_eq!(err.field, "spec.pool.minConnections");
}

#[test]
fn external_database_needs_a_secret_reference() {
    let mut spec = PerformanceStackSpec::default();
    spec.database.mode = DatabaseMode::External;
    let err = validate(&stack(spec)).unwrap_err();
    assert_eq!(err.field, "spec.database.external");
}

#[test]
fn replicas_out_of_bounds_and_reserved_env_are_rejected() {
    let mut spec = PerformanceStackSpec::default();
    spec.app.max_replicas = 101;
    assert_eq!(validate(&stack(spec)).unwrap_err().field, "spec.app.maxReplicas");
    let mut spec = PerformanceStackSpec::default();
    spec.app
        .env
        .push(crate::children::pod::plain_env("DATABASE_URL", "x"));
    assert_eq!(validate(&stack(spec)).unwrap_err().field, "spec.app.env[0].name");
}

#[test]
fn pool_bounds_are_the_tuning_files() {
    let mut spec = PerformanceStackSpec::default();
    spec.pool.max_connections = 501;
    spec.database.bundled.max_connections = 1000;
    let err = validate(&stack(spec)).unwrap_err();
    assert_eq!(
        (err.field.as_str(), err.message.as_str()),
        ("spec.pool.maxConnections", "501 is outside 1..=500")
    );
    let mut spec = PerformanceStackSpec::default();
    spec.pool.acquire_timeout_ms = 0;
    assert_eq!(
        validate(&stack(spec)).unwrap_err().to_string(),
        "spec.pool.acquireTimeoutMs: 0 is outside 1..=600000"
    );
}

#[test]
fn quantities_and_memory_sizes() {
    assert!(size("f", "10Gi").is_ok());
    assert!(size("f", "ten").is_err());
    assert!(is_redis_memory("256mb"));
    assert!(!is_redis_memory("256 mb"));
}

#[test]
fn an_invalid_resource_quantity_is_refused_naming_it() {
    let mut spec = PerformanceStackSpec::default();
    spec.app.resources = Some(ResourceRequirements {
        requests: Some([("cpu".to_owned(), Quantity("lots".into()))].into()),
        ..ResourceRequirements::default()
    });
    let err = validate(&stack(spec)).unwrap_err();
    assert_eq!(err.field, "spec.app.resources.requests.cpu");
    assert!(err.message.contains("not a Kubernetes quantity"), "{err}");
    let mut spec = PerformanceStackSpec::default();
    spec.database.bundled.resources = Some(ResourceRequirements {
        limits: Some([("memory".to_owned(), Quantity("-1Gi".into()))].into()),
        ..ResourceRequirements::default()
    });
    assert_eq!(
        validate(&stack(spec)).unwrap_err().to_string(),
        "spec.database.bundled.resources.limits.memory: \"-1Gi\" must not be negative"
    );
}

#[test]
fn monitoring_interval_must_be_a_prometheus_duration() {
    for good in ["30s", "500ms", "1m"] {
        let mut spec = PerformanceStackSpec::default();
        spec.monitoring.interval = good.into();
        assert!(validate(&stack(spec)).is_ok(), "{good}");
    }
    for bad in ["", "s", "30", "30h", "3s0", "-1s"] {
        let mut spec = PerformanceStackSpec::default();
        spec.monitoring.interval = bad.into();
        let err = validate(&stack(spec)).unwrap_err();
        assert_eq!(err.field, "spec.monitoring.interval", "{bad}");
    }
}
