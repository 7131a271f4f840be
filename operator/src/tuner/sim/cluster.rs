//! The API pods as the cluster runs them, second by second, to check the connection budget at every
//! moment rather than at rest: an HPA that follows the load within the tuner's bounds (scale-down
//! limited as the operator writes it, but the ceiling applied at once), a Deployment that rolls out
//! a new revision with the operator's surge and `minReadySeconds`, pods that terminate for the grace
//! period holding their pools, and pools that each pod swaps when it reads a new tuning file (up to
//! a minute after it was written), keeping the old one open for the app's drain limit. Every pool is
//! counted full: the worst case.
use std::time::Duration;

use super::super::budget::{TERMINATION_GRACE_SECONDS, surge};
use super::super::decide::Tuner;
use super::super::spec::Settings;
use super::super::transition::{PodsSeen, PoolSwaps, REPLACED_POOL_DRAIN};
use super::{Model, RPS_PER_USER};

/// The step of the model.
pub const TICK: Duration = Duration::from_secs(5);
/// Requests per second a pod serves at the HPA's CPU target.
const RPS_PER_POD_AT_TARGET: f64 = 240.0;
/// From a pod's creation to Ready.
const STARTUP: Duration = Duration::from_secs(10);
/// The HPA's sync period.
const HPA_SYNC: Duration = Duration::from_secs(15);
/// How long a terminating app pod keeps its pools (its shutdown grace, within the pod's).
const SHUTDOWN: Duration = Duration::from_secs(25);
/// When a run starts: the first pods have been up for a minute.
const START: Duration = Duration::from_secs(60);

/// One pool of one pod.
#[derive(Debug, Clone, Copy)]
struct Pool {
    max: u32,
    /// When a replaced pool is closed at the latest.
    closes_at: Option<Duration>,
}

/// One API pod.
#[derive(Debug, Clone)]
struct Pod {
    revision: u32,
    /// When it becomes Ready (and, `minReadySeconds` later, available).
    ready_at: Duration,
    /// When it stops holding anything (terminating pods only).
    gone_at: Option<Duration>,
    /// The tuning generation it runs.
    generation: u64,
    pools: Vec<Pool>,
    /// How long this pod takes to see a new tuning file (the kubelet's refresh).
    file_delay: Duration,
}

impl Pod {
    fn available(&self, now: Duration) -> bool {
        self.gone_at.is_none() && now >= self.ready_at + grace()
    }

    fn ready(&self, now: Duration) -> bool {
        self.gone_at.is_none() && now >= self.ready_at
    }

    /// Connections it may hold at `now`: every pool still open, full.
    fn connections(&self, now: Duration) -> u32 {
        self.pools
            .iter()
            .filter(|p| p.closes_at.is_none_or(|t| now < t))
            .map(|p| p.max)
            .sum()
    }
}

fn grace() -> Duration {
    Duration::from_secs(u64::from(TERMINATION_GRACE_SECONDS))
}

/// One moment of the run, for the assertions.
#[derive(Debug, Clone)]
pub struct Moment {
    /// Time.
    pub at: Duration,
    /// Connections every alive pod may hold, all pools full.
    pub connections: u32,
    /// Pods alive (terminating ones included).
    pub pods: u32,
    /// Pods of the new revision, and all active ones.
    pub rolled: (u32, u32),
    /// The settings written.
    pub settings: Settings,
    /// p95 of the last interval, seconds.
    pub p95: Option<f64>,
}

/// The cluster around one stack's API pods.
pub struct Cluster {
    pods: Vec<Pod>,
    next_pod: u64,
    revision: u32,
    replicas: u32,
    /// The tuning file written: generation, pool, when.
    file: (u64, u32, Duration),
    settings: Settings,
    last_scale_down: Duration,
}

impl Cluster {
    /// `settings.hpa_min` pods of revision 1 running `settings`' pool.
    pub fn new(settings: Settings) -> Self {
        let mut cluster = Self {
            pods: Vec::new(),
            next_pod: 0,
            revision: 1,
            replicas: settings.hpa_min,
            file: (settings.generation, settings.pool_max, Duration::ZERO),
            settings,
            last_scale_down: Duration::ZERO,
        };
        for _ in 0..settings.hpa_min {
            cluster.create(Duration::ZERO);
        }
        // Running for a while already: Ready and available when the run starts (at `START`).
        cluster.pods.iter_mut().for_each(|p| p.ready_at = Duration::ZERO);
        cluster
    }

    fn create(&mut self, now: Duration) {
        self.next_pod += 1;
        let (generation, pool, _) = self.file;
        self.pods.push(Pod {
            revision: self.revision,
            ready_at: now + STARTUP,
            gone_at: None,
            generation,
            pools: vec![Pool {
                max: pool,
                closes_at: None,
            }],
            file_delay: Duration::from_secs((self.next_pod * 17) % 61),
        });
    }

    fn active(&self) -> impl Iterator<Item = &Pod> {
        self.pods.iter().filter(|p| p.gone_at.is_none())
    }

    /// Starts a rolling update (a new revision of the pod template).
    pub fn roll_out(&mut self) {
        self.revision += 1;
    }

    /// Writes `settings`: the HPA bounds at once, the tuning file for the pods to read.
    fn write(&mut self, settings: Settings, now: Duration) {
        if settings.generation != self.file.0 {
            self.file = (settings.generation, settings.pool_max, now);
        }
        self.settings = settings;
    }

    /// Advances one tick at `now` under `rps` of load.
    fn tick(&mut self, rps: f64, now: Duration) {
        self.pods.retain(|p| p.gone_at.is_none_or(|t| now < t));
        let (generation, pool, written) = self.file;
        for pod in self.pods.iter_mut().filter(|p| p.gone_at.is_none()) {
            if pod.generation != generation && now >= written + pod.file_delay {
                for old in &mut pod.pools {
                    old.closes_at.get_or_insert(now + REPLACED_POOL_DRAIN);
                }
                pod.pools.push(Pool {
                    max: pool,
                    closes_at: None,
                });
                pod.generation = generation;
            }
        }
        if now.as_secs().is_multiple_of(HPA_SYNC.as_secs()) {
            self.autoscale(rps, now);
        }
        self.deploy(now);
    }

    /// The HPA: the ceiling at once, scale-up at once, scale-down at most a surge per grace period.
    fn autoscale(&mut self, rps: f64, now: Duration) {
        let Settings { hpa_min, hpa_max, .. } = self.settings;
        let wanted = ((rps / RPS_PER_POD_AT_TARGET).ceil() as u32).clamp(hpa_min, hpa_max);
        self.replicas = if self.replicas > hpa_max {
            hpa_max
        } else if wanted >= self.replicas {
            wanted
        } else if now >= self.last_scale_down + grace() {
            self.last_scale_down = now;
            wanted.max(self.replicas.saturating_sub(surge(hpa_max).max(1)))
        } else {
            self.replicas
        }
        .max(hpa_min);
    }

    /// The Deployment controller: scale, and roll out with maxSurge 25 %, maxUnavailable 0.
    fn deploy(&mut self, now: Duration) {
        let replicas = self.replicas;
        let limit = replicas + surge(replicas);
        let new = self.active().filter(|p| p.revision == self.revision).count() as u32;
        let active = self.active().count() as u32;
        for _ in 0..replicas.saturating_sub(new).min(limit.saturating_sub(active)) {
            self.create(now);
        }
        // Old pods go once enough new ones are available; extra pods go at once.
        let available = self.active().filter(|p| p.available(now)).count() as u32;
        let mut removable = available.saturating_sub(replicas);
        let revision = self.revision;
        let mut order: Vec<usize> = (0..self.pods.len()).collect();
        order.sort_by_key(|&i| {
            (
                self.pods[i].revision == revision,
                std::cmp::Reverse(self.pods[i].ready_at),
            )
        });
        for i in order {
            let pod = &mut self.pods[i];
            if removable == 0 || pod.gone_at.is_some() || !pod.available(now) {
                continue;
            }
            pod.gone_at = Some(now + SHUTDOWN);
            removable -= 1;
        }
    }

    /// What the tuner sees of the pods: alive, and the generation all of them run.
    fn seen(&self) -> PodsSeen {
        PodsSeen {
            alive: self.pods.len() as u32,
            generation: self.pods.iter().map(|p| p.generation).min(),
        }
    }

    fn moment(&self, now: Duration, p95: Option<f64>) -> Moment {
        Moment {
            at: now,
            connections: self.pods.iter().map(|p| p.connections(now)).sum(),
            pods: self.pods.len() as u32,
            rolled: (
                self.active().filter(|p| p.revision == self.revision).count() as u32,
                self.active().count() as u32,
            ),
            settings: self.settings,
            p95,
        }
    }
}

/// Runs `load` (users per interval of `interval`) through the cluster and the tuner, with the pool
/// swaps ordered by `swaps` (none: the settings are written as decided), rolling out a new revision
/// at the start of interval `roll_at`. Returns every tick.
pub fn run(
    tuner: &mut Tuner,
    mut swaps: Option<PoolSwaps>,
    load: &[f64],
    interval: Duration,
    roll_at: usize,
) -> Vec<Moment> {
    let model = Model::default();
    let mut cluster = Cluster::new(tuner.settings);
    let mut moments = Vec::new();
    let mut now = START;
    let mut p95 = None;
    for (k, &users) in load.iter().enumerate() {
        if k == roll_at {
            cluster.roll_out();
        }
        let rps = users * RPS_PER_USER;
        let end = now + interval;
        while now < end {
            now += TICK;
            cluster.tick(rps, now);
            moments.push(cluster.moment(now, p95));
        }
        let ready = cluster.pods.iter().filter(|p| p.ready(now)).count() as u32;
        let generations = (cluster.seen().generation.unwrap_or(0), tuner.settings.generation);
        let observation = model.observe(users, ready, cluster.file.1, generations, interval.as_secs_f64());
        p95 = observation.p95;
        let decided = tuner.step(&observation, now).settings;
        let written = match swaps.as_mut() {
            Some(swaps) => {
                swaps
                    .guard(&tuner.spec, decided, Some(cluster.seen()), now)
                    .settings
            }
            None => decided,
        };
        tuner.settings = written;
        cluster.write(written, now);
    }
    moments
}

#[cfg(test)]
mod tests;
