//! `GET /projects/{id}/tasks/export`: all of a project's tasks as one JSON array, streamed with
//! chunked transfer in keyset batches.
//!
//! A reader task reads the tasks in batches of `--export-batch-rows`, one short statement each
//! (`db::tasks::export_batch`), so an export holds a pool connection only while a batch is read,
//! never while its client is slow; the batches wait in a bounded channel the response body
//! drains. A client that reads nothing for `--export-idle-timeout-ms` is cut off: the reader stops,
//! gives its place in the export lane back, and the body ends with an error where it stands.
//! At most `--export-max-concurrent` exports run at once per process; one more is answered 503.
//! [`ExportGauge`] counts the rows between the database and the body, which the tests check.
use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use axum::{
    body::Body,
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use futures::{StreamExt, stream};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

use super::{
    AppState,
    error::{ApiError, Problem},
    extract::Path,
};
use crate::{
    config::ExportConfig,
    db::{self, Db, tasks::Task},
};

/// Most rows one export holds between the database and the response body with the default batch
/// size (with larger batches: three batches).
pub const ROWS_IN_FLIGHT: usize = 1024;
/// Most rows encoded into one body chunk.
pub const ROWS_PER_CHUNK: usize = 256;

/// Rows read from the database but not yet written into the response body, over all exports.
#[derive(Debug, Default)]
pub struct ExportGauge {
    in_flight: AtomicI64,
    peak: AtomicI64,
}

impl ExportGauge {
    fn acquire(&self, rows: usize) {
        let rows = i64::try_from(rows).unwrap_or(i64::MAX);
        let now = self.in_flight.fetch_add(rows, Ordering::Relaxed) + rows;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }

    fn release(&self, rows: usize) {
        let rows = i64::try_from(rows).unwrap_or(i64::MAX);
        self.in_flight.fetch_sub(rows, Ordering::Relaxed);
    }

    /// Rows held right now.
    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Most rows ever held at once.
    pub fn peak(&self) -> i64 {
        self.peak.load(Ordering::Relaxed)
    }
}

/// The rows one export holds, kept in step with the shared [`ExportGauge`]. Whatever is still
/// held when the export ends (rows left in the channel when the client went away) is given back
/// on drop, so the gauge never drifts.
struct ExportTally {
    gauge: Arc<ExportGauge>,
    held: AtomicI64,
}

impl ExportTally {
    fn acquire(&self, rows: usize) {
        self.held
            .fetch_add(i64::try_from(rows).unwrap_or(i64::MAX), Ordering::Relaxed);
        self.gauge.acquire(rows);
    }

    fn release(&self, rows: usize) {
        self.held
            .fetch_sub(i64::try_from(rows).unwrap_or(i64::MAX), Ordering::Relaxed);
        self.gauge.release(rows);
    }
}

impl Drop for ExportTally {
    fn drop(&mut self) {
        let left = *self.held.get_mut();
        if left > 0 {
            self.gauge.release(usize::try_from(left).unwrap_or(0));
        }
    }
}

/// Export all tasks of a project as a JSON array (streamed, chunked).
#[utoipa::path(get, path = "/api/v1/projects/{id}/tasks/export", tag = "projects",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "JSON array of every task of the project, in id order", body = Vec<Task>),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too many exports run at once, or the database is busy; see Retry-After",
         body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn export_project_tasks(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let lane = Arc::clone(&state.export_lane)
        .try_acquire_owned()
        .map_err(|_| ApiError::overloaded("export_limit", "too many exports run at once; retry shortly"))?;
    if !db::projects::exists(&state.db, id).await? {
        return Err(ApiError::NotFound("project"));
    }
    let cfg = &state.config.exports;
    // Read the first batch before answering: an unreachable database is a 503, not a broken 200.
    let first = db::tasks::export_batch(&state.db, id, None, cfg.batch_rows).await?;
    let tally = Arc::new(ExportTally {
        gauge: Arc::clone(&state.exports),
        held: AtomicI64::new(0),
    });
    tally.acquire(first.len());
    let capacity = (ROWS_IN_FLIGHT / cfg.batch_rows as usize)
        .saturating_sub(1)
        .max(1);
    let (tx, rx) = mpsc::channel::<Vec<Task>>(capacity);
    let (done_tx, done_rx) = oneshot::channel::<bool>();
    let reader = Reader {
        db: state.db.clone(),
        project: id,
        cfg: cfg.clone(),
        tally: Arc::clone(&tally),
        cutoffs: state.metrics.http.export_cutoffs.clone(),
        _lane: lane,
    };
    tokio::spawn(async move {
        let _ = done_tx.send(reader.run(first, tx).await);
    });

    // Fused: a body may be polled again after its end (compression does), which `unfold` forbids.
    let mut response = Body::from_stream(json_array(rx, done_rx, tally).fuse()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"project-{id}-tasks.json\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// The task that reads one export's batches and hands them to the body.
struct Reader {
    db: Db,
    project: i64,
    cfg: ExportConfig,
    tally: Arc<ExportTally>,
    cutoffs: Counter,
    /// The export's place in the lane, given back when the reader ends.
    _lane: OwnedSemaphorePermit,
}

impl Reader {
    /// Hands `first` and every following batch to `tx`. True when every row went out; false when
    /// the database failed, the client left, or it read nothing for the idle timeout.
    async fn run(self, first: Vec<Task>, tx: mpsc::Sender<Vec<Task>>) -> bool {
        let idle = self.cfg.idle_timeout();
        let mut batch = first;
        let mut sent = 0_usize;
        loop {
            let full = batch.len() >= self.cfg.batch_rows as usize;
            let after = batch.last().map(|task| task.id);
            let rows = batch.len();
            if rows > 0 {
                match tokio::time::timeout(idle, tx.send(batch)).await {
                    Ok(Ok(())) => sent += rows,
                    Ok(Err(_closed)) => return false,
                    Err(_) => {
                        self.cutoffs.inc();
                        tracing::warn!(
                            project = self.project,
                            sent,
                            idle_ms = idle.as_millis(),
                            "export cut off: its client read nothing for the idle timeout"
                        );
                        return false;
                    }
                }
            }
            if !full {
                tracing::debug!(project = self.project, rows = sent, "export finished");
                return true;
            }
            batch = match db::tasks::export_batch(&self.db, self.project, after, self.cfg.batch_rows).await {
                Ok(batch) => batch,
                Err(err) => {
                    tracing::error!(project = self.project, error = %err, "export failed mid-stream");
                    return false;
                }
            };
            self.tally.acquire(batch.len());
        }
    }
}

enum Phase {
    Open,
    Rows { first: bool },
    Done,
}

/// `[`, the rows in chunks, then `]`; or an error that aborts the body when the reader failed or
/// was cut off, so a client never mistakes a truncated export for a complete one.
fn json_array(
    batches: mpsc::Receiver<Vec<Task>>,
    done: oneshot::Receiver<bool>,
    tally: Arc<ExportTally>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let pending: Vec<Task> = Vec::new();
    stream::unfold(
        (Phase::Open, batches, pending, Some(done)),
        move |(phase, mut batches, mut pending, mut done)| {
            let tally = Arc::clone(&tally);
            async move {
                match phase {
                    Phase::Open => Some((
                        Ok(Bytes::from_static(b"[")),
                        (Phase::Rows { first: true }, batches, pending, done),
                    )),
                    Phase::Rows { first } => {
                        if pending.is_empty()
                            && let Some(batch) = batches.recv().await
                        {
                            pending = batch;
                            pending.reverse();
                        }
                        if pending.is_empty() {
                            let ok = match done.take() {
                                Some(rx) => rx.await.unwrap_or(false),
                                None => false,
                            };
                            let last = if ok {
                                Ok(Bytes::from_static(b"]"))
                            } else {
                                Err(std::io::Error::other("export failed; response truncated"))
                            };
                            return Some((last, (Phase::Done, batches, pending, done)));
                        }
                        let take = pending.len().min(ROWS_PER_CHUNK);
                        let chunk: Vec<Task> = pending
                            .split_off(pending.len() - take)
                            .into_iter()
                            .rev()
                            .collect();
                        let encoded = encode(&chunk, first);
                        tally.release(chunk.len());
                        Some((encoded, (Phase::Rows { first: false }, batches, pending, done)))
                    }
                    Phase::Done => None,
                }
            }
        },
    )
}

fn encode(batch: &[Task], first: bool) -> Result<Bytes, std::io::Error> {
    let mut out = Vec::with_capacity(batch.len() * 256);
    for (i, task) in batch.iter().enumerate() {
        if !(first && i == 0) {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, task).map_err(std::io::Error::other)?;
    }
    Ok(Bytes::from(out))
}
