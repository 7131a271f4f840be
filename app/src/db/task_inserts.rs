//! Coalesced task inserts: `POST /tasks` requests that arrive while earlier ones are being written
//! share one `INSERT` and one commit (so one WAL flush with `synchronous_commit` on), instead of a
//! statement, a commit and a pool connection each.
//!
//! A request hands its validated task to a bounded queue and waits for its own row. Up to
//! `writers` tasks take what is queued, at most `max_rows` at a time, and write it through the
//! pool like any other operation (`tasks.create` for one row, `tasks.create_batch` for more). When
//! nothing else is queued a request is written alone, at once: nothing waits to fill a batch, so a
//! quiet server answers as before. Each request is answered only after the statement holding its
//! row has committed.
//!
//! A batch is all or nothing in PostgreSQL: when the statement fails with a database error (a
//! row naming a project that does not exist, say), its rows are written again one by one, so each
//! request gets its own answer and only the faulty one fails. Errors of the pool or the connection
//! are answered to every request of the batch as they are (the statement may or may not have
//! committed; writing again could duplicate rows).
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use super::{
    Db,
    tasks::{self, NewTask, Task},
};
use crate::config::TaskInsertConfig;

/// How inserts are coalesced (flags of `serve`, see `config::limits::TaskInsertConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoalesceSettings {
    /// Most rows in one statement; 1 writes every task alone.
    pub max_rows: usize,
    /// Statements that may run at once.
    pub writers: usize,
    /// Tasks that may wait in the queue; past it a request writes its task alone.
    pub queue: usize,
}

impl From<&TaskInsertConfig> for CoalesceSettings {
    fn from(config: &TaskInsertConfig) -> Self {
        let size = |value: u32| usize::try_from(value).unwrap_or(usize::MAX);
        Self {
            max_rows: size(config.insert_batch_rows),
            writers: size(config.insert_writers),
            queue: size(config.insert_queue),
        }
    }
}

type Reply = oneshot::Sender<Result<Task, sqlx::Error>>;

struct Pending {
    new: NewTask,
    reply: Reply,
}

/// The handle requests write tasks through. Cheap to clone; the writers stop when the last
/// handle is dropped and the queue is empty.
#[derive(Clone)]
pub struct TaskInserts {
    db: Db,
    queue: Option<mpsc::Sender<Pending>>,
}

impl TaskInserts {
    /// Starts the writers on the current Tokio runtime (none when `max_rows` is 1: every task is
    /// then written alone, by its request).
    pub fn start(db: Db, settings: CoalesceSettings) -> Self {
        if settings.max_rows <= 1 {
            return Self { db, queue: None };
        }
        let (sender, receiver) = mpsc::channel(settings.queue.max(1));
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..settings.writers.max(1) {
            tokio::spawn(write_batches(
                db.clone(),
                Arc::clone(&receiver),
                settings.max_rows,
            ));
        }
        Self {
            db,
            queue: Some(sender),
        }
    }

    /// Writes `new` and returns the stored task, once the statement holding it has committed.
    pub async fn insert(&self, new: NewTask) -> Result<Task, sqlx::Error> {
        let Some(queue) = &self.queue else {
            return tasks::create(&self.db, &new).await;
        };
        let (reply, answer) = oneshot::channel();
        match queue.try_send(Pending { new, reply }) {
            Ok(()) => answer.await.unwrap_or_else(|_| Err(writer_gone())),
            Err(mpsc::error::TrySendError::Full(pending)) => {
                self.db.telemetry().insert_queue_full.inc();
                tracing::debug!("task insert queue full; writing this task alone");
                tasks::create(&self.db, &pending.new).await
            }
            Err(mpsc::error::TrySendError::Closed(pending)) => tasks::create(&self.db, &pending.new).await,
        }
    }
}

/// A writer: takes what is queued (waiting only for the first task), writes it, answers.
async fn write_batches(db: Db, receiver: Arc<Mutex<mpsc::Receiver<Pending>>>, max_rows: usize) {
    let mut batch = Vec::with_capacity(max_rows);
    loop {
        let taken = receiver.lock().await.recv_many(&mut batch, max_rows).await;
        if taken == 0 {
            return;
        }
        // A request that went away before its row was written (a timeout, a closed connection)
        // gets no row, as if it had been cancelled before its own INSERT.
        batch.retain(|pending| !pending.reply.is_closed());
        if !batch.is_empty() {
            write(&db, &mut batch).await;
        }
        batch.clear();
    }
}

async fn write(db: &Db, batch: &mut Vec<Pending>) {
    db.telemetry().insert_batch_rows.observe(batch.len() as f64);
    if let [one] = batch.as_mut_slice() {
        let result = tasks::create(db, &one.new).await;
        answer(batch.drain(..), std::iter::once(result));
        return;
    }
    let news: Vec<NewTask> = batch.iter().map(|pending| pending.new.clone()).collect();
    let result = db
        .timed("tasks.create_batch", tasks::INSERT_MANY_SQL, |pool| {
            let news = &news;
            async move { tasks::insert_many(&pool, news).await }
        })
        .await;
    match result {
        Ok(rows) => answer(batch.drain(..), rows.into_iter().map(Ok)),
        Err(err @ sqlx::Error::Database(_)) => {
            db.telemetry().insert_batch_retries.inc();
            tracing::debug!(error = %err, rows = batch.len(), "coalesced task insert failed; writing its rows one by one");
            let results = futures::future::join_all(news.iter().map(|new| tasks::create(db, new))).await;
            answer(batch.drain(..), results.into_iter());
        }
        Err(err) => {
            let message = err.to_string();
            let failures = std::iter::repeat_with(|| Err(same_failure(&err, &message)));
            answer(batch.drain(..), failures);
        }
    }
}

fn answer(pending: impl Iterator<Item = Pending>, results: impl Iterator<Item = Result<Task, sqlx::Error>>) {
    for (pending, result) in pending.zip(results) {
        // The request may have gone away meanwhile; its row stays written.
        let _ = pending.reply.send(result);
    }
}

/// A copy of a pool or connection error for each request of the failed batch (`sqlx::Error`
/// does not clone): the pool's own conditions as they are, anything else as a lost connection
/// with the same message, which the API answers 503 like the original.
fn same_failure(err: &sqlx::Error, message: &str) -> sqlx::Error {
    match err {
        sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
        sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
        _ => sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            message.to_owned(),
        )),
    }
}

fn writer_gone() -> sqlx::Error {
    sqlx::Error::WorkerCrashed
}
