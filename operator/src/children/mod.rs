//! Pure builders of a stack's children: a [`ValidatedStack`] (and, for the tuning ConfigMap and the
//! HPA, the settings the tuner decided) in, one Kubernetes object out. No client, no I/O, so every
//! child is tested by comparing the whole object. One file per child kind; [`pod`] holds the
//! container pieces they share.
pub mod app;
pub mod config;
pub mod credentials;
pub mod hpa;
pub mod migration;
pub mod monitoring;
pub mod pod;
pub mod postgres;
pub mod redis;
pub mod tuning;
pub mod volume;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVar, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use perfstack_contract::env;

use crate::crd::PerformanceStackSpec;

/// Label every child carries; owned-kind watches select on it.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = crate::MANAGER;
/// Label naming the stack a child belongs to.
pub const STACK_LABEL: &str = "perfstack.dev/stack";
/// Label selector matching every object this operator manages.
pub const MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=perfstack-operator";
/// Label naming the part a child plays in the stack (`api`, `postgres`, `migration`, ...).
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";

/// Port of the bundled PostgreSQL.
pub const POSTGRES_PORT: i32 = 5432;
/// Port of the bundled Redis.
pub const REDIS_PORT: i32 = 6379;
/// Database and user of the bundled PostgreSQL.
pub const DATABASE_NAME: &str = "perfstack";
/// UID the API (and its migration) runs as.
pub const APP_UID: i64 = 10001;

/// Where the stack's database connection URL comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseSource {
    /// The operator deploys PostgreSQL; the URL is in the generated credentials Secret.
    Bundled,
    /// The user's Secret holds the URL.
    External { secret: String, key: String },
}

/// Where the stack's Redis URL comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheSource {
    /// The operator deploys Redis; the URL is in the app ConfigMap.
    Bundled,
    /// The user's Secret holds the URL.
    External { secret: String, key: String },
    /// No cache.
    Disabled,
}

/// Why the operator leaves a stack's children alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pause {
    /// PascalCase reason: `SpecSuspend` or `PausedByAnnotation`.
    pub reason: &'static str,
    /// Which switch paused it, for the `Suspended` condition.
    pub switch: String,
}

/// A `PerformanceStack` whose spec passed validation, with defaults resolved. Builders take only this
/// (and the tuner's settings where a child carries them).
#[derive(Clone, Debug, PartialEq)]
pub struct ValidatedStack {
    /// metadata.name of the stack.
    pub name: String,
    /// Namespace of the stack and all its children.
    pub namespace: String,
    /// metadata.uid, for owner references.
    pub uid: String,
    /// metadata.generation.
    pub generation: i64,
    /// Reference to the stack, for Events about it.
    pub object_ref: ObjectReference,
    /// The validated spec.
    pub spec: PerformanceStackSpec,
    /// The API image to run (spec.app.image or the operator's default).
    pub app_image: String,
    /// Where the database URL comes from.
    pub database: DatabaseSource,
    /// Where the Redis URL comes from.
    pub cache: CacheSource,
    /// Set when the stack is paused (`spec.suspend`, or the `perfstack.dev/paused` annotation).
    pub paused: Option<Pause>,
}

/// The API image released with this operator version, used when spec.app.image is empty.
pub fn default_app_image() -> String {
    format!("ghcr.io/perfstack/perfstack-app:{}", env!("CARGO_PKG_VERSION"))
}

/// Names of a stack's children, derived from the stack's name only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildNames {
    stack: String,
}

impl ChildNames {
    /// The names for the stack called `stack`.
    pub fn new(stack: &str) -> Self {
        Self {
            stack: stack.to_owned(),
        }
    }
    fn suffixed(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.stack)
    }
    /// Secret with the generated database credentials.
    pub fn credentials(&self) -> String {
        self.suffixed("credentials")
    }
    /// PostgreSQL StatefulSet and its headless Service.
    pub fn postgres(&self) -> String {
        self.suffixed("postgres")
    }
    /// Redis Deployment and Service.
    pub fn redis(&self) -> String {
        self.suffixed("redis")
    }
    /// The API's configuration ConfigMap.
    pub fn config(&self) -> String {
        self.suffixed("config")
    }
    /// The tuning ConfigMap (key `tuning.yaml`).
    pub fn tuning(&self) -> String {
        self.suffixed("tuning")
    }
    /// API Deployment, Service and HorizontalPodAutoscaler, and the PodMonitor scraping the API.
    pub fn api(&self) -> String {
        self.suffixed("api")
    }
    /// The PrometheusRule with the stack's SLO alerts.
    pub fn slo_rules(&self) -> String {
        self.suffixed("slo")
    }
    /// Migration Job for the given migration digest.
    pub fn migration_job(&self, digest: &str) -> String {
        self.suffixed(&format!("migrate-{digest}"))
    }
}

impl ValidatedStack {
    /// Child names of this stack.
    pub fn names(&self) -> ChildNames {
        ChildNames::new(&self.name)
    }

    /// `namespace/name`: the stack's key for per-stack state (tuner, failure counts).
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Labels of a child that plays `component` in this stack.
    pub fn labels(&self, component: &str) -> BTreeMap<String, String> {
        let mut labels = self.selector_labels(component);
        labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
        labels.insert(STACK_LABEL.into(), self.name.clone());
        labels
    }

    /// The stable subset of [`Self::labels`] used in selectors (selectors are immutable).
    pub fn selector_labels(&self, component: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".into(), "perfstack".into()),
            ("app.kubernetes.io/instance".into(), self.name.clone()),
            (COMPONENT_LABEL.into(), component.into()),
        ])
    }

    /// Owner reference making the stack the controller of a child (garbage collection, watches).
    pub fn owner_reference(&self) -> OwnerReference {
        OwnerReference {
            api_version: format!("{}/{}", crate::crd::GROUP, crate::crd::VERSION),
            kind: "PerformanceStack".into(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    /// Metadata of a child called `name` playing `component`, owned by the stack (it goes with it).
    pub fn child_meta(&self, name: String, component: &str) -> ObjectMeta {
        ObjectMeta {
            owner_references: Some(vec![self.owner_reference()]),
            ..self.data_meta(name, component)
        }
    }

    /// Metadata of a data-bearing child (the credentials Secret) called `name`: labelled like every
    /// child, so a stack created again under the same name finds it, and never owned by the stack,
    /// so no garbage collection can delete it (cleanup does, under `deletionPolicy: Delete`).
    pub fn data_meta(&self, name: String, component: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels(component)),
            ..ObjectMeta::default()
        }
    }

    /// In-cluster URL of the API Service.
    pub fn api_url(&self) -> String {
        format!(
            "http://{}.{}.svc:{}",
            self.names().api(),
            self.namespace,
            self.spec.app.port
        )
    }

    /// The env var that gives the API the database URL: the app role's (bundled), or the user's.
    pub fn database_url_env(&self) -> EnvVar {
        let (secret, key) = match &self.database {
            DatabaseSource::Bundled => (
                self.names().credentials(),
                credentials::APP_DATABASE_URL_KEY.to_owned(),
            ),
            DatabaseSource::External { secret, key } => (secret.clone(), key.clone()),
        };
        pod::secret_env(env::DATABASE_URL, secret, key)
    }

    /// The env var that gives the migration the database URL of a role that owns the schema: the
    /// bundled database's owner, or `spec.database.migrationSecretRef` (else the API's URL).
    pub fn migration_database_url_env(&self) -> EnvVar {
        let (secret, key) = match (&self.database, &self.spec.database.migration_secret_ref) {
            (DatabaseSource::Bundled, _) => (
                self.names().credentials(),
                credentials::DATABASE_URL_KEY.to_owned(),
            ),
            (DatabaseSource::External { .. }, Some(owner)) => (
                owner.name.clone(),
                owner
                    .key
                    .clone()
                    .unwrap_or_else(|| credentials::DATABASE_URL_KEY.to_owned()),
            ),
            (DatabaseSource::External { secret, key }, None) => (secret.clone(), key.clone()),
        };
        pod::secret_env(env::DATABASE_URL, secret, key)
    }

    /// The Secret holding the API tokens when auth is on: the user's, or the generated one.
    pub fn token_secret(&self) -> Option<String> {
        let auth = &self.spec.auth;
        auth.enabled.then(|| {
            auth.secret_ref
                .clone()
                .unwrap_or_else(|| self.names().credentials())
        })
    }
}

/// The first `bytes` bytes of a digest as lowercase hex (names and annotations carry short digests).
pub fn hex_prefix(digest: &[u8], bytes: usize) -> String {
    digest.iter().take(bytes).map(|b| format!("{b:02x}")).collect()
}
