//! The API: its Deployment (probes, resources, non-root read-only containers, rolling update) and Service.
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::api::core::v1::{
    ConfigMapEnvSource, ConfigMapVolumeSource, Container, EnvFromSource, HTTPGetAction, PodSpec, Probe,
    Service, TopologySpreadConstraint, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use perfstack_contract::probes::{HTTP_PORT_NAME, LIVEZ, READYZ};
use perfstack_contract::{env, tuning};
use sha2::{Digest, Sha256};

use super::config::app_config_map;
use super::pod::{
    empty_dir, mount, pod_spec, resources_or, restricted_container, secret_env, selector, service_port,
    tcp_port, template,
};
use super::{APP_UID, CacheSource, ValidatedStack, credentials};

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
        // app's startup::serve). Raise this first if any of those is raised.
        termination_grace_period_seconds: Some(30),
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
    let strategy = DeploymentStrategy {
        type_: Some("RollingUpdate".into()),
        rolling_update: Some(RollingUpdateDeployment {
            max_surge: Some(IntOrString::String("25%".into())),
            max_unavailable: Some(IntOrString::Int(0)),
        }),
    };
    super::pod::deployment(stack, names.api(), COMPONENT, replicas, strategy, pod_template)
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

/// Keys of the app ConfigMap that do not restart pods when they change: the pool start values, since
/// the tuning file carries the same settings to running pods without a restart.
const LIVE_KEYS: &[&str] = &[
    env::DB_POOL_MIN,
    env::DB_POOL_MAX,
    env::DB_ACQUIRE_TIMEOUT_MS,
    env::DB_IDLE_TIMEOUT_S,
];

/// Digest of the app ConfigMap's data except [`LIVE_KEYS`] (12 hex characters).
fn config_digest(stack: &ValidatedStack) -> String {
    let mut hasher = Sha256::new();
    let data = app_config_map(stack).data.unwrap_or_default();
    for (key, value) in data.iter().filter(|(k, _)| !LIVE_KEYS.contains(&k.as_str())) {
        hasher.update(key.as_bytes());
        hasher.update([0]);
        hasher.update(value.as_bytes());
        hasher.update([0]);
    }
    super::hex_prefix(&hasher.finalize(), 6)
}
