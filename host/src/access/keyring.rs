//! The configured API and admin keys, held as SHA-256 digests and compared in constant
//! time, with the tenants a request may name. Built once from the config; the HTTP layer
//! and the console ask it who a key is.

use crate::config::{ApiKey, Config, Scope};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use subtle::ConstantTimeEq;

/// An API key, as its digest, with what it may do.
pub(crate) struct Entry {
    pub(crate) digest: [u8; 32],
    pub(crate) label: String,
    pub(crate) tenant: Option<String>,
    pub(crate) scopes: Vec<Scope>,
}

/// An admin key, as its digest, and how the audit trail names it.
pub struct AdminKey {
    pub digest: [u8; 32],
    pub label: String,
}

/// The configured API and admin keys, as digests, and the tenants a request may name.
pub struct Keyring {
    keys: Vec<Entry>,
    admins: Vec<AdminKey>,
    pub(crate) tenants: BTreeSet<String>,
}

impl Keyring {
    pub fn new(config: &Config) -> Self {
        Self {
            keys: config
                .host
                .api_keys
                .iter()
                .enumerate()
                .map(|(i, k): (usize, &ApiKey)| Entry {
                    digest: k.digest(),
                    label: k.label("api_keys", i),
                    tenant: k.tenant().map(str::to_owned),
                    scopes: k.scopes(),
                })
                .collect(),
            admins: config
                .host
                .admin_keys
                .iter()
                .enumerate()
                .map(|(i, k)| AdminKey {
                    digest: k.digest(),
                    label: k.label("admin_keys", i),
                })
                .collect(),
            tenants: crate::config::known_tenants(config),
        }
    }

    /// The key `given` is, comparing with every key so the time taken does not reveal
    /// which one matched.
    pub(crate) fn find(&self, given: &str) -> Option<&Entry> {
        let digest: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        let mut found = None;
        for k in &self.keys {
            if bool::from(k.digest.ct_eq(&digest)) {
                found = Some(k);
            }
        }
        found
    }

    /// The admin key `given` is (each compared, in constant time).
    pub fn admin(&self, given: &str) -> Option<&AdminKey> {
        let digest: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        let mut found = None;
        for k in &self.admins {
            if bool::from(k.digest.ct_eq(&digest)) {
                found = Some(k);
            }
        }
        found
    }

    pub fn admins(&self) -> &[AdminKey] {
        &self.admins
    }
}
