//! The host's layers, held against its code: each top-level module of `host/src` imports
//! only modules on floors below its own, so the host has no import cycle between its parts
//! (README, "Architecture", lists the same floors). A new `crate::x` reference that points
//! up or sideways fails here, naming the file and the module it reached for.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Bottom up; modules on one floor do not import each other.
const FLOORS: &[&[&str]] = &[
    &["clock", "locks", "outgoing", "pace"],
    &["events", "history", "store", "telemetry"],
    &["config", "audit", "api"],
    &["plugins", "access"],
    &["routing", "metrics"],
    &["retention", "service"],
    &["lease"],
    &["webhooks", "outbox", "resolver"],
    &["operator"],
    &["app"],
    &["http"],
    &["console"],
    &["cli"],
];

fn floor_of(module: &str) -> Option<usize> {
    FLOORS.iter().position(|f| f.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The top-level modules `crate::<name>` that the code in `text` names (comments left out:
/// a doc link is no import).
fn named_modules(text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.push(name);
        }
    }
    out
}

#[test]
fn each_module_imports_only_the_floors_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut wrong = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let module = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(own) = floor_of(&module) else {
            wrong.push(format!(
                "{}: module '{module}' is on no floor (add it to FLOORS and README's Architecture)",
                relative.display()
            ));
            continue;
        };
        *seen.entry(module.clone()).or_default() += 1;
        let text = std::fs::read_to_string(file).unwrap();
        for named in named_modules(&text) {
            if named == module {
                continue;
            }
            match floor_of(&named) {
                Some(f) if f < own => {}
                Some(f) => wrong.push(format!(
                    "{}: '{module}' (floor {own}) uses crate::{named} (floor {f})",
                    relative.display()
                )),
                None => {}
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
    // Every floor's module exists (the list is not stale either).
    for module in FLOORS.iter().flat_map(|f| f.iter()) {
        assert!(
            seen.contains_key(*module),
            "no module '{module}' in host/src"
        );
    }
}
