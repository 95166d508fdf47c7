//! `payhost keys generate`: a new key and the config line that holds its digest.

use super::*;

/// `payhost keys generate`.
pub(super) fn keys_generate(name: Option<String>, tenant: Option<String>, admin: bool) -> i32 {
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

pub(super) fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}
