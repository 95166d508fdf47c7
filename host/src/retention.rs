//! The sweeper: at start and every `retention.sweep_every_minutes`, deletes what payhost
//! no longer needs (see [`crate::store::retention`]) and rotates the mail folder; counts
//! what it removed in `payhost_retention_swept_total`.

use crate::clock::Clock;
use crate::config::RetentionSection;
use crate::metrics::Metrics;
use crate::store::retention::Cutoffs;
use crate::store::Store;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub struct Sweeper {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub policy: RetentionSection,
    pub mail_dir: PathBuf,
    /// Swept by its own policy (`retention.audit_days`), the sweep recorded in it.
    pub audit: Arc<crate::audit::AuditTrail>,
}

const DAY: i64 = 86_400;

impl Sweeper {
    pub fn spawn(self) {
        let every = Duration::from_secs(u64::from(self.policy.sweep_every_minutes.max(1)) * 60);
        tokio::spawn(async move {
            loop {
                self.sweep_once().await;
                tokio::time::sleep(every).await;
            }
        });
    }

    /// One sweep; failures are logged and the next sweep tries again.
    pub async fn sweep_once(&self) {
        let now = self.clock.now_secs();
        let p = &self.policy;
        let cut = Cutoffs {
            idempotency_before: now - i64::from(p.idempotency_hours) * 3_600,
            inbox_payload_before: now - i64::from(p.inbox_payload_days) * DAY,
            outbox_before: now - i64::from(p.outbox_days) * DAY,
        };
        match self.store.sweep(cut).await {
            Ok(s) => {
                self.metrics.swept("idempotency_keys", s.idempotency_keys);
                self.metrics.swept("inbox_payloads", s.inbox_payloads);
                self.metrics.swept("outbox_rows", s.outbox_rows);
                if s != crate::store::retention::Swept::default() {
                    tracing::info!(
                        idempotency_keys = s.idempotency_keys,
                        inbox_payloads = s.inbox_payloads,
                        outbox_rows = s.outbox_rows,
                        "retention sweep"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "retention sweep failed; next time"),
        }
        let audit_before = (now - i64::from(p.audit_days.max(1)) * DAY) * 1000;
        match self.audit.sweep(audit_before).await {
            Ok(n) => {
                self.metrics.swept("audit_rows", n);
                if n > 0 {
                    tracing::info!(audit_rows = n, days = p.audit_days, "audit trail swept");
                }
            }
            Err(e) => tracing::warn!(error = %e, "audit trail sweep failed; next time"),
        }
        let (dir, days) = (self.mail_dir.clone(), p.mail_days);
        let removed = tokio::task::spawn_blocking(move || rotate_mail(&dir, days))
            .await
            .unwrap_or(0);
        self.metrics.swept("mail_files", removed);
    }
}

/// Deletes `.eml` files older than `days` (by modification time); returns how many.
fn rotate_mail(dir: &Path, days: u32) -> u64 {
    let Some(cutoff) = SystemTime::now().checked_sub(Duration::from_secs(u64::from(days) * 86_400))
    else {
        return 0;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let path = e.path();
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < cutoff);
        if old
            && path.extension().is_some_and(|x| x == "eml")
            && std::fs::remove_file(&path).is_ok()
        {
            removed += 1;
        }
    }
    removed
}
