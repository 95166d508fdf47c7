//! What a database call can fail with, and which failures are an outage (the database
//! away, busy or full: worth retrying later, answered 503) rather than a refusal of the
//! statement.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(sqlx::Error),
    /// The database cannot be reached or cannot take writes right now (a restart, terminated
    /// connections, a failover, SQLite busy past its timeout, a read-only or full disk).
    /// Nothing of the failed unit was applied, or, when the connection was lost while
    /// committing, its outcome is unknown; either way the caller may retry.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database: {0}")]
    Batch(String),
    /// A statement SQLite refused (on the writer's own connection).
    #[error("database: {0}")]
    Statement(String),
    #[error("database_url: {0}")]
    Url(String),
    #[error("migration {version}: {error}")]
    Migrate { version: i64, error: String },
    #[error("the database writer has stopped")]
    Closed,
    /// A list's cursor names no row of that list.
    #[error("no such object: '{id}'")]
    UnknownCursor { param: &'static str, id: String },
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if is_outage(&e) {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Database(e)
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        // BUSY, LOCKED, READONLY, IOERR, FULL, CANTOPEN: as for sqlx's errors (is_outage).
        let outage = matches!(
            &e,
            rusqlite::Error::SqliteFailure(f, _) if matches!(f.extended_code & 0xff, 5 | 6 | 8 | 10 | 13 | 14)
        );
        if outage {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Statement(e.to_string())
        }
    }
}

impl StoreError {
    /// An outage rather than a refusal of this statement: worth retrying later.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Closed)
    }

    /// PostgreSQL aborted the transaction because of concurrent ones (a deadlock victim,
    /// 40P01, or a serialization failure, 40001): applying it again is expected to work.
    pub fn is_conflict(&self) -> bool {
        let StoreError::Database(sqlx::Error::Database(db)) = self else {
            return false;
        };
        db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .is_some_and(|pg| matches!(pg.code(), "40P01" | "40001"))
    }
}

/// Whether an error says the database is away (the connection, the server or the disk),
/// not that the statement was wrong.
fn is_outage(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                // Connection exceptions (08), insufficient resources (53: disk full, out of
                // memory, too many connections), operator intervention (57P: terminated by
                // an administrator, crash, shutting down, cannot connect now), read-only
                // transaction on a standby after a failover (25006).
                let code = pg.code();
                code.starts_with("08")
                    || code.starts_with("53")
                    || code.starts_with("57P")
                    || code == "25006"
            } else if let Some(lite) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                // BUSY, LOCKED, READONLY, IOERR, FULL, CANTOPEN (primary result codes).
                let code: i64 = sqlx::error::DatabaseError::code(lite)
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                matches!(code & 0xff, 5 | 6 | 8 | 10 | 13 | 14)
            } else {
                false
            }
        }
        _ => false,
    }
}
