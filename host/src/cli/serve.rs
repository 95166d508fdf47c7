//! `payhost serve`: the config loaded, traces installed, the router served until SIGINT or SIGTERM, the plugins stopped.

use super::*;

pub(super) async fn serve(config_file: &Path) -> anyhow::Result<()> {
    let loaded = config::load(config_file)?;
    let telemetry = crate::telemetry::install(loaded.config.telemetry.settings().as_ref())?;
    let served = serve_loaded(config_file, loaded).await;
    telemetry.finish().await;
    served
}

pub(super) async fn serve_loaded(config_file: &Path, loaded: config::Loaded) -> anyhow::Result<()> {
    let bind: std::net::SocketAddr = loaded.config.host.bind.parse().with_context(|| {
        format!(
            "{}: key 'host.bind': expected an address like 127.0.0.1:8080",
            config_file.display()
        )
    })?;
    check_bind(&bind, &loaded.config).map_err(anyhow::Error::msg)?;
    for weak in config::weak_keys(&loaded.config) {
        tracing::warn!("{weak}: accepted on loopback, refused beyond it");
    }
    let state = AppState::start_with_system_clock(loaded)
        .await
        .with_context(|| format!("{}: cannot open the database", config_file.display()))?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    // Handlers are installed before anyone can learn the address, so a SIGTERM sent right
    // after the "listening" line still shuts down gracefully.
    let shutdown = shutdown_signal()?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    // `plugins list` finds the live server through this file.
    let addr_file = address_file(&state.config);
    if let Err(e) = std::fs::create_dir_all(&state.config.data_dir)
        .and_then(|()| std::fs::write(&addr_file, addr.to_string()))
    {
        tracing::warn!(file = %addr_file.display(), error = %e, "cannot write the address file");
    }
    // Scripts and tests wait for this line.
    println!("payhost listening on http://{addr}");
    let registry = state.registry.clone();
    let leases = state.leases.clone();
    let host = &state.config.config.host;
    let limits = crate::http::server::Limits {
        header_read_timeout: Duration::from_millis(host.header_read_timeout_ms.max(1)),
        max_connections: host.max_connections,
    };
    let pages = crate::console::routes(&state);
    crate::http::server::serve(listener, crate::http::app(state, pages), limits, shutdown).await?;
    registry.stop_all(StopReason::Shutdown).await;
    leases.release_all().await;
    let _ = std::fs::remove_file(&addr_file);
    tracing::info!("stopped");
    Ok(())
}

/// A future that completes on SIGINT or SIGTERM; the handlers are installed at once.
pub(super) fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::info!("shutdown requested");
    })
}
