//! Trusted plugins: what a library is, not only where it lies. Two checks, both on the very
//! bytes the loader maps (read once; the private copy is written from them), before the
//! dynamic loader sees them — a file swapped after the check is never what loads:
//!
//! - **Signatures**: a detached minisign signature next to the library (`libx.so.minisig`,
//!   made with `minisign -S` or `payhost plugins sign`) from one of the keys the operator
//!   trusts (`host.trusted_keys`). Its trusted comment, covered by the signature, must name
//!   the plugin and version the library declares (`plugin=<name> version=<version>`).
//!   With `host.require_signature` (the default beyond loopback) an unsigned library is
//!   refused; a signature that does not verify is refused always.
//! - **The lock** (`plugins.lock` beside the config, written by `payhost plugins lock`):
//!   the SHA-256 of every library this host loads. With a lock in force, bytes it does not
//!   list are refused — `modified` when their file or their plugin and version is locked
//!   with other bytes — unless the lock allows signed updates and a trusted key signed them.
//!
//! A refused file never stops what runs: a tampered drop-in over a running plugin leaves
//! the old build serving, with the refusal shown.

use base64::Engine;
use payhost_plugin_api::Manifest;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The largest signature file read (one is ~300 bytes).
const MAX_SIGNATURE: u64 = 4096;

/// A key the operator trusts, by name.
pub struct TrustedKey {
    pub name: String,
    key: minisign_verify::PublicKey,
    id: [u8; 8],
}

/// The key id of a minisign public key (base64 of `Ed`, 8 bytes of id, 32 of key).
fn public_key_id(b64: &str) -> Option<[u8; 8]> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    (raw.len() == 42 && &raw[..2] == b"Ed").then(|| raw[2..10].try_into().ok())?
}

impl TrustedKey {
    /// A key from its base64 form, as `minisign -G` prints it.
    ///
    /// # Errors
    /// What is wrong with it.
    pub fn parse(name: &str, b64: &str) -> Result<Self, String> {
        let key = minisign_verify::PublicKey::from_base64(b64.trim())
            .map_err(|e| format!("not a minisign public key ({e})"))?;
        let id = public_key_id(b64).ok_or("not a minisign public key")?;
        Ok(Self {
            name: name.to_owned(),
            key,
            id,
        })
    }
}

/// One library the lock lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockEntry {
    pub name: String,
    pub version: String,
    pub contract: String,
    /// The file's name in the plugins folder.
    pub file: String,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// The trusted key that signed it, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
}

/// `plugins.lock`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    /// A library the lock does not list loads when a trusted key signed it (a new release
    /// deployed without running `payhost plugins lock` first).
    #[serde(default)]
    pub allow_signed_updates: bool,
    #[serde(default, rename = "plugin")]
    pub plugins: Vec<LockEntry>,
}

impl Lock {
    /// Reads `file`; `None` when there is none (no lock in force).
    ///
    /// # Errors
    /// It exists but cannot be read or does not parse: nothing new loads until it does.
    pub fn read(file: &Path) -> Result<Option<Self>, String> {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
        };
        toml::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{} does not parse: {}", file.display(), e.message()))
    }

    /// The lock as its file holds it, with a header saying what it is.
    pub fn to_text(&self) -> String {
        let body = toml::to_string_pretty(self).unwrap_or_default();
        format!(
            "# Written by `payhost plugins lock`: the plugin libraries this host loads, by the\n\
             # SHA-256 of their bytes. A library whose bytes are not listed here is refused\n\
             # (`modified` when its file or its plugin and version is listed with other bytes).\n\
             # Run `payhost plugins lock` again after deploying a new build.\n\n{body}"
        )
    }
}

/// What the checks found a library to be.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Trust {
    /// The trusted key whose signature verified.
    pub signed_by: Option<String>,
    /// The lock lists these bytes.
    pub locked: bool,
    /// SHA-256 of the bytes loaded, hex.
    pub sha256: String,
    /// The same digest, raw (the loader keys the libraries it mapped on it).
    #[serde(skip)]
    #[schema(ignore)]
    pub digest: [u8; 32],
    #[serde(skip)]
    comment: Option<String>,
}

impl Trust {
    /// `signed (key)`, `locked`, both, or `unsigned`.
    pub fn status(&self) -> String {
        match (&self.signed_by, self.locked) {
            (Some(k), true) => format!("signed ({k}), locked"),
            (Some(k), false) => format!("signed ({k})"),
            (None, true) => "locked".into(),
            (None, false) => "unsigned".into(),
        }
    }
}

/// Why a library was refused: `kind` is one of `invalid signature`, `unsigned`, `modified`,
/// `not locked`; the message says what was found and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub kind: &'static str,
    pub message: String,
}

fn refuse(kind: &'static str, message: String) -> Refusal {
    Refusal { kind, message }
}

/// The operator's trust: the keys, the signature policy, where the lock is.
#[derive(Default)]
pub struct Policy {
    pub keys: Vec<TrustedKey>,
    pub require_signature: bool,
    /// `None`: no lock is ever read (`plugins check` on a lone file).
    pub lock_file: Option<PathBuf>,
}

impl Policy {
    /// Judges `bytes` (the library `file` as read), before anything maps them.
    ///
    /// # Errors
    /// The [`Refusal`].
    pub fn judge(&self, file: &Path, bytes: &[u8]) -> Result<Trust, Refusal> {
        use sha2::Digest;
        let digest: [u8; 32] = sha2::Sha256::digest(bytes).into();
        let mut trust = Trust {
            sha256: hex::encode(digest),
            digest,
            ..Trust::default()
        };
        let sig_file = signature_file(file);
        if let Some(text) = read_small(&sig_file)? {
            let (key, comment) = self.verify(&sig_file, &text, bytes)?;
            trust.signed_by = Some(key);
            trust.comment = Some(comment);
        } else if self.require_signature {
            return Err(refuse(
                "unsigned",
                format!(
                    "unsigned: no signature {} and signatures are required \
                     (host.require_signature); sign it with a trusted key (README: \"Signing a \
                     plugin\")",
                    sig_file.display()
                ),
            ));
        }
        let lock = match &self.lock_file {
            Some(f) => Lock::read(f).map_err(|e| refuse("not locked", e))?,
            None => None,
        };
        let Some(lock) = lock else { return Ok(trust) };
        if lock.plugins.iter().any(|e| e.sha256 == trust.sha256) {
            trust.locked = true;
            return Ok(trust);
        }
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        let claimed = trust.comment.as_deref().map(claimed);
        let clash = lock.plugins.iter().find(|e| {
            Some(&e.file) == name.as_ref()
                || claimed.as_ref().is_some_and(|(n, v)| {
                    Some(&e.name) == n.as_ref() && Some(&e.version) == v.as_ref()
                })
        });
        if let Some(e) = clash {
            return Err(refuse(
                "modified",
                format!(
                    "modified: plugins.lock holds {} {} ({}) as sha256 {}, and these bytes are \
                     sha256 {}; if this build is meant, run `payhost plugins lock` again",
                    e.name, e.version, e.file, e.sha256, trust.sha256
                ),
            ));
        }
        if lock.allow_signed_updates && trust.signed_by.is_some() {
            return Ok(trust);
        }
        Err(refuse(
            "not locked",
            format!(
                "not locked: plugins.lock is in force and lists no library with these bytes \
                 (sha256 {}); run `payhost plugins lock` to accept it",
                trust.sha256
            ),
        ))
    }

    /// The signature `text` (from `sig_file`) over `bytes`: the trusted key that made it and
    /// its trusted comment.
    fn verify(
        &self,
        sig_file: &Path,
        text: &str,
        bytes: &[u8],
    ) -> Result<(String, String), Refusal> {
        let invalid = |why: String| {
            refuse(
                "invalid signature",
                format!("invalid signature ({}): {why}", sig_file.display()),
            )
        };
        let sig = minisign_verify::Signature::decode(text)
            .map_err(|e| invalid(format!("not a minisign signature ({e})")))?;
        let id = text
            .lines()
            .nth(1)
            .and_then(|l| {
                base64::engine::general_purpose::STANDARD
                    .decode(l.trim())
                    .ok()
            })
            .and_then(|raw| raw.get(2..10).and_then(|i| <[u8; 8]>::try_from(i).ok()));
        let Some(key) = self.keys.iter().find(|k| Some(k.id) == id) else {
            return Err(invalid(format!(
                "made by key {} which payhost does not trust (host.trusted_keys: {})",
                id.map_or_else(
                    || "?".into(),
                    |i| hex::encode_upper(i.iter().rev().copied().collect::<Vec<u8>>())
                ),
                if self.keys.is_empty() {
                    "none".to_owned()
                } else {
                    self.keys
                        .iter()
                        .map(|k| k.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )));
        };
        key.key.verify(bytes, &sig, false).map_err(|e| {
            invalid(format!(
                "it does not verify with the trusted key '{}' ({e}): the library is not the one \
                 that was signed",
                key.name
            ))
        })?;
        Ok((key.name.clone(), sig.trusted_comment().to_owned()))
    }

    /// Confirms, once the library declared itself, that its signature and its lock entry
    /// are about what it declares.
    ///
    /// # Errors
    /// The [`Refusal`].
    pub fn confirm(&self, trust: &Trust, manifest: &Manifest) -> Result<(), Refusal> {
        if let (Some(key), Some(comment)) = (&trust.signed_by, &trust.comment) {
            let (name, version) = claimed(comment);
            if name.as_deref() != Some(manifest.name.as_str())
                || version.as_deref() != Some(manifest.version.as_str())
            {
                return Err(refuse(
                    "invalid signature",
                    format!(
                        "invalid signature: the trusted comment signed by '{key}' is \"{comment}\", \
                         which does not name this library: it declares plugin={} version={} \
                         (sign it with -t \"plugin={} version={}\")",
                        manifest.name, manifest.version, manifest.name, manifest.version
                    ),
                ));
            }
        }
        if trust.locked {
            let lock = self
                .lock_file
                .as_deref()
                .map(Lock::read)
                .transpose()
                .map_err(|e| refuse("not locked", e))?
                .flatten()
                .unwrap_or_default();
            let entry = lock.plugins.iter().find(|e| e.sha256 == trust.sha256);
            if let Some(e) =
                entry.filter(|e| e.name != manifest.name || e.version != manifest.version)
            {
                return Err(refuse(
                    "modified",
                    format!(
                        "modified: plugins.lock holds these bytes as {} {}, and the library \
                         declares {} {}",
                        e.name, e.version, manifest.name, manifest.version
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// `plugin=<name>` and `version=<version>` in a trusted comment.
fn claimed(comment: &str) -> (Option<String>, Option<String>) {
    let field = |key: &str| {
        comment
            .split(|c: char| c.is_whitespace())
            .find_map(|t| t.strip_prefix(key))
            .map(str::to_owned)
    };
    (field("plugin="), field("version="))
}

/// Where a library's signature is: beside it, `.minisig` added.
pub fn signature_file(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".minisig");
    PathBuf::from(name)
}

fn read_small(file: &Path) -> Result<Option<String>, Refusal> {
    use std::io::Read;
    let f = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(refuse(
                "invalid signature",
                format!("invalid signature: cannot read {}: {e}", file.display()),
            ))
        }
    };
    let mut text = String::new();
    f.take(MAX_SIGNATURE)
        .read_to_string(&mut text)
        .map_err(|e| {
            refuse(
                "invalid signature",
                format!("invalid signature: {} is not text: {e}", file.display()),
            )
        })?;
    Ok(Some(text))
}

/// Signs `bytes` with an unencrypted minisign secret key (`minisign -G -W`), as `minisign
/// -S -t <comment>` does (prehashed with BLAKE2b-512): the signature file's text.
///
/// # Errors
/// The key is not an unencrypted minisign secret key.
pub fn sign(secret_key_file: &str, bytes: &[u8], comment: &str) -> Result<String, String> {
    use blake2::Digest;
    use ring::signature::Ed25519KeyPair;
    let b64 = secret_key_file
        .lines()
        .find(|l| !l.starts_with("untrusted comment:") && !l.trim().is_empty())
        .ok_or("not a minisign secret key")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| "not a minisign secret key")?;
    // Ed | kdf alg (2) | checksum alg (2) | salt (32) | opslimit (8) | memlimit (8) |
    // key id (8) | secret key (64: seed, public key) | checksum (32).
    if raw.len() != 158 || &raw[..2] != b"Ed" {
        return Err("not a minisign secret key".into());
    }
    if raw[2..4] != [0, 0] {
        return Err(
            "an encrypted secret key: sign with minisign itself (minisign -S -s KEY -m LIB -t \
             'plugin=NAME version=VERSION'), or use a key made with minisign -G -W"
                .into(),
        );
    }
    let key_id = &raw[54..62];
    let (seed, public) = (&raw[62..94], &raw[94..126]);
    let pair = Ed25519KeyPair::from_seed_and_public_key(seed, public)
        .map_err(|_| "the secret key does not match its public key")?;
    let prehash = blake2::Blake2b512::digest(bytes);
    let signature = pair.sign(&prehash);
    let mut sig_block = b"ED".to_vec();
    sig_block.extend_from_slice(key_id);
    sig_block.extend_from_slice(signature.as_ref());
    let mut global = signature.as_ref().to_vec();
    global.extend_from_slice(comment.as_bytes());
    let global = pair.sign(&global);
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    Ok(format!(
        "untrusted comment: signature from payhost plugins sign\n{}\ntrusted comment: {comment}\n{}\n",
        b64(&sig_block),
        b64(global.as_ref())
    ))
}

#[cfg(test)]
mod tests;
