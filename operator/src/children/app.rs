//! The API: its Deployment (probes, resources, non-root read-only containers, rolling update) and Service.
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::api::core::v1::{
    ConfigMapEnvSource, ConfigMapVolumeSource, Container, EnvFromSource, EnvVar, EnvVarSource, HTTPGetAction,
    PodSpec, Probe, ResourceFieldSelector, Service, TopologySpreadConstraint, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use perfstack_contract::probes::{HTTP_PORT_NAME, LIVEZ, READYZ};
use perfstack_contract::{env, tuning};
use sha2::{Digest, Sha256};

use super::config::restart_data;
use super::pod::{
    empty_dir, mount, pod_spec, resources_or, restricted_container, secret_env, selector, service_port,
    tcp_port, template,
};
use super::{APP_UID, CacheSource, ValidatedStack, credentials};
use crate::tuner::budget::{MAX_SURGE_PERCENT, TERMINATION_GRACE_SECONDS};

/// Component label of the API.
pub const COMPONENT: &str = "api";
/// Name of the API container.
pub const CONTAINER: &str = "api";
/// Pod-template annotation holding a digest of the app ConfigMap, so a config change rolls the pods.
pub const CONFIG_DIGEST_ANNOTATION: &str = "perfstack.dev/config-digest";

/// The API Deployment running `image`. `replicas` is None while an autoscaler owns the replica count,
/// so the operator's apply never takes that field over.
pub fn deployment(stack: &ValidatedStack, image: &str, replicas: Option<i32>) -> Deployment {
    let names = stack.names();
    let app = &stack.spec.app;
    let mut env = app.env.clone();
    env.push(stack.database_url_env());
    env.push(memory_limit_env());
    match &stack.cache {
        CacheSource::External { secret, key } => {
            env.push(secret_env(env::REDIS_URL, secret.clone(), key.clone()))
        }
        CacheSource::Bundled => env.push(secret_env(
            env::REDIS_PASSWORD,
            names.credentials(),
            credentials::REDIS_PASSWORD_KEY.into(),
        )),
        CacheSource::Disabled => {}
    }
    if let Some(tokens) = stack.token_secret() {
        env.push(secret_env(
            env::API_TOKEN,
            tokens.clone(),
            credentials::API_TOKEN_KEY.into(),
        ));
        env.push(secret_env(
            env::API_ADMIN_TOKEN,
            tokens,
            credentials::ADMIN_TOKEN_KEY.into(),
        ));
    }
    let http_probe = |path: &str, period: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String(HTTP_PORT_NAME.into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(2),
        ..Probe::default()
    };
    let container = Container {
        name: CONTAINER.into(),
        image: Some(image.into()),
        args: Some(vec!["serve".into()]),
        ports: Some(vec![tcp_port(HTTP_PORT_NAME, app.port)]),
        env_from: Some(vec![EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: names.config(),
                optional: Some(false),
            }),
            ..EnvFromSource::default()
        }]),
        env: Some(env),
        readiness_probe: Some(Probe {
            failure_threshold: Some(2),
            ..http_probe(READYZ, 5)
        }),
        liveness_probe: Some(Probe {
            initial_delay_seconds: Some(10),
            failure_threshold: Some(3),
            ..http_probe(LIVEZ, 10)
        }),
        resources: Some(resources_or(&app.resources, "100m", "128Mi", Some("512Mi"))),
        security_context: Some(restricted_container(APP_UID)),
        volume_mounts: Some(vec![
            VolumeMount {
                read_only: Some(true),
                ..mount("tuning", tuning::TUNING_DIR)
            },
            mount("tmp", "/tmp"),
        ]),
        ..Container::default()
    };
    let tuning_volume = Volume {
        name: "tuning".into(),
        config_map: Some(ConfigMapVolumeSource {
            name: names.tuning(),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    };
    let pod = PodSpec {
        // The app's own shutdown fits inside with room to spare: drain delay 5 s + in-flight grace
        // 15 s (workers 20 s from the signal, in parallel) + pool close 3 s = at most 23 s
        // (DRAIN_DELAY_S, SHUTDOWN_GRACE_S, JOBS_SHUTDOWN_GRACE_S, POOL_CLOSE_TIMEOUT_MS; see the
        // app's startup::serve). Raise TERMINATION_GRACE_SECONDS first if any of those is raised.
        termination_grace_period_seconds: Some(i64::from(grace_seconds())),
        // Spread replicas over nodes when the scheduler can; never block scheduling on it.
        topology_spread_constraints: Some(vec![TopologySpreadConstraint {
            max_skew: 1,
            topology_key: "kubernetes.io/hostname".into(),
            when_unsatisfiable: "ScheduleAnyway".into(),
            label_selector: Some(selector(stack, COMPONENT)),
            ..TopologySpreadConstraint::default()
        }]),
        ..pod_spec(container, APP_UID, vec![tuning_volume, empty_dir("tmp")])
    };
    let mut pod_template = template(stack, COMPONENT, pod);
    if let Some(metadata) = pod_template.metadata.as_mut() {
        metadata.annotations = Some(BTreeMap::from([(
            CONFIG_DIGEST_ANNOTATION.into(),
            config_digest(stack),
        )]));
    }
    // The connection budget counts the pods a rollout adds and the ones still terminating with
    // these numbers (tuner/budget.rs): a surge of 25 %, and a new pod counted available only after
    // the grace period, so the old pods one step removed have exited before the next step.
    let strategy = DeploymentStrategy {
        type_: Some("RollingUpdate".into()),
        rolling_update: Some(RollingUpdateDeployment {
            max_surge: Some(IntOrString::String(format!("{MAX_SURGE_PERCENT}%"))),
            max_unavailable: Some(IntOrString::Int(0)),
        }),
    };
    let mut deployment =
        super::pod::deployment(stack, names.api(), COMPONENT, replicas, strategy, pod_template);
    if let Some(spec) = deployment.spec.as_mut() {
        spec.min_ready_seconds = Some(grace_seconds());
    }
    deployment
}

/// The pods' termination grace period (and the rollout's `minReadySeconds`), as the budget counts it.
fn grace_seconds() -> i32 {
    i32::try_from(TERMINATION_GRACE_SECONDS).unwrap_or(i32::MAX)
}

/// The container's memory limit in bytes, from the downward API: the app's memory guard acts at
/// 80 % of it (the node's allocatable memory when the container has no limit).
fn memory_limit_env() -> EnvVar {
    EnvVar {
        name: env::CONTAINER_MEMORY_LIMIT_BYTES.into(),
        value_from: Some(EnvVarSource {
            resource_field_ref: Some(ResourceFieldSelector {
                container_name: Some(CONTAINER.into()),
                resource: "limits.memory".into(),
                divisor: Some(Quantity("1".into())),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// The API Service.
pub fn service(stack: &ValidatedStack) -> Service {
    super::pod::service(
        stack,
        stack.names().api(),
        COMPONENT,
        service_port(HTTP_PORT_NAME, stack.spec.app.port),
    )
}

/// Digest of the app ConfigMap's data that pods take only by restarting (12 hex characters): a pool
/// change reaches them through the tuning file without one.
fn config_digest(stack: &ValidatedStack) -> String {
    let mut hasher = Sha256::new();
    for (key, value) in &restart_data(stack) {
        hasher.update(key.as_bytes());
        hasher.update([0]);
        hasher.update(value.as_bytes());
        hasher.update([0]);
    }
    super::hex_prefix(&hasher.finalize(), 6)
}
