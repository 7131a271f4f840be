//! The tuning ConfigMap: the tuning file (`perfstack_contract::tuning`) the app reloads live, mounted
//! into the API pods at `TUNING_DIR`. Its text is exactly `TuningFile::render()`.
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use perfstack_contract::tuning::{TUNING_KEY, TuningFile};

use super::ValidatedStack;
use super::config::COMPONENT;

/// The tuning ConfigMap holding `file` (the pool settings the tuner decided).
pub fn tuning_config_map(stack: &ValidatedStack, file: &TuningFile) -> ConfigMap {
    ConfigMap {
        metadata: stack.child_meta(stack.names().tuning(), COMPONENT),
        data: Some(BTreeMap::from([(TUNING_KEY.into(), file.render())])),
        ..ConfigMap::default()
    }
}

/// The tuning file's text in a live tuning ConfigMap, if it has one.
pub fn file_text(config_map: &ConfigMap) -> Option<&str> {
    config_map.data.as_ref()?.get(TUNING_KEY).map(String::as_str)
}
