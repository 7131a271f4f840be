//! Migrate: the migration Job of the desired image. Created once the database is ready, read until it
//! finished; its summary comes from the pod's termination message; superseded Jobs are removed.
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, PropagationPolicy};

use super::apply::{apply_child, get_child};
use super::{Context, Error};
use crate::build::{ValidatedStack, migration};

/// Where the migration for the desired image stands.
#[derive(Clone, Debug, PartialEq)]
pub enum MigrationState {
    /// spec.migrations.enabled is false.
    Disabled,
    /// The Job is not created yet because the database is not ready (a Job started earlier would burn
    /// its retries against a database that is still starting).
    WaitingForDatabase { job: String },
    /// The Job exists and has not finished.
    Running { job: String },
    /// The Job succeeded; `summary` is the migrate summary from the pod's termination message.
    Succeeded { job: String, summary: Option<String> },
    /// The Job failed; `message` is the pod's termination message, when there is one.
    Failed { job: String, message: Option<String> },
}

/// Creates the migration Job for the desired image if absent and reports where it stands. Jobs are
/// immutable, so an existing Job of that name is only read.
pub async fn ensure_migration(
    stack: &ValidatedStack,
    ctx: &Context,
    previous: Option<&str>,
    database_ready: bool,
) -> Result<MigrationState, Error> {
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &stack.namespace);
    let desired = migration::job(stack);
    let name = desired.name_any();
    let job = match get_child(&jobs, "Job", &name).await? {
        Some(job) => job,
        None if !database_ready => return Ok(MigrationState::WaitingForDatabase { job: name }),
        None => {
            ctx.events.migration_started(stack, &name).await;
            apply_child(&jobs, "Job", desired, None).await?
        }
    };
    let status = job.status.unwrap_or_default();
    let failed = status
        .conditions
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Failed" && c.status == "True");
    if status.succeeded.unwrap_or(0) >= 1 {
        let prefix = super::status::migration_message_prefix(&name);
        if let Some(previous) = previous.filter(|m| m.starts_with(&prefix)) {
            let summary = previous[prefix.len()..].trim_start_matches(": ").to_owned();
            return Ok(MigrationState::Succeeded {
                job: name,
                summary: Some(summary).filter(|s| !s.is_empty()),
            });
        }
        let summary = termination_message(ctx, stack, &name, "Succeeded").await?;
        delete_old_migrations(ctx, stack, &name).await?;
        Ok(MigrationState::Succeeded { job: name, summary })
    } else if failed {
        let message = termination_message(ctx, stack, &name, "Failed").await?;
        Ok(MigrationState::Failed { job: name, message })
    } else {
        Ok(MigrationState::Running { job: name })
    }
}

/// The termination message of the migrate container in a pod of `job` that ended in `phase`.
async fn termination_message(
    ctx: &Context,
    stack: &ValidatedStack,
    job: &str,
    phase: &str,
) -> Result<Option<String>, Error> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &stack.namespace);
    let selector = format!("job-name={job}");
    let list = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| Error::Read {
            kind: "Pod",
            name: selector.clone(),
            source,
        })?;
    let message = list
        .items
        .iter()
        .filter(|pod| pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some(phase))
        .flat_map(|pod| {
            pod.status
                .iter()
                .flat_map(|s| s.container_statuses.iter().flatten())
        })
        .filter(|c| c.name == migration::CONTAINER)
        .find_map(|c| c.state.as_ref()?.terminated.as_ref()?.message.clone())
        .map(|m| m.trim().chars().take(1024).collect::<String>());
    Ok(message)
}

/// Deletes the migration Jobs of earlier images once a newer one succeeded.
async fn delete_old_migrations(ctx: &Context, stack: &ValidatedStack, current: &str) -> Result<(), Error> {
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &stack.namespace);
    let selector = format!(
        "{}={},app.kubernetes.io/component={}",
        crate::build::STACK_LABEL,
        stack.name,
        migration::COMPONENT
    );
    let list = jobs
        .list_metadata(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| Error::Read {
            kind: "Job",
            name: selector.clone(),
            source,
        })?;
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    for old in list.items.iter().map(|j| j.name_any()).filter(|n| n != current) {
        match jobs.delete(&old, &params).await {
            Ok(_) => tracing::info!(job = old, "deleted superseded migration Job"),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(source) => {
                return Err(Error::Delete {
                    kind: "Job",
                    name: old,
                    source,
                });
            }
        }
    }
    Ok(())
}
