//! The open-model executor. Requests leave at their intended send times whatever the server does;
//! virtual users (a semaphore) bound how many are in flight, and a request that finds every user
//! busy waits for one. Latency counts from the intended send time, so queueing behind a slow
//! server is measured instead of hidden (no coordinated omission).
use std::{future::Future, io::IsTerminal, sync::Arc, time::Duration};

use rand::{SeedableRng, rngs::StdRng};
use tokio::{
    sync::{Semaphore, mpsc},
    time::{Instant, MissedTickBehavior},
};

use super::{
    client::ApiClient,
    ledger::{Ledger, acknowledged},
    mix::{Dataset, next_request_with},
    scenario::Plan,
    stats::{Outcome, Recorder, SecondSummary, Totals},
};

/// What a finished run hands to the report.
#[derive(Debug)]
pub struct RunFigures {
    pub totals: Totals,
    pub elapsed: Duration,
    pub sent: u64,
    /// When the last request actually left, from the start; later than the plan's last send
    /// time when the sender fell behind its schedule.
    pub last_sent_at: Duration,
    /// Requests that found every virtual user busy and waited for one (the server was slower
    /// than the arrival rate allows); none while the sender still fell behind points at the
    /// load generator itself.
    pub vu_waits: u64,
    /// `stop` resolved before the schedule was done; the requests sent so far were still awaited.
    pub interrupted: bool,
}

/// What a run may add to the default mix: report jobs, and a ledger of acknowledged writes.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// Percent of requests (0-100) that are report jobs (`--report-pct`).
    pub report_pct: u32,
    /// Where acknowledged writes are recorded (`--ledger`).
    pub ledger: Option<Arc<Ledger>>,
}

/// Runs the plan with the default mix and no ledger (see [`drive_with`]).
pub async fn drive(
    plan: &Plan,
    client: ApiClient,
    data: Dataset,
    seed: u64,
    stop: impl Future<Output = ()>,
) -> RunFigures {
    drive_with(plan, client, data, seed, Extras::default(), stop).await
}

/// Runs the plan to the end (every scheduled request is sent and answered or timed out), or until
/// `stop` resolves (e.g. Ctrl-C): then nothing more is sent and the requests in flight finish.
pub async fn drive_with(
    plan: &Plan,
    client: ApiClient,
    data: Dataset,
    seed: u64,
    extras: Extras,
    stop: impl Future<Output = ()>,
) -> RunFigures {
    let mut stop = std::pin::pin!(stop);
    let mut interrupted = false;
    let (tx, rx) = mpsc::unbounded_channel::<Outcome>();
    let start = Instant::now();
    let progress = Progress::new(plan.planned_requests());
    let collector = tokio::spawn(collect(rx, start, progress));

    let mut vus = VirtualUsers::new(plan.stages.first().map_or(1, |s| s.vus));
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sent = 0u64;
    let mut last_sent_at = Duration::ZERO;
    let mut vu_waits = 0u64;
    for (sequence, slot) in plan.schedule().enumerate() {
        if let Some(stage) = plan.stages.get(slot.stage) {
            vus.resize(stage.vus);
        }
        let spec = next_request_with(&mut rng, &data, sequence as u64, extras.report_pct);
        let intended = start + slot.at;
        tokio::select! {
            biased;
            () = &mut stop => {
                interrupted = true;
                break;
            }
            () = tokio::time::sleep_until(intended) => {}
        }
        let permit = match vus.semaphore.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                vu_waits += 1;
                let Ok(permit) = vus.semaphore.clone().acquire_owned().await else {
                    break; // the semaphore is never closed; nothing more could be sent
                };
                permit
            }
        };
        sent += 1;
        last_sent_at = start.elapsed();
        let client = client.clone();
        let tx = tx.clone();
        let ledger = extras.ledger.clone();
        tokio::spawn(async move {
            let sent_at = Instant::now();
            let result = client.send(spec.method, &spec.path, spec.body.as_ref()).await;
            let now = Instant::now();
            drop(permit);
            if let (Some(ledger), Ok(answer)) = (&ledger, &result)
                && let Some(entry) = acknowledged(
                    spec.operation,
                    &spec.path,
                    answer.status.as_u16(),
                    &answer.body,
                    now - start,
                )
            {
                ledger.record(&entry);
            }
            let error = match result {
                Ok(answer) if answer.status.is_success() => None,
                Ok(answer) => Some(format!("http_{}", answer.status.as_u16())),
                Err(err) => Some(err.kind().to_owned()),
            };
            // The collector outlives every sender; a failed send means the run was abandoned.
            let _ = tx.send(Outcome {
                operation: spec.operation,
                latency: now - intended,
                service: now - sent_at,
                finished_at: now - start,
                error,
            });
        });
    }
    drop(tx);
    let recorder = match collector.await {
        Ok(recorder) => recorder,
        Err(err) => std::panic::resume_unwind(err.into_panic()),
    };
    let elapsed = start.elapsed();
    RunFigures {
        totals: recorder.finish(),
        elapsed,
        sent,
        last_sent_at,
        vu_waits,
        interrupted,
    }
}

/// The pool of virtual users: permits of a semaphore whose size follows the stage.
struct VirtualUsers {
    semaphore: Arc<Semaphore>,
    size: u32,
}

impl VirtualUsers {
    fn new(size: u32) -> Self {
        Self {
            semaphore: Arc::new(Semaphore::new(size as usize)),
            size,
        }
    }

    /// Grows at once; shrinks as busy users finish (a background task takes their permits away,
    /// queued fairly ahead of new requests).
    fn resize(&mut self, size: u32) {
        if size > self.size {
            self.semaphore.add_permits((size - self.size) as usize);
        } else if size < self.size {
            let semaphore = self.semaphore.clone();
            let surplus = self.size - size;
            tokio::spawn(async move {
                if let Ok(permits) = semaphore.acquire_many(surplus).await {
                    permits.forget();
                }
            });
        }
        self.size = size;
    }
}

/// Owns the recorder: records outcomes and, once a second, closes the finished second and prints
/// the progress line.
async fn collect(mut rx: mpsc::UnboundedReceiver<Outcome>, start: Instant, progress: Progress) -> Recorder {
    let mut recorder = Recorder::new();
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            outcome = rx.recv() => match outcome {
                Some(outcome) => recorder.record(&outcome),
                None => break,
            },
            _ = tick.tick() => {
                let now = start.elapsed();
                let last = recorder.close_before(now.as_secs()).cloned();
                progress.print(now, last.as_ref(), recorder.requests(), recorder.errors());
            }
        }
    }
    progress.finish();
    recorder
}

/// The live progress line on stderr: rewritten in place on a terminal, one line a second otherwise.
struct Progress {
    planned: u64,
    terminal: bool,
}

impl Progress {
    fn new(planned: u64) -> Self {
        Self {
            planned,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn print(&self, elapsed: Duration, last: Option<&SecondSummary>, done: u64, errors: u64) {
        let line = progress_line(elapsed, last, done, self.planned, errors);
        if self.terminal {
            eprint!("\r\x1b[2K{line}");
        } else {
            eprintln!("{line}");
        }
    }

    fn finish(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}

/// `elapsed 12s | 498 rps | p95 8.1 ms | errors 0 (0.00%) | 5987/300000`
fn progress_line(
    elapsed: Duration,
    last: Option<&SecondSummary>,
    done: u64,
    planned: u64,
    errors: u64,
) -> String {
    let (rps, p95) = last.map_or((0, 0.0), |s| (s.requests, s.p95_ms));
    let error_pct = if done == 0 {
        0.0
    } else {
        errors as f64 * 100.0 / done as f64
    };
    format!(
        "elapsed {}s | {rps} rps | p95 {p95:.1} ms | errors {errors} ({error_pct:.2}%) | {done}/{planned}",
        elapsed.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line_shows_rate_latency_and_errors() {
        let last = SecondSummary {
            second: 11,
            requests: 498,
            errors: 1,
            p50_ms: 2.0,
            p95_ms: 8.14,
            p99_ms: 20.0,
        };
        let line = progress_line(Duration::from_millis(12_300), Some(&last), 6000, 300_000, 3);
        assert_eq!(
            line,
            "elapsed 12s | 498 rps | p95 8.1 ms | errors 3 (0.05%) | 6000/300000"
        );
    }

    #[tokio::test]
    async fn shrinking_waits_for_busy_users() {
        let mut vus = VirtualUsers::new(3);
        let busy = vus.semaphore.clone().acquire_many_owned(3).await.unwrap();
        vus.resize(1);
        tokio::task::yield_now().await;
        drop(busy);
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(vus.semaphore.available_permits(), 1);
        vus.resize(4);
        assert_eq!(vus.semaphore.available_permits(), 4);
    }
}
