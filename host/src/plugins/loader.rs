//! Loading one plugin library: a private copy, abi_stable's header and ABI checks, the
//! manifest call. Never `RootModule::load_from_file`: it caches one module per type, so a
//! second plugin would silently come back as the first.
//!
//! The binary boundary (`payhost_plugin_api::ffi`) is frozen for the whole 2.x line, so a
//! 2.x plugin passes abi_stable's layout check in any 2.x host; what grows travels as JSON.
//! A library whose layout differs anyway (built against a broken or foreign contract) is
//! refused with a message that names the type, the field and what differs.

use super::trust::{self, Policy, Trust};
use crate::events::ErrorType;
use crate::locks::Locked;
use payhost_plugin_api::abi_stable::abi_stability::abi_checking::{
    check_layout_compatibility, AbiInstability, AbiInstabilityErrors, ExpectedFound,
};
use payhost_plugin_api::abi_stable::library::{lib_header_from_path, LibraryError};
use payhost_plugin_api::abi_stable::type_layout::TLFieldOrFunction;
use payhost_plugin_api::abi_stable::StableAbi;
use payhost_plugin_api::ffi::{decode, decode_error, PluginRootRef};
use payhost_plugin_api::{Manifest, PLUGIN_TYPE_PAYMENT};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// Why a file could not be loaded, and which lifecycle error type that is.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct LoadError {
    pub file: String,
    pub error_type: ErrorType,
    pub reason: String,
    /// Refused for what it is (`invalid signature`, `unsigned`, `modified`, `not locked`),
    /// not for being unloadable.
    pub refusal: Option<&'static str>,
}

/// Writes `bytes` (the file as read) to a private, uniquely named copy and maps it; the copy
/// is deleted once mapped (the mapping outlives the name).
fn map_copy(
    file: &Path,
    private_dir: &Path,
    bytes: &[u8],
) -> Result<PluginRootRef, (ErrorType, String)> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(private_dir)
        .map_err(|e| {
            (
                ErrorType::Load,
                format!("cannot create {}: {e}", private_dir.display()),
            )
        })?;
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("plugin");
    let copy = private_dir.join(format!(
        "{stem}-{}-{}.{}",
        std::process::id(),
        COPY_SEQ.fetch_add(1, Ordering::Relaxed),
        std::env::consts::DLL_EXTENSION
    ));
    // A new file only readable by payhost: never one planted under the name in advance.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&copy)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| (ErrorType::Load, format!("cannot copy: {e}")))?;
    // The dynamic loader trusts an ELF file's sizes: a truncated one (a copy still being
    // written) would fault inside dlopen and kill the host. Check them first.
    let result = check_elf(&copy)
        .map_err(|r| (ErrorType::Load, r))
        .and_then(|()| open(&copy));
    let _ = std::fs::remove_file(&copy);
    result
}

/// A loaded library: its root module, what it declared, and what the trust checks found.
#[derive(Clone)]
pub struct Loaded {
    pub root: PluginRootRef,
    pub manifest: Manifest,
    pub file: PathBuf,
    pub trust: Trust,
}

/// Folder of private copies under the data dir.
pub fn private_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("plugin-copies")
}

/// Removes private copies left by an earlier run (a crash between copy and load).
pub fn clean_private_dir(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Shared libraries in a folder, sorted by file name so load order is stable.
pub fn scan(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .is_some_and(|e| e == std::env::consts::DLL_EXTENSION)
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Whether payhost should run code from `path` (a plugin folder, or a file in it): it
/// must not be writable by group or others, and must belong to payhost's own user or root;
/// anyone else who can change it could run code as payhost. A file may be a symlink only
/// to a file inside `folder`.
///
/// # Errors
/// What is wrong and the command that fixes it.
pub fn trusted(folder: &Path, file: Option<&Path>) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let me = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
    let check =
        |path: &Path, what: &str| -> Result<(), String> {
            let meta = std::fs::metadata(path)
                .map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
            let mode = meta.mode() & 0o7777;
            if mode & 0o022 != 0 {
                return Err(format!(
                "{what} {} is writable by {} (mode {mode:04o}): anyone who can write it can run \
                 code as payhost; fix: chmod go-w {}",
                path.display(),
                if mode & 0o002 != 0 { "everyone" } else { "its group" },
                path.display()
            ));
            }
            if meta.uid() != me && meta.uid() != 0 {
                return Err(format!(
                    "{what} {} belongs to uid {}, neither payhost's user (uid {me}) nor root; \
                 fix: chown {me} {}",
                    path.display(),
                    meta.uid(),
                    path.display()
                ));
            }
            Ok(())
        };
    check(folder, "the plugin folder")?;
    let Some(file) = file else { return Ok(()) };
    let link = std::fs::symlink_metadata(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    if link.file_type().is_symlink() {
        let target = file
            .canonicalize()
            .map_err(|e| format!("cannot follow the symlink {}: {e}", file.display()))?;
        let inside = folder
            .canonicalize()
            .is_ok_and(|f| target.parent() == Some(f.as_path()));
        if !inside {
            return Err(format!(
                "{} is a symlink to {}, outside the plugin folder; fix: copy the library into \
                 the folder instead",
                file.display(),
                target.display()
            ));
        }
    }
    check(file, "the plugin file")
}

static COPY_SEQ: AtomicU64 = AtomicU64::new(0);

/// The libraries mapped into this process, by the SHA-256 of their bytes. A library is
/// never unmapped (abi_stable's rule: code of a plugin may still be running), so loading
/// the same bytes again — a reload of an unchanged file — takes the root already mapped
/// instead of mapping another copy: reloads in a loop cost nothing, only new versions
/// take memory.
fn mapped() -> &'static Mutex<HashMap<[u8; 32], PluginRootRef>> {
    static MAPPED: OnceLock<Mutex<HashMap<[u8; 32], PluginRootRef>>> = OnceLock::new();
    MAPPED.get_or_init(Mutex::default)
}

/// Loads one plugin file from a private, uniquely named copy of the bytes read (or the
/// library already mapped from the same bytes).
///
/// Loading the copy means `dlopen` never returns a stale library for a path it has seen,
/// and an operator overwriting the original cannot corrupt the mapped code. The copy is
/// deleted once mapped (the mapping outlives the name).
///
/// # Errors
/// [`LoadError`] with the exact reason: unreadable file, not a shared library, not a
/// payhost plugin, another major contract version, an incompatible layout, a bad manifest.
pub fn load(file: &Path, private_dir: &Path, policy: &Policy) -> Result<Loaded, LoadError> {
    let err = |error_type, reason: String| LoadError {
        file: file.display().to_string(),
        error_type,
        reason,
        refusal: None,
    };
    let refused = |r: trust::Refusal| LoadError {
        file: file.display().to_string(),
        error_type: ErrorType::Load,
        reason: r.message,
        refusal: Some(r.kind),
    };
    let bytes =
        std::fs::read(file).map_err(|e| err(ErrorType::Load, format!("cannot read: {e}")))?;
    // Judged on the bytes read, which are also the ones mapped (the private copy is written
    // from them): a file swapped after this check is never what loads.
    let trust = policy.judge(file, &bytes).map_err(refused)?;
    #[cfg(debug_assertions)]
    if let Some(swap) = std::env::var_os("PAYHOST_TEST_SWAP_DURING_LOAD") {
        // Test hook (debug builds only): the file replaced right after its check, as an
        // attacker racing the loader would. What loads must still be the bytes checked.
        let _ = std::fs::copy(swap, file);
    }
    let digest = trust.digest;
    let known = mapped().locked().get(&digest).copied();
    let root = match known {
        Some(root) => root,
        None => {
            let root = map_copy(file, private_dir, &bytes).map_err(|(t, r)| err(t, r))?;
            mapped().locked().insert(digest, root);
            root
        }
    };
    let manifest: Manifest = match (root.manifest())().into_result() {
        Ok(bytes) => {
            decode(&bytes, "the plugin's manifest").map_err(|e| err(ErrorType::Load, e.message))?
        }
        Err(bytes) => {
            return Err(err(
                ErrorType::Load,
                format!(
                    "the plugin's manifest call failed: {}",
                    decode_error(&bytes)
                ),
            ))
        }
    };
    if manifest.name.trim().is_empty() {
        return Err(err(
            ErrorType::Load,
            "the plugin declares an empty name".into(),
        ));
    }
    if manifest.plugin_type != PLUGIN_TYPE_PAYMENT {
        return Err(err(
            ErrorType::Load,
            format!(
                "plugin type '{}' is not '{PLUGIN_TYPE_PAYMENT}'",
                manifest.plugin_type
            ),
        ));
    }
    policy.confirm(&trust, &manifest).map_err(refused)?;
    Ok(Loaded {
        root,
        manifest,
        file: file.to_owned(),
        trust,
    })
}

/// Refuses an ELF64 file whose program segments or section table reach past its end.
/// Files that are not ELF64 are left for the dynamic loader to refuse.
fn check_elf(file: &Path) -> Result<(), String> {
    use std::io::Read;
    let mut f = std::fs::File::open(file).map_err(|e| format!("cannot read: {e}"))?;
    let len = f.metadata().map_err(|e| format!("cannot read: {e}"))?.len();
    // The headers sit at the start; 64 KiB holds them for any library we build.
    let mut head = Vec::with_capacity(64 * 1024);
    f.by_ref()
        .take(64 * 1024)
        .read_to_end(&mut head)
        .map_err(|e| format!("cannot read: {e}"))?;
    elf_fits(&head, len)
}

/// `b` is the start of a file of `len` bytes.
fn elf_fits(b: &[u8], len: u64) -> Result<(), String> {
    const PT_LOAD: u32 = 1;
    const PT_DYNAMIC: u32 = 2;
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return Ok(());
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as u64;
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap_or_default());
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or_default());
    let truncated = |what: String| {
        Err(format!(
            "not a loadable shared library: truncated or malformed ({what}, but the file has {len} bytes)"
        ))
    };
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    let (shoff, shentsize, shnum) = (u64_at(0x28), u16_at(0x3a), u16_at(0x3c));
    let ph_end = phoff.saturating_add(phentsize.saturating_mul(phnum));
    if ph_end > len || phentsize < 56 {
        return truncated(format!("program headers end at byte {ph_end}"));
    }
    if ph_end > b.len() as u64 {
        return Err(
            "not a loadable shared library: its program headers are not where a \
                    shared library keeps them"
                .into(),
        );
    }
    if shoff != 0 {
        let sh_end = shoff.saturating_add(shentsize.saturating_mul(shnum));
        if sh_end > len {
            return truncated(format!("section headers end at byte {sh_end}"));
        }
    }
    for i in 0..phnum {
        let at = (phoff + i * phentsize) as usize;
        let kind = u32_at(at);
        if kind == PT_LOAD || kind == PT_DYNAMIC {
            let end = u64_at(at + 8).saturating_add(u64_at(at + 0x20));
            if end > len {
                return truncated(format!("segment {i} ends at byte {end}"));
            }
        }
    }
    Ok(())
}

fn open(copy: &Path) -> Result<PluginRootRef, (ErrorType, String)> {
    let header = lib_header_from_path(copy).map_err(|e| match e {
        LibraryError::OpenError { err, .. } => (
            ErrorType::Load,
            format!("not a loadable shared library: {err}"),
        ),
        LibraryError::GetSymbolError { .. } => (
            ErrorType::Abi,
            "not a payhost plugin: it does not export abi_stable's root module symbol \
             (_1as_0lib_1header_0root_bmodule_bloader)"
                .to_owned(),
        ),
        other => (ErrorType::Abi, summary(&other)),
    })?;
    header
        .init_root_module::<PluginRootRef>()
        .map_err(|e| match e {
            LibraryError::IncompatibleVersionNumber {
                expected_version,
                actual_version,
                ..
            } => (
                ErrorType::Abi,
                format!(
                    "library version mismatch: the plugin was built against plugin contract \
                     {actual_version}, this host speaks {expected_version} (another major \
                     version: rebuild the plugin against payhost-plugin-api {}.x)",
                    expected_version.major
                ),
            ),
            LibraryError::AbiInstability(report) => {
                tracing::debug!(error = %report, "full ABI mismatch report");
                // abi_stable hands back its report as text; the check run again here gives
                // it as data, to name the type, the field and what differs.
                let described = header
                    .layout()
                    .and_then(|plugin| {
                        check_layout_compatibility(PluginRootRef::LAYOUT, plugin).err()
                    })
                    .map_or_else(|| summary_text(&report.to_string()), |e| describe(&e));
                (
                    ErrorType::Abi,
                    format!("incompatible plugin ABI: {described}"),
                )
            }
            other => (ErrorType::Abi, summary(&other)),
        })
}

/// One line per difference abi_stable found: where (the path of fields from the root
/// module down to the type at fault) and what differs, expected and found.
pub(crate) fn describe(report: &AbiInstabilityErrors) -> String {
    let mut parts = Vec::new();
    for error in report.errors.iter() {
        let mut path: Vec<String> = vec![report.interface.full_type().to_string()];
        for step in error.stack_trace.iter() {
            if let TLFieldOrFunction::Field(f) = &step.expected {
                let step = match f.name() {
                    "__returns" => "returns".to_owned(),
                    // Positional fields (a tuple's, an enum payload's) go by their type.
                    n if n
                        .trim_start_matches("field_")
                        .chars()
                        .all(|c| c.is_ascii_digit()) =>
                    {
                        f.full_type().to_string()
                    }
                    n => n.to_owned(),
                };
                if path.last() != Some(&step) {
                    path.push(step);
                }
            }
        }
        let diffs: Vec<String> = error.errs.iter().filter_map(difference).collect();
        if !diffs.is_empty() {
            parts.push(format!("in {}: {}", path.join(" -> "), diffs.join("; ")));
        }
    }
    if parts.is_empty() {
        "layout mismatch (abi_stable gave no detail)".to_owned()
    } else {
        parts.join(" | ")
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_owned()
}

/// A field's name as people read it: a function's return value, a parameter.
fn field_name(name: &str) -> String {
    match name {
        "__returns" => "the return value".to_owned(),
        n if n.contains(',') => "the parameters".to_owned(),
        n => match n.strip_prefix("param_").and_then(|i| i.parse::<u32>().ok()) {
            Some(i) => format!("parameter {}", i + 1),
            None => n.to_owned(),
        },
    }
}

/// "what: expected X, found Y" for one abi_stable difference; `None` when the two sides
/// print the same (abi_stable reports some follow-on differences that say nothing).
fn difference(e: &AbiInstability) -> Option<String> {
    fn ef<T: std::fmt::Display>(what: &str, v: &ExpectedFound<T>) -> Option<String> {
        let (x, y) = (
            first_line(&v.expected.to_string()),
            first_line(&v.found.to_string()),
        );
        (x != y).then(|| format!("{what}: expected {x}, found {y}"))
    }
    fn efd<T: std::fmt::Debug>(what: &str, v: &ExpectedFound<T>) -> Option<String> {
        let (x, y) = (format!("{:?}", v.expected), format!("{:?}", v.found));
        (x != y).then(|| format!("{what}: expected {x}, found {y}"))
    }
    match e {
        AbiInstability::Name(v) => ef("mismatched type", v),
        AbiInstability::Package(v) => ef("mismatched package", v),
        AbiInstability::PackageVersion(v) => ef("incompatible package version", v),
        AbiInstability::Size(v) => ef("different size", v),
        AbiInstability::Alignment(v) => ef("different alignment", v),
        AbiInstability::FieldCountMismatch(v) => ef("different number of fields", v),
        AbiInstability::UnexpectedField(v) => {
            let show = |f: &payhost_plugin_api::abi_stable::type_layout::TLField| {
                format!("{}: {}", field_name(f.name()), f.full_type())
            };
            let (x, y) = (show(&v.expected), show(&v.found));
            (x != y).then(|| format!("a field differs: expected '{x}', found '{y}'"))
        }
        AbiInstability::TooManyVariants(v) => ef("different number of variants", v),
        AbiInstability::UnexpectedVariant(v) => efd("unexpected variant", v),
        AbiInstability::MismatchedPrimitive(v) => efd("different primitive", v),
        AbiInstability::MismatchedPrefixSize(v) => ef("a prefix type's prefix differs", v),
        AbiInstability::FnQualifierMismatch(v) => ef("function qualifiers differ", v),
        AbiInstability::FnLifetimeMismatch(v) => ef("function lifetimes differ", v),
        AbiInstability::TLDataDiscriminant(v) => efd("different kind of type", v),
        AbiInstability::ReprAttr(v) => efd("different repr", v),
        AbiInstability::MismatchedExhaustiveness(v) => efd("enums differ in exhaustiveness", v),
        other => Some(first_line(&format!("{other:?}"))),
    }
}

/// One line of an abi_stable error (some are kilobytes long; the rest goes to debug logs).
fn summary(e: &LibraryError) -> String {
    let text = e.to_string();
    tracing::debug!(error = %text, "full plugin load error");
    summary_text(&text)
}

fn summary_text(text: &str) -> String {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("unknown error")
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_file_is_a_load_error_and_leaves_no_copy() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.so");
        std::fs::write(&file, "not a library").unwrap();
        let private = dir.path().join("copies");
        let e = load(&file, &private, &Policy::default())
            .err()
            .expect("a text file must not load");
        assert_eq!(e.error_type, ErrorType::Load);
        assert!(e.to_string().contains("x.so"), "{e}");
        assert_eq!(std::fs::read_dir(&private).unwrap().count(), 0);
    }

    #[test]
    fn truncated_elf_files_are_refused_before_the_dynamic_loader_sees_them() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let head = |cut: usize| &me[..cut.min(64 * 1024)];
        assert!(
            elf_fits(head(me.len()), me.len() as u64).is_ok(),
            "a whole ELF file passes"
        );
        for cut in [8192, me.len() / 2, me.len() - 1] {
            let e = elf_fits(head(cut), cut as u64).unwrap_err();
            assert!(e.contains("truncated"), "{cut}: {e}");
        }
        let text = b"plain text, not ELF at all, and long enough to have a header...";
        assert!(elf_fits(text, text.len() as u64).is_ok());
    }

    #[test]
    fn scan_lists_only_shared_libraries_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["b.so", "a.so", "readme.txt"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub.so")).unwrap();
        let names: Vec<_> = scan(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.so", "b.so"]);
    }
}
