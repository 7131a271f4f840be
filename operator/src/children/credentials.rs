//! The Secret with the stack's generated credentials: the bundled database's owner and app roles,
//! the bundled Redis' password and, when auth is on without a Secret of the user's, the API tokens.
//! Each value is generated once: the Secret is created with every key the stack needs, and a key a
//! later version (or a changed spec) needs is added without touching the others. A rotated password
//! would lock the API out of a database initialised with the old one. For the same reason it is never
//! owned by the stack: it must outlive the stack exactly as long as the database volume it opens does.
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;

use super::{CacheSource, DATABASE_NAME, DatabaseSource, ValidatedStack};

/// Component label of the credentials Secret.
pub const COMPONENT: &str = "credentials";
/// Secret key holding the database owner (the migration connects as it).
pub const USERNAME_KEY: &str = "username";
/// Secret key holding the owner's password.
pub const PASSWORD_KEY: &str = "password";
/// Secret key holding the owner's connection URL (contract: `database-url`).
pub const DATABASE_URL_KEY: &str = "database-url";
/// Secret key holding the role the API connects as.
pub const APP_USERNAME_KEY: &str = "app-username";
/// Secret key holding the app role's password.
pub const APP_PASSWORD_KEY: &str = "app-password";
/// Secret key holding the app role's connection URL.
pub const APP_DATABASE_URL_KEY: &str = "app-database-url";
/// Secret key holding the bundled Redis' password.
pub const REDIS_PASSWORD_KEY: &str = "redis-password";
/// Secret key holding the API token (generated, or in the user's Secret).
pub const API_TOKEN_KEY: &str = "api-token";
/// Secret key holding the admin token (generated, or in the user's Secret).
pub const ADMIN_TOKEN_KEY: &str = "admin-token";
/// The role the API connects to the bundled database as (`migrate` creates it, see the app's
/// `db::roles`): reads and writes of the app's tables, nothing more.
pub const APP_ROLE: &str = "perfstack_app";

/// A freshly generated password: 32 alphanumeric characters from the OS-seeded thread RNG.
pub fn generate_password() -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// Whether the stack needs the generated Secret at all.
pub fn needed(stack: &ValidatedStack) -> bool {
    stack.database == DatabaseSource::Bundled
        || stack.cache == CacheSource::Bundled
        || (stack.spec.auth.enabled && stack.spec.auth.secret_ref.is_none())
}

/// Every key the stack needs, each with a value from `generate` (URLs carry the password generated
/// next to them).
pub fn credentials_data(
    stack: &ValidatedStack,
    generate: &mut dyn FnMut() -> String,
) -> BTreeMap<String, String> {
    let mut data = BTreeMap::new();
    if stack.database == DatabaseSource::Bundled {
        let host = format!(
            "{}.{}.svc:{}",
            stack.names().postgres(),
            stack.namespace,
            super::POSTGRES_PORT
        );
        let owner = generate();
        let app = generate();
        data.insert(USERNAME_KEY.into(), DATABASE_NAME.into());
        data.insert(
            DATABASE_URL_KEY.into(),
            format!("postgres://{DATABASE_NAME}:{owner}@{host}/{DATABASE_NAME}"),
        );
        data.insert(PASSWORD_KEY.into(), owner);
        data.insert(APP_USERNAME_KEY.into(), APP_ROLE.into());
        data.insert(
            APP_DATABASE_URL_KEY.into(),
            format!("postgres://{APP_ROLE}:{app}@{host}/{DATABASE_NAME}"),
        );
        data.insert(APP_PASSWORD_KEY.into(), app);
    }
    if stack.cache == CacheSource::Bundled {
        data.insert(REDIS_PASSWORD_KEY.into(), generate());
    }
    if stack.spec.auth.enabled && stack.spec.auth.secret_ref.is_none() {
        data.insert(API_TOKEN_KEY.into(), generate());
        data.insert(ADMIN_TOKEN_KEY.into(), generate());
    }
    data
}

/// The credentials Secret holding `data`. Its Debug output never reaches logs: callers log only names.
pub fn credentials_secret(stack: &ValidatedStack, data: BTreeMap<String, String>) -> Secret {
    Secret {
        metadata: stack.data_meta(stack.names().credentials(), COMPONENT),
        type_: Some("Opaque".into()),
        string_data: Some(data),
        ..Secret::default()
    }
}

/// The merge patch that takes owner references to a PerformanceStack off a credentials Secret
/// (operators before this one set one, so that garbage collection could delete the Secret while the
/// volume it opens stayed), or `None` when it has none. Locked on the Secret's resourceVersion.
pub fn disowning_patch(secret: &Secret) -> Option<serde_json::Value> {
    let refs = secret.owner_references();
    let is_stack = |kind: &str, api_version: &str| {
        kind == "PerformanceStack" && api_version.starts_with(crate::crd::GROUP)
    };
    if !refs.iter().any(|r| is_stack(&r.kind, &r.api_version)) {
        return None;
    }
    let others: Vec<_> = refs
        .iter()
        .filter(|r| !is_stack(&r.kind, &r.api_version))
        .collect();
    Some(serde_json::json!({
        "metadata": {"ownerReferences": others, "resourceVersion": secret.resource_version()}
    }))
}

/// The entries of `wanted` whose keys `existing` lacks (to add; existing values are never changed).
pub fn missing(existing: &Secret, wanted: BTreeMap<String, String>) -> BTreeMap<String, String> {
    let has = |key: &str| {
        existing.data.as_ref().is_some_and(|d| d.contains_key(key))
            || existing.string_data.as_ref().is_some_and(|d| d.contains_key(key))
    };
    wanted.into_iter().filter(|(key, _)| !has(key)).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;

    use super::*;

    #[test]
    fn only_missing_keys_are_added_and_existing_values_stay() {
        let existing = Secret {
            data: Some(BTreeMap::from([
                (PASSWORD_KEY.to_owned(), ByteString(b"old".to_vec())),
                (
                    DATABASE_URL_KEY.to_owned(),
                    ByteString(b"postgres://old".to_vec()),
                ),
            ])),
            ..Secret::default()
        };
        let wanted = BTreeMap::from([
            (PASSWORD_KEY.to_owned(), "new".to_owned()),
            (DATABASE_URL_KEY.to_owned(), "postgres://new".to_owned()),
            (APP_PASSWORD_KEY.to_owned(), "app".to_owned()),
        ]);
        let missing = missing(&existing, wanted);
        assert_eq!(
            missing,
            BTreeMap::from([(APP_PASSWORD_KEY.to_owned(), "app".to_owned())])
        );
    }
}
