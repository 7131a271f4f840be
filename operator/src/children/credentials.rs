//! The Secret with the bundled database's generated credentials. Built once, created only if absent and
//! never rewritten: a rotated password would lock the API out of a database initialised with the old one.
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;

use super::{DATABASE_NAME, ValidatedStack};

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
        metadata: stack.child_meta(names.credentials(), "credentials"),
        type_: Some("Opaque".into()),
        string_data: Some(BTreeMap::from([
            (USERNAME_KEY.into(), DATABASE_NAME.into()),
            (PASSWORD_KEY.into(), password.into()),
            (DATABASE_URL_KEY.into(), url),
        ])),
        ..Secret::default()
    }
}
