//! The bundled PostgreSQL: a one-replica StatefulSet with a volumeClaimTemplate and its headless Service.
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Container, ExecAction, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSpec, Probe, Service,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::credentials::PASSWORD_KEY;
use super::pod::{
    empty_dir, mount, plain_env, pod_spec, resources_or, restricted_container, secret_env, selector,
    service_port, tcp_port, template,
};
use super::{DATABASE_NAME, POSTGRES_PORT, ValidatedStack};

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
        ports: Some(vec![tcp_port("postgres", POSTGRES_PORT)]),
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
        resources: Some(resources_or(&bundled.resources, "250m", "256Mi", Some("1Gi"))),
        security_context: Some(restricted_container(POSTGRES_UID)),
        volume_mounts: Some(vec![
            mount(DATA_VOLUME, "/var/lib/postgresql/data"),
            mount("run", "/var/run/postgresql"),
            mount("tmp", "/tmp"),
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
            selector: selector(stack, COMPONENT),
            template: template(
                stack,
                COMPONENT,
                PodSpec {
                    // Time for a clean shutdown (checkpoint) instead of crash recovery at start.
                    termination_grace_period_seconds: Some(60),
                    ..pod_spec(container, POSTGRES_UID, vec![empty_dir("run"), empty_dir("tmp")])
                },
            ),
            volume_claim_templates: Some(vec![claim]),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

/// The headless Service giving the database pod a stable DNS name.
pub fn service(stack: &ValidatedStack) -> Service {
    let mut service = super::pod::service(
        stack,
        stack.names().postgres(),
        COMPONENT,
        service_port("postgres", POSTGRES_PORT),
    );
    if let Some(spec) = service.spec.as_mut() {
        spec.cluster_ip = Some("None".into());
        spec.publish_not_ready_addresses = Some(true);
    }
    service
}

/// Whether the database StatefulSet reports a ready replica.
pub fn is_ready(statefulset: &StatefulSet) -> bool {
    statefulset
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
        >= 1
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
