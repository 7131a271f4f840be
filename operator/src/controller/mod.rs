//! The reconcile pipeline for `PerformanceStack`:
//! validate -> apply (children) -> status (pure) -> update_status (write if changed, Events),
//! wrapped in a finalizer whose cleanup honours spec.deletionPolicy.
pub mod apply;
pub mod cleanup;
pub mod events;
mod failure;
pub mod migrate;
pub mod status;
pub mod tune;
pub mod update_status;
pub mod validate;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::{Client, ResourceExt};

use crate::crd::PerformanceStack;
use crate::metrics::Metrics;

pub use events::StackEvents;

/// Finalizer the operator puts on every stack so cleanup runs before it disappears.
pub const FINALIZER: &str = "perfstack.dev/cleanup";
/// Requeue interval of a healthy stack: a periodic check on top of the watches.
const RESYNC: Duration = Duration::from_secs(300);
/// First retry delay after a failed reconcile; doubles with every consecutive failure.
const BACKOFF_BASE: Duration = Duration::from_secs(2);
/// Longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Which HorizontalPodAutoscaler API the cluster serves (discovered at start-up).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AutoscalingApi {
    /// autoscaling/v2 (Kubernetes 1.23 and later).
    #[default]
    V2,
    /// Only autoscaling/v2beta2 (older clusters).
    V2beta2,
    /// Neither; the API runs a fixed number of replicas.
    Unavailable,
}

impl AutoscalingApi {
    /// Asks the API server which autoscaling versions it serves.
    pub async fn discover(client: &Client) -> Result<Self, kube::Error> {
        let groups = client.list_api_groups().await?;
        let versions: Vec<String> = groups
            .groups
            .iter()
            .filter(|g| g.name == "autoscaling")
            .flat_map(|g| g.versions.iter().map(|v| v.version.clone()))
            .collect();
        Ok(if versions.iter().any(|v| v == "v2") {
            Self::V2
        } else if versions.iter().any(|v| v == "v2beta2") {
            Self::V2beta2
        } else {
            Self::Unavailable
        })
    }
}

/// Everything a reconcile needs, shared by all reconciles.
pub struct Context {
    /// Client for the Kubernetes API.
    pub client: Client,
    /// The autoscaling API version HPAs are written with.
    pub autoscaling: AutoscalingApi,
    /// Records Events about stacks.
    pub events: StackEvents,
    /// Operator metrics (reconciles, errors, durations, stacks by phase).
    pub metrics: Arc<Metrics>,
    /// Consecutive failed reconciles per stack (namespace/name), for exponential backoff.
    pub failures: Mutex<HashMap<String, u32>>,
    /// The pool/HPA tuner; `None` writes spec.pool and spec.app replicas unchanged.
    pub tuning: Option<tune::Tuning>,
}

impl Context {
    /// A context with no failures recorded yet.
    pub fn new(
        client: Client,
        autoscaling: AutoscalingApi,
        events: StackEvents,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            client,
            autoscaling,
            events,
            metrics,
            failures: Mutex::new(HashMap::new()),
            tuning: None,
        }
    }

    /// The same context with the tuner wired in.
    pub fn with_tuning(mut self, tuning: tune::Tuning) -> Self {
        self.tuning = Some(tuning);
        self
    }

    fn record_failure(&self, key: String) -> u32 {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = failures.entry(key).or_insert(0);
        *count = count.saturating_add(1);
        *count
    }

    fn clear_failures(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }
}

/// Everything that can make a reconcile fail; all of these are retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a child or related object failed.
    #[error("reading {kind} {name}")]
    Read {
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
    /// Creating or applying a child failed.
    #[error("applying {kind} {name}")]
    Apply {
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
    /// Deleting a superseded child failed.
    #[error("deleting {kind} {name}")]
    Delete {
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
    /// Writing the stack's status failed.
    #[error("updating the stack's status")]
    Status {
        #[source]
        source: kube::Error,
    },
    /// A cleanup step failed.
    #[error("cleanup: {what}")]
    Cleanup {
        what: &'static str,
        #[source]
        source: kube::Error,
    },
    /// The tuning file could not be rendered.
    #[error("rendering the tuning file")]
    TuningFile(#[source] serde_yaml::Error),
    /// A child could not be serialized.
    #[error("serializing a child")]
    Serialize(#[source] serde_json::Error),
    /// Adding or removing the finalizer failed, or apply/cleanup failed inside it.
    #[error("{0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

impl Error {
    /// Short label for the reconcile error metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Read { .. } => "read",
            Error::Apply { .. } => "apply",
            Error::Delete { .. } => "delete",
            Error::Status { .. } => "status",
            Error::Cleanup { .. } => "cleanup",
            Error::TuningFile(_) => "tuning_file",
            Error::Serialize(_) => "serialize",
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.metric_label(),
                _ => "finalizer",
            },
        }
    }
}

fn stack_key(stack: &PerformanceStack) -> String {
    format!("{}/{}", stack.namespace().unwrap_or_default(), stack.name_any())
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// Reconciles one stack: apply or cleanup through the finalizer.
#[tracing::instrument(skip_all, fields(stack = %stack.name_any(), namespace = stack.namespace().unwrap_or_default()))]
pub async fn reconcile(stack: Arc<PerformanceStack>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_started();
    let key = stack_key(&stack);
    let api: Api<PerformanceStack> =
        Api::namespaced(ctx.client.clone(), &stack.namespace().unwrap_or_default());
    let action = finalizer(&api, FINALIZER, stack, |event| async {
        match event {
            FinalizerEvent::Apply(stack) => apply_stack(&stack, &ctx).await,
            FinalizerEvent::Cleanup(stack) => cleanup::cleanup(&stack, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))?;
    ctx.clear_failures(&key);
    Ok(action)
}

async fn apply_stack(stack: &PerformanceStack, ctx: &Context) -> Result<Action, Error> {
    if stack.spec.suspend {
        update_status::write(ctx, stack, status::suspended(stack)).await?;
        return Ok(Action::await_change());
    }
    let mut validated = match validate::validate(stack) {
        Ok(validated) => validated,
        Err(invalid) => {
            tracing::warn!(%invalid, "invalid spec; waiting for a change");
            update_status::write(ctx, stack, status::invalid(stack, &invalid, &now())).await?;
            return Ok(Action::await_change());
        }
    };
    let previous_migration = stack
        .status
        .as_ref()
        .and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.type_ == status::MIGRATIONS_APPLIED)
        })
        .filter(|c| c.status == "True")
        .map(|c| c.message.as_str());
    let key = stack_key(stack);
    if let Some(tuning) = &ctx.tuning {
        tune::recover(tuning, ctx, &key, &validated).await;
    }
    let prepared = ctx
        .tuning
        .as_ref()
        .map(|tuning| (tuning, tune::prepare(tuning, &key, &mut validated)));
    // Boxed: applying every child is a large future; keep the reconcile future small.
    let applied = match Box::pin(apply::apply_all(&validated, ctx, previous_migration)).await {
        Ok(applied) => applied,
        Err(error) => return Err(failure::report_failure(ctx, stack, error).await),
    };
    let mut requeue = RESYNC;
    if let Some((tuning, prepared)) = &prepared {
        // Boxed: the tuning interval (listing and scraping pods) is a large future.
        let acted = Box::pin(tune::act(
            tuning,
            ctx,
            stack,
            &key,
            &mut validated,
            prepared,
            &applied,
        ))
        .await;
        if let Err(error) = acted {
            return Err(failure::report_failure(ctx, stack, error).await);
        }
        if prepared.active() {
            requeue = requeue.min(prepared.interval);
        }
    }
    let now = now();
    let mut new_status = status::compute(stack, &validated, &applied, &now);
    if let Some((tuning, prepared)) = &prepared {
        tune::report(
            tuning,
            &key,
            prepared,
            stack.metadata.generation,
            &mut new_status,
            &now,
        );
    }
    update_status::write(ctx, stack, new_status).await?;
    Ok(Action::requeue(requeue))
}

/// Retry delay after a failed reconcile: exponential in the number of consecutive failures, capped,
/// with jitter so that stacks failing together do not retry together.
pub fn backoff(failures: u32, jitter: f64) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    let delay = BACKOFF_BASE.saturating_mul(1u32 << exponent).min(BACKOFF_MAX);
    delay.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// What the controller does after a failed reconcile.
pub fn error_policy(stack: Arc<PerformanceStack>, error: &Error, ctx: Arc<Context>) -> Action {
    let failures = ctx.record_failure(stack_key(&stack));
    ctx.metrics.reconcile_failed(error.metric_label());
    let delay = backoff(failures, rand::random::<f64>());
    tracing::warn!(stack = %stack.name_any(), error = %ErrorChain(error), failures, retry_in_s = delay.as_secs_f64(), "reconcile failed");
    Action::requeue(delay)
}

/// Displays an error with its sources, for logs.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Many errors already print their source; skip a cause the previous message ends with.
        let mut shown = self.0.to_string();
        write!(f, "{shown}")?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            let message = cause.to_string();
            if !shown.ends_with(&message) {
                write!(f, ": {message}")?;
            }
            shown = message;
            source = cause.source();
        }
        Ok(())
    }
}
