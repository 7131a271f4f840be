//! A queueing model of the app pods and the database, driving [`Tuner`] through load scenarios.
//!
//! Each pod is an M/M/1 CPU stage (`APP_RPS_PER_POD` capacity) followed by an M/M/c pool stage:
//! `c` = the pool maximum in force, each request holding a connection for the database's service
//! time. The database serves `DB_CORES` connections at full speed and slows down in proportion
//! beyond (processor sharing), which feeds back into the hold time (solved as a fixed point).
//! Latency quantiles combine both stages; a saturated stage answers at its timeout with errors.
//! Pods start and apply a new tuning generation within one interval.
use std::time::Duration;

pub mod cluster;

use super::decide::Tuner;
use super::observe::{Observation, PodCounts, PoolObservation};
use super::spec::Settings;

/// Requests per second one virtual user sends.
pub const RPS_PER_USER: f64 = 10.0;
/// Requests per second one pod's CPU serves.
const APP_RPS_PER_POD: f64 = 400.0;
/// Seconds each request holds a database connection when the database is not saturated.
const DB_HOLD: f64 = 0.020;
/// Connections the database serves in parallel at full speed (see [`Model`]).
const DB_CORES: f64 = 32.0;

/// The parts of the model a scenario may change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Model {
    /// Connections the database serves in parallel at full speed.
    pub db_cores: f64,
}

impl Default for Model {
    fn default() -> Self {
        Self { db_cores: DB_CORES }
    }
}
/// What a request waits at most for a connection / for a saturated pod.
const ACQUIRE_TIMEOUT: f64 = 3.0;
const REQUEST_TIMEOUT: f64 = 5.0;
/// Network and framework time every request pays.
const BASE: f64 = 0.002;

/// The default model's answer for one interval at a constant load.
pub fn observe(users: f64, replicas: u32, pool: u32, generations: (u64, u64), seconds: f64) -> Observation {
    Model::default().observe(users, replicas, pool, generations, seconds)
}

impl Model {
    /// The model's answer for one interval at a constant load.
    pub fn observe(
        &self,
        users: f64,
        replicas: u32,
        pool: u32,
        generations: (u64, u64),
        seconds: f64,
    ) -> Observation {
        let pods = replicas.max(1);
        let n = f64::from(pods);
        let c = f64::from(pool.max(1));
        let offered = users * RPS_PER_USER;
        let per_pod = offered / n;
        let app_served = per_pod.min(APP_RPS_PER_POD * 0.999);
        let app_errors = (per_pod - app_served) / per_pod.max(f64::MIN_POSITIVE);
        // Connection hold time under database contention: fixed point of s = s0 * max(1, A / cores).
        let mut hold = DB_HOLD;
        for _ in 0..60 {
            let busy = n * (app_served * hold).min(c);
            hold = 0.5 * hold + 0.5 * DB_HOLD * (busy / self.db_cores).max(1.0);
        }
        let erlangs = app_served * hold;
        let (pool_p95, pool_p99, acquire_p95, waiting, pool_errors) = if erlangs < c * 0.999 {
            let mu = 1.0 / hold;
            let wait_prob = erlang_c(c, erlangs);
            let theta = c * mu - app_served;
            let tail = |t: f64| section_tail(wait_prob, theta, mu, t);
            let acquire = if wait_prob > 0.05 {
                (wait_prob / 0.05).ln() / theta
            } else {
                0.0
            };
            (
                quantile(tail, 0.95),
                quantile(tail, 0.99),
                acquire,
                wait_prob * erlangs / (c - erlangs),
                0.0,
            )
        } else {
            let shed = 1.0 - c / erlangs;
            (
                ACQUIRE_TIMEOUT + hold,
                ACQUIRE_TIMEOUT + hold,
                ACQUIRE_TIMEOUT,
                app_served * shed * ACQUIRE_TIMEOUT,
                shed,
            )
        };
        let app_tail = |q: f64| {
            if app_errors > 0.0 {
                REQUEST_TIMEOUT
            } else {
                -(1.0 - q).ln() / (APP_RPS_PER_POD - app_served)
            }
        };
        let p95 = (BASE + app_tail(0.95) + pool_p95).min(REQUEST_TIMEOUT);
        let p99 = (BASE + app_tail(0.99) + pool_p99).min(REQUEST_TIMEOUT);
        let error_rate = 1.0 - (1.0 - app_errors) * (1.0 - pool_errors);
        let in_use = erlangs.min(c);
        Observation {
            seconds,
            pods: PodCounts {
                asked: pods,
                answered: pods,
                ..PodCounts::default()
            },
            p95: (offered > 0.0).then_some(p95),
            p99: (offered > 0.0).then_some(p99),
            requests_per_second: offered,
            error_rate: if offered > 0.0 { error_rate } else { 0.0 },
            pool: PoolObservation {
                in_use: in_use * n,
                idle: (c - in_use) * n,
                max: c * n,
                peak_in_use_per_pod: in_use,
                waiting: waiting * n,
                acquire_p95: (offered > 0.0).then_some(acquire_p95),
                acquire_timeouts: pool_errors * app_served * n * seconds,
            },
            generation_lowest: generations.0,
            generation_highest: generations.1,
            server: None,
        }
    }
}

/// Erlang C: probability that an arrival waits, `c` servers, `a` Erlangs offered (a < c).
fn erlang_c(c: f64, a: f64) -> f64 {
    let mut b = 1.0;
    let servers = c.round() as u32;
    for k in 1..=servers {
        b = a * b / (f64::from(k) + a * b);
    }
    c * b / (c - a * (1.0 - b))
}

/// P(wait + service > t): wait is 0 with probability 1 - `p_wait`, else Exp(`theta`);
/// service is Exp(`mu`).
fn section_tail(p_wait: f64, theta: f64, mu: f64, t: f64) -> f64 {
    let service = (-mu * t).exp();
    let both = if (theta - mu).abs() < 1e-9 {
        (1.0 + mu * t) * service
    } else {
        (mu * (-theta * t).exp() - theta * service) / (mu - theta)
    };
    (1.0 - p_wait) * service + p_wait * both
}

/// Smallest t with tail(t) <= 1 - q, by bisection.
fn quantile(tail: impl Fn(f64) -> f64, q: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, REQUEST_TIMEOUT);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if tail(mid) > 1.0 - q { lo = mid } else { hi = mid }
    }
    hi
}

/// One simulated interval, as recorded for the assertions.
#[derive(Debug, Clone)]
pub struct Step {
    /// End of the interval.
    pub at: Duration,
    /// Users during the interval.
    pub users: f64,
    /// Replicas and pool that served it.
    pub replicas: u32,
    pub pool: u32,
    /// What the pods saw.
    pub observation: Observation,
    /// Settings decided at its end.
    pub settings: Settings,
    /// The decision's reason.
    pub reason: String,
}

/// Runs `load` (users per interval) through the model and the tuner. The HPA's CPU metric is
/// not modelled: replicas follow the floor the tuner sets (the worst case for the floor).
pub fn run(tuner: &mut Tuner, load: &[f64], interval: Duration) -> Vec<Step> {
    run_on(&Model::default(), tuner, load, interval)
}

/// [`run`] on a given model.
pub fn run_on(model: &Model, tuner: &mut Tuner, load: &[f64], interval: Duration) -> Vec<Step> {
    let mut steps = Vec::with_capacity(load.len());
    let mut applied_generation = tuner.settings.generation;
    for (k, &users) in load.iter().enumerate() {
        let settings = tuner.settings;
        let replicas = settings.hpa_min.min(settings.hpa_max);
        let generations = (applied_generation, settings.generation);
        applied_generation = settings.generation;
        let observation = model.observe(
            users,
            replicas,
            settings.pool_max,
            generations,
            interval.as_secs_f64(),
        );
        let at = interval * (u32::try_from(k).unwrap_or(u32::MAX) + 1);
        let decision = tuner.step(&observation, at);
        steps.push(Step {
            at,
            users,
            replicas,
            pool: settings.pool_max,
            observation,
            settings: decision.settings,
            reason: decision.reason,
        });
    }
    steps
}

#[cfg(test)]
mod tests;
