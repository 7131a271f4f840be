//! The API's HorizontalPodAutoscaler (autoscaling/v2), and the same object for servers that serve only
//! autoscaling/v2beta2 (Kubernetes < 1.23), whose fields used here are identical.
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};

use super::ValidatedStack;

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
            behavior: None,
        }),
        status: None,
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
