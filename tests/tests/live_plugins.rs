//! Live plugin management over the real binary and real `.so` files: a new build dropped
//! into the folder replaces the running one under continuous API load without a failed
//! request; a removed file stops its instances with a clear error; the file added back
//! serves again; a file overwritten in place or a broken build never takes the host down.

use payhost_tests::api::{Api, Resp};
use payhost_tests::*;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MOCK: &str =
    "[providers.mock]\nplugin = \"mock\"\nconfig = { webhook_secret = \"whsec_live\" }\n";

fn scratch() -> Scratch {
    // A long fallback rescan: the tests show the folder watcher at work, not the poll.
    Scratch::with_host(
        &[(&mock_so(), "mock.so")],
        "default_provider = \"mock\"\nplugin_rescan_ms = 600000\n",
        MOCK,
    )
}

fn provider(api: &Api) -> Value {
    let r = api.get("/v1/providers");
    assert_eq!(r.status, 200, "{r:?}");
    r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "mock")
        .cloned()
        .unwrap_or(Value::Null)
}

/// Polls until the mock instance is in `state` with `version` (None: any), or panics.
fn wait_for(api: &Api, state: &str, version: Option<&str>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let p = provider(api);
        let state_ok = p["state"].as_str().unwrap_or("").starts_with(state);
        if state_ok && version.is_none_or(|v| p["version"] == v) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "mock never became {state} {version:?}: {p}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn new_customer(api: &Api, n: usize) -> Resp {
    api.post(
        "/v1/customers",
        &json!({"user_id": format!("load-{n}"), "email": format!("load{n}@example.com")}),
    )
}

fn lifecycle_of_mock(admin: &Api) -> Vec<String> {
    let r = admin.get("/admin/plugins");
    lifecycle(&r.body)
        .into_iter()
        .filter(|(_, name, _)| name == "mock")
        .map(|(t, _, d)| if d.is_empty() { t } else { format!("{t}:{d}") })
        .collect()
}

#[test]
fn a_new_build_replaces_removes_and_returns_under_load() {
    let s = scratch();
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    let admin = Api::new(&host.addr, ADMIN_KEY);
    let dir = s.dir.path().join("plugins");
    wait_for(&api, "running", Some("2.1.0"));

    // Phase 0: steady and replacing (no request may fail); 1: being removed; 2: removed;
    // 3: coming back; 4: back (no request may fail).
    let phase = Arc::new(AtomicU8::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let results: Arc<Mutex<Vec<(u8, Resp)>>> = Arc::default();
    let counter = Arc::new(AtomicUsize::new(0));
    // Load threads that have finished a request begun in phase 1: once all have, no
    // request begun in phase 0 is still running.
    let past_phase_0 = Arc::new(AtomicUsize::new(0));
    const THREADS: usize = 4;
    let load: Vec<_> = (0..THREADS)
        .map(|_| {
            let (api, phase, stop, results, counter, past_phase_0) = (
                api.clone(),
                phase.clone(),
                stop.clone(),
                results.clone(),
                counter.clone(),
                past_phase_0.clone(),
            );
            std::thread::spawn(move || {
                let mut counted = false;
                while !stop.load(Ordering::SeqCst) {
                    let at = phase.load(Ordering::SeqCst);
                    let r = new_customer(&api, counter.fetch_add(1, Ordering::SeqCst));
                    results.lock().unwrap().push((at, r));
                    if at >= 1 && !counted {
                        counted = true;
                        past_phase_0.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    let served = |p: u8| {
        results
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, _)| *at == p)
            .count()
    };

    eventually("the load under way", || served(0) >= 20);
    install(&mock_next_so(), &dir, "mock.so");
    wait_for(&api, "running", Some("2.1.1"));
    let after_swap = served(0);
    eventually("20 requests served after the swap", || {
        served(0) >= after_swap + 20
    });

    phase.store(1, Ordering::SeqCst);
    eventually("every request begun before the removal finished", || {
        past_phase_0.load(Ordering::SeqCst) == THREADS
    });
    std::fs::remove_file(dir.join("mock.so")).unwrap();
    wait_for(&api, "error", None);
    phase.store(2, Ordering::SeqCst);
    let removed_at = served(2);
    eventually("5 requests answered while removed", || {
        served(2) >= removed_at + 5
    });

    phase.store(3, Ordering::SeqCst);
    install(&mock_next_so(), &dir, "mock.so");
    wait_for(&api, "running", Some("2.1.1"));
    phase.store(4, Ordering::SeqCst);
    eventually("20 requests served after the return", || served(4) >= 20);
    stop.store(true, Ordering::SeqCst);
    for t in load {
        t.join().unwrap();
    }

    let results = results.lock().unwrap();
    for (at, r) in results.iter() {
        match at {
            0 | 4 => assert_eq!(r.status, 201, "phase {at}: a request failed: {r:?}"),
            _ => assert!(
                r.status == 201 || (r.status == 503 && r.code() == "provider_unavailable"),
                "phase {at}: not a clear error: {r:?}"
            ),
        }
    }
    let removed: Vec<&Resp> = results
        .iter()
        .filter(|(at, _)| *at == 2)
        .map(|(_, r)| r)
        .collect();
    assert!(!removed.is_empty());
    for r in removed {
        assert_eq!(r.status, 503, "{r:?}");
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("mock") && message.contains("removed"),
            "{message}"
        );
    }
    assert!(results.iter().filter(|(at, _)| *at == 0).count() > 20);

    assert_eq!(
        lifecycle_of_mock(&admin),
        [
            "PluginRegistered",
            "PluginInitialized",
            "PluginRegistered",
            "PluginInitialized",
            "PluginStopped:replaced",
            "PluginStopped:removed",
            "PluginRegistered",
            "PluginInitialized",
        ]
    );
    let (code, _) = host.terminate();
    assert_eq!(code, 0);
}

#[test]
fn overwriting_the_loaded_file_in_place_keeps_the_host_serving() {
    let s = scratch();
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    wait_for(&api, "running", Some("2.1.0"));
    // cp over the file the host loaded: same inode, rewritten while it may be mapped.
    std::fs::copy(mock_next_so(), s.dir.path().join("plugins").join("mock.so")).unwrap();
    for n in 0..30 {
        let r = new_customer(&api, n);
        assert_eq!(r.status, 201, "{r:?}");
    }
    wait_for(&api, "running", Some("2.1.1"));
    assert_eq!(new_customer(&api, 99).status, 201);
    let (code, log) = host.terminate();
    assert_eq!(code, 0, "{log}");
}

#[test]
fn a_broken_build_leaves_the_running_one_serving() {
    let s = scratch();
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    let admin = Api::new(&host.addr, ADMIN_KEY);
    let dir = s.dir.path().join("plugins");
    wait_for(&api, "running", Some("2.1.0"));

    // A build cut short (its ELF header and a little more) lands over the loaded file.
    let bytes = std::fs::read(mock_next_so()).unwrap();
    std::fs::write(dir.join(".mock.so.partial"), &bytes[..8192]).unwrap();
    std::fs::rename(dir.join(".mock.so.partial"), dir.join("mock.so")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = admin.get("/admin/plugins").body;
        let refused = rows["plugins"].as_array().unwrap().iter().any(|p| {
            p["file"].as_str().unwrap_or("").ends_with("mock.so")
                && p["state"].as_str().unwrap_or("").starts_with("error")
        });
        if refused {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the broken build was never refused: {rows}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let p = provider(&api);
    assert_eq!(
        (p["state"].as_str(), p["version"].as_str()),
        (Some("running"), Some("2.1.0"))
    );
    assert_eq!(
        new_customer(&api, 1).status,
        201,
        "the old build keeps serving"
    );
    // The refusal is a PluginError about the file, and the running plugin was not stopped.
    let all = lifecycle(&admin.get("/admin/plugins").body);
    assert!(
        all.iter()
            .any(|(t, name, d)| t == "PluginError" && name == "mock.so" && d == "load"),
        "{all:?}"
    );
    let mock = lifecycle_of_mock(&admin);
    assert_eq!(mock, ["PluginRegistered", "PluginInitialized"], "{mock:?}");

    // The complete build lands: it takes over.
    install(&mock_next_so(), &dir, "mock.so");
    wait_for(&api, "running", Some("2.1.1"));
    assert_eq!(new_customer(&api, 2).status, 201);
}

#[test]
fn operators_stop_reload_and_rescan_through_the_admin_api() {
    let s = scratch();
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    let admin = Api::new(&host.addr, ADMIN_KEY);
    wait_for(&api, "running", Some("2.1.0"));

    assert_eq!(
        api.post("/admin/plugins/mock/stop", &json!({})).status,
        401,
        "admin key only"
    );
    let stopped = admin.post("/admin/plugins/mock/stop", &json!({}));
    assert_eq!(stopped.status, 200, "{stopped:?}");
    assert_eq!(stopped.body["stopped"], json!(["mock"]));
    let refused = new_customer(&api, 1);
    assert_eq!(
        (refused.status, refused.code()),
        (503, "provider_unavailable"),
        "{refused:?}"
    );
    assert!(refused.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("stopped by an operator"));

    let reloaded = admin.post("/admin/plugins/mock/reload", &json!({}));
    assert_eq!(reloaded.status, 200, "{reloaded:?}");
    wait_for(&api, "running", Some("2.1.0"));
    assert_eq!(new_customer(&api, 2).status, 201);
    assert_eq!(
        admin
            .post("/admin/plugins/paypal/reload", &json!({}))
            .status,
        404
    );
    assert_eq!(
        admin.post("/admin/plugins/paypal/stop", &json!({})).status,
        404
    );

    // A new plugin file arrives; an explicit rescan picks it up at once.
    install(&misbehaving_so(), &s.dir.path().join("plugins"), "bad.so");
    let rescan = admin.post("/admin/plugins/rescan", &json!({}));
    assert_eq!(rescan.status, 200, "{rescan:?}");
    let names: Vec<&str> = rescan.body["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(names.contains(&"misbehaving"), "{rescan:?}");

    // `payhost plugins list` shows the running server's state.
    let (code, out, err) = s.payhost(&["plugins", "list", "--json"]);
    assert_eq!(code, 0, "{err}");
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed["source"], "server");
    assert!(listed["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "misbehaving"));
    let (code, _) = host.terminate();
    assert_eq!(code, 0);
    let (code, out, _) = s.payhost(&["plugins", "list", "--json"]);
    assert_eq!(code, 0);
    let local: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        local["source"], "folder",
        "no server: the folder is loaded locally"
    );
}

/// The plugin copies the host process has mapped: each distinct library it loaded.
fn mapped_copies(pid: u32) -> std::collections::BTreeSet<String> {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap()
        .lines()
        .filter(|l| l.contains("plugin-copies"))
        .filter_map(|l| l.split_whitespace().nth(5).map(str::to_owned))
        .collect()
}

#[test]
fn reloading_an_unchanged_file_again_and_again_maps_it_once() {
    // A library is never unmapped; each reload used to map another copy (28 MB of disk and
    // address space for a debug build), until a reload loop filled the disk.
    let s = scratch();
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    let admin = Api::new(&host.addr, ADMIN_KEY);
    wait_for(&api, "running", Some("2.1.0"));
    let before = mapped_copies(host.pid());
    assert_eq!(before.len(), 1, "{before:?}");
    for _ in 0..20 {
        let r = admin.post("/admin/plugins/mock/reload", &json!({}));
        assert_eq!(r.status, 200, "{r:?}");
    }
    wait_for(&api, "running", Some("2.1.0"));
    assert_eq!(new_customer(&api, 1).status, 201);
    assert_eq!(
        mapped_copies(host.pid()),
        before,
        "the same bytes are mapped once"
    );

    // A new build is a new library: mapped once more, and served.
    install(&mock_next_so(), &s.dir.path().join("plugins"), "mock.so");
    wait_for(&api, "running", Some("2.1.1"));
    assert_eq!(mapped_copies(host.pid()).len(), 2);
}

#[test]
fn a_plugin_folder_or_file_others_can_change_is_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let s = scratch();
    let folder = s.dir.path().join("plugins");
    let chmod = |p: &std::path::Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    chmod(&folder, 0o777);
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    let admin = Api::new(&host.addr, ADMIN_KEY);
    let body = admin.get("/admin/plugins").body.to_string();
    assert!(
        body.contains("is writable by everyone") && body.contains("chmod go-w"),
        "{body}"
    );
    assert!(
        provider(&api)["state"] != "running",
        "nothing loaded from it"
    );

    chmod(&folder, 0o755);
    assert_eq!(admin.post("/admin/plugins/rescan", &json!({})).status, 200);
    wait_for(&api, "running", None);
    let version = provider(&api)["version"].clone();

    // A file its group can write, and a symlink to a library outside the folder.
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("next.so");
    std::fs::copy(mock_next_so(), &target).unwrap();
    std::os::unix::fs::symlink(&target, folder.join("linked.so")).unwrap();
    let writable = folder.join("writable.so");
    std::fs::copy(mock_next_so(), &writable).unwrap();
    chmod(&writable, 0o664);
    assert_eq!(admin.post("/admin/plugins/rescan", &json!({})).status, 200);
    let body = admin.get("/admin/plugins").body.to_string();
    assert!(body.contains("outside the plugin folder"), "{body}");
    assert!(
        body.contains("writable.so is writable by its group"),
        "{body}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(provider(&api)["version"], version, "neither was loaded");
}
