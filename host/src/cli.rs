//! The `payhost` command line: `serve`, `plugins list`, `plugins check`.

use crate::app::{check_bind, start_registry, AppState};
use crate::clock::SystemClock;
use crate::config;
use crate::events::StopReason;
use crate::plugins::loader;
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "payhost", version, about = "Payment-provider plugin host")]
pub struct Cli {
    /// The configuration file.
    #[arg(
        long,
        global = true,
        env = "PAYHOST_CONFIG",
        default_value = "plugins.toml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load the plugins and serve the HTTP API until SIGINT/SIGTERM.
    Serve,
    /// Inspect plugins.
    #[command(subcommand)]
    Plugins(PluginsCommand),
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// Load the configured plugins folder and show each plugin and its state.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Load one file and print its metadata, or exactly why it cannot load (exit 1).
    Check { file: PathBuf },
}

/// Runs the command line; the exit code is the process's.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Serve => serve(&cli.config).await.map(|()| 0),
        Command::Plugins(PluginsCommand::List { json }) => list(&cli.config, json).await,
        Command::Plugins(PluginsCommand::Check { file }) => Ok(check(&file)),
    }
}

async fn serve(config_file: &Path) -> anyhow::Result<()> {
    let loaded = config::load(config_file)?;
    let bind: std::net::SocketAddr = loaded.config.host.bind.parse().with_context(|| {
        format!(
            "{}: key 'host.bind': expected an address like 127.0.0.1:8080",
            config_file.display()
        )
    })?;
    check_bind(&bind, &loaded.config.host.api_keys).map_err(anyhow::Error::msg)?;
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
    // Scripts and tests wait for this line.
    println!("payhost listening on http://{addr}");
    let registry = state.registry.clone();
    axum::serve(listener, crate::http::app(state))
        .with_graceful_shutdown(shutdown)
        .await?;
    registry.stop_all(StopReason::Shutdown).await;
    tracing::info!("stopped");
    Ok(())
}

/// A future that completes on SIGINT or SIGTERM; the handlers are installed at once.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
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

async fn list(config_file: &Path, json: bool) -> anyhow::Result<i32> {
    let loaded = config::load(config_file)?;
    let registry = start_registry(&loaded, Arc::new(SystemClock)).await;
    let rows = registry.plugin_rows();
    let instances = registry.instance_rows();
    registry.stop_all(StopReason::Shutdown).await;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"plugins": rows, "instances": instances})
            )?
        );
        return Ok(0);
    }
    println!(
        "{:<12} {:<9} {:<8} {:<40} STATE / FILE",
        "NAME", "VERSION", "TYPE", "CAPABILITIES"
    );
    for r in &rows {
        println!(
            "{:<12} {:<9} {:<8} {:<40} {}  {}",
            r.name.as_deref().unwrap_or("-"),
            r.version.as_deref().unwrap_or("-"),
            r.plugin_type.as_deref().unwrap_or("-"),
            r.capabilities.join(","),
            r.state,
            r.file
        );
    }
    for i in &instances {
        println!(
            "provider {:<12} plugin {:<12} {}",
            i.name, i.plugin, i.state
        );
    }
    Ok(0)
}

fn check(file: &Path) -> i32 {
    let dir = match tempfile_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: cannot create a temporary folder: {e}");
            return 2;
        }
    };
    let result = loader::load(file, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok(l) => {
            let m = &l.metadata;
            println!("file:            {}", file.display());
            println!("name:            {}", m.name);
            println!("version:         {}", m.version);
            println!("type:            {}", m.plugin_type);
            println!("required config: {}", m.required_config.join(", "));
            println!("capabilities:    {}", m.capabilities.join(", "));
            println!("webhook header:  {}", m.webhook_signature_header);
            0
        }
        Err(e) => {
            eprintln!("error ({:?}): {e}", e.error_type);
            1
        }
    }
}

fn tempfile_dir() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("payhost-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
