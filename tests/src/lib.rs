//! Shared support for payhost's end-to-end tests: where the built artifacts are, a host
//! process in a scratch folder, a minimal HTTP client, and a C library for bad-input tests.
//!
//! The artifacts are built once per test run by `make test` (`cargo build --workspace`
//! before `cargo test`); a test never rebuilds the world.

pub mod api;
pub mod conformance;
pub mod db;
pub mod fake_mollie;
pub mod fake_paypal;
pub mod fake_stripe;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Says that a test did not run (`suite`: which; `why`: what it needs), where it cannot be
/// missed: on stderr past libtest's capture (which hides a passing test's output), and in
/// the file `PAYHOST_SKIP_LOG` names (`make test` counts its lines at the end). When
/// `require` names a variable that is set (`PAYHOST_REQUIRE_POSTGRES`, `..._BROWSER`: CI
/// sets them), the test fails instead.
///
/// # Panics
/// When `require` is set.
pub fn skipped(suite: &str, why: &str, require: &str) {
    assert!(
        std::env::var_os(require).is_none(),
        "{require} is set but {suite} cannot run: {why}"
    );
    // The kind `make test` counts it under, as [`ran`] names them.
    let kind = match require {
        "PAYHOST_REQUIRE_POSTGRES" => "PostgreSQL",
        "PAYHOST_REQUIRE_BROWSER" => "browser",
        "PAYHOST_REQUIRE_MINISIGN" => "minisign",
        "PAYHOST_REQUIRE_MOUNT" => "tmpfs",
        _ => "other",
    };
    let line = format!("SKIPPED: {kind}: {suite}: {why}\n");
    // Not eprintln!: libtest captures it and shows nothing for a test that passes.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
    if let Some(log) = std::env::var_os("PAYHOST_SKIP_LOG") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// Says that a test needing an outside service or tool (`kind`: PostgreSQL, browser,
/// minisign, tmpfs) did run, in the file `PAYHOST_SKIP_LOG` names: `make test` counts, per
/// kind, the tests that ran beside those [`skipped`].
pub fn ran(kind: &str, suite: &str) {
    if let Some(log) = std::env::var_os("PAYHOST_SKIP_LOG") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = f.write_all(format!("RAN: {kind}: {suite}\n").as_bytes());
        }
    }
}

/// One raw HTTP exchange, the whole answer as text (the console answers HTML and
/// redirects, not the API's JSON); `request` is sent as it is.
pub fn raw(addr: &str, request: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Serves `app` on a free loopback port, on a runtime of its own thread (the fakes of
/// outside services); it stops with the test process.
pub fn serve_in_background(app: axum::Router) -> std::net::SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

/// A server started with [`serve_until_stopped`]: stopping it closes its listener and every
/// connection it holds.
pub struct Server {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Stops serving: the listener and every open connection close.
    pub fn stop(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shut();
    }
}

/// Serves `app` on `listener` (bound and listening), on a runtime of its own thread, until
/// [`Server::stop`].
pub fn serve_until_stopped(listener: std::net::TcpListener, app: axum::Router) -> Server {
    listener.set_nonblocking(true).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            tokio::select! {
                r = axum::serve(listener, app) => r.unwrap(),
                _ = stopped => {}
            }
        });
        // Dropping the runtime drops every connection task: their sockets close.
        rt.shutdown_background();
    });
    Server {
        stop: Some(stop),
        thread: Some(thread),
    }
}

/// A loopback port held for a fake whether it listens or not: while it does not,
/// connections are refused (a service that is down), and nobody else can take the port.
pub struct HeldPort {
    holder: socket2::Socket,
}

fn port_socket(addr: &std::net::SocketAddr) -> socket2::Socket {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_reuse_address(true).unwrap();
    s.set_reuse_port(true).unwrap();
    s.bind(&(*addr).into()).unwrap();
    s
}

impl HeldPort {
    pub fn new() -> Self {
        let holder = port_socket(&"127.0.0.1:0".parse().unwrap());
        Self { holder }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.holder.local_addr().unwrap().as_socket().unwrap()
    }

    /// A listener on the port: connections are accepted until it closes (the port stays
    /// held, refusing them, after).
    pub fn listener(&self) -> TcpListener {
        let s = port_socket(&self.addr());
        s.listen(1024).unwrap();
        s.into()
    }
}

impl Default for HeldPort {
    fn default() -> Self {
        Self::new()
    }
}

/// The workspace's target folder for the profile the tests were built in.
pub fn target_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned();
    let base =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    base.join(if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    })
}

fn artifact(name: &str) -> PathBuf {
    let p = target_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: build the workspace first (`make test` runs `cargo build --workspace` before the tests)",
        p.display()
    );
    p
}

/// A plugin library built from the workspace, e.g. `plugin("payhost_plugin_mock")`.
pub fn plugin(lib_name: &str) -> PathBuf {
    artifact(&format!(
        "lib{lib_name}.{}",
        std::env::consts::DLL_EXTENSION
    ))
}

pub fn stripe_so() -> PathBuf {
    plugin("payhost_plugin_stripe")
}

pub fn mollie_so() -> PathBuf {
    plugin("payhost_plugin_mollie")
}

pub fn mock_so() -> PathBuf {
    plugin("payhost_plugin_mock")
}

pub fn misbehaving_so() -> PathBuf {
    plugin("payhost_test_plugin_misbehaving")
}

/// The mock's source built as version 2.1.1: "a new build" of the mock plugin.
pub fn mock_next_so() -> PathBuf {
    plugin("payhost_test_plugin_mock_next")
}

/// Puts `src` into `dir` as `name` the way deploy tools do: written under a temporary name
/// the host ignores, then renamed into place.
pub fn install(src: &Path, dir: &Path, name: &str) {
    let tmp = dir.join(format!(".{name}.partial"));
    std::fs::copy(src, &tmp).unwrap();
    no_group_write(&tmp);
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

/// POSTs a form body to `url` (plain http) as a provider or a browser would: the answer's
/// status and its whole text.
///
/// # Errors
/// The address cannot be reached, or the answer cannot be read.
pub fn post_form(
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, String)> {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (addr, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, answer))
}

/// A local port nothing listens on (bound, then released): an endpoint that is down.
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A process's resident memory, in KiB (from `/proc`).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Takes write permission away from group and others (`chmod go-w`).
pub fn no_group_write(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).unwrap().permissions().mode();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & !0o022)).unwrap();
}

/// An artifact `payhost-compat` built into `target/compat/` (the 2.0 host and mock, the
/// broken-contract plugin); `make test` runs it before the tests.
pub fn compat(name: &str) -> PathBuf {
    let p = target_dir()
        .parent()
        .expect("the target folder")
        .join("compat")
        .join(name);
    assert!(
        p.exists(),
        "{} is missing: `make test` builds it (target/debug/payhost-compat runs after \
         `cargo build --workspace` and before the tests)",
        p.display()
    );
    p
}

pub fn wrong_major_so() -> PathBuf {
    plugin("payhost_test_plugin_wrong_major")
}

/// The `payhost` binary.
pub fn payhost_bin() -> PathBuf {
    artifact("payhost")
}

/// Builds a plain C shared library (no abi_stable header) with the system compiler.
pub fn c_shared_library(dir: &Path, name: &str) -> PathBuf {
    let src = dir.join("plain.c");
    std::fs::write(&src, "int payhost_answer(void) { return 42; }\n").unwrap();
    let out = dir.join(name);
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("cc is needed to build the plain C library");
    assert!(status.success(), "cc -shared failed");
    out
}

pub const API_KEY: &str = "test_api_key_123";
pub const ADMIN_KEY: &str = "test_admin_key_123";

/// A scratch folder with `plugins/` and a `plugins.toml` whose [host] section points there.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    /// `providers` is the TOML after the [host] section (providers, tenants).
    pub fn new(plugins: &[(&Path, &str)], providers: &str) -> Self {
        Self::with_host(plugins, "", providers)
    }

    /// Like [`Scratch::new`], with extra lines for the [host] section.
    pub fn with_host(plugins: &[(&Path, &str)], host_extra: &str, providers: &str) -> Self {
        Self::with_api_keys(plugins, &format!("[\"{API_KEY}\"]"), host_extra, providers)
    }

    /// Like [`Scratch::with_host`], with `api_keys` (TOML) instead of [`API_KEY`] alone.
    pub fn with_api_keys(
        plugins: &[(&Path, &str)],
        api_keys: &str,
        host_extra: &str,
        providers: &str,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pdir = dir.path().join("plugins");
        std::fs::create_dir(&pdir).unwrap();
        for (src, name) in plugins {
            std::fs::copy(src, pdir.join(name)).unwrap();
        }
        // payhost refuses what its group or others can write, whatever the umask here.
        for entry in std::fs::read_dir(&pdir).unwrap().flatten() {
            no_group_write(&entry.path());
        }
        no_group_write(&pdir);
        let config = format!(
            "[host]\nbind = \"127.0.0.1:0\"\nplugin_dir = \"plugins\"\ndata_dir = \"data\"\n\
             api_keys = {api_keys}\nadmin_keys = [\"{ADMIN_KEY}\"]\n{host_extra}\n{providers}\n"
        );
        std::fs::write(dir.path().join("plugins.toml"), config).unwrap();
        Self { dir }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("plugins.toml")
    }

    /// Runs `payhost --config <this> <args>`; returns exit code, stdout, stderr.
    pub fn payhost(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(payhost_bin())
            .arg("--config")
            .arg(self.config())
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Starts `payhost serve` and waits until it listens.
    pub fn serve(&self) -> HostProcess {
        self.serve_with_env(&[("RUST_LOG", "info")])
    }

    /// [`Scratch::serve`] with extra environment variables.
    pub fn serve_with_env(&self, env: &[(&str, &str)]) -> HostProcess {
        self.serve_binary(&payhost_bin(), env)
    }

    /// `serve` with another build of the host (the compat test's 2.0 host).
    pub fn serve_binary(&self, bin: &Path, env: &[(&str, &str)]) -> HostProcess {
        let mut child = Command::new(bin)
            .arg("--config")
            .arg(self.config())
            .arg("serve")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(a) = line.strip_prefix("payhost listening on http://") {
                        break a.to_owned();
                    }
                }
                _ => {
                    let mut err = String::new();
                    child
                        .stderr
                        .take()
                        .unwrap()
                        .read_to_string(&mut err)
                        .unwrap();
                    panic!("payhost did not start:\n{err}");
                }
            }
        };
        // Drain stderr as it comes, so a chatty host never blocks on a full pipe.
        let mut stderr = child.stderr.take().unwrap();
        let log = std::thread::spawn(move || {
            let mut all = String::new();
            let _ = stderr.read_to_string(&mut all);
            all
        });
        HostProcess {
            child,
            addr,
            log: Some(log),
        }
    }
}

/// A running `payhost serve`; terminated when dropped.
pub struct HostProcess {
    child: Child,
    pub addr: String,
    log: Option<std::thread::JoinHandle<String>>,
}

impl HostProcess {
    pub fn get(&self, path: &str, key: Option<&str>) -> (u16, Value) {
        http(&self.addr, "GET", path, key, None)
    }

    /// The process id (to read its /proc entries).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: the host gets no chance to clean up (a crash).
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM, waits for exit; returns the exit code and everything on stderr.
    pub fn terminate(mut self) -> (i32, String) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let status = self.child.wait().unwrap();
        let err = self.log.take().unwrap().join().unwrap();
        (status.code().unwrap_or(-1), err)
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 exchange (Connection: close); the body parsed as JSON (Null if empty).
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let json = if body.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or(Value::String(body.into()))
    };
    (status, json)
}

/// Polls `done` until it holds; panics naming `what` after 30 s.
pub fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The lifecycle events in an `/admin/plugins` answer, as (type, name, detail) triples,
/// where detail is the error_type, the reason, or "" .
pub fn lifecycle(admin: &Value) -> Vec<(String, String, String)> {
    admin["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let detail = e["error_type"]
                .as_str()
                .or(e["reason"].as_str())
                .unwrap_or("");
            (
                e["type"].as_str().unwrap().to_owned(),
                e["name"].as_str().unwrap().to_owned(),
                detail.to_owned(),
            )
        })
        .collect()
}

/// The requests an endpoint received: (lowercase headers, body).
pub type Received = Arc<Mutex<Vec<(Vec<(String, String)>, String)>>>;

/// A minimal endpoint: answers 200 and keeps (headers, body) of each complete request (a
/// sender killed mid-request leaves a partial one, which is no delivery).
pub fn receiver(listener: TcpListener) -> Received {
    let got: Received = Arc::default();
    let keep = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let complete = loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break false;
                }
                if line == "\r\n" {
                    break true;
                }
                if let Some((k, v)) = line.split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                }
            };
            let len: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; len];
            if !complete || reader.read_exact(&mut body).is_err() {
                continue;
            }
            keep.lock()
                .unwrap()
                .push((headers, String::from_utf8_lossy(&body).into_owned()));
            let mut stream = stream;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    got
}
