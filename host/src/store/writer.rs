//! Group commit: one task owns the write connection and applies every write unit that is
//! waiting as one transaction. A unit is atomic on its own (when one fails, the batch is
//! rolled back and its units applied one by one, so the others still commit) and is answered
//! only after the transaction that holds it is durable, so concurrent requests share one
//! fsync.

use super::StoreError;
use sqlx::AnyConnection;
use sqlx::{Connection, Executor};
use tokio::sync::{mpsc, oneshot};

/// Most units applied in one transaction.
const MAX_BATCH: usize = 512;

/// A bound value. Everything payhost stores is text or a 64-bit integer.
#[derive(Debug, Clone)]
pub enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(Some(v.to_owned()))
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(Some(v))
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(Some(v.clone()))
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::Text(v)
    }
}
impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Self {
        Arg::Text(v.map(str::to_owned))
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::Int(Some(i64::from(v)))
    }
}

/// When a statement runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    Always,
    /// Only when the statement before it in the unit changed at least one row.
    PreviousChanged,
}

#[derive(Debug, Clone)]
struct Stmt {
    sql: &'static str,
    args: Vec<Arg>,
    when: When,
}

/// Statements applied together or not at all.
#[derive(Debug, Clone, Default)]
pub struct Unit {
    stmts: Vec<Stmt>,
}

impl Unit {
    pub fn new() -> Self {
        Self::default()
    }

    pub(in crate::store) fn push(&mut self, sql: &'static str, args: Vec<Arg>) -> usize {
        self.stmts.push(Stmt {
            sql,
            args,
            when: When::Always,
        });
        self.stmts.len() - 1
    }

    /// Adds a statement that runs only when the one before it changed a row.
    pub(in crate::store) fn push_if_changed(&mut self, sql: &'static str, args: Vec<Arg>) -> usize {
        self.stmts.push(Stmt {
            sql,
            args,
            when: When::PreviousChanged,
        });
        self.stmts.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.stmts.is_empty()
    }
}

/// Rows changed by each statement of a unit, in order (0 for a skipped one).
pub type Changed = Vec<u64>;

struct Job {
    unit: Unit,
    reply: oneshot::Sender<Result<Changed, StoreError>>,
}

#[derive(Clone)]
pub struct Writer {
    tx: mpsc::UnboundedSender<Job>,
}

impl Writer {
    /// Starts the writer on a thread of its own with its own single-threaded runtime, so
    /// the statements of a batch never wait behind HTTP work for a worker; `connect` opens
    /// its connection there.
    ///
    /// # Errors
    /// The connection could not be opened.
    pub async fn start<F, Fut>(connect: F) -> Result<Self, StoreError>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<AnyConnection, StoreError>>,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready) = oneshot::channel();
        std::thread::Builder::new()
            .name("payhost-db-writer".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready_tx.send(Err(StoreError::Batch(e.to_string())));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match connect().await {
                        Ok(conn) => {
                            let _ = ready_tx.send(Ok(()));
                            run(conn, rx).await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
            })
            .map_err(|e| StoreError::Batch(e.to_string()))?;
        ready.await.map_err(|_| StoreError::Closed)??;
        Ok(Self { tx })
    }

    /// Applies `unit` atomically and answers once it is durable.
    ///
    /// # Errors
    /// [`StoreError::Database`] when a statement failed (the unit left nothing behind), or
    /// [`StoreError::Closed`] after the writer stopped.
    pub async fn commit(&self, unit: Unit) -> Result<Changed, StoreError> {
        if unit.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job { unit, reply })
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

async fn run(mut conn: AnyConnection, mut rx: mpsc::UnboundedReceiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let results = apply(&mut conn, &batch).await;
        for (job, result) in batch.drain(..).zip(results) {
            let _ = job.reply.send(result);
        }
    }
    let _ = conn.close().await;
}

/// Applies the batch in one transaction. When a unit fails, the transaction is rolled back
/// and every unit is applied again in a transaction of its own, so one bad unit costs its
/// batch a retry, never its writes.
async fn apply(conn: &mut AnyConnection, batch: &[Job]) -> Vec<Result<Changed, StoreError>> {
    if batch.len() > 1 {
        match apply_together(conn, batch).await {
            Ok(results) => return results.into_iter().map(Ok).collect(),
            Err(_) => {
                let _ = conn.execute("ROLLBACK").await;
            }
        }
    }
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        results.push(
            apply_together(conn, std::slice::from_ref(job))
                .await
                .map(|mut r| r.remove(0)),
        );
        if results.last().is_some_and(Result::is_err) {
            let _ = conn.execute("ROLLBACK").await;
        }
    }
    results
}

/// Every unit of `batch` in one transaction, committed; the first error stops it (the
/// caller rolls back).
async fn apply_together(
    conn: &mut AnyConnection,
    batch: &[Job],
) -> Result<Vec<Changed>, StoreError> {
    conn.execute("BEGIN").await?;
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        results.push(run_unit(conn, &job.unit).await?);
    }
    conn.execute("COMMIT").await?;
    Ok(results)
}

async fn run_unit(conn: &mut AnyConnection, unit: &Unit) -> Result<Changed, StoreError> {
    let mut changed = Vec::with_capacity(unit.stmts.len());
    for stmt in &unit.stmts {
        if stmt.when == When::PreviousChanged && changed.last().copied().unwrap_or(0) == 0 {
            changed.push(0);
            continue;
        }
        let mut q = sqlx::query(stmt.sql);
        for arg in &stmt.args {
            q = match arg {
                Arg::Text(v) => q.bind(v.clone()),
                Arg::Int(v) => q.bind(*v),
            };
        }
        let done = q.execute(&mut *conn).await?;
        changed.push(done.rows_affected());
    }
    Ok(changed)
}
