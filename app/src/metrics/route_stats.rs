//! Exact per-route latency statistics over every request since start (HDR histograms), for the
//! performance dashboard. Prometheus buckets serve the tuner; these serve people reading figures.
use std::{
    collections::{BTreeMap, btree_map::Entry},
    sync::Mutex,
    time::Duration,
};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency tracked exactly, in microseconds (one hour); slower requests are clamped.
const MAX_MICROS: u64 = 3_600_000_000;

/// Latency figures of one endpoint, in milliseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EndpointFigures {
    pub method: String,
    pub route: String,
    pub count: u64,
    pub errors: u64,
    pub avg_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
}

struct Endpoint {
    latency: Histogram<u64>,
    errors: u64,
}

/// Histograms keyed by (method, route template); the keys are static (see `http::interned`), so a
/// request records without allocating.
#[derive(Default)]
pub struct RouteStats {
    endpoints: Mutex<BTreeMap<(&'static str, &'static str), Endpoint>>,
}

impl RouteStats {
    /// Records one finished request; `error` for 5xx answers.
    pub fn record(&self, method: &'static str, route: &'static str, elapsed: Duration, error: bool) {
        let micros = u64::try_from(elapsed.as_micros())
            .unwrap_or(MAX_MICROS)
            .clamp(1, MAX_MICROS);
        let Ok(mut endpoints) = self.endpoints.lock() else {
            return;
        };
        let endpoint = match endpoints.entry((method, route)) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(new) => {
                let Ok(latency) = Histogram::new_with_bounds(1, MAX_MICROS, 3) else {
                    return;
                };
                new.insert(Endpoint { latency, errors: 0 })
            }
        };
        endpoint.latency.saturating_record(micros);
        endpoint.errors += u64::from(error);
    }

    /// Figures of every endpoint seen so far, busiest first.
    pub fn snapshot(&self) -> Vec<EndpointFigures> {
        let Ok(endpoints) = self.endpoints.lock() else {
            return Vec::new();
        };
        let ms = |micros: u64| micros as f64 / 1000.0;
        let mut figures: Vec<EndpointFigures> = endpoints
            .iter()
            .map(|((method, route), e)| EndpointFigures {
                method: (*method).to_owned(),
                route: (*route).to_owned(),
                count: e.latency.len(),
                errors: e.errors,
                avg_ms: e.latency.mean() / 1000.0,
                p50_ms: ms(e.latency.value_at_quantile(0.50)),
                p95_ms: ms(e.latency.value_at_quantile(0.95)),
                p99_ms: ms(e.latency.value_at_quantile(0.99)),
                min_ms: ms(e.latency.min()),
                max_ms: ms(e.latency.max()),
            })
            .collect();
        figures.sort_by_key(|f| std::cmp::Reverse(f.count));
        figures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_cover_all_requests() {
        let stats = RouteStats::default();
        for ms in 1..=1000u64 {
            stats.record("GET", "/x", Duration::from_millis(ms), ms > 990);
        }
        let figures = stats.snapshot();
        assert_eq!(figures.len(), 1);
        let f = &figures[0];
        assert_eq!(f.count, 1000);
        assert_eq!(f.errors, 10);
        assert!((f.p50_ms - 500.0).abs() < 2.0, "{f:?}");
        assert!((f.p99_ms - 990.0).abs() < 2.0, "{f:?}");
        assert!((f.min_ms - 1.0).abs() < 0.01, "{f:?}");
        assert!((f.max_ms - 1000.0).abs() < 1.0, "{f:?}");
        assert!((f.avg_ms - 500.5).abs() < 1.0, "{f:?}");
    }
}
