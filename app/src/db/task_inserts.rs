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
//! A batch is all or nothing in PostgreSQL: when the statement fails because of a row's data (a
//! constraint such as a project that does not exist, a value PostgreSQL cannot take), its rows are
//! written again one by one, so each request gets its own answer and only the faulty one fails.
//! Any other failure (the pool busy, a statement timeout, a lost connection) is answered to every
//! request of the batch as it would have been to one: trying again would only repeat it, and after
//! a lost connection the statement may have committed.
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
        Err(err) if about_a_row(&err) => {
            db.telemetry().insert_batch_retries.inc();
            tracing::debug!(error = %err, rows = batch.len(), "coalesced task insert failed; writing its rows one by one");
            let results = futures::future::join_all(news.iter().map(|new| tasks::create(db, new))).await;
            answer(batch.drain(..), results.into_iter());
        }
        Err(err) => {
            let failures = std::iter::repeat_with(|| Err(copy_of(&err)));
            answer(batch.drain(..), failures);
        }
    }
}

/// Whether a failed batch may be about the data of one of its rows: a constraint it breaks
/// (class 23) or a value PostgreSQL cannot take (class 22). Nothing was written; each row is
/// then tried alone. Other failures (a timeout, a lost connection, a busy pool) would only repeat.
fn about_a_row(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(|db_err| db_err.code())
        .is_some_and(|code| code.starts_with("23") || code.starts_with("22"))
}

fn answer(pending: impl Iterator<Item = Pending>, results: impl Iterator<Item = Result<Task, sqlx::Error>>) {
    for (pending, result) in pending.zip(results) {
        // The request may have gone away meanwhile; its row stays written.
        let _ = pending.reply.send(result);
    }
}

/// A copy of the batch's error for each of its requests (`sqlx::Error` does not clone), so that
/// each is answered as the error itself would be: the pool's own conditions as they are, a
/// database error with its code, message and constraint, anything else as a lost connection.
fn copy_of(err: &sqlx::Error) -> sqlx::Error {
    match err {
        sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
        sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
        sqlx::Error::Database(db_err) => sqlx::Error::Database(Box::new(BatchError {
            message: db_err.message().to_owned(),
            code: db_err.code().map(|code| code.into_owned()),
            constraint: db_err.constraint().map(str::to_owned),
            kind: db_err.kind(),
        })),
        other => sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            other.to_string(),
        )),
    }
}

/// A database error that failed a whole batch, as each of its requests sees it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct BatchError {
    message: String,
    code: Option<String>,
    constraint: Option<String>,
    kind: sqlx::error::ErrorKind,
}

impl sqlx::error::DatabaseError for BatchError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        self.code.as_deref().map(std::borrow::Cow::Borrowed)
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn constraint(&self) -> Option<&str> {
        self.constraint.as_deref()
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        match self.kind {
            sqlx::error::ErrorKind::UniqueViolation => sqlx::error::ErrorKind::UniqueViolation,
            sqlx::error::ErrorKind::ForeignKeyViolation => sqlx::error::ErrorKind::ForeignKeyViolation,
            sqlx::error::ErrorKind::NotNullViolation => sqlx::error::ErrorKind::NotNullViolation,
            sqlx::error::ErrorKind::CheckViolation => sqlx::error::ErrorKind::CheckViolation,
            _ => sqlx::error::ErrorKind::Other,
        }
    }
}

fn writer_gone() -> sqlx::Error {
    sqlx::Error::WorkerCrashed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database_error(code: &str, constraint: Option<&str>, kind: sqlx::error::ErrorKind) -> sqlx::Error {
        sqlx::Error::Database(Box::new(BatchError {
            message: format!("failed with {code}"),
            code: Some(code.to_owned()),
            constraint: constraint.map(str::to_owned),
            kind,
        }))
    }

    #[test]
    fn only_a_rows_data_makes_a_batch_try_its_rows_alone() {
        let fk = database_error(
            "23503",
            Some("tasks_project_id_fkey"),
            sqlx::error::ErrorKind::ForeignKeyViolation,
        );
        assert!(about_a_row(&fk));
        assert!(about_a_row(&database_error(
            "22021",
            None,
            sqlx::error::ErrorKind::Other
        )));
        assert!(!about_a_row(&database_error(
            "57014",
            None,
            sqlx::error::ErrorKind::Other
        )));
        assert!(!about_a_row(&sqlx::Error::PoolTimedOut));
    }

    #[test]
    fn each_request_of_a_failed_batch_gets_the_same_error() {
        let timeout = database_error("57014", None, sqlx::error::ErrorKind::Other);
        let copy = copy_of(&timeout);
        let db_err = copy.as_database_error().expect("a database error");
        assert_eq!(db_err.code().as_deref(), Some("57014"));
        assert_eq!(db_err.message(), "failed with 57014");
        let fk = database_error(
            "23503",
            Some("tasks_project_id_fkey"),
            sqlx::error::ErrorKind::ForeignKeyViolation,
        );
        let copy = copy_of(&fk);
        let db_err = copy.as_database_error().expect("a database error");
        assert_eq!(db_err.constraint(), Some("tasks_project_id_fkey"));
        assert!(db_err.is_foreign_key_violation());
        assert!(matches!(
            copy_of(&sqlx::Error::PoolTimedOut),
            sqlx::Error::PoolTimedOut
        ));
        let lost = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(matches!(copy_of(&lost), sqlx::Error::Io(_)));
    }
}
