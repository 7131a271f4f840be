//! Reads the API's `/metrics` during a step (at its start, every half second, and at its end) for
//! the saturation signs: pool waiters, refused acquires, mean query time and process CPU. A
//! `/metrics` that cannot be read leaves the signs empty; it never fails the step.
use std::time::Duration;

use perfstack_contract::metrics::{DB_POOL_ACQUIRE_TIMEOUTS, DB_POOL_MAX_CONNECTIONS, DB_POOL_WAITING};
use tokio::{sync::oneshot, task::JoinHandle};

use super::decide::Signs;
use crate::loadtest::client::ApiClient;

/// Acquires refused at once by load shedding (docs/metrics.md; not part of the tuner's contract).
const POOL_SHED: &str = "perfstack_db_pool_shed_total";
/// Sum and count of the database operation histogram (docs/metrics.md).
const DB_SECONDS: &str = "perfstack_db_query_duration_seconds_sum";
const DB_OPERATIONS: &str = "perfstack_db_query_duration_seconds_count";
/// CPU time of the API process (docs/metrics.md).
const PROCESS_CPU: &str = "perfstack_process_cpu_seconds_total";
/// How often `/metrics` is read during a step: often enough to catch a waiting queue.
const EVERY: Duration = Duration::from_millis(500);

/// The figures of one `/metrics` read; each `None` when the family is missing.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Scrape {
    pub pool_waiting: Option<f64>,
    pub pool_max: Option<f64>,
    /// Acquire timeouts plus shed acquires, since the API started.
    pub pool_refused: Option<f64>,
    pub db_seconds: Option<f64>,
    pub db_operations: Option<f64>,
    pub cpu_seconds: Option<f64>,
}

/// Picks the figures out of the Prometheus text format (samples of one name summed over labels).
pub fn parse(text: &str) -> Scrape {
    let refused = match (
        sum(text, &DB_POOL_ACQUIRE_TIMEOUTS.sample()),
        sum(text, POOL_SHED),
    ) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
    };
    Scrape {
        pool_waiting: sum(text, &DB_POOL_WAITING.sample()),
        pool_max: sum(text, &DB_POOL_MAX_CONNECTIONS.sample()),
        pool_refused: refused,
        db_seconds: sum(text, DB_SECONDS),
        db_operations: sum(text, DB_OPERATIONS),
        cpu_seconds: sum(text, PROCESS_CPU),
    }
}

/// The sum of every sample named `name` (any labels), `None` when there is none.
fn sum(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let value = match rest.chars().next()? {
                '{' => rest.rsplit_once('}')?.1,
                ' ' => rest,
                _ => return None, // a longer name with this prefix
            };
            value.split_whitespace().next()?.parse::<f64>().ok()
        })
        .fold(None, |acc, v| Some(acc.unwrap_or(0.0) + v))
}

/// What the reads of one step saw.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Observation {
    pub first: Option<Scrape>,
    pub last: Option<Scrape>,
    pub waiting_max: Option<f64>,
}

impl Observation {
    fn add(&mut self, scrape: Scrape) {
        self.first.get_or_insert(scrape);
        self.last = Some(scrape);
        if let Some(w) = scrape.pool_waiting {
            self.waiting_max = Some(self.waiting_max.map_or(w, |m| m.max(w)));
        }
    }

    /// The signs over `elapsed`, with the tester's own CPU use and its machine's cores.
    pub fn signs(&self, elapsed: Duration, generator_cores: Option<f64>, machine_cores: f64) -> Signs {
        let seconds = elapsed.as_secs_f64().max(f64::EPSILON);
        let delta = |f: fn(&Scrape) -> Option<f64>| -> Option<f64> {
            let (first, last) = (self.first?, self.last?);
            Some((f(&last)? - f(&first)?).max(0.0))
        };
        let db_mean_ms = match (delta(|s| s.db_seconds), delta(|s| s.db_operations)) {
            (Some(secs), Some(ops)) if ops > 0.0 => Some(secs * 1000.0 / ops),
            _ => None,
        };
        Signs {
            pool_waiting_max: self.waiting_max,
            pool_max: self.last.and_then(|s| s.pool_max),
            pool_refused: delta(|s| s.pool_refused),
            db_mean_ms,
            app_cores: delta(|s| s.cpu_seconds).map(|cpu| cpu / seconds),
            generator_cores,
            machine_cores,
        }
    }
}

/// A background reader of `/metrics`; [`Observer::finish`] takes a last read and hands back
/// what it saw.
pub struct Observer {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Observation>,
}

impl Observer {
    /// Starts reading at once, then every [`EVERY`].
    pub fn start(client: ApiClient) -> Self {
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut seen = Observation::default();
            let mut tick = tokio::time::interval(EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => {
                        if let Some(scrape) = read(&client).await {
                            seen.add(scrape);
                        }
                    }
                }
            }
            if let Some(scrape) = read(&client).await {
                seen.add(scrape);
            }
            seen
        });
        Self { stop, task }
    }

    pub async fn finish(self) -> Observation {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

async fn read(client: &ApiClient) -> Option<Scrape> {
    let answer = client.send(http::Method::GET, "/metrics", None).await.ok()?;
    if !answer.status.is_success() {
        return None;
    }
    Some(parse(std::str::from_utf8(&answer.body).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# HELP perfstack_db_pool_waiting Tasks waiting to acquire a connection.
# TYPE perfstack_db_pool_waiting gauge
perfstack_db_pool_waiting 7
perfstack_db_pool_max_connections 10
perfstack_db_pool_acquire_timeouts_total 2
perfstack_db_pool_shed_total 3
perfstack_db_query_duration_seconds_sum{operation=\"tasks.list\"} 1.5
perfstack_db_query_duration_seconds_sum{operation=\"users.get\"} 0.5
perfstack_db_query_duration_seconds_count{operation=\"tasks.list\"} 1000
perfstack_db_query_duration_seconds_count{operation=\"users.get\"} 1000
perfstack_db_query_duration_seconds_bucket{operation=\"users.get\",le=\"0.001\"} 900
perfstack_process_cpu_seconds_total 12.5
";

    #[test]
    fn picks_the_signs_and_sums_labels() {
        let s = parse(TEXT);
        assert_eq!(s.pool_waiting, Some(7.0));
        assert_eq!(s.pool_max, Some(10.0));
        assert_eq!(s.pool_refused, Some(5.0));
        assert_eq!(s.db_seconds, Some(2.0));
        assert_eq!(s.db_operations, Some(2000.0));
        assert_eq!(s.cpu_seconds, Some(12.5));
        assert_eq!(parse("perfstack_db_pool_waiting_other 4\n"), Scrape::default());
    }

    #[test]
    fn signs_are_deltas_over_the_step() {
        let mut seen = Observation::default();
        seen.add(parse(TEXT));
        seen.add(Scrape {
            pool_waiting: Some(30.0),
            ..parse(TEXT)
        });
        seen.add(Scrape {
            pool_waiting: Some(1.0),
            pool_refused: Some(9.0),
            db_seconds: Some(4.0),
            db_operations: Some(3000.0),
            cpu_seconds: Some(14.5),
            ..parse(TEXT)
        });
        let signs = seen.signs(Duration::from_secs(2), Some(0.4), 2.0);
        assert_eq!(signs.pool_waiting_max, Some(30.0));
        assert_eq!(signs.pool_refused, Some(4.0));
        assert_eq!(signs.db_mean_ms, Some(2.0));
        assert_eq!(signs.app_cores, Some(1.0));
        assert_eq!(signs.generator_cores, Some(0.4));
        assert_eq!(
            Observation::default()
                .signs(Duration::from_secs(1), None, 2.0)
                .app_cores,
            None
        );
    }
}
