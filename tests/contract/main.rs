//! The contract between the operator and the app (docs/contract.md, `perfstack-contract`) checked
//! from both sides: what the operator writes, the app reads, and what the app exports, the operator
//! reads.
#![cfg(test)]

mod env;
mod metrics;
mod migration;
mod tuning;

use perfstack_operator::PerformanceStack;
use perfstack_operator::children::ValidatedStack;

/// A stack the operator's validation accepted, from a spec written as JSON.
pub fn validated(spec: serde_json::Value) -> ValidatedStack {
    let mut stack: PerformanceStack = serde_json::from_value(serde_json::json!({
        "apiVersion": "perfstack.dev/v1alpha1",
        "kind": "PerformanceStack",
        "metadata": {"name": "shop", "namespace": "team-a", "uid": "uid-1", "generation": 3},
        "spec": spec,
    }))
    .expect("a PerformanceStack");
    stack.metadata.generation = Some(3);
    perfstack_operator::controller::validate::validate(&stack).expect("a valid spec")
}
