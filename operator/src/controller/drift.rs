//! Drift: whether a live child still is what the operator applied, decided from what observe read,
//! without a write and without comparing values the API server rewrites (defaults, canonical
//! quantities). A child has drifted when
//! - its digest annotation differs from the desired one (the spec, or the operator, changed what it
//!   wants);
//! - another field manager owns a field of the desired object: server-side apply records who set
//!   each field (`metadata.managedFields`), and a hand edit (`kubectl edit`, `patch`, `set image`,
//!   a client-side apply) moves the fields it changed to its own manager;
//! - a field of the desired object is gone (a hand edit removed it, which takes it from every
//!   manager).
//!
//! Fields the desired object does not have are never drift, whoever owns them: the HPA's
//! `spec.replicas`, the Deployment controller's revision annotation, another tool's labels.
use std::fmt;

use kube::api::ObjectMeta;
use serde_json::{Map, Value};

use super::build::APPLIED_DIGEST_ANNOTATION;

/// Why a live child must be applied again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Drift {
    /// The desired object changed (another digest).
    Changed,
    /// `manager` set `field`, one of the desired object's fields.
    TakenOver {
        /// The field manager that owns the field now.
        manager: String,
        /// The field, as a path (`spec.template.spec.containers[name=api].image`).
        field: String,
    },
    /// `field` of the desired object is missing from the live one.
    Missing {
        /// The field, as a path.
        field: String,
    },
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Drift::Changed => write!(f, "the desired object changed"),
            Drift::TakenOver { manager, field } => write!(f, "{field} was set by {manager}"),
            Drift::Missing { field } => write!(f, "{field} was removed"),
        }
    }
}

/// How `live` differs from `desired` (both as JSON, `live` as the API server returned it, with its
/// `metadata.managedFields`), or `None` when it is as the operator applied it. `manager` is the
/// operator's field manager.
pub fn drift(desired: &Value, live: &Value, manager: &str) -> Option<Drift> {
    let digest = |v: &Value| v["metadata"]["annotations"][APPLIED_DIGEST_ANNOTATION].clone();
    if digest(desired) != digest(live) {
        return Some(Drift::Changed);
    }
    let meta: ObjectMeta = serde_json::from_value(live["metadata"].clone()).unwrap_or_default();
    for entry in meta.managed_fields.iter().flatten() {
        let other = entry.manager.as_deref().unwrap_or_default();
        if other == manager {
            continue;
        }
        let Some(fields) = entry.fields_v1.as_ref() else {
            continue;
        };
        let mut taken = None;
        leaves(&fields.0, &mut Vec::new(), &mut |path| {
            if taken.is_none() && resolves(desired, path) {
                taken = Some(render(path));
            }
        });
        if let Some(field) = taken {
            return Some(Drift::TakenOver {
                manager: other.to_owned(),
                field,
            });
        }
    }
    missing(desired, live, "").map(|field| Drift::Missing { field })
}

/// Calls `visit` with the path of every field a `fieldsV1` trie names (its leaves; a node owning
/// only itself, `{".": {}}`, counts as a leaf).
fn leaves<'a>(node: &'a Value, path: &mut Vec<&'a str>, visit: &mut impl FnMut(&[&'a str])) {
    let Some(children) = node.as_object() else { return };
    let keys: Vec<&String> = children.keys().filter(|k| k.as_str() != ".").collect();
    if keys.is_empty() {
        if !path.is_empty() {
            visit(path);
        }
        return;
    }
    for key in keys {
        path.push(key);
        leaves(&children[key], path, visit);
        path.pop();
    }
}

/// Whether the `fieldsV1` path names a value of `desired`: `f:` a field, `k:` the list item whose
/// key fields match, `v:` a set member, `i:` an index.
fn resolves(desired: &Value, path: &[&str]) -> bool {
    let Some((step, rest)) = path.split_first() else {
        return true;
    };
    let next = if let Some(name) = step.strip_prefix("f:") {
        desired.as_object().and_then(|o| o.get(name))
    } else if let Some(key) = step.strip_prefix("k:") {
        let key: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
        desired.as_array().and_then(|items| {
            items
                .iter()
                .find(|item| !key.is_empty() && key.iter().all(|(k, v)| item.get(k) == Some(v)))
        })
    } else if let Some(value) = step.strip_prefix("v:") {
        let value: Value = serde_json::from_str(value).unwrap_or(Value::Null);
        return rest.is_empty() && desired.as_array().is_some_and(|items| items.contains(&value));
    } else if let Some(index) = step.strip_prefix("i:") {
        let index: usize = index.parse().unwrap_or(usize::MAX);
        desired.as_array().and_then(|items| items.get(index))
    } else {
        None
    };
    next.is_some_and(|value| !value.is_null() && resolves(value, rest))
}

/// A value that carries nothing to check: the API server omits zero values and empty collections.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// The first field of `desired` that `live` lacks: objects key by key, lists of named items by name,
/// lists of values by value (other lists only by being there).
fn missing(desired: &Value, live: &Value, at: &str) -> Option<String> {
    match desired {
        Value::Object(fields) => fields.iter().find_map(|(key, value)| {
            if is_empty(value) || (at.is_empty() && key == "status") {
                return None;
            }
            let path = if at.is_empty() {
                key.clone()
            } else {
                format!("{at}.{key}")
            };
            match live.get(key) {
                Some(found) if !found.is_null() => missing(value, found, &path),
                _ => Some(path),
            }
        }),
        Value::Array(items) => {
            let live_items = live.as_array()?;
            items
                .iter()
                .find_map(|item| match item.get("name").and_then(Value::as_str) {
                    Some(name) => {
                        let path = format!("{at}[name={name}]");
                        match live_items.iter().find(|l| l.get("name") == item.get("name")) {
                            Some(found) => missing(item, found, &path),
                            None => Some(path),
                        }
                    }
                    None if item.is_object() => None,
                    None => (!live_items.contains(item)).then(|| format!("{at}[{item}]")),
                })
        }
        _ => None,
    }
}

/// A `fieldsV1` path for people: `spec.template.spec.containers[name=api].image`.
fn render(path: &[&str]) -> String {
    let mut out = String::new();
    for step in path {
        if let Some(name) = step.strip_prefix("f:") {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(name);
        } else if let Some(key) = step.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
            let parts: Vec<String> = key
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                .collect();
            out.push_str(&format!("[{}]", parts.join(",")));
        } else {
            out.push_str(&format!("[{}]", &step[2.min(step.len())..]));
        }
    }
    out
}

#[cfg(test)]
mod tests;
