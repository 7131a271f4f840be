//! The API's configuration ConfigMap: the environment the API containers load with `envFrom`
//! (names from the contract, `perfstack_contract::env`).
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use perfstack_contract::env;
use perfstack_contract::tuning::{self, PoolSettings};

use super::{CacheSource, ValidatedStack};

/// Component label of the app and tuning ConfigMaps.
pub const COMPONENT: &str = "config";

/// The API's configuration ConfigMap. `pool` is the pool the tuning file carries: a pod starting
/// builds its first pool from these values, so it never opens another pool than the one in force
/// (a pool it replaced right after starting would stay open beside the new one).
pub fn app_config_map(stack: &ValidatedStack, pool: &PoolSettings) -> ConfigMap {
    let mut data = restart_data(stack);
    data.extend([
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
    ConfigMap {
        metadata: stack.child_meta(stack.names().config(), COMPONENT),
        data: Some(data),
        ..ConfigMap::default()
    }
}

/// The part of the configuration running pods only take by restarting (the pool's values reach
/// them through the tuning file instead): what the API Deployment's config digest covers.
pub fn restart_data(stack: &ValidatedStack) -> BTreeMap<String, String> {
    let mut data = BTreeMap::from([
        (
            env::LISTEN_ADDR.to_owned(),
            format!("0.0.0.0:{}", stack.spec.app.port),
        ),
        (env::LOG_FORMAT.to_owned(), "json".to_owned()),
        (env::TUNING_FILE.to_owned(), tuning::mounted_path()),
    ]);
    if stack.cache == CacheSource::Bundled {
        data.insert(env::REDIS_URL.into(), super::redis::url(stack));
    }
    data
}
