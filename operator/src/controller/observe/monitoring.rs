//! The monitoring part of observe: whether the cluster serves the Prometheus Operator's kinds, and the
//! stack's live PodMonitor and PrometheusRule. Asked only for a stack that wants monitoring (or had it
//! created before, to retire it), so other stacks cost no request.
use kube::api::{Api, DynamicObject};

use super::get;
use crate::children::ValidatedStack;
use crate::children::monitoring::{self, API_VERSION};
use crate::controller::context::Context;
use crate::controller::error::{Error, unless_gone};

/// What observe found of the stack's monitoring objects.
#[derive(Clone, Debug, PartialEq)]
pub enum ObservedMonitoring {
    /// `spec.monitoring.enabled`, but the cluster does not serve PodMonitor and PrometheusRule.
    NotServed,
    /// `spec.monitoring.enabled` and the kinds are served: the live objects (`None`: absent).
    Served {
        pod_monitor: Option<Box<DynamicObject>>,
        rule: Option<Box<DynamicObject>>,
    },
    /// Monitoring was turned off after the operator created the objects: they are deleted.
    Retired,
}

/// Reads what the stack's monitoring needs; `created_before` says whether status reports objects the
/// operator created earlier. `None`: monitoring is off and there is nothing to retire.
pub async fn observe(
    ctx: &Context,
    stack: &ValidatedStack,
    created_before: bool,
) -> Result<Option<ObservedMonitoring>, Error> {
    if !stack.spec.monitoring.enabled {
        return Ok(created_before.then_some(ObservedMonitoring::Retired));
    }
    if !served(ctx).await? {
        return Ok(Some(ObservedMonitoring::NotServed));
    }
    let names = stack.names();
    let monitors = api(ctx, stack, &monitoring::pod_monitor_resource());
    let rules = api(ctx, stack, &monitoring::prometheus_rule_resource());
    Ok(Some(ObservedMonitoring::Served {
        pod_monitor: get(&monitors, "PodMonitor", &names.api()).await?.map(Box::new),
        rule: get(&rules, "PrometheusRule", &names.slo_rules())
            .await?
            .map(Box::new),
    }))
}

/// The namespaced API of a monitoring kind.
pub fn api(ctx: &Context, stack: &ValidatedStack, resource: &kube::api::ApiResource) -> Api<DynamicObject> {
    Api::namespaced_with(ctx.client.clone(), &stack.namespace, resource)
}

/// Whether the API server serves both kinds (discovery of `monitoring.coreos.com/v1`; a 404 means the
/// Prometheus Operator's CRDs are not installed). Asked at every reconcile of a stack that wants
/// monitoring, so CRDs installed later are picked up without a restart.
async fn served(ctx: &Context) -> Result<bool, Error> {
    let found = unless_gone(ctx.client.list_api_group_resources(API_VERSION).await)
        .map_err(Error::observing("APIResourceList", API_VERSION))?;
    Ok(found.is_some_and(|list| {
        ["podmonitors", "prometheusrules"]
            .iter()
            .all(|plural| list.resources.iter().any(|r| r.name == *plural))
    }))
}
