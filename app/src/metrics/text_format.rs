//! The classic Prometheus text format (0.0.4) from prometheus-client's OpenMetrics output, for
//! scrapers and tools that do not ask for OpenMetrics (curl, `promtool check metrics`).
//! Differences handled: counter families are named with `_total` in HELP/TYPE, `# UNIT` and
//! `# EOF` lines do not exist, and `unknown` is `untyped`.

/// Content type of the classic text format.
pub const CLASSIC_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of OpenMetrics.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Whether an `Accept` header asks for OpenMetrics.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|accept| accept.contains("application/openmetrics-text"))
}

/// Converts OpenMetrics text to the classic format.
pub fn to_classic(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut pending_help: Option<&str> = None;
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if line.starts_with("# HELP ") {
            if let Some(help) = pending_help.take() {
                push_line(&mut out, help);
            }
            pending_help = Some(line);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (name, kind) = match kind {
                "counter" if !name.ends_with("_total") => (format!("{name}_total"), kind),
                "unknown" => (name.to_owned(), "untyped"),
                _ => (name.to_owned(), kind),
            };
            if let Some(help) = pending_help.take() {
                let text = help
                    .strip_prefix("# HELP ")
                    .and_then(|h| h.split_once(' '))
                    .map_or("", |(_, text)| text);
                push_line(&mut out, &format!("# HELP {name} {text}"));
            }
            push_line(&mut out, &format!("# TYPE {name} {kind}"));
            continue;
        }
        if let Some(help) = pending_help.take() {
            push_line(&mut out, help);
        }
        push_line(&mut out, line);
    }
    out
}

fn push_line(out: &mut String, line: &str) {
    out.push_str(line);
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_get_total_and_openmetrics_lines_go() {
        let om = "# HELP app_requests Requests.\n# TYPE app_requests counter\napp_requests_total{a=\"b\"} 1\n\
                  # HELP app_size Size.\n# TYPE app_size gauge\n# UNIT app_size bytes\napp_size_bytes 3\n# EOF\n";
        let classic = to_classic(om);
        assert_eq!(
            classic,
            "# HELP app_requests_total Requests.\n# TYPE app_requests_total counter\napp_requests_total{a=\"b\"} 1\n\
             # HELP app_size Size.\n# TYPE app_size gauge\napp_size_bytes 3\n"
        );
    }

    #[test]
    fn accept_header_negotiation() {
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
        )));
        assert!(!wants_openmetrics(Some("text/plain")));
        assert!(!wants_openmetrics(None));
    }
}
