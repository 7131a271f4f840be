//! Pure builders: a validated stack in, the Kubernetes object for one child out. No client, no I/O, so
//! every child can be tested by comparing the whole object.
pub mod app;
pub mod config;
pub mod credentials;
pub mod hpa;
pub mod migration;
pub mod postgres;
pub mod redis;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, EnvVar, EnvVarSource, ObjectReference, PodSecurityContext, ResourceRequirements,
    SeccompProfile, SecretKeySelector, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::crd::PerformanceStackSpec;

/// Label every child carries; owned-kind watches select on it.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = crate::MANAGER;
/// Label naming the stack a child belongs to.
pub const STACK_LABEL: &str = "perfstack.dev/stack";
/// Label selector matching every object this operator manages.
pub const MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=perfstack-operator";

/// Port of the bundled PostgreSQL.
pub const POSTGRES_PORT: i32 = 5432;
/// Port of the bundled Redis.
pub const REDIS_PORT: i32 = 6379;
/// Database and user of the bundled PostgreSQL.
pub const DATABASE_NAME: &str = "perfstack";
/// UID the API (and its migration) runs as.
pub const APP_UID: i64 = 10001;
/// Where the tuning ConfigMap is mounted in API pods.
pub const TUNING_DIR: &str = "/etc/perfstack/tuning";
/// Data key of the tuning file in the tuning ConfigMap.
pub const TUNING_KEY: &str = "tuning.yaml";

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

/// A `PerformanceStack` whose spec passed validation, with defaults resolved. Builders take only this.
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
    /// Pool and HPA bounds the tuner put in force (always within the connection budget); `None`
    /// writes `spec.pool` and `spec.app` replicas as they are (no tuner wired in).
    pub tuned: Option<crate::tuner::Settings>,
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
    /// Secret with the generated database credentials.
    pub fn credentials(&self) -> String {
        format!("{}-credentials", self.stack)
    }
    /// PostgreSQL StatefulSet and its headless Service.
    pub fn postgres(&self) -> String {
        format!("{}-postgres", self.stack)
    }
    /// Redis Deployment and Service.
    pub fn redis(&self) -> String {
        format!("{}-redis", self.stack)
    }
    /// The API's configuration ConfigMap.
    pub fn config(&self) -> String {
        format!("{}-config", self.stack)
    }
    /// The tuning ConfigMap (key `tuning.yaml`).
    pub fn tuning(&self) -> String {
        format!("{}-tuning", self.stack)
    }
    /// API Deployment, Service and HorizontalPodAutoscaler.
    pub fn api(&self) -> String {
        format!("{}-api", self.stack)
    }
    /// Migration Job for the given migration digest.
    pub fn migration_job(&self, digest: &str) -> String {
        format!("{}-migrate-{digest}", self.stack)
    }
}

impl ValidatedStack {
    /// Child names of this stack.
    pub fn names(&self) -> ChildNames {
        ChildNames::new(&self.name)
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
            ("app.kubernetes.io/component".into(), component.into()),
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

    /// Metadata of a child called `name` playing `component`.
    pub fn child_meta(&self, name: String, component: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels(component)),
            owner_references: Some(vec![self.owner_reference()]),
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

    /// The env var that gives a container the database URL.
    pub fn database_url_env(&self) -> EnvVar {
        let (secret, key) = match &self.database {
            DatabaseSource::Bundled => (
                self.names().credentials(),
                credentials::DATABASE_URL_KEY.to_owned(),
            ),
            DatabaseSource::External { secret, key } => (secret.clone(), key.clone()),
        };
        secret_env("DATABASE_URL", secret, key)
    }
}

/// An env var read from a Secret key.
pub fn secret_env(name: &str, secret: String, key: String) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret,
                key,
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// A plain env var.
pub fn plain_env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}

/// Container security context: non-root, read-only root filesystem, no privilege escalation, no
/// capabilities.
pub fn restricted_container(user: i64) -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(user),
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Capabilities::default()
        }),
        ..SecurityContext::default()
    }
}

/// Pod security context for a pod running as `user`, with volumes writable by that group.
pub fn restricted_pod(user: i64) -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(user),
        run_as_group: Some(user),
        fs_group: Some(user),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..PodSecurityContext::default()
    }
}

/// `given`, or requests of `cpu` and `memory` (and a memory limit, if any) when the spec sets
/// none: the autoscaler computes CPU utilisation against requests, and a pod without them is the first
/// to be evicted.
pub fn resources_or(
    given: &Option<ResourceRequirements>,
    cpu: &str,
    memory: &str,
    memory_limit: Option<&str>,
) -> ResourceRequirements {
    given.clone().unwrap_or_else(|| ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".into(), Quantity(cpu.into())),
            ("memory".into(), Quantity(memory.into())),
        ])),
        limits: memory_limit.map(|limit| BTreeMap::from([("memory".into(), Quantity(limit.into()))])),
        ..ResourceRequirements::default()
    })
}
