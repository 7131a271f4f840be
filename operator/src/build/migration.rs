//! The migration Job: `perfstack-app migrate` against the stack's database, named by a digest of what
//! the migration depends on so that a new image (or a new database) gets a new Job and an unchanged one
//! never reruns.
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec, VolumeMount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sha2::{Digest, Sha256};

use super::postgres::empty_dir;
use super::{APP_UID, DatabaseSource, ValidatedStack, restricted_container, restricted_pod};

/// Component label of migration Jobs and their pods.
pub const COMPONENT: &str = "migration";
/// Name of the container running the migration; its termination message carries the summary.
pub const CONTAINER: &str = "migrate";

/// Digest (10 hex characters) of the image and the database the migration runs against.
pub fn digest(stack: &ValidatedStack, image: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(image.as_bytes());
    hasher.update([0]);
    match &stack.database {
        DatabaseSource::Bundled => hasher.update(b"bundled"),
        DatabaseSource::External { secret, key } => {
            hasher.update(b"external\0");
            hasher.update(secret.as_bytes());
            hasher.update([0]);
            hasher.update(key.as_bytes());
        }
    }
    hasher
        .finalize()
        .iter()
        .take(5)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The migration Job for the stack's desired image.
pub fn job(stack: &ValidatedStack) -> Job {
    let name = stack.names().migration_job(&digest(stack, &stack.app_image));
    let container = Container {
        name: CONTAINER.into(),
        image: Some(stack.app_image.clone()),
        args: Some(vec![
            "migrate".into(),
            "--summary-file".into(),
            "/dev/termination-log".into(),
        ]),
        env: Some(vec![
            stack.database_url_env(),
            super::plain_env("LOG_FORMAT", "json"),
        ]),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        resources: Some(super::resources_or(
            &stack.spec.app.resources,
            "100m",
            "128Mi",
            Some("512Mi"),
        )),
        security_context: Some(restricted_container(APP_UID)),
        volume_mounts: Some(vec![VolumeMount {
            name: "tmp".into(),
            mount_path: "/tmp".into(),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    };
    Job {
        metadata: stack.child_meta(name, COMPONENT),
        spec: Some(JobSpec {
            backoff_limit: Some(3),
            active_deadline_seconds: Some(900),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(stack.labels(COMPONENT)),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    restart_policy: Some("Never".into()),
                    security_context: Some(restricted_pod(APP_UID)),
                    volumes: Some(vec![empty_dir("tmp")]),
                    ..PodSpec::default()
                }),
            },
            ..JobSpec::default()
        }),
        ..Job::default()
    }
}
