//! The `payhost` command line: `serve`, `config check`, `plugins list|check|lock|sign|conformance`,
//! `events replay`, `completions`.

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
    if let Command::Serve = cli.command {
        // `serve` installs the subscriber once its config says where traces go.
        return serve(&cli.config).await.map(|()| 0);
    }
    let logs = crate::telemetry::install(None)?;
    let code = command(cli).await;
    logs.finish().await;
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

/// `payhost migrate`: the database brought to this binary's schema, and what it holds.
async fn migrate(config_file: &Path) -> anyhow::Result<i32> {
    use crate::store::Store;
    let loaded = config::load(config_file)?;
    let store = match Store::open(&loaded.database_url()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {}: {e}", config_file.display());
            return Ok(1);
        }
    };
    for (version, name, checksum) in store.migrations().await? {
        let now = if store.migrated_now().contains(&version) {
            "  (applied now)"
        } else {
            ""
        };
        println!("{version:>4}  {name:<24} sha384:{}{now}", &checksum[..16]);
    }
    let applied = store.migrated_now().len();
    if applied > 0 {
        cli_audit_in(
            &store,
            "database.migrate",
            store.backend().name(),
            &format!("ok: applied {applied}"),
        )
        .await;
    }
    match applied {
        0 => println!("the database ({}) was up to date", store.backend().name()),
        n => println!(
            "applied {n} migration{} to the {} database",
            if n == 1 { "" } else { "s" },
            store.backend().name()
        ),
    }
    store.close().await;
    Ok(0)
}

/// `payhost config check`: every problem of the configuration, the plugins folder and the
/// instances' keys, one per line, without serving; 0 when there is none.
/// One problem `config check` found: in the config file (at `key`, when one is at fault)
/// or, `file` unset, in a plugin library (its message names the file).
#[derive(serde::Serialize)]
struct Finding {
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}: ")?;
        }
        if let Some(key) = &self.key {
            write!(f, "key '{key}': ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

fn config_check(config_file: &Path, json: bool) -> anyhow::Result<i32> {
    let file = config_file.display().to_string();
    let in_file = |key: Option<String>, message: String, hint: Option<String>| Finding {
        file: Some(file.clone()),
        key,
        message,
        hint,
    };
    let (loaded, shape) = config::load_for_check(config_file);
    // The file's shape first: every unknown key and wrong value, in every section.
    let mut problems: Vec<Finding> = shape
        .into_iter()
        .map(|p| in_file((!p.key.is_empty()).then_some(p.key), p.message, p.hint))
        .collect();
    let mut warnings = Vec::new();
    let mut plugins = Vec::new();
    let mut summary = None;
    if let Some(loaded) = loaded {
        let c = &loaded.config;
        // Then what holds across sections, on what the file's shape left.
        problems.extend(
            config::problems(c)
                .into_iter()
                .map(|(key, expected)| in_file(Some(key), expected, None)),
        );
        match c.host.bind.parse::<std::net::SocketAddr>() {
            Err(_) => problems.push(in_file(
                Some("host.bind".into()),
                "expected an address like 127.0.0.1:8080".into(),
                None,
            )),
            Ok(bind) => {
                if let Err(e) = check_bind(&bind, c) {
                    problems.push(in_file(None, e.to_string(), None));
                } else {
                    // On loopback, weak keys are allowed: said, not counted.
                    warnings.extend(
                        config::weak_keys(c)
                            .into_iter()
                            .map(|weak| format!("{weak} (refused beyond loopback)")),
                    );
                }
            }
        }
        let (libraries, folder_problems) =
            folder_libraries(&loaded.plugin_dir, &crate::app::trust_policy(&loaded));
        let unloaded = folder_problems.len();
        problems.extend(folder_problems.into_iter().map(|message| Finding {
            file: None,
            key: None,
            message,
            hint: None,
        }));
        let manifests: std::collections::BTreeMap<String, payhost_plugin_api::Manifest> = libraries
            .iter()
            .map(|(n, l)| (n.clone(), l.manifest.clone()))
            .collect();
        let names: Vec<String> = manifests.keys().cloned().collect();
        for (name, instance) in &c.providers {
            match manifests.get(&instance.plugin) {
                None => problems.push(in_file(
                    Some(format!("providers.{name}.plugin")),
                    format!(
                        "no plugin named '{}' in {} (found: {}{})",
                        instance.plugin,
                        loaded.plugin_dir.display(),
                        if manifests.is_empty() {
                            "none".to_owned()
                        } else {
                            names.join(", ")
                        },
                        match unloaded {
                            0 => String::new(),
                            n => format!("; {n} not loaded, see above"),
                        }
                    ),
                    config::shape::nearest(&instance.plugin, &names)
                        .map(|n| format!("did you mean '{n}'?")),
                )),
                Some(m) => problems.extend(
                    crate::plugins::registry::config_problems(m, &instance.config_json())
                        .into_iter()
                        .map(|p| in_file(Some(format!("providers.{name}.config")), p, None)),
                ),
            }
        }
        for l in libraries.values() {
            plugins.push(serde_json::json!({
                "file": l.file.display().to_string(),
                "name": l.manifest.name,
                "version": l.manifest.version,
                "trust": l.trust.status(),
                "sha256": l.trust.sha256,
            }));
        }
        summary = Some(format!(
            "OK ({} provider instances, {} plugins in {})",
            c.providers.len(),
            manifests.len(),
            loaded.plugin_dir.display()
        ));
    }
    let n = problems.len();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "config": file,
                "ok": n == 0,
                "problems": problems,
                "warnings": warnings,
                "plugins": plugins,
            }))?
        );
    } else {
        for p in &plugins {
            println!(
                "{}: {} {}, {} (sha256 {})",
                p["file"].as_str().unwrap_or_default(),
                p["name"].as_str().unwrap_or_default(),
                p["version"].as_str().unwrap_or_default(),
                p["trust"].as_str().unwrap_or_default(),
                p["sha256"].as_str().unwrap_or_default()
            );
        }
        for w in &warnings {
            println!("{file}: warning: {w}");
        }
        match (n, summary) {
            (0, Some(ok)) => println!("{file}: {ok}"),
            _ => {
                for p in &problems {
                    println!("{p}");
                }
                println!("{n} problem{}", if n == 1 { "" } else { "s" });
            }
        }
    }
    Ok(i32::from(n > 0))
}

/// Every library in the plugins folder loaded the way `serve` loads them (the folder's
/// permissions and each library's signature and lock checked, private copies in a scratch
/// folder), by plugin name, and what kept any from loading.
fn folder_libraries(
    dir: &Path,
    policy: &crate::plugins::trust::Policy,
) -> (
    std::collections::BTreeMap<String, loader::Loaded>,
    Vec<String>,
) {
    let mut libraries = std::collections::BTreeMap::new();
    let mut problems = Vec::new();
    if let Err(e) = loader::trusted(dir, None) {
        problems.push(e);
        return (libraries, problems);
    }
    let scratch = match tempfile::Builder::new()
        .prefix("payhost-config-check-")
        .tempdir()
    {
        Ok(d) => d,
        Err(e) => {
            problems.push(format!("cannot create a private temporary folder: {e}"));
            return (libraries, problems);
        }
    };
    let files = match loader::scan(dir) {
        Ok(files) => files,
        Err(e) => {
            problems.push(format!(
                "cannot read the plugins folder {}: {e}",
                dir.display()
            ));
            return (libraries, problems);
        }
    };
    for f in files {
        if let Err(e) = loader::trusted(dir, Some(&f)) {
            problems.push(e);
            continue;
        }
        match loader::load(&f, scratch.path(), policy) {
            Ok(l) => {
                libraries.insert(l.manifest.name.clone(), l);
            }
            Err(e) => problems.push(format!("{}: {}", e.file, e.reason)),
        }
    }
    (libraries, problems)
}

/// `payhost plugins lock`: the folder's libraries (each checked as `serve` would, with the
/// lock now in force set aside) written to the lock file.
async fn lock(config_file: &Path) -> anyhow::Result<i32> {
    let loaded = config::load(config_file)?;
    let mut policy = crate::app::trust_policy(&loaded);
    policy.lock_file = None;
    let (libraries, problems) = folder_libraries(&loaded.plugin_dir, &policy);
    for p in &problems {
        eprintln!("not locked: {p}");
    }
    let previous = crate::plugins::trust::Lock::read(&loaded.lock_file()).unwrap_or_default();
    let lock = crate::plugins::trust::Lock {
        allow_signed_updates: previous.is_some_and(|l| l.allow_signed_updates),
        plugins: libraries
            .values()
            .map(|l| crate::plugins::trust::LockEntry {
                name: l.manifest.name.clone(),
                version: l.manifest.version.clone(),
                contract: l.manifest.contract.clone(),
                file: l
                    .file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                sha256: l.trust.sha256.clone(),
                signed_by: l.trust.signed_by.clone(),
            })
            .collect(),
    };
    let file = loaded.lock_file();
    std::fs::write(&file, lock.to_text())
        .with_context(|| format!("cannot write {}", file.display()))?;
    for e in &lock.plugins {
        println!(
            "locked {} {} ({}) sha256 {}{}",
            e.name,
            e.version,
            e.file,
            e.sha256,
            e.signed_by
                .as_deref()
                .map_or_else(String::new, |k| format!(", signed ({k})"))
        );
    }
    println!("wrote {}", file.display());
    let locked: Vec<String> = lock
        .plugins
        .iter()
        .map(|e| format!("{} {}", e.name, e.version))
        .collect();
    cli_audit(
        &loaded,
        "plugins.lock",
        &file.display().to_string(),
        &format!("ok: {}", locked.join(", ")),
    )
    .await;
    Ok(if problems.is_empty() { 0 } else { 1 })
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

/// `payhost audit verify`.
async fn audit_verify(config_file: &Path) -> anyhow::Result<i32> {
    let loaded = config::load(config_file)?;
    let store = crate::store::Store::open(&loaded.database_url())
        .await
        .with_context(|| format!("{}: cannot open the database", config_file.display()))?;
    let found = crate::audit::verify(&store).await?;
    store.close().await;
    match found {
        Ok(v) => {
            match (v.first, v.last, v.head) {
                (Some(first), Some(last), Some(head)) => println!(
                    "the audit trail holds: {} rows, {first} to {last}; the last row's hash {head}",
                    v.rows
                ),
                _ => println!("the audit trail is empty"),
            }
            Ok(0)
        }
        Err(broken) => {
            println!("the audit trail is broken: {broken}");
            Ok(1)
        }
    }
}

/// `payhost keys generate`.
fn keys_generate(name: Option<String>, tenant: Option<String>, admin: bool) -> i32 {
    let key = config::keys::generate();
    let digest = config::keys::digest_hex(&key);
    let mut fields = Vec::new();
    if let Some(n) = &name {
        fields.push(format!("name = {}", toml_string(n)));
    }
    fields.push(format!("sha256 = \"{digest}\""));
    if let Some(t) = &tenant {
        fields.push(format!("tenant = {}", toml_string(t)));
    }
    let list = if admin { "admin_keys" } else { "api_keys" };
    println!("{key}");
    eprintln!(
        "The key above is shown once: give it to its user. Add this to host.{list} in \
         plugins.toml (it holds the key's SHA-256, not the key):"
    );
    eprintln!("  {{ {} }}", fields.join(", "));
    0
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// `payhost plugins sign`: a minisign signature beside each library, its trusted comment
/// naming the plugin and version the library declares.
fn sign(secret_key: &Path, files: &[PathBuf]) -> anyhow::Result<i32> {
    let key = std::fs::read_to_string(secret_key)
        .with_context(|| format!("cannot read {}", secret_key.display()))?;
    let scratch = tempfile::Builder::new().prefix("payhost-sign-").tempdir()?;
    let bare = scratch.path().join("unsigned");
    std::fs::create_dir(&bare)?;
    let mut failed = 0;
    for file in files {
        // The manifest is read from a copy with no signature beside it: the one being
        // replaced (made with another key, or this key for other bytes) is not checked.
        let outcome = std::fs::read(file)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                let copy = bare.join(
                    file.file_name()
                        .unwrap_or(std::ffi::OsStr::new("plugin.so")),
                );
                std::fs::write(&copy, &bytes).map_err(|e| e.to_string())?;
                let l = loader::load(
                    &copy,
                    scratch.path(),
                    &crate::plugins::trust::Policy::default(),
                )
                .map_err(|e| e.reason)?;
                std::fs::remove_file(&copy).map_err(|e| e.to_string())?;
                Ok((l, bytes))
            })
            .and_then(|(l, bytes)| {
                let comment = format!("plugin={} version={}", l.manifest.name, l.manifest.version);
                let text = crate::plugins::trust::sign(&key, &bytes, &comment)?;
                let out = crate::plugins::trust::signature_file(file);
                std::fs::write(&out, text).map_err(|e| e.to_string())?;
                Ok((out, comment))
            });
        match outcome {
            Ok((out, comment)) => {
                println!("signed {} ({comment}): {}", file.display(), out.display())
            }
            Err(e) => {
                eprintln!("error: {}: {e}", file.display());
                failed += 1;
            }
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

async fn serve(config_file: &Path) -> anyhow::Result<()> {
    let loaded = config::load(config_file)?;
    let telemetry = crate::telemetry::install(loaded.config.telemetry.settings().as_ref())?;
    let served = serve_loaded(config_file, loaded).await;
    telemetry.finish().await;
    served
}

async fn serve_loaded(config_file: &Path, loaded: config::Loaded) -> anyhow::Result<()> {
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

/// `payhost routing explain`: the running server's answer, else one made here.
async fn explain(
    config_file: &Path,
    request: &str,
    tenant: Option<String>,
    key: Option<String>,
) -> anyhow::Result<i32> {
    let loaded = config::load(config_file)?;
    let mut query: Vec<(&str, String)> = Vec::new();
    if let Some(t) = &tenant {
        query.push(("tenant", t.clone()));
    }
    if let Some(k) = &key {
        query.push(("idempotency_key", k.clone()));
    }
    let query = if query.is_empty() {
        String::new()
    } else {
        format!(
            "?{}",
            serde_urlencoded::to_string(&query).context("the tenant or key")?
        )
    };
    let path = format!("/admin/routing/explain{query}");
    let (source, status, answer) = match live_admin(&loaded, "POST", &path, request).await {
        Some((status, body)) => ("server", status, body),
        None => {
            let state = AppState::start_with_system_clock(loaded)
                .await
                .context("cannot open the database")?;
            let ctx = crate::service::Ctx {
                tenant,
                ..Default::default()
            };
            let outcome = match crate::http::parse_json(request.as_bytes()) {
                Err(e) => Err(e),
                Ok(req) => state
                    .service
                    .explain(&ctx, req, key.as_deref().unwrap_or("explain"))
                    .await
                    .map_err(crate::http::ApiError::from),
            };
            state.registry.stop_all(StopReason::Shutdown).await;
            match outcome {
                Ok(d) => ("here", 200, serde_json::to_value(d)?),
                Err(e) => ("here", e.status.as_u16(), serde_json::to_value(e.body())?),
            }
        }
    };
    if source == "here" {
        println!("(no server running this config: routed here, with every circuit closed)");
    }
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(if status == 200 { 0 } else { 1 })
}

async fn list(config_file: &Path, json: bool) -> anyhow::Result<i32> {
    let loaded = config::load(config_file)?;
    let (source, mut state) = match live_state(&loaded).await {
        Some(state) => ("server", state),
        None => {
            let registry = start_registry(&loaded, Arc::new(SystemClock)).await;
            let state = serde_json::json!({
                "plugins": registry.plugin_rows(),
                "instances": registry.instance_rows(),
            });
            registry.stop_all(StopReason::Shutdown).await;
            ("folder", state)
        }
    };
    state["source"] = source.into();
    if json {
        println!("{}", serde_json::to_string_pretty(&state)?);
        return Ok(0);
    }
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_owned();
    if source == "server" {
        println!("(live state of the server running this config)");
    } else {
        println!("(no server running this config: the folder was loaded here)");
    }
    println!(
        "{:<12} {:<9} {:<9} {:<8} {:<40} {:<28} STATE / FILE",
        "NAME", "VERSION", "CONTRACT", "TYPE", "CAPABILITIES", "TRUST"
    );
    for r in state["plugins"].as_array().into_iter().flatten() {
        let caps: Vec<String> = r["capabilities"]
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect();
        println!(
            "{:<12} {:<9} {:<9} {:<8} {:<40} {:<28} {}  {}",
            text(&r["name"]),
            text(&r["version"]),
            text(&r["contract"]),
            text(&r["plugin_type"]),
            caps.join(","),
            text(&r["trust"]),
            text(&r["state"]),
            text(&r["file"])
        );
    }
    for i in state["instances"].as_array().into_iter().flatten() {
        println!(
            "provider {:<12} plugin {:<12} {}",
            text(&i["name"]),
            text(&i["plugin"]),
            text(&i["state"])
        );
    }
    Ok(0)
}

async fn replay(config_file: &Path, id: &str) -> anyhow::Result<i32> {
    use crate::clock::Clock;
    use crate::store::Store;
    let loaded = config::load(config_file)?;
    let store = Store::open(&loaded.database_url())
        .await
        .with_context(|| format!("{}: cannot open the database", config_file.display()))?;
    // The same actions as /admin's and the console's (a running host picks the row up
    // within a second).
    let (done, action) = if id.starts_with("obx_") {
        (
            crate::operator::retry_outbox(&store, id, SystemClock.now_millis()).await,
            "outbox.retry",
        )
    } else {
        (
            crate::operator::replay_inbox(&store, id, SystemClock.now_secs()).await,
            "inbox.replay",
        )
    };
    let outcome = match &done {
        Ok(()) => "ok",
        Err(crate::operator::OperatorError::NotFound { .. }) => "404 not_found",
        Err(_) => "503 database_unavailable",
    };
    cli_audit_in(&store, action, &format!("id:{id}"), outcome).await;
    store.close().await;
    match done {
        Ok(()) => {
            println!("queued for processing again: {id}");
            Ok(0)
        }
        Err(crate::operator::OperatorError::NotFound { .. }) => {
            eprintln!(
                "error: no stored webhook or pending/failed handler work matches '{id}' \
                 (inbox ids start with whin_, outbox ids with obx_; done handler work is final)"
            );
            Ok(1)
        }
        Err(e) => Err(e.into()),
    }
}

async fn conformance(
    file: &Path,
    instance: Option<&Path>,
    approve_redirects: bool,
) -> anyhow::Result<i32> {
    use crate::plugins::conformance::{run, Options};
    let instance = instance.map(config::load_instance).transpose()?;
    let options = Options {
        config: instance.as_ref().map(config::InstanceFile::config_json),
        allow_hosts: instance
            .as_ref()
            .map(|i| i.allow_hosts.clone())
            .unwrap_or_default(),
        call_timeout: std::time::Duration::from_millis(
            instance
                .as_ref()
                .and_then(|i| i.call_timeout_ms)
                .unwrap_or(30_000),
        ),
        approve_redirects,
    };
    let scratch = tempfile::Builder::new()
        .prefix("payhost-conformance-")
        .tempdir()
        .context("cannot create a private temporary folder")?;
    match run(file, scratch.path(), options, Arc::new(SystemClock)).await {
        Ok(report) => {
            println!("conformance of {}", file.display());
            println!("{report}");
            Ok(if report.passed() { 0 } else { 1 })
        }
        Err(e) => {
            eprintln!("error ({:?}): {e}", e.error_type);
            Ok(2)
        }
    }
}

fn check(config_file: &Path, file: &Path) -> i32 {
    // The trust of the config in force, when there is one (its keys, its lock).
    let policy = config::load(config_file)
        .map(|l| crate::app::trust_policy(&l))
        .unwrap_or_default();
    // A private, unpredictable 0700 folder: another user cannot plant a library there.
    let dir = match tempfile::Builder::new().prefix("payhost-check-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: cannot create a temporary folder: {e}");
            return 2;
        }
    };
    match loader::load(file, dir.path(), &policy) {
        Ok(l) => {
            let m = &l.manifest;
            let keys: Vec<String> = m
                .config
                .iter()
                .map(|k| {
                    let mut tags = Vec::new();
                    if k.required {
                        tags.push("required");
                    }
                    if k.secret {
                        tags.push("secret");
                    }
                    if tags.is_empty() {
                        k.name.clone()
                    } else {
                        format!("{} ({})", k.name, tags.join(", "))
                    }
                })
                .collect();
            println!("file:            {}", file.display());
            println!("name:            {}", m.name);
            println!("version:         {}", m.version);
            println!("contract:        {}", m.contract);
            println!("type:            {}", m.plugin_type);
            println!("config keys:     {}", keys.join(", "));
            println!("capabilities:    {}", m.capabilities.join(", "));
            println!("webhook headers: {}", m.webhook_headers.join(", "));
            println!("trust:           {}", l.trust.status());
            println!("sha256:          {}", l.trust.sha256);
            0
        }
        Err(e) => {
            eprintln!("error ({:?}): {e}", e.error_type);
            1
        }
    }
}
