//! Cumulative histograms as Prometheus exposes them, with the three operations the tuner needs:
//! sum across label sets and pods, delta over an interval, and quantile by interpolation.
use std::cmp::Ordering;

/// A cumulative histogram: `buckets[i].1` requests took at most `buckets[i].0` seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// `(le, cumulative count)`, sorted by `le`, the last usually `+Inf`.
    buckets: Vec<(f64, f64)>,
}

impl Histogram {
    /// Adds `count` to the bucket `le` (creating it), used to sum label sets and pods.
    pub fn add(&mut self, le: f64, count: f64) {
        match self
            .buckets
            .binary_search_by(|(b, _)| b.partial_cmp(&le).unwrap_or(Ordering::Less))
        {
            Ok(i) => self.buckets[i].1 += count,
            Err(i) => self.buckets.insert(i, (le, count)),
        }
    }

    /// Adds every bucket of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for &(le, count) in &other.buckets {
            self.add(le, count);
        }
    }

    /// Observations counted (the largest cumulative count).
    pub fn total(&self) -> f64 {
        self.buckets.last().map_or(0.0, |&(_, c)| c)
    }

    /// The increase since `earlier`; `None` when some bucket went down (the counter was reset,
    /// i.e. the process restarted), so the caller can take `self` as the whole increase.
    pub fn delta_since(&self, earlier: &Histogram) -> Option<Histogram> {
        let mut out = Histogram::default();
        for &(le, count) in &self.buckets {
            let before = earlier
                .buckets
                .iter()
                .find(|(b, _)| *b == le)
                .map_or(0.0, |&(_, c)| c);
            if count < before {
                return None;
            }
            out.add(le, count - before);
        }
        Some(out)
    }

    /// The `q` quantile (0..=1) in seconds, interpolating linearly inside the bucket as
    /// PromQL's `histogram_quantile` does; `None` without observations. A quantile landing in the
    /// `+Inf` bucket is reported as the largest finite bound (a lower bound of the truth).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.total();
        if total <= 0.0 || !q.is_finite() {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total;
        let mut lower_le = 0.0;
        let mut lower_count = 0.0;
        for &(le, count) in &self.buckets {
            if count >= rank {
                if le.is_infinite() {
                    return Some(lower_le);
                }
                let in_bucket = count - lower_count;
                if in_bucket <= 0.0 {
                    return Some(le);
                }
                return Some(lower_le + (le - lower_le) * (rank - lower_count) / in_bucket);
            }
            lower_le = le;
            lower_count = count;
        }
        Some(lower_le)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(pairs: &[(f64, f64)]) -> Histogram {
        let mut h = Histogram::default();
        for &(le, c) in pairs {
            h.add(le, c);
        }
        h
    }

    #[test]
    fn quantile_interpolates_inside_the_bucket() {
        let h = hist(&[(0.1, 50.0), (0.2, 90.0), (0.5, 100.0), (f64::INFINITY, 100.0)]);
        let p95 = h.quantile(0.95).unwrap();
        assert!((p95 - 0.35).abs() < 1e-9, "{p95}");
        let p50 = h.quantile(0.5).unwrap();
        assert!((p50 - 0.1).abs() < 1e-9, "{p50}");
        assert_eq!(Histogram::default().quantile(0.95), None);
    }

    #[test]
    fn quantile_in_inf_bucket_is_largest_finite_bound() {
        let h = hist(&[(0.5, 10.0), (5.0, 20.0), (f64::INFINITY, 100.0)]);
        assert_eq!(h.quantile(0.95), Some(5.0));
    }

    #[test]
    fn summed_deltas_weight_pods_by_traffic_unlike_averaged_percentiles() {
        // Pod a: 900 fast requests; pod b: 100 slow ones. The true p95 is in the slow bucket,
        // which the mean of per-pod p95s (~0.01 and ~1.9) would hide or exaggerate.
        let a = hist(&[(0.01, 900.0), (1.0, 900.0), (2.0, 900.0), (f64::INFINITY, 900.0)]);
        let b = hist(&[(0.01, 0.0), (1.0, 0.0), (2.0, 100.0), (f64::INFINITY, 100.0)]);
        let mut sum = a.clone();
        sum.merge(&b);
        let p95 = sum.quantile(0.95).unwrap();
        assert!((p95 - 1.5).abs() < 1e-9, "{p95}");
    }

    #[test]
    fn delta_detects_reset() {
        let before = hist(&[(0.1, 10.0), (f64::INFINITY, 12.0)]);
        let after = hist(&[(0.1, 15.0), (f64::INFINITY, 20.0)]);
        assert_eq!(
            after.delta_since(&before),
            Some(hist(&[(0.1, 5.0), (f64::INFINITY, 8.0)]))
        );
        let restarted = hist(&[(0.1, 1.0), (f64::INFINITY, 2.0)]);
        assert_eq!(restarted.delta_since(&before), None);
    }
}
