//! The database: SQLite (embedded default, WAL, every commit fsync'd) or PostgreSQL, through
//! sqlx's `Any` driver so one set of queries serves both (`$N` placeholders work on both).
//! Reads go through a pool; every write goes through the group-commit [`Writer`]. On
//! SQLite, the writer and reads of one row by key use payhost's own connections on the
//! calling thread (`lite`), without a hop to sqlx's worker thread.
//! Migrations are per backend and applied at start (`migrations`); what a call can fail
//! with, and which failures are outages, is in `error`.

mod arg;
pub mod attempts;
pub mod audit;
pub mod customers;
mod error;
pub mod events;
pub mod idempotency;
mod ids;
pub mod inbox;
pub mod invoices;
pub mod json;
mod leases;
mod lite;
mod migrations;
pub mod outbox;
mod page;
pub mod payments;
pub mod record;
pub mod refunds;
pub mod retention;
mod stats;
pub mod subscriptions;
mod writer;

use arg::Arg;
pub use attempts::AttemptRow;
pub use customers::{CustomerQuery, CustomerRow, PaymentMethodRow};
pub use error::StoreError;
pub use events::{EventQuery, EventRow, NewEvent};
pub use idempotency::{Claim, StoredReply};
pub use ids::Record;
pub use inbox::{InboxRow, NewDelivery};
pub use invoices::{InvoiceQuery, InvoiceRow};
use migrations::migrate;
pub use outbox::{DunningRow, Lane, OutboxRow, QueueStats, WorkRow};
pub use page::{Listed, Order, Page};
pub use payments::{PaymentQuery, PaymentRow};
pub use refunds::{RefundQuery, RefundRow};
pub use stats::{DbCounts, DbStats};
pub use subscriptions::{SubscriptionQuery, SubscriptionRow};
pub use writer::{Changed, Unit, WriteConn, Writer};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Connection, Executor, Row as _};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Statements SQLite runs on every connection: WAL, a full fsync per commit, waiting on
/// locks; and the database file mapped into memory (up to 256 MiB), so a read finds a page
/// the writer just changed without a system call per page (POST /v1/payments +6%, measured:
/// BENCHMARKS.md). SQLite keeps writing through the file, not the mapping.
const SQLITE_PRAGMAS: &[&str] = &[
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    "PRAGMA busy_timeout = 5000",
    "PRAGMA foreign_keys = ON",
    "PRAGMA mmap_size = 268435456",
];

#[derive(Clone)]
pub struct Store {
    backend: Backend,
    pool: AnyPool,
    writer: Writer,
    /// SQLite's connections for reads of one row, on the caller's thread.
    readers: Option<Arc<lite::Readers>>,
    /// The migrations this open applied.
    migrated: Arc<Vec<i64>>,
    /// Reads, statements and transactions so far.
    stats: Arc<DbStats>,
}

/// The URL of the default database: a SQLite file in the data folder.
pub fn default_url(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join("payhost.db").display())
}

impl Store {
    /// Opens (creating a SQLite file if needed) and migrates the database at `url`.
    ///
    /// # Errors
    /// An unsupported or malformed URL, a connection failure, or a failed migration.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::Url(
                "expected sqlite://<file> or postgres://<host>/<database>".into(),
            ));
        };
        let (url, sqlite_file) = match backend {
            Backend::Sqlite => {
                let file = url
                    .trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:");
                let file = Path::new(file.split('?').next().unwrap_or(file));
                let mut path = file.to_owned();
                if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Url(format!("cannot create {}: {e}", dir.display()))
                    })?;
                    // SQLite's URL form does not take `..` segments: open the resolved path.
                    if let (Ok(dir), Some(name)) = (dir.canonicalize(), file.file_name()) {
                        path = dir.join(name);
                    }
                }
                (format!("sqlite://{}?mode=rwc", path.display()), Some(path))
            }
            Backend::Postgres => (url.to_owned(), None),
        };
        let options = AnyConnectOptions::from_str(&url)
            .map_err(|e| StoreError::Url(e.to_string()))?
            .disable_statement_logging();
        let mut setup = AnyConnection::connect_with(&options).await?;
        prepare(backend, &mut setup).await?;
        let migrated = migrate(backend, &mut setup).await?;
        setup.close().await?;
        let readers = sqlite_file
            .clone()
            .map(|file| Arc::new(lite::Readers::new(file, SQLITE_PRAGMAS)));
        let writer_options = options.clone();
        let stats = Arc::new(DbStats::default());
        let writer = Writer::start(stats.clone(), move || {
            let options = writer_options.clone();
            let sqlite_file = sqlite_file.clone();
            async move {
                if let Some(file) = sqlite_file {
                    return WriteConn::sqlite(&file, SQLITE_PRAGMAS)
                        .map_err(|e| StoreError::Unavailable(e.to_string()));
                }
                let mut conn = AnyConnection::connect_with(&options)
                    .await
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                prepare(backend, &mut conn).await?;
                Ok(WriteConn::Any(conn))
            }
        })
        .await?;
        let pool = AnyPoolOptions::new()
            // An answer in time, or a 503: requests never queue for long behind an outage.
            .acquire_timeout(std::time::Duration::from_secs(3))
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 8,
            })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    prepare(backend, conn).await.map_err(|e| match e {
                        StoreError::Database(e) => e,
                        other => sqlx::Error::Protocol(other.to_string()),
                    })
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self {
            backend,
            pool,
            writer,
            readers,
            migrated: Arc::new(migrated),
            stats,
        })
    }

    /// What this store asked of its database so far.
    pub fn db_counts(&self) -> DbCounts {
        self.stats.counts()
    }

    /// The migrations opening this store applied (none when the database was current).
    pub fn migrated_now(&self) -> &[i64] {
        &self.migrated
    }

    /// Every migration the database has, as (version, name, SHA-384 in hex), oldest first.
    ///
    /// # Errors
    /// A database failure.
    pub async fn migrations(&self) -> Result<Vec<(i64, String, String)>, StoreError> {
        let mut conn = self.connection().await?;
        let rows = sqlx::query(
            "SELECT version, description, checksum FROM _sqlx_migrations ORDER BY version",
        )
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|r| {
                let checksum: Vec<u8> = r.try_get("checksum")?;
                Ok((
                    r.int("version")?,
                    r.text("description")?,
                    hex::encode(checksum),
                ))
            })
            .collect()
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies a unit of writes atomically; answers once it is durable.
    ///
    /// # Errors
    /// See [`Writer::commit`].
    pub async fn commit(&self, unit: Unit) -> Result<Changed, StoreError> {
        use tracing::Instrument;
        let span = tracing::debug_span!(
            "db.commit",
            db.system.name = match self.backend {
                Backend::Sqlite => "sqlite",
                Backend::Postgres => "postgresql",
            },
            statements = unit.len(),
        );
        self.writer.commit(unit).instrument(span).await
    }

    /// One row or none. Private to the store: SQL lives here and nowhere else. For a row
    /// found by key: on SQLite it is read on the calling thread (see `lite`).
    async fn one(&self, sql: &str, args: Vec<Arg>) -> Result<Option<Row>, StoreError> {
        self.stats.read();
        if let Some(readers) = &self.readers {
            return Ok(readers.one(sql, &args)?.map(Row::Lite));
        }
        let mut conn = self.connection().await?;
        Ok(bind(sqlx::query(sql), args)
            .fetch_optional(&mut *conn)
            .await?
            .map(Row::Any))
    }

    /// Every row (through sqlx's pool on either backend: a scan never holds the caller).
    async fn all(&self, sql: &str, args: Vec<Arg>) -> Result<Vec<Row>, StoreError> {
        self.stats.read();
        let mut conn = self.connection().await?;
        Ok(bind(sqlx::query(sql), args)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(Row::Any)
            .collect())
    }

    /// A reading connection; failing to get one (the pool checks each before handing it
    /// out, and opens new ones) is an outage, whatever the server said.
    async fn connection(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, StoreError> {
        self.pool
            .acquire()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    /// The single text value of a query (a repository's helper).
    async fn text(&self, sql: &str, args: Vec<Arg>) -> Result<Option<String>, StoreError> {
        match self.one(sql, args).await? {
            Some(Row::Any(r)) => Ok(Some(r.try_get::<String, _>(0)?)),
            Some(Row::Lite(r)) => r.first_text(),
            None => Ok(None),
        }
    }

    /// Whether the database answers reads and the writer holds a connection (for /readyz).
    pub async fn ping(&self) -> bool {
        let read = async {
            let mut conn = self.connection().await?;
            sqlx::query("SELECT 1").execute(&mut *conn).await?;
            Ok::<(), StoreError>(())
        };
        self.writer.connected() && read.await.is_ok()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn bind<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    args: Vec<Arg>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for arg in args {
        q = match arg {
            Arg::Text(v) => q.bind(v),
            Arg::Int(v) => q.bind(v),
        };
    }
    q
}

/// Sets up every connection: SQLite's pragmas; on PostgreSQL, a plan per execution.
///
/// PostgreSQL may keep one generic plan for a prepared statement, made without its
/// parameters and from the table's statistics at the time. Made while the tables were
/// empty (a new database, its first minute before autovacuum analyzes), a lookup by
/// (provider, provider_id) took the list index on (provider, created_at, id) and filtered
/// the rest: a scan of every payment of the provider on each lookup, for as long as the
/// plan lived (POST /v1/payments ~980/s against ~2,100/s planned each time, BENCHMARKS.md).
/// Planning payhost's short statements each time costs little; a stale plan costs a scan.
/// (`plan_cache_mode` is PostgreSQL 12's.)
async fn prepare(backend: Backend, conn: &mut AnyConnection) -> Result<(), StoreError> {
    match backend {
        Backend::Sqlite => {
            for pragma in SQLITE_PRAGMAS {
                conn.execute(*pragma).await?;
            }
        }
        Backend::Postgres => {
            conn.execute("SET plan_cache_mode = force_custom_plan")
                .await?;
        }
    }
    Ok(())
}

/// Reading columns from a row without repeating the error conversion.
pub trait RowExt {
    fn text(&self, col: &str) -> Result<String, StoreError>;
    fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, col: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError>;
}

/// A row read from either backend.
pub enum Row {
    Any(AnyRow),
    Lite(lite::LiteRow),
}

impl RowExt for Row {
    fn text(&self, col: &str) -> Result<String, StoreError> {
        match self {
            Row::Any(r) => r.text(col),
            Row::Lite(r) => r
                .opt_text(col)?
                .ok_or_else(|| StoreError::Statement(format!("column '{col}' is NULL"))),
        }
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError> {
        match self {
            Row::Any(r) => r.opt_text(col),
            Row::Lite(r) => r.opt_text(col),
        }
    }
    fn int(&self, col: &str) -> Result<i64, StoreError> {
        match self {
            Row::Any(r) => r.int(col),
            Row::Lite(r) => r
                .opt_int(col)?
                .ok_or_else(|| StoreError::Statement(format!("column '{col}' is NULL"))),
        }
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError> {
        match self {
            Row::Any(r) => r.opt_int(col),
            Row::Lite(r) => r.opt_int(col),
        }
    }
}

impl RowExt for AnyRow {
    fn text(&self, col: &str) -> Result<String, StoreError> {
        Ok(self.try_get(col)?)
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(col)?)
    }
    fn int(&self, col: &str) -> Result<i64, StoreError> {
        Ok(self.try_get(col)?)
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(col)?)
    }
}

/// A PostgreSQL test's start: the server's URL, an admin connection to it and a name of
/// its own (`prefix`, the process, a random number) for what it creates; `None` (said
/// loudly) when no server is configured.
#[cfg(test)]
pub(crate) async fn test_postgres(prefix: &str) -> Option<(String, AnyConnection, String)> {
    use std::io::Write;
    // Counted by `make test` (tests/src/lib.rs `ran` and `skipped` do the same for the
    // end-to-end tests).
    let log = |line: &str| {
        if let Some(log) = std::env::var_os("PAYHOST_SKIP_LOG") {
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
            {
                let _ = f.write_all(line.as_bytes());
            }
        }
    };
    let url = match std::env::var("PAYHOST_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            assert!(
                std::env::var_os("PAYHOST_REQUIRE_POSTGRES").is_none(),
                "PAYHOST_REQUIRE_POSTGRES is set but PAYHOST_TEST_POSTGRES names no server"
            );
            // Past libtest's capture too.
            let line = format!(
                "SKIPPED: PostgreSQL: store test '{prefix}': PAYHOST_TEST_POSTGRES names no server\n"
            );
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
            log(&line);
            return None;
        }
    };
    log(&format!("RAN: PostgreSQL: store test '{prefix}'\n"));
    sqlx::any::install_default_drivers();
    let admin = AnyConnection::connect(&url).await.unwrap();
    let name = format!("{prefix}_{}_{}", std::process::id(), rand::random::<u32>());
    Some((url, admin, name))
}

#[cfg(test)]
mod tests {
    use super::migrations::MIGRATIONS;
    use super::*;

    /// A lookup prepared while `payments` was empty, run again once it holds thousands of
    /// rows, still finds its row through the (provider, provider_id) key. PostgreSQL's
    /// generic plan, made when both indexes looked alike on an empty table, took the list
    /// index on (provider, created_at, id) and filtered provider_id: a scan of every
    /// payment of the provider (5–12 ms a lookup at 10,000 payments, seen in the
    /// benchmark; the plan stays until the table is analyzed).
    #[tokio::test]
    async fn postgres_does_not_keep_a_plan_made_for_an_empty_table() {
        let Some((url, mut admin, name)) = test_postgres("store_plans").await else {
            return;
        };
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        let (base, query) = url
            .split_once('?')
            .map_or((url.as_str(), ""), |(b, q)| (b, q));
        let db_url = format!(
            "{}/{name}{}{query}",
            base.rsplit_once('/').unwrap().0,
            if query.is_empty() { "" } else { "?" }
        );
        let store = Store::open(&db_url).await.unwrap();
        let mut conn = store.connection().await.unwrap();
        conn.execute(
            "PREPARE lookup(text, text) AS \
             SELECT id FROM payments WHERE provider = $1 AND provider_id = $2",
        )
        .await
        .unwrap();
        // More than five runs: PostgreSQL's own rule for when a generic plan may be kept.
        for _ in 0..10 {
            conn.execute("EXECUTE lookup('mock', 'mock_pi_none')")
                .await
                .unwrap();
        }
        for sql in [
            "INSERT INTO customers (id, tenant, user_id, provider, provider_id, email, metadata, \
             created_at, updated_at) VALUES ('cus_1', '', 'u', 'mock', 'mock_cus_1', \
             'a@example.com', '{}', 0, 0)",
            "INSERT INTO payments (id, tenant, customer_id, provider, provider_id, amount, \
             currency, amount_refunded, status, metadata, created_at, updated_at) \
             SELECT 'pay_' || g, '', 'cus_1', 'mock', 'mock_pi_' || g, 100, 'usd', 0, \
             'succeeded', '{}', g, g FROM generate_series(1, 5000) g",
        ] {
            conn.execute(sql).await.unwrap();
        }
        let plan: Vec<String> = sqlx::query_scalar("EXPLAIN EXECUTE lookup('mock', 'mock_pi_77')")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        let plan = plan.join("\n");
        drop(conn);
        store.close().await;
        admin
            .execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
            .await
            .unwrap();
        assert!(
            plan.contains("payments_provider_provider_id_key"),
            "the lookup does not use the (provider, provider_id) key:\n{plan}"
        );
    }

    async fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&default_url(dir.path())).await.unwrap();
        (dir, store)
    }

    fn fact(state: &str) -> Unit {
        let mut u = Unit::new();
        u.push(
            "INSERT INTO event_facts (provider, kind, object_id, state) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (provider, kind, object_id) DO UPDATE SET state = excluded.state \
             WHERE event_facts.state <> excluded.state",
            vec!["mock".into(), "K".into(), "obj".into(), state.into()],
        );
        u.push_if_changed(
            "INSERT INTO idempotency_keys (scope, idem_key, request_hash, status, response, created_at) \
             VALUES ('s', $1, 'h', 200, '{}', 0)",
            vec![state.into()],
        );
        u
    }

    #[tokio::test]
    async fn migrates_once_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let url = default_url(dir.path());
        drop(Store::open(&url).await.unwrap());
        let store = Store::open(&url).await.unwrap();
        let rows = store
            .all("SELECT version FROM _sqlx_migrations", vec![])
            .await
            .unwrap();
        assert_eq!(rows.len(), MIGRATIONS.len());
    }

    async fn run(store: &Store, sql: &'static str) {
        let mut u = Unit::new();
        u.push(sql, vec![]);
        store.commit(u).await.unwrap();
    }

    #[tokio::test]
    async fn a_migration_edited_after_it_ran_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let url = default_url(dir.path());
        let store = Store::open(&url).await.unwrap();
        run(
            &store,
            "UPDATE _sqlx_migrations SET checksum = X'00' WHERE version = 3",
        )
        .await;
        store.close().await;
        let err = Store::open(&url).await.err().expect("refused").to_string();
        assert!(
            err.contains("migration 3") && err.contains("edited"),
            "{err}"
        );
        // So is a database a newer payhost migrated.
        let dir = tempfile::tempdir().unwrap();
        let url = default_url(dir.path());
        let store = Store::open(&url).await.unwrap();
        run(
            &store,
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
             execution_time) VALUES (999, 'future', TRUE, X'00', 0)",
        )
        .await;
        store.close().await;
        let err = Store::open(&url).await.err().expect("refused").to_string();
        assert!(
            err.contains("migration 999") && err.contains("newer"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_database_of_the_earlier_runner_is_adopted_with_checksums() {
        let dir = tempfile::tempdir().unwrap();
        let url = default_url(dir.path());
        let store = Store::open(&url).await.unwrap();
        // What the hand-written runner left at version 7: its own table, no checksums.
        run(&store, "DROP TABLE _sqlx_migrations").await;
        run(&store, "DROP TABLE leases").await;
        run(
            &store,
            "ALTER TABLE idempotency_keys DROP COLUMN locked_until",
        )
        .await;
        run(&store, "ALTER TABLE webhook_inbox DROP COLUMN claimed_by").await;
        run(
            &store,
            "ALTER TABLE webhook_inbox DROP COLUMN claimed_until",
        )
        .await;
        run(&store, "DROP INDEX webhook_inbox_pending").await;
        run(
            &store,
            "CREATE INDEX webhook_inbox_due ON webhook_inbox (status, next_attempt_at)",
        )
        .await;
        run(&store, "ALTER TABLE webhook_inbox DROP COLUMN event_ref").await;
        run(&store, "ALTER TABLE webhook_inbox DROP COLUMN fetched").await;
        run(&store, "DROP INDEX refunds_due").await;
        run(&store, "ALTER TABLE refunds DROP COLUMN next_check_at").await;
        run(&store, "ALTER TABLE refunds DROP COLUMN checks").await;
        run(&store, "ALTER TABLE payments DROP COLUMN trace_parent").await;
        run(&store, "DROP TABLE payment_attempts").await;
        run(&store, "ALTER TABLE payments DROP COLUMN attempts").await;
        run(&store, "DROP TABLE audit_log").await;
        run(
            &store,
            "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .await;
        run(
            &store,
            "INSERT INTO schema_migrations (version, applied_at) \
             VALUES (1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (6, 0), (7, 0)",
        )
        .await;
        store.close().await;
        let store = Store::open(&url).await.unwrap();
        let rows = store
            .all(
                "SELECT version FROM _sqlx_migrations ORDER BY version",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), MIGRATIONS.len(), "7 adopted, the rest applied");
        let old = store
            .all(
                "SELECT name FROM sqlite_master WHERE name = 'schema_migrations'",
                vec![],
            )
            .await
            .unwrap();
        assert!(old.is_empty(), "the old table went");
    }

    #[tokio::test]
    async fn a_guarded_statement_runs_only_after_a_change() {
        let (_d, store) = temp_store().await;
        assert_eq!(store.commit(fact("a")).await.unwrap(), vec![1, 1]);
        assert_eq!(
            store.commit(fact("a")).await.unwrap(),
            vec![0, 0],
            "same state: no change"
        );
        assert_eq!(store.commit(fact("b")).await.unwrap(), vec![1, 1]);
    }

    #[tokio::test]
    async fn a_failing_unit_leaves_nothing_and_spares_its_batch() {
        let (_d, store) = temp_store().await;
        let mut bad = fact("x");
        bad.push("INSERT INTO no_such_table VALUES (1)", vec![]);
        let (good, bad, good2) = tokio::join!(
            store.commit(fact("g1")),
            store.commit(bad),
            store.commit(fact("g2")),
        );
        assert!(good.is_ok() && good2.is_ok());
        assert!(bad.is_err());
        let keys = store
            .all(
                "SELECT idem_key FROM idempotency_keys ORDER BY idem_key",
                vec![],
            )
            .await
            .unwrap();
        let keys: Vec<String> = keys.iter().map(|r| r.text("idem_key").unwrap()).collect();
        assert!(
            !keys.contains(&"x".to_owned()),
            "the failed unit left a row: {keys:?}"
        );
        assert!(keys.contains(&"g2".to_owned()));
    }

    #[tokio::test]
    async fn concurrent_units_share_commits() {
        let (_d, store) = temp_store().await;
        let units = (0..200).map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut u = Unit::new();
                u.push(
                    "INSERT INTO idempotency_keys (scope, idem_key, request_hash, status, response, created_at) \
                     VALUES ('s', $1, 'h', 200, '{}', 0)",
                    vec![format!("k{i}").into()],
                );
                store.commit(u).await
            })
        });
        for u in units {
            u.await.unwrap().unwrap();
        }
        let n = store
            .one("SELECT COUNT(*) AS n FROM idempotency_keys", vec![])
            .await
            .unwrap()
            .unwrap()
            .int("n")
            .unwrap();
        assert_eq!(n, 200);
    }
}
