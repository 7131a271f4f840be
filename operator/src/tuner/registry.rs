//! The tuners of all stacks, shared by reconciles (the controller's `Context` holds one).
//!
//! A reconcile asks [`TuningRegistry::tick_if_due`] to run the stack's interval when it is due;
//! builders ask [`TuningRegistry::settings_in_force`] what to write into the tuning ConfigMap and
//! the HPA. The controller runs at most one reconcile per stack at a time, so a stack's tuner is
//! taken out of the map while it ticks and put back afterwards.
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::act::{Mode, TuningStatus};
use super::budget::ServerLimits;
use super::error::TunerError;
use super::spec::{Settings, TuningSpec};
use super::stack::{AppPods, StackTuner, Tick};
use super::targets::MetricsSource;
use super::tuning_file::PoolTuning;

struct Entry {
    tuner: StackTuner,
    last_tick: Option<Instant>,
    status: Option<TuningStatus>,
    /// The spec's starting point the settings in force derive from (see [`TuningRegistry::follow_spec`]).
    start: Option<String>,
}

/// Per-stack tuners, keyed by `namespace/name`.
pub struct TuningRegistry {
    origin: Instant,
    stacks: Mutex<HashMap<String, Entry>>,
    /// The database server's limits as each stack's app pods last reported them.
    servers: Mutex<HashMap<String, ServerLimits>>,
}

impl Default for TuningRegistry {
    fn default() -> Self {
        Self::new()
    }
}

/// One due interval's inputs besides the stack key.
pub struct TickRequest<'a> {
    /// The stack's tuning spec now.
    pub spec: TuningSpec,
    /// Settings in force when the registry has none yet (e.g. read back from the live ConfigMap
    /// and HPA after an operator restart, or the spec's starting values).
    pub seed: Settings,
    /// `spec.tuning.intervalSeconds`.
    pub interval: Duration,
    /// Where the app pods are.
    pub pods: &'a AppPods,
    /// How to read their metrics.
    pub source: &'a MetricsSource,
    /// `spec.tuning.mode`.
    pub mode: Mode,
    /// Acquire/idle timeouts the tuning file keeps.
    pub timeouts: PoolTuning,
}

impl TuningRegistry {
    /// An empty registry; its creation is the origin of the tuners' clock.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
            stacks: Mutex::new(HashMap::new()),
            servers: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.stacks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The settings the tuner put in force for `key`, if it has any.
    pub fn settings_in_force(&self, key: &str) -> Option<Settings> {
        self.lock().get(key).map(|e| e.tuner.tuner.settings)
    }

    /// The last `status.tuning` of `key`.
    pub fn status(&self, key: &str) -> Option<TuningStatus> {
        self.lock().get(key).and_then(|e| e.status.clone())
    }

    /// Whether the registry holds a tuner for `key` (it does from the first interval on).
    pub fn knows(&self, key: &str) -> bool {
        self.lock().contains_key(key)
    }

    /// Starts `key`'s tuner from settings found in force (e.g. the live tuning ConfigMap after an
    /// operator restart) unless it already has one.
    pub fn seed(&self, key: &str, spec: TuningSpec, settings: Settings) {
        self.lock().entry(key.to_owned()).or_insert_with(|| Entry {
            tuner: StackTuner::new(spec, settings),
            last_tick: None,
            status: None,
            start: None,
        });
    }

    /// Records the spec's starting point `start` (a fingerprint of what the spec asks of the pool
    /// and replicas). When it differs from the one recorded — the user edited the spec — the spec's
    /// values replace the settings in force (an edit is an explicit instruction; tuning continues
    /// from there) and `true` is returned. A first sighting only records it.
    pub fn follow_spec(&self, key: &str, start: String, spec_settings: Settings) -> bool {
        let mut stacks = self.lock();
        let Some(entry) = stacks.get_mut(key) else {
            return false;
        };
        let edited = entry.start.as_ref().is_some_and(|s| *s != start);
        if edited {
            let generation = entry
                .tuner
                .tuner
                .settings
                .generation
                .max(spec_settings.generation)
                + 1;
            entry.tuner.tuner.settings = Settings {
                generation,
                ..spec_settings
            };
        }
        entry.start = Some(start);
        edited
    }

    /// The database server's limits as `key`'s app pods last reported them (`None` before any
    /// pod did; a later interval where no pod reports them keeps the last known).
    pub fn server_limits(&self, key: &str) -> Option<ServerLimits> {
        self.servers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .copied()
    }

    /// Records the database server's limits `key`'s app pods reported (kept until a newer report).
    pub fn record_server_limits(&self, key: &str, limits: ServerLimits) {
        self.servers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.to_owned(), limits);
    }

    /// Forgets a deleted stack.
    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
        self.servers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    /// Whether `key`'s next interval is due at `now`.
    pub fn is_due(&self, key: &str, interval: Duration, now: Instant) -> bool {
        self.lock()
            .get(key)
            .and_then(|e| e.last_tick)
            .is_none_or(|last| now.duration_since(last) >= interval)
    }

    /// Runs `key`'s interval if it is due at `now` (`wall` for the status); `Ok(None)` when not
    /// due, on the first (baseline) interval, or with mode Off.
    pub async fn tick_if_due(
        &self,
        key: &str,
        request: TickRequest<'_>,
        now: Instant,
        wall: DateTime<Utc>,
    ) -> Result<Option<Tick>, TunerError> {
        if !self.is_due(key, request.interval, now) {
            return Ok(None);
        }
        let taken = self.lock().remove(key);
        let mut entry = taken.unwrap_or_else(|| Entry {
            tuner: StackTuner::new(request.spec.clone(), request.seed),
            last_tick: None,
            status: None,
            start: None,
        });
        entry.tuner.respec(request.spec);
        let clock = now.saturating_duration_since(self.origin);
        let mut result = entry
            .tuner
            .tick(
                request.pods,
                request.source,
                request.mode,
                request.timeouts,
                clock,
                wall,
            )
            .await;
        entry.last_tick = Some(now);
        if let Ok(Some(tick)) = &mut result {
            if let Some(server) = tick.observation.server {
                self.record_server_limits(key, server);
            }
            // An interval that changed nothing keeps the last decision's record, so a steady stack's
            // status stays byte-for-byte the same and costs no status write.
            if !tick.decision.changed()
                && let Some(previous) = entry.status.as_ref().and_then(|s| s.last_decision.clone())
            {
                tick.status.last_decision = Some(previous);
            }
            entry.status = Some(tick.status.clone());
        }
        self.lock().insert(key.to_owned(), entry);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stack_is_due_once_per_interval() {
        let registry = TuningRegistry::new();
        let t0 = Instant::now();
        assert!(registry.is_due("ns/a", Duration::from_secs(30), t0));
        registry.lock().insert(
            "ns/a".into(),
            Entry {
                tuner: StackTuner::new(
                    TuningSpec::new(
                        super::super::spec::PoolBounds { min: 1, max: 10 },
                        super::super::spec::ReplicaBounds { min: 1, max: 2 },
                        super::super::budget::ConnectionBudget {
                            max_connections: 100,
                            reserved: 10,
                            source: Default::default(),
                        },
                    ),
                    Settings {
                        pool_min: 1,
                        pool_max: 5,
                        hpa_min: 1,
                        hpa_max: 2,
                        generation: 4,
                    },
                ),
                last_tick: Some(t0),
                status: None,
                start: None,
            },
        );
        assert!(!registry.is_due("ns/a", Duration::from_secs(30), t0 + Duration::from_secs(29)));
        assert!(registry.is_due("ns/a", Duration::from_secs(30), t0 + Duration::from_secs(30)));
        assert_eq!(registry.settings_in_force("ns/a").map(|s| s.generation), Some(4));
        let spec_values = Settings {
            pool_min: 2,
            pool_max: 8,
            hpa_min: 1,
            hpa_max: 2,
            generation: 1,
        };
        assert!(
            !registry.follow_spec("ns/a", "pool 10".into(), spec_values),
            "first sighting"
        );
        assert_eq!(
            registry.settings_in_force("ns/a").map(|s| s.pool_max),
            Some(5),
            "tuned kept"
        );
        assert!(
            registry.follow_spec("ns/a", "pool 8".into(), spec_values),
            "an edit"
        );
        let s = registry.settings_in_force("ns/a").unwrap();
        assert_eq!(
            (s.pool_max, s.generation),
            (8, 5),
            "spec values at a newer generation"
        );
        registry.forget("ns/a");
        assert_eq!(registry.settings_in_force("ns/a"), None);
    }
}
