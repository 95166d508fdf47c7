//! The audit trail: who did what to this host, from where, when, and how it went.
//!
//! Every state-changing operator action (through `/admin`, the console or the CLI) and every
//! failed authentication is appended to `audit_log`. Each row holds the SHA-256 of its own
//! contents and of the row before it, so a row altered or removed in the database breaks the
//! chain where it was: [`verify`] walks it and names the first row that does not hold. The
//! rows are also written as log lines (target `payhost::audit`; JSON with
//! `PAYHOST_LOG_FORMAT=json`) for shipping to a store payhost cannot change. Keys never
//! appear: an actor is the key's name (`console:<name>` for a console session).

use crate::clock::Clock;
use crate::store::audit::AuditRow;
use crate::store::{Store, StoreError};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The `prev_hash` of the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, as its caller knows it; the trail adds its place and hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key's name (`host.admin_keys[0]` when it has none), `console:<name>`,
    /// `cli:<user>`, or `unknown` for a failed authentication.
    pub actor: String,
    /// The client's address (the peer, or `X-Forwarded-For` from a trusted proxy), or
    /// `local` for the command line.
    pub source: String,
    /// `plugin.stop`, `inbox.replay`, `console.sign_in`, `auth.failed`, ...
    pub action: String,
    /// What it was done to: a plugin, a row's id, the surface a key was refused on.
    pub target: String,
    /// `ok`, or what went wrong (`refused`, `404 not_found`, ...).
    pub outcome: String,
    pub request_id: String,
}

/// The hash of a row: of its place, its contents and the row before it. Each field is
/// length-prefixed, so no two rows hash the same text.
pub fn hash_of(row: &AuditRow) -> String {
    let mut h = Sha256::new();
    h.update(b"payhost audit v1\0");
    for field in [
        row.seq.to_string().as_str(),
        row.at_millis.to_string().as_str(),
        &row.actor,
        &row.source,
        &row.action,
        &row.target,
        &row.outcome,
        &row.request_id,
        &row.prev_hash,
    ] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Appends entries to the chain (one at a time per host; hosts sharing a database take
/// turns through the row's unique `seq`).
pub struct AuditTrail {
    store: Store,
    clock: Arc<dyn Clock>,
    turn: tokio::sync::Mutex<()>,
}

impl AuditTrail {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            turn: tokio::sync::Mutex::new(()),
        }
    }

    /// Appends `entry` and writes its log line.
    ///
    /// # Errors
    /// The database failed (the log line says what was not recorded).
    pub async fn append(&self, entry: Entry) -> Result<AuditRow, StoreError> {
        let result = self.append_row(&entry).await;
        match &result {
            Ok(row) => tracing::info!(
                target: "payhost::audit",
                seq = row.seq,
                actor = %row.actor,
                source = %row.source,
                action = %row.action,
                target = %row.target,
                outcome = %row.outcome,
                request_id = %row.request_id,
                hash = %row.hash,
                "audit"
            ),
            Err(e) => tracing::error!(
                target: "payhost::audit",
                actor = %entry.actor,
                source = %entry.source,
                action = %entry.action,
                target = %entry.target,
                outcome = %entry.outcome,
                request_id = %entry.request_id,
                error = %e,
                "audit: NOT RECORDED in the database"
            ),
        }
        result
    }

    /// Appends `entry` without making its caller wait (a failed sign-in's answer must not
    /// wait for the database); a failure is logged with the entry.
    pub fn record(self: &Arc<Self>, entry: Entry) {
        let trail = self.clone();
        tokio::spawn(async move {
            let _ = trail.append(entry).await;
        });
    }

    async fn append_row(&self, entry: &Entry) -> Result<AuditRow, StoreError> {
        let _turn = self.turn.lock().await;
        // Another host may take the place read: read again and retry (bounded: a host
        // that keeps losing is one of very many appending at once).
        for _ in 0..50 {
            let (seq, prev_hash) = match self.store.audit_last().await? {
                Some((seq, hash)) => (seq + 1, hash),
                None => (1, GENESIS.to_owned()),
            };
            let mut row = AuditRow {
                seq,
                at_millis: self.clock.now_millis(),
                actor: entry.actor.clone(),
                source: entry.source.clone(),
                action: entry.action.clone(),
                target: entry.target.clone(),
                outcome: entry.outcome.clone(),
                request_id: entry.request_id.clone(),
                prev_hash,
                hash: String::new(),
            };
            row.hash = hash_of(&row);
            if self.store.audit_append(&row).await? {
                return Ok(row);
            }
        }
        Err(StoreError::Unavailable(
            "the audit trail's next place was taken 50 times in a row".into(),
        ))
    }

    /// Removes the rows older than `before_millis`. The sweep is itself recorded first
    /// (`audit.sweep`, `through seq N`), so a trail whose start was removed otherwise still
    /// fails [`verify`].
    ///
    /// # Errors
    /// The database failed.
    pub async fn sweep(&self, before_millis: i64) -> Result<u64, StoreError> {
        let oldest = self.store.audit_walk(None, 1).await?;
        let through = self
            .store
            .audit_newest(
                &crate::store::audit::AuditQuery {
                    until_millis: Some(before_millis - 1),
                    ..Default::default()
                },
                None,
                1,
            )
            .await?;
        let (Some(first), Some(last)) = (oldest.first(), through.first()) else {
            return Ok(0);
        };
        let (first, last) = (first.seq, last.seq);
        self.append(Entry {
            actor: "payhost".into(),
            source: "local".into(),
            action: "audit.sweep".into(),
            target: format!("through seq {last}"),
            outcome: "ok".into(),
            request_id: String::new(),
        })
        .await?;
        self.store.audit_delete_through(last).await?;
        Ok(u64::try_from(last - first + 1).unwrap_or(0))
    }
}

/// Why a chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broken {
    /// The row's contents are not those it was written with.
    Altered { seq: i64 },
    /// Rows are missing before `seq` (`after` is the row before the gap, if any).
    Removed { after: Option<i64>, seq: i64 },
    /// The row does not follow the row before it (that one was replaced).
    Unlinked { seq: i64 },
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Broken::Altered { seq } => write!(
                f,
                "row {seq} was altered: its contents do not match its hash"
            ),
            Broken::Removed {
                after: Some(a),
                seq,
            } => write!(
                f,
                "rows were removed after row {a}: {} (row {seq} follows {a})",
                if *seq == a + 2 {
                    format!("row {} is missing", a + 1)
                } else {
                    format!("rows {} to {} are missing", a + 1, seq - 1)
                }
            ),
            Broken::Removed { after: None, seq } => write!(
                f,
                "the trail's start was removed: it begins at row {seq} and no sweep of the \
                 audit trail removed the rows before it"
            ),
            Broken::Unlinked { seq } => write!(
                f,
                "row {seq} does not follow the row before it: row {} was replaced",
                seq - 1
            ),
        }
    }
}

/// What [`verify`] found in a chain that holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub rows: u64,
    /// The first and last seq (None when the trail is empty).
    pub first: Option<i64>,
    pub last: Option<i64>,
    /// The last row's hash: note it elsewhere, and a later verify shows nothing before it
    /// changed.
    pub head: Option<String>,
}

/// Walks the whole trail in order.
///
/// # Errors
/// `Ok(Err(broken))` for the first row where the chain does not hold; `Err` when the
/// database failed.
pub async fn verify(store: &Store) -> Result<Result<Verified, Broken>, StoreError> {
    const PAGE: i64 = 1000;
    let mut seen = Verified {
        rows: 0,
        first: None,
        last: None,
        head: None,
    };
    let mut prev: Option<AuditRow> = None;
    loop {
        let page = store.audit_walk(prev.as_ref().map(|r| r.seq), PAGE).await?;
        let full = page.len() as i64 == PAGE;
        for row in page {
            if hash_of(&row) != row.hash {
                return Ok(Err(Broken::Altered { seq: row.seq }));
            }
            match &prev {
                None if row.seq == 1 => {
                    if row.prev_hash != GENESIS {
                        return Ok(Err(Broken::Unlinked { seq: row.seq }));
                    }
                }
                None => {
                    if !store.audit_swept_through(row.seq - 1).await? {
                        return Ok(Err(Broken::Removed {
                            after: None,
                            seq: row.seq,
                        }));
                    }
                }
                Some(p) if row.seq != p.seq + 1 => {
                    return Ok(Err(Broken::Removed {
                        after: Some(p.seq),
                        seq: row.seq,
                    }));
                }
                Some(p) if row.prev_hash != p.hash => {
                    return Ok(Err(Broken::Unlinked { seq: row.seq }));
                }
                Some(_) => {}
            }
            seen.rows += 1;
            seen.first.get_or_insert(row.seq);
            seen.last = Some(row.seq);
            seen.head = Some(row.hash.clone());
            prev = Some(row);
        }
        if !full {
            return Ok(Ok(seen));
        }
    }
}
