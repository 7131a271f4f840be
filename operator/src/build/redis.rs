//! The bundled Redis: a one-replica Deployment (a cache: no volume, no persistence) and its Service.
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, PodSpec, PodTemplateSpec, Probe, Service, ServicePort, ServiceSpec,
    TCPSocketAction, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::postgres::empty_dir;
use super::{REDIS_PORT, ValidatedStack, restricted_container, restricted_pod};

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
            "--maxmemory-policy".into(),
            "allkeys-lru".into(),
            "--save".into(),
            String::new(),
            "--appendonly".into(),
            "no".into(),
        ]),
        ports: Some(vec![ContainerPort {
            name: Some("redis".into()),
            container_port: REDIS_PORT,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        readiness_probe: Some(probe.clone()),
        liveness_probe: Some(Probe {
            initial_delay_seconds: Some(15),
            ..probe
        }),
        // No default memory limit: it would have to follow spec.cache.maxmemory.
        resources: Some(super::resources_or(&cache.resources, "50m", "64Mi", None)),
        security_context: Some(restricted_container(REDIS_UID)),
        volume_mounts: Some(vec![VolumeMount {
            name: "data".into(),
            mount_path: "/data".into(),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    };
    Deployment {
        metadata: stack.child_meta(stack.names().redis(), COMPONENT),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(stack.selector_labels(COMPONENT)),
                ..LabelSelector::default()
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".into()),
                ..DeploymentStrategy::default()
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(stack.labels(COMPONENT)),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    security_context: Some(restricted_pod(REDIS_UID)),
                    volumes: Some(vec![empty_dir("data")]),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

/// The Redis Service.
pub fn service(stack: &ValidatedStack) -> Service {
    Service {
        metadata: stack.child_meta(stack.names().redis(), COMPONENT),
        spec: Some(ServiceSpec {
            selector: Some(stack.selector_labels(COMPONENT)),
            ports: Some(vec![ServicePort {
                name: Some("redis".into()),
                port: REDIS_PORT,
                target_port: Some(IntOrString::String("redis".into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// The URL of the bundled Redis.
pub fn url(stack: &ValidatedStack) -> String {
    format!(
        "redis://{}.{}.svc:{REDIS_PORT}",
        stack.names().redis(),
        stack.namespace
    )
}
