//! The reconcile of a `PerformanceStack`, as a pipeline with one module per step:
//!
//! 1. [`validate`]: the spec, or the field that is wrong (reported in status; waits for a change),
//!    then, once observed, whether the data can follow it (a PostgreSQL major version);
//! 2. [`observe`]: every read — Secrets, live children and claims (from the stores the watches keep,
//!    [`watched`]), the migration Job, the API pods' metrics (not while paused);
//! 3. [`tune`]: the one call into the tuner — settings in force within the connection budget;
//! 4. [`build`]: the desired children, pure;
//! 5. [`apply`]: every write — only what differs from what observe found;
//! 6. [`status`]: the status from what was observed, applied and decided, pure;
//! 7. [`update_status`]: write it when it changed, with an Event per transition.
//!
//! Each step depends only on the steps before it. A paused stack (`spec.suspend`, or the
//! `perfstack.dev/paused` annotation) goes from observe straight to status: conditions stay
//! current, nothing else is written, the tuner is frozen. The pipeline runs inside a finalizer whose
//! [`cleanup`] honours `spec.deletionPolicy`; a failed step is shown in status ([`failure`]) and
//! retried with backoff.
pub mod apply;
pub mod build;
pub mod cleanup;
pub mod context;
pub mod drift;
pub mod error;
pub mod events;
mod failure;
pub mod observe;
pub mod status;
pub mod storage;
pub mod tune;
pub mod update_status;
pub mod validate;
pub mod watched;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::{Client, ResourceExt};

pub use context::{AutoscalingApi, Context, Tuning, stack_key};
pub use error::{Error, ErrorChain};
pub use events::StackEvents;

use crate::children::ValidatedStack;
use crate::crd::PerformanceStack;

/// Finalizer the operator puts on every stack so cleanup runs before it disappears.
pub const FINALIZER: &str = "perfstack.dev/cleanup";
/// Requeue interval of a healthy stack: a periodic check on top of the watches.
const RESYNC: Duration = Duration::from_secs(300);
/// First retry delay after a failed reconcile; doubles with every consecutive failure.
const BACKOFF_BASE: Duration = Duration::from_secs(2);
/// Longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Reconciles one stack: the pipeline or cleanup, through the finalizer.
#[tracing::instrument(skip_all, fields(stack = %stack.name_any(), namespace = stack.namespace().unwrap_or_default()))]
pub async fn reconcile(stack: Arc<PerformanceStack>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_started();
    let key = stack_key(&stack);
    let api: Api<PerformanceStack> = stacks(&ctx.client, &stack);
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

fn stacks(client: &Client, stack: &PerformanceStack) -> Api<PerformanceStack> {
    Api::namespaced(client.clone(), &stack.namespace().unwrap_or_default())
}

/// The Apply arm of the finalizer: an invalid spec only says which field is wrong (and waits for a
/// change), any other runs the pipeline.
async fn apply_stack(stack: &PerformanceStack, ctx: &Context) -> Result<Action, Error> {
    let validated = match validate::validate(stack) {
        Ok(validated) => validated,
        Err(invalid) => return report_invalid(ctx, stack, &invalid).await,
    };
    // Boxed: observing and applying every child is a large future; keep the reconcile future small.
    match Box::pin(pipeline(stack, &validated, ctx)).await {
        Ok(action) => Ok(action),
        Err(error) => Err(failure::report_failure(ctx, stack, error).await),
    }
}

/// Shows an invalid spec in status; waits for a change of the stack.
async fn report_invalid(
    ctx: &Context,
    stack: &PerformanceStack,
    invalid: &validate::InvalidSpec,
) -> Result<Action, Error> {
    tracing::warn!(%invalid, "invalid spec; waiting for a change");
    update_status::write(ctx, stack, status::invalid(stack, invalid, &status::now())).await?;
    Ok(Action::await_change())
}

/// Steps 2 to 7 for a valid stack. A paused stack stops after observing: its status (every
/// condition, and `Suspended`) is the only write.
async fn pipeline(
    stack: &PerformanceStack,
    validated: &ValidatedStack,
    ctx: &Context,
) -> Result<Action, Error> {
    let observed = observe::observe(ctx, validated, stack.status.as_ref()).await?;
    if let Err(invalid) = validate::against_live(validated, &observed) {
        return report_invalid(ctx, stack, &invalid).await;
    }
    if validated.paused.is_some() {
        let decision = tune::frozen(validated, &observed);
        let live = apply::Applied::as_observed(validated, &observed);
        let new_status = status::compute(stack, validated, &observed, &live, &decision, &status::now());
        update_status::write(ctx, stack, new_status).await?;
        return Ok(Action::requeue(RESYNC));
    }
    let decision = tune::tune(ctx.tuning.as_ref().map(|t| &t.registry), validated, &observed);
    ctx.metrics.settings_in_force(stack, &decision.settings);
    let desired = build::build(validated, &decision, &observed)?;
    let mut applied = apply::apply(ctx, validated, &observed, &desired, &decision).await;
    let new_status = status::compute(stack, validated, &observed, &applied, &decision, &status::now());
    update_status::write(ctx, stack, new_status).await?;
    if !applied.refused.is_empty() {
        return Err(Error::Refused(std::mem::take(&mut applied.refused)));
    }
    Ok(Action::requeue(
        decision.requeue.map_or(RESYNC, |interval| RESYNC.min(interval)),
    ))
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
