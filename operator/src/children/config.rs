//! The API's configuration ConfigMap: the environment the API containers load with `envFrom`
//! (names from the contract, `perfstack_contract::env`).
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use perfstack_contract::{env, tuning};

use super::{CacheSource, ValidatedStack};

/// Component label of the app and tuning ConfigMaps.
pub const COMPONENT: &str = "config";

/// The API's configuration ConfigMap. The pool values are start values: the tuning file overrides
/// them live.
pub fn app_config_map(stack: &ValidatedStack) -> ConfigMap {
    let pool = &stack.spec.pool;
    let mut data = BTreeMap::from([
        (
            env::LISTEN_ADDR.to_owned(),
            format!("0.0.0.0:{}", stack.spec.app.port),
        ),
        (env::LOG_FORMAT.to_owned(), "json".to_owned()),
        (env::TUNING_FILE.to_owned(), tuning::mounted_path()),
        (env::DB_POOL_MIN.to_owned(), pool.min_connections.to_string()),
        (env::DB_POOL_MAX.to_owned(), pool.max_connections.to_string()),
        (
            env::DB_ACQUIRE_TIMEOUT_MS.to_owned(),
            pool.acquire_timeout_ms.to_string(),
        ),
        (
            env::DB_IDLE_TIMEOUT_S.to_owned(),
            pool.idle_timeout_seconds.to_string(),
        ),
    ]);
    if stack.cache == CacheSource::Bundled {
        data.insert(env::REDIS_URL.into(), super::redis::url(stack));
    }
    ConfigMap {
        metadata: stack.child_meta(stack.names().config(), COMPONENT),
        data: Some(data),
        ..ConfigMap::default()
    }
}
