//! The API's HorizontalPodAutoscaler (autoscaling/v2), and the same object for servers that serve only
//! autoscaling/v2beta2 (Kubernetes < 1.23), whose fields used here are identical.
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscaler,
    HorizontalPodAutoscalerBehavior, HorizontalPodAutoscalerSpec, MetricSpec, MetricTarget,
    ResourceMetricSource,
};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};

use super::ValidatedStack;
use crate::tuner::budget::{TERMINATION_GRACE_SECONDS, surge};

/// The replica bounds the HPA keeps (the tuner's, always within the connection budget).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicaRange {
    /// `minReplicas`.
    pub min: i32,
    /// `maxReplicas`.
    pub max: i32,
}

/// The HPA scaling the API Deployment on CPU within `replicas`.
pub fn hpa(stack: &ValidatedStack, replicas: ReplicaRange) -> HorizontalPodAutoscaler {
    HorizontalPodAutoscaler {
        metadata: stack.child_meta(stack.names().api(), super::app::COMPONENT),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: stack.names().api(),
            },
            min_replicas: Some(replicas.min),
            max_replicas: replicas.max,
            metrics: Some(vec![MetricSpec {
                type_: "Resource".into(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".into(),
                    target: MetricTarget {
                        type_: "Utilization".into(),
                        average_utilization: Some(stack.spec.app.target_cpu_utilization),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            }]),
            behavior: Some(scale_down_in_steps(replicas.max)),
        }),
        status: None,
    }
}

/// Scale-down at most one surge's worth of pods per grace period (the default stabilization window
/// kept): the pods one step removed have exited, and released their pools, before the next step
/// removes more. The connection budget counts on it (tuner/budget.rs).
fn scale_down_in_steps(max_replicas: i32) -> HorizontalPodAutoscalerBehavior {
    let max = u32::try_from(max_replicas).unwrap_or(1);
    let to_i32 = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    HorizontalPodAutoscalerBehavior {
        scale_down: Some(HPAScalingRules {
            policies: Some(vec![HPAScalingPolicy {
                type_: "Pods".into(),
                value: to_i32(surge(max).max(1)),
                period_seconds: to_i32(TERMINATION_GRACE_SECONDS),
            }]),
            ..HPAScalingRules::default()
        }),
        scale_up: None,
    }
}

/// ApiResource of autoscaling/v2 HorizontalPodAutoscalers.
pub fn v2_resource() -> ApiResource {
    ApiResource::erase::<HorizontalPodAutoscaler>(&())
}

/// ApiResource of autoscaling/v2beta2 HorizontalPodAutoscalers.
pub fn v2beta2_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("autoscaling", "v2beta2", "HorizontalPodAutoscaler"),
        "horizontalpodautoscalers",
    )
}

/// The HPA as an autoscaling/v2beta2 object (same spec shape for resource metrics).
pub fn hpa_v2beta2(stack: &ValidatedStack, replicas: ReplicaRange) -> DynamicObject {
    let v2 = hpa(stack, replicas);
    let mut object = DynamicObject::new(&stack.names().api(), &v2beta2_resource()).within(&stack.namespace);
    object.metadata = v2.metadata;
    object.data = serde_json::json!({ "spec": v2.spec });
    object
}
