//! The four load shapes (baseline, peak, stress, spike) and the schedule of intended send times
//! they produce. Pure: no clock, no I/O.
use std::time::Duration;

/// A named load shape from the SLO document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// 10 virtual users, 50 requests/s, 5 minutes.
    Baseline,
    /// 100 virtual users, 500 requests/s, 10 minutes.
    Peak,
    /// 200 virtual users, 1000 requests/s, 15 minutes.
    Stress,
    /// 10 users for 2 minutes, a sudden jump to 100 for 1 minute, back to 10 for 2 minutes.
    Spike,
}

/// Requests per second each virtual user is expected to make (baseline: 50 rps over 10 users).
/// The spike scenario is defined in users, so its rate follows its user count.
const RATE_PER_USER: f64 = 5.0;

/// A stretch of constant load: `vus` bound the requests in flight, `rate` is the arrival rate.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    #[serde(serialize_with = "serialize_secs")]
    pub duration: Duration,
    pub vus: u32,
    pub rate: f64,
}

fn serialize_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Scenario {
    /// The stages at full length.
    pub fn stages(self) -> Vec<Stage> {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        let users = |vus: u32, duration| Stage {
            duration,
            vus,
            rate: f64::from(vus) * RATE_PER_USER,
        };
        match self {
            Self::Baseline => vec![stage(minutes(5), 10, 50.0)],
            Self::Peak => vec![stage(minutes(10), 100, 500.0)],
            Self::Stress => vec![stage(minutes(15), 200, 1000.0)],
            Self::Spike => vec![
                users(10, minutes(2)),
                users(100, minutes(1)),
                users(10, minutes(2)),
            ],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Baseline => "baseline",
            Self::Peak => "peak",
            Self::Stress => "stress",
            Self::Spike => "spike",
        }
    }
}

fn stage(duration: Duration, vus: u32, rate: f64) -> Stage {
    Stage { duration, vus, rate }
}

/// `--scale` outside this range is refused: 0 would send nothing, more than 100x is a typo.
pub const SCALE_RANGE: std::ops::RangeInclusive<f64> = 0.0001..=100.0;

/// Where a plan's stages came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Origin {
    /// The scenario's own stages (`--scenario`, `--scale`).
    #[default]
    Scenario,
    /// One constant stage from `--rate` and `--duration` (or one step of a capacity search).
    Rate,
}

/// The stages of a run, durations already multiplied by `--scale`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub scenario: Scenario,
    pub scale: f64,
    pub stages: Vec<Stage>,
    pub origin: Origin,
}

impl Plan {
    /// The plan for `scenario` with every duration multiplied by `scale`.
    pub fn new(scenario: Scenario, scale: f64) -> Option<Self> {
        if !SCALE_RANGE.contains(&scale) {
            return None;
        }
        let stages = scenario
            .stages()
            .into_iter()
            .map(|s| Stage {
                duration: s.duration.mul_f64(scale),
                ..s
            })
            .collect();
        Some(Self {
            scenario,
            scale,
            stages,
            origin: Origin::Scenario,
        })
    }

    /// One stage at `rate` requests per second for `duration`, with the scenarios' ratio of
    /// virtual users to rate (5 requests per second each, at least one). The mix is the same as
    /// `scenario`'s: every scenario sends the same mix, only the rates differ.
    pub fn constant(scenario: Scenario, rate: f64, duration: Duration) -> Self {
        let vus = (rate / RATE_PER_USER).ceil().clamp(1.0, f64::from(u32::MAX)) as u32;
        Self {
            scenario,
            scale: 1.0,
            stages: vec![Stage { duration, vus, rate }],
            origin: Origin::Rate,
        }
    }

    /// Names the report files: the scenario's name, or `rate` for a constant-rate run.
    pub fn name(&self) -> &'static str {
        match self.origin {
            Origin::Scenario => self.scenario.name(),
            Origin::Rate => "rate",
        }
    }

    /// When the last request of the schedule is meant to leave, from the start.
    pub fn last_send_at(&self) -> Duration {
        self.schedule().last().map_or(Duration::ZERO, |slot| slot.at)
    }

    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// The average rate the schedule sends at: planned requests over the planned duration.
    pub fn planned_rate(&self) -> f64 {
        let seconds = self.duration().as_secs_f64();
        if seconds > 0.0 {
            self.planned_requests() as f64 / seconds
        } else {
            0.0
        }
    }

    /// Most virtual users any stage asks for.
    pub fn max_vus(&self) -> u32 {
        self.stages.iter().map(|s| s.vus).max().unwrap_or(1)
    }

    /// Requests the schedule will send.
    pub fn planned_requests(&self) -> u64 {
        self.stages.iter().map(stage_requests).sum()
    }

    /// The stage in force at `offset` from the start (the last one after the end).
    pub fn stage_at(&self, offset: Duration) -> Option<(usize, &Stage)> {
        let mut start = Duration::ZERO;
        for (i, s) in self.stages.iter().enumerate() {
            start += s.duration;
            if offset < start {
                return Some((i, s));
            }
        }
        self.stages.iter().enumerate().next_back()
    }

    /// Intended send times, evenly spaced at each stage's rate (open model: they do not depend on
    /// how fast the server answers).
    pub fn schedule(&self) -> Schedule<'_> {
        Schedule {
            plan: self,
            stage: 0,
            index: 0,
            stage_start: Duration::ZERO,
        }
    }
}

fn stage_requests(s: &Stage) -> u64 {
    // Truncation is the intent: a partial interval at the end of a stage sends nothing.
    (s.duration.as_secs_f64() * s.rate).floor() as u64
}

/// One planned request: when it should leave, and under which stage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slot {
    pub at: Duration,
    pub stage: usize,
}

/// Iterator over [`Slot`]s in time order.
#[derive(Debug)]
pub struct Schedule<'a> {
    plan: &'a Plan,
    stage: usize,
    index: u64,
    stage_start: Duration,
}

impl Iterator for Schedule<'_> {
    type Item = Slot;

    fn next(&mut self) -> Option<Slot> {
        loop {
            let stage = self.plan.stages.get(self.stage)?;
            if self.index < stage_requests(stage) {
                let at = self.stage_start + Duration::from_secs_f64(self.index as f64 / stage.rate);
                self.index += 1;
                return Some(Slot {
                    at,
                    stage: self.stage,
                });
            }
            self.stage_start += stage.duration;
            self.stage += 1;
            self.index = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_sends_50_per_second_for_5_minutes() {
        let plan = Plan::new(Scenario::Baseline, 1.0).unwrap();
        assert_eq!(plan.duration(), Duration::from_secs(300));
        assert_eq!(plan.planned_requests(), 15_000);
        assert_eq!(plan.max_vus(), 10);
        assert_eq!(plan.planned_rate(), 50.0);
    }

    #[test]
    fn scale_shortens_durations_not_rates() {
        let plan = Plan::new(Scenario::Stress, 0.01).unwrap();
        assert_eq!(plan.duration(), Duration::from_secs(9));
        assert_eq!(plan.planned_requests(), 9_000);
        assert_eq!(plan.stages[0].rate, 1000.0);
    }

    #[test]
    fn spike_jumps_to_100_users_and_back() {
        let plan = Plan::new(Scenario::Spike, 1.0).unwrap();
        let vus: Vec<u32> = plan.stages.iter().map(|s| s.vus).collect();
        assert_eq!(vus, [10, 100, 10]);
        // 2 min at 50 rps, 1 min at 500, 2 min at 50: 42,000 requests in 5 minutes
        assert_eq!(plan.planned_rate(), 140.0);
        assert_eq!(plan.duration(), Duration::from_secs(300));
        let (i, s) = plan.stage_at(Duration::from_secs(150)).unwrap();
        assert_eq!((i, s.vus), (1, 100));
        assert_eq!(plan.stage_at(Duration::from_secs(999)).unwrap().0, 2);
    }

    #[test]
    fn schedule_is_evenly_spaced_and_follows_stages() {
        let plan = Plan::new(Scenario::Spike, 0.01).unwrap(); // 1.2 s, 0.6 s, 1.2 s
        let slots: Vec<Slot> = plan.schedule().collect();
        assert_eq!(slots.len() as u64, plan.planned_requests());
        assert_eq!(slots.len(), 60 + 300 + 60);
        assert_eq!(slots[1].at - slots[0].at, Duration::from_millis(20));
        assert_eq!(slots[60].stage, 1);
        assert_eq!(slots[60].at, Duration::from_millis(1200));
        assert_eq!(slots[61].at - slots[60].at, Duration::from_millis(2));
        assert!(slots.windows(2).all(|w| w[0].at <= w[1].at));
    }

    #[test]
    fn a_constant_rate_has_one_stage_and_users_for_it() {
        let plan = Plan::constant(Scenario::Peak, 2000.0, Duration::from_secs(30));
        assert_eq!(plan.stages.len(), 1);
        assert_eq!(plan.planned_requests(), 60_000);
        assert_eq!(plan.max_vus(), 400);
        assert_eq!(plan.name(), "rate");
        assert_eq!(plan.planned_rate(), 2000.0);
        assert_eq!(
            Plan::constant(Scenario::Peak, 0.5, Duration::from_secs(4)).max_vus(),
            1
        );
        let last = Plan::constant(Scenario::Peak, 10.0, Duration::from_secs(2)).last_send_at();
        assert_eq!(last, Duration::from_millis(1900));
    }

    #[test]
    fn scale_out_of_range_is_refused() {
        assert!(Plan::new(Scenario::Peak, 0.0).is_none());
        assert!(Plan::new(Scenario::Peak, f64::NAN).is_none());
        assert!(Plan::new(Scenario::Peak, 1000.0).is_none());
    }
}
