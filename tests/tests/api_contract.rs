//! What API consumers rely on, over real HTTP against the real binary: bad input refused
//! with a clear error and nothing written, the idempotency protocol (replay, 422, 409, the
//! key passed to the provider), request ids in answers and logs, metrics, readiness and an
//! OpenAPI document that matches the routes.

use payhost_tests::api::{Api, Resp};
use payhost_tests::db::TestDb;
use payhost_tests::*;
use serde_json::{json, Value};

const PROVIDERS: &str =
    "[providers.mock]\nplugin = \"mock\"\nconfig = { webhook_secret = \"whsec_test_secret\" }\n\
    [providers.bad]\nplugin = \"misbehaving\"\nconfig = { slow_ms = \"1500\" }\n";

fn scratch() -> Scratch {
    Scratch::with_host(
        &[
            (&mock_so(), "libpayhost_plugin_mock.so"),
            (&misbehaving_so(), "libbad.so"),
        ],
        "default_provider = \"mock\"\nbody_limit_bytes = 4096\n\
         public_url = \"https://pay.example.com/\"\n",
        PROVIDERS,
    )
}

fn expect(r: &Resp, status: u16, code: &str, param: Option<&str>) {
    assert_eq!((r.status, r.code()), (status, code), "{r:?}");
    if let Some(p) = param {
        assert_eq!(r.param(), p, "{r:?}");
    }
    let message = r.body["error"]["message"].as_str().unwrap_or("");
    assert!(!message.is_empty(), "an error says what was wrong: {r:?}");
    for internal in ["SELECT", "INSERT", "sqlx", "panicked", "whsec_"] {
        assert!(!message.contains(internal), "internals leaked: {r:?}");
    }
}

fn count(db: &TestDb, table: &str) -> String {
    let sql = match table {
        "payments" => "SELECT CAST(COUNT(*) AS TEXT) FROM payments",
        "refunds" => "SELECT CAST(COUNT(*) AS TEXT) FROM refunds",
        "subscriptions" => "SELECT CAST(COUNT(*) AS TEXT) FROM subscriptions",
        "events" => "SELECT CAST(COUNT(*) AS TEXT) FROM events",
        "customers" => "SELECT CAST(COUNT(*) AS TEXT) FROM customers",
        other => panic!("no count for {other}"),
    };
    db.value(sql, &[]).unwrap()
}

#[test]
fn bad_input_gets_a_clear_error_and_writes_nothing() {
    let s = scratch();
    let host = s.serve();
    let db = TestDb::sqlite(s.dir.path());
    let api = Api::new(&host.addr, API_KEY);

    let stranger = Api::new(&host.addr, "not_a_key_at_all");
    expect(&stranger.get("/v1/events"), 401, "unauthorized", None);

    let c = api.post(
        "/v1/customers",
        &json!({"user_id": "u1", "email": "u1@example.com"}),
    );
    assert_eq!(c.status, 201, "{c:?}");
    let cust = c.s("id");

    let pay = |body: Value| api.post("/v1/payments", &body);
    let raw = |body: &str| api.send("POST", "/v1/payments", &[], Some(body));
    expect(&raw("{\"amount\": 5"), 400, "invalid_request", None);
    expect(&raw("[1, 2]"), 400, "invalid_request", None);
    expect(
        &pay(json!({"customer": cust, "currency": "usd"})),
        400,
        "invalid_request",
        Some("amount"),
    );
    expect(
        &pay(json!({"customer": cust, "amount": "ten", "currency": "usd"})),
        400,
        "invalid_request",
        Some("amount"),
    );
    expect(
        &pay(json!({"customer": cust, "amount": 5, "currency": "usd", "colour": "red"})),
        400,
        "invalid_request",
        Some("colour"),
    );
    expect(
        &pay(json!({"customer": cust, "amount": 500, "currency": "usx"})),
        400,
        "invalid_request",
        Some("currency"),
    );
    expect(
        &pay(json!({"customer": cust, "amount": 0, "currency": "usd"})),
        400,
        "invalid_request",
        Some("amount"),
    );
    expect(
        &pay(json!({"customer": cust, "amount": -10, "currency": "usd"})),
        400,
        "invalid_request",
        Some("amount"),
    );
    expect(
        &pay(json!({"customer": "cust_nope", "amount": 10, "currency": "usd"})),
        404,
        "not_found",
        Some("customer"),
    );
    expect(
        &pay(json!({"amount": 10, "currency": "usd"})),
        400,
        "invalid_request",
        Some("customer"),
    );
    expect(
        &pay(
            json!({"user_id": "u2", "email": "u2@example.com", "provider": "paypal", "amount": 10, "currency": "usd"}),
        ),
        400,
        "invalid_request",
        Some("provider"),
    );
    // A user payhost has never seen, without the email a new customer needs.
    expect(
        &pay(json!({"user_id": "u3", "amount": 10, "currency": "usd"})),
        404,
        "not_found",
        Some("user_id"),
    );
    expect(
        &pay(json!({"customer": cust, "user_id": "u1", "amount": 10, "currency": "usd"})),
        400,
        "invalid_request",
        Some("user_id"),
    );
    let big = format!(
        "{{\"customer\": \"{cust}\", \"description\": \"{}\"}}",
        "x".repeat(5000)
    );
    expect(&raw(&big), 413, "body_too_large", None);

    // An operation the provider does not declare.
    let calm = api.post(
        "/v1/customers",
        &json!({"user_id": "u4", "email": "u4@calm.example", "provider": "bad"}),
    );
    assert_eq!(calm.status, 201, "{calm:?}");
    expect(
        &api.post(
            "/v1/subscriptions",
            &json!({"customer": calm.s("id"), "price": "price_basic"}),
        ),
        400,
        "unsupported_operation",
        None,
    );
    // A provider that panics: a 502 that does not repeat the panic.
    expect(
        &api.post(
            "/v1/customers",
            &json!({"user_id": "u5", "email": "u5@example.com", "provider": "bad"}),
        ),
        502,
        "provider_error",
        None,
    );

    // Unknown ids, everywhere.
    expect(
        &api.get("/v1/payments/pay_nope"),
        404,
        "not_found",
        Some("id"),
    );
    expect(
        &api.get("/v1/customers/cust_nope"),
        404,
        "not_found",
        Some("id"),
    );
    expect(
        &api.get("/v1/subscriptions/subs_nope"),
        404,
        "not_found",
        Some("id"),
    );
    expect(
        &api.get("/v1/invoices/inv_nope"),
        404,
        "not_found",
        Some("id"),
    );
    expect(
        &api.get("/v1/refunds/rfnd_nope"),
        404,
        "not_found",
        Some("id"),
    );
    expect(
        &api.post("/v1/payments/pay_nope/confirm", &json!({})),
        404,
        "not_found",
        Some("id"),
    );
    expect(
        &api.post("/v1/refunds", &json!({"payment": "pay_nope"})),
        404,
        "not_found",
        Some("payment"),
    );
    expect(
        &api.get("/v1/events?starting_after=evt_nope"),
        404,
        "not_found",
        Some("starting_after"),
    );
    expect(
        &api.get("/v1/events?type=Nonsense"),
        400,
        "invalid_request",
        Some("type"),
    );
    expect(
        &api.get("/v1/customers/cust_x/invoices?limit=lots"),
        400,
        "invalid_request",
        None,
    );
    expect(&api.get("/v1/nothing/here"), 404, "not_found", None);

    // A refund of a payment that has not succeeded (its state: 409), and refund amounts
    // out of range (malformed: 400; above what remains: 409).
    let open = pay(json!({"customer": cust, "amount": 700, "currency": "usd"}));
    assert_eq!(open.status, 201, "{open:?}");
    let open_id = open.s("id");
    expect(
        &api.post("/v1/refunds", &json!({"payment": open_id})),
        409,
        "invalid_state",
        Some("payment"),
    );
    let paid = pay(
        json!({"customer": cust, "amount": 700, "currency": "usd", "payment_method": "pm_card_visa"}),
    );
    assert_eq!(paid.s("status"), "succeeded");
    let paid_id = paid.s("id");
    expect(
        &api.post("/v1/refunds", &json!({"payment": paid_id, "amount": 0})),
        400,
        "invalid_request",
        Some("amount"),
    );
    expect(
        &api.post("/v1/refunds", &json!({"payment": paid_id, "amount": 701})),
        409,
        "invalid_state",
        Some("amount"),
    );
    expect(
        &api.post(
            "/v1/refunds",
            &json!({"payment": paid_id, "reason": "bored"}),
        ),
        400,
        "invalid_request",
        Some("reason"),
    );
    // Canceling a payment that already succeeded: its state, not a 500.
    let again = api.post(&format!("/v1/payments/{paid_id}/cancel"), &json!({}));
    expect(&again, 409, "invalid_state", None);

    assert_eq!(
        count(&db, "payments"),
        "2",
        "only the two valid payments were written"
    );
    assert_eq!(count(&db, "refunds"), "0");
    assert_eq!(count(&db, "subscriptions"), "0");
    assert_eq!(count(&db, "customers"), "2");
    let events: Vec<String> = db
        .rows("SELECT type FROM events ORDER BY seq", &[])
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect();
    assert_eq!(
        events,
        ["PaymentCreated", "PaymentCreated", "PaymentSucceeded"]
    );
}

#[test]
fn idempotency_replays_refuses_and_passes_the_key_on() {
    let s = scratch();
    let host = s.serve();
    let db = TestDb::sqlite(s.dir.path());
    let api = Api::new(&host.addr, API_KEY);
    let c = api.post(
        "/v1/customers",
        &json!({"user_id": "slow", "email": "slow@calm.example", "provider": "bad"}),
    );
    assert_eq!(c.status, 201, "{c:?}");
    let body = json!({"customer": c.s("id"), "amount": 1500, "currency": "usd"});

    // Two requests with one key at the same moment: one runs, the other is told to wait.
    // (Sent together, the provider taking 1.5 s: whichever claims the key runs.)
    let start = std::sync::Barrier::new(2);
    let (one, two) = std::thread::scope(|scope| {
        let send = || {
            start.wait();
            api.post_idem("/v1/payments", "order-77", &body)
        };
        let one = scope.spawn(send);
        let two = scope.spawn(send);
        (one.join().unwrap(), two.join().unwrap())
    });
    let (a, b) = if one.status == 201 {
        (one, two)
    } else {
        (two, one)
    };
    assert_eq!(a.status, 201, "one of the two runs: {a:?}");
    expect(&b, 409, "idempotency_key_in_use", None);
    assert_eq!(
        a.body["metadata"]["seen_idempotency_key"], "order-77",
        "the key reaches the provider"
    );
    assert_eq!(
        a.body["metadata"]["seen_request_id"].as_str(),
        a.header("x-request-id"),
        "the request id reaches the provider"
    );
    // Contract 2.2: the instance's name, and its webhook URL from host.public_url.
    assert_eq!(a.body["metadata"]["seen_instance"], "bad");
    assert_eq!(
        a.body["metadata"]["seen_webhook_url"],
        "https://pay.example.com/webhooks/payments/bad"
    );

    let replay = api.post_idem("/v1/payments", "order-77", &body);
    assert_eq!(replay.status, 201);
    assert_eq!(replay.body, a.body, "the stored answer, byte for byte");
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    let reused = api.post_idem(
        "/v1/payments",
        "order-77",
        &json!({"customer": c.s("id"), "amount": 1501, "currency": "usd"}),
    );
    expect(
        &reused,
        422,
        "idempotency_key_reused",
        Some("Idempotency-Key"),
    );
    let elsewhere = api.post_idem(
        "/v1/customers",
        "order-77",
        &json!({"user_id": "z", "email": "z@calm.example"}),
    );
    expect(&elsewhere, 422, "idempotency_key_reused", None);

    assert_eq!(count(&db, "payments"), "1");
    let metrics = api.get("/metrics");
    let text = metrics.body.as_str().unwrap_or_default().to_owned();
    assert!(
        text.contains(
            "payhost_provider_calls_total{provider=\"bad\",operation=\"create_payment\"} 1\n"
        ),
        "the provider was called once: {text}"
    );
}

#[test]
fn request_ids_metrics_readiness_and_openapi() {
    let s = scratch();
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);

    let mine = api.send(
        "GET",
        "/v1/events",
        &[("X-Request-Id", "trace-abc-123")],
        None,
    );
    assert_eq!(mine.header("x-request-id"), Some("trace-abc-123"));
    let generated = api.get("/v1/providers");
    let id = generated.header("x-request-id").unwrap().to_owned();
    assert!(id.starts_with("req_"), "{id}");
    let p = api.post(
        "/v1/payments",
        &json!({"user_id": "m", "email": "m@example.com", "amount": 100, "currency": "usd"}),
    );
    assert_eq!(p.status, 201, "{p:?}");
    let failed = api.get("/v1/payments/pay_missing");
    assert_eq!(failed.status, 404);

    let ready = api.get("/readyz");
    assert_eq!(ready.status, 200, "{ready:?}");
    assert_eq!(ready.body["database"], "ok");

    let metrics = api.get("/metrics");
    assert_eq!(metrics.status, 200);
    let text = metrics.body.as_str().unwrap().to_owned();
    for line in [
        "payhost_http_requests_total{method=\"POST\",route=\"/v1/payments\",status=\"201\"} 1",
        "payhost_http_requests_total{method=\"GET\",route=\"/v1/payments/{id}\",status=\"404\"} 1",
        "payhost_provider_calls_total{provider=\"mock\",operation=\"create_payment\"} 1",
        "payhost_provider_calls_total{provider=\"mock\",operation=\"create_customer\"} 1",
        "payhost_provider_instances_running 2",
    ] {
        assert!(text.contains(line), "missing '{line}' in:\n{text}");
    }
    assert!(text.contains("payhost_http_request_duration_seconds_bucket{le=\"+Inf\",method=\"POST\",route=\"/v1/payments\"} 1"));
    // What the database was asked: the payment's unit was written in a transaction, and
    // reads were made (its customer, the 404's lookup). Counted, never guessed.
    let counter = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
    };
    let (reads, statements, transactions, units) = (
        counter("payhost_db_reads_total"),
        counter("payhost_db_write_statements_total"),
        counter("payhost_db_transactions_total"),
        counter("payhost_db_write_units_total"),
    );
    assert!(
        reads >= 2 && transactions >= 1,
        "{reads} reads, {transactions} transactions"
    );
    assert!(
        units >= transactions && statements >= units,
        "{statements} statements, {units} units"
    );
    let again = api.post(
        "/v1/payments",
        &json!({"user_id": "m", "email": "m@example.com", "amount": 100, "currency": "usd"}),
    );
    assert_eq!(again.status, 201, "{again:?}");
    let later = api.get("/metrics").body.as_str().unwrap().to_owned();
    let after = |name: &str| -> u64 {
        later
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap()
    };
    assert!(
        after("payhost_db_write_units_total") > units,
        "a payment writes a unit"
    );
    assert!(after("payhost_db_write_statements_total") > statements);

    // Every documented operation is routed (not the 404 fallback, not 405).
    let doc = api.get("/openapi.json");
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["openapi"], "3.1.0");
    let paths = doc.body["paths"].as_object().unwrap();
    assert!(paths.len() >= 24, "{}", paths.len());
    // Every reference resolves (a generator or schemathesis skips what does not).
    fn refs<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(|r| r.as_str()) {
                    out.push(r);
                }
                m.values().for_each(|v| refs(v, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc.body, &mut all);
    assert!(all.len() > 50, "{}", all.len());
    for r in all {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("a remote $ref: {r}"));
        assert!(doc.body.pointer(pointer).is_some(), "unresolvable $ref {r}");
    }
    // What client generators refuse or drop (tests/clients/run runs two of them): an enum
    // with a value twice in two cases (duplicate members), and an allOf over something
    // that is not an object (the schema, and every one using it, dropped).
    let schemas = doc.body["components"]["schemas"].as_object().unwrap();
    let resolve = |v: &Value| -> Value {
        v["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix('#'))
            .and_then(|p| doc.body.pointer(p))
            .cloned()
            .unwrap_or_else(|| v.clone())
    };
    for (name, schema) in schemas {
        if let Some(values) = schema["enum"].as_array() {
            let mut seen = std::collections::BTreeSet::new();
            for v in values.iter().filter_map(Value::as_str) {
                assert!(
                    seen.insert(v.to_lowercase()),
                    "{name}: '{v}' listed twice in two cases"
                );
            }
        }
        // (A member inline is a constraint on the object — Checkout's "a price, or an
        // amount and a currency" — which the generators read; a named one must be an object.)
        for member in schema["allOf"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m.get("$ref").is_some())
        {
            let m = resolve(member);
            assert!(
                m["type"] == "object" || m.get("properties").is_some(),
                "{name}: allOf over a non-object {member}"
            );
        }
    }
    // A tenant named as a parameter is one of the configured ones (the host refuses
    // others), or the parameter is not offered at all.
    for (path, ops) in paths {
        for op in ops.as_object().unwrap().values() {
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["name"] == "tenant" || p["name"] == "X-Tenant-Id" {
                    let tenants = p["schema"]["enum"].as_array();
                    assert!(
                        tenants.is_some_and(|t| !t.is_empty()),
                        "{path}: {p} takes any text the host refuses"
                    );
                }
            }
        }
    }
    let admin = Api::new(&host.addr, ADMIN_KEY);
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let concrete = path.replace("{id}", "x_unknown");
            let client = if path.starts_with("/admin") {
                &admin
            } else {
                &api
            };
            let body = (method == "post").then_some("{}");
            let r = client.send(&method.to_uppercase(), &concrete, &[], body);
            assert_ne!(r.status, 405, "{method} {path}: {r:?}");
            let fallback = r.status == 404
                && r.body["error"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("(route)");
            assert!(!fallback, "{method} {path} is documented but not routed");
        }
    }

    let (code, log) = host.terminate();
    assert_eq!(code, 0);
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("trace-abc-123"))
        .collect();
    assert!(
        !lines.is_empty(),
        "the request's log lines carry its id:\n{log}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("request served") && l.contains("status=200")),
        "{lines:?}"
    );
    assert!(
        !log.contains("whsec_test_secret"),
        "a secret reached the log"
    );
}

#[test]
fn a_provider_id_that_repeats_is_refused_and_nothing_is_written() {
    let s = scratch();
    let db = TestDb::sqlite(s.dir.path());
    let first = {
        let host = s.serve();
        let api = Api::new(&host.addr, API_KEY);
        let c = api.post(
            "/v1/customers",
            &json!({"user_id": "u1", "email": "ada@calm.example", "provider": "bad"}),
        );
        assert_eq!(c.status, 201, "{c:?}");
        host.terminate();
        c
    };
    assert_eq!(first.s("provider_id"), "bad_cus_1");
    // The misbehaving plugin counts from 1 again after a restart: its next customer id is
    // one payhost already holds.
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    let again = api.post(
        "/v1/customers",
        &json!({"user_id": "u2", "email": "grace@calm.example", "provider": "bad"}),
    );
    expect(&again, 502, "provider_id_conflict", None);
    let message = again.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("bad_cus_1") && message.contains(&first.s("id")),
        "{message}"
    );
    assert_eq!(count(&db, "customers"), "1", "nothing was written");
    assert_eq!(
        db.value("SELECT email FROM customers WHERE user_id = $1", &["u1"])
            .as_deref(),
        Some("ada@calm.example"),
        "the first customer's record is untouched"
    );
}
