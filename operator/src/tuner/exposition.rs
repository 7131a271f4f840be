//! A small, strict parser for the Prometheus text exposition format (and the OpenMetrics text
//! that prometheus-client writes): samples only, which is all the tuner needs.
//!
//! Comments (`# HELP`, `# TYPE`, `# EOF`) are skipped, label values are unescaped, exemplars and
//! timestamps after the value are ignored. A malformed line is an error naming the line: a
//! half-read scrape must not be mistaken for a quiet pod.
use super::error::TunerError;

/// One sample line: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name including any `_bucket`/`_count`/`_sum`/`_total` suffix.
    pub name: String,
    /// Labels in the order written.
    pub labels: Labels,
    /// The value (`+Inf`, `-Inf` and `NaN` allowed).
    pub value: f64,
}

impl Sample {
    /// The value of label `key`, if present.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The most samples one exposition may hold. The app exports a few thousand (latency buckets per
/// route and method); a pod sending more is refused rather than parsed into the operator's memory.
pub const MAX_SAMPLES: usize = 50_000;

/// Parse a whole exposition into samples (at most [`MAX_SAMPLES`]).
pub fn parse(text: &str) -> Result<Vec<Sample>, TunerError> {
    let mut samples = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if samples.len() == MAX_SAMPLES {
            return Err(TunerError::TooManySamples { limit: MAX_SAMPLES });
        }
        let sample = parse_line(line).map_err(|message| TunerError::Exposition {
            line: index + 1,
            message,
        })?;
        samples.push(sample);
    }
    Ok(samples)
}

fn parse_line(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or_else(|| "sample without a value".to_owned())?;
    let name = &line[..name_end];
    if !valid_name(name) {
        return Err(format!("invalid metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        let (parsed, remaining) = parse_labels(after_brace)?;
        labels = parsed;
        rest = remaining;
    }
    // The value is the first field; a timestamp or ` # exemplar` may follow.
    let value_text = rest
        .split_whitespace()
        .next()
        .ok_or_else(|| format!("{name}: missing value"))?;
    let value = parse_value(value_text).ok_or_else(|| format!("{name}: bad value {value_text:?}"))?;
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Label pairs in the order written.
type Labels = Vec<(String, String)>;

/// Parses `k="v",k2="v2"}` and returns the labels and the text after `}`.
fn parse_labels(mut s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(after) = s.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = s.find('=').ok_or("label without '='")?;
        let key = s[..eq].trim();
        if !valid_name(key) {
            return Err(format!("invalid label name {key:?}"));
        }
        s = s[eq + 1..].trim_start();
        s = s.strip_prefix('"').ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    Some((_, c)) => return Err(format!("unknown escape \\{c}")),
                    None => return Err("unterminated label value".into()),
                },
                Some((_, c)) => value.push(c),
                None => return Err("unterminated label value".into()),
            }
        };
        labels.push((key.to_owned(), value));
        s = s[end + 1..].trim_start();
        if let Some(after_comma) = s.strip_prefix(',') {
            s = after_comma;
        } else if !s.starts_with('}') {
            return Err("expected ',' or '}' after a label".into());
        }
    }
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_and_openmetrics_lines() {
        let text = "# HELP x help\n# TYPE x counter\n\
            perfstack_http_requests_total{route=\"/api/v1/users/{id}\",method=\"GET\",status_class=\"2xx\"} 12\n\
            perfstack_http_request_duration_seconds_bucket{le=\"+Inf\"} 3 1700000000\n\
            weird{v=\"a\\\"b\\\\c\\nd\", } 1.5e-3 # {trace_id=\"x\"} 1\n\
            up 1\n# EOF\n";
        let samples = parse(text).unwrap();
        assert_eq!(samples.len(), 4);
        assert_eq!(samples[0].label("route"), Some("/api/v1/users/{id}"));
        assert_eq!(samples[0].value, 12.0);
        assert_eq!((samples[1].label("le"), samples[1].value), (Some("+Inf"), 3.0));
        assert_eq!(parse("x -Inf\ny +Inf\n").unwrap()[1].value, f64::INFINITY);
        assert_eq!(samples[2].label("v"), Some("a\"b\\c\nd"));
        assert_eq!(samples[2].value, 0.0015);
        assert!(samples[3].labels.is_empty());
    }

    #[test]
    fn more_samples_than_the_limit_are_refused() {
        let text = "x 1\n".repeat(MAX_SAMPLES);
        assert_eq!(parse(&text).map(|s| s.len()).ok(), Some(MAX_SAMPLES));
        let text = format!("{text}y 2\n");
        assert!(matches!(
            parse(&text),
            Err(TunerError::TooManySamples { limit: MAX_SAMPLES })
        ));
    }

    #[test]
    fn malformed_lines_are_errors_with_line_numbers() {
        for (text, want) in [
            ("ok 1\nbroken{a=\"1\" 2\n", 2),
            ("no_value\n", 1),
            ("x{a=1} 2\n", 1),
            ("x 1\n\nx abc\n", 3),
            ("1x 2\n", 1),
        ] {
            match parse(text) {
                Err(TunerError::Exposition { line, .. }) => assert_eq!(line, want, "{text:?}"),
                other => panic!("{text:?}: expected an error, got {other:?}"),
            }
        }
    }
}
