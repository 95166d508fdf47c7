//! The plugin host over real `.so` files and the real binary: loading, listing, bad files,
//! configuration errors, graceful shutdown.

use payhost_tests::*;
use serde_json::Value;

const MOCK: &str =
    "[providers.mock]\nplugin = \"mock\"\nconfig = { webhook_secret = \"whsec_test\" }\n";

fn errors_named<'a>(events: &'a [(String, String, String)], name: &str) -> Vec<&'a str> {
    events
        .iter()
        .filter(|(t, n, _)| t == "PluginError" && n == name)
        .map(|(_, _, d)| d.as_str())
        .collect()
}

fn admin_events_error_text(admin: &Value, name: &str) -> String {
    admin["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "PluginError" && e["name"] == name)
        .map(|e| e["error"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn serves_the_mock_provider_and_lists_it() {
    let mock = mock_so();
    let s = Scratch::with_host(&[(&mock, "mock.so")], "default_provider = \"mock\"", MOCK);
    let host = s.serve();

    assert_eq!(
        host.get("/healthz", None),
        (200, serde_json::json!({"status": "ok"}))
    );
    let (status, body) = host.get("/v1/providers", None);
    assert_eq!(status, 401, "the providers list needs the API key: {body}");
    let (status, body) = host.get("/v1/providers", Some(API_KEY));
    assert_eq!(status, 200);
    let p = &body["data"][0];
    assert_eq!(
        (
            p["name"].as_str(),
            p["plugin"].as_str(),
            p["state"].as_str()
        ),
        (Some("mock"), Some("mock"), Some("running"))
    );
    assert_eq!(p["version"], "2.1.0");
    assert_eq!(p["default"], true);
    assert!(p["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "refunds"));

    let (_, admin) = host.get("/admin/plugins", Some(ADMIN_KEY));
    let events = lifecycle(&admin);
    assert_eq!(
        events
            .iter()
            .map(|(t, n, _)| (t.as_str(), n.as_str()))
            .collect::<Vec<_>>(),
        [("PluginRegistered", "mock"), ("PluginInitialized", "mock")]
    );
    let init = admin["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "PluginInitialized")
        .unwrap();
    assert_eq!(init["config_keys"], serde_json::json!(["webhook_secret"]));
    assert!(
        !admin.to_string().contains("whsec_test"),
        "config values must never appear: {admin}"
    );
    assert_eq!(
        host.get("/admin/plugins", Some(API_KEY)).0,
        401,
        "the API key is not an admin key"
    );

    let (code, out, _) = s.payhost(&["plugins", "list", "--json"]);
    assert_eq!(code, 0);
    let list: Value = serde_json::from_str(&out).unwrap();
    let row = &list["plugins"][0];
    assert_eq!(
        (
            row["name"].as_str(),
            row["version"].as_str(),
            row["plugin_type"].as_str()
        ),
        (Some("mock"), Some("2.1.0"), Some("payment"))
    );
    assert_eq!(row["contract"], payhost_plugin_api::CONTRACT_VERSION);
    assert_eq!(row["state"], "active");
    assert!(row["file"].as_str().unwrap().ends_with("mock.so"));
    let (code, table, _) = s.payhost(&["plugins", "list"]);
    assert_eq!(code, 0);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("mock") && l.contains("2.1.0") && l.contains("active")),
        "{table}"
    );
}

#[test]
fn bad_files_are_refused_with_their_reason_while_the_good_plugin_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let text = tmp.path().join("x.so");
    std::fs::write(&text, "this is a text file, not a library\n").unwrap();
    let plain_c = c_shared_library(tmp.path(), "plain.so");
    let (mock, wrong, bad) = (mock_so(), wrong_major_so(), misbehaving_so());
    let s = Scratch::new(
        &[
            (&mock, "a-mock.so"),
            (&text, "x.so"),
            (&plain_c, "plain-c.so"),
            (&wrong, "wrong-major.so"),
            (&mock, "z-mock-again.so"),
            (&bad, "misbehaving.so"),
        ],
        MOCK,
    );
    let host = s.serve();
    let (_, admin) = host.get("/admin/plugins", Some(ADMIN_KEY));
    let events = lifecycle(&admin);

    assert_eq!(errors_named(&events, "x.so"), ["load"]);
    assert_eq!(errors_named(&events, "plain-c.so"), ["abi"]);
    assert!(admin_events_error_text(&admin, "plain-c.so").contains("root module symbol"));
    assert_eq!(errors_named(&events, "wrong-major.so"), ["abi"]);
    let wrong_text = admin_events_error_text(&admin, "wrong-major.so");
    assert!(
        wrong_text.contains("version mismatch")
            && wrong_text.contains("1.0.0")
            && wrong_text.contains(payhost_plugin_api::CONTRACT_VERSION),
        "{wrong_text}"
    );
    assert_eq!(
        errors_named(&events, "mock"),
        ["load"],
        "the second file declaring 'mock' is refused"
    );
    assert!(admin_events_error_text(&admin, "mock").contains("already registered"));
    assert!(events
        .iter()
        .any(|(t, n, _)| t == "PluginRegistered" && n == "misbehaving"));

    let (status, body) = host.get("/v1/providers", Some(API_KEY));
    assert_eq!(status, 200);
    assert_eq!(body["data"][0]["state"], "running", "{body}");
    assert_eq!(host.get("/healthz", None).0, 200);

    let plugins = admin["plugins"].as_array().unwrap();
    let failed: Vec<&Value> = plugins
        .iter()
        .filter(|p| p["state"].as_str().unwrap().starts_with("error"))
        .collect();
    assert_eq!(
        failed.len(),
        4,
        "x.so, plain-c.so, wrong-major.so, z-mock-again.so: {plugins:?}"
    );
}

#[test]
fn plugins_check_prints_metadata_or_the_exact_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let text = tmp.path().join("x.so");
    std::fs::write(&text, "text").unwrap();
    let plain_c = c_shared_library(tmp.path(), "plain.so");
    let s = Scratch::new(&[], "");

    let (code, out, _) = s.payhost(&["plugins", "check", mock_so().to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        out.contains("name:            mock")
            && out.contains("webhook_secret (required, secret)")
            && out.contains(&format!(
                "contract:        {}",
                payhost_plugin_api::CONTRACT_VERSION
            )),
        "{out}"
    );

    let cases = [
        (text, "not a loadable shared library"),
        (plain_c, "does not export abi_stable's root module symbol"),
        (wrong_major_so(), "library version mismatch"),
        (tmp.path().join("missing.so"), "cannot read"),
    ];
    for (file, reason) in cases {
        let (code, _, err) = s.payhost(&["plugins", "check", file.to_str().unwrap()]);
        assert_ne!(code, 0, "{} must fail", file.display());
        assert!(
            err.contains(reason),
            "{}: expected '{reason}' in: {err}",
            file.display()
        );
    }
}

#[test]
fn configuration_errors_fail_only_the_instance_concerned() {
    let mock = mock_so();
    let s = Scratch::new(
        &[(&mock, "mock.so")],
        &format!(
            "{MOCK}\n[providers.nokey]\nplugin = \"mock\"\n\n[providers.ghost]\nplugin = \"paypal\"\n\
             [providers.typo]\nplugin = \"mock\"\nconfig = {{ webhook_secrt = \"whsec_typo\" }}\n"
        ),
    );
    let host = s.serve();
    let (_, admin) = host.get("/admin/plugins", Some(ADMIN_KEY));
    let events = lifecycle(&admin);
    assert_eq!(errors_named(&events, "nokey"), ["initialization"]);
    let nokey = admin_events_error_text(&admin, "nokey");
    assert!(
        nokey.contains("missing required config keys: webhook_secret"),
        "{nokey}"
    );
    assert_eq!(errors_named(&events, "typo"), ["initialization"]);
    let typo = admin_events_error_text(&admin, "typo");
    assert!(
        typo.contains("unknown config key 'webhook_secrt'")
            && typo.contains("knows: webhook_secret"),
        "a misspelt key is named, with the keys the plugin knows: {typo}"
    );
    assert!(!typo.contains("whsec_typo"), "never the value: {typo}");
    assert_eq!(errors_named(&events, "ghost"), ["initialization"]);
    let ghost = admin_events_error_text(&admin, "ghost");
    assert!(
        ghost.contains("'paypal' is not loaded") && ghost.contains("loaded plugins: mock"),
        "{ghost}"
    );

    let (_, body) = host.get("/v1/providers", Some(API_KEY));
    let states: Vec<(String, String)> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(states[1], ("mock".into(), "running".into()));
    assert!(states[0].0 == "ghost" && states[0].1.starts_with("error"));
    assert_eq!(
        body["data"][0]["plugin"], "paypal",
        "a failed instance still names its plugin"
    );
    assert!(states[2].0 == "nokey" && states[2].1.contains("webhook_secret"));
    assert!(states[3].0 == "typo" && states[3].1.contains("webhook_secrt"));
}

#[test]
fn a_bad_config_file_is_refused_with_file_and_key() {
    let s = Scratch::new(&[], "[providers.mock]\nplugin = \"mock\"\nconfg = {}\n");
    let (code, _, err) = s.payhost(&["serve"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("plugins.toml") && err.contains("confg"),
        "{err}"
    );
}

#[test]
fn sigterm_stops_every_plugin_gracefully() {
    let mock = mock_so();
    let s = Scratch::new(&[(&mock, "mock.so")], &format!("{MOCK}\n[providers.mock_b]\nplugin = \"mock\"\nconfig = {{ webhook_secret = \"b\" }}\n"));
    let host = s.serve();
    let (code, stderr) = host.terminate();
    assert_eq!(code, 0, "{stderr}");
    let stopped: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("plugin stopped") && l.contains("Shutdown"))
        .collect();
    assert_eq!(stopped.len(), 2, "{stderr}");
}
