//! The `payhost` command line: `serve`, `config check`, `plugins list|check|lock|sign|conformance`,
//! `events replay`, `completions`; each group of commands in a file of its own.

use crate::app::{check_bind, start_registry, AppState};
use crate::clock::SystemClock;
use crate::config;
use crate::events::StopReason;
use crate::plugins::loader;
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

mod check;
mod database;
mod keys;
mod plugins;
mod routing;
mod serve;

use check::{config_check, folder_libraries};
use database::{audit_verify, migrate, replay};
use keys::keys_generate;
use plugins::{check, conformance, list, lock, sign};
use routing::explain;
use serve::serve;

/// What `--help` says after the commands: the environment the host reads.
const ENVIRONMENT: &str = "\
Environment:
  PAYHOST_CONFIG          the configuration file (as --config)
  PAYHOST_DATABASE_URL    overrides host.database_url (sqlite://... or postgres://...)
  PAYMENT_PROVIDER        overrides host.default_provider
  PAYHOST_LOG_FORMAT      'json' for one JSON object per log line on stderr (fields: timestamp,
                          level, fields.message, target, and the event's own fields such as
                          request_id, provider, error); anything else: text
  RUST_LOG                log filter, e.g. 'info' (default) or 'payhost=debug,info'
  OTEL_EXPORTER_OTLP_ENDPOINT  exports traces to this OTLP/HTTP collector (overrides
                          telemetry.otlp_endpoint; OTEL_BSP_* tune the batches)
  ${VAR} in the configuration file is replaced by VAR's value (${VAR:-default} when unset).";

#[derive(Parser)]
#[command(
    name = "payhost",
    version,
    about = "Payment-provider plugin host: loads provider plugins (.so) from a folder, live, \
             and serves the payments API",
    after_help = ENVIRONMENT
)]
pub struct Cli {
    /// The configuration file (before the command: `payhost --config x.toml serve`).
    #[arg(long, env = "PAYHOST_CONFIG", default_value = "plugins.toml")]
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
    /// Operate on stored webhooks and handler work.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Check the configuration without serving.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Apply the schema migrations the database lacks and list every one it has, with its
    /// checksum. `serve` also applies them at start, and refuses a database whose applied
    /// migrations differ from this binary's (one edited after it ran, or one a newer
    /// payhost applied).
    Migrate,
    /// Routing: where a request would go.
    #[command(subcommand)]
    Routing(RoutingCommand),
    /// The audit trail of operator actions and failed sign-ins.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// API and admin keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Print a completion script for a shell, e.g. `payhost completions bash >
    /// /etc/bash_completion.d/payhost`.
    Completions {
        /// The shell the script is for.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
enum RoutingCommand {
    /// Where a payment request (the JSON body of `POST /v1/payments`) would go: the rule
    /// that matches, the instances to try in order, and why each other one would not take
    /// it. Asks the running server (its circuits as they are now); without one, routes
    /// here with every circuit closed. No provider is called.
    Explain {
        /// The request body, e.g. '{"user_id": "42", "amount": 5000, "currency": "eur"}'.
        request: String,
        /// The tenant the request would come from.
        #[arg(long)]
        tenant: Option<String>,
        /// Its Idempotency-Key (where it falls in a volume split).
        #[arg(long)]
        idempotency_key: Option<String>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the audit trail's chain from its first row: each row's hash must match its
    /// contents and the row before it. Exits 1 naming the first row altered or removed;
    /// prints the last row's hash (note it elsewhere: a later verify shows nothing before
    /// it changed).
    Verify,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a new key nobody can guess (190 random bits), once, and the config line that
    /// accepts it by its SHA-256 (the config need not hold the key).
    Generate {
        /// The key's name: in logs, errors and the audit trail instead of the key.
        #[arg(long)]
        name: Option<String>,
        /// The only tenant an API key acts for.
        #[arg(long, conflicts_with = "admin")]
        tenant: Option<String>,
        /// An admin key (`host.admin_keys`) rather than an API key.
        #[arg(long)]
        admin: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Parse the configuration, load the plugins folder and check each provider instance's
    /// keys against what its plugin declares, without serving: every problem at once (each
    /// unknown key, with the nearest known one, and each wrong value, in every section, then
    /// the checks across sections), one per line; exits 1 when there is any.
    Check {
        /// Print the problems, warnings and plugins as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Process a stored webhook again (its inbox id `whin_...` or the provider's event id),
    /// or retry a handler's work (its outbox id `obx_...`). A running server picks it up
    /// within a second; otherwise the next start does. Applying an event again never
    /// duplicates its effects.
    Replay {
        /// An inbox id (`whin_...`), a provider's event id, or an outbox id (`obx_...`).
        id: String,
    },
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// Load the configured plugins folder and show each plugin and its state.
    List {
        /// Print the plugins and instances as JSON (the shape of `/admin/plugins`).
        #[arg(long)]
        json: bool,
    },
    /// Load one file and print its manifest and trust (signature, lock), or exactly why it
    /// cannot load (exit 1).
    Check {
        /// The plugin library (`.so`).
        file: PathBuf,
    },
    /// Write the lock (`host.plugins_lock`, default `plugins.lock` beside the config): the
    /// SHA-256 of each library in the plugins folder. While it exists, a library whose bytes
    /// it does not list is refused (`modified` when its file or its plugin and version is
    /// listed with other bytes); run it again after deploying a new build.
    Lock,
    /// Sign plugin libraries with an unencrypted minisign secret key (`minisign -G -W`):
    /// `<lib>.minisig` beside each, its trusted comment `plugin=<name> version=<version>`
    /// as the library declares them. `minisign -S` does the same with any key.
    Sign {
        /// The minisign secret key file.
        #[arg(long, value_name = "FILE")]
        secret_key: PathBuf,
        /// The plugin libraries (`.so`).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run the conformance suite against one plugin library: one line per check (PASS,
    /// FAIL or SKIP and why); exits 1 when a check fails.
    Conformance {
        /// The plugin library (`.so`).
        file: PathBuf,
        /// The instance to test: a TOML file with the plugin's keys under `[config]` and
        /// `allow_hosts` for the hosts it may reach (a sandbox, a fake provider). Without
        /// it, the plugin's own fixture configuration is used (offline plugins).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The provider is a fake whose redirect pages approve when opened: approve
        /// redirects as a buyer would (never against a real provider).
        #[arg(long)]
        approve_redirects: bool,
    },
}

/// Runs the command line; the exit code is the process's.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    // `serve` installs the subscriber itself, once its config says where traces go.
    let logs = match cli.command {
        Command::Serve => None,
        _ => Some(crate::telemetry::install(None)?),
    };
    let code = command(cli).await;
    if let Some(logs) = logs {
        logs.finish().await;
    }
    code
}

async fn command(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Serve => serve(&cli.config).await.map(|()| 0),
        Command::Plugins(PluginsCommand::List { json }) => list(&cli.config, json).await,
        Command::Plugins(PluginsCommand::Check { file }) => Ok(check(&cli.config, &file)),
        Command::Plugins(PluginsCommand::Lock) => lock(&cli.config).await,
        Command::Plugins(PluginsCommand::Sign { secret_key, files }) => sign(&secret_key, &files),
        Command::Plugins(PluginsCommand::Conformance {
            file,
            config,
            approve_redirects,
        }) => conformance(&file, config.as_deref(), approve_redirects).await,
        Command::Events(EventsCommand::Replay { id }) => replay(&cli.config, &id).await,
        Command::Config(ConfigCommand::Check { json }) => config_check(&cli.config, json),
        Command::Migrate => migrate(&cli.config).await,
        Command::Audit(AuditCommand::Verify) => audit_verify(&cli.config).await,
        Command::Keys(KeysCommand::Generate {
            name,
            tenant,
            admin,
        }) => Ok(keys_generate(name, tenant, admin)),
        Command::Routing(RoutingCommand::Explain {
            request,
            tenant,
            idempotency_key,
        }) => explain(&cli.config, &request, tenant, idempotency_key).await,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "payhost", &mut std::io::stdout());
            Ok(0)
        }
    }
}

/// Who runs this command, as the audit trail names them: `cli:<login>`.
fn cli_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    format!("cli:{user}")
}

/// Records a command's action in the audit trail (from `local`); says so when it cannot.
async fn cli_audit(loaded: &config::Loaded, action: &str, target: &str, outcome: &str) {
    let store = match crate::store::Store::open(&loaded.database_url()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("warning: not recorded in the audit trail (the database: {e})");
            return;
        }
    };
    cli_audit_in(&store, action, target, outcome).await;
    store.close().await;
}

async fn cli_audit_in(store: &crate::store::Store, action: &str, target: &str, outcome: &str) {
    let trail = crate::audit::AuditTrail::new(store.clone(), Arc::new(SystemClock));
    let entry = crate::audit::Entry {
        actor: cli_actor(),
        source: "local".into(),
        action: action.into(),
        target: target.into(),
        outcome: outcome.into(),
        request_id: String::new(),
    };
    if let Err(e) = trail.append(entry).await {
        eprintln!("warning: not recorded in the audit trail: {e}");
    }
}

/// Where a running `serve` writes its address, for `plugins list` to find it.
pub fn address_file(loaded: &config::Loaded) -> PathBuf {
    loaded.data_dir.join("payhost.addr")
}

/// `/admin/plugins` of the server this config runs, if one answers.
async fn live_state(loaded: &config::Loaded) -> Option<serde_json::Value> {
    match live_admin(loaded, "GET", "/admin/plugins", "").await? {
        (200, body) => Some(body),
        _ => None,
    }
}

/// One `/admin` exchange with the server this config runs: its status and JSON answer, or
/// `None` when no server answers.
async fn live_admin(
    loaded: &config::Loaded,
    method: &str,
    path: &str,
    body: &str,
) -> Option<(u16, serde_json::Value)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = std::fs::read_to_string(address_file(loaded)).ok()?;
    let key = loaded
        .config
        .host
        .admin_keys
        .iter()
        .find_map(config::ApiKey::text)?;
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr.trim()).await.ok()?;
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            addr.trim(),
            body.len()
        );
        s.write_all(req.as_bytes()).await.ok()?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.ok()?;
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = raw.split_once("\r\n\r\n")?;
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((status, serde_json::from_str(body).ok()?))
    };
    tokio::time::timeout(std::time::Duration::from_secs(3), exchange)
        .await
        .ok()
        .flatten()
}
