//! The bundled Redis: a one-replica StatefulSet whose claim keeps the append-only file, and its
//! Service. Redis holds the app's job queues (docs/jobs.md), so its data outlives a reschedule, a
//! node drain or a change of `spec.cache` exactly like PostgreSQL's, and follows the same
//! `deletionPolicy`.
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Container, PodSpec, Probe, Service, TCPSocketAction};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use perfstack_contract::env;

use super::pod::{pod_spec, resources_or, restricted_container, secret_env, service_port, tcp_port};
use super::volume::{DATA_VOLUME, VolumeSpec, statefulset as statefulset_of};
use super::{REDIS_PORT, ValidatedStack, credentials};

/// Component label of the cache.
pub const COMPONENT: &str = "redis";
/// UID of the redis user in the official alpine images.
const REDIS_UID: i64 = 999;

/// What the spec asks of the data volume (`spec.cache.storageSize`, `storageClassName`).
pub fn volume(stack: &ValidatedStack) -> VolumeSpec {
    let cache = &stack.spec.cache;
    VolumeSpec {
        size: cache.storage_size.clone(),
        class: cache.storage_class_name.clone(),
        annotations: Default::default(),
    }
}

/// The Redis StatefulSet. `live` is the StatefulSet as it exists, whose claim template is kept.
pub fn statefulset(stack: &ValidatedStack, live: Option<&StatefulSet>) -> StatefulSet {
    let cache = &stack.spec.cache;
    let names = stack.names();
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
            // cache) may be evicted, and the append-only file on the claim keeps queued jobs across
            // a restart, losing at most the last second of writes on a crash (docs/jobs.md).
            "--maxmemory-policy".into(),
            "volatile-lru".into(),
            "--save".into(),
            String::new(),
            "--appendonly".into(),
            "yes".into(),
            "--appendfsync".into(),
            "everysec".into(),
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
        volume_mounts: Some(vec![super::pod::mount(DATA_VOLUME, "/data")]),
        ..Container::default()
    };
    let pod = PodSpec {
        // Time to rewrite and fsync the append-only file on a clean shutdown.
        termination_grace_period_seconds: Some(30),
        ..pod_spec(container, REDIS_UID, Vec::new())
    };
    statefulset_of(stack, names.redis(), COMPONENT, pod, &volume(stack), live)
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
