//! Group commit: one task owns the write connection and applies every write unit that is
//! waiting as one transaction. A unit is atomic on its own (when one
//! fails, the batch is rolled back and its units applied one by one, so the others still
//! commit) and is answered only after the transaction that holds it is durable, so
//! concurrent requests share one fsync. A transaction PostgreSQL aborts because of a
//! concurrent one (a deadlock victim, a serialization failure: another host's writer) is
//! applied again. When the database goes away, the writer says so at once (`Unavailable`)
//! and connects again with a doubling pause, so writes come back with the database. On
//! SQLite the connection is payhost's own ([`WriteConn::Sqlite`]).

use super::arg::Arg;
use super::{DbStats, StoreError};
use sqlx::AnyConnection;
use sqlx::{Connection, Executor};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Most units applied in one transaction.
const MAX_BATCH: usize = 512;

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

    /// How many statements it holds.
    pub fn len(&self) -> usize {
        self.stmts.len()
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
    connected: Arc<AtomicBool>,
}

/// The first pause before connecting again after losing the database, doubled up to
/// [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

impl Writer {
    /// Starts the writer on a thread of its own with its own single-threaded runtime, so
    /// the statements of a batch never wait behind HTTP work for a worker; `connect` opens
    /// its connection there, at start and again whenever the connection is lost. (Four
    /// writer connections on PostgreSQL were measured slower than one: BENCHMARKS.md.)
    ///
    /// # Errors
    /// The first connection could not be opened.
    pub async fn start<F, Fut>(stats: Arc<DbStats>, connect: F) -> Result<Self, StoreError>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<WriteConn, StoreError>>,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready) = oneshot::channel();
        let connected = Arc::new(AtomicBool::new(true));
        let flag = connected.clone();
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
                            Run {
                                connect,
                                stats,
                                conn: Some(conn),
                                connected: flag,
                                backoff: MIN_BACKOFF,
                                retry_at: Instant::now(),
                            }
                            .serve(rx)
                            .await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
            })
            .map_err(|e| StoreError::Batch(e.to_string()))?;
        ready.await.map_err(|_| StoreError::Closed)??;
        Ok(Self { tx, connected })
    }

    /// Whether the writer holds a working connection (false from losing it until it has
    /// connected again).
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Applies `unit` atomically and answers once it is durable.
    ///
    /// # Errors
    /// [`StoreError::Database`] when a statement failed (the unit left nothing behind),
    /// [`StoreError::Unavailable`] when the database is away (nothing applied, or the
    /// connection died during the commit and the outcome is unknown), or
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

/// The writer's loop and its connection, which it replaces when the database goes away:
/// at once when a batch finds it dead before committing (and the batch is applied on the
/// new one), else on a doubling pause; meanwhile every unit is answered `Unavailable`
/// at once rather than queued.
struct Run<F> {
    connect: F,
    stats: Arc<DbStats>,
    conn: Option<WriteConn>,
    connected: Arc<AtomicBool>,
    backoff: Duration,
    retry_at: Instant,
}

impl<F, Fut> Run<F>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<WriteConn, StoreError>>,
{
    async fn serve(mut self, mut rx: mpsc::UnboundedReceiver<Job>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            let first = if self.conn.is_some() {
                rx.recv().await
            } else {
                // Disconnected: try again on schedule even when nothing is waiting, so
                // readiness comes back with the database.
                match tokio::time::timeout_at(self.retry_at, rx.recv()).await {
                    Ok(job) => job,
                    Err(_) => {
                        self.reconnect().await;
                        continue;
                    }
                }
            };
            let Some(first) = first else { break };
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            if self.conn.is_none() && Instant::now() >= self.retry_at {
                self.reconnect().await;
            }
            let results = self.apply(&batch).await;
            for (job, result) in batch.drain(..).zip(results) {
                let _ = job.reply.send(result);
            }
        }
        if let Some(conn) = self.conn.take() {
            conn.close().await;
        }
    }

    async fn reconnect(&mut self) {
        match (self.connect)().await {
            Ok(conn) => {
                if !self.connected.swap(true, Ordering::Relaxed) {
                    tracing::info!("database writer connected again");
                }
                self.conn = Some(conn);
                self.backoff = MIN_BACKOFF;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = self.backoff.as_millis() as u64, "database writer cannot connect");
                self.lost();
            }
        }
    }

    fn lost(&mut self) {
        self.conn = None;
        self.connected.store(false, Ordering::Relaxed);
        self.retry_at = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    async fn apply(&mut self, batch: &[Job]) -> Vec<Result<Changed, StoreError>> {
        let unavailable = |why: &str| {
            (0..batch.len())
                .map(|_| Err(StoreError::Unavailable(why.to_owned())))
                .collect()
        };
        let Some(conn) = self.conn.as_mut() else {
            return unavailable("no connection to the database; connecting again");
        };
        match apply(conn, &self.stats, batch).await {
            Outcome::Done(results) => results,
            Outcome::Partial(results) => {
                self.lost();
                results
            }
            Outcome::Lost(Lost::BeforeCommit(e)) => {
                // Nothing was applied: one fresh connection, one more try.
                tracing::warn!(error = %e, "database connection lost; connecting again");
                self.conn = None;
                self.reconnect().await;
                let Some(conn) = self.conn.as_mut() else {
                    return unavailable(&e.to_string());
                };
                match apply(conn, &self.stats, batch).await {
                    Outcome::Done(results) => results,
                    Outcome::Partial(results) => {
                        self.lost();
                        results
                    }
                    Outcome::Lost(Lost::BeforeCommit(e) | Lost::Committing(e)) => {
                        self.lost();
                        unavailable(&e.to_string())
                    }
                }
            }
            Outcome::Lost(Lost::Committing(e)) => {
                tracing::warn!(error = %e, "database connection lost while committing");
                self.lost();
                unavailable(&format!(
                    "the connection was lost while committing, the outcome is unknown: {e}"
                ))
            }
        }
    }
}

/// The connection died: before the commit was sent (nothing applied), or during it (the
/// outcome is unknown).
enum Lost {
    BeforeCommit(StoreError),
    Committing(StoreError),
}

/// A unit's failure inside a transaction: its own statement, or the connection.
enum Failure {
    Unit(StoreError),
    Lost(Lost),
}

impl Failure {
    fn at(committing: bool) -> impl Fn(StoreError) -> Failure {
        move |e| match (e.is_unavailable(), committing) {
            (false, _) => Failure::Unit(e),
            (true, false) => Failure::Lost(Lost::BeforeCommit(e)),
            (true, true) => Failure::Lost(Lost::Committing(e)),
        }
    }
}

/// What became of a batch.
enum Outcome {
    /// Every unit answered (committed or refused on its own).
    Done(Vec<Result<Changed, StoreError>>),
    /// The connection died before any unit committed.
    Lost(Lost),
    /// The connection died after some units committed on their own; every unit answered,
    /// the rest as unavailable.
    Partial(Vec<Result<Changed, StoreError>>),
}

/// How many times a transaction PostgreSQL aborted because of concurrent ones (a deadlock
/// victim, a serialization failure) is applied again before its error is the answer.
const CONFLICT_RETRIES: u32 = 8;

/// Applies the batch in one transaction. When a unit fails, the transaction is rolled back
/// and every unit is applied again in a transaction of its own, so one bad unit costs its
/// batch a retry, never its writes. A transaction aborted by a conflict with another
/// host's writer is applied again as it was. Losing the connection ends the batch.
async fn apply(conn: &mut WriteConn, stats: &DbStats, batch: &[Job]) -> Outcome {
    let failed = match apply_retrying(conn, stats, batch).await {
        Ok(results) => return Outcome::Done(results.into_iter().map(Ok).collect()),
        Err(Failure::Lost(lost)) => return Outcome::Lost(lost),
        Err(Failure::Unit(e)) => e,
    };
    if batch.len() == 1 {
        return Outcome::Done(vec![Err(failed)]);
    }
    let mut results = Vec::with_capacity(batch.len());
    for (i, job) in batch.iter().enumerate() {
        match apply_retrying(conn, stats, std::slice::from_ref(job)).await {
            Ok(mut r) => results.push(Ok(r.remove(0))),
            Err(Failure::Unit(e)) => results.push(Err(e)),
            Err(Failure::Lost(lost)) if i == 0 => return Outcome::Lost(lost),
            Err(Failure::Lost(Lost::BeforeCommit(e) | Lost::Committing(e))) => {
                let why = e.to_string();
                results.extend((i..batch.len()).map(|_| Err(StoreError::Unavailable(why.clone()))));
                return Outcome::Partial(results);
            }
        }
    }
    Outcome::Done(results)
}

/// [`apply_together`], rolled back after a unit's failure, and applied again (after a short
/// pause, longer each time) while PostgreSQL aborts it because of a concurrent transaction.
async fn apply_retrying(
    conn: &mut WriteConn,
    stats: &DbStats,
    batch: &[Job],
) -> Result<Vec<Changed>, Failure> {
    let mut attempt = 0;
    loop {
        match apply_together(conn, stats, batch).await {
            Err(Failure::Unit(e)) => {
                let _ = conn.plain("ROLLBACK").await;
                if !e.is_conflict() || attempt == CONFLICT_RETRIES {
                    return Err(Failure::Unit(e));
                }
                attempt += 1;
                tracing::debug!(error = %e, attempt, units = batch.len(), "transaction aborted by a concurrent one; applying it again");
                // Spread the retries so two victims do not meet again at once.
                let jitter = rand::random::<u64>() % 10;
                tokio::time::sleep(Duration::from_millis(u64::from(attempt) * 5 + jitter)).await;
            }
            other => return other,
        }
    }
}

/// Every unit of `batch` in one transaction, committed; the first error stops it (the
/// caller rolls back).
async fn apply_together(
    conn: &mut WriteConn,
    stats: &DbStats,
    batch: &[Job],
) -> Result<Vec<Changed>, Failure> {
    conn.plain("BEGIN").await.map_err(Failure::at(false))?;
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        let changed = conn.run_unit(&job.unit).await.map_err(Failure::at(false))?;
        // Skipped statements answer 0 without running: count the ones that ran.
        let skipped = job
            .unit
            .stmts
            .iter()
            .zip(&changed)
            .zip(std::iter::once(&0).chain(changed.iter()))
            .filter(|((stmt, _), before)| stmt.when == When::PreviousChanged && **before == 0)
            .count();
        for _ in skipped..changed.len() {
            stats.statement();
        }
        results.push(changed);
    }
    conn.plain("COMMIT").await.map_err(Failure::at(true))?;
    stats.committed(batch.len());
    Ok(results)
}

/// A writer's connection. PostgreSQL's is sqlx's; SQLite's is its own (rusqlite over the
/// same SQLite library), used on the writer's thread directly: a SQLite statement is a
/// function call, and going through sqlx's worker thread made each one two thread switches
/// on the writer's path, the path every write of the host waits on.
pub enum WriteConn {
    Any(AnyConnection),
    Sqlite(Box<rusqlite::Connection>),
}

impl WriteConn {
    /// Opens SQLite's writer connection on `file` with `pragmas`.
    ///
    /// # Errors
    /// The file cannot be opened, or a pragma fails.
    pub fn sqlite(file: &std::path::Path, pragmas: &[&str]) -> Result<Self, StoreError> {
        Ok(WriteConn::Sqlite(Box::new(super::lite::open(
            file, pragmas,
        )?)))
    }

    /// A statement without arguments or rows (BEGIN, COMMIT, ROLLBACK).
    async fn plain(&mut self, sql: &str) -> Result<(), StoreError> {
        match self {
            WriteConn::Any(conn) => {
                conn.execute(sql).await?;
            }
            WriteConn::Sqlite(conn) => conn.execute_batch(sql)?,
        }
        Ok(())
    }

    async fn run_unit(&mut self, unit: &Unit) -> Result<Changed, StoreError> {
        match self {
            WriteConn::Any(conn) => Ok(run_unit_any(conn, unit).await?),
            WriteConn::Sqlite(conn) => run_unit_sqlite(conn, unit),
        }
    }

    async fn close(self) {
        match self {
            WriteConn::Any(conn) => {
                let _ = conn.close().await;
            }
            WriteConn::Sqlite(conn) => {
                let _ = conn.close();
            }
        }
    }
}

async fn run_unit_any(conn: &mut AnyConnection, unit: &Unit) -> Result<Changed, sqlx::Error> {
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

/// A unit's statements on SQLite's own connection.
fn run_unit_sqlite(conn: &rusqlite::Connection, unit: &Unit) -> Result<Changed, StoreError> {
    let mut changed = Vec::with_capacity(unit.stmts.len());
    for stmt in &unit.stmts {
        if stmt.when == When::PreviousChanged && changed.last().copied().unwrap_or(0) == 0 {
            changed.push(0);
            continue;
        }
        let mut prepared = conn.prepare_cached(stmt.sql)?;
        super::lite::bind(&mut prepared, stmt.sql, &stmt.args)?;
        let rows = if prepared.column_count() == 0 {
            prepared.raw_execute()?
        } else {
            // A statement answering with rows: stepped through, its rows counted.
            let mut rows = prepared.raw_query();
            let mut n = 0;
            while rows.next()?.is_some() {
                n += 1;
            }
            n
        };
        changed.push(rows as u64);
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server the PostgreSQL tests use, or `None` (said loudly) when none is configured.
    async fn deadlocks(conn: &mut AnyConnection) -> i64 {
        sqlx::query_scalar::<_, i64>(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap()
    }

    /// The writer and another transaction (another host's writer) take the same two rows
    /// in opposite orders: PostgreSQL aborts the writer's as the deadlock's victim (the
    /// other session waits longer before it looks for deadlocks), and the writer applies it
    /// again instead of answering with the error. Both are applied, once each.
    #[tokio::test]
    async fn a_deadlock_victim_is_applied_again() {
        let Some((url, mut admin, table)) = super::super::test_postgres("writer_deadlock").await
        else {
            return;
        };
        for sql in [
            format!("CREATE TABLE {table} (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)"),
            format!("INSERT INTO {table} VALUES (1, 0), (2, 0)"),
        ] {
            admin.execute(sql.as_str()).await.unwrap();
        }
        let before = deadlocks(&mut admin).await;

        let connect_to = url.clone();
        let writer = Writer::start(Arc::default(), move || {
            let url = connect_to.clone();
            async move { Ok(WriteConn::Any(AnyConnection::connect(&url).await?)) }
        })
        .await
        .unwrap();
        // The statements are 'static; a test's table name is leaked once.
        let bump: &'static str =
            Box::leak(format!("UPDATE {table} SET v = v + 1 WHERE id = $1").into_boxed_str());

        // The other host: holds row 1, and looks for deadlocks only after 10 s, so the
        // writer's session (1 s, the default) is the one PostgreSQL aborts.
        admin.execute("SET deadlock_timeout = '10s'").await.unwrap();
        admin.execute("BEGIN").await.unwrap();
        sqlx::query(bump)
            .bind(1_i64)
            .execute(&mut admin)
            .await
            .unwrap();
        let mut unit = Unit::new();
        unit.push(bump, vec![2_i64.into()]);
        unit.push(bump, vec![1_i64.into()]);
        let writer_side = tokio::spawn({
            let writer = writer.clone();
            async move { writer.commit(unit).await }
        });
        // The writer holds row 2 and waits for row 1 (seen waiting on a lock, not assumed
        // after a pause): the other host wanting row 2 now closes the cycle for certain.
        // (Watched from a connection of its own: inside the other host's transaction the
        // activity view would stay the snapshot of its first read.)
        let mut watcher = AnyConnection::connect(&url).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND wait_event_type = 'Lock' AND pid <> pg_backend_pid() AND query = $1",
            )
            .bind(bump)
            .fetch_one(&mut watcher)
            .await
            .unwrap();
            if waiting == 1 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the writer never waited for row 1"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sqlx::query(bump)
            .bind(2_i64)
            .execute(&mut admin)
            .await
            .expect("the other session is not the deadlock's victim");
        admin.execute("COMMIT").await.unwrap();
        assert_eq!(writer_side.await.unwrap().unwrap(), vec![1, 1]);

        let values: Vec<i64> = sqlx::query_scalar(&format!("SELECT v FROM {table} ORDER BY id"))
            .fetch_all(&mut admin)
            .await
            .unwrap();
        assert_eq!(values, vec![2, 2], "each transaction applied exactly once");
        // The deadlock did happen: PostgreSQL counted it in this database (statistics
        // reach the view within a second or so).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut fresh = AnyConnection::connect(&url).await.unwrap();
            if deadlocks(&mut fresh).await > before {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL reported no deadlock: the test did not provoke one"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        admin
            .execute(format!("DROP TABLE {table}").as_str())
            .await
            .unwrap();
    }
}
