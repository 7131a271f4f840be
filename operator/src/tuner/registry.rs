//! The tuners of all stacks, shared by reconciles (the controller's `Context` holds one).
//!
//! A reconcile asks [`TuningRegistry::wants_metrics`] whether to scrape the app pods (its observe
//! step) and then makes its one call, [`TuningRegistry::tune`]: the settings to write in every mode,
//! the budget plan, and the interval's decision when one was due. The controller runs at most one
//! reconcile per stack at a time, so a stack's tuner is taken out of the map while it ticks and put
//! back afterwards.
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use perfstack_contract::tuning::TuningFile;

use super::act::{Mode, TuningReport};
use super::budget::{BudgetPlan, ServerLimits};
use super::effective::effective_settings;
use super::error::TunerError;
use super::from_crd;
use super::spec::{Settings, TuningSpec};
use super::stack::{StackTuner, Tick};
use super::targets::Scraped;
use super::transition::PoolSwaps;
use crate::crd::PerformanceStackSpec;

struct Entry {
    tuner: StackTuner,
    last_tick: Option<Instant>,
    report: Option<TuningReport>,
    /// The spec's starting point the settings in force derive from (see [`TuningRegistry::follow_spec`]).
    start: Option<String>,
}

impl Entry {
    fn new(spec: TuningSpec, settings: Settings) -> Self {
        Self {
            tuner: StackTuner::new(spec, settings),
            last_tick: None,
            report: None,
            start: None,
        }
    }
}

/// Per-stack tuners, keyed by `namespace/name`.
pub struct TuningRegistry {
    origin: Instant,
    stacks: Mutex<HashMap<String, Entry>>,
    /// The database server's limits as each stack's app pods last reported them.
    servers: Mutex<HashMap<String, ServerLimits>>,
    /// Each stack's pool swaps (what was written, the swap under way), in every mode.
    swaps: Mutex<HashMap<String, PoolSwaps>>,
}

impl Default for TuningRegistry {
    fn default() -> Self {
        Self::new()
    }
}

/// What one reconcile knows that the tuner needs.
pub struct TuningRequest<'a> {
    /// The stack's spec now.
    pub spec: &'a PerformanceStackSpec,
    /// The stack's `metadata.generation` (the generation of a file carrying the spec's pool).
    pub generation: i64,
    /// The tuning file text of the live tuning ConfigMap: after an operator restart the pool in
    /// force is picked up from it (mode Auto).
    pub live_file: Option<&'a str>,
    /// The settings in force as the stack's status last reported them (`status.tuning.inForce`):
    /// after an operator restart the HPA bounds the tuner had set (a floor raised during a spike)
    /// are picked up from there rather than restarted from the spec.
    pub recorded: Option<Settings>,
    /// The app pods' answers, when the observe step scraped them (the interval was due), or why
    /// they could not be listed.
    pub app_metrics: Option<Result<&'a Scraped, &'a TunerError>>,
    /// Monotonic time of the reconcile.
    pub now: Instant,
    /// Wall time of the reconcile (for `status.tuning`).
    pub wall: DateTime<Utc>,
}

/// What the interval of this reconcile did.
#[derive(Debug, Clone)]
pub enum IntervalRun {
    /// No interval ran (not due, mode Off, or no API Deployment yet).
    Idle,
    /// The first interval: it only took the baseline.
    Baseline,
    /// The pods could not be listed; the next interval is due one interval later.
    Failed(String),
    /// The interval decided.
    Decided(Box<Tick>),
}

/// The tuner's answer to one reconcile.
#[derive(Debug, Clone)]
pub struct TuningOutcome {
    /// `spec.tuning.mode`.
    pub mode: Mode,
    /// `spec.tuning.intervalSeconds`.
    pub interval: Duration,
    /// Settings to write into the tuning ConfigMap and the HPA: the tuner's in mode Auto, the
    /// spec's otherwise — always within the connection budget.
    pub settings: Settings,
    /// How the spec fits the connection budget (the `ConnectionBudget` condition).
    pub plan: BudgetPlan,
    /// What this reconcile's interval did.
    pub run: IntervalRun,
    /// The last report for `status.tuning`, if an interval ever decided.
    pub report: Option<TuningReport>,
}

impl TuningRegistry {
    /// An empty registry; its creation is the origin of the tuners' clock.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
            stacks: Mutex::new(HashMap::new()),
            servers: Mutex::new(HashMap::new()),
            swaps: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.stacks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_servers(&self) -> MutexGuard<'_, HashMap<String, ServerLimits>> {
        self.servers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_swaps(&self) -> MutexGuard<'_, HashMap<String, PoolSwaps>> {
        self.swaps.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a reconcile of `key` at `now` should scrape the app pods for an interval: tuning is
    /// on and its interval is due.
    pub fn wants_metrics(&self, key: &str, spec: &PerformanceStackSpec, now: Instant) -> bool {
        from_crd::mode(spec) != Mode::Off && self.is_due(key, from_crd::interval(spec), now)
    }

    /// The settings to write for `key`, and the interval's decision when `request` brings the pods'
    /// answers. In order: pick up the pool in force from the live tuning file after a restart; follow
    /// an edit of the spec; clamp into the budget; run the interval; order a pool change around the
    /// swap on the pods ([`PoolSwaps`]).
    pub fn tune(&self, key: &str, request: TuningRequest<'_>) -> TuningOutcome {
        let mode = from_crd::mode(request.spec);
        if mode == Mode::Auto
            && !self.knows(key)
            && let Some(text) = request.live_file
        {
            self.recover(key, request.spec, text, request.recorded);
        }
        let spec = from_crd::tuning_spec_with(request.spec, self.server_limits(key));
        let start = from_crd::spec_settings(request.spec, request.generation);
        let (spec_settings, _) = effective_settings(&spec, start, None, Mode::Off);
        // What the user wrote, not what the pods reported: a first report of an External server's
        // max_connections is no edit (the settings in force are clamped into the new budget instead).
        let fingerprint = format!(
            "{:?} {:?} {:?} {:?}",
            request.spec.pool, spec.replicas, request.spec.database, spec.slo
        );
        if self.follow_spec(key, fingerprint, spec_settings) {
            tracing::info!("spec.pool, replicas or database changed: tuning restarts from the spec");
        }
        let in_force = self.settings_in_force(key);
        let (mut settings, plan) = effective_settings(&spec, start, in_force.as_ref(), mode);
        let run = self.run_interval(key, spec.clone(), settings, mode, &request);
        if let IntervalRun::Decided(tick) = &run
            && tick.act.applied
        {
            settings = tick.decision.settings;
        }
        let seen = request.app_metrics.and_then(Result::ok).map(Scraped::seen);
        let clock = request.now.saturating_duration_since(self.origin);
        let guarded = self
            .lock_swaps()
            .entry(key.to_owned())
            .or_insert_with(|| PoolSwaps::starting_from(live_settings(request.live_file, settings)))
            .guard(&spec, settings, seen, clock);
        if let Some(held) = &guarded.held {
            tracing::info!(%held, "tuning change ordered around the pool swap");
        }
        if let Some(entry) = self.lock().get_mut(key)
            && mode == Mode::Auto
        {
            // What is written is what is in force: the next decision starts from it.
            entry.tuner.tuner.settings = guarded.settings;
        }
        settings = guarded.settings;
        TuningOutcome {
            mode,
            interval: from_crd::interval(request.spec),
            settings,
            plan,
            run,
            report: self.report(key),
        }
    }

    /// After an operator restart: starts `key`'s tuner from the pool found in the live tuning file
    /// (what the pods run) and the HPA bounds the status recorded (`recorded`; the spec's plan
    /// without one), so a restart undoes no decision: a floor raised during a spike stays, and is
    /// lowered only after a whole stabilization window observed again. The budget clamps both on
    /// the way out. An unreadable file leaves the spec's values.
    fn recover(&self, key: &str, spec: &PerformanceStackSpec, text: &str, recorded: Option<Settings>) {
        let file = match TuningFile::parse(text) {
            Ok(file) => file,
            Err(error) => {
                tracing::warn!(%error, "tuning ConfigMap unreadable; starting from spec.pool");
                return;
            }
        };
        let spec = from_crd::tuning_spec_with(spec, self.server_limits(key));
        let plan = spec.budget.plan(spec.replicas, spec.pool);
        let settings = Settings {
            pool_min: file.pool.min_connections,
            pool_max: file.pool.max_connections,
            hpa_min: recorded.map_or(plan.replicas_min, |r| r.hpa_min),
            hpa_max: recorded.map_or(plan.replicas_max, |r| r.hpa_max),
            generation: file.generation,
        };
        tracing::info!(
            generation = file.generation,
            hpa_min = settings.hpa_min,
            hpa_max = settings.hpa_max,
            from_status = recorded.is_some(),
            "tuning picked up from the live ConfigMap and the stack's status"
        );
        self.lock()
            .entry(key.to_owned())
            .or_insert_with(|| Entry::new(spec, settings));
    }

    /// Runs `key`'s interval on the pods' answers the request brings (none: no interval this
    /// time), starting a tuner from `seed` when the stack has none yet.
    fn run_interval(
        &self,
        key: &str,
        spec: TuningSpec,
        seed: Settings,
        mode: Mode,
        request: &TuningRequest<'_>,
    ) -> IntervalRun {
        let Some(scraped) = request.app_metrics else {
            return IntervalRun::Idle;
        };
        let taken = self.lock().remove(key);
        let mut entry = taken.unwrap_or_else(|| Entry::new(spec.clone(), seed));
        entry.tuner.respec(spec);
        entry.last_tick = Some(request.now);
        let clock = request.now.saturating_duration_since(self.origin);
        let run = match scraped {
            Err(error) => IntervalRun::Failed(error.to_string()),
            Ok(scraped) => match entry.tuner.tick(&scraped.answers, mode, clock, request.wall) {
                None => IntervalRun::Baseline,
                Some(mut tick) => {
                    if let Some(server) = tick.observation.server {
                        self.record_server_limits(key, server);
                    }
                    // An interval that changed nothing keeps the last decision's record, so a steady
                    // stack's status stays byte-for-byte the same and costs no status write.
                    if !tick.decision.changed()
                        && let Some(previous) = entry.report.as_ref()
                    {
                        tick.report.last_decision = previous.last_decision.clone();
                    }
                    entry.report = Some(tick.report.clone());
                    IntervalRun::Decided(Box::new(tick))
                }
            },
        };
        self.lock().insert(key.to_owned(), entry);
        run
    }

    /// The settings the tuner put in force for `key`, if it has any.
    pub fn settings_in_force(&self, key: &str) -> Option<Settings> {
        self.lock().get(key).map(|e| e.tuner.tuner.settings)
    }

    /// The last report of `key` for `status.tuning`.
    pub fn report(&self, key: &str) -> Option<TuningReport> {
        self.lock().get(key).and_then(|e| e.report.clone())
    }

    /// Whether the registry holds a tuner for `key` (it does from the first interval on).
    pub fn knows(&self, key: &str) -> bool {
        self.lock().contains_key(key)
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
            let in_force = &mut entry.tuner.tuner.settings;
            let generation = in_force.generation.max(spec_settings.generation) + 1;
            *in_force = Settings {
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
        self.lock_servers().get(key).copied()
    }

    /// Records the database server's limits `key`'s app pods reported (kept until a newer report).
    pub fn record_server_limits(&self, key: &str, limits: ServerLimits) {
        self.lock_servers().insert(key.to_owned(), limits);
    }

    /// Forgets a deleted stack.
    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
        self.lock_servers().remove(key);
        self.lock_swaps().remove(key);
    }

    /// Whether `key`'s next interval is due at `now`.
    pub fn is_due(&self, key: &str, interval: Duration, now: Instant) -> bool {
        self.lock()
            .get(key)
            .and_then(|e| e.last_tick)
            .is_none_or(|last| now.duration_since(last) >= interval)
    }
}

/// What the pods run before this process wrote anything: the live tuning file's pool, with
/// `settings`' HPA bounds (`None` without a readable file: the first write is no swap).
fn live_settings(live_file: Option<&str>, settings: Settings) -> Option<Settings> {
    let file = TuningFile::parse(live_file?).ok()?;
    Some(Settings {
        pool_min: file.pool.min_connections,
        pool_max: file.pool.max_connections,
        generation: file.generation,
        ..settings
    })
}

#[cfg(test)]
mod tests;
