//! The tuning file: the operator's tuning ConfigMap is what the app's watcher applies.
use perfstack_app::db::tuning::{TuningDecision, decide};
use perfstack_contract::tuning::{PoolSettings, TuningFile};
use perfstack_operator::children::tuning::{file_text, tuning_config_map};
use perfstack_operator::tuner::Settings;

#[test]
fn the_app_applies_the_pool_the_operator_decided() {
    let stack = super::validated(
        serde_json::json!({"pool": {"minConnections": 3, "maxConnections": 40,
        "acquireTimeoutMs": 1500, "idleTimeoutSeconds": 120}}),
    );
    let decided = Settings {
        pool_min: 3,
        pool_max: 17,
        hpa_min: 2,
        hpa_max: 10,
        generation: 9,
    };
    let base = PoolSettings {
        min_connections: 3,
        max_connections: 40,
        acquire_timeout_ms: 1500,
        idle_timeout_seconds: 120,
    };
    let config_map = tuning_config_map(&stack, &decided.tuning_file(&base));
    let text = file_text(&config_map).expect("the ConfigMap carries the file");
    let in_force = TuningFile::default();
    let TuningDecision::Apply(applied) = decide(text, in_force) else {
        panic!("the app did not apply the operator's file:\n{text}");
    };
    assert_eq!(applied.generation, 9);
    assert_eq!(
        applied.pool,
        PoolSettings {
            min_connections: 3,
            max_connections: 17,
            acquire_timeout_ms: 1500,
            idle_timeout_seconds: 120,
        }
    );
    // The same file again changes nothing on the app's side.
    assert_eq!(decide(text, applied), TuningDecision::Keep);
}

#[test]
fn the_largest_pool_the_operator_can_write_is_one_the_app_accepts() {
    let max = *perfstack_contract::tuning::MAX_CONNECTIONS.end();
    let stack = super::validated(serde_json::json!({"app": {"minReplicas": 1, "maxReplicas": 1},
        "pool": {"maxConnections": max}, "database": {"bundled": {"maxConnections": 1000}}}));
    let decided = Settings {
        pool_min: 2,
        pool_max: max,
        hpa_min: 1,
        hpa_max: 1,
        generation: 1,
    };
    let config_map = tuning_config_map(&stack, &decided.tuning_file(&PoolSettings::default()));
    let text = file_text(&config_map).expect("the file");
    assert!(
        matches!(decide(text, TuningFile::default()), TuningDecision::Apply(f) if f.pool.max_connections == max),
        "{text}"
    );
}
