//! Operator actions, written once: what `/admin`, the console and the CLI do to the host —
//! stop, reload and rescan plugins, process a stored webhook again, run outbox work again.
//! Each caller adds only its own surface (a JSON answer, a page, a line on the terminal)
//! and its audit record; what an action does and when it finds nothing is decided here.
//!
//! The two store actions are free functions as well, for the CLI, which works on the
//! database without a running host (a running one picks the rows up within a second).

use crate::clock::Clock;
use crate::config::Loaded;
use crate::plugins::{Registry, SyncReport};
use crate::service::PaymentService;
use crate::store::{Store, StoreError, Unit};
use crate::webhooks::Webhooks;
use std::sync::Arc;

/// Why an operator action did nothing.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// Nothing by that name or id (`what`: plugin, inbox, outbox; `param`: the argument).
    #[error("{message}")]
    NotFound {
        what: &'static str,
        param: &'static str,
        message: String,
    },
    /// The plugin's file could not be loaded again (its instances keep running).
    #[error("{0}")]
    ReloadFailed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The host's parts the actions work on.
pub struct Operator {
    pub(crate) registry: Arc<Registry>,
    pub(crate) service: Arc<PaymentService>,
    pub(crate) webhooks: Arc<Webhooks>,
    pub(crate) config: Arc<Loaded>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl Operator {
    /// Scans the plugins folder now: what was loaded, replaced or removed.
    pub async fn rescan(&self) -> SyncReport {
        self.registry
            .sync(&self.config.plugin_dir, &self.config.config.providers)
            .await
    }

    /// Stops the plugin `name`: the instances stopped with it (calls to them answer 503
    /// until a reload).
    ///
    /// # Errors
    /// [`OperatorError::NotFound`] when no plugin by that name is loaded.
    pub async fn stop_plugin(&self, name: &str) -> Result<Vec<String>, OperatorError> {
        self.registry
            .stop_plugin(name)
            .await
            .map_err(|e| OperatorError::NotFound {
                what: "plugin",
                param: "name",
                message: e.to_string(),
            })
    }

    /// Loads the plugin `name` again from its file and restarts its instances.
    ///
    /// # Errors
    /// [`OperatorError::NotFound`] when no plugin by that name is loaded,
    /// [`OperatorError::ReloadFailed`] when its file cannot be loaded.
    pub async fn reload_plugin(&self, name: &str) -> Result<(), OperatorError> {
        let known = self
            .registry
            .plugin_rows()
            .iter()
            .any(|r| r.name.as_deref() == Some(name));
        if !known {
            return Err(OperatorError::NotFound {
                what: "plugin",
                param: "name",
                message: format!("no plugin named '{}' is loaded", name.escape_debug()),
            });
        }
        self.registry
            .reload(name, &self.config.config.providers)
            .await
            .map(|_| ())
            .map_err(|e| OperatorError::ReloadFailed(e.to_string()))
    }

    /// Queues outbox row `id` to run again now, if it is pending or failed (work done stays
    /// done), and wakes the outbox.
    ///
    /// # Errors
    /// [`OperatorError::NotFound`] when no pending or failed row has that id.
    pub async fn retry_outbox(&self, id: &str) -> Result<(), OperatorError> {
        retry_outbox(self.service.store(), id, self.clock.now_millis()).await?;
        self.service.recorder().outbox_wake.ring_all();
        Ok(())
    }

    /// Queues the stored webhook `id` (its inbox id or the provider's event id) for
    /// processing again now, and wakes the processor. Facts already recorded are not
    /// recorded twice: a replay only completes what is missing.
    ///
    /// # Errors
    /// [`OperatorError::NotFound`] when no stored webhook has that id.
    pub async fn replay_inbox(&self, id: &str) -> Result<(), OperatorError> {
        replay_inbox(self.service.store(), id, self.clock.now_secs()).await?;
        self.webhooks.wake();
        Ok(())
    }
}

/// [`Operator::retry_outbox`] on a database alone.
///
/// # Errors
/// As [`Operator::retry_outbox`].
pub async fn retry_outbox(store: &Store, id: &str, now_ms: i64) -> Result<(), OperatorError> {
    let mut unit = Unit::new();
    let stmt = crate::store::outbox::retry_work(&mut unit, id, now_ms);
    commit_changing(store, unit, stmt, "outbox", || {
        format!("no pending or failed outbox row '{}'", id.escape_debug())
    })
    .await
}

/// [`Operator::replay_inbox`] on a database alone.
///
/// # Errors
/// As [`Operator::replay_inbox`].
pub async fn replay_inbox(store: &Store, id: &str, now: i64) -> Result<(), OperatorError> {
    let mut unit = Unit::new();
    let stmt = crate::store::inbox::replay_delivery(&mut unit, id, now);
    commit_changing(store, unit, stmt, "inbox", || {
        format!("no stored webhook '{}'", id.escape_debug())
    })
    .await
}

/// Commits `unit`; [`OperatorError::NotFound`] (`what`, the message `missing` gives) when
/// its statement `stmt` changed no row.
async fn commit_changing(
    store: &Store,
    unit: Unit,
    stmt: usize,
    what: &'static str,
    missing: impl FnOnce() -> String,
) -> Result<(), OperatorError> {
    let changed = store.commit(unit).await?;
    if changed.get(stmt).copied().unwrap_or(0) == 0 {
        return Err(OperatorError::NotFound {
            what,
            param: "id",
            message: missing(),
        });
    }
    Ok(())
}
