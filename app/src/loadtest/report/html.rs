//! The HTML report: summary, SLO checks, latency-over-time (p50/p95/p99 per second), throughput
//! (completed and failed per second against the target rate) and per-operation figures.
//! Self-contained: inline CSS and SVG only.
use std::fmt::Write;

use super::{
    Report,
    svg::{Series, line_chart},
};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#1d2430;max-width:1000px}\
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #d0d5dd;padding:.3rem .6rem;text-align:right}\
th{background:#f2f4f7}td:first-child,th:first-child{text-align:left}.pass{color:#067647}.fail{color:#b42318;font-weight:600}\
.chart{width:100%;height:auto;margin:1rem 0}.chart .grid{stroke:#e4e7ec}.chart .tick,.chart .legend{font-size:12px;fill:#475467}\
.chart .title{font-size:15px;font-weight:600;fill:#1d2430}";

/// Renders the whole page.
pub fn render(r: &Report) -> String {
    let verdict = if r.passed {
        r#"<span class="pass">PASSED</span>"#
    } else {
        r#"<span class="fail">FAILED</span>"#
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>perfstack load test: {scenario}</title><style>{STYLE}</style></head><body>\
         <h1>Load test: {scenario} {verdict}</h1>\
         <p>Target <code>{base}</code>, started {started}, seed {seed}, scale {scale}, perfstack-app {version}.</p>",
        scenario = r.plan.name(),
        base = escape(&r.provenance.base_url),
        started = escape(&r.provenance.started_at),
        seed = r.provenance.seed,
        scale = r.plan.scale,
        version = r.provenance.version,
    );
    if r.interrupted {
        let _ = write!(
            out,
            "<p class=\"fail\">Interrupted: {} of {} planned requests were sent.</p>",
            r.sent_requests, r.planned_requests
        );
    }
    summary_table(&mut out, r);
    checks_table(&mut out, r);
    out.push_str(&latency_chart(r));
    out.push_str(&throughput_chart(r));
    operations_table(&mut out, r);
    out.push_str("</body></html>\n");
    out
}

fn summary_table(out: &mut String, r: &Report) {
    let l = &r.results.latency_ms;
    let _ = write!(
        out,
        "<table id=\"summary\"><tr><th>requests</th><th>errors</th><th>throughput</th><th>p50</th><th>p95</th><th>p99</th><th>max</th><th>duration</th></tr>\
         <tr><td>{}</td><td>{} ({:.2}%)</td><td>{:.1} rps</td><td>{:.1} ms</td><td>{:.1} ms</td><td>{:.1} ms</td><td>{:.1} ms</td><td>{:.1} s</td></tr></table>",
        r.results.requests,
        r.results.errors,
        r.error_rate_pct,
        r.throughput_rps,
        l.p50,
        l.p95,
        l.p99,
        l.max,
        r.elapsed_seconds
    );
    if !r.results.errors_by_kind.is_empty() {
        out.push_str("<p>Errors by kind: ");
        let kinds: Vec<String> = r
            .results
            .errors_by_kind
            .iter()
            .map(|(k, n)| format!("{} {n}", escape(k)))
            .collect();
        out.push_str(&kinds.join(", "));
        out.push_str("</p>");
    }
}

fn checks_table(out: &mut String, r: &Report) {
    out.push_str(
        "<h2>SLO checks</h2><table id=\"checks\"><tr><th>check</th><th>actual</th><th>result</th></tr>",
    );
    for c in &r.checks {
        let result = if c.passed {
            r#"<td class="pass">pass</td>"#
        } else {
            r#"<td class="fail">FAIL</td>"#
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{:.2}</td>{result}</tr>",
            escape(&c.rule),
            c.actual
        );
    }
    out.push_str("</table>");
}

fn latency_chart(r: &Report) -> String {
    let at = |f: fn(&super::super::stats::SecondSummary) -> f64| -> Vec<(f64, f64)> {
        r.results
            .timeline
            .iter()
            .filter(|s| s.requests > 0)
            .map(|s| (mid(s.second), f(s)))
            .collect()
    };
    line_chart(
        "latency-chart",
        "Latency per second (from intended send time)",
        "ms",
        &[
            Series {
                name: "p50",
                color: "#2e90fa",
                dashed: false,
                points: at(|s| s.p50_ms),
            },
            Series {
                name: "p95",
                color: "#f79009",
                dashed: false,
                points: at(|s| s.p95_ms),
            },
            Series {
                name: "p99",
                color: "#d92d20",
                dashed: false,
                points: at(|s| s.p99_ms),
            },
        ],
    )
}

fn throughput_chart(r: &Report) -> String {
    let timeline = &r.results.timeline;
    let completed = timeline
        .iter()
        .map(|s| (s.second as f64, s.requests as f64))
        .collect();
    let errors = timeline
        .iter()
        .map(|s| (s.second as f64, s.errors as f64))
        .collect();
    let target = timeline
        .iter()
        .map(|s| {
            let rate = r
                .plan
                .stage_at(std::time::Duration::from_secs(s.second))
                .map_or(0.0, |(_, stage)| stage.rate);
            (s.second as f64, rate)
        })
        .collect();
    line_chart(
        "throughput-chart",
        "Throughput per second",
        "rps",
        &[
            Series {
                name: "completed",
                color: "#12b76a",
                dashed: false,
                points: completed,
            },
            Series {
                name: "errors",
                color: "#d92d20",
                dashed: false,
                points: errors,
            },
            Series {
                name: "target",
                color: "#667085",
                dashed: true,
                points: target,
            },
        ],
    )
}

fn operations_table(out: &mut String, r: &Report) {
    out.push_str("<h2>Operations</h2><table id=\"operations\"><tr><th>operation</th><th>requests</th><th>errors</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>max ms</th><th>service p50 ms</th><th>service p99 ms</th></tr>");
    for op in &r.results.operations {
        let l = &op.latency_ms;
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td></tr>",
            op.operation.name(),
            op.requests,
            op.errors,
            l.p50,
            l.p95,
            l.p99,
            l.max,
            op.service_ms.p50,
            op.service_ms.p99
        );
    }
    out.push_str("</table><p>Latency counts from the intended send time; service time from the moment the request actually left. A large gap between them is queueing: the server (or the virtual users) could not keep up with the arrival rate.</p>");
}

/// Per-second figures cover `[s, s + 1)`: they are drawn at the middle of that second.
fn mid(second: u64) -> f64 {
    second as f64 + 0.5
}

/// Escapes text for HTML element content and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
