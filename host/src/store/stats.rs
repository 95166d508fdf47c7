//! What this host asked of its database, counted as it goes: for `/metrics` and the
//! capacity model (`payhost-bench` divides them by the payments and webhooks it made). On
//! PostgreSQL each read and each statement is a round trip to the server, and a
//! transaction adds two (`BEGIN`, `COMMIT`); on SQLite they are library calls.

use std::sync::atomic::{AtomicU64, Ordering};

/// The counters, shared by a store's readers and its writer.
#[derive(Debug, Default)]
pub struct DbStats {
    reads: AtomicU64,
    statements: AtomicU64,
    transactions: AtomicU64,
    units: AtomicU64,
}

/// The counts at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DbCounts {
    /// Queries answered through the reading path (one row by key, lists, counts).
    pub reads: u64,
    /// Statements the writer executed (a statement skipped because the one before it
    /// changed nothing is not counted).
    pub statements: u64,
    /// Transactions the writer committed: each holds one or more units (group commit).
    pub transactions: u64,
    /// Units committed: each one request's or one processing step's writes.
    pub units: u64,
}

impl DbStats {
    pub(super) fn read(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn statement(&self) {
        self.statements.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn committed(&self, units: usize) {
        self.transactions.fetch_add(1, Ordering::Relaxed);
        self.units
            .fetch_add(u64::try_from(units).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The counts now.
    pub fn counts(&self) -> DbCounts {
        DbCounts {
            reads: self.reads.load(Ordering::Relaxed),
            statements: self.statements.load(Ordering::Relaxed),
            transactions: self.transactions.load(Ordering::Relaxed),
            units: self.units.load(Ordering::Relaxed),
        }
    }
}
