//! Floods and misbehaving clients, over the real binary: 20,000 unauthenticated webhooks to
//! made-up provider names leave `/metrics` small and the host's memory flat; headers or a
//! body that never finish arriving are cut off; connections beyond the limit wait their
//! turn; a client that hangs up mid-call does not leave a provider-side record unrecorded.

use payhost_tests::api::Api;
use payhost_tests::db::TestDb;
use payhost_tests::fake_stripe::{Chaos, FakeStripe};
use payhost_tests::*;
use serde_json::json;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Sends `n` POSTs on one keep-alive connection, each to a fresh made-up provider name;
/// returns the statuses.
fn flood(addr: &str, worker: usize, n: usize) -> Vec<u16> {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut statuses = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("{}{worker}x{i}", "p".repeat(200));
        let body = "{}";
        // One write per request (several small ones would meet Nagle and delayed ACKs).
        let request = format!(
            "POST /webhooks/payments/{name} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        writer.write_all(request.as_bytes()).unwrap();
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        statuses.push(line.split_whitespace().nth(1).unwrap().parse().unwrap());
        let mut len = 0;
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap();
                }
            }
        }
        let mut skip = vec![0; len];
        reader.read_exact(&mut skip).unwrap();
    }
    statuses
}

#[test]
fn twenty_thousand_made_up_provider_names_leave_metrics_small_and_memory_flat() {
    let s = Scratch::with_host(
        &[(&mock_so(), "mock.so")],
        "default_provider = \"mock\"\n",
        "[providers.mock]\nplugin = \"mock\"\nconfig = { webhook_secret = \"whsec_flood\" }\n",
    );
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    // Warm up: allocator arenas, the runtime's threads, the metrics' own series.
    std::thread::scope(|scope| {
        for w in 0..4 {
            let addr = host.addr.clone();
            scope.spawn(move || flood(&addr, 100 + w, 500));
        }
    });
    let before = rss_kib(host.pid());
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let addr = host.addr.clone();
                scope.spawn(move || flood(&addr, w, 5_000))
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(statuses.len(), 20_000);
    assert!(
        statuses.iter().all(|s| *s == 404),
        "unknown providers are 404"
    );
    let after = rss_kib(host.pid());
    let metrics = api.get("/metrics");
    let text = metrics.body.as_str().unwrap().to_owned();
    eprintln!(
        "RSS {before} KiB -> {after} KiB; /metrics {} bytes",
        text.len()
    );
    assert!(
        after < before + 20 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    assert!(text.len() < 100 * 1024, "/metrics is {} bytes", text.len());
    assert!(!text.contains("pppppppp"), "no made-up name is a label");
    assert!(
        text.contains("route=\"/webhooks/payments/{provider}\",status=\"404\"} 22000"),
        "{text}"
    );
}

fn limited_host(extra: &str) -> (Scratch, HostProcess) {
    let s = Scratch::with_host(
        &[(&mock_so(), "mock.so")],
        &format!("default_provider = \"mock\"\n{extra}"),
        "[providers.mock]\nplugin = \"mock\"\nconfig = { webhook_secret = \"whsec_limits\" }\n",
    );
    let host = s.serve();
    (s, host)
}

#[test]
fn headers_and_bodies_that_never_finish_are_cut_off() {
    let (_s, host) = limited_host("header_read_timeout_ms = 500\nbody_read_timeout_ms = 500\n");
    // Headers that never end: the connection is closed.
    let mut slow = TcpStream::connect(&host.addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "closed after the header deadline, not kept: {:?}",
        started.elapsed()
    );
    // An idle keep-alive connection is closed the same way.
    let mut idle = TcpStream::connect(&host.addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 512];
    assert!(idle.read(&mut first).unwrap() > 0, "the first answer");
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = idle.read_to_end(&mut rest);
    assert!(started.elapsed() < Duration::from_secs(5));

    // A body that never finishes: 408 in the API's error shape.
    let mut trickle = TcpStream::connect(&host.addr).unwrap();
    trickle
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        trickle,
        "POST /v1/customers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"user_id\":"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = trickle.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
}

#[test]
fn connections_beyond_the_limit_wait_their_turn() {
    let (_s, host) = limited_host("max_connections = 4\nheader_read_timeout_ms = 1000\n");
    // Four connections that say nothing hold every slot until their header deadline.
    let idle: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(&host.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let (status, body) = http(&host.addr, "GET", "/healthz", None, None);
    let waited = started.elapsed();
    assert_eq!(status, 200, "{body}");
    assert!(
        waited >= Duration::from_millis(500),
        "the fifth connection was served at once ({waited:?}): no limit"
    );
    drop(idle);
}

#[test]
fn a_client_that_hangs_up_mid_call_still_gets_its_record() {
    let fake = FakeStripe::start();
    let s = Scratch::with_host(
        &[(&stripe_so(), "libpayhost_plugin_stripe.so")],
        "default_provider = \"stripe\"\n",
        &format!(
            "[providers.stripe]\nplugin = \"stripe\"\nallow_hosts = [\"127.0.0.1\"]\n\
             config = {{ api_key = \"{}\", webhook_secret = \"whsec_x\", api_base = \"{}\" }}\n",
            payhost_tests::fake_stripe::API_KEY,
            fake.base
        ),
    );
    let host = s.serve();
    let db = TestDb::sqlite(s.dir.path());
    fake.fake.chaos([Chaos::Slow(Duration::from_millis(1500))]);
    let body = json!({"user_id": "gone", "email": "gone@example.com"}).to_string();
    let mut client = TcpStream::connect(&host.addr).unwrap();
    write!(
        client,
        "POST /v1/customers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\r\n\
         Idempotency-Key: k-hung-up\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // Hung up while Stripe is creating the customer.
    eventually("the request at Stripe", || {
        fake.fake
            .seen()
            .iter()
            .any(|r| r.method == "POST" && r.path == "/v1/customers")
    });
    drop(client);
    eventually("the customer Stripe created is recorded", || {
        db.value(
            "SELECT CAST(COUNT(*) AS TEXT) FROM customers WHERE user_id = 'gone'",
            &[],
        )
        .as_deref()
            == Some("1")
    });
    let api = Api::new(&host.addr, API_KEY);
    // The retry, as a client makes it: told to wait (409, Retry-After) while the first is
    // still finishing, then given its stored answer.
    let mut again = None;
    eventually("the stored answer for the retry", || {
        let r = api.post_idem(
            "/v1/customers",
            "k-hung-up",
            &json!({"user_id": "gone", "email": "gone@example.com"}),
        );
        if r.status == 409 && r.code() == "idempotency_key_in_use" {
            return false;
        }
        again = Some(r);
        true
    });
    let again = again.unwrap();
    assert_eq!(again.status, 201, "{again:?}");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let creates = fake
        .fake
        .seen()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/v1/customers")
        .count();
    assert_eq!(creates, 1, "Stripe was asked once");
}
