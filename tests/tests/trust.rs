//! Trusted plugins through the real binary and real libraries: signatures checked on the
//! bytes loaded (minisign's format, from `payhost plugins sign` and from minisign itself),
//! the lock, refusals that leave the running build serving, and a file swapped while it is
//! being loaded.

use payhost::plugins::trust::{sign, signature_file};
use payhost_tests::api::Api;
use payhost_tests::*;
use serde_json::Value;
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::time::Duration;

const DEV_KEY: &str = "RWQ3ZmYhiJM6RrBNAalO6YgB+GZ/X9xab+/2qU4jVDHtCi6uCUmaxNJQ";
const TRUSTED_2026: &str = "RWQvShOs4CgqeDYtWwUAZ16RjygT7Q32sPBYMxVdoYa/glhz+aNcK42v";
const MOCK: &str =
    "[providers.mock]\nplugin = \"mock\"\nconfig = { webhook_secret = \"whsec_trust_test\" }\n";

fn key(name: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let file = match name {
        "payhost-dev" => root.join("deploy/dev/dev-plugin-signing.key"),
        other => root.join(format!("tests/fixtures/keys/{other}.key")),
    };
    std::fs::read_to_string(file).unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The mock's bytes and a copy of them made different (a byte appended: the ELF loader
/// ignores it, the digest does not) — "a rebuilt library of the same name and version".
fn mock_bytes() -> (Vec<u8>, Vec<u8>) {
    let good = std::fs::read(mock_so()).unwrap();
    let mut other = good.clone();
    other.push(0x42);
    (good, other)
}

/// A scratch host whose plugins folder holds the mock as `libmock.so` (with `signature`
/// beside it), trusting the development key and trusted-2026.
fn scratch(signature: Option<String>, extra: &str) -> Scratch {
    let s = Scratch::with_host(
        &[(&mock_so(), "libmock.so")],
        &format!(
            "default_provider = \"mock\"\n\
             trusted_keys = [{{ name = \"payhost-dev\", key = \"{DEV_KEY}\" }}, \
             {{ name = \"trusted-2026\", key = \"{TRUSTED_2026}\" }}]\n{extra}"
        ),
        MOCK,
    );
    if let Some(sig) = signature {
        std::fs::write(signature_file(&lib(&s)), sig).unwrap();
    }
    s
}

fn lib(s: &Scratch) -> PathBuf {
    s.dir.path().join("plugins").join("libmock.so")
}

/// Replaces the library (its signature first) the way deploy tools do: written aside,
/// renamed into place.
fn deploy(s: &Scratch, bytes: &[u8], signature: Option<&str>) {
    let sig = signature_file(&lib(s));
    match signature {
        Some(text) => std::fs::write(&sig, text).unwrap(),
        None => {
            let _ = std::fs::remove_file(&sig);
        }
    }
    let tmp = s.dir.path().join("plugins").join(".libmock.so.partial");
    std::fs::write(&tmp, bytes).unwrap();
    no_group_write(&tmp);
    std::fs::rename(&tmp, lib(s)).unwrap();
}

/// `/admin/plugins`' rows: the running mock's and the refused file's.
fn rows(host: &HostProcess) -> (Option<Value>, Option<Value>) {
    let (status, body) = host.get("/admin/plugins", Some(ADMIN_KEY));
    assert_eq!(status, 200, "{body}");
    let plugins = body["plugins"].as_array().unwrap().clone();
    let running = plugins.iter().find(|p| p["name"] == "mock").cloned();
    let refused = plugins.iter().find(|p| p["name"].is_null()).cloned();
    (running, refused)
}

fn rescan(host: &HostProcess) {
    let r = Api::new(&host.addr, ADMIN_KEY).post("/admin/plugins/rescan", &Value::Null);
    assert_eq!(r.status, 200, "{r:?}");
}

/// Waits for the folder's file to be refused for `kind`; the running build is unchanged.
fn refused_as(host: &HostProcess, kind: &str, running_sha: &str) -> Value {
    let mut seen = (None, None);
    let found = (0..300).any(|_| {
        rescan(host);
        seen = rows(host);
        if seen.1.as_ref().is_some_and(|r| r["trust"] == kind) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
        false
    });
    assert!(found, "refused as {kind}: {seen:?}");
    let running = seen.0.expect("the earlier build still serves");
    assert_eq!(running["sha256"], running_sha, "{running}");
    assert_eq!(running["state"], "active");
    seen.1.unwrap()
}

#[test]
fn signed_builds_load_and_tampered_or_foreign_ones_never_do() {
    let (good, other) = mock_bytes();
    let signed = sign(&key("payhost-dev"), &good, "plugin=mock version=2.1.0").unwrap();
    let s = scratch(Some(signed.clone()), "require_signature = true\n");
    let host = s.serve();
    let (running, _) = rows(&host);
    let running = running.unwrap();
    assert_eq!(running["trust"], "signed (payhost-dev)", "{running}");
    assert_eq!(running["sha256"], sha256(&good));
    let api = Api::new(&host.addr, API_KEY);
    let serving = |api: &Api| {
        let r = api.get("/v1/providers");
        r.status == 200 && r.body["data"][0]["state"] == "running"
    };
    assert!(serving(&api));

    // One byte flipped, the signature kept: refused, nothing of it loaded.
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x01;
    deploy(&s, &flipped, Some(&signed));
    let r = refused_as(&host, "invalid signature", &sha256(&good));
    assert!(
        r["state"]
            .as_str()
            .unwrap()
            .contains("not the one that was signed"),
        "{r}"
    );
    assert!(serving(&api), "the signed build keeps serving");

    // A valid signature from a key nobody trusts.
    let foreign = sign(&key("untrusted"), &other, "plugin=mock version=2.1.0").unwrap();
    deploy(&s, &other, Some(&foreign));
    let r = refused_as(&host, "invalid signature", &sha256(&good));
    assert!(
        r["state"].as_str().unwrap().contains("does not trust"),
        "{r}"
    );

    // A trusted key's signature whose trusted comment names another version.
    let elsewhere = sign(&key("trusted-2026"), &other, "plugin=mock version=9.9.9").unwrap();
    deploy(&s, &other, Some(&elsewhere));
    let r = refused_as(&host, "invalid signature", &sha256(&good));
    assert!(
        r["state"]
            .as_str()
            .unwrap()
            .contains("plugin=mock version=2.1.0"),
        "{r}"
    );

    // Unsigned, where signatures are required.
    deploy(&s, &other, None);
    refused_as(&host, "unsigned", &sha256(&good));

    // Rotation: the second trusted key's signature loads the new build.
    let rotated = sign(&key("trusted-2026"), &other, "plugin=mock version=2.1.0").unwrap();
    deploy(&s, &other, Some(&rotated));
    eventually("the build signed by the second key serves", || {
        rescan(&host);
        rows(&host)
            .0
            .is_some_and(|r| r["trust"] == "signed (trusted-2026)" && r["sha256"] == sha256(&other))
    });
    assert!(serving(&api));
    // The refusals were told as lifecycle events.
    let (_, admin) = host.get("/admin/plugins", Some(ADMIN_KEY));
    let errors: Vec<&Value> = admin["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "PluginError")
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e["error"].as_str().unwrap().contains("invalid signature")),
        "{errors:?}"
    );
    let metrics = metrics(&host);
    assert!(
        metrics.contains("payhost_plugins_without_signature 0"),
        "{metrics}"
    );
}

fn metrics(host: &HostProcess) -> String {
    let (_, metrics) = payhost_tests::http(&host.addr, "GET", "/metrics", None, None);
    metrics.as_str().unwrap_or_default().to_owned()
}

#[test]
fn without_the_policy_unsigned_loads_with_a_warning_and_the_cli_tells_the_trust() {
    let s = scratch(None, "require_signature = false\n");
    let host = s.serve();
    let running = rows(&host).0.unwrap();
    assert_eq!(running["trust"], "unsigned");
    let metrics = metrics(&host);
    assert!(
        metrics.contains("payhost_plugins_without_signature 1"),
        "{metrics}"
    );
    let (_, log) = host.terminate();
    assert!(log.contains("plugin registered unsigned"), "{log}");
    assert!(
        log.contains("unsigned plugin libraries load"),
        "the policy is stated: {log}"
    );
    // The command line says the same of the file.
    let (code, out, err) = s.payhost(&["plugins", "check", lib(&s).to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("trust:           unsigned"), "{out}");
    let (code, out, _) = s.payhost(&["config", "check"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("mock 2.1.0, unsigned (sha256 "), "{out}");
}

#[test]
fn the_lock_keeps_the_locked_build_and_refuses_a_rebuild_until_locked_again() {
    let (good, other) = mock_bytes();
    let s = scratch(None, "require_signature = false\n");
    let (code, out, err) = s.payhost(&["plugins", "lock"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!(
            "locked mock 2.1.0 (libmock.so) sha256 {}",
            sha256(&good)
        )),
        "{out}"
    );
    let lock = std::fs::read_to_string(s.dir.path().join("plugins.lock")).unwrap();
    assert!(
        lock.contains(&sha256(&good)) && lock.contains("name = \"mock\""),
        "{lock}"
    );
    let host = s.serve();
    assert_eq!(rows(&host).0.unwrap()["trust"], "locked");
    // A rebuild of the same name and version: modified, naming both digests.
    deploy(&s, &other, None);
    let r = refused_as(&host, "modified", &sha256(&good));
    let why = r["state"].as_str().unwrap();
    assert!(
        why.contains(&sha256(&good)) && why.contains(&sha256(&other)),
        "{r}"
    );
    let metrics = metrics(&host);
    assert!(
        metrics.contains("payhost_plugin_files_refused{reason=\"modified\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("payhost_plugin_files_refused{reason=\"unsigned\"} 0"),
        "{metrics}"
    );
    let (code, out, _) = s.payhost(&["config", "check"]);
    assert_eq!(code, 1, "config check reports the refused file: {out}");
    assert!(out.contains("modified"), "{out}");
    // Locked again: it loads.
    let (code, _, err) = s.payhost(&["plugins", "lock"]);
    assert_eq!(code, 0, "{err}");
    eventually("the locked rebuild serves", || {
        rescan(&host);
        rows(&host)
            .0
            .is_some_and(|r| r["sha256"] == sha256(&other) && r["trust"] == "locked")
    });
}

/// The mock with one of its messages changed: the same plugin and version, other code —
/// what a tampered build looks like, and what a payment declined by it tells.
fn tampered_mock() -> Vec<u8> {
    let good = std::fs::read(mock_so()).unwrap();
    let from = b"Your card was declined.";
    let at = good
        .windows(from.len())
        .position(|w| w == from)
        .expect("the mock's decline message");
    let mut bad = good;
    bad[at..at + 4].copy_from_slice(b"YOUR");
    bad
}

/// The decline message the mock that serves now gives, for a new user's payment.
fn decline_message(api: &Api, user: &str) -> String {
    let r = api.post(
        "/v1/payments",
        &serde_json::json!({"user_id": user, "email": "swap@example.com", "amount": 100,
            "currency": "usd", "payment_method": "pm_card_chargeDeclined"}),
    );
    assert_eq!(r.status, 201, "{r:?}");
    r.body["failure_message"].as_str().unwrap().to_owned()
}

#[test]
fn a_file_swapped_while_it_loads_never_loads_unverified_bytes() {
    // The debug build's hook replaces the library with a tampered build (the same plugin
    // and version, other code) right after its check, before it is loaded: the worst moment
    // of a race against the loader. What serves must be the code that was checked.
    let good = std::fs::read(mock_so()).unwrap();
    let signed = sign(&key("payhost-dev"), &good, "plugin=mock version=2.1.0").unwrap();
    let s = scratch(Some(signed), "require_signature = true\n");
    let tampered = s.dir.path().join("tampered.so");
    std::fs::write(&tampered, tampered_mock()).unwrap();
    let host = s.serve_with_env(&[
        ("RUST_LOG", "info"),
        ("PAYHOST_TEST_SWAP_DURING_LOAD", tampered.to_str().unwrap()),
    ]);
    let api = Api::new(&host.addr, API_KEY);
    let serves_checked_code = |n: usize| {
        assert_eq!(rows(&host).0.unwrap()["trust"], "signed (payhost-dev)");
        assert_eq!(
            decline_message(&api, &format!("swap-{n}")),
            "Your card was declined.",
            "the tampered code serves"
        );
    };
    serves_checked_code(0);
    assert!(
        std::fs::read(lib(&s)).unwrap() == tampered_mock(),
        "the hook did not swap the file (a release build has no hook)"
    );
    // The file now is the tampered build: refused at the next scan, the checked one serving.
    refused_as(&host, "invalid signature", &sha256(&good));
    serves_checked_code(1);
    // A new signed build (new bytes: mapped afresh), swapped again during its load.
    for n in 2..5u8 {
        let mut build = good.clone();
        build.push(n);
        let sig = sign(&key("payhost-dev"), &build, "plugin=mock version=2.1.0").unwrap();
        deploy(&s, &build, Some(&sig));
        eventually("the new signed build serves", || {
            rescan(&host);
            rows(&host).0.is_some_and(|r| r["sha256"] == sha256(&build))
        });
        serves_checked_code(usize::from(n));
    }
}

#[test]
fn a_signature_made_by_minisign_itself_loads() {
    let Some(minisign) = ["/usr/bin/minisign", "/usr/local/bin/minisign"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
    else {
        payhost_tests::skipped(
            "the minisign interoperability test",
            "it needs Debian's minisign (apt-get install minisign); .ci/run installs it",
            "PAYHOST_REQUIRE_MINISIGN",
        );
        return;
    };
    payhost_tests::ran("minisign", "the minisign interoperability test");
    let s = scratch(None, "require_signature = true\n");
    let secret = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys/trusted-2026.key");
    let out = std::process::Command::new(minisign)
        .args(["-S", "-s"])
        .arg(&secret)
        .arg("-m")
        .arg(lib(&s))
        .args(["-t", "plugin=mock version=2.1.0"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let host = s.serve();
    assert_eq!(rows(&host).0.unwrap()["trust"], "signed (trusted-2026)");
}

/// `payhost plugins sign` over a library already signed — by the development key, as
/// `make build` leaves it, then with another key — signs it again: a second `make build`
/// (or `make run` after `make build`) failed here, because reading the library's manifest
/// checked the old signature against no trusted key. The new signature is the one loaded.
#[test]
fn signing_a_library_signed_before_signs_it_again() {
    let s = scratch(None, "require_signature = true\n");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let sign_with = |key: &Path| {
        let out = std::process::Command::new(payhost_bin())
            .args(["plugins", "sign", "--secret-key"])
            .arg(key)
            .arg(lib(&s))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let dev = root.join("deploy/dev/dev-plugin-signing.key");
    let (code, out) = sign_with(&dev);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = sign_with(&dev);
    assert_eq!(code, Some(0), "signed again with the same key: {out}");
    let (code, out) = sign_with(&root.join("tests/fixtures/keys/trusted-2026.key"));
    assert_eq!(code, Some(0), "signed again with another key: {out}");
    let host = s.serve();
    let (running, refused) = rows(&host);
    assert!(refused.is_none(), "{refused:?}");
    let running = running.expect("the signed mock loads");
    assert_eq!(running["trust"], "signed (trusted-2026)", "{running}");
}
