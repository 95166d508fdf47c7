//! What a parsed config may not be: providers named but not configured, routes that cannot
//! work, keys that are weak, malformed or used twice, values out of range — every problem
//! at once, each with its key path.

use super::keys::{self, ApiKey};
use super::{net, routing, Config, DEV_ADMIN_KEY, DEV_API_KEY};

/// Every problem of a parsed config, as (key, what was expected), in file order.
pub fn problems(c: &Config) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let known = || c.providers.keys().cloned().collect::<Vec<_>>().join(", ");
    if let Some(d) = &c.host.default_provider {
        if !c.providers.contains_key(d) {
            out.push((
                "host.default_provider".into(),
                format!(
                    "'{d}' is not a configured provider (configured: {})",
                    known()
                ),
            ));
        }
    }
    for (tenant, provider) in &c.tenants {
        if !c.providers.contains_key(provider) {
            out.push((
                format!("tenants.{tenant}"),
                format!(
                    "'{provider}' is not a configured provider (configured: {})",
                    known()
                ),
            ));
        }
    }
    if c.dunning.retry_days.windows(2).any(|w| w[0] >= w[1]) {
        out.push((
            "dunning.retry_days".into(),
            "days in increasing order, e.g. [1, 3, 5]".into(),
        ));
    }
    if !matches!(c.email.transport.as_str(), "file" | "smtp") {
        out.push(("email.transport".into(), "'file' or 'smtp'".into()));
    }
    if c.email.transport == "smtp" && c.email.smtp_url.is_none() {
        out.push((
            "email.smtp_url".into(),
            "an smtp:// or smtps:// URL when email.transport is 'smtp'".into(),
        ));
    }
    for (i, e) in c.webhook_endpoints.iter().enumerate() {
        if !(e.url.starts_with("http://") || e.url.starts_with("https://")) {
            out.push((
                format!("webhook_endpoints[{i}].url"),
                "an http(s) URL".into(),
            ));
        }
        if e.secret.expose().len() < 16 {
            out.push((
                format!("webhook_endpoints[{i}].secret"),
                "a secret of at least 16 characters".into(),
            ));
        }
        if c.webhook_endpoints[..i].iter().any(|o| o.name == e.name) {
            out.push((
                format!("webhook_endpoints[{i}].name"),
                format!("a unique name ('{}' repeats)", e.name),
            ));
        }
    }
    routing::problems(c, &mut out);
    if let Some(e) = &c.telemetry.otlp_endpoint {
        if !(e.starts_with("http://") || e.starts_with("https://")) || e.contains('?') {
            out.push((
                "telemetry.otlp_endpoint".into(),
                "the collector's http(s) base URL, e.g. http://127.0.0.1:4318".into(),
            ));
        }
    }
    if let Some(u) = &c.telemetry.trace_url {
        if !(u.starts_with("http://") || u.starts_with("https://")) || !u.contains("{trace_id}") {
            out.push((
                "telemetry.trace_url".into(),
                "an http(s) URL with {trace_id} in it, e.g. http://127.0.0.1:16686/trace/{trace_id}"
                    .into(),
            ));
        }
    }
    if let Some(u) = &c.host.public_url {
        let scheme_host = u
            .strip_prefix("https://")
            .or_else(|| u.strip_prefix("http://"))
            .map(|rest| rest.split('/').next().unwrap_or(""));
        if scheme_host.is_none_or(str::is_empty) || u.contains(['?', '#']) {
            out.push((
                "host.public_url".into(),
                "the http(s) URL the world reaches this host at, without a query, e.g. \
                 https://pay.example.com"
                    .into(),
            ));
        }
    }
    if c.retention.audit_days == 0 {
        out.push((
            "retention.audit_days".into(),
            "at least 1 day (the audit trail is kept, not switched off)".into(),
        ));
    }
    if c.host.call_timeout_ms == 0 {
        out.push((
            "host.call_timeout_ms".into(),
            "a positive number of milliseconds".into(),
        ));
    }
    for (i, k) in c.host.trusted_keys.iter().enumerate() {
        if let Err(e) = minisign_verify::PublicKey::from_base64(k.key.trim()) {
            out.push((
                format!("host.trusted_keys[{i}].key"),
                format!(
                    "'{}': a minisign public key, base64 as `minisign -G` prints it ({e})",
                    k.name
                ),
            ));
        }
        if k.name.trim().is_empty() || c.host.trusted_keys[..i].iter().any(|o| o.name == k.name) {
            out.push((
                format!("host.trusted_keys[{i}].name"),
                "a name of its own (keys are named in refusals and in each plugin's trust)".into(),
            ));
        }
    }
    key_problems("api_keys", &c.host.api_keys, &mut out);
    key_problems("admin_keys", &c.host.admin_keys, &mut out);
    for (i, k) in c.host.admin_keys.iter().enumerate() {
        if let ApiKey::Table(t) = k {
            if t.tenant.is_some() || t.scopes.is_some() {
                out.push((
                    format!("host.admin_keys[{i}]"),
                    "{ name, key or sha256 } (an admin key acts for every tenant: tenant and \
                     scopes are for api_keys)"
                        .into(),
                ));
            }
        }
    }
    if c.host.auth_failures_allowed < 2 {
        out.push((
            "host.auth_failures_allowed".into(),
            "at least 2 (the throttle is not switched off; raise it for a test rig)".into(),
        ));
    }
    for (i, p) in c.host.trusted_proxies.iter().enumerate() {
        if net::Cidr::parse(p).is_none() {
            out.push((
                format!("host.trusted_proxies[{i}]"),
                format!("an IP address or a CIDR block like 10.0.0.0/8 ('{p}' is neither)"),
            ));
        }
    }
    out
}

/// The keys given as text (not as their SHA-256) that could be guessed, each named by its
/// label and why: refused beyond loopback, a warning on loopback. The development keys are
/// left to [`crate::app::check_bind`], which names them as such.
pub fn weak_keys(c: &Config) -> Vec<String> {
    let dev = [
        ApiKey::Plain(DEV_API_KEY.into()).digest(),
        ApiKey::Plain(DEV_ADMIN_KEY.into()).digest(),
    ];
    [
        ("api_keys", &c.host.api_keys),
        ("admin_keys", &c.host.admin_keys),
    ]
    .into_iter()
    .flat_map(|(list, keys)| {
        keys.iter().enumerate().filter_map(move |(i, k)| {
            let why = keys::weakness(k.text()?)?;
            if dev.contains(&k.digest()) {
                return None;
            }
            let label = k.label(list, i);
            let who = if label.starts_with("host.") {
                label
            } else {
                format!("host.{list}: the key '{label}'")
            };
            Some(format!("{who} could be guessed: {why}"))
        })
    })
    .collect()
}

/// 1 to `max` printable ASCII characters without spaces (tenants, idempotency keys).
pub fn visible_ascii(s: &str, max: usize) -> bool {
    (1..=max).contains(&s.len()) && s.bytes().all(|b| (b'!'..=b'~').contains(&b))
}

/// The tenants a request may name: those given a provider under `[tenants]` and those an
/// API key is bound to.
pub fn known_tenants(c: &Config) -> std::collections::BTreeSet<String> {
    c.tenants
        .keys()
        .cloned()
        .chain(
            c.host
                .api_keys
                .iter()
                .filter_map(|k| k.tenant().map(str::to_owned)),
        )
        .collect()
}

fn key_problems(list: &str, keys: &[ApiKey], out: &mut Vec<(String, String)>) {
    let mut digests = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let at = |field: &str| format!("host.{list}[{i}]{field}");
        match k {
            ApiKey::Plain(p) if p.expose().len() < 8 => {
                out.push((at(""), "a key of at least 8 characters".into()));
                continue;
            }
            ApiKey::Plain(_) => {}
            ApiKey::Table(t) => {
                match (&t.key, &t.sha256) {
                    (Some(_), Some(_)) | (None, None) => {
                        out.push((
                            at(""),
                            "exactly one of key (the key) or sha256 (its SHA-256 in hex)".into(),
                        ));
                        continue;
                    }
                    (Some(p), None) if p.expose().len() < 8 => {
                        out.push((at(".key"), "a key of at least 8 characters".into()));
                        continue;
                    }
                    (None, Some(h))
                        if h.expose().len() != 64
                            || !h.expose().bytes().all(|b| b.is_ascii_hexdigit()) =>
                    {
                        out.push((
                            at(".sha256"),
                            "64 hex digits, the SHA-256 of the key (printf %s \"$KEY\" | sha256sum)"
                                .into(),
                        ));
                        continue;
                    }
                    _ => {}
                }
                if let Some(tenant) = &t.tenant {
                    if !visible_ascii(tenant, 64) {
                        out.push((
                            at(".tenant"),
                            "1 to 64 printable ASCII characters without spaces".into(),
                        ));
                        continue;
                    }
                }
                if t.scopes.as_ref().is_some_and(Vec::is_empty) {
                    out.push((at(".scopes"), "at least one of \"read\", \"write\"".into()));
                    continue;
                }
                if let Some(n) = &t.name {
                    let named_before = keys[..i]
                        .iter()
                        .any(|o| matches!(o, ApiKey::Table(o) if o.name.as_ref() == Some(n)));
                    if named_before {
                        out.push((at(".name"), format!("a unique name ('{n}' repeats)")));
                        continue;
                    }
                }
            }
        }
        let d = k.digest();
        if digests.contains(&d) {
            out.push((at(""), "a key not already listed".into()));
            continue;
        }
        digests.push(d);
    }
}
