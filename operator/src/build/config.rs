//! The API's two ConfigMaps: its configuration (environment) and the tuning file (pool settings the app
//! reloads live, format in docs/contract.md).
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use serde::{Deserialize, Serialize};

use super::{CacheSource, TUNING_DIR, TUNING_KEY, ValidatedStack};
use crate::crd::PoolSpec;

/// Component label of both ConfigMaps.
pub const COMPONENT: &str = "config";

/// Pool settings in the tuning file.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PoolSettings {
    /// Connections kept open.
    pub min_connections: i32,
    /// Most connections.
    pub max_connections: i32,
    /// Wait for a connection, ms.
    pub acquire_timeout_ms: i32,
    /// Idle connection lifetime, s.
    pub idle_timeout_seconds: i32,
}

impl From<&PoolSpec> for PoolSettings {
    fn from(pool: &PoolSpec) -> Self {
        Self {
            min_connections: pool.min_connections,
            max_connections: pool.max_connections,
            acquire_timeout_ms: pool.acquire_timeout_ms,
            idle_timeout_seconds: pool.idle_timeout_seconds,
        }
    }
}

/// The tuning file (`tuning.yaml`) as the app reads it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TuningFile {
    /// Increases with every change the operator makes.
    pub generation: i64,
    /// Pool settings in force.
    pub pool: PoolSettings,
}

impl TuningFile {
    /// The file the controller writes: spec.pool at the stack's generation, or the pool the tuner
    /// put in force at its generation.
    pub fn from_spec(stack: &ValidatedStack) -> Self {
        let mut file = Self {
            generation: stack.generation,
            pool: PoolSettings::from(&stack.spec.pool),
        };
        // The tuner's settings in force (within the connection budget) replace the spec's pool.
        if let Some(tuned) = stack.tuned {
            file.generation = i64::try_from(tuned.generation).unwrap_or(i64::MAX);
            file.pool.min_connections = i32::try_from(tuned.pool_min).unwrap_or(i32::MAX);
            file.pool.max_connections = i32::try_from(tuned.pool_max).unwrap_or(i32::MAX);
        }
        file
    }
}

/// The tuning ConfigMap holding `file` under the key `tuning.yaml`.
pub fn tuning_config_map(stack: &ValidatedStack, file: &TuningFile) -> Result<ConfigMap, serde_yaml::Error> {
    Ok(ConfigMap {
        metadata: stack.child_meta(stack.names().tuning(), COMPONENT),
        data: Some(BTreeMap::from([(
            TUNING_KEY.into(),
            serde_yaml::to_string(file)?,
        )])),
        ..ConfigMap::default()
    })
}

/// The API's configuration ConfigMap, loaded into the API containers with envFrom.
pub fn app_config_map(stack: &ValidatedStack) -> ConfigMap {
    let pool = &stack.spec.pool;
    let mut data = BTreeMap::from([
        (
            "LISTEN_ADDR".to_owned(),
            format!("0.0.0.0:{}", stack.spec.app.port),
        ),
        ("LOG_FORMAT".to_owned(), "json".to_owned()),
        ("TUNING_FILE".to_owned(), format!("{TUNING_DIR}/{TUNING_KEY}")),
        ("DB_POOL_MIN".to_owned(), pool.min_connections.to_string()),
        ("DB_POOL_MAX".to_owned(), pool.max_connections.to_string()),
        (
            "DB_ACQUIRE_TIMEOUT_MS".to_owned(),
            pool.acquire_timeout_ms.to_string(),
        ),
        (
            "DB_IDLE_TIMEOUT_S".to_owned(),
            pool.idle_timeout_seconds.to_string(),
        ),
    ]);
    if stack.cache == CacheSource::Bundled {
        data.insert("REDIS_URL".into(), super::redis::url(stack));
    }
    ConfigMap {
        metadata: stack.child_meta(stack.names().config(), COMPONENT),
        data: Some(data),
        ..ConfigMap::default()
    }
}
