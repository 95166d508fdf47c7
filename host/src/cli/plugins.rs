//! `payhost plugins list|check|lock|sign|conformance`: the plugins folder as the live server or a scratch registry sees it, the lock file, signatures, the conformance suite.

use super::*;

/// `payhost plugins lock`: the folder's libraries (each checked as `serve` would, with the
/// lock now in force set aside) written to the lock file.
pub(super) async fn lock(config_file: &Path) -> anyhow::Result<i32> {
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

/// `payhost plugins sign`: a minisign signature beside each library, its trusted comment
/// naming the plugin and version the library declares.
pub(super) fn sign(secret_key: &Path, files: &[PathBuf]) -> anyhow::Result<i32> {
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

pub(super) async fn list(config_file: &Path, json: bool) -> anyhow::Result<i32> {
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

pub(super) async fn conformance(
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
            if refused_egress(&report) {
                eprintln!(
                    "hint: the plugin's HTTP calls were refused: an instance reaches only the \
                     hosts in its allow_hosts. Give an instance file (--config) with the \
                     plugin's keys under [config] and the hosts of a sandbox or a fake of \
                     the provider in allow_hosts"
                );
            }
            Ok(if report.passed() { 0 } else { 1 })
        }
        Err(e) => {
            eprintln!("error ({:?}): {e}", e.error_type);
            Ok(2)
        }
    }
}

/// Whether a check failed because the instance may reach no host.
fn refused_egress(report: &payhost_plugin_kit::conformance::Report) -> bool {
    use payhost_plugin_kit::conformance::Outcome;
    report
        .checks
        .iter()
        .any(|c| matches!(&c.outcome, Outcome::Fail(why) if why.contains("allow_hosts")))
}

pub(super) fn check(config_file: &Path, file: &Path) -> i32 {
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
