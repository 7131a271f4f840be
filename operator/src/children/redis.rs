//! The bundled Redis: a one-replica Deployment (a cache: no volume, no persistence) and its Service.
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStrategy};
use k8s_openapi::api::core::v1::{Container, Probe, Service, TCPSocketAction};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use perfstack_contract::env;

use super::pod::{
    empty_dir, mount, pod_spec, resources_or, restricted_container, secret_env, service_port, tcp_port,
    template,
};
use super::{REDIS_PORT, ValidatedStack, credentials};

/// Component label of the cache.
pub const COMPONENT: &str = "redis";
/// UID of the redis user in the official alpine images.
const REDIS_UID: i64 = 999;

/// The Redis Deployment.
pub fn deployment(stack: &ValidatedStack) -> Deployment {
    let cache = &stack.spec.cache;
    let probe = Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::String("redis".into()),
            ..TCPSocketAction::default()
        }),
        period_seconds: Some(10),
        ..Probe::default()
    };
    let container = Container {
        name: COMPONENT.into(),
        image: Some(cache.image.clone()),
        args: Some(vec![
            "redis-server".into(),
            "--maxmemory".into(),
            cache.maxmemory.clone(),
            // The app's job queues live in this Redis (docs/contract.md): only keys with a TTL (the
            // cache) may be evicted, and the append-only file keeps queued jobs across a restart.
            "--maxmemory-policy".into(),
            "volatile-lru".into(),
            "--save".into(),
            String::new(),
            "--appendonly".into(),
            "yes".into(),
            // The kubelet expands $(REDIS_PASSWORD) from the env below (the Secret's value).
            "--requirepass".into(),
            "$(REDIS_PASSWORD)".into(),
        ]),
        env: Some(vec![secret_env(
            env::REDIS_PASSWORD,
            stack.names().credentials(),
            credentials::REDIS_PASSWORD_KEY.into(),
        )]),
        ports: Some(vec![tcp_port("redis", REDIS_PORT)]),
        readiness_probe: Some(probe.clone()),
        liveness_probe: Some(Probe {
            initial_delay_seconds: Some(15),
            ..probe
        }),
        // No default memory limit: it would have to follow spec.cache.maxmemory.
        resources: Some(resources_or(&cache.resources, "50m", "64Mi", None)),
        security_context: Some(restricted_container(REDIS_UID)),
        volume_mounts: Some(vec![mount("data", "/data")]),
        ..Container::default()
    };
    let strategy = DeploymentStrategy {
        type_: Some("Recreate".into()),
        ..DeploymentStrategy::default()
    };
    let pod = pod_spec(container, REDIS_UID, vec![empty_dir("data")]);
    super::pod::deployment(
        stack,
        stack.names().redis(),
        COMPONENT,
        Some(1),
        strategy,
        template(stack, COMPONENT, pod),
    )
}

/// The Redis Service.
pub fn service(stack: &ValidatedStack) -> Service {
    super::pod::service(
        stack,
        stack.names().redis(),
        COMPONENT,
        service_port("redis", REDIS_PORT),
    )
}

/// The URL of the bundled Redis.
pub fn url(stack: &ValidatedStack) -> String {
    format!(
        "redis://{}.{}.svc:{REDIS_PORT}",
        stack.names().redis(),
        stack.namespace
    )
}
