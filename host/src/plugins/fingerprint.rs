//! What identifies one version of a library file (and of its signature): the registry keeps
//! the last version acted on, the folder sync compares.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// What identifies one version of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    len: u64,
    mtime_ns: i128,
    inode: u64,
    /// Permissions and owner: fixing a refused file's mode makes it load.
    mode: u32,
    uid: u32,
    /// Its signature file's version: signing a library (again) is deploying it again.
    signature: Option<Stamp>,
}

/// A file's size and modification time, inode.
pub(super) type Stamp = (u64, i128, u64);

pub(super) fn stamp(file: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(file).ok()?;
    Some((
        m.len(),
        i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        m.ino(),
    ))
}

pub(super) fn fingerprint(file: &Path) -> Option<Fingerprint> {
    let m = std::fs::metadata(file).ok()?;
    Some(Fingerprint {
        len: m.len(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        inode: m.ino(),
        mode: m.mode(),
        uid: m.uid(),
        signature: stamp(&super::trust::signature_file(file)),
    })
}
