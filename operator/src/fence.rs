//! The write fence: the moment this process stops leading, it stops writing. controller-runtime
//! cancels its manager's context when the Lease is lost; here every request goes through one layer
//! of the kube client that refuses state-changing requests (create, update, patch, delete) once the
//! fence is closed, before they are sent. A reconcile that is half way through its writes therefore
//! ends with an error instead of racing the new leader, and reads (the tuner's scrapes included)
//! still work while the process shuts down.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::Request;
use kube::client::Body;
use tower::BoxError;
use tower::filter::FilterLayer;

use crate::kube_requests::classify;

/// Whether this process may write to the API server. Cheap to clone; all clones share one state.
#[derive(Clone, Debug, Default)]
pub struct WriteFence {
    closed: Arc<AtomicBool>,
}

/// The error of a write refused because leadership was lost.
#[derive(Debug, thiserror::Error)]
#[error("{verb} {resource} refused: this operator lost leadership and no longer writes")]
pub struct Fenced {
    /// The refused request's verb.
    pub verb: &'static str,
    /// Its resource.
    pub resource: String,
}

impl WriteFence {
    /// An open fence: writes pass.
    pub fn open() -> Self {
        Self::default()
    }

    /// Closes the fence for good: every later write is refused.
    pub fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            tracing::warn!("leadership lost: writes to the API server are refused from now on");
        }
    }

    /// Whether writes still pass.
    pub fn is_open(&self) -> bool {
        !self.closed.load(Ordering::Acquire)
    }

    /// The kube client layer enforcing this fence.
    pub fn layer(
        &self,
    ) -> FilterLayer<impl Fn(Request<Body>) -> Result<Request<Body>, BoxError> + Clone + use<>> {
        let fence = self.clone();
        FilterLayer::new(move |request: Request<Body>| {
            let (verb, resource) = classify(request.method(), request.uri());
            if verb.is_write() && !fence.is_open() {
                return Err(Fenced {
                    verb: verb.as_str(),
                    resource,
                }
                .into());
            }
            Ok(request)
        })
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, Patch, PatchParams};
    use kube::client::ClientBuilder;
    use tower_test::mock;

    use super::*;

    #[tokio::test]
    async fn once_closed_writes_are_refused_before_they_are_sent_and_reads_pass() {
        let fence = WriteFence::open();
        let (service, mut handle) = mock::pair::<Request<Body>, http::Response<Body>>();
        let client = ClientBuilder::new(service, "shop")
            .with_layer(&fence.layer())
            .build();
        let server = tokio::spawn(async move {
            let mut paths = Vec::new();
            while let Some((request, send)) = handle.next_request().await {
                paths.push(format!("{} {}", request.method(), request.uri().path()));
                let body = serde_json::json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "web-config", "namespace": "shop"},
                });
                send.send_response(http::Response::new(Body::from(
                    serde_json::to_vec(&body).unwrap(),
                )));
            }
            paths
        });
        let api: Api<ConfigMap> = Api::namespaced(client, "shop");
        let (params, patch) = (PatchParams::apply("t"), Patch::Apply(serde_json::json!({})));
        api.patch("web-config", &params, &patch).await.unwrap();
        fence.close();
        let refused = api.patch("web-config", &params, &patch).await.unwrap_err();
        assert!(refused.to_string().contains("lost leadership"), "{refused}");
        api.get("web-config").await.unwrap();
        drop(api);
        let paths = server.await.unwrap();
        assert_eq!(
            paths,
            [
                "PATCH /api/v1/namespaces/shop/configmaps/web-config",
                "GET /api/v1/namespaces/shop/configmaps/web-config"
            ],
            "the refused patch never reached the API server"
        );
    }
}
