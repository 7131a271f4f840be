//! Fetches `/metrics` from every pod at once, each with a short timeout, and parses the answers
//! into [`PodSnapshot`]s. A pod that fails is reported by name with the reason, never skipped.
//!
//! The pods run an image the stack's owner chose, and one operator serves every stack: a pod must
//! not be able to make it run out of memory or wait forever. So every answer is bounded: a time
//! limit, no redirects followed, at most [`MAX_BODY_BYTES`] read (the body is streamed and cut, a
//! larger `Content-Length` is refused unread) and at most [`exposition::MAX_SAMPLES`] samples parsed.
use std::time::Duration;

use futures::future::join_all;

use super::error::TunerError;
use super::exposition;
use super::observe::{PodAnswer, PodSnapshot};

/// The largest `/metrics` body read from a pod. The app's own is a few tens of KiB (its route and
/// query labels are bounded sets); 4 MiB leaves room for any honest exporter.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// A pod to scrape: a name for reports and the full URL of its metrics endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Pod name (or `local` in local mode).
    pub name: String,
    /// e.g. `http://10.0.0.7:8080/metrics` or an API-server pod-proxy URL.
    pub url: String,
}

/// The HTTP side of observing.
#[derive(Debug, Clone)]
pub struct Scraper {
    client: reqwest::Client,
}

impl Scraper {
    /// A scraper whose requests give up after `timeout` (keep it well below the interval).
    pub fn new(timeout: Duration) -> Result<Self, TunerError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("perfstack-tuner/", env!("CARGO_PKG_VERSION")))
            // A redirect could point the operator's requests anywhere; a 3xx is an error instead.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(TunerError::Client)?;
        Ok(Self { client })
    }

    /// Scrapes one endpoint.
    pub async fn scrape(&self, url: &str) -> Result<PodSnapshot, TunerError> {
        let scrape_error = |source| TunerError::Scrape {
            url: url.to_owned(),
            source,
        };
        let mut response = self.client.get(url).send().await.map_err(scrape_error)?;
        let status = response.status();
        if !status.is_success() {
            return Err(TunerError::ScrapeStatus {
                url: url.to_owned(),
                status: status.as_u16(),
            });
        }
        let too_large = || TunerError::TooLarge {
            url: url.to_owned(),
            limit: MAX_BODY_BYTES,
        };
        if response
            .content_length()
            .is_some_and(|length| length > MAX_BODY_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(scrape_error)? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        snapshot_of(&body)
    }

    /// Scrapes every target concurrently; answers come back in the targets' order.
    pub async fn scrape_all(&self, targets: &[Target]) -> Vec<PodAnswer> {
        let answers = join_all(targets.iter().map(|t| self.scrape(&t.url))).await;
        targets
            .iter()
            .zip(answers)
            .map(|(t, answer)| (t.name.clone(), answer.map_err(|e| e.to_string())))
            .collect()
    }
}

/// The snapshot in a `/metrics` body (text, within the sample limit).
pub fn snapshot_of(body: &[u8]) -> Result<PodSnapshot, TunerError> {
    let text = String::from_utf8_lossy(body);
    let samples = exposition::parse(&text)?;
    Ok(PodSnapshot::from_samples(&samples))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::Router;
    use axum::http::StatusCode;
    use axum::routing::get;

    use super::*;
    use crate::tuner::testing::PodMetrics;

    async fn serve(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn scrapes_real_http_and_reports_failures_by_pod() {
        let metrics = Arc::new(
            PodMetrics {
                ok: 42,
                pool_max: 7,
                generation: 3,
                ..PodMetrics::default()
            }
            .render(),
        );
        let body = metrics.clone();
        let good = serve(Router::new().route("/metrics", get(move || async move { body.to_string() }))).await;
        let broken = serve(Router::new().route(
            "/metrics",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "no") }),
        ))
        .await;
        let garbage = serve(Router::new().route("/metrics", get(|| async { "this is { not metrics" }))).await;
        let slow = serve(Router::new().route(
            "/metrics",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late 1"
            }),
        ))
        .await;
        let targets: Vec<Target> = [
            ("good", &good),
            ("broken", &broken),
            ("garbage", &garbage),
            ("slow", &slow),
        ]
        .into_iter()
        .map(|(name, base)| Target {
            name: name.into(),
            url: format!("{base}/metrics"),
        })
        .chain([Target {
            name: "gone".into(),
            url: "http://127.0.0.1:9/metrics".into(),
        }])
        .collect();
        let scraper = Scraper::new(Duration::from_millis(300)).unwrap();
        let answers = scraper.scrape_all(&targets).await;
        let names: Vec<&str> = answers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["good", "broken", "garbage", "slow", "gone"]);
        let snap = answers[0].1.as_ref().unwrap();
        assert_eq!((snap.requests, snap.pool_max, snap.generation), (42.0, 7.0, 3));
        assert!(
            answers[1].1.as_ref().unwrap_err().contains("HTTP 503"),
            "{:?}",
            answers[1]
        );
        assert!(
            answers[2].1.as_ref().unwrap_err().contains("metrics line 1"),
            "{:?}",
            answers[2]
        );
        assert!(answers[3].1.is_err() && answers[4].1.is_err());
    }

    #[tokio::test]
    async fn oversized_bodies_and_redirects_are_refused() {
        let huge = "x 1\n".repeat(MAX_BODY_BYTES / 4 + 1);
        let sized = huge.clone();
        // With a Content-Length: refused before reading.
        let declared = serve(Router::new().route("/metrics", get(move || async move { sized }))).await;
        // Streamed without one: cut once the limit is passed.
        let streamed = serve(Router::new().route(
            "/metrics",
            get(move || async move {
                let chunks = huge
                    .into_bytes()
                    .chunks(64 * 1024)
                    .map(|c| Ok::<_, std::io::Error>(axum::body::Bytes::copy_from_slice(c)))
                    .collect::<Vec<_>>();
                axum::body::Body::from_stream(futures::stream::iter(chunks))
            }),
        ))
        .await;
        let good = serve(Router::new().route("/metrics", get(|| async { "x 1\n" }))).await;
        let target = format!("{good}/metrics");
        let redirecting = serve(Router::new().route(
            "/metrics",
            get(move || async move { axum::response::Redirect::temporary(&target) }),
        ))
        .await;
        let scraper = Scraper::new(Duration::from_secs(5)).unwrap();
        for base in [&declared, &streamed] {
            let error = scraper.scrape(&format!("{base}/metrics")).await.unwrap_err();
            assert!(
                matches!(
                    error,
                    TunerError::TooLarge {
                        limit: MAX_BODY_BYTES,
                        ..
                    }
                ),
                "{base}: {error}"
            );
        }
        let error = scraper
            .scrape(&format!("{redirecting}/metrics"))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("HTTP 307"), "{error}");
        assert!(scraper.scrape(&format!("{good}/metrics")).await.is_ok());
    }
}
