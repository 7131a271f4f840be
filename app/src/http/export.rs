//! `GET /projects/{id}/tasks/export`: all of a project's tasks as one JSON array, streamed with
//! chunked transfer straight from a database cursor.
//!
//! A task reads rows from PostgreSQL into a bounded channel; the response body drains the channel
//! in small batches. When the client reads slowly the channel fills, the reader stops pulling
//! rows and PostgreSQL waits on the socket, so memory stays flat however many rows there are.
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
use futures::{
    SinkExt, StreamExt,
    channel::{mpsc, oneshot},
    stream,
};

use super::{
    AppState,
    error::{ApiError, Problem},
    extract::Path,
};
use crate::db::{self, tasks::Task};

/// Rows the channel between the database reader and the body may hold.
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
    fn acquire(&self) {
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
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
    fn acquire(&self) {
        self.held.fetch_add(1, Ordering::Relaxed);
        self.gauge.acquire();
    }

    fn release(&self, rows: usize) {
        let n = i64::try_from(rows).unwrap_or(i64::MAX);
        self.held.fetch_sub(n, Ordering::Relaxed);
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
#[utoipa::path(get, path = "/projects/{id}/tasks/export", tag = "projects",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "JSON array of every task of the project, in id order", body = Vec<Task>),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn export_project_tasks(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    if !db::projects::exists(&state.db, id).await? {
        return Err(ApiError::NotFound("project"));
    }
    // Take the connection before answering: an exhausted pool is a 503, not a truncated 200.
    let conn = state.db.pool().acquire().await?;
    let (tx, rx) = mpsc::channel::<Task>(ROWS_IN_FLIGHT);
    let (done_tx, done_rx) = oneshot::channel::<bool>();
    let tally = Arc::new(ExportTally {
        gauge: Arc::clone(&state.exports),
        held: AtomicI64::new(0),
    });
    let counted = {
        let tally = Arc::clone(&tally);
        tx.with(move |task: Task| {
            tally.acquire();
            futures::future::ready(Ok::<_, mpsc::SendError>(task))
        })
    };
    let db = state.db.clone();
    tokio::spawn(async move {
        let ok = match db::tasks::export(&db, conn, id, Box::pin(counted)).await {
            Ok(rows) => {
                tracing::debug!(project = id, rows, "export finished");
                true
            }
            Err(err) => {
                tracing::error!(project = id, error = %err, "export failed mid-stream");
                false
            }
        };
        let _ = done_tx.send(ok);
    });

    let mut response = Body::from_stream(json_array(rx, done_rx, tally)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"project-{id}-tasks.json\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

enum Phase {
    Open,
    Rows { first: bool },
    Done,
}

/// `[`, the rows in batches, then `]`; or an error that aborts the body when the reader failed,
/// so a client never mistakes a truncated export for a complete one.
fn json_array(
    rows: mpsc::Receiver<Task>,
    done: oneshot::Receiver<bool>,
    tally: Arc<ExportTally>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let batches = rows.ready_chunks(ROWS_PER_CHUNK);
    stream::unfold(
        (Phase::Open, batches, Some(done)),
        move |(phase, mut batches, mut done)| {
            let tally = Arc::clone(&tally);
            async move {
                match phase {
                    Phase::Open => Some((
                        Ok(Bytes::from_static(b"[")),
                        (Phase::Rows { first: true }, batches, done),
                    )),
                    Phase::Rows { first } => match batches.next().await {
                        Some(batch) => {
                            let chunk = encode(&batch, first);
                            tally.release(batch.len());
                            Some((chunk, (Phase::Rows { first: false }, batches, done)))
                        }
                        None => {
                            let ok = match done.take() {
                                Some(rx) => rx.await.unwrap_or(false),
                                None => false,
                            };
                            let last = if ok {
                                Ok(Bytes::from_static(b"]"))
                            } else {
                                Err(std::io::Error::other("export failed; response truncated"))
                            };
                            Some((last, (Phase::Done, batches, done)))
                        }
                    },
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
