//! Traces, over the real binary: an OTLP/HTTP receiver in the test decodes what the host
//! exports (protobuf, as a collector would) and checks the span trees of one payment and
//! one webhook — the caller's `traceparent` continued, the plugin's calls and their HTTP
//! exchanges with the (fake) provider as children with `traceparent` sent on, the
//! database commits, the webhook's processing linked to the payment's creation, the
//! delivery to the application's endpoint carrying its own `traceparent` — and that no
//! secret is in any span. Without `[telemetry]`, nothing is recorded for traces.

use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use payhost_plugin_api::signature;
use payhost_tests::api::Api;
use payhost_tests::db::TestDb;
use payhost_tests::fake_stripe::{FakeStripe, API_KEY as STRIPE_KEY};
use payhost_tests::*;
use prost::Message;
use serde_json::json;
use std::sync::{Arc, Mutex};

const WEBHOOK_SECRET: &str = "whsec_trace_secret";
const APP_SECRET: &str = "whsec_app_0123456789abcdef";
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// One exported span with what the test looks at.
#[derive(Debug, Clone)]
struct Got {
    service: String,
    name: String,
    trace: String,
    id: String,
    parent: String,
    attributes: Vec<(String, String)>,
    links: Vec<(String, String)>,
}

impl Got {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn text(v: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        Some(Any::StringValue(s)) => s.clone(),
        Some(Any::IntValue(i)) => i.to_string(),
        Some(Any::BoolValue(b)) => b.to_string(),
        Some(Any::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn flatten(service: &str, s: &Span) -> Got {
    Got {
        service: service.to_owned(),
        name: s.name.clone(),
        trace: hex::encode(&s.trace_id),
        id: hex::encode(&s.span_id),
        parent: hex::encode(&s.parent_span_id),
        attributes: s
            .attributes
            .iter()
            .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
            .collect(),
        links: s
            .links
            .iter()
            .map(|l| (hex::encode(&l.trace_id), hex::encode(&l.span_id)))
            .collect(),
    }
}

/// A collector's OTLP/HTTP traces endpoint: decodes each export, keeps its spans.
fn collector() -> (std::net::SocketAddr, Arc<Mutex<Vec<Got>>>) {
    let spans: Arc<Mutex<Vec<Got>>> = Arc::default();
    let keep = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: Bytes| {
            let keep = keep.clone();
            async move {
                assert_eq!(
                    headers.get("content-type").and_then(|v| v.to_str().ok()),
                    Some("application/x-protobuf"),
                    "OTLP/HTTP carries protobuf"
                );
                let export = ExportTraceServiceRequest::decode(body).expect("an OTLP export");
                let mut all = keep.lock().unwrap();
                for rs in &export.resource_spans {
                    let service = rs
                        .resource
                        .iter()
                        .flat_map(|r| &r.attributes)
                        .find(|kv| kv.key == "service.name")
                        .map(|kv| text(kv.value.as_ref()))
                        .unwrap_or_default();
                    for ss in &rs.scope_spans {
                        all.extend(ss.spans.iter().map(|s| flatten(&service, s)));
                    }
                }
                (
                    [("content-type", "application/x-protobuf")],
                    ExportTraceServiceResponse::default().encode_to_vec(),
                )
            }
        }),
    );
    (serve_in_background(app), spans)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn config(stripe_base: &str, extra: &str) -> String {
    format!(
        "[providers.stripe]\nplugin = \"stripe\"\nallow_hosts = [\"127.0.0.1\"]\n\
         config = {{ api_key = \"{STRIPE_KEY}\", webhook_secret = \"{WEBHOOK_SECRET}\", api_base = \"{stripe_base}\" }}\n\
         {extra}"
    )
}

#[test]
fn a_payment_and_its_webhook_make_span_trees_at_the_collector() {
    let (collector, spans) = collector();
    let fake = FakeStripe::start();
    let app = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let app_addr = app.local_addr().unwrap();
    let delivered = receiver(app);
    let s = Scratch::with_host(
        &[(&stripe_so(), "stripe.so")],
        "default_provider = \"stripe\"\n",
        &config(
            &fake.base,
            &format!(
                "[[webhook_endpoints]]\nname = \"app\"\nurl = \"http://{app_addr}/hooks\"\nsecret = \"{APP_SECRET}\"\n\
                 [telemetry]\notlp_endpoint = \"http://{collector}\"\nservice_name = \"payhost-test\"\n\
                 trace_url = \"http://traces.example/trace/{{trace_id}}\"\n"
            ),
        ),
    );
    // Batches leave every 100 ms rather than every 5 s (the SDK's standard variable).
    let host = s.serve_with_env(&[("OTEL_BSP_SCHEDULE_DELAY", "100")]);
    let api = Api::new(&host.addr, API_KEY);

    // 1. A payment, in the caller's trace.
    let traceparent = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let body = json!({"user_id": "ada", "email": "ada@example.com", "amount": 1500,
        "currency": "usd", "payment_method": "pm_card_visa"})
    .to_string();
    let paid = api.send(
        "POST",
        "/v1/payments",
        &[
            ("traceparent", &traceparent),
            ("X-Request-Id", "req_traced"),
        ],
        Some(&body),
    );
    assert_eq!(paid.status, 201, "{paid:?}");
    let pay = paid.s("id");
    let pi = paid.s("provider_id");

    let find = |what: &str, pick: &dyn Fn(&Got) -> bool| -> Got {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if let Some(g) = spans.lock().unwrap().iter().find(|g| pick(g)) {
                return g.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no span: {what}; the collector has: {:#?}",
                spans.lock().unwrap()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    let request = find("the payment's request span", &|g| {
        g.name == "POST /v1/payments" && g.attr("request_id") == Some("req_traced")
    });
    assert_eq!(request.service, "payhost-test");
    assert_eq!(request.trace, CALLER_TRACE, "the caller's trace goes on");
    assert_eq!(request.parent, CALLER_SPAN, "under the caller's span");
    assert_eq!(request.attr("payment_id"), Some(pay.as_str()));
    assert_eq!(request.attr("provider"), Some("stripe"));
    assert_eq!(request.attr("http.response.status_code"), Some("201"));

    // The plugin's calls are its children; their HTTP exchanges are theirs.
    let create = find("the create_payment call", &|g| {
        g.name == "stripe create_payment" && g.trace == CALLER_TRACE
    });
    assert_eq!(create.parent, request.id, "{create:?}");
    assert_eq!(create.attr("provider"), Some("stripe"));
    let exchange = find("create_payment's HTTP exchange", &|g| {
        g.name == "POST 127.0.0.1" && g.parent == create.id
    });
    assert_eq!(exchange.attr("url.path"), Some("/v1/payment_intents"));
    assert_eq!(exchange.attr("http.response.status_code"), Some("200"));
    find("create_customer inside the same request", &|g| {
        g.name == "stripe create_customer" && g.parent == request.id
    });
    let commit = find("the payment's commit", &|g| {
        g.name == "db.commit" && g.parent == request.id
    });
    assert_eq!(commit.attr("db.system.name"), Some("sqlite"));

    // The provider got each exchange's own context.
    let sent: Vec<String> = fake
        .fake
        .seen()
        .iter()
        .filter(|r| r.path == "/v1/payment_intents" && r.method == "POST")
        .filter_map(|r| r.traceparent.clone())
        .collect();
    assert_eq!(
        sent,
        vec![format!("00-{CALLER_TRACE}-{}-01", exchange.id)],
        "traceparent on the provider call"
    );

    // 2. Its webhook: received in a trace of its own, processed in a span linked to the
    // request that created the payment.
    let event = json!({"id": "evt_traced", "object": "event", "type": "payment_intent.succeeded",
        "created": now(), "data": {"object": {"id": pi, "object": "payment_intent",
        "amount": 1500, "currency": "usd", "status": "succeeded", "customer": null}}})
    .to_string();
    let header = signature::header(&[WEBHOOK_SECRET], now(), event.as_bytes());
    let r = api.send(
        "POST",
        "/webhooks/payments/stripe",
        &[("Stripe-Signature", &header)],
        Some(&event),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let received = find("the webhook's request span", &|g| {
        g.name == "POST /webhooks/payments/{provider}"
    });
    assert_eq!(received.attr("provider"), Some("stripe"));
    let processed = find("the webhook's processing", &|g| {
        g.name == "webhook payment_intent.succeeded"
    });
    assert_eq!(processed.attr("payment_id"), Some(pay.as_str()));
    assert_eq!(
        processed.links,
        vec![(CALLER_TRACE.to_owned(), request.id.clone())],
        "linked to the span that created the payment"
    );
    let round = find("its inbox round", &|g| g.id == processed.parent);
    assert_eq!(round.name, "inbox.round");
    find(
        "the event mapped by the plugin, under the processing",
        &|g| g.name == "stripe map_webhook" && g.parent == processed.id,
    );
    find("the processing's commit", &|g| {
        g.name == "db.commit" && g.parent == processed.id
    });
    let verify = find("the signature verified inside the request", &|g| {
        g.name == "stripe verify_webhook" && g.parent == received.id
    });
    assert_eq!(verify.trace, received.trace);

    // 3. Deliveries to the application carry their own span's context.
    let deliver = find("a delivery to the application", &|g| {
        g.name == "outbox.deliver" && g.links.iter().any(|(t, _)| t == CALLER_TRACE)
    });
    assert_eq!(deliver.attr("endpoint"), Some("app"));
    eventually("the delivery's traceparent at the endpoint", || {
        delivered.lock().unwrap().iter().any(|(headers, _)| {
            headers.iter().any(|(k, v)| {
                k == "traceparent" && v == &format!("00-{}-{}-01", deliver.trace, deliver.id)
            })
        })
    });

    // 4. The console links the payment to its trace.
    let login = raw_post(&host.addr, "/console/login", &format!("key={ADMIN_KEY}"));
    let cookie = login
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("set-cookie: ")
                .map(|c| c.split(';').next().unwrap().to_owned())
        })
        .unwrap_or_else(|| panic!("no session in {login}"));
    let page = raw_get(&host.addr, &format!("/console/payments/{pay}"), &cookie);
    assert!(
        page.contains(&format!(
            "<a href=\"http://traces.example/trace/{CALLER_TRACE}\"><code>{CALLER_TRACE}</code></a>"
        )),
        "{page}"
    );

    // 5. Ids, names and statuses only: no secret, no body, no query in any span.
    let all = spans.lock().unwrap().clone();
    for g in &all {
        for (k, v) in &g.attributes {
            for secret in [STRIPE_KEY, WEBHOOK_SECRET, APP_SECRET, API_KEY, ADMIN_KEY] {
                assert!(!v.contains(secret), "{k} of {} holds a secret: {v}", g.name);
            }
            assert!(
                !v.contains("pm_card_visa"),
                "{k} of {} holds a request body",
                g.name
            );
        }
    }
}

#[test]
fn without_telemetry_nothing_is_kept_for_traces() {
    let fake = FakeStripe::start();
    let s = Scratch::with_host(
        &[(&stripe_so(), "stripe.so")],
        "default_provider = \"stripe\"\n",
        &config(&fake.base, ""),
    );
    let host = s.serve_with_env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "")]);
    let api = Api::new(&host.addr, API_KEY);
    let traceparent = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let body = json!({"user_id": "bo", "email": "bo@example.com", "amount": 900,
        "currency": "usd", "payment_method": "pm_card_visa"})
    .to_string();
    let paid = api.send(
        "POST",
        "/v1/payments",
        &[("traceparent", &traceparent)],
        Some(&body),
    );
    assert_eq!(paid.status, 201, "{paid:?}");
    let db = TestDb::sqlite(s.dir.path());
    assert_eq!(
        db.value(
            "SELECT trace_parent FROM payments WHERE id = $1",
            &[&paid.s("id")]
        ),
        None
    );
    assert!(
        fake.fake.seen().iter().all(|r| r.traceparent.is_none()),
        "no traceparent is made up when traces are off"
    );
}

fn raw_post(addr: &str, path: &str, form: &str) -> String {
    raw(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ),
    )
}

fn raw_get(addr: &str, path: &str, cookie: &str) -> String {
    raw(
        addr,
        &format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nCookie: {cookie}\r\n\r\n"
        ),
    )
}
