//! The bundled PostgreSQL: a one-replica StatefulSet with a volumeClaimTemplate and its headless Service.
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Container, ExecAction, PodSpec, Probe, Service};

use super::credentials::PASSWORD_KEY;
use super::pod::{
    empty_dir, mount, plain_env, pod_spec, resources_or, restricted_container, secret_env, service_port,
    tcp_port,
};
use super::volume::{DATA_VOLUME, VolumeSpec, statefulset as statefulset_of};
use super::{DATABASE_NAME, POSTGRES_PORT, ValidatedStack};

/// Component label of the database.
pub const COMPONENT: &str = "postgres";
/// Annotation on the data volume's claim: the PostgreSQL major version that created the data
/// directory (a server of another major version cannot open it).
pub const MAJOR_ANNOTATION: &str = "perfstack.dev/postgres-major";
/// UID of the postgres user in the official alpine images.
const POSTGRES_UID: i64 = 70;

/// The PostgreSQL major version of an image reference (`postgres:15-alpine`, `postgres:15.6`,
/// `registry:5000/db/postgres:16@sha256:…` give 15, 15, 16), or `None` when its tag does not say
/// (`latest`, a digest only).
pub fn major_version(image: &str) -> Option<u32> {
    let name = image.split('@').next().unwrap_or(image);
    let last = name.rsplit('/').next().unwrap_or(name);
    let tag = last.split_once(':')?.1;
    let digits: String = tag.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// What the spec asks of the data volume: `storageSize`, `storageClassName`, and the image's major
/// version recorded on the claim.
pub fn volume(stack: &ValidatedStack) -> VolumeSpec {
    let bundled = &stack.spec.database.bundled;
    VolumeSpec {
        size: bundled.storage_size.clone(),
        class: bundled.storage_class_name.clone(),
        annotations: major_version(&bundled.image)
            .map(|major| BTreeMap::from([(MAJOR_ANNOTATION.to_owned(), major.to_string())]))
            .unwrap_or_default(),
    }
}

/// The PostgreSQL StatefulSet. `live` is the StatefulSet as it exists, whose claim template is kept.
pub fn statefulset(stack: &ValidatedStack, live: Option<&StatefulSet>) -> StatefulSet {
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
    let pod = PodSpec {
        // Time for a clean shutdown (checkpoint) instead of crash recovery at start.
        termination_grace_period_seconds: Some(60),
        ..pod_spec(container, POSTGRES_UID, vec![empty_dir("run"), empty_dir("tmp")])
    };
    statefulset_of(stack, names.postgres(), COMPONENT, pod, &volume(stack), live)
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
