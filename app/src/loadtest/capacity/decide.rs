//! The capacity search's decisions, apart from the driver that measures: which rates to try, whether
//! a step held the SLO, the knee, and which resource saturated. Pure: figures in, decisions out.
use crate::loadtest::verdict::{Check, Measured, Thresholds};

/// The rates a search climbs: `start`, then times `factor` each step, the last one capped at `max`;
/// once a step breaks, up to `refine` more steps halve the gap between the knee and the lowest
/// broken rate, so the knee is known to within `factor / 2^refine` rather than to `factor`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ladder {
    pub start: f64,
    pub factor: f64,
    pub max: f64,
    pub refine: u32,
}

/// Refinement stops once the gap between the knee and the lowest broken rate is below this share
/// of the knee: closer rates are not told apart by one step's noise.
pub const REFINE_MIN_GAP: f64 = 0.02;

impl Ladder {
    /// The rate after `rate`, or `None` once `max` has been tried. Rates are rounded to 0.1 rps
    /// so reports read cleanly.
    pub fn next(&self, rate: f64) -> Option<f64> {
        if rate >= self.max || self.factor <= 1.0 {
            return None;
        }
        let next = ((rate * self.factor * 10.0).round() / 10.0).max(rate + 0.1);
        Some(next.min(self.max))
    }

    /// The rate of the step after `steps` (`(rate, held)` in the order they ran), or `None` when
    /// the search is over: climbing while every step held; after a break, the midpoint between
    /// the knee and the lowest broken rate, `refine` times at most and while that gap is at least
    /// [`REFINE_MIN_GAP`] of the knee.
    pub fn after(&self, steps: &[(f64, bool)]) -> Option<f64> {
        let first_break = steps.iter().position(|(_, held)| !held);
        let Some(first_break) = first_break else {
            return steps
                .last()
                .map_or(Some(self.start), |(rate, _)| self.next(*rate));
        };
        let refined = steps.len() - first_break - 1;
        let (low, high) = (knee(steps)?, lowest_broken(steps)?);
        if refined >= self.refine as usize || high - low < low * REFINE_MIN_GAP {
            return None;
        }
        Some(((low + high) * 5.0).round() / 10.0)
    }
}

fn lowest_broken(steps: &[(f64, bool)]) -> Option<f64> {
    steps
        .iter()
        .filter(|(_, held)| !held)
        .map(|(rate, _)| *rate)
        .reduce(f64::min)
}

/// What one step measured: the client's own figures and the signs read from the API and from this
/// process.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepFigures {
    /// The rate the step planned to send.
    pub offered_rps: f64,
    /// Answered requests per second over the step: over its planned length, or until the last
    /// answer when that came later.
    pub achieved_rps: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub error_pct: f64,
    /// How far behind its schedule the last request left, in percent of the step's length.
    pub send_behind_pct: f64,
    /// Requests that found every virtual user busy.
    pub vu_waits: u64,
    pub signs: Signs,
}

/// Saturation signs over a step; `None` where the figure could not be read.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Signs {
    /// Most operations seen waiting for a pool connection (`perfstack_db_pool_waiting`).
    pub pool_waiting_max: Option<f64>,
    /// The pool's maximum size in force.
    pub pool_max: Option<f64>,
    /// Acquires that timed out or were shed during the step.
    pub pool_refused: Option<f64>,
    /// Mean time of a database operation over the step, in milliseconds.
    pub db_mean_ms: Option<f64>,
    /// Cores the API process used (`perfstack_process_cpu_seconds_total` over the step).
    pub app_cores: Option<f64>,
    /// Cores the load tester itself used.
    pub generator_cores: Option<f64>,
    /// Cores of the machine the load tester runs on (the app is assumed beside it).
    pub machine_cores: f64,
}

/// The SLO one step is judged by: latency and errors from `--max-p95-ms`, `--max-p99-ms`,
/// `--max-error-pct`, and the achieved rate within `max_rate_gap_pct` of the offered one.
pub fn judge(slo: &Thresholds, max_rate_gap_pct: f64, f: &StepFigures) -> Vec<Check> {
    let step = Thresholds {
        min_rps: 0.0,
        min_plan_pct: 100.0 - max_rate_gap_pct,
        ..slo.clone()
    };
    step.check(&Measured {
        p95_ms: f.p95_ms,
        p99_ms: f.p99_ms,
        error_pct: f.error_pct,
        rps: f.achieved_rps,
        planned_rps: f.offered_rps,
    })
}

/// The resource that gave out when a step broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Resource {
    /// Requests waited for pool connections (or were refused one) while queries stayed fast.
    DatabasePool,
    /// Queries themselves slowed down: PostgreSQL is the bottleneck the pool waits on.
    Postgresql,
    /// The machine's CPU was busy, mostly with the API process.
    AppCpu,
    /// The load tester could not send at the offered rate (its own CPU, or it fell behind).
    LoadGenerator,
    /// The SLO broke without a sign the tester can see.
    Unknown,
}

/// Share of the machine's cores counted as "busy".
const BUSY_CPU: f64 = 0.9;
/// Mean query time this many times the first step's: the database itself slowed down.
const DB_SLOWDOWN: f64 = 3.0;

/// Names what saturated on a broken step, given the first step's figures as the unloaded
/// reference. The order is the order of evidence: a refused or deep pool queue is direct, CPU
/// next, then a sender that fell behind with free virtual users.
pub fn saturated(broken: &StepFigures, first: &StepFigures, max_rate_gap_pct: f64) -> Resource {
    let s = &broken.signs;
    let queue_deep = matches!((s.pool_waiting_max, s.pool_max), (Some(w), Some(m)) if w >= m.max(1.0));
    if s.pool_refused.is_some_and(|r| r > 0.0) || queue_deep {
        let slowed = matches!(
            (s.db_mean_ms, first.signs.db_mean_ms),
            (Some(now), Some(then)) if then > 0.0 && now >= then * DB_SLOWDOWN
        );
        return if slowed {
            Resource::Postgresql
        } else {
            Resource::DatabasePool
        };
    }
    let app = s.app_cores.unwrap_or(0.0);
    let generator = s.generator_cores.unwrap_or(0.0);
    if s.machine_cores > 0.0 && app + generator >= BUSY_CPU * s.machine_cores {
        return if app >= generator {
            Resource::AppCpu
        } else {
            Resource::LoadGenerator
        };
    }
    if broken.send_behind_pct > max_rate_gap_pct && broken.vu_waits == 0 {
        return Resource::LoadGenerator;
    }
    Resource::Unknown
}

/// Why a search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Stopped {
    /// A step broke the SLO.
    SloBroken,
    /// Every rate up to `--max-rate` held: the knee is at or above it.
    MaxRate,
    /// Ctrl-C / SIGTERM.
    Interrupted,
}

/// The highest rate that held below every broken one (`None`: nothing held below the lowest
/// broken rate, e.g. the first step broke). A rate that held above a broken one (noise between
/// steps) does not count.
pub fn knee(steps: &[(f64, bool)]) -> Option<f64> {
    let ceiling = lowest_broken(steps).unwrap_or(f64::INFINITY);
    steps
        .iter()
        .filter(|(rate, held)| *held && *rate < ceiling)
        .map(|(rate, _)| *rate)
        .reduce(f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slo() -> Thresholds {
        Thresholds::default()
    }

    fn healthy(rate: f64) -> StepFigures {
        StepFigures {
            offered_rps: rate,
            achieved_rps: rate * 0.99,
            p95_ms: 8.0,
            p99_ms: 20.0,
            error_pct: 0.0,
            send_behind_pct: 0.0,
            vu_waits: 0,
            signs: Signs {
                pool_waiting_max: Some(0.0),
                pool_max: Some(10.0),
                pool_refused: Some(0.0),
                db_mean_ms: Some(0.4),
                app_cores: Some(0.3),
                generator_cores: Some(0.2),
                machine_cores: 2.0,
            },
        }
    }

    /// What a search blames for `broken` after a healthy first step at 100 rps (5 % rate gap).
    fn blamed(broken: &StepFigures) -> Resource {
        saturated(broken, &healthy(100.0), 5.0)
    }

    #[test]
    fn the_ladder_multiplies_and_stops_at_the_max() {
        let ladder = Ladder {
            start: 100.0,
            factor: 1.5,
            max: 400.0,
            refine: 0,
        };
        let mut rates = vec![ladder.start];
        while let Some(next) = ladder.next(*rates.last().unwrap()) {
            rates.push(next);
        }
        assert_eq!(rates, [100.0, 150.0, 225.0, 337.5, 400.0]);
        let flat = Ladder { max: 100.0, ..ladder };
        assert_eq!(flat.next(100.0), None);
        // A tiny factor still climbs.
        let slow = Ladder {
            factor: 1.0001,
            ..ladder
        };
        assert_eq!(slow.next(1.0), Some(1.1));
    }

    #[test]
    fn a_step_holds_within_the_slo_and_the_rate_gap() {
        let passed = |f: &StepFigures| judge(&slo(), 5.0, f).iter().all(|c| c.passed);
        assert!(passed(&healthy(2000.0)));
        // The 100 rps floor of plain runs does not apply to a step: 20 rps can hold.
        assert!(passed(&healthy(20.0)));
        let failing = |f: StepFigures| -> Vec<&'static str> {
            judge(&slo(), 5.0, &f)
                .into_iter()
                .filter(|c| !c.passed)
                .map(|c| c.name)
                .collect()
        };
        let base = healthy(1000.0);
        assert_eq!(
            failing(StepFigures {
                p95_ms: 250.0,
                ..base
            }),
            ["p95"]
        );
        assert_eq!(
            failing(StepFigures {
                p99_ms: 500.0,
                ..base
            }),
            ["p99"]
        );
        assert_eq!(
            failing(StepFigures {
                error_pct: 1.2,
                ..base
            }),
            ["errorRate"]
        );
        assert_eq!(
            failing(StepFigures {
                achieved_rps: 940.0,
                ..base
            }),
            ["throughput"]
        );
        assert!(
            failing(StepFigures {
                achieved_rps: 960.0,
                ..base
            })
            .is_empty()
        );
    }

    #[test]
    fn the_knee_is_the_last_rate_before_the_first_break() {
        assert_eq!(knee(&[(100.0, true), (150.0, true), (225.0, false)]), Some(150.0));
        assert_eq!(knee(&[(100.0, false)]), None);
        assert_eq!(knee(&[(100.0, true), (150.0, true)]), Some(150.0));
        assert_eq!(knee(&[]), None);
        // A later step that happened to hold does not move the knee past a break.
        assert_eq!(knee(&[(100.0, true), (150.0, false), (225.0, true)]), Some(100.0));
    }

    #[test]
    fn the_knee_counts_refined_steps_below_the_lowest_break() {
        // 1,908 held, 2,384 broke; 2,146 held, 2,265 broke: the knee is 2,146.
        let steps = [(1907.5, true), (2384.4, false), (2146.0, true), (2265.2, false)];
        assert_eq!(knee(&steps), Some(2146.0));
        // A midpoint that broke lowers the ceiling: a rate above it does not count.
        assert_eq!(
            knee(&[(100.0, true), (200.0, false), (150.0, false)]),
            Some(100.0)
        );
    }

    #[test]
    fn after_a_break_the_search_halves_the_gap_refine_times() {
        let ladder = Ladder {
            start: 1000.0,
            factor: 1.25,
            max: 4000.0,
            refine: 2,
        };
        assert_eq!(ladder.after(&[]), Some(1000.0));
        assert_eq!(ladder.after(&[(1000.0, true)]), Some(1250.0));
        let mut steps = vec![(1000.0, true), (1250.0, false)];
        assert_eq!(ladder.after(&steps), Some(1125.0), "the midpoint");
        steps.push((1125.0, true));
        assert_eq!(ladder.after(&steps), Some(1187.5), "above a midpoint that held");
        steps.push((1187.5, false));
        assert_eq!(ladder.after(&steps), None, "refine steps spent");
        assert_eq!(knee(&steps), Some(1125.0));

        let broke_low = [(1000.0, true), (1250.0, false), (1125.0, false)];
        assert_eq!(
            ladder.after(&broke_low),
            Some(1062.5),
            "below a midpoint that broke"
        );

        let plain = Ladder { refine: 0, ..ladder };
        assert_eq!(plain.after(&[(1000.0, true), (1250.0, false)]), None);
        // Nothing held: there is no gap to narrow.
        assert_eq!(ladder.after(&[(1000.0, false)]), None);
        // Rates closer than REFINE_MIN_GAP are not split.
        assert_eq!(ladder.after(&[(1000.0, true), (1010.0, false)]), None);
        // Every step held up to the max: over.
        assert_eq!(ladder.after(&[(4000.0, true)]), None);
    }

    #[test]
    fn a_deep_pool_queue_with_fast_queries_is_the_pool() {
        let mut broken = healthy(800.0);
        broken.p95_ms = 400.0;
        broken.signs.pool_waiting_max = Some(60.0);
        assert_eq!(blamed(&broken), Resource::DatabasePool);
        broken.signs.pool_waiting_max = Some(2.0);
        broken.signs.pool_refused = Some(12.0);
        assert_eq!(blamed(&broken), Resource::DatabasePool);
    }

    #[test]
    fn a_pool_queue_behind_slow_queries_is_postgresql() {
        let mut broken = healthy(800.0);
        broken.signs.pool_waiting_max = Some(40.0);
        broken.signs.db_mean_ms = Some(3.0);
        assert_eq!(blamed(&broken), Resource::Postgresql);
    }

    #[test]
    fn busy_cores_name_the_bigger_user() {
        let mut broken = healthy(2400.0);
        broken.signs.app_cores = Some(1.3);
        broken.signs.generator_cores = Some(0.5);
        assert_eq!(blamed(&broken), Resource::AppCpu);
        broken.signs.app_cores = Some(0.7);
        broken.signs.generator_cores = Some(1.2);
        assert_eq!(blamed(&broken), Resource::LoadGenerator);
    }

    #[test]
    fn a_sender_behind_with_free_users_is_the_generator() {
        let mut broken = healthy(3000.0);
        broken.send_behind_pct = 12.0;
        assert_eq!(blamed(&broken), Resource::LoadGenerator);
        // Behind because every virtual user was busy: the server was slow, not the sender.
        broken.vu_waits = 40;
        assert_eq!(blamed(&broken), Resource::Unknown);
    }

    #[test]
    fn no_metrics_no_blame() {
        let mut broken = healthy(800.0);
        broken.signs = Signs::default();
        broken.p95_ms = 900.0;
        assert_eq!(blamed(&broken), Resource::Unknown);
    }
}
