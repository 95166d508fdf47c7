//! The operator's commands over the real binary: `config check` lists every problem of a
//! config without serving, `completions` prints a script, `--help` describes the
//! environment, and the `deploy/dist` tarball (what `make dist` builds from the release
//! build; here from the debug build) runs from a scratch folder.

use payhost_tests::api::Api;
use payhost_tests::*;
use std::path::Path;
use std::process::Command;

#[test]
fn config_check_names_every_problem_and_passes_a_good_config() {
    // Five mistakes of different kinds: a tenant on a provider nobody configured, a key the
    // plugin does not know (and so its required one missing), a plugin not in the folder, a
    // published credential on a non-loopback address, and an unsigned library where
    // signatures are required (the default beyond loopback). The mock is signed by a key
    // the config trusts, its copy `other.so` is not.
    let s = Scratch::new(&[(&mock_so(), "mock.so"), (&mock_so(), "other.so")], "");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let secret = std::fs::read_to_string(root.join("fixtures/keys/trusted-2026.key")).unwrap();
    let public = std::fs::read_to_string(root.join("fixtures/keys/trusted-2026.pub")).unwrap();
    let public = public.lines().nth(1).unwrap();
    let mock = s.dir.path().join("plugins/mock.so");
    let version = "2.1.0"; // the mock's, as the other tests name it
    let signature = payhost::plugins::trust::sign(
        &secret,
        &std::fs::read(&mock).unwrap(),
        &format!("plugin=mock version={version}"),
    )
    .unwrap();
    std::fs::write(payhost::plugins::trust::signature_file(&mock), signature).unwrap();
    // admin_keys left out: the development admin key is the default.
    std::fs::write(
        s.config(),
        format!(
            "[host]\nbind = \"0.0.0.0:8080\"\nplugin_dir = \"plugins\"\ndata_dir = \"data\"\n\
         api_keys = [\"sk_operator_check\"]\n\
         trusted_keys = [{{ name = \"trusted-2026\", key = \"{public}\" }}]\n\
         [providers.mock]\nplugin = \"mock\"\nconfig = {{ webhook_secert = \"whsec_typo_123\" }}\n\
         [providers.pp]\nplugin = \"paypal\"\nconfig = {{}}\n\
         [tenants]\nacme = \"stripe_eu\"\n",
        ),
    )
    .unwrap();
    let (code, out, err) = s.payhost(&["config", "check"]);
    assert_eq!(code, 1, "{out}{err}");
    for named in [
        "key 'tenants.acme': 'stripe_eu' is not a configured provider",
        "key 'providers.mock.config': unknown config key 'webhook_secert'",
        "missing required config keys: webhook_secret",
        "key 'providers.pp.plugin': no plugin named 'paypal'",
        "refusing to bind 0.0.0.0:8080",
        "other.so: unsigned: no signature",
    ] {
        assert!(out.contains(named), "'{named}' in:\n{out}");
    }
    assert!(
        out.contains(&format!("mock.so: mock {version}, signed (trusted-2026)")),
        "{out}"
    );
    assert!(out.trim_end().ends_with("6 problems"), "{out}");
    assert!(!out.contains("whsec_typo_123"), "values are never printed");
    // Nothing was served: no address file, no database.
    assert!(!s.dir.path().join("data").join("payhost.db").exists());

    let good = Scratch::new(
        &[(&mock_so(), "mock.so")],
        "[providers.mock]\nplugin = \"mock\"\nconfig = { webhook_secret = \"whsec_fine_123\" }\n",
    );
    let (code, out, err) = good.payhost(&["config", "check"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("OK (1 provider instances, 1 plugins"), "{out}");

    let broken = Scratch::new(&[], "[providers.mock\n");
    let (code, out, _) = broken.payhost(&["config", "check"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("plugins.toml") && out.contains("1 problem"),
        "{out}"
    );
}

/// Five mistakes in three sections, of every kind a hand-edited file gets: an unknown key
/// (`surprise`) and a misspelt one (`max_conections`) in [host], a value of the wrong type
/// in [dunning], a default provider nobody configured, and a misspelt plugin key in an
/// instance. One run names all five, each with its key path and, for a slip, the key meant;
/// `--json` gives the same for scripts.
#[test]
fn config_check_names_every_mistake_of_every_section_in_one_run() {
    let s = Scratch::new(&[(&mock_so(), "mock.so")], "");
    std::fs::write(
        s.config(),
        "[host]\nplugin_dir = \"plugins\"\ndata_dir = \"data\"\nsurprise = 1\n\
         max_conections = 10\ndefault_provider = \"stripe\"\n\
         [dunning]\nretry_days = \"soon\"\n\
         [providers.mock]\nplugin = \"mock\"\nconfig = { webhook_secert = \"whsec_x_123456\" }\n",
    )
    .unwrap();
    let (code, out, err) = s.payhost(&["config", "check"]);
    assert_eq!(code, 1, "{out}{err}");
    for named in [
        "key 'host.surprise': unknown key",
        "key 'host.max_conections': unknown key",
        "(did you mean 'max_connections'?)",
        "key 'dunning.retry_days': invalid type: string \"soon\", expected a sequence",
        "key 'host.default_provider': 'stripe' is not a configured provider",
        "key 'providers.mock.config': unknown config key 'webhook_secert'",
        "(did you mean 'webhook_secret'?)",
    ] {
        assert!(out.contains(named), "'{named}' in:\n{out}");
    }
    // (the misspelt plugin key also leaves its required one missing: six lines)
    assert!(out.trim_end().ends_with("6 problems"), "{out}");
    assert!(!out.contains("whsec_x_123456"), "values are never printed");

    let (code, out, err) = s.payhost(&["config", "check", "--json"]);
    assert_eq!(code, 1, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["ok"], false);
    let problems = report["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 6, "{report:#}");
    let slip = problems
        .iter()
        .find(|p| p["key"] == "host.max_conections")
        .unwrap();
    assert_eq!(slip["hint"], "did you mean 'max_connections'?");
    assert_eq!(report["plugins"][0]["name"], "mock");
    assert!(!out.contains("whsec_x_123456"));
}

#[test]
fn completions_and_help_describe_the_command_line() {
    let s = Scratch::new(&[], "");
    let (code, out, _) = s.payhost(&["completions", "bash"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("complete -F") && out.contains("payhost"),
        "{out}"
    );
    for shell in ["zsh", "fish"] {
        let (code, out, _) = s.payhost(&["completions", shell]);
        assert_eq!(code, 0, "{shell}");
        assert!(out.contains("replay"), "{shell}: {out}");
    }
    let help = Command::new(payhost_bin()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for var in [
        "PAYHOST_CONFIG",
        "PAYHOST_DATABASE_URL",
        "PAYMENT_PROVIDER",
        "PAYHOST_LOG_FORMAT",
        "RUST_LOG",
    ] {
        assert!(help.contains(var), "{var} in --help:\n{help}");
    }
    let replay = Command::new(payhost_bin())
        .args(["events", "replay", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&replay.stdout).contains("An inbox id"));
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_dist_tarball_runs_from_a_scratch_folder() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let built = payhost_bin().parent().unwrap().to_owned();
    let out = tempfile::tempdir().unwrap();
    let tarball = run(Command::new(root.join("deploy/dist"))
        .arg(&built)
        .arg(out.path()));
    let tarball = tarball.trim();
    assert!(tarball.ends_with(".tar.gz"), "{tarball}");

    // Unpacked where nothing of the build is.
    let s = Scratch::new(&[], "");
    let dir = s.dir.path();
    std::fs::remove_dir_all(dir.join("plugins")).unwrap();
    run(Command::new("tar")
        .args(["-xzf", tarball, "--strip-components=1", "-C"])
        .arg(dir));
    for f in [
        "bin/payhost",
        "plugins/libpayhost_plugin_mock.so",
        "plugins/libpayhost_plugin_stripe.so",
        "plugins/libpayhost_plugin_paypal.so",
        "plugins/libpayhost_plugin_mollie.so",
        "payhost.toml",
        "deploy/payhost.service",
        "deploy/payhost.toml",
        "README.md",
        "CHANGELOG.md",
        "LICENSE-MIT",
        "LICENSE-APACHE",
    ] {
        assert!(dir.join(f).is_file(), "{f} is in the tarball");
    }
    let unit = std::fs::read_to_string(dir.join("deploy/payhost.service")).unwrap();
    for line in [
        "User=payhost",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadOnlyPaths=/etc/payhost",
        "ReadWritePaths=/var/lib/payhost",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} in the unit");
    }

    // Its config, on a free port, is the one the scratch host runs.
    let config = std::fs::read_to_string(dir.join("payhost.toml"))
        .unwrap()
        .replace("bind = \"127.0.0.1:8080\"", "bind = \"127.0.0.1:0\"");
    std::fs::write(s.config(), config).unwrap();
    let bin = dir.join("bin/payhost");
    let check = run(Command::new(&bin)
        .arg("--config")
        .arg(s.config())
        .args(["config", "check"]));
    assert!(
        check.contains("OK (1 provider instances, 4 plugins"),
        "{check}"
    );
    let host = s.serve_binary(&bin, &[("RUST_LOG", "info")]);
    let api = Api::new(&host.addr, "dev_payhost_key");
    assert_eq!(api.get("/readyz").status, 200);
    let providers = api.get("/v1/providers");
    assert_eq!(providers.body["data"][0]["name"], "mock", "{providers:?}");
    assert_eq!(
        providers.body["data"][0]["state"], "running",
        "{providers:?}"
    );
}

#[test]
fn migrate_applies_once_and_serve_refuses_an_edited_migration() {
    use payhost_tests::db::TestDb;
    let s = Scratch::new(&[], "");
    let (code, out, err) = s.payhost(&["migrate"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("(applied now)") && out.contains("sha384:"),
        "{out}"
    );
    let (code, out, _) = s.payhost(&["migrate"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("was up to date") && !out.contains("applied now"),
        "{out}"
    );

    // A migration whose SQL changed after it ran: neither command goes on.
    let db = TestDb::sqlite(s.dir.path());
    db.execute("UPDATE _sqlx_migrations SET checksum = X'00' WHERE version = 2");
    let (code, _, err) = s.payhost(&["migrate"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("migration 2") && err.contains("edited"),
        "{err}"
    );
    let (code, _, err) = s.payhost(&["serve"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("migration 2") && err.contains("edited"),
        "{err}"
    );
}

/// Log lines reach stderr while the host runs, not only when it stops: its log thread
/// gathers the lines waiting in its queue into one buffer and writes it out as soon as the
/// queue is empty.
#[test]
fn log_lines_reach_stderr_while_the_host_runs() {
    use std::io::{BufRead, BufReader};
    let s = Scratch::new(
        &[(&mock_so(), "mock.so")],
        "[providers.mock]\nplugin = \"mock\"\nconfig = { webhook_secret = \"whsec_log_lines\" }\n",
    );
    let mut child = Command::new(payhost_bin())
        .args(["--config", &s.config().to_string_lossy(), "serve"])
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = out.next().expect("payhost said where it listens").unwrap();
        if let Some(a) = line.strip_prefix("payhost listening on http://") {
            break a.to_owned();
        }
    };
    let (tx, lines) = std::sync::mpsc::channel();
    let err = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in err.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (status, _) = http(&addr, "GET", "/healthz?log-line-probe", None, None);
    assert_eq!(status, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut seen = Vec::new();
    let found = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains("route=/healthz") && line.contains("request served") => {
                break true;
            }
            Ok(line) => seen.push(line),
            Err(_) => break false,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        found,
        "no 'request served' line for /healthz within 10 s while the host ran; lines so far:\n{}",
        seen.join("\n")
    );
}

/// README's walkthroughs run the fake providers with `examples/*.toml` over what `make
/// build` put in `target/plugins`: the plugins signed with the development key. Each
/// example must trust that key and pass `config check` as it is.
#[test]
fn the_example_configs_load_the_plugins_make_build_signs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let plugins = scratch.path().join("target/plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::create_dir_all(scratch.path().join("examples")).unwrap();
    let mut libs = Vec::new();
    for name in [
        "payhost_plugin_mock",
        "payhost_plugin_stripe",
        "payhost_plugin_paypal",
        "payhost_plugin_mollie",
    ] {
        let file = plugins.join(format!("lib{name}.{}", std::env::consts::DLL_EXTENSION));
        std::fs::copy(plugin(name), &file).unwrap();
        libs.push(file);
    }
    run(Command::new(payhost_bin())
        .args(["plugins", "sign", "--secret-key"])
        .arg(root.join("deploy/dev/dev-plugin-signing.key"))
        .args(&libs));
    for entry in std::fs::read_dir(&plugins).unwrap().flatten() {
        no_group_write(&entry.path());
    }
    no_group_write(&plugins);
    let examples: Vec<_> = std::fs::read_dir(root.join("examples"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    assert!(examples.len() >= 2, "{examples:?}");
    for example in examples {
        let copy = scratch
            .path()
            .join("examples")
            .join(example.file_name().unwrap());
        std::fs::copy(&example, &copy).unwrap();
        let out = Command::new(payhost_bin())
            .arg("--config")
            .arg(&copy)
            .args(["config", "check"])
            .env("FAKE_PAYPAL", "http://127.0.0.1:9")
            .env("FAKE_MOLLIE", "http://127.0.0.1:9/v2")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}{}",
            example.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `payhost plugins list | head -1`: the reader goes away before the output is written. The
/// command ends quietly with the status of a process ended by SIGPIPE, never a panic.
#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    let s = Scratch::new(&[(&mock_so(), "mock.so")], "");
    let mut child = Command::new(payhost_bin())
        .arg("--config")
        .arg(s.config())
        .args(["plugins", "list"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(141), "{stderr}");
}
