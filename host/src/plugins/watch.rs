//! Watches the plugins folder: filesystem notifications (inotify through `notify`), debounced,
//! with a periodic rescan as a fallback for filesystems that do not notify, and SIGHUP.
//! Every trigger runs [`Registry::sync`].

use super::live::Providers;
use super::Registry;
use notify::{RecursiveMode, Watcher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Quiet time after the last notification before the folder is synced.
pub const DEBOUNCE: Duration = Duration::from_millis(100);

/// Starts the watcher task; it runs until the runtime stops.
pub fn spawn(registry: Arc<Registry>, dir: PathBuf, providers: Providers, poll: Duration) {
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            let _ = tx.send(());
        }
    })
    .and_then(|mut w| w.watch(&dir, RecursiveMode::NonRecursive).map(|()| w));
    let watcher = match watcher {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e,
                "cannot watch the plugin folder; falling back to periodic rescans");
            None
        }
    };
    tokio::spawn(async move {
        // The watcher stops when dropped: it lives as long as this task.
        let _watcher = watcher;
        let mut hangup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            tokio::select! {
                Some(()) = rx.recv() => {
                    while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
                }
                () = tokio::time::sleep(poll) => {}
                Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => None } } => {
                    tracing::info!("SIGHUP: rescanning the plugin folder");
                }
            }
            let report = registry.sync(&dir, &providers).await;
            if !report.unsettled.is_empty() {
                // Still being written: look again shortly.
                tokio::time::sleep(DEBOUNCE).await;
                registry.sync(&dir, &providers).await;
            }
        }
    });
}
