//! `payhost-compat`: builds what the contract compatibility test (`tests/tests/compat.rs`)
//! loads, into `target/compat/`. `make test` runs it after building the workspace and
//! before the tests (cargo holds its build lock while tests run, so they cannot build).
//!
//! - `payhost-2.0` and `libmock-2.0.so`: the host and the mock from the tagged plugin
//!   contract 2.0 tree (`git archive` of the commit in `tests/compat/contract-2.0.commit`,
//!   tag `plugin-api-v2.0.0`), outside the workspace. The contract crate keeps its name (a
//!   package's name is part of every type's identity abi_stable checks); the mock and the
//!   host are renamed so their artifacts cannot overwrite the current ones.
//! - `libmock-2.1.so`: the mock of the last contract 2.1 tree
//!   (`tests/compat/contract-2.1.commit`), the same way.
//! - `libbroken-contract.so`: a plugin built against a copy of the current contract whose
//!   `ProviderFfi::call` takes one more parameter (a change to the frozen binary layer).
//! - `libmy_provider.so`: `plugins/template` copied outside the workspace and built as an
//!   outside author would, against the kit by path (README, "Writing a provider plugin").
//!
//! All three share the workspace's target folder, so the dependencies compiled for the
//! workspace are reused; only the copied crates compile.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

type Res<T> = Result<T, String>;

fn main() {
    if let Err(e) = run() {
        eprintln!("payhost-compat: {e}");
        std::process::exit(1);
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_owned()
}

fn target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

fn run() -> Res<()> {
    let out = target().join("compat");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    frozen(&out, "2.0", true)?;
    frozen(&out, "2.1", false)?;
    broken(&out)?;
    outside(&out)?;
    println!("payhost-compat: built {}", out.display());
    Ok(())
}

fn sh(cmd: &mut Command, what: &str) -> Res<()> {
    let status = cmd
        .status()
        .map_err(|e| format!("{what}: cannot run: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

fn read(p: &Path) -> Res<String> {
    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
}

/// Writes `text` to `p` only when it differs, so cargo's fingerprints hold across runs.
fn write(p: &Path, text: &str) -> Res<()> {
    if std::fs::read_to_string(p).ok().as_deref() == Some(text) {
        return Ok(());
    }
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(p, text).map_err(|e| format!("{}: {e}", p.display()))
}

fn edit_toml(p: &Path, f: impl FnOnce(&mut toml::Table)) -> Res<()> {
    let mut t: toml::Table = read(p)?
        .parse()
        .map_err(|e| format!("{}: {e}", p.display()))?;
    f(&mut t);
    write(p, &t.to_string())
}

fn members(t: &mut toml::Table, list: &[&str]) {
    let list: toml::Value = list
        .iter()
        .map(|m| toml::Value::from(*m))
        .collect::<Vec<_>>()
        .into();
    if let Some(ws) = t.get_mut("workspace").and_then(toml::Value::as_table_mut) {
        ws.insert("members".into(), list.clone());
        ws.insert("default-members".into(), list);
        ws.remove("exclude");
    }
}

fn copy(from: &Path, to: &Path) -> Res<()> {
    std::fs::copy(from, to)
        .map(drop)
        .map_err(|e| format!("{} → {}: {e}", from.display(), to.display()))
}

/// The mock (and, with `with_host`, the host) of the contract `version`'s tree: the commit
/// in `tests/compat/contract-<version>.commit`, built outside the workspace under names of
/// their own (`payhost-frozen-<20>-mock`...), copied to `libmock-<version>.so` and
/// `payhost-<version>`.
fn frozen(out: &Path, version: &str, with_host: bool) -> Res<()> {
    let commit = read(&root().join(format!("tests/compat/contract-{version}.commit")))?
        .trim()
        .to_owned();
    let slug = version.replace('.', "");
    let (mock, host, bin) = (
        format!("payhost-frozen-{slug}-mock"),
        format!("payhost-frozen-{slug}-host"),
        format!("payhost-frozen-{slug}"),
    );
    let src = out.join(format!("src-{version}"));
    // What was extracted and renamed: done again when either changes.
    let stamp = src.join(".commit");
    let stamped = format!("{commit} {mock}");
    if read(&stamp).ok().as_deref() != Some(stamped.as_str()) {
        let _ = std::fs::remove_dir_all(&src);
        std::fs::create_dir_all(&src).map_err(|e| format!("{}: {e}", src.display()))?;
        let mut paths = vec!["Cargo.toml", "Cargo.lock", "plugin-api", "plugins/mock"];
        if with_host {
            paths.push("host");
        }
        let mut archive = Command::new("git")
            .arg("-C")
            .arg(root())
            .args(["archive", "--format=tar", &commit])
            .args(&paths)
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("git archive: {e}"))?;
        let tar = Command::new("tar")
            .arg("-x")
            .arg("-C")
            .arg(&src)
            .stdin(archive.stdout.take().ok_or("git archive: no output")?)
            .status()
            .map_err(|e| format!("tar: {e}"))?;
        let git = archive.wait().map_err(|e| format!("git archive: {e}"))?;
        if !git.success() || !tar.success() {
            return Err(format!(
                "cannot extract commit {commit} (the {version} contract): the compat test \
                 needs the repository's history (a full clone, not a shallow one or a \
                 source tarball)"
            ));
        }
        let mut crates = vec!["plugin-api", "plugin-api/kit", "plugins/mock"];
        if with_host {
            crates.push("host");
        }
        edit_toml(&src.join("Cargo.toml"), |t| members(t, &crates))?;
        edit_toml(&src.join("plugins/mock/Cargo.toml"), |t| {
            t["package"]["name"] = mock.as_str().into();
        })?;
        if with_host {
            edit_toml(&src.join("host/Cargo.toml"), |t| {
                t["package"]["name"] = host.as_str().into();
                let mut lib = toml::Table::new();
                lib.insert("name".into(), "payhost".into());
                lib.insert("path".into(), "src/lib.rs".into());
                t.insert("lib".into(), lib.into());
                let mut b = toml::Table::new();
                b.insert("name".into(), bin.as_str().into());
                b.insert("path".into(), "src/main.rs".into());
                t.insert("bin".into(), toml::Value::Array(vec![b.into()]));
            })?;
        }
        write(&stamp, &stamped)?;
    }
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build
        .arg("build")
        .arg("--manifest-path")
        .arg(src.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target())
        .args(["-p", &mock]);
    if with_host {
        build.args(["-p", &host]);
    }
    sh(&mut build, &format!("building the {version} mock"))?;
    let built = target().join("debug");
    let dll = std::env::consts::DLL_EXTENSION;
    copy(
        &built.join(format!("lib{}.{dll}", mock.replace('-', "_"))),
        &out.join(format!("libmock-{version}.{dll}")),
    )?;
    if with_host {
        copy(&built.join(&bin), &out.join(format!("payhost-{version}")))?;
    }
    Ok(())
}

/// What the broken copy of `plugin-api/src/ffi.rs` changes: `ProviderFfi::call` (the first
/// `call` declared) takes one more parameter, and the contract's own caller passes it.
const PATCHES: [(&str, &str); 2] = [
    (
        "fn call(&self, op: RStr<'_>, message: RSlice<'_, u8>) -> RResult<RVec<u8>, RVec<u8>>;",
        "fn call(&self, op: RStr<'_>, message: RSlice<'_, u8>, deadline_ms: i64) -> RResult<RVec<u8>, RVec<u8>>;",
    ),
    (
        "provider.call(O::NAME.into(), message.as_slice().into())",
        "provider.call(O::NAME.into(), message.as_slice().into(), 0)",
    ),
];

/// A plugin against the current contract with `ProviderFfi::call` changed.
fn broken(out: &Path) -> Res<()> {
    let src = out.join("src-broken");
    let api = root().join("plugin-api");
    for file in walk(&api.join("src"))? {
        let rel = file.strip_prefix(&api).map_err(|e| e.to_string())?;
        let mut text = read(&file)?;
        if rel == Path::new("src/ffi.rs") {
            for (real, broken) in PATCHES {
                let at = text.find(real).ok_or_else(|| {
                    format!(
                        "plugin-api/src/ffi.rs no longer has `{real}`: update payhost-compat's \
                         broken contract to the new code"
                    )
                })?;
                text.replace_range(at..at + real.len(), broken);
            }
        }
        write(&src.join("plugin-api").join(rel), &text)?;
    }
    write(
        &src.join("plugin-api/Cargo.toml"),
        &read(&api.join("Cargo.toml"))?,
    )?;
    let plugin = root().join("tests/compat/broken-plugin");
    for rel in ["Cargo.toml", "src/lib.rs"] {
        write(
            &src.join("broken-plugin").join(rel),
            &read(&plugin.join(rel))?,
        )?;
    }
    let mut manifest: toml::Table = read(&root().join("Cargo.toml"))?
        .parse()
        .map_err(|e| format!("Cargo.toml: {e}"))?;
    members(&mut manifest, &["plugin-api", "broken-plugin"]);
    write(&src.join("Cargo.toml"), &manifest.to_string())?;
    write(&src.join("Cargo.lock"), &read(&root().join("Cargo.lock"))?)?;
    sh(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .arg("build")
            .arg("--manifest-path")
            .arg(src.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(target())
            .args(["-p", "payhost-broken-contract-plugin"]),
        "building the plugin against the broken contract",
    )?;
    let ext = std::env::consts::DLL_EXTENSION;
    copy(
        &target()
            .join("debug")
            .join(format!("libpayhost_broken_contract_plugin.{ext}")),
        &out.join(format!("libbroken-contract.{ext}")),
    )
}

/// The template, copied out of the workspace into a crate of its own, as README's
/// "Writing a provider plugin" tells an author to.
fn outside(out: &Path) -> Res<()> {
    let src = out.join("my-provider");
    let template = root().join("plugins/template");
    write(
        &src.join("src/lib.rs"),
        &read(&template.join("src/lib.rs"))?,
    )?;
    write(
        &src.join("rustfmt.toml"),
        &read(&template.join("rustfmt.toml"))?,
    )?;
    let kit = root().join("plugin-api/kit");
    write(
        &src.join("Cargo.toml"),
        &format!(
            "[package]\nname = \"my-provider\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [lib]\ncrate-type = [\"cdylib\", \"rlib\"]\n\n\
             [dependencies]\npayhost-plugin-kit = {{ path = {:?} }}\n\
             serde = {{ version = \"1\", features = [\"derive\"] }}\nserde_json = \"1\"\n\
             schemars = \"1\"\n\n\
             # Its own workspace: nothing of payhost's is inherited.\n[workspace]\n\n\
             # As payhost's own profile: the shared target folder reuses its dependencies.\n\
             [profile.dev.package.\"*\"]\nopt-level = 1\n",
            kit.display().to_string()
        ),
    )?;
    // The workspace's lock file pins the same dependency versions (and keeps it offline).
    write(&src.join("Cargo.lock"), &read(&root().join("Cargo.lock"))?)?;
    sh(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .arg("build")
            .arg("--manifest-path")
            .arg(src.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(target()),
        "building the template outside the workspace",
    )?;
    let ext = std::env::consts::DLL_EXTENSION;
    copy(
        &target().join("debug").join(format!("libmy_provider.{ext}")),
        &out.join(format!("libmy_provider.{ext}")),
    )
}

fn walk(dir: &Path) -> Res<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let p = e.map_err(|e| e.to_string())?.path();
        if p.is_dir() {
            out.extend(walk(&p)?);
        } else {
            out.push(p);
        }
    }
    Ok(out)
}
