//! `?fields=a,b`: sparse fieldsets picked from a per-resource whitelist.
use serde::Serialize;
use serde_json::{Map, Value};

use super::error::ApiError;

/// The fields a client asked for; all of them when it did not ask.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet(Option<Vec<&'static str>>);

impl FieldSet {
    /// Parses a comma-separated list of names from `allowed` (no spaces, no empty names: exactly
    /// what [`FieldSet::pattern`] says); anything else is a 400 naming `fields`.
    pub fn parse(raw: Option<&str>, allowed: &'static [&'static str]) -> Result<Self, ApiError> {
        let Some(raw) = raw else {
            return Ok(Self(None));
        };
        let mut picked = Vec::new();
        for name in raw.split(',') {
            let Some(known) = allowed.iter().find(|a| **a == name) else {
                return Err(ApiError::bad_request(
                    Some("fields".to_owned()),
                    format!("unknown field {name:?}; allowed: {}", allowed.join(",")),
                ));
            };
            if !picked.contains(known) {
                picked.push(*known);
            }
        }
        Ok(Self(Some(picked)))
    }

    /// Whether every field is picked (no `?fields=`).
    pub fn is_all(&self) -> bool {
        self.0.is_none()
    }

    /// The values [`FieldSet::parse`] accepts for `allowed`, as a regular expression.
    pub fn pattern(allowed: &[&str]) -> String {
        let names = allowed.join("|");
        format!("^({names})(,({names}))*$")
    }

    /// `row` as the client asked for it: the row itself when every field is picked (serialized
    /// straight into the response, with no JSON tree built), else the chosen fields of it.
    pub fn pick<T: Serialize>(&self, row: T) -> Result<Picked<T>, ApiError> {
        if self.is_all() {
            Ok(Picked::Whole(row))
        } else {
            self.project(&row).map(Picked::Fields)
        }
    }

    /// The JSON of `row`, reduced to the chosen fields.
    pub fn project<T: Serialize>(&self, row: &T) -> Result<Value, ApiError> {
        let value = serde_json::to_value(row).map_err(ApiError::Encode)?;
        let Some(names) = &self.0 else {
            return Ok(value);
        };
        let Value::Object(mut all) = value else {
            return Ok(value);
        };
        let mut out = Map::with_capacity(names.len());
        for name in names {
            if let Some(v) = all.remove(*name) {
                out.insert((*name).to_owned(), v);
            }
        }
        Ok(Value::Object(out))
    }
}

/// A row of a response, whole or reduced to `?fields=` ([`FieldSet::pick`]); either way it
/// serializes as the JSON object alone.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Picked<T> {
    Whole(T),
    Fields(Value),
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ALLOWED: &[&str] = &["id", "name", "status"];

    #[test]
    fn picks_only_whitelisted_fields() {
        let set = FieldSet::parse(Some("name,id"), ALLOWED).unwrap();
        let row = json!({"id": 1, "name": "a", "status": "x"});
        assert_eq!(set.project(&row).unwrap(), json!({"id": 1, "name": "a"}));
        assert_eq!(FieldSet::default().project(&row).unwrap(), row);
    }

    #[test]
    fn a_pick_serializes_like_the_projection() {
        #[derive(Serialize)]
        struct Row {
            id: i64,
            name: &'static str,
            status: &'static str,
        }
        let row = || Row {
            id: 1,
            name: "a",
            status: "x",
        };
        for raw in [None, Some("status,id"), Some("name")] {
            let set = FieldSet::parse(raw, ALLOWED).unwrap();
            let picked = serde_json::to_string(&set.pick(row()).unwrap()).unwrap();
            let projected = serde_json::to_string(&set.project(&row()).unwrap()).unwrap();
            assert_eq!(picked, projected, "fields {raw:?}");
        }
    }

    #[test]
    fn unknown_or_empty_field_is_rejected() {
        assert!(FieldSet::parse(Some("id,password"), ALLOWED).is_err());
        assert!(FieldSet::parse(Some(","), ALLOWED).is_err());
    }
}
