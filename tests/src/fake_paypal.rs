//! A fake PayPal for the tests: a small axum server that behaves like PayPal's REST APIs
//! where payhost depends on them.
//!
//! - OAuth 2.0 client credentials (HTTP Basic; tokens that expire after `token_life`; a 401
//!   `invalid_token` for an expired or unknown one, and every token can be expired on
//!   command); JSON bodies only.
//! - Orders v2 with the buyer's approval step (`GET /checkoutnow?token=<order>` is the
//!   buyer's browser; `&funding=declined` picks a funding source that will be declined),
//!   capture and authorize of approved orders only, authorizations captured (in part, up to
//!   115% as PayPal allows) and voided, refunds against captures never above what remains.
//! - Billing Subscriptions v1 on plans `P-BASIC`, `P-PRO` and `P-TRIAL` (a 7-day trial
//!   cycle), with the approval step, revise, suspend, activate and cancel.
//! - Amounts are decimal strings with each currency's digits at PayPal: a number is a 400
//!   `INVALID_PARAMETER_SYNTAX`, wrong digits a 422 `DECIMAL_PRECISION`.
//! - `PayPal-Request-Id` replays the first answer to the same request.
//! - Errors in PayPal's shape (`name`, `message`, `debug_id`, `details[].issue`); on command
//!   429, 5xx or a slow answer.
//! - Webhooks signed as PayPal signs them (RSA-SHA256 over
//!   `transmission_id|time|webhook_id|crc32`) with a test CA's certificate served by the
//!   fake itself, plus an expired certificate and one from a CA nobody trusts, and PayPal's
//!   verify-webhook-signature API.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const CLIENT_ID: &str = "fake-paypal-client";
pub const CLIENT_SECRET: &str = "fake-paypal-secret";
pub const WEBHOOK_ID: &str = "WH-FAKE-0001";

/// What the next request(s) get instead of a normal answer.
#[derive(Debug, Clone)]
pub enum Chaos {
    /// A status with PayPal's error body.
    Status(u16),
    /// The normal answer, after a pause.
    Slow(Duration),
}

/// Which certificate signs a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// The test CA's current certificate.
    Valid,
    /// A certificate of the test CA that expired in 2021.
    Expired,
    /// A certificate from a CA the host does not trust.
    Rogue,
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub request_id: Option<String>,
    pub authorization: Option<String>,
    pub body: Value,
}

struct Keys {
    leaf: ring::signature::RsaKeyPair,
    rogue: ring::signature::RsaKeyPair,
    /// PEM chains by file name under `/certs/`.
    chains: BTreeMap<&'static str, String>,
    root_pem: String,
}

struct Inner {
    base: String,
    seq: u64,
    token_life: Duration,
    tokens: BTreeMap<String, Instant>,
    token_requests: u32,
    orders: BTreeMap<String, Value>,
    /// Orders whose buyer picked a funding source that is declined.
    declining: Vec<String>,
    authorizations: BTreeMap<String, String>,
    captures: BTreeMap<String, String>,
    subscriptions: BTreeMap<String, Value>,
    replays: BTreeMap<String, (String, u16, Value)>,
    chaos: VecDeque<Chaos>,
    seen: Vec<Seen>,
}

#[derive(Clone)]
pub struct FakePaypal {
    inner: Arc<Mutex<Inner>>,
    keys: Arc<Keys>,
}

/// A running fake; stops with the test process.
pub struct Running {
    pub base: String,
    pub fake: FakePaypal,
    /// The test CA's root, as a PEM file for the plugin's `trusted_roots`.
    pub roots_file: PathBuf,
    _dir: tempfile::TempDir,
}

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/paypal")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn rsa(pem: &str) -> ring::signature::RsaKeyPair {
    let der = pem::parse(pem).unwrap();
    ring::signature::RsaKeyPair::from_pkcs8(der.contents()).unwrap()
}

fn ca(name: &str, key: &KeyPair) -> rcgen::Certificate {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2099, 1, 1);
    p.self_signed(key).unwrap()
}

fn leaf(
    key: &KeyPair,
    issuer: &rcgen::Certificate,
    issuer_key: &KeyPair,
    years: (i32, i32),
) -> rcgen::Certificate {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(DnType::CommonName, "messageverificationcerts.paypal.test");
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.not_before = rcgen::date_time_ymd(years.0, 1, 1);
    p.not_after = rcgen::date_time_ymd(years.1, 1, 1);
    p.signed_by(key, issuer, issuer_key).unwrap()
}

impl Keys {
    fn new() -> Self {
        let (root_pem, leaf_pem, rogue_pem) = (
            fixture("root.key.pem"),
            fixture("leaf.key.pem"),
            fixture("rogue.key.pem"),
        );
        let root_key = KeyPair::from_pem(&root_pem).unwrap();
        let leaf_key = KeyPair::from_pem(&leaf_pem).unwrap();
        let rogue_key = KeyPair::from_pem(&rogue_pem).unwrap();
        let root = ca("payhost test PayPal root", &root_key);
        let rogue_root = ca("nobody trusts this root", &rogue_key);
        let valid = leaf(&leaf_key, &root, &root_key, (2025, 2099));
        let expired = leaf(&leaf_key, &root, &root_key, (2020, 2021));
        let rogue = leaf(&rogue_key, &rogue_root, &rogue_key, (2025, 2099));
        Self {
            leaf: rsa(&leaf_pem),
            rogue: rsa(&rogue_pem),
            chains: BTreeMap::from([
                ("valid.pem", valid.pem()),
                ("expired.pem", expired.pem()),
                ("rogue.pem", format!("{}{}", rogue.pem(), rogue_root.pem())),
            ]),
            root_pem: root.pem(),
        }
    }
}

type Answer = (u16, Value);

fn now_secs() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

pub fn rfc3339(secs: i64) -> String {
    payhost_plugin_paypal::wire::to_rfc3339(secs)
}

fn error(status: u16, name: &str, issue: &str, description: &str, field: Option<&str>) -> Answer {
    let mut detail = json!({"issue": issue, "description": description});
    if let Some(f) = field {
        detail["field"] = json!(f);
        detail["location"] = json!("body");
    }
    (
        status,
        json!({
            "name": name,
            "message": if status == 422 {
                "The requested action could not be performed, semantically incorrect, or failed business validation."
            } else {
                "Request is not well-formed, syntactically incorrect, or violates schema."
            },
            "debug_id": format!("fake{}", now_secs() % 100_000),
            "details": [detail],
        }),
    )
}

fn unprocessable(issue: &str, description: &str) -> Answer {
    error(422, "UNPROCESSABLE_ENTITY", issue, description, None)
}

fn not_found(what: &str, id: &str) -> Answer {
    error(
        404,
        "RESOURCE_NOT_FOUND",
        "INVALID_RESOURCE_ID",
        &format!("Specified resource ID does not exist: {what} {id}"),
        None,
    )
}

/// PayPal's digits per currency (HUF, JPY and TWD without decimals).
fn paypal_digits(code: &str) -> Option<usize> {
    Some(match code {
        "JPY" | "HUF" | "TWD" => 0,
        "BHD" | "KWD" | "OMR" | "JOD" | "TND" => 3,
        "USD" | "EUR" | "GBP" | "CAD" | "AUD" | "CHF" | "SEK" | "NOK" | "DKK" | "PLN" | "CZK"
        | "NZD" | "SGD" | "HKD" | "MXN" | "BRL" | "ILS" | "PHP" | "THB" => 2,
        _ => return None,
    })
}

/// An amount in thousandths of a unit, or PayPal's refusal.
fn parse_amount(v: &Value, field: &str) -> Result<(String, i64), Answer> {
    let code = v["currency_code"].as_str().unwrap_or_default().to_owned();
    let Some(digits) = paypal_digits(&code) else {
        return Err(unprocessable(
            "CURRENCY_NOT_SUPPORTED",
            &format!("Currency code {code} is not supported."),
        ));
    };
    let Some(value) = v["value"].as_str() else {
        return Err(error(
            400,
            "INVALID_REQUEST",
            "INVALID_PARAMETER_SYNTAX",
            "The value of a field does not conform to the expected format: amounts are strings.",
            Some(&format!("{field}/value")),
        ));
    };
    let (whole, frac) = value.split_once('.').unwrap_or((value, ""));
    let ok_syntax = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && !(value.contains('.') && frac.is_empty());
    if !ok_syntax {
        return Err(error(
            400,
            "INVALID_REQUEST",
            "INVALID_PARAMETER_SYNTAX",
            "The value of a field does not conform to the expected format.",
            Some(&format!("{field}/value")),
        ));
    }
    if frac.len() > digits {
        return Err(error(
            422,
            "UNPROCESSABLE_ENTITY",
            "DECIMAL_PRECISION",
            &format!("If the currency supports decimals, only two decimal place precision is supported ({code} has {digits})."),
            Some(&format!("{field}/value")),
        ));
    }
    let thousandths =
        whole.parse::<i64>().unwrap() * 1000 + format!("{frac:0<3}").parse::<i64>().unwrap_or(0);
    Ok((code, thousandths))
}

fn format_amount(code: &str, thousandths: i64) -> Value {
    let digits = paypal_digits(code).unwrap_or(2);
    let value = if digits == 0 {
        (thousandths / 1000).to_string()
    } else {
        let frac = format!("{:03}", thousandths % 1000);
        format!("{}.{}", thousandths / 1000, &frac[..digits])
    };
    json!({"currency_code": code, "value": value})
}

fn amount_of(v: &Value) -> i64 {
    parse_amount(v, "amount").map(|(_, t)| t).unwrap_or(0)
}

fn plan(id: &str) -> Option<(&'static str, bool)> {
    Some(match id {
        "P-BASIC" => ("9.99", false),
        "P-PRO" => ("29.99", false),
        "P-TRIAL" => ("9.99", true),
        _ => return None,
    })
}

impl FakePaypal {
    /// Starts the fake on a free port, on a runtime of its own.
    pub fn start() -> Running {
        let keys = Arc::new(Keys::new());
        let fake = FakePaypal {
            inner: Arc::new(Mutex::new(Inner {
                base: String::new(),
                seq: 0,
                token_life: Duration::from_secs(32_400),
                tokens: BTreeMap::new(),
                token_requests: 0,
                orders: BTreeMap::new(),
                declining: Vec::new(),
                authorizations: BTreeMap::new(),
                captures: BTreeMap::new(),
                subscriptions: BTreeMap::new(),
                replays: BTreeMap::new(),
                chaos: VecDeque::new(),
                seen: Vec::new(),
            })),
            keys,
        };
        let app = Router::new().fallback(handle).with_state(fake.clone());
        let addr = crate::serve_in_background(app);
        let base = format!("http://{addr}");
        fake.inner.lock().unwrap().base = base.clone();
        let dir = tempfile::tempdir().unwrap();
        let roots_file = dir.path().join("paypal-test-root.pem");
        std::fs::write(&roots_file, &fake.keys.root_pem).unwrap();
        Running {
            base,
            fake,
            roots_file,
            _dir: dir,
        }
    }

    /// The next requests get these answers instead, in order.
    pub fn chaos(&self, plan: impl IntoIterator<Item = Chaos>) {
        self.inner.lock().unwrap().chaos.extend(plan);
    }

    /// Tokens issued from now on live this long.
    pub fn token_life(&self, life: Duration) {
        self.inner.lock().unwrap().token_life = life;
    }

    /// Every token issued so far stops working now.
    pub fn expire_tokens(&self) {
        self.inner.lock().unwrap().tokens.clear();
    }

    /// Tokens issued so far.
    pub fn token_requests(&self) -> u32 {
        self.inner.lock().unwrap().token_requests
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }

    pub fn order(&self, id: &str) -> Option<Value> {
        self.inner.lock().unwrap().orders.get(id).cloned()
    }

    pub fn subscription(&self, id: &str) -> Option<Value> {
        self.inner.lock().unwrap().subscriptions.get(id).cloned()
    }

    /// The URL of a certificate chain the fake serves.
    pub fn cert_url(&self, signer: Signer) -> String {
        let name = match signer {
            Signer::Valid => "valid.pem",
            Signer::Expired => "expired.pem",
            Signer::Rogue => "rogue.pem",
        };
        format!(
            "{}/v1/notifications/certs/{name}",
            self.inner.lock().unwrap().base
        )
    }

    /// The headers PayPal would send with `body` for `webhook_id`, signed by `signer`.
    pub fn sign(&self, body: &[u8], webhook_id: &str, signer: Signer) -> Vec<(String, String)> {
        let id = {
            let mut i = self.inner.lock().unwrap();
            i.seq += 1;
            format!("fake-transmission-{}-{}", i.seq, now_secs())
        };
        let time = rfc3339(now_secs());
        let message = format!("{id}|{time}|{webhook_id}|{}", crc32fast::hash(body));
        let key = if signer == Signer::Rogue {
            &self.keys.rogue
        } else {
            &self.keys.leaf
        };
        let mut sig = vec![0; key.public().modulus_len()];
        key.sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            message.as_bytes(),
            &mut sig,
        )
        .unwrap();
        vec![
            ("PAYPAL-TRANSMISSION-ID".into(), id),
            ("PAYPAL-TRANSMISSION-TIME".into(), time),
            (
                "PAYPAL-TRANSMISSION-SIG".into(),
                base64::engine::general_purpose::STANDARD.encode(sig),
            ),
            ("PAYPAL-CERT-URL".into(), self.cert_url(signer)),
            ("PAYPAL-AUTH-ALGO".into(), "SHA256withRSA".into()),
        ]
    }

    /// A webhook event as PayPal sends it, about `resource`.
    pub fn event(&self, event_type: &str, resource_type: &str, resource: Value) -> Value {
        let seq = {
            let mut i = self.inner.lock().unwrap();
            i.seq += 1;
            i.seq
        };
        json!({
            "id": format!("WH-FAKE{seq:06}-{}", now_secs()),
            "event_version": "1.0",
            "create_time": rfc3339(now_secs()),
            "resource_type": resource_type,
            "event_type": event_type,
            "summary": format!("{event_type} (fake)"),
            "resource": resource,
        })
    }

    /// The capture object behind an order (for PAYMENT.CAPTURE.* events).
    pub fn capture_of(&self, order_id: &str) -> Value {
        let o = self.order(order_id).expect("order");
        let c = o["purchase_units"][0]["payments"]["captures"][0].clone();
        assert!(c.is_object(), "order {order_id} has no capture");
        c
    }
}

async fn handle(
    State(fake): State<FakePaypal>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let path = uri.path().to_owned();
    // The buyer's browser and the certificates: no API credentials.
    if method == Method::GET {
        if let Some(name) = path.strip_prefix("/v1/notifications/certs/") {
            return match fake.keys.chains.get(name) {
                Some(pem) => (StatusCode::OK, pem.clone()).into_response(),
                None => StatusCode::NOT_FOUND.into_response(),
            };
        }
        if path == "/checkoutnow" || path == "/webapps/billing/subscriptions" {
            let q = payhost_plugin_kit::Form::decode(uri.query().unwrap_or_default())
                .unwrap_or_default();
            let mut i = fake.inner.lock().unwrap();
            let (status, text) = buyer_approves(&mut i, &path, &q);
            return (StatusCode::from_u16(status).unwrap(), text).into_response();
        }
    }
    let parsed: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    };
    let chaos = {
        let mut i = fake.inner.lock().unwrap();
        i.seen.push(Seen {
            method: method.to_string(),
            path: path.clone(),
            request_id: header("paypal-request-id"),
            authorization: header("authorization"),
            body: parsed.clone(),
        });
        if path == "/v1/oauth2/token" {
            None
        } else {
            i.chaos.pop_front()
        }
    };
    match chaos {
        Some(Chaos::Slow(d)) => tokio::time::sleep(d).await,
        Some(Chaos::Status(429)) => {
            let (s, v) = error(
                429,
                "RATE_LIMIT_REACHED",
                "RATE_LIMIT_REACHED",
                "Too many requests. Blocked due to rate limiting.",
                None,
            );
            return (StatusCode::from_u16(s).unwrap(), axum::Json(v)).into_response();
        }
        Some(Chaos::Status(s)) => {
            let v = json!({"name": "INTERNAL_SERVER_ERROR", "message": "An internal server error occurred.", "debug_id": "fake-5xx"});
            return (StatusCode::from_u16(s).unwrap(), axum::Json(v)).into_response();
        }
        None => {}
    }
    let (status, value) = answer(&fake, &method, &path, &headers, &body, parsed);
    if status == 204 {
        return StatusCode::NO_CONTENT.into_response();
    }
    (StatusCode::from_u16(status).unwrap(), axum::Json(value)).into_response()
}

fn answer(
    fake: &FakePaypal,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    raw: &[u8],
    body: Value,
) -> Answer {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let mut i = fake.inner.lock().unwrap();
    if path == "/v1/oauth2/token" {
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
        if *method != Method::POST || header("authorization") != format!("Basic {basic}") {
            return (
                401,
                json!({"error": "invalid_client", "error_description": "Client Authentication failed"}),
            );
        }
        if String::from_utf8_lossy(raw) != "grant_type=client_credentials" {
            return (
                400,
                json!({"error": "unsupported_grant_type", "error_description": "Grant Type is NULL"}),
            );
        }
        i.seq += 1;
        i.token_requests += 1;
        let token = format!("A21AAfake{}", i.seq);
        let life = i.token_life;
        i.tokens.insert(token.clone(), Instant::now() + life);
        return (
            200,
            json!({"scope": "https://uri.paypal.com/services/payments/payment", "access_token": token,
                   "token_type": "Bearer", "app_id": "APP-FAKE", "expires_in": life.as_secs(), "nonce": "fake"}),
        );
    }
    let bearer = header("authorization")
        .strip_prefix("Bearer ")
        .unwrap_or_default()
        .to_owned();
    match i.tokens.get(&bearer) {
        Some(until) if Instant::now() < *until => {}
        _ => {
            return (
                401,
                json!({"error": "invalid_token", "error_description": "Access Token Expired"}),
            );
        }
    }
    if *method == Method::POST && !raw.is_empty() {
        if !header("content-type").contains("json") {
            return error(
                415,
                "UNSUPPORTED_MEDIA_TYPE",
                "UNSUPPORTED_MEDIA_TYPE",
                "The request payload is not supported.",
                None,
            );
        }
        if body.is_null() {
            return error(
                400,
                "INVALID_REQUEST",
                "MALFORMED_REQUEST_JSON",
                "The request JSON is not well formed.",
                None,
            );
        }
    }
    let request_id = header("paypal-request-id").to_owned();
    if *method == Method::POST && !request_id.is_empty() {
        let key = format!("{path}#{request_id}");
        if let Some((_, status, value)) = i.replays.get(&key) {
            return (*status, value.clone());
        }
        let (status, value) = route(&mut i, fake, method, path, &body);
        if status < 500 {
            i.replays.insert(key, (request_id, status, value.clone()));
        }
        return (status, value);
    }
    route(&mut i, fake, method, path, &body)
}

fn next_id(i: &mut Inner, prefix: &str) -> String {
    i.seq += 1;
    format!("{prefix}{:012}{:04}", now_secs(), i.seq)
}

fn buyer_approves(i: &mut Inner, path: &str, q: &payhost_plugin_kit::Form) -> (u16, String) {
    if path == "/checkoutnow" {
        let id = q.get("token").unwrap_or_default().to_owned();
        let Some(order) = i.orders.get_mut(&id) else {
            return (404, format!("no order {id}"));
        };
        if !matches!(
            order["status"].as_str(),
            Some("CREATED" | "PAYER_ACTION_REQUIRED")
        ) {
            return (409, format!("order {id} is {}", order["status"]));
        }
        order["status"] = json!("APPROVED");
        order["payer"] = json!({"email_address": "buyer@example.com", "payer_id": "FAKEPAYER1",
                                "name": {"given_name": "Test", "surname": "Buyer"}});
        if q.get("funding") == Some("declined") {
            i.declining.push(id.clone());
        }
        return (
            200,
            format!("<html><body>Order {id} approved. Returning to the merchant.</body></html>"),
        );
    }
    let id = q.get("ba_token").unwrap_or_default().to_owned();
    let Some(s) = i.subscriptions.get_mut(&id) else {
        return (404, format!("no subscription {id}"));
    };
    if s["status"] != "APPROVAL_PENDING" {
        return (409, format!("subscription {id} is {}", s["status"]));
    }
    activate(s, now_secs());
    (
        200,
        format!("<html><body>Subscription {id} approved.</body></html>"),
    )
}

fn activate(s: &mut Value, now: i64) {
    let trial = plan(s["plan_id"].as_str().unwrap_or_default()).is_some_and(|p| p.1);
    s["status"] = json!("ACTIVE");
    s["status_update_time"] = json!(rfc3339(now));
    let next = if trial {
        now + 7 * 86_400
    } else {
        now + 30 * 86_400
    };
    let mut cycles = vec![
        json!({"tenure_type": "REGULAR", "sequence": 2, "cycles_completed": if trial {0} else {1}, "cycles_remaining": 0, "total_cycles": 0}),
    ];
    if trial {
        cycles.insert(0, json!({"tenure_type": "TRIAL", "sequence": 1, "cycles_completed": 0, "cycles_remaining": 1, "total_cycles": 1}));
    }
    s["billing_info"] = json!({
        "outstanding_balance": {"currency_code": "USD", "value": "0.00"},
        "cycle_executions": cycles,
        "last_payment": {"amount": {"currency_code": "USD", "value": plan(s["plan_id"].as_str().unwrap_or_default()).map_or("0.00", |p| p.0)}, "time": rfc3339(now)},
        "next_billing_time": rfc3339(next),
        "failed_payments_count": 0,
    });
    s["links"] = json!([{"href": format!("{}/v1/billing/subscriptions/{}", s["_base"].as_str().unwrap_or_default(), s["id"].as_str().unwrap_or_default()), "rel": "self", "method": "GET"}]);
}

fn public(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.retain(|k, _| !k.starts_with('_'));
    }
    v
}

fn route(i: &mut Inner, fake: &FakePaypal, method: &Method, path: &str, body: &Value) -> Answer {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("POST", ["v2", "checkout", "orders"]) => create_order(i, body),
        ("GET", ["v2", "checkout", "orders", id]) => match i.orders.get(*id) {
            Some(o) => (200, public(o)),
            None => not_found("order", id),
        },
        ("POST", ["v2", "checkout", "orders", id, step @ ("capture" | "authorize")]) => {
            complete_order(i, id, step)
        }
        ("POST", ["v2", "payments", "authorizations", id, "capture"]) => {
            capture_authorization(i, id, body)
        }
        ("POST", ["v2", "payments", "authorizations", id, "void"]) => void_authorization(i, id),
        ("POST", ["v2", "payments", "captures", id, "refund"]) => refund(i, id, body),
        ("GET", ["v2", "payments", "refunds", id]) => i
            .orders
            .values()
            .filter_map(|o| o["purchase_units"][0]["payments"]["refunds"].as_array())
            .flatten()
            .find(|r| r["id"] == *id)
            .map_or_else(|| not_found("refund", id), |r| (200, r.clone())),
        ("POST", ["v1", "billing", "subscriptions"]) => create_subscription(i, body),
        ("GET", ["v1", "billing", "subscriptions", id]) => match i.subscriptions.get(*id) {
            Some(s) => (200, public(s)),
            None => not_found("subscription", id),
        },
        ("POST", ["v1", "billing", "subscriptions", id, action]) => {
            subscription_action(i, id, action, body)
        }
        ("POST", ["v1", "notifications", "verify-webhook-signature"]) => {
            verify_signature(fake, body)
        }
        _ => not_found("path", path),
    }
}

fn create_order(i: &mut Inner, body: &Value) -> Answer {
    let intent = body["intent"].as_str().unwrap_or_default();
    if !matches!(intent, "CAPTURE" | "AUTHORIZE") {
        return error(
            400,
            "INVALID_REQUEST",
            "INVALID_PARAMETER_VALUE",
            "intent must be CAPTURE or AUTHORIZE",
            Some("/intent"),
        );
    }
    let Some(units) = body["purchase_units"].as_array().filter(|u| !u.is_empty()) else {
        return error(
            400,
            "INVALID_REQUEST",
            "MISSING_REQUIRED_PARAMETER",
            "A required field / parameter is missing.",
            Some("/purchase_units"),
        );
    };
    let (code, thousandths) = match parse_amount(
        &units[0]["amount"],
        "/purchase_units/@reference_id=='default'/amount",
    ) {
        Ok(a) => a,
        Err(e) => return e,
    };
    if thousandths <= 0 {
        return unprocessable("CANNOT_BE_ZERO_OR_NEGATIVE", "Must be greater than zero.");
    }
    let id = next_id(i, "5O");
    let base = i.base.clone();
    let ctx = &body["payment_source"]["paypal"]["experience_context"];
    let status = if ctx.is_object() {
        "PAYER_ACTION_REQUIRED"
    } else {
        "CREATED"
    };
    let rel = if ctx.is_object() {
        "payer-action"
    } else {
        "approve"
    };
    let mut unit = json!({"reference_id": units[0]["reference_id"].as_str().unwrap_or("default"),
                          "amount": format_amount(&code, thousandths)});
    for k in ["custom_id", "description", "invoice_id"] {
        if let Some(v) = units[0][k].as_str() {
            unit[k] = json!(v);
        }
    }
    let order = json!({
        "id": id, "intent": intent, "status": status,
        "purchase_units": [unit],
        "create_time": rfc3339(now_secs()),
        "links": [
            {"href": format!("{base}/v2/checkout/orders/{id}"), "rel": "self", "method": "GET"},
            {"href": format!("{base}/checkoutnow?token={id}"), "rel": rel, "method": "GET"},
        ],
        "_return_url": ctx["return_url"].clone(),
    });
    i.orders.insert(id.clone(), order.clone());
    (201, public(&order))
}

fn movement(
    i: &mut Inner,
    prefix: &str,
    status: &str,
    amount: Value,
    up: Option<(&str, &str)>,
    order: &str,
) -> Value {
    let id = next_id(i, prefix);
    let mut links = vec![json!({"href": format!("{}/v2/payments/x/{id}", i.base), "rel": "self"})];
    if let Some((kind, parent)) = up {
        links.push(json!({"href": format!("{}/v2/payments/{kind}/{parent}", i.base), "rel": "up"}));
    }
    json!({"id": id, "status": status, "amount": amount, "final_capture": true,
           "create_time": rfc3339(now_secs()), "update_time": rfc3339(now_secs()),
           "supplementary_data": {"related_ids": {"order_id": order}}, "links": links})
}

fn complete_order(i: &mut Inner, id: &str, step: &str) -> Answer {
    let Some(order) = i.orders.get(id).cloned() else {
        return not_found("order", id);
    };
    match order["status"].as_str() {
        Some("APPROVED") => {}
        Some("COMPLETED") => {
            return unprocessable(
                if step == "capture" { "ORDER_ALREADY_CAPTURED" } else { "ORDER_ALREADY_AUTHORIZED" },
                "Order already captured/authorized.",
            )
        }
        _ => return unprocessable("ORDER_NOT_APPROVED", "Payer has not yet approved the Order for payment. Please redirect the payer to the 'rel':'approve' url returned as part of the HATEOAS links within the Create Order call or provide a valid payment_source in the request."),
    }
    let expected = if step == "capture" {
        "CAPTURE"
    } else {
        "AUTHORIZE"
    };
    if order["intent"] != expected {
        return unprocessable("ACTION_DOES_NOT_MATCH_INTENT", &format!("Order was created with an intent of {}. Please use /v2/checkout/orders/{id}/{} instead.", order["intent"].as_str().unwrap_or_default(), order["intent"].as_str().unwrap_or_default().to_ascii_lowercase()));
    }
    if i.declining.iter().any(|d| d == id) {
        return unprocessable("INSTRUMENT_DECLINED", "The instrument presented was either declined by the processor or bank, or it can't be used for this payment.");
    }
    let amount = order["purchase_units"][0]["amount"].clone();
    let m = if step == "capture" {
        let c = movement(i, "3C", "COMPLETED", amount, None, id);
        i.captures
            .insert(c["id"].as_str().unwrap().to_owned(), id.to_owned());
        json!({"captures": [c]})
    } else {
        let mut a = movement(i, "0A", "CREATED", amount, None, id);
        a["expiration_time"] = json!(rfc3339(now_secs() + 29 * 86_400));
        i.authorizations
            .insert(a["id"].as_str().unwrap().to_owned(), id.to_owned());
        json!({"authorizations": [a]})
    };
    let o = i.orders.get_mut(id).unwrap();
    o["status"] = json!("COMPLETED");
    o["purchase_units"][0]["payments"] = m;
    (201, public(o))
}

fn capture_authorization(i: &mut Inner, auth_id: &str, body: &Value) -> Answer {
    let Some(order_id) = i.authorizations.get(auth_id).cloned() else {
        return not_found("authorization", auth_id);
    };
    let order = i.orders.get(&order_id).unwrap().clone();
    let auth = order["purchase_units"][0]["payments"]["authorizations"][0].clone();
    match auth["status"].as_str() {
        Some("CREATED") => {}
        Some("VOIDED") => {
            return unprocessable(
                "AUTHORIZATION_VOIDED",
                "A voided authorization cannot be captured or reauthorized.",
            )
        }
        _ => {
            return unprocessable(
                "AUTHORIZATION_ALREADY_CAPTURED",
                "Authorization has already been captured.",
            )
        }
    }
    let authorized = amount_of(&auth["amount"]);
    let code = auth["amount"]["currency_code"]
        .as_str()
        .unwrap_or("USD")
        .to_owned();
    let take = if body["amount"].is_object() {
        match parse_amount(&body["amount"], "/amount") {
            Ok((c, t)) if c == code => t,
            Ok(_) => {
                return unprocessable(
                    "CURRENCY_MISMATCH",
                    "Currency of capture must be the same as currency of authorization.",
                )
            }
            Err(e) => return e,
        }
    } else {
        authorized
    };
    if take <= 0 {
        return unprocessable("CANNOT_BE_ZERO_OR_NEGATIVE", "Must be greater than zero.");
    }
    // PayPal lets a capture exceed the authorization by up to 15%.
    if take * 100 > authorized * 115 {
        return unprocessable(
            "MAX_CAPTURE_AMOUNT_EXCEEDED",
            "Capture amount exceeds allowable limit.",
        );
    }
    let c = movement(
        i,
        "3C",
        "COMPLETED",
        format_amount(&code, take),
        Some(("authorizations", auth_id)),
        &order_id,
    );
    i.captures
        .insert(c["id"].as_str().unwrap().to_owned(), order_id.clone());
    let o = i.orders.get_mut(&order_id).unwrap();
    let payments = &mut o["purchase_units"][0]["payments"];
    payments["authorizations"][0]["status"] = json!(if body["final_capture"] == json!(false) {
        "PARTIALLY_CAPTURED"
    } else {
        "CAPTURED"
    });
    let mut captures = payments["captures"].as_array().cloned().unwrap_or_default();
    captures.push(c.clone());
    payments["captures"] = json!(captures);
    (201, public(&c))
}

fn void_authorization(i: &mut Inner, auth_id: &str) -> Answer {
    let Some(order_id) = i.authorizations.get(auth_id).cloned() else {
        return not_found("authorization", auth_id);
    };
    let o = i.orders.get_mut(&order_id).unwrap();
    let a = &mut o["purchase_units"][0]["payments"]["authorizations"][0];
    match a["status"].as_str() {
        Some("CREATED") => {
            a["status"] = json!("VOIDED");
            (200, a.clone())
        }
        Some("VOIDED") => unprocessable(
            "PREVIOUSLY_VOIDED",
            "Authorization has been previously voided and hence cannot be voided again.",
        ),
        _ => unprocessable(
            "CANNOT_BE_VOIDED",
            "A reauthorization cannot be voided. Please void the original parent authorization.",
        ),
    }
}

fn refund(i: &mut Inner, capture_id: &str, body: &Value) -> Answer {
    let Some(order_id) = i.captures.get(capture_id).cloned() else {
        return not_found("capture", capture_id);
    };
    let order = i.orders.get(&order_id).unwrap().clone();
    let payments = &order["purchase_units"][0]["payments"];
    let capture = payments["captures"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["id"] == capture_id))
        .cloned()
        .unwrap();
    let code = capture["amount"]["currency_code"]
        .as_str()
        .unwrap_or("USD")
        .to_owned();
    let refunded: i64 = payments["refunds"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter(|r| {
                    r["links"].as_array().is_some_and(|l| {
                        l.iter().any(|l| {
                            l["rel"] == "up"
                                && l["href"].as_str().unwrap_or_default().ends_with(capture_id)
                        })
                    })
                })
                .map(|r| amount_of(&r["amount"]))
                .sum()
        })
        .unwrap_or(0);
    let remaining = amount_of(&capture["amount"]) - refunded;
    if remaining <= 0 {
        return unprocessable(
            "CAPTURE_FULLY_REFUNDED",
            "The capture has already been fully refunded.",
        );
    }
    let take = if body["amount"].is_object() {
        match parse_amount(&body["amount"], "/amount") {
            Ok((c, t)) if c == code => t,
            Ok(_) => {
                return unprocessable(
                    "REFUND_CURRENCY_MISMATCH",
                    "Refund must be in the same currency as the capture.",
                )
            }
            Err(e) => return e,
        }
    } else {
        remaining
    };
    if take <= 0 {
        return unprocessable("CANNOT_BE_ZERO_OR_NEGATIVE", "Must be greater than zero.");
    }
    if take > remaining {
        return unprocessable("REFUND_AMOUNT_EXCEEDED", "The refund amount must be less than or equal to the capture amount that has not yet been refunded.");
    }
    let r = movement(
        i,
        "1R",
        "COMPLETED",
        format_amount(&code, take),
        Some(("captures", capture_id)),
        &order_id,
    );
    let o = i.orders.get_mut(&order_id).unwrap();
    let payments = &mut o["purchase_units"][0]["payments"];
    let mut refunds = payments["refunds"].as_array().cloned().unwrap_or_default();
    refunds.push(r.clone());
    payments["refunds"] = json!(refunds);
    if let Some(cs) = payments["captures"].as_array_mut() {
        for c in cs.iter_mut().filter(|c| c["id"] == capture_id) {
            c["status"] = json!(if take == remaining {
                "REFUNDED"
            } else {
                "PARTIALLY_REFUNDED"
            });
        }
    }
    (201, public(&r))
}

fn create_subscription(i: &mut Inner, body: &Value) -> Answer {
    let plan_id = body["plan_id"].as_str().unwrap_or_default();
    if plan(plan_id).is_none() {
        return error(
            422,
            "UNPROCESSABLE_ENTITY",
            "INVALID_PARAMETER_VALUE",
            &format!("The specified plan {plan_id} does not exist or is not active."),
            Some("/plan_id"),
        );
    }
    let id = next_id(i, "I-");
    let base = i.base.clone();
    let s = json!({
        "id": id, "plan_id": plan_id, "status": "APPROVAL_PENDING",
        "status_update_time": rfc3339(now_secs()),
        "start_time": rfc3339(now_secs()),
        "create_time": rfc3339(now_secs()),
        "subscriber": body["subscriber"].clone(),
        "custom_id": body["custom_id"].clone(),
        "links": [
            {"href": format!("{base}/webapps/billing/subscriptions?ba_token={id}"), "rel": "approve", "method": "GET"},
            {"href": format!("{base}/v1/billing/subscriptions/{id}"), "rel": "self", "method": "GET"},
        ],
        "_base": base,
    });
    i.subscriptions.insert(id, s.clone());
    (201, public(&s))
}

fn subscription_action(i: &mut Inner, id: &str, action: &str, body: &Value) -> Answer {
    let Some(s) = i.subscriptions.get_mut(id) else {
        return not_found("subscription", id);
    };
    let status = s["status"].as_str().unwrap_or_default().to_owned();
    let invalid = || {
        unprocessable("SUBSCRIPTION_STATUS_INVALID", &format!("Invalid subscription status for {action} action; subscription status should be one of the allowed values (it is {status})."))
    };
    // PayPal: cancel and suspend carry a reason (1 to 128 characters), else 400.
    if matches!(action, "cancel" | "suspend") {
        let reason = body["reason"].as_str().unwrap_or_default();
        if reason.is_empty() {
            return error(
                400,
                "INVALID_REQUEST",
                "MISSING_REQUIRED_PARAMETER",
                "A required field / parameter is missing.",
                Some("/reason"),
            );
        }
        if reason.chars().count() > 128 {
            return error(
                400,
                "INVALID_REQUEST",
                "INVALID_STRING_LENGTH",
                "The value of a field is either too short or too long.",
                Some("/reason"),
            );
        }
    }
    match action {
        "cancel"
            if matches!(
                status.as_str(),
                "ACTIVE" | "SUSPENDED" | "APPROVAL_PENDING" | "APPROVED"
            ) =>
        {
            s["status"] = json!("CANCELLED");
            s["status_update_time"] = json!(rfc3339(now_secs()));
            (204, Value::Null)
        }
        "suspend" if status == "ACTIVE" => {
            s["status"] = json!("SUSPENDED");
            (204, Value::Null)
        }
        "activate" if status == "SUSPENDED" => {
            s["status"] = json!("ACTIVE");
            (204, Value::Null)
        }
        "revise" if matches!(status.as_str(), "ACTIVE" | "SUSPENDED") => {
            let plan_id = body["plan_id"].as_str().unwrap_or_default();
            if plan(plan_id).is_none() {
                return error(
                    422,
                    "UNPROCESSABLE_ENTITY",
                    "INVALID_PARAMETER_VALUE",
                    &format!("The specified plan {plan_id} does not exist."),
                    Some("/plan_id"),
                );
            }
            s["plan_id"] = json!(plan_id);
            (
                200,
                json!({"plan_id": plan_id, "plan_overridden": false, "links": []}),
            )
        }
        "cancel" | "suspend" | "activate" | "revise" => invalid(),
        _ => not_found("action", action),
    }
}

fn verify_signature(fake: &FakePaypal, body: &Value) -> Answer {
    for k in [
        "auth_algo",
        "cert_url",
        "transmission_id",
        "transmission_sig",
        "transmission_time",
        "webhook_id",
        "webhook_event",
    ] {
        if body[k].is_null() {
            return error(
                400,
                "VALIDATION_ERROR",
                "MISSING_REQUIRED_PARAMETER",
                &format!("{k} is required"),
                Some(&format!("/{k}")),
            );
        }
    }
    // PayPal re-serializes the event; the fake signs compact JSON, so this matches.
    let event = serde_json::to_vec(&body["webhook_event"]).unwrap();
    let message = format!(
        "{}|{}|{}|{}",
        body["transmission_id"].as_str().unwrap_or_default(),
        body["transmission_time"].as_str().unwrap_or_default(),
        body["webhook_id"].as_str().unwrap_or_default(),
        crc32fast::hash(&event)
    );
    let sig = base64::engine::general_purpose::STANDARD
        .decode(body["transmission_sig"].as_str().unwrap_or_default())
        .unwrap_or_default();
    let public = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        ring::signature::KeyPair::public_key(&fake.keys.leaf)
            .as_ref()
            .to_vec(),
    );
    let ok = body["webhook_id"] == WEBHOOK_ID
        && body["cert_url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/valid.pem"))
        && public.verify(message.as_bytes(), &sig).is_ok();
    (
        200,
        json!({"verification_status": if ok { "SUCCESS" } else { "FAILURE" }}),
    )
}
