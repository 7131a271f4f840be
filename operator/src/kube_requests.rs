//! Every request the operator sends to the Kubernetes API, counted by verb and resource
//! (`perfstack_operator_kube_requests_total`), the way controller-runtime's `rest_client_requests_total`
//! lets a platform team see what an operator costs its API server. The classification is pure; the
//! client is kube's default stack with one counting layer on top.
use std::sync::Arc;

use http::{Method, Request, Uri};
use kube::client::{Body, ClientBuilder};
use kube::{Client, Config};
use tower::util::MapRequestLayer;

use crate::fence::WriteFence;
use crate::metrics::Metrics;

/// What one request does, in the Kubernetes API's own verbs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
    Other,
}

impl Verb {
    /// The verb as the API server's audit log and RBAC spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
            Verb::Other => "other",
        }
    }

    /// Whether the request changes state in the cluster.
    pub fn is_write(self) -> bool {
        WRITE_VERBS.contains(&self.as_str())
    }
}

/// The `verb` label values of requests that change state in the cluster.
pub const WRITE_VERBS: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

/// The verb and the resource (`deployments`, `performancestacks/status`, `pods/proxy`) of a request.
/// Paths outside a resource (`/api`, `/apis/apps/v1`, `/version`) are `discovery`.
pub fn classify(method: &Method, uri: &Uri) -> (Verb, String) {
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let rest = match segments.first() {
        Some(&"api") => segments.get(2..),
        Some(&"apis") => segments.get(3..),
        _ => None,
    }
    .unwrap_or_default();
    // A namespaced path is namespaces/{ns}/{resource}/...; namespaces/{name} alone is a Namespace.
    let rest = match rest {
        ["namespaces", _, resource, tail @ ..] => {
            let mut path = vec![*resource];
            path.extend(tail);
            path
        }
        other => other.to_vec(),
    };
    let (resource, named) = match rest.as_slice() {
        [] => ("discovery".to_owned(), false),
        [resource] => ((*resource).to_owned(), false),
        [resource, _name] => ((*resource).to_owned(), true),
        [resource, _name, subresource, ..] => (format!("{resource}/{subresource}"), true),
    };
    let watch = uri
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
    let verb = match *method {
        Method::GET if watch => Verb::Watch,
        Method::GET if named || resource == "discovery" => Verb::Get,
        Method::GET => Verb::List,
        Method::POST => Verb::Create,
        Method::PUT => Verb::Update,
        Method::PATCH => Verb::Patch,
        Method::DELETE if named => Verb::Delete,
        Method::DELETE => Verb::DeleteCollection,
        _ => Verb::Other,
    };
    (verb, resource)
}

/// A layer that counts each request into `metrics` before it is sent.
pub fn counting_layer(
    metrics: Arc<Metrics>,
) -> MapRequestLayer<impl Fn(Request<Body>) -> Request<Body> + Clone> {
    MapRequestLayer::new(move |request: Request<Body>| {
        let (verb, resource) = classify(request.method(), request.uri());
        metrics.kube_request(verb.as_str(), &resource);
        request
    })
}

/// A client from the inferred configuration (in-cluster or KUBECONFIG) that counts the requests it
/// sends and refuses writes once `fence` is closed (those are not sent, so not counted).
pub async fn client(metrics: Arc<Metrics>, fence: &WriteFence) -> anyhow::Result<Client> {
    let config = Config::infer().await?;
    Ok(ClientBuilder::try_from(config)?
        .with_layer(&counting_layer(metrics))
        .with_layer(&fence.layer())
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verb_resource(method: Method, uri: &str) -> (&'static str, String) {
        let (verb, resource) = classify(&method, &uri.parse().unwrap());
        (verb.as_str(), resource)
    }

    #[test]
    fn paths_and_methods_map_to_kubernetes_verbs() {
        let cases = [
            (
                Method::GET,
                "/api/v1/namespaces/shop/configmaps/web-config",
                "get",
                "configmaps",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/shop/pods?labelSelector=a%3Db",
                "list",
                "pods",
            ),
            (
                Method::GET,
                "/apis/apps/v1/deployments?watch=true&resourceVersion=1",
                "watch",
                "deployments",
            ),
            (
                Method::PATCH,
                "/apis/perfstack.dev/v1alpha1/namespaces/shop/performancestacks/web/status",
                "patch",
                "performancestacks/status",
            ),
            (
                Method::PATCH,
                "/apis/apps/v1/namespaces/shop/statefulsets/web-postgres?fieldManager=x&force=true",
                "patch",
                "statefulsets",
            ),
            (
                Method::POST,
                "/apis/events.k8s.io/v1/namespaces/shop/events",
                "create",
                "events",
            ),
            (
                Method::PUT,
                "/apis/coordination.k8s.io/v1/namespaces/shop/leases/op",
                "update",
                "leases",
            ),
            (
                Method::DELETE,
                "/apis/batch/v1/namespaces/shop/jobs/web-migrate-1",
                "delete",
                "jobs",
            ),
            (
                Method::DELETE,
                "/apis/batch/v1/namespaces/shop/jobs?labelSelector=x",
                "deletecollection",
                "jobs",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/shop/pods/web-api-1:8080/proxy/metrics",
                "get",
                "pods/proxy",
            ),
            (Method::GET, "/api/v1/namespaces/shop", "get", "namespaces"),
            (Method::GET, "/api/v1/namespaces", "list", "namespaces"),
            (Method::GET, "/apis/autoscaling/v2", "get", "discovery"),
            (Method::GET, "/version", "get", "discovery"),
        ];
        for (method, uri, verb, resource) in cases {
            assert_eq!(verb_resource(method, uri), (verb, resource.to_owned()), "{uri}");
        }
    }

    #[test]
    fn only_state_changing_verbs_are_writes() {
        let writes: Vec<&str> = [
            Verb::Get,
            Verb::List,
            Verb::Watch,
            Verb::Create,
            Verb::Update,
            Verb::Patch,
            Verb::Delete,
            Verb::DeleteCollection,
            Verb::Other,
        ]
        .into_iter()
        .filter(|v| v.is_write())
        .map(Verb::as_str)
        .collect();
        assert_eq!(
            writes,
            ["create", "update", "patch", "delete", "deletecollection"]
        );
    }

    #[tokio::test]
    async fn the_layer_counts_what_passes_through_it() {
        use kube::api::{Api, Patch, PatchParams};
        use tower_test::mock;

        let metrics = Arc::new(Metrics::default());
        let (service, mut handle) = mock::pair::<Request<Body>, http::Response<Body>>();
        let client = ClientBuilder::new(service, "shop")
            .with_layer(&counting_layer(metrics.clone()))
            .build();
        let server = tokio::spawn(async move {
            for _ in 0..2 {
                let (request, send) = handle.next_request().await.unwrap();
                let body = serde_json::json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "web-config", "namespace": "shop"},
                });
                assert!(request.uri().path().ends_with("/configmaps/web-config"));
                send.send_response(
                    http::Response::builder()
                        .body(Body::from(serde_json::to_vec(&body).unwrap()))
                        .unwrap(),
                );
            }
        });
        let api: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client, "shop");
        api.get("web-config").await.unwrap();
        api.patch(
            "web-config",
            &PatchParams::apply("t"),
            &Patch::Apply(serde_json::json!({})),
        )
        .await
        .unwrap();
        server.await.unwrap();
        let text = metrics.encode().unwrap();
        for verb in ["get", "patch"] {
            let line = format!(
                "perfstack_operator_kube_requests_total{{verb=\"{verb}\",resource=\"configmaps\"}} 1"
            );
            assert!(text.contains(&line), "{line} missing in\n{text}");
        }
    }
}
