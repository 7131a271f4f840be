//! Kubernetes quantities (`100m`, `512Mi`, `10Gi`, `1e3`) in the spec: the grammar the API server
//! parses, as a schema pattern (so admission refuses `cpu: lots`) and as a parser (so validation
//! refuses it on servers and objects the schema did not check, and storage sizes can be compared).
use schemars::{Schema, SchemaGenerator, json_schema};

/// The API server's quantity grammar as a regular expression (the one controller-gen emits).
pub const PATTERN: &str = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";

/// The value of a quantity in base units (cores, bytes), or `None` when `text` is not one.
pub fn parse(text: &str) -> Option<f64> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1.0, &text[1..]),
        b'-' => (-1.0, &text[1..]),
        _ => (1.0, text),
    };
    let number_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_end);
    let digits = number.replacen('.', "", 1);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mantissa: f64 = number
        .parse()
        .ok()
        .or_else(|| format!("{number}0").parse().ok())?;
    let scale = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exponent => {
            let power = exponent.strip_prefix(['e', 'E'])?;
            let unsigned = power.strip_prefix(['+', '-']).unwrap_or(power);
            if unsigned.is_empty() || !unsigned.chars().all(|c| c.is_ascii_digit() || c == '.') {
                return None;
            }
            10f64.powf(power.parse().ok()?)
        }
    };
    Some(sign * mantissa * scale)
}

/// A positive quantity, or why `text` is not one (`field` names it).
pub fn positive(field: &str, text: &str) -> Result<f64, String> {
    match parse(text) {
        Some(value) if value > 0.0 => Ok(value),
        Some(_) => Err(format!("{field}: {text:?} must be larger than zero")),
        None => Err(format!(
            "{field}: {text:?} is not a Kubernetes quantity (such as 250m, 512Mi or 10Gi)"
        )),
    }
}

/// The schema of one quantity: an integer, or a string of the grammar (the pattern applies to
/// strings only).
fn quantity_schema() -> serde_json::Value {
    serde_json::json!({
        "pattern": PATTERN,
        "x-kubernetes-int-or-string": true,
    })
}

/// The schema of a quantity field (`storageSize`).
pub fn schema(_: &mut SchemaGenerator) -> Schema {
    let mut schema = json_schema!({"type": "string"});
    schema.insert("pattern".into(), PATTERN.into());
    schema
}

/// The schema of a container's `resources`: `requests` and `limits`, each a map of quantities that
/// admission checks against the grammar (the generated one accepts any string).
pub fn resources_schema(_: &mut SchemaGenerator) -> Schema {
    let map = |what: &str| {
        serde_json::json!({
            "type": "object",
            "description": what,
            "additionalProperties": quantity_schema(),
        })
    };
    json_schema!({
        "type": "object",
        "nullable": true,
        "properties": {
            "requests": map("Resources the container is guaranteed (cpu, memory), e.g. cpu: 250m, memory: 256Mi."),
            "limits": map("The most the container may use, e.g. memory: 1Gi."),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grammar_of_the_api_server() {
        let gi = 1024f64.powi(3);
        for (text, value) in [
            ("100m", 0.1),
            ("2", 2.0),
            ("1.5", 1.5),
            ("512Mi", 512.0 * 1024.0 * 1024.0),
            ("10Gi", 10.0 * gi),
            ("1e3", 1000.0),
            ("1E-3", 0.001),
            ("+.5k", 500.0),
            ("3.", 3.0),
            ("-1", -1.0),
        ] {
            assert_eq!(parse(text), Some(value), "{text}");
        }
        for text in [
            "", "lots", "10 Gi", "10gb", "Gi", "1.2.3", "e3", "1e", "1ki", "--1", "1e+",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }

    #[test]
    fn sizes_must_be_positive_quantities() {
        assert_eq!(positive("f", "10Gi"), Ok(10.0 * 1024f64.powi(3)));
        assert_eq!(
            positive("f", "0").unwrap_err(),
            "f: \"0\" must be larger than zero"
        );
        assert!(
            positive("spec.app.resources.requests.cpu", "lots")
                .unwrap_err()
                .contains("is not a Kubernetes quantity")
        );
    }
}
