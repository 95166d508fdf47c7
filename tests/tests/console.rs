//! The operator console in a real browser: Debian's chromium driven through chromedriver
//! (WebDriver, by fantoccini) against the real binary with the mock plugin. Signs in, sees
//! mock running, stops and reloads it with the buttons and watches the lifecycle timeline,
//! replays an inbox row, retries outbox work, searches a payment, and saves a screenshot of
//! every page in `target/debug/console-screenshots/` (the README shows copies of them).
//!
//! Without chromedriver the browser test says so on stderr and passes, unless
//! `PAYHOST_REQUIRE_BROWSER` is set: `.ci/run` installs chromium and sets it, so CI never
//! skips. The session and CSRF checks over plain HTTP always run.

use fantoccini::{Client, ClientBuilder, Locator};
use payhost_tests::api::Api;
use payhost_tests::db::TestDb;
use payhost_tests::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "whsec_console";

fn scratch() -> Scratch {
    scratch_on(None)
}

fn scratch_on(db: Option<&TestDb>) -> Scratch {
    let dead = closed_port();
    let mut host = "default_provider = \"mock\"\n".to_owned();
    if let Some(db) = db {
        host.push_str(&db.host_line());
    }
    Scratch::with_host(
        &[(&mock_so(), "mock.so")],
        &host,
        &format!(
            "[providers.mock]\nplugin = \"mock\"\nconfig = {{ webhook_secret = \"{SECRET}\" }}\n\
             [[webhook_endpoints]]\nname = \"app\"\nurl = \"http://127.0.0.1:{dead}/hooks\"\n\
             secret = \"whsec_app_endpoint\"\n"
        ),
    )
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn post_form(addr: &str, path: &str, cookie: &str, body: &str, extra: &str) -> String {
    raw(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nCookie: {cookie}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n{extra}\r\n{body}",
            body.len()
        ),
    )
}

fn status_of(response: &str) -> u16 {
    response[9..12].parse().unwrap()
}

fn session_cookie(response: &str) -> String {
    response
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie: payhost_console=")
                .then(|| {
                    l["set-cookie: ".len()..]
                        .split(';')
                        .next()
                        .unwrap()
                        .to_owned()
                })
        })
        .unwrap_or_else(|| panic!("no session cookie in:\n{response}"))
}

#[test]
fn actions_need_a_session_and_its_csrf_token() {
    let s = scratch();
    let host = s.serve();
    let addr = &host.addr;
    let admin = Api::new(addr, ADMIN_KEY);

    // Pages redirect to the sign-in form; a wrong key is refused and names no key.
    let page = raw(
        addr,
        &format!("GET /console/plugins HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(status_of(&page), 303, "{page}");
    assert!(
        page.contains("location: /console/login?next=%2Fconsole%2Fplugins"),
        "{page}"
    );
    let wrong = post_form(addr, "/console/login", "", "key=not_the_key", "");
    assert_eq!(status_of(&wrong), 401, "{wrong}");
    assert!(wrong.contains("That is not an admin key") && !wrong.contains("Set-Cookie"));

    // The right key: an HttpOnly, SameSite=Strict cookie scoped to the console.
    let ok = post_form(
        addr,
        "/console/login",
        "",
        &format!("key={ADMIN_KEY}&next=%2F%2Fevil.example"),
        "",
    );
    assert_eq!(status_of(&ok), 303, "{ok}");
    assert!(
        ok.contains("location: /console\r\n"),
        "an off-site next is ignored: {ok}"
    );
    let set = ok
        .lines()
        .find(|l| l.starts_with("set-cookie: payhost_console="))
        .unwrap();
    for attr in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=43200",
    ] {
        assert!(set.contains(attr), "{attr} in {set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP on loopback");
    let behind_tls = post_form(
        addr,
        "/console/login",
        "",
        &format!("key={ADMIN_KEY}"),
        "X-Forwarded-Proto: https\r\n",
    );
    assert!(
        behind_tls
            .lines()
            .any(|l| l.starts_with("set-cookie: payhost_console=") && l.contains("; Secure")),
        "{behind_tls}"
    );
    let cookie = session_cookie(&ok);
    let page = raw(addr, &format!("GET /console/plugins HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nCookie: {cookie}\r\n\r\n"));
    assert_eq!(status_of(&page), 200, "{page}");
    for header in [
        "content-security-policy: default-src 'none'",
        "x-frame-options: DENY",
        "cache-control: no-store",
    ] {
        assert!(page.contains(header), "{header}");
    }
    // Each plugin's trust (the scratch host's mock is unsigned, loaded on loopback).
    assert!(page.contains("<th>Trust</th>"), "{page}");
    assert!(page.contains("data-trust=\"unsigned\""), "{page}");
    let token = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();

    // Without the token, with another session's, from another site, or without a session:
    // refused, and mock keeps running.
    let other = session_cookie(&post_form(
        addr,
        "/console/login",
        "",
        &format!("key={ADMIN_KEY}"),
        "",
    ));
    for (cookie, body, extra, why) in [
        (cookie.as_str(), String::new(), "", "no token"),
        (cookie.as_str(), "csrf=00".to_owned(), "", "wrong token"),
        (
            other.as_str(),
            format!("csrf={token}"),
            "",
            "another session's token",
        ),
        (
            cookie.as_str(),
            format!("csrf={token}"),
            "Sec-Fetch-Site: cross-site\r\n",
            "cross-site",
        ),
        ("", format!("csrf={token}"), "", "no session"),
        (
            "payhost_console=9999999999.00000000000000000000000000000000.00",
            format!("csrf={token}"),
            "",
            "forged",
        ),
    ] {
        let r = post_form(addr, "/console/plugins/mock/stop", cookie, &body, extra);
        assert_eq!(status_of(&r), 403, "{why}: {r}");
    }
    let (_, plugins) = host.get("/admin/plugins", Some(ADMIN_KEY));
    assert_eq!(plugins["instances"][0]["state"], "running", "{plugins}");

    // With it: the action runs and its notice comes back in a one-minute cookie.
    let r = post_form(
        addr,
        "/console/plugins/mock/stop",
        &cookie,
        &format!("csrf={token}"),
        "",
    );
    assert_eq!(status_of(&r), 303, "{r}");
    assert!(
        r.contains("set-cookie: payhost_flash=ok%3AStopped+mock"),
        "{r}"
    );
    let replay = admin.post("/admin/inbox/whin_nope/replay", &json!({}));
    assert_eq!(replay.status, 404, "{replay:?}");
}

fn get_page(addr: &str, path: &str, cookie: &str) -> String {
    raw(
        addr,
        &format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nCookie: {cookie}\r\n\r\n"
        ),
    )
}

/// Every page, with records, a processed webhook and events in the last hour, on a backend.
fn every_page_renders(db: Option<&TestDb>) {
    let s = scratch_on(db);
    let host = s.serve();
    let addr = &host.addr;
    let api = Api::new(addr, API_KEY);
    let c = api.post(
        "/v1/customers",
        &json!({"user_id": "u_pages", "email": "p@example.com"}),
    );
    assert_eq!(c.status, 201, "{c:?}");
    let p = api.post(
        "/v1/payments",
        &json!({"customer": c.s("id"), "amount": 500, "currency": "jpy", "payment_method": "pm_card_visa"}),
    );
    assert_eq!(p.status, 201, "{p:?}");
    let sub = api.post(
        "/v1/subscriptions",
        &json!({"customer": c.s("id"), "price": "price_basic"}),
    );
    assert!(sub.status == 201 || sub.status == 200, "{sub:?}");
    let object =
        json!({"id": p.s("provider_id"), "amount": 500, "currency": "jpy", "status": "succeeded"});
    let (body, sig) = payhost_plugin_mock::webhook::signed_event(
        SECRET,
        now(),
        "evt_pages",
        "payment.succeeded",
        &object,
    );
    let r = api.send(
        "POST",
        "/webhooks/payments/mock",
        &[("X-Webhook-Signature", &sig)],
        Some(&body),
    );
    assert_eq!(r.status, 200, "{r:?}");
    eventually("the webhook processed", || {
        host.get("/admin/inbox", Some(ADMIN_KEY)).1["data"][0]["status"] == "processed"
    });
    let (_, inbox) = host.get("/admin/inbox", Some(ADMIN_KEY));
    let inbox_id = inbox["data"][0]["id"].as_str().unwrap().to_owned();
    let cookie = session_cookie(&post_form(
        addr,
        "/console/login",
        "",
        &format!("key={ADMIN_KEY}"),
        "",
    ));
    let pay = p.s("id");
    let cus = c.s("id");
    for (path, needle) in [
        ("/console".to_owned(), "1 of 1 running".to_owned()),
        (
            "/console/plugins".to_owned(),
            "PluginInitialized".to_owned(),
        ),
        ("/console/inbox".to_owned(), "evt_pages".to_owned()),
        (
            "/console/inbox?status=processed&provider=mock".to_owned(),
            "evt_pages".to_owned(),
        ),
        (format!("/console/inbox/{inbox_id}"), "evt_pages".to_owned()),
        (
            "/console/outbox?status=pending".to_owned(),
            "Not done yet".to_owned(),
        ),
        ("/console/payments".to_owned(), "500 JPY".to_owned()),
        (
            format!("/console/payments?customer={cus}&status=succeeded"),
            pay.clone(),
        ),
        (
            format!("/console/payments/{pay}"),
            "PaymentSucceeded".to_owned(),
        ),
        (
            "/console/customers?email=p%40example.com".to_owned(),
            cus.clone(),
        ),
        (
            format!("/console/customers/{cus}"),
            "p@example.com".to_owned(),
        ),
        (
            format!("/console/subscriptions?customer={cus}"),
            "price_basic".to_owned(),
        ),
        (
            format!("/console/events?object_id={pay}"),
            "PaymentCreated".to_owned(),
        ),
        (
            "/console/events?type=PaymentCreated".to_owned(),
            pay.clone(),
        ),
    ] {
        let page = get_page(addr, &path, &cookie);
        assert_eq!(status_of(&page), 200, "{path}: {page}");
        assert!(page.contains(&needle), "{path} shows {needle}: {page}");
    }
    // Every page names the host that served it; on PostgreSQL a delivery names the host
    // that claimed and processed it.
    let host_id = host.get("/readyz", None).1["host"]
        .as_str()
        .unwrap()
        .to_owned();
    let row = get_page(addr, &format!("/console/inbox/{inbox_id}"), &cookie);
    assert!(
        row.contains(&format!(
            "title=\"The host that served this page\">{host_id}<"
        )),
        "{row}"
    );
    if db.is_some() {
        assert!(
            row.contains(&format!("<dd>{host_id}</dd>")),
            "claimed by this host: {row}"
        );
    }
    // The events chart counts this minute's events from the database.
    let overview = get_page(addr, "/console", &cookie);
    assert!(overview.contains("id=\"chart-events\""), "{overview}");
    for (path, status) in [
        ("/console/payments/pay_missing", 404),
        ("/console/inbox/whin_missing", 404),
        ("/console/no-such-page", 404),
        ("/console/events?before=x", 400),
        ("/console/payments?customer=not%20an%20id", 400),
    ] {
        let page = get_page(addr, path, &cookie);
        assert_eq!(status_of(&page), status, "{path}: {page}");
        assert!(
            page.contains("class=\"notice err\""),
            "{path} says what was wrong"
        );
    }
}

#[test]
fn every_page_renders_on_sqlite() {
    every_page_renders(None);
}

#[test]
fn every_page_renders_on_postgres() {
    let Some(db) = TestDb::postgres("console") else {
        return;
    };
    every_page_renders(Some(&db));
}

// ---------------------------------------------------------------------------------------
// In the browser

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromedriver() -> Option<PathBuf> {
    let path = std::env::var_os("PAYHOST_CHROMEDRIVER")
        .map_or_else(|| PathBuf::from("/usr/bin/chromedriver"), PathBuf::from);
    path.exists().then_some(path)
}

fn start_driver(bin: &Path) -> (Driver, String) {
    let port = closed_port();
    let child = Command::new(bin)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver(child);
    let url = format!("http://127.0.0.1:{port}");
    eventually("chromedriver answers", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (driver, url)
}

async fn browser(driver_url: &str, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": std::env::var("PAYHOST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1360,900", "--hide-scrollbars",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(driver_url)
        .await
        .expect("a chromium session through chromedriver")
}

/// The text of `css` once it contains `needle` (pages load after clicks; 15 s at most).
async fn wait_text(c: &Client, css: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            if let Ok(t) = e.text().await {
                if t.contains(needle) {
                    return t;
                }
                last = t;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = c
        .current_url()
        .await
        .map(|u| u.to_string())
        .unwrap_or_default();
    panic!("'{needle}' never appeared in {css} on {url}; last text: {last:?}");
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

async fn screenshot(c: &Client, name: &str) {
    let dir = target_dir().join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = c.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "{name} is a PNG");
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

async fn goto(c: &Client, base: &str, path: &str) {
    c.goto(&format!("{base}{path}"))
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
}

#[test]
fn an_operator_works_the_console_in_chromium() {
    let Some(driver_bin) = chromedriver() else {
        payhost_tests::skipped(
            "the console's browser test",
            "it needs Debian's chromium and chromium-driver (/usr/bin/chromedriver; \
             apt-get install chromium chromium-driver); .ci/run installs them",
            "PAYHOST_REQUIRE_BROWSER",
        );
        return;
    };
    payhost_tests::ran("browser", "the console's browser test");
    let s = scratch();
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    let base = format!("http://{}", host.addr);

    // Records to look at: a customer, a payment, and a signed webhook about the payment
    // (its payload carries a secret-named field the console must not show).
    let customer = api.post(
        "/v1/customers",
        &json!({"user_id": "u_console", "email": "ada@example.com", "name": "Ada Lovelace"}),
    );
    assert_eq!(customer.status, 201, "{customer:?}");
    let payment = api.post(
        "/v1/payments",
        &json!({"customer": customer.s("id"), "amount": 4200, "currency": "eur", "payment_method": "pm_card_visa"}),
    );
    assert_eq!(payment.status, 201, "{payment:?}");
    let payment_id = payment.s("id");
    let object = json!({"id": payment.s("provider_id"), "amount": 4200, "currency": "eur",
        "status": "succeeded", "client_secret": "pi_console_secret_never_shown"});
    let (body, sig) = payhost_plugin_mock::webhook::signed_event(
        SECRET,
        now(),
        "evt_console_1",
        "payment.succeeded",
        &object,
    );
    let r = api.send(
        "POST",
        "/webhooks/payments/mock",
        &[("X-Webhook-Signature", &sig)],
        Some(&body),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let inbox_row = |host: &HostProcess| -> Value {
        let (_, inbox) = host.get("/admin/inbox", Some(ADMIN_KEY));
        inbox["data"][0].clone()
    };
    eventually("the webhook processed", || {
        inbox_row(&host)["status"] == "processed"
    });
    let inbox_id = inbox_row(&host)["id"].as_str().unwrap().to_owned();
    let events_count = |api: &Api| {
        api.get("/v1/events?limit=100").body["data"]
            .as_array()
            .unwrap()
            .len()
    };
    let events_before = events_count(&api);
    // The application endpoint is down: its deliveries wait in the outbox.
    let pending_work = || -> Value {
        let (_, outbox) = host.get("/admin/outbox?status=pending", Some(ADMIN_KEY));
        outbox["data"][0].clone()
    };
    eventually("outbox work pending", || pending_work()["id"].is_string());
    let outbox_id = pending_work()["id"].as_str().unwrap().to_owned();

    let profile = tempfile::tempdir().unwrap();
    let (_driver, driver_url) = start_driver(&driver_bin);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = browser(&driver_url, profile.path()).await;

        // Sign in: a wrong key first.
        goto(&c, &base, "/console/plugins").await;
        wait_text(&c, "h1", "Sign in").await;
        screenshot(&c, "login").await;
        c.find(Locator::Css("#key"))
            .await
            .unwrap()
            .send_keys("wrong")
            .await
            .unwrap();
        click(&c, "#sign-in").await;
        wait_text(&c, ".notice.err", "not an admin key").await;
        c.find(Locator::Css("#key"))
            .await
            .unwrap()
            .send_keys(ADMIN_KEY)
            .await
            .unwrap();
        click(&c, "#sign-in").await;
        // Back where the operator was going: the plugins page, mock running.
        wait_text(&c, "h1", "Plugins and instances").await;
        wait_text(&c, "#instance-mock", "running").await;
        let timeline = c
            .find(Locator::Css("#timeline"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(timeline.contains("PluginInitialized"), "{timeline}");

        // Stop with the button: the notice, the instance gone from the running ones, a
        // PluginStopped at the top of the timeline.
        click(&c, "#stop-mock").await;
        wait_text(&c, "#notice", "Stopped mock").await;
        wait_text(&c, "#timeline li:first-child", "PluginStopped").await;
        let (_, admin) = host.get("/admin/plugins", Some(ADMIN_KEY));
        assert!(
            !admin["instances"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["name"] == "mock" && i["state"] == "running"),
            "{admin}"
        );
        let r = api.get("/v1/payments");
        assert_eq!(
            r.status, 200,
            "reads come from the store while mock is stopped: {r:?}"
        );
        // Reload: running again, the newest lifecycle event an initialization.
        click(&c, "#reload-mock").await;
        wait_text(&c, "#notice", "Reloaded mock").await;
        wait_text(&c, "#instance-mock", "running").await;
        wait_text(&c, "#timeline li:first-child", "PluginInitialized").await;
        // Rescan: nothing changed in the folder, so nothing is loaded or replaced.
        click(&c, "#rescan").await;
        wait_text(
            &c,
            "#notice",
            "Rescanned the plugins folder: 0 loaded, 0 replaced",
        )
        .await;
        wait_text(&c, "#instance-mock", "running").await;
        screenshot(&c, "plugins").await;

        // The overview: mock running, the charts drawn.
        goto(&c, &base, "/console").await;
        wait_text(&c, "#card-instances", "1 of 1 running").await;
        for chart in ["#chart-events", "#chart-backlog", "#chart-latency"] {
            c.find(Locator::Css(&format!("{chart} svg path.line")))
                .await
                .unwrap_or_else(|e| panic!("{chart} has a line: {e}"));
        }
        let latency = c
            .find(Locator::Css("#chart-latency"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(latency.contains("mock p99"), "{latency}");
        screenshot(&c, "overview").await;

        // The inbox: the row, its payload without the secret, and a replay that records
        // nothing twice.
        goto(&c, &base, "/console/inbox?status=processed").await;
        wait_text(&c, &format!("#inbox-{inbox_id}"), "evt_console_1").await;
        screenshot(&c, "inbox").await;
        click(&c, &format!("#inbox-{inbox_id} a")).await;
        let payload = wait_text(&c, "#payload", "evt_console_1").await;
        assert!(
            payload.contains("[redacted]") && !payload.contains("pi_console_secret_never_shown"),
            "{payload}"
        );
        click(&c, "#replay").await;
        wait_text(&c, "#notice", &format!("Queued {inbox_id}")).await;
        eventually("the replayed webhook processed again", || {
            let row = inbox_row(&host);
            row["status"] == "processed" && row["attempts"].as_i64() == Some(1)
        });
        goto(&c, &base, &format!("/console/inbox/{inbox_id}")).await;
        wait_text(&c, "#inbox-status", "processed").await;
        screenshot(&c, "inbox-row").await;
        assert_eq!(
            events_count(&api),
            events_before,
            "a replay records no fact twice"
        );

        // The outbox: the failing endpoint's work, retried with its button.
        goto(&c, &base, "/console/outbox").await;
        wait_text(&c, "#outbox-targets", "app").await;
        click(&c, &format!("#retry-{outbox_id}")).await;
        wait_text(&c, "#notice", &format!("Queued {outbox_id}")).await;
        screenshot(&c, "outbox").await;

        // Search a payment by id, open it, see its events.
        goto(&c, &base, "/console/payments").await;
        c.find(Locator::Css("#search-id"))
            .await
            .unwrap()
            .send_keys(&payment_id)
            .await
            .unwrap();
        click(&c, "#search").await;
        wait_text(&c, &format!("#payment-{payment_id}"), "42.00 EUR").await;
        let rows = c
            .find_all(Locator::Css("#payments tbody tr"))
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "the search finds that payment only");
        screenshot(&c, "payments").await;
        click(&c, &format!("#payment-{payment_id} a")).await;
        wait_text(&c, "#record", &payment_id).await;
        wait_text(&c, "#events", "PaymentSucceeded").await;
        wait_text(&c, "#attempts", "answered").await;
        screenshot(&c, "payment").await;
        // The routing table, each instance's circuit, nothing in doubt.
        goto(&c, &base, "/console/routing").await;
        wait_text(&c, "#routing-default", "mock").await;
        wait_text(&c, "#instance-mock", "closed").await;
        wait_text(&c, "#no-doubt", "every payment's outcome is known").await;
        screenshot(&c, "routing").await;
        // A search that matches nothing, and one the API's own types refuse.
        goto(
            &c,
            &base,
            "/console/payments?status=succeeded&provider=mock",
        )
        .await;
        wait_text(&c, "#payments", &payment_id).await;
        goto(&c, &base, "/console/payments?customer=not%20an%20id").await;
        wait_text(&c, ".notice.err", "customer").await;

        for (path, name, needle) in [
            (
                "/console/customers?email=ada%40example.com",
                "customers",
                "Ada Lovelace",
            ),
            ("/console/subscriptions", "subscriptions", "Subscriptions"),
            ("/console/events", "events", "PaymentSucceeded"),
        ] {
            goto(&c, &base, path).await;
            wait_text(&c, "main", needle).await;
            screenshot(&c, name).await;
        }

        // The audit trail: what this session did through the buttons, as its operator
        // (the admin key's name), from the browser's address.
        goto(
            &c,
            &base,
            "/console/audit?actor=console%3Ahost.admin_keys%5B0%5D",
        )
        .await;
        for action in [
            "console.sign_in",
            "plugin.stop",
            "plugin.reload",
            "inbox.replay",
            "outbox.retry",
        ] {
            wait_text(&c, "#audit", action).await;
        }
        wait_text(&c, "#audit", "127.0.0.1").await;
        screenshot(&c, "audit").await;

        // Sign out: the console asks to sign in again.
        click(&c, "#sign-out").await;
        wait_text(&c, "h1", "Sign in").await;
        goto(&c, &base, "/console/plugins").await;
        wait_text(&c, "h1", "Sign in").await;
        c.close().await.unwrap();
    });
}
