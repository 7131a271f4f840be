//! The bundled PostgreSQL: a one-replica StatefulSet with a volumeClaimTemplate and its headless Service.
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EmptyDirVolumeSource, ExecAction, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PodSpec, PodTemplateSpec, Probe, Service, ServicePort, ServiceSpec, Volume,
    VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

use super::credentials::PASSWORD_KEY;
use super::{
    DATABASE_NAME, POSTGRES_PORT, ValidatedStack, plain_env, restricted_container, restricted_pod, secret_env,
};

/// Component label of the database.
pub const COMPONENT: &str = "postgres";
/// Name of the volumeClaimTemplate; PVCs are called `data-<stack>-postgres-0`.
pub const DATA_VOLUME: &str = "data";
/// UID of the postgres user in the official alpine images.
const POSTGRES_UID: i64 = 70;

/// The PostgreSQL StatefulSet.
pub fn statefulset(stack: &ValidatedStack) -> StatefulSet {
    let names = stack.names();
    let bundled = &stack.spec.database.bundled;
    let container = Container {
        name: COMPONENT.into(),
        image: Some(bundled.image.clone()),
        args: Some(vec![
            "-c".into(),
            format!("max_connections={}", bundled.max_connections),
        ]),
        ports: Some(vec![ContainerPort {
            name: Some("postgres".into()),
            container_port: POSTGRES_PORT,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        env: Some(vec![
            plain_env("POSTGRES_USER", DATABASE_NAME),
            plain_env("POSTGRES_DB", DATABASE_NAME),
            secret_env("POSTGRES_PASSWORD", names.credentials(), PASSWORD_KEY.into()),
            plain_env("PGDATA", "/var/lib/postgresql/data/pgdata"),
        ]),
        readiness_probe: Some(pg_isready(5)),
        liveness_probe: Some(Probe {
            initial_delay_seconds: Some(30),
            ..pg_isready(10)
        }),
        resources: Some(super::resources_or(
            &bundled.resources,
            "250m",
            "256Mi",
            Some("1Gi"),
        )),
        security_context: Some(restricted_container(POSTGRES_UID)),
        volume_mounts: Some(vec![
            VolumeMount {
                name: DATA_VOLUME.into(),
                mount_path: "/var/lib/postgresql/data".into(),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "run".into(),
                mount_path: "/var/run/postgresql".into(),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "tmp".into(),
                mount_path: "/tmp".into(),
                ..VolumeMount::default()
            },
        ]),
        ..Container::default()
    };
    let claim = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(DATA_VOLUME.into()),
            labels: Some(stack.labels(COMPONENT)),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: bundled.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".into(),
                    Quantity(bundled.storage_size.clone()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    };
    StatefulSet {
        metadata: stack.child_meta(names.postgres(), COMPONENT),
        spec: Some(StatefulSetSpec {
            replicas: Some(1),
            service_name: Some(names.postgres()),
            selector: LabelSelector {
                match_labels: Some(stack.selector_labels(COMPONENT)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(stack.labels(COMPONENT)),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    security_context: Some(restricted_pod(POSTGRES_UID)),
                    // Time for a clean shutdown (checkpoint) instead of crash recovery at start.
                    termination_grace_period_seconds: Some(60),
                    volumes: Some(vec![empty_dir("run"), empty_dir("tmp")]),
                    ..PodSpec::default()
                }),
            },
            volume_claim_templates: Some(vec![claim]),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

/// The headless Service giving the database pod a stable DNS name.
pub fn service(stack: &ValidatedStack) -> Service {
    Service {
        metadata: stack.child_meta(stack.names().postgres(), COMPONENT),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            selector: Some(stack.selector_labels(COMPONENT)),
            ports: Some(vec![ServicePort {
                name: Some("postgres".into()),
                port: POSTGRES_PORT,
                target_port: Some(IntOrString::String("postgres".into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            publish_not_ready_addresses: Some(true),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn pg_isready(period: i32) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(vec![
                "pg_isready".into(),
                "-U".into(),
                DATABASE_NAME.into(),
                "-h".into(),
                "127.0.0.1".into(),
            ]),
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(5),
        ..Probe::default()
    }
}

/// An emptyDir volume for writable scratch space under a read-only root filesystem.
pub fn empty_dir(name: &str) -> Volume {
    Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}
