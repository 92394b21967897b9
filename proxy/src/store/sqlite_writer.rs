//! The SQLite store's single writer, with group commit.
//!
//! SQLite has one write lock. With writers on several pooled connections, they collide and
//! SQLite's busy handler puts the losers to sleep for milliseconds at a time; and with
//! `synchronous = FULL` every commit costs an fsync. So every write goes to one task that
//! owns one connection: it takes the writes queued since its last commit, runs them one
//! after another inside a single `BEGIN IMMEDIATE … COMMIT`, and only then answers each
//! caller. A caller's write is therefore durable when its call returns, exactly as with a
//! transaction of its own ("persist before acting" holds), but a busy counter pays one fsync
//! per batch instead of one per write.
//!
//! Each operation checks what can refuse it before its first write, so a refused operation
//! (stale version, idempotency conflict, refund cap) leaves nothing in the shared
//! transaction. If an operation fails unexpectedly (a database error), the whole batch is
//! rolled back and every caller in it gets an error; none of their writes happened.

use std::future::Future;
use std::pin::Pin;

use sqlx::SqliteConnection;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{mpsc, oneshot};

use super::StoreError;

/// A boxed future borrowing the writer's connection.
pub(super) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The most operations committed together.
const MAX_BATCH: usize = 256;

/// What a queued operation leaves behind once it has run: whether it failed unexpectedly,
/// and how to answer its caller once the batch's fate is known.
struct Ran {
    failed_unexpectedly: bool,
    answer: Box<dyn FnOnce(Result<(), String>) + Send>,
}

type Job = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Ran> + Send>;

/// A handle on the writer task. Cheap to clone; the task ends when the last handle is
/// dropped, after committing what was queued.
#[derive(Clone, Debug)]
pub(super) struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Writer {
    /// Opens the writer's own connection and starts its task.
    pub(super) async fn start(options: &SqliteConnectOptions) -> Result<Writer, StoreError> {
        let connection = options.connect().await?;
        let (jobs, queue) = mpsc::unbounded_channel();
        tokio::spawn(run(connection, queue));
        Ok(Writer { jobs })
    }

    /// Runs `operation` in the next batch and returns its result once the batch is
    /// committed.
    pub(super) async fn write<T, F>(&self, operation: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>>
            + Send
            + 'static,
    {
        let (reply, answered) = oneshot::channel();
        let job: Job = Box::new(move |connection| {
            Box::pin(async move {
                let result = operation(connection).await;
                let failed_unexpectedly = matches!(result, Err(StoreError::Database(_)));
                Ran {
                    failed_unexpectedly,
                    answer: Box::new(move |committed: Result<(), String>| {
                        let answer = match (committed, result) {
                            (Ok(()), result) => result,
                            // This operation's own error says more than the batch's.
                            (Err(_), Err(error)) => Err(error),
                            (Err(reason), Ok(_)) => Err(StoreError::NotCommitted { reason }),
                        };
                        let _ = reply.send(answer);
                    }),
                }
            })
        });
        self.jobs.send(job).map_err(|_| StoreError::NotCommitted {
            reason: "the store is closed".to_owned(),
        })?;
        answered.await.map_err(|_| StoreError::NotCommitted {
            reason: "the store's writer stopped".to_owned(),
        })?
    }
}

async fn run(mut connection: SqliteConnection, mut queue: mpsc::UnboundedReceiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut answers = Vec::with_capacity(batch.len());
        let outcome = match sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut connection)
            .await
        {
            Err(error) => Err(format!("cannot start a transaction: {error}")),
            Ok(_) => {
                let mut failed = false;
                for job in batch.drain(..) {
                    let ran = job(&mut connection).await;
                    failed |= ran.failed_unexpectedly;
                    answers.push(ran.answer);
                }
                if failed {
                    let _ = sqlx::query("ROLLBACK").execute(&mut connection).await;
                    Err("another write in the same transaction failed; nothing was stored".into())
                } else {
                    match sqlx::query("COMMIT").execute(&mut connection).await {
                        Ok(_) => Ok(()),
                        Err(error) => {
                            let _ = sqlx::query("ROLLBACK").execute(&mut connection).await;
                            Err(format!("the commit failed: {error}"))
                        }
                    }
                }
            }
        };
        // Jobs not run (the transaction never started) are answered through their drop:
        // their callers see the writer's reply channel close.
        batch.clear();
        for answer in answers {
            answer(outcome.clone());
        }
    }
    let _ = connection.close().await;
}
