//! A small HTTP/1.1 client over hyper for the load tester: keep-alive connections, a per-request
//! timeout, and the body drained so connections are reused.
use std::time::Duration;

use http::{Method, Request, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

/// Why a request produced no response.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the base URL {0:?} is not an http:// URL (https is not supported by the load tester)")]
    BaseUrl(String),
    #[error("invalid request path {0:?}")]
    Path(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("connection failed")]
    Connect(#[source] hyper_util::client::legacy::Error),
    #[error("reading the response body failed")]
    Body(#[source] hyper::Error),
    #[error("could not encode the request body")]
    Encode(#[source] serde_json::Error),
    #[error("the token is not a valid header value")]
    Token,
}

impl ClientError {
    /// Short label for error counts in reports. `connect`: no connection could be opened (the
    /// request never reached a server, e.g. refused); `connection`: the connection failed after
    /// the request may have been sent (reset, closed without an answer).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::Connect(err) if err.is_connect() => "connect",
            Self::Connect(_) => "connection",
            Self::Body(_) => "body",
            Self::BaseUrl(_) | Self::Path(_) | Self::Encode(_) | Self::Token => "request",
        }
    }
}

/// A finished exchange: status and body.
#[derive(Debug)]
pub struct Answer {
    pub status: http::StatusCode,
    pub body: Bytes,
}

/// Cheap to clone; clones share the connection pool.
#[derive(Clone, Debug)]
pub struct ApiClient {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
    /// `Authorization` header value for a stack with auth on (`Bearer <token>`).
    authorization: Option<http::HeaderValue>,
}

impl ApiClient {
    /// `base_url` like `http://127.0.0.1:8080` (a path prefix is kept); `max_idle` sizes the
    /// keep-alive pool (one connection per virtual user).
    pub fn new(base_url: &str, timeout: Duration, max_idle: usize) -> Result<Self, ClientError> {
        let base = base_url.trim_end_matches('/').to_owned();
        let uri: Uri = base
            .parse()
            .map_err(|_| ClientError::BaseUrl(base_url.to_owned()))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(ClientError::BaseUrl(base_url.to_owned()));
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(max_idle)
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Self {
            base,
            client,
            timeout,
            authorization: None,
        })
    }

    /// Sends `token` as a bearer token with every request (for a stack with auth on). A token
    /// that is no valid header value is a [`ClientError::Token`].
    pub fn with_token(mut self, token: &str) -> Result<Self, ClientError> {
        let mut value =
            http::HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| ClientError::Token)?;
        value.set_sensitive(true);
        self.authorization = Some(value);
        Ok(self)
    }

    /// Sends one request and reads the whole body, all within the timeout.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, ClientError> {
        let uri: Uri = format!("{}{path}", self.base)
            .parse()
            .map_err(|_| ClientError::Path(path.to_owned()))?;
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::ACCEPT, "application/json");
        if let Some(authorization) = &self.authorization {
            builder = builder.header(header::AUTHORIZATION, authorization.clone());
        }
        let payload = match body {
            Some(value) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(value).map_err(ClientError::Encode)?)
            }
            None => Bytes::new(),
        };
        let request = builder
            .body(Full::new(payload))
            .map_err(|_| ClientError::Path(path.to_owned()))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(ClientError::Connect)?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(ClientError::Body)?
                .to_bytes();
            Ok(Answer { status, body })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| ClientError::Timeout(self.timeout))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_base_urls_are_accepted() {
        let t = Duration::from_secs(1);
        assert!(ApiClient::new("http://127.0.0.1:8080/", t, 1).is_ok());
        assert!(ApiClient::new("https://example.com", t, 1).is_err());
        assert!(ApiClient::new("localhost:8080", t, 1).is_err());
        assert!(ApiClient::new("not a url", t, 1).is_err());
    }

    #[test]
    fn a_token_must_fit_a_header() {
        let client = || ApiClient::new("http://127.0.0.1:8080", Duration::from_secs(1), 1).unwrap();
        assert!(client().with_token("abc123").is_ok());
        assert!(matches!(
            client().with_token("line\nbreak"),
            Err(ClientError::Token)
        ));
    }
}
