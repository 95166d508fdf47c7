//! `payhost plugins conformance <file.so>` over the real binary and real libraries: the
//! mock, the template and stripe (on the fake Stripe) pass with every check listed; a
//! plugin that breaks one rule fails, naming the rule.

use payhost_tests::fake_stripe::{FakeStripe, API_KEY};
use payhost_tests::*;
use std::path::Path;
use std::process::Command;

/// Runs the conformance command; exit code and stdout.
fn conformance(file: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(payhost_bin())
        .args(["plugins", "conformance"])
        .arg(file)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn lines_with<'a>(report: &'a str, prefix: &str) -> Vec<&'a str> {
    report.lines().filter(|l| l.starts_with(prefix)).collect()
}

#[test]
fn the_mock_passes_with_every_check_listed() {
    let (code, out) = conformance(&mock_so(), &[]);
    assert_eq!(code, 0, "{out}");
    assert!(lines_with(&out, "FAIL").is_empty(), "{out}");
    for check in [
        "PASS  customers.create_get_update",
        "PASS  ids.never_repeat",
        "PASS  payments.declines",
        "PASS  refunds.refused_above_remaining",
        "PASS  manual_capture.capture_part",
        "PASS  manual_capture.void",
        "PASS  redirects.next_action",
        "PASS  capability.webhooks.implemented",
    ] {
        assert!(out.contains(check), "missing '{check}' in:\n{out}");
    }
    assert!(lines_with(&out, "PASS").len() >= 25, "{out}");
}

#[test]
fn the_template_passes() {
    let (code, out) = conformance(&plugin("payhost_plugin_template"), &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("PASS  refunds.refused_above_remaining"),
        "{out}"
    );
    assert!(
        out.contains("SKIP  customers.create_get_update: no customers capability"),
        "{out}"
    );
}

#[test]
fn the_template_built_outside_the_workspace_passes() {
    // payhost-compat copied plugins/template into a crate of its own, depending on the kit
    // by path, and built it: what an outside author does first.
    let file = compat(&format!(
        "libmy_provider.{}",
        std::env::consts::DLL_EXTENSION
    ));
    let (code, out) = conformance(&file, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("PASS  payments.succeeds"), "{out}");
}

#[test]
fn a_plugin_that_breaks_a_rule_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let rule_breaker = plugin("payhost_test_plugin_rule_breaker");
    for (rule, check) in [
        ("repeat_ids", "ids.never_repeat"),
        ("refund_above_remaining", "refunds.refused_above_remaining"),
        ("refusal_as_outage", "refunds.refused_above_remaining"),
        ("unimplemented_capability", "capability.refunds.implemented"),
        ("refund_read_back_wrong", "refunds.partial_then_rest"),
    ] {
        let config = dir.path().join(format!("{rule}.toml"));
        std::fs::write(&config, format!("[config]\nbreaks = \"{rule}\"\n")).unwrap();
        let (code, out) = conformance(&rule_breaker, &["--config", config.to_str().unwrap()]);
        assert_eq!(code, 1, "{rule}: {out}");
        let failed = lines_with(&out, "FAIL");
        assert!(
            failed
                .iter()
                .any(|l| l.starts_with(&format!("FAIL  {check}:"))),
            "{rule} must fail {check}:\n{out}"
        );
    }
    let keep = dir.path().join("keep.toml");
    std::fs::write(&keep, "[config]\nbreaks = \"nothing\"\n").unwrap();
    let (code, out) = conformance(&rule_breaker, &["--config", keep.to_str().unwrap()]);
    assert_eq!(code, 0, "breaking nothing passes:\n{out}");
}

#[test]
fn stripe_passes_on_the_fake_stripe_with_capture_and_redirects() {
    let fake = FakeStripe::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("stripe.toml");
    std::fs::write(
        &config,
        format!(
            "allow_hosts = [\"127.0.0.1\"]\n[config]\napi_key = \"{API_KEY}\"\n\
             webhook_secret = \"whsec_conformance\"\napi_base = \"{}\"\n",
            fake.base
        ),
    )
    .unwrap();
    let (code, out) = conformance(
        &stripe_so(),
        &["--config", config.to_str().unwrap(), "--approve-redirects"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        lines_with(&out, "SKIP").is_empty(),
        "on the fake every check runs:\n{out}"
    );
    for check in [
        "PASS  manual_capture.capture_part",
        "PASS  redirects.approve_then_confirm",
        "PASS  subscriptions.create_change_cancel",
    ] {
        assert!(out.contains(check), "missing '{check}' in:\n{out}");
    }
    let seen = fake.fake.seen();
    assert!(
        seen.iter()
            .any(|r| r.path.ends_with("/capture") && r.method == "POST"),
        "captures went over Stripe's protocol"
    );
}

/// An HTTP provider whose instance may reach no host (an instance file without
/// `allow_hosts`) fails its checks, and the command says why and what to give instead of
/// leaving the author with the failures.
#[test]
fn an_http_provider_that_may_reach_no_host_is_told_what_to_give() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("stripe.toml");
    std::fs::write(
        &config,
        format!(
            "[config]\napi_key = \"{API_KEY}\"\nwebhook_secret = \"whsec_conformance\"\n\
             api_base = \"http://127.0.0.1:9\"\n"
        ),
    )
    .unwrap();
    let out = Command::new(payhost_bin())
        .args(["plugins", "conformance"])
        .arg(stripe_so())
        .args(["--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("allow_hosts"), "{stdout}");
    assert!(
        stderr.contains("hint: the plugin's HTTP calls were refused")
            && stderr.contains("allow_hosts"),
        "{stderr}"
    );
    // The offline mock needs no instance file and gets no hint.
    let mock = Command::new(payhost_bin())
        .args(["plugins", "conformance"])
        .arg(mock_so())
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&mock.stderr).contains("hint:"));
}

#[test]
fn a_file_that_is_not_a_plugin_is_an_error_not_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("x.so");
    std::fs::write(&text, "not a library").unwrap();
    let out = Command::new(payhost_bin())
        .args(["plugins", "conformance"])
        .arg(&text)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a loadable shared library"));
}
