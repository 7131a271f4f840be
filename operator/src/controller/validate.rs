//! Validate (step 1 of the reconcile): turn a `PerformanceStack` into a [`ValidatedStack`] or name
//! the field that is wrong.
//!
//! The CRD schema carries the same bounds and CEL rules, but older API servers ignore CEL and objects
//! may predate a schema change, so the controller checks everything it relies on itself. Bounds the
//! app enforces too (the tuning file's) come from the contract.
use std::fmt::Display;
use std::ops::RangeInclusive;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use perfstack_contract::{env, tuning};

use crate::children::{CacheSource, DatabaseSource, Pause, ValidatedStack, default_app_image};
use crate::crd::quantity;
use crate::crd::{
    AppSpec, CacheMode, CacheSpec, DatabaseMode, ExternalSpec, PerformanceStack, PerformanceStackSpec,
    PoolSpec, SloSpec, TuningSpec,
};

/// A spec the operator cannot deploy, with the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidSpec {
    /// JSON path of the field, e.g. `spec.pool.maxConnections`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

fn invalid(field: &str, message: impl Into<String>) -> InvalidSpec {
    InvalidSpec {
        field: field.into(),
        message: message.into(),
    }
}

fn in_range(field: &str, value: i32, min: i32, max: i32) -> Result<(), InvalidSpec> {
    in_contract_range(field, value, &(min..=max))
}

/// `value` (as the CRD holds it) within a bound given in the contract's integer type.
fn in_contract_range<T>(field: &str, value: i32, range: &RangeInclusive<T>) -> Result<(), InvalidSpec>
where
    T: TryFrom<i32> + PartialOrd + Display,
{
    if T::try_from(value).is_ok_and(|v| range.contains(&v)) {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("{value} is outside {}..={}", range.start(), range.end()),
        ))
    }
}

fn external_ref(
    field: &str,
    external: &Option<ExternalSpec>,
    default_key: &str,
) -> Result<(String, String), InvalidSpec> {
    let external = external
        .as_ref()
        .ok_or_else(|| invalid(field, "is required when mode is External"))?;
    let name = external.secret_ref.name.trim();
    if name.is_empty() {
        return Err(invalid(&format!("{field}.secretRef.name"), "must not be empty"));
    }
    let key = external
        .secret_ref
        .key
        .clone()
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| default_key.to_owned());
    Ok((name.to_owned(), key))
}

/// `value` of `field` must not exceed `limit`, the value of `limit_field`.
fn not_above(field: &str, value: i32, limit_field: &str, limit: i32) -> Result<(), InvalidSpec> {
    if value > limit {
        return Err(invalid(
            field,
            format!("{value} must not exceed {limit_field} ({limit})"),
        ));
    }
    Ok(())
}

/// A `metadata` field every object has once the API server stored it.
fn required(field: &str, value: &Option<String>) -> Result<String, InvalidSpec> {
    value.clone().ok_or_else(|| invalid(field, "is missing"))
}

/// Checks the stack's spec and resolves defaults.
pub fn validate(stack: &PerformanceStack) -> Result<ValidatedStack, InvalidSpec> {
    let meta = &stack.metadata;
    let name = required("metadata.name", &meta.name)?;
    let namespace = required("metadata.namespace", &meta.namespace)?;
    let uid = required("metadata.uid", &meta.uid)?;
    // Child names append up to 12 characters ("-credentials") and must stay DNS labels for Services.
    if name.len() > 40 {
        return Err(invalid("metadata.name", "must be at most 40 characters"));
    }
    let spec = &stack.spec;
    app(&spec.app)?;
    pool(&spec.pool)?;
    slo(&spec.slo)?;
    tuning_spec(&spec.tuning)?;
    secret_names(spec)?;
    scrape_interval(&spec.monitoring.interval)?;
    Ok(ValidatedStack {
        name,
        namespace,
        uid,
        generation: meta.generation.unwrap_or(0),
        object_ref: kube::Resource::object_ref(stack, &()),
        app_image: spec.app.image.clone().unwrap_or_else(default_app_image),
        database: database(spec)?,
        cache: cache(&spec.cache)?,
        spec: spec.clone(),
        paused: pause(stack),
    })
}

/// Annotation that pauses a stack like `spec.suspend`, for when a GitOps tool owns the spec and a
/// person needs to stop the operator by hand (value `"true"`).
pub const PAUSED_ANNOTATION: &str = "perfstack.dev/paused";

/// Whether and why the stack is paused: `spec.suspend`, else the annotation.
fn pause(stack: &PerformanceStack) -> Option<Pause> {
    if stack.spec.suspend {
        return Some(Pause {
            reason: "SpecSuspend",
            switch: "spec.suspend is true".into(),
        });
    }
    let annotated = stack
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PAUSED_ANNOTATION))
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    annotated.then(|| Pause {
        reason: "PausedByAnnotation",
        switch: format!("the annotation {PAUSED_ANNOTATION} is \"true\""),
    })
}

fn app(app: &AppSpec) -> Result<(), InvalidSpec> {
    in_range("spec.app.port", app.port, 1, 65535)?;
    resources("spec.app.resources", &app.resources)?;
    in_range("spec.app.minReplicas", app.min_replicas, 1, 100)?;
    in_range("spec.app.maxReplicas", app.max_replicas, 1, 100)?;
    in_range(
        "spec.app.targetCpuUtilization",
        app.target_cpu_utilization,
        1,
        100,
    )?;
    not_above(
        "spec.app.minReplicas",
        app.min_replicas,
        "spec.app.maxReplicas",
        app.max_replicas,
    )?;
    if let Some(image) = &app.image
        && (image.trim().is_empty() || image.contains(char::is_whitespace))
    {
        return Err(invalid(
            "spec.app.image",
            "must be a non-empty image reference without spaces",
        ));
    }
    for (i, var) in app.env.iter().enumerate() {
        if env::OPERATOR_SET.contains(&var.name.as_str()) {
            return Err(invalid(
                &format!("spec.app.env[{i}].name"),
                format!("{} is set by the operator and cannot be overridden", var.name),
            ));
        }
    }
    Ok(())
}

/// Secrets the spec names besides the database's and cache's: not empty.
fn secret_names(spec: &PerformanceStackSpec) -> Result<(), InvalidSpec> {
    if spec
        .auth
        .secret_ref
        .as_ref()
        .is_some_and(|name| name.trim().is_empty())
    {
        return Err(invalid("spec.auth.secretRef", "must not be empty"));
    }
    if spec
        .database
        .migration_secret_ref
        .as_ref()
        .is_some_and(|owner| owner.name.trim().is_empty())
    {
        return Err(invalid(
            "spec.database.migrationSecretRef.name",
            "must not be empty",
        ));
    }
    Ok(())
}

/// The pool's bounds are the tuning file's (the app refuses a file outside them).
fn pool(pool: &PoolSpec) -> Result<(), InvalidSpec> {
    let most = *tuning::MAX_CONNECTIONS.end();
    in_contract_range("spec.pool.minConnections", pool.min_connections, &(0..=most))?;
    in_contract_range(
        "spec.pool.maxConnections",
        pool.max_connections,
        &tuning::MAX_CONNECTIONS,
    )?;
    in_contract_range(
        "spec.pool.acquireTimeoutMs",
        pool.acquire_timeout_ms,
        &tuning::ACQUIRE_TIMEOUT_MS,
    )?;
    in_range(
        "spec.pool.idleTimeoutSeconds",
        pool.idle_timeout_seconds,
        1,
        86_400,
    )?;
    not_above(
        "spec.pool.minConnections",
        pool.min_connections,
        "spec.pool.maxConnections",
        pool.max_connections,
    )
}

fn slo(slo: &SloSpec) -> Result<(), InvalidSpec> {
    in_range("spec.slo.p95LatencyMs", slo.p95_latency_ms, 1, 60_000)?;
    in_range("spec.slo.p99LatencyMs", slo.p99_latency_ms, 1, 60_000)?;
    if slo.p95_latency_ms > slo.p99_latency_ms {
        return Err(invalid(
            "spec.slo.p95LatencyMs",
            "must not exceed spec.slo.p99LatencyMs",
        ));
    }
    if !(0.0..=100.0).contains(&slo.max_error_rate_percent) {
        return Err(invalid("spec.slo.maxErrorRatePercent", "must be within 0..=100"));
    }
    Ok(())
}

fn tuning_spec(tuning: &TuningSpec) -> Result<(), InvalidSpec> {
    in_range("spec.tuning.intervalSeconds", tuning.interval_seconds, 10, 3600)?;
    for (field, seconds) in [
        (
            "spec.tuning.scaleUpStabilizationSeconds",
            tuning.scale_up_stabilization_seconds,
        ),
        (
            "spec.tuning.scaleDownStabilizationSeconds",
            tuning.scale_down_stabilization_seconds,
        ),
    ] {
        in_range(field, seconds, 0, 3600)?;
    }
    Ok(())
}

/// `spec.monitoring.interval`: a Prometheus duration in ms, s or m (as the CRD's pattern says).
fn scrape_interval(interval: &str) -> Result<(), InvalidSpec> {
    let unit = interval.trim_start_matches(|c: char| c.is_ascii_digit());
    let digits = &interval[..interval.len() - unit.len()];
    if digits.is_empty() || !matches!(unit, "ms" | "s" | "m") {
        return Err(invalid(
            "spec.monitoring.interval",
            format!("{interval:?} is not a duration such as 30s"),
        ));
    }
    Ok(())
}

/// Where the database URL comes from; a bundled server must hold every pod's pool.
fn database(spec: &PerformanceStackSpec) -> Result<DatabaseSource, InvalidSpec> {
    let db = &spec.database;
    in_range(
        "spec.database.reservedConnections",
        db.reserved_connections,
        0,
        1000,
    )?;
    if db.mode == DatabaseMode::External {
        let (secret, key) = external_ref("spec.database.external", &db.external, "database-url")?;
        return Ok(DatabaseSource::External { secret, key });
    }
    let bundled = &db.bundled;
    in_range(
        "spec.database.bundled.maxConnections",
        bundled.max_connections,
        10,
        10_000,
    )?;
    if db.reserved_connections >= bundled.max_connections {
        return Err(invalid(
            "spec.database.reservedConnections",
            "must be below spec.database.bundled.maxConnections",
        ));
    }
    if spec.pool.max_connections > bundled.max_connections - db.reserved_connections {
        return Err(invalid(
            "spec.pool.maxConnections",
            "must fit within spec.database.bundled.maxConnections minus spec.database.reservedConnections",
        ));
    }
    if bundled.image.trim().is_empty() {
        return Err(invalid("spec.database.bundled.image", "must not be empty"));
    }
    size("spec.database.bundled.storageSize", &bundled.storage_size)?;
    resources("spec.database.bundled.resources", &bundled.resources)?;
    Ok(DatabaseSource::Bundled)
}

/// Where the Redis URL comes from.
fn cache(cache: &CacheSpec) -> Result<CacheSource, InvalidSpec> {
    match cache.mode {
        CacheMode::Bundled => {
            if cache.image.trim().is_empty() {
                return Err(invalid("spec.cache.image", "must not be empty"));
            }
            resources("spec.cache.resources", &cache.resources)?;
            size("spec.cache.storageSize", &cache.storage_size)?;
            if !is_redis_memory(&cache.maxmemory) {
                return Err(invalid(
                    "spec.cache.maxmemory",
                    "must be a number with an optional kb, mb or gb suffix",
                ));
            }
            Ok(CacheSource::Bundled)
        }
        CacheMode::External => {
            let (secret, key) = external_ref("spec.cache.external", &cache.external, "redis-url")?;
            Ok(CacheSource::External { secret, key })
        }
        CacheMode::Disabled => Ok(CacheSource::Disabled),
    }
}

fn is_redis_memory(value: &str) -> bool {
    let digits = value.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &value[digits.len()..];
    !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && ["", "kb", "mb", "gb"].contains(&suffix)
}

/// A volume size: a positive quantity.
fn size(field: &str, value: &str) -> Result<(), InvalidSpec> {
    quantity::positive(field, value)
        .map(|_| ())
        .map_err(|message| invalid(field, message))
}

/// A container's requests and limits: each a non-negative quantity. The schema has the same
/// pattern, but objects stored before it (or by servers that skip it) reach the operator too, and a
/// bad quantity would otherwise surface only when the Deployment is finally refused.
fn resources(field: &str, given: &Option<ResourceRequirements>) -> Result<(), InvalidSpec> {
    let Some(given) = given else { return Ok(()) };
    for (part, map) in [("requests", &given.requests), ("limits", &given.limits)] {
        for (name, Quantity(value)) in map.iter().flatten() {
            let at = format!("{field}.{part}.{name}");
            match quantity::parse(value) {
                Some(v) if v >= 0.0 => {}
                Some(_) => return Err(invalid(&at, format!("{value:?} must not be negative"))),
                None => {
                    return Err(invalid(
                        &at,
                        format!("{value:?} is not a Kubernetes quantity (such as 250m, 512Mi or 10Gi)"),
                    ));
                }
            }
        }
    }
    Ok(())
}

mod live;
pub use live::against_live;

#[cfg(test)]
mod tests;
