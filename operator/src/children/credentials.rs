//! The Secret with the bundled database's generated credentials. Built once, created only if absent and
//! never rewritten: a rotated password would lock the API out of a database initialised with the old one.
//! For the same reason it is never owned by the stack: it must outlive the stack exactly as long as
//! the database volume it opens does.
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;

use super::{DATABASE_NAME, ValidatedStack};

/// Component label of the credentials Secret.
pub const COMPONENT: &str = "credentials";
/// Secret key holding the database user.
pub const USERNAME_KEY: &str = "username";
/// Secret key holding the database password.
pub const PASSWORD_KEY: &str = "password";
/// Secret key holding the full connection URL (contract: `database-url`).
pub const DATABASE_URL_KEY: &str = "database-url";

/// A freshly generated password: 32 alphanumeric characters from the OS-seeded thread RNG.
pub fn generate_password() -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// The credentials Secret for `password`. Its Debug output never reaches logs: callers log only names.
pub fn credentials_secret(stack: &ValidatedStack, password: &str) -> Secret {
    let names = stack.names();
    let url = format!(
        "postgres://{DATABASE_NAME}:{password}@{}.{}.svc:{}/{DATABASE_NAME}",
        names.postgres(),
        stack.namespace,
        super::POSTGRES_PORT
    );
    Secret {
        metadata: stack.data_meta(names.credentials(), COMPONENT),
        type_: Some("Opaque".into()),
        string_data: Some(BTreeMap::from([
            (USERNAME_KEY.into(), DATABASE_NAME.into()),
            (PASSWORD_KEY.into(), password.into()),
            (DATABASE_URL_KEY.into(), url),
        ])),
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
