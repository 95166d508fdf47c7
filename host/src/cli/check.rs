//! `payhost config check`: every problem of a config at once (its shape, the checks across sections, the bind, the plugins folder and each instance's keys).

use super::*;

/// `payhost config check`: every problem of the configuration, the plugins folder and the
/// instances' keys, one per line, without serving; 0 when there is none.
/// One problem `config check` found: in the config file (at `key`, when one is at fault)
/// or, `file` unset, in a plugin library (its message names the file).
#[derive(serde::Serialize)]
pub(super) struct Finding {
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

pub(super) fn config_check(config_file: &Path, json: bool) -> anyhow::Result<i32> {
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
pub(super) fn folder_libraries(
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
