//! Pieces every pod the operator builds shares: environment variables, restricted security contexts,
//! default resources, scratch volumes, ports, pod templates and Services.
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, StatefulSet};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource, PodSecurityContext,
    PodSpec, PodTemplateSpec, ResourceRequirements, SeccompProfile, SecretKeySelector, SecurityContext,
    Service, ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// An env var read from a Secret key.
pub fn secret_env(name: &str, secret: String, key: String) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret,
                key,
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// A plain env var.
pub fn plain_env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}

/// Container security context: non-root, read-only root filesystem, no privilege escalation, no
/// capabilities.
pub fn restricted_container(user: i64) -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(user),
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Capabilities::default()
        }),
        ..SecurityContext::default()
    }
}

/// Pod security context for a pod running as `user`, with volumes writable by that group.
pub fn restricted_pod(user: i64) -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(user),
        run_as_group: Some(user),
        fs_group: Some(user),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..PodSecurityContext::default()
    }
}

/// `given`, or requests of `cpu` and `memory` (and a memory limit, if any) when the spec sets
/// none: the autoscaler computes CPU utilisation against requests, and a pod without them is the first
/// to be evicted.
pub fn resources_or(
    given: &Option<ResourceRequirements>,
    cpu: &str,
    memory: &str,
    memory_limit: Option<&str>,
) -> ResourceRequirements {
    given.clone().unwrap_or_else(|| ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".into(), Quantity(cpu.into())),
            ("memory".into(), Quantity(memory.into())),
        ])),
        limits: memory_limit.map(|limit| BTreeMap::from([("memory".into(), Quantity(limit.into()))])),
        ..ResourceRequirements::default()
    })
}

/// An emptyDir volume for writable scratch space under a read-only root filesystem.
pub fn empty_dir(name: &str) -> Volume {
    Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}

/// A writable mount of the volume `name` at `path`.
pub fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        ..VolumeMount::default()
    }
}

/// A named TCP container port.
pub fn tcp_port(name: &str, port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: port,
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    }
}

/// A named TCP Service port forwarding to the container port of the same name.
pub fn service_port(name: &str, port: i32) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port,
        target_port: Some(IntOrString::String(name.into())),
        protocol: Some("TCP".into()),
        ..ServicePort::default()
    }
}

/// A ClusterIP Service selecting the pods that play `component`, on the named `port`.
pub fn service(stack: &super::ValidatedStack, name: String, component: &str, port: ServicePort) -> Service {
    Service {
        metadata: stack.child_meta(name, component),
        spec: Some(ServiceSpec {
            selector: Some(stack.selector_labels(component)),
            ports: Some(vec![port]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// The pod template of a stack's child: its labels for `component` and `spec`.
pub fn template(stack: &super::ValidatedStack, component: &str, spec: PodSpec) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(stack.labels(component)),
            ..ObjectMeta::default()
        }),
        spec: Some(spec),
    }
}

/// The pod spec running `container` as `user` with `volumes`, restricted like every child's pod.
pub fn pod_spec(container: Container, user: i64, volumes: Vec<Volume>) -> PodSpec {
    PodSpec {
        containers: vec![container],
        security_context: Some(restricted_pod(user)),
        volumes: (!volumes.is_empty()).then_some(volumes),
        ..PodSpec::default()
    }
}

/// A Deployment called `name` of the pods that play `component`, from `template`.
pub fn deployment(
    stack: &super::ValidatedStack,
    name: String,
    component: &str,
    replicas: Option<i32>,
    strategy: DeploymentStrategy,
    template: PodTemplateSpec,
) -> Deployment {
    Deployment {
        metadata: stack.child_meta(name, component),
        spec: Some(DeploymentSpec {
            replicas,
            selector: selector(stack, component),
            strategy: Some(strategy),
            template,
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

/// The selector of the pods that play `component`.
pub fn selector(stack: &super::ValidatedStack, component: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(stack.selector_labels(component)),
        ..LabelSelector::default()
    }
}

/// Whether a one-replica StatefulSet (PostgreSQL, Redis) reports its replica ready.
pub fn is_ready(statefulset: &StatefulSet) -> bool {
    statefulset
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
        >= 1
}
