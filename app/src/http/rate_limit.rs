//! Per-caller token buckets: `POST /reports` may be asked for `per_minute` times a minute on
//! average, `burst` at once. A caller is its bearer token (by digest) when it sends one, else its
//! client address. Buckets live in this process (each replica limits on its own) and are dropped
//! once full again, so the table stays as small as the set of recent callers.
use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::http::{HeaderMap, header};

use super::error::ApiError;
use crate::config::ReportLimitConfig;

/// Most callers tracked at once; past it, buckets that refilled are dropped first.
const MAX_CALLERS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of one limit.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(cfg: &ReportLimitConfig) -> Self {
        Self {
            per_second: f64::from(cfg.per_minute) / 60.0,
            burst: f64::from(cfg.burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token of `caller`'s bucket, or says how long until there is one (429).
    pub fn admit(&self, caller: &str) -> Result<(), ApiError> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() >= MAX_CALLERS && !buckets.contains_key(caller) {
            let full_after = Duration::from_secs_f64(self.burst / self.per_second);
            buckets.retain(|_, b| now.duration_since(b.at) < full_after);
        }
        let bucket = buckets.entry(caller.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let refilled = now.duration_since(bucket.at).as_secs_f64() * self.per_second;
        bucket.tokens = (bucket.tokens + refilled).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - bucket.tokens) / self.per_second;
        // Whole seconds, rounded up, at least 1 (Retry-After has no fractions).
        let retry_after_s = (wait.ceil() as u64).max(1);
        tracing::info!(retry_after_s, "report request rate-limited");
        Err(ApiError::RateLimited { retry_after_s })
    }
}

/// Who is asking: `token:<digest prefix>` when a bearer token is sent, else `addr:<ip>`.
pub fn caller(headers: &HeaderMap, peer: Option<SocketAddr>) -> String {
    if let Some(authorization) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return format!("token:{}", super::auth::caller_of_token(authorization));
    }
    match peer {
        Some(addr) => format!("addr:{}", addr.ip()),
        None => "addr:unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_asks_to_wait() {
        let limiter = RateLimiter::new(&ReportLimitConfig {
            per_minute: 6,
            burst: 2,
        });
        assert!(limiter.admit("a").is_ok());
        assert!(limiter.admit("a").is_ok());
        match limiter.admit("a") {
            Err(ApiError::RateLimited { retry_after_s }) => assert!((1..=10).contains(&retry_after_s)),
            other => panic!("expected 429, got {other:?}"),
        }
        assert!(limiter.admit("b").is_ok(), "callers have their own buckets");
    }
}
