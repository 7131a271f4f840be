//! The SLO rules of a stack, derived from `spec.slo`: multi-window, multi-burn-rate alerts on the share
//! of 5xx responses (the error budget is `maxErrorRatePercent`), p95 latency above `p95LatencyMs`, a
//! saturated connection pool, dead-lettered jobs and Redis down. Every expression selects the stack's
//! series by `namespace` and `stack` (the label the PodMonitor sets), so stacks sharing a namespace or
//! a Prometheus never mix.
//!
//! The burn-rate pairs are the ones of the Google SRE workbook ("Alerting on SLOs"): a page when 2 % of
//! a 30-day budget burns within an hour (14.4x, confirmed over 5 minutes) or 5 % within six hours (6x,
//! over 30 minutes); a ticket when 10 % burns within three days (1x over 6 hours) or within a day (3x,
//! over 2 hours). The long window says the burn is real, the short one that it is still going on.
use perfstack_contract::metrics::{
    DB_POOL_CONNECTIONS, DB_POOL_MAX_CONNECTIONS, DB_POOL_WAITING, HTTP_REQUEST_DURATION, HTTP_REQUESTS,
    SERVER_ERROR_CLASS, STATE, STATE_IN_USE, STATUS_CLASS,
};
use serde_json::{Value, json};

use super::STACK_SERIES_LABEL;
use crate::children::{CacheSource, ValidatedStack};

/// Gauge of the app: 1 while Redis answers (docs/metrics.md).
const REDIS_UP: &str = "perfstack_cache_redis_up";
/// Counter of the app: jobs dead-lettered, by queue (docs/metrics.md).
const DEAD_LETTERS: &str = "perfstack_job_dead_letters_total";
/// Windows the error ratio is recorded over (every window a burn-rate alert uses).
const WINDOWS: [&str; 7] = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"];
/// Labels the recorded series and the alerts keep.
const BY: &str = "namespace, stack";
/// Share of the pool in use from which it counts as saturated (with requests waiting).
const SATURATED_SHARE: f64 = 0.9;

/// One burn-rate alert: the budget burns `factor` times faster than sustainable over both windows.
struct BurnRate {
    long: &'static str,
    short: &'static str,
    factor: f64,
}

/// `(severity, [window pairs])`: page on fast burns, ticket on slow ones.
const BURN_RATES: [(&str, [BurnRate; 2]); 2] = [
    (
        "page",
        [
            BurnRate {
                long: "1h",
                short: "5m",
                factor: 14.4,
            },
            BurnRate {
                long: "6h",
                short: "30m",
                factor: 6.0,
            },
        ],
    ),
    (
        "ticket",
        [
            BurnRate {
                long: "1d",
                short: "2h",
                factor: 3.0,
            },
            BurnRate {
                long: "3d",
                short: "6h",
                factor: 1.0,
            },
        ],
    ),
];

/// The series selector of the stack's API pods, with `extra` matchers.
fn selector(stack: &ValidatedStack, extra: &str) -> String {
    let mut matchers = format!(
        "namespace=\"{}\",{STACK_SERIES_LABEL}=\"{}\"",
        stack.namespace, stack.name
    );
    if !extra.is_empty() {
        matchers.push(',');
        matchers.push_str(extra);
    }
    format!("{{{matchers}}}")
}

/// Name of the recorded error ratio over `window`.
fn error_ratio(window: &str) -> String {
    format!("perfstack:http_error_ratio:rate{window}")
}

/// Recording rules: the share of 5xx responses over each window.
fn recordings(stack: &ValidatedStack) -> Vec<Value> {
    let requests = HTTP_REQUESTS.sample();
    let all = selector(stack, "");
    let errors = selector(stack, &format!("{STATUS_CLASS}=\"{SERVER_ERROR_CLASS}\""));
    WINDOWS
        .iter()
        .map(|window| {
            json!({
                "record": error_ratio(window),
                "expr": format!(
                    "sum by ({BY}) (rate({requests}{errors}[{window}]))\n/\nsum by ({BY}) (rate({requests}{all}[{window}]))"
                ),
            })
        })
        .collect()
}

/// An alert of the stack, with its severity and words for people.
fn alert(
    name: &str,
    expr: String,
    for_: &str,
    severity: &str,
    summary: String,
    description: String,
) -> Value {
    let mut rule = json!({
        "alert": name,
        "expr": expr,
        "labels": { "severity": severity },
        "annotations": { "summary": summary, "description": description },
    });
    if !for_.is_empty() {
        rule["for"] = json!(for_);
    }
    rule
}

/// The burn-rate alerts on the error budget.
fn burn_rate_alerts(stack: &ValidatedStack) -> Vec<Value> {
    let budget = stack.spec.slo.max_error_rate_percent;
    let keep = selector(stack, "");
    BURN_RATES
        .iter()
        .map(|(severity, pairs)| {
            let clauses: Vec<String> = pairs
                .iter()
                .map(|p| {
                    let threshold = format!("({} * {budget} / 100)", p.factor);
                    format!(
                        "(\n  {long}{keep} > {threshold}\nand\n  {short}{keep} > {threshold}\n)",
                        long = error_ratio(p.long),
                        short = error_ratio(p.short),
                    )
                })
                .collect();
            let for_ = if *severity == "page" { "2m" } else { "15m" };
            alert(
                "PerfstackErrorBudgetBurn",
                clauses.join("\nor\n"),
                for_,
                severity,
                format!("Stack {{{{ $labels.namespace }}}}/{{{{ $labels.stack }}}} burns its error budget ({budget} % 5xx) too fast"),
                format!(
                    "The share of 5xx responses is {{{{ $value | humanizePercentage }}}}; at this rate the 30-day error budget of {budget} % runs out early ({severity})."
                ),
            )
        })
        .collect()
}

/// p95 request latency above `spec.slo.p95LatencyMs` for 10 minutes.
fn latency_alert(stack: &ValidatedStack) -> Value {
    let target_ms = stack.spec.slo.p95_latency_ms;
    let buckets = format!("{}_bucket", HTTP_REQUEST_DURATION.exposed());
    alert(
        "PerfstackLatencyP95AboveTarget",
        format!(
            "histogram_quantile(0.95, sum by (le, {BY}) (rate({buckets}{}[5m])))\n> ({target_ms} / 1000)",
            selector(stack, "")
        ),
        "10m",
        "warning",
        format!(
            "Stack {{{{ $labels.namespace }}}}/{{{{ $labels.stack }}}} answers slower than its p95 target of {target_ms} ms"
        ),
        "p95 request latency over 5 minutes is {{ $value | humanizeDuration }}.".into(),
    )
}

/// Connections in use at 90 % or more of the pools' maxima while requests wait for one.
fn pool_alert(stack: &ValidatedStack) -> Value {
    let sel = selector(stack, "");
    let in_use = selector(stack, &format!("{STATE}=\"{STATE_IN_USE}\""));
    alert(
        "PerfstackPoolSaturated",
        format!(
            "(\n  sum by ({BY}) ({connections}{in_use})\n/\n  sum by ({BY}) ({max}{sel})\n) >= {SATURATED_SHARE}\nand\n  sum by ({BY}) ({waiting}{sel}) > 0",
            connections = DB_POOL_CONNECTIONS.sample(),
            max = DB_POOL_MAX_CONNECTIONS.sample(),
            waiting = DB_POOL_WAITING.sample(),
        ),
        "5m",
        "warning",
        "Stack {{ $labels.namespace }}/{{ $labels.stack }} has no free database connections".into(),
        "The API pods use {{ $value | humanizePercentage }} of their pools and requests wait for a connection; see the ConnectionBudget condition and status.tuning.".into(),
    )
}

/// A job that ran out of attempts within the last 15 minutes.
fn dead_letter_alert(stack: &ValidatedStack) -> Value {
    alert(
        "PerfstackJobsDeadLettered",
        format!(
            "sum by ({BY}, queue) (increase({DEAD_LETTERS}{}[15m])) > 0",
            selector(stack, "")
        ),
        "",
        "ticket",
        "Stack {{ $labels.namespace }}/{{ $labels.stack }} dead-lettered {{ $labels.queue }} jobs".into(),
        "{{ $value }} jobs of the {{ $labels.queue }} queue ran out of attempts in 15 minutes; list them with GET /api/v1/jobs?state=dead and retry with POST /api/v1/jobs/{id}/retry.".into(),
    )
}

/// No API pod of the stack reaches Redis.
fn redis_alert(stack: &ValidatedStack) -> Value {
    alert(
        "PerfstackRedisDown",
        format!("max by ({BY}) ({REDIS_UP}{}) == 0", selector(stack, "")),
        "2m",
        "page",
        "Stack {{ $labels.namespace }}/{{ $labels.stack }} cannot reach Redis".into(),
        "No API pod reaches Redis: reads are served from PostgreSQL without cache, jobs are neither queued nor run, and /readyz fails.".into(),
    )
}

/// The rule groups of the stack's PrometheusRule (and of `perfstack-operator monitoring-rules`).
/// Without a cache the Redis and job alerts are left out: there is no Redis, and jobs need it.
pub fn groups(stack: &ValidatedStack) -> Value {
    let mut alerts = burn_rate_alerts(stack);
    alerts.push(latency_alert(stack));
    alerts.push(pool_alert(stack));
    if stack.cache != CacheSource::Disabled {
        alerts.push(dead_letter_alert(stack));
        alerts.push(redis_alert(stack));
    }
    let group = |kind: &str, rules: Vec<Value>| json!({ "name": format!("perfstack.{}.{}.{kind}", stack.namespace, stack.name), "rules": rules });
    json!([group("recordings", recordings(stack)), group("alerts", alerts)])
}
