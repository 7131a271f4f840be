//! The migration Job: `perfstack-app migrate` against the stack's database, named by a digest of what
//! the migration depends on so that a new image (or a new database) gets a new Job and an unchanged one
//! never reruns.
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{Container, EnvVar, PodSpec};
use perfstack_contract::env;
use sha2::{Digest, Sha256};

use super::pod::{
    empty_dir, mount, plain_env, pod_spec, resources_or, restricted_container, secret_env, template,
};
use super::{APP_UID, DatabaseSource, ValidatedStack, credentials};

/// Component label of migration Jobs and their pods.
pub const COMPONENT: &str = "migration";
/// Name of the container running the migration; its termination message carries the report.
pub const CONTAINER: &str = "migrate";
/// Where the migrate container writes its report: the kubelet keeps it as the termination message.
const SUMMARY_FILE: &str = "/dev/termination-log";

/// Digest (10 hex characters) of the image and the database the migration runs against.
pub fn digest(stack: &ValidatedStack, image: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(image.as_bytes());
    hasher.update([0]);
    match &stack.database {
        // The app role's setup is part of the bundled migration: stacks from before it get it
        // with one more (idempotent) migration run.
        DatabaseSource::Bundled => hasher.update(b"bundled\0app-role"),
        DatabaseSource::External { secret, key } => {
            hasher.update(b"external\0");
            hasher.update(secret.as_bytes());
            hasher.update([0]);
            hasher.update(key.as_bytes());
            if let Some(owner) = &stack.spec.database.migration_secret_ref {
                hasher.update(b"\0owner\0");
                hasher.update(owner.name.as_bytes());
                hasher.update([0]);
                hasher.update(owner.key.as_deref().unwrap_or_default().as_bytes());
            }
        }
    }
    super::hex_prefix(&hasher.finalize(), 5)
}

/// Name of the migration Job for the stack's desired image.
pub fn job_name(stack: &ValidatedStack) -> String {
    stack.names().migration_job(&digest(stack, &stack.app_image))
}

/// The migration Job for the stack's desired image.
pub fn job(stack: &ValidatedStack) -> Job {
    let container = Container {
        name: CONTAINER.into(),
        image: Some(stack.app_image.clone()),
        args: Some(vec![
            "migrate".into(),
            "--summary-file".into(),
            SUMMARY_FILE.into(),
        ]),
        env: Some(migration_env(stack)),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        resources: Some(resources_or(
            &stack.spec.app.resources,
            "100m",
            "128Mi",
            Some("512Mi"),
        )),
        security_context: Some(restricted_container(APP_UID)),
        volume_mounts: Some(vec![mount("tmp", "/tmp")]),
        ..Container::default()
    };
    Job {
        metadata: stack.child_meta(job_name(stack), COMPONENT),
        spec: Some(JobSpec {
            backoff_limit: Some(3),
            active_deadline_seconds: Some(900),
            template: template(
                stack,
                COMPONENT,
                PodSpec {
                    restart_policy: Some("Never".into()),
                    ..pod_spec(container, APP_UID, vec![empty_dir("tmp")])
                },
            ),
            ..JobSpec::default()
        }),
        ..Job::default()
    }
}

/// The migration's environment: the schema owner's URL and, for the bundled database, the app role
/// `migrate` creates (or sets the password of) and grants the app's tables.
fn migration_env(stack: &ValidatedStack) -> Vec<EnvVar> {
    let mut env = vec![
        stack.migration_database_url_env(),
        plain_env(env::LOG_FORMAT, "json"),
    ];
    if stack.database == DatabaseSource::Bundled {
        env.push(plain_env(env::DB_APP_USER, credentials::APP_ROLE));
        env.push(secret_env(
            env::DB_APP_PASSWORD,
            stack.names().credentials(),
            credentials::APP_PASSWORD_KEY.into(),
        ));
    }
    env
}

/// Label selector of every migration Job of the stack.
pub fn jobs_selector(stack: &ValidatedStack) -> String {
    format!(
        "{}={},{}={COMPONENT}",
        super::STACK_LABEL,
        stack.name,
        super::COMPONENT_LABEL
    )
}
