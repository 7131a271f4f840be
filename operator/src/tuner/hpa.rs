//! The HPA floor (`minReplicas`) from latency, with the HPA's own semantics.
//!
//! `desired = ceil(current * observed / target)` with `observed` the interval's p95 and `target`
//! the SLO; nothing moves inside the tolerance band (10 %). Raising is immediate but bounded
//! (at most `max(2 * current, current + 4)`, the HPA's default scale-up policy). Lowering needs p95
//! comfortably below the SLO (below the band, errors within the SLO) and goes no lower than any
//! of: the latency formula; pool utilisation of the remaining pods at most 50 % (utilisation is
//! linear in load per pod, latency is not); 80 % of the per-pod load at which the SLO last broke.
//! Load is projected one window ahead along its trend first. The result is stabilized like the
//! HPA's scale-down: the highest recommendation of the window wins, so a raise is never undone
//! inside the window, and nothing is lowered before a whole window was observed.
use std::time::Duration;

use super::history::History;
use super::spec::Inputs;

/// Headroom kept below the per-pod load at which the SLO last broke.
const OVERLOAD_MARGIN: f64 = 0.8;
/// Pool utilisation the remaining pods may reach after the floor drops (the HPA-style target).
const POOL_TARGET: f64 = 0.5;

/// What latency asks of the floor, before stabilization.
#[derive(Debug, Clone, PartialEq)]
pub struct FloorRecommendation {
    /// Replicas the latency asks for.
    pub replicas: u32,
    /// The SLO broke at this many requests per second per pod (to remember).
    pub overload_rps_per_pod: Option<f64>,
    /// Why, for the decision's reason.
    pub reason: String,
}

/// The floor latency asks for. `current_floor` is the HPA `minReplicas` in force and `bounds`
/// the `(min, max)` the floor may take.
pub fn recommend_floor(inputs: &Inputs<'_>, current_floor: u32, bounds: (u32, u32)) -> FloorRecommendation {
    let Inputs {
        settings,
        history,
        obs,
        spec,
        now,
    } = *inputs;
    let hold = |reason: String| FloorRecommendation {
        replicas: current_floor,
        overload_rps_per_pod: None,
        reason,
    };
    if obs.pods.answered == 0 {
        return hold(format!("no pod answered of {}: floor held", obs.pods.asked));
    }
    let current = obs.pods.asked.max(1);
    let target = spec.slo.p95.as_secs_f64();
    let ratio = obs.p95.map_or(0.0, |p95| p95 / target);
    let p95_text = obs
        .p95
        .map_or_else(|| "no requests".to_owned(), |p| format!("p95 {}", ms(p)));
    let slo_text = format!("SLO {}", ms(target));
    if ratio > 1.0 + spec.tolerance {
        let desired = ceil_u32(f64::from(current) * ratio);
        let bounded = desired.min((2 * current).max(current + 4));
        // Never below the floor in force: pods still starting must not read as a reason to lower it.
        let replicas = bounded.max(current_floor).clamp(bounds.0, bounds.1);
        return FloorRecommendation {
            replicas,
            overload_rps_per_pod: Some(obs.requests_per_second / f64::from(current)),
            reason: format!(
                "{p95_text} > {slo_text} (x{ratio:.2}) on {current} pods: wants {desired} replicas{}",
                if bounded < desired {
                    format!(", bounded to {bounded}")
                } else {
                    String::new()
                }
            ),
        };
    }
    if obs.error_rate > spec.slo.max_error_rate {
        return hold(format!(
            "{p95_text}, but error rate {:.2} % > SLO {:.2} %: floor not lowered",
            obs.error_rate * 100.0,
            spec.slo.max_error_rate * 100.0
        ));
    }
    if ratio >= 1.0 - spec.tolerance {
        return hold(format!(
            "{p95_text} within {:.0} % of {slo_text}",
            spec.tolerance * 100.0
        ));
    }
    // Comfortably below: each limit below is a replica count the load still needs; the floor
    // may drop to the largest of them. Load is projected one window ahead along its trend.
    let rps = obs.requests_per_second;
    let window_start = history
        .within(now, spec.scale_down_stabilization)
        .next()
        .map_or(rps, |i| i.requests_per_second);
    let projected = rps + (rps - window_start).max(0.0);
    let growth = if rps > 0.0 { projected / rps } else { 1.0 };
    let in_use_per_pod = obs.pool.in_use / f64::from(obs.pods.answered);
    let limits = [
        (ceil_u32(f64::from(current) * ratio), "latency".to_owned()),
        (
            ceil_u32(
                f64::from(current) * in_use_per_pod * growth
                    / (POOL_TARGET * f64::from(settings.pool_max.max(1))),
            ),
            format!(
                "{:.0} % pool use at max {}",
                POOL_TARGET * 100.0,
                settings.pool_max
            ),
        ),
        (
            history
                .overload_rps_per_pod()
                .map_or(0, |o| ceil_u32(projected / (OVERLOAD_MARGIN * o))),
            format!(
                "{:.0} % of the load per pod that last broke the SLO",
                OVERLOAD_MARGIN * 100.0
            ),
        ),
    ];
    let (wanted, binding) = limits
        .iter()
        .max_by_key(|(n, _)| *n)
        .map_or((0, "latency"), |(n, why)| (*n, why.as_str()));
    let replicas = wanted.min(current_floor).clamp(bounds.0, bounds.1);
    FloorRecommendation {
        replicas,
        overload_rps_per_pod: None,
        reason: format!(
            "{p95_text} comfortably below {slo_text} (x{ratio:.2}) on {current} pods at {rps:.0} rps \
             (trend {projected:.0}): wants {wanted} replicas ({binding})"
        ),
    }
}

/// The HPA floor to set: raised at once, lowered only to the highest recommendation of the
/// stabilization window (this interval's included), and only once a whole window was observed.
pub fn stabilize(
    current_floor: u32,
    recommendation: u32,
    history: &History,
    now: Duration,
    window: Duration,
) -> u32 {
    if recommendation >= current_floor {
        return recommendation;
    }
    if !history.spans(now, window) {
        return current_floor;
    }
    let highest = history
        .within(now, window)
        .map(|i| i.floor_recommendation)
        .fold(recommendation, u32::max);
    highest.min(current_floor)
}

/// `ceil` into `u32`, saturating; NaN and negatives give 0.
pub fn ceil_u32(x: f64) -> u32 {
    if x.is_nan() || x <= 0.0 {
        0
    } else if x >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        x.ceil() as u32
    }
}

/// Seconds as milliseconds text.
pub fn ms(seconds: f64) -> String {
    format!("{:.0} ms", seconds * 1000.0)
}
