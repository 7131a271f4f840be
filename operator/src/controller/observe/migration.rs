//! The migration Job of the desired image: whether it exists and where it stands. A finished Job's
//! outcome comes from the stack's status when it recorded this Job's end, else from its pod's
//! termination message (the contract's `MigrationReport`); a newly succeeded Job also lists the
//! superseded Jobs the apply step deletes.
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use perfstack_contract::migration::{MAX_REPORT_BYTES, MigrationReport};

use crate::children::{ValidatedStack, migration};
use crate::controller::context::Context;
use crate::controller::error::Error;
use crate::crd::{MigrationState, MigrationStatus};

/// The migration of the desired image as observed.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedMigration {
    /// Where it stands; `WaitingForDatabase` while the Job does not exist (the apply step creates
    /// it once the database is ready).
    pub status: MigrationStatus,
    /// Migration Jobs of earlier images, to delete now that this one newly succeeded.
    pub superseded: Vec<String>,
}

impl ObservedMigration {
    /// Whether the Job exists.
    pub fn job_exists(&self) -> bool {
        self.status.state != MigrationState::WaitingForDatabase
    }
}

/// Where `job` stands (`Failed`: its Failed condition is True).
pub fn state_of(job: &Job) -> MigrationState {
    let status = job.status.clone().unwrap_or_default();
    let failed = status
        .conditions
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Failed" && c.status == "True");
    if status.succeeded.unwrap_or(0) >= 1 {
        MigrationState::Succeeded
    } else if failed {
        MigrationState::Failed
    } else {
        MigrationState::Running
    }
}

/// Reads the migration Job of the stack's desired image, and what a finished one reported.
pub async fn observe(
    ctx: &Context,
    stack: &ValidatedStack,
    recorded: Option<&MigrationStatus>,
) -> Result<ObservedMigration, Error> {
    let jobs: Api<Job> = ctx.api(&stack.namespace);
    let name = migration::job_name(stack);
    let mut status = MigrationStatus {
        job: name.clone(),
        image: stack.app_image.clone(),
        state: MigrationState::WaitingForDatabase,
        summary: None,
        error: None,
    };
    let job: Option<Job> = super::read(ctx, &stack.namespace, "Job", &name).await?;
    let Some(job) = job else {
        return Ok(ObservedMigration {
            status,
            superseded: Vec::new(),
        });
    };
    status.state = state_of(&job);
    let finished = matches!(status.state, MigrationState::Succeeded | MigrationState::Failed);
    if let Some(recorded) = recorded.filter(|r| finished && r.job == name && r.state == status.state) {
        return Ok(ObservedMigration {
            status: recorded.clone(),
            superseded: Vec::new(),
        });
    }
    let mut superseded = Vec::new();
    match status.state {
        MigrationState::Succeeded => {
            let message = termination_message(&ctx.api(&stack.namespace), &name, "Succeeded").await?;
            if let Some(MigrationReport::Succeeded(summary)) =
                message.as_deref().and_then(MigrationReport::parse)
            {
                status.summary = Some(summary);
            }
            superseded = superseded_jobs(&jobs, stack, &name).await?;
        }
        MigrationState::Failed => {
            let message = termination_message(&ctx.api(&stack.namespace), &name, "Failed").await?;
            status.error = message.map(|text| match MigrationReport::parse(&text) {
                Some(MigrationReport::Failed { error }) => capped(&error),
                _ => capped(&text),
            });
        }
        MigrationState::Running | MigrationState::WaitingForDatabase => {}
    }
    Ok(ObservedMigration { status, superseded })
}

/// `text` trimmed and cut to the longest report the operator keeps.
fn capped(text: &str) -> String {
    text.trim().chars().take(MAX_REPORT_BYTES).collect()
}

/// The termination message of the migrate container in a pod of `job` that ended in `phase`, as
/// the kubelet kept it.
async fn termination_message(pods: &Api<Pod>, job: &str, phase: &str) -> Result<Option<String>, Error> {
    let selector = format!("job-name={job}");
    let list = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(Error::observing("Pod", &selector))?;
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
        .find_map(|c| c.state.as_ref()?.terminated.as_ref()?.message.clone());
    Ok(message)
}

/// The stack's migration Jobs other than `current`.
async fn superseded_jobs(
    jobs: &Api<Job>,
    stack: &ValidatedStack,
    current: &str,
) -> Result<Vec<String>, Error> {
    let selector = migration::jobs_selector(stack);
    let list = jobs
        .list_metadata(&ListParams::default().labels(&selector))
        .await
        .map_err(Error::observing("Job", &selector))?;
    Ok(list
        .items
        .iter()
        .map(|j| j.name_any())
        .filter(|n| n != current)
        .collect())
}
