//! A fake Mollie for the tests: a small axum server that behaves like Mollie's Payments API
//! v2 where payhost depends on it.
//!
//! - `Authorization: Bearer <key>`: a wrong or missing key is a 401 in Mollie's shape.
//! - `POST /v2/payments`: amounts as strings with exactly the currency's digits (`"10.00"`,
//!   JPY `"1000"`; anything else is a 422 naming `amount.value`), `description` and
//!   `redirectUrl` required, `method` one Mollie knows, `metadata` any JSON; answers `open`
//!   with `_links.checkout`. `Idempotency-Key` replays the first answer.
//! - The checkout page `GET /checkout/{id}` is the buyer's browser. Like Mollie's test mode
//!   it lets the buyer pick the outcome: `?outcome=paid` (the default), `failed` (with
//!   `&reason=`, default `card_declined`), `canceled`, `expired`, `pending`, `authorized`.
//! - Payments expire ([`FakeMollie::expire`]); `DELETE /v2/payments/{id}` cancels only
//!   while `isCancelable` (open, and not iDEAL: Mollie cannot cancel those), a 422 without
//!   a `field` otherwise.
//! - Refunds: only of paid payments, never above `amountRemaining` (a 422 naming `amount`);
//!   they are `pending` until [`FakeMollie::settle_refunds`] settles them (`refunded` or
//!   `failed`, which gives the amount back to the payment).
//! - `?embed=refunds` on a payment read embeds its refunds.
//! - Webhooks are thin: whenever a payment or one of its refunds changes, the fake POSTs
//!   `id=tr_…` (form-encoded, unsigned) to the payment's `webhookUrl`, and tries again on
//!   any answer but 2xx (five tries here, ~26 hours at Mollie). [`FakeMollie::deliveries`]
//!   lists every try.
//! - Errors in Mollie's shape (`status`, `title`, `detail`, `field`, `_links`); on command
//!   429, 5xx or a slow answer.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use payhost_plugin_kit::money::{from_decimal, to_decimal};
use payhost_plugin_kit::{Currency, Form};
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The fake's test-mode API key.
pub const API_KEY: &str = "test_fakemollie0000000000000000";

/// The methods Mollie's checkout offers here.
const METHODS: &[&str] = &[
    "creditcard",
    "ideal",
    "bancontact",
    "banktransfer",
    "paypal",
    "applepay",
];

/// What the next request(s) get instead of a normal answer.
#[derive(Debug, Clone)]
pub enum Chaos {
    /// A status with Mollie's error body.
    Status(u16),
    /// The normal answer, after a pause.
    Slow(Duration),
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
    pub body: Value,
}

/// One try at delivering a webhook.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub url: String,
    pub payment: String,
    /// The receiver's HTTP status, 0 when it could not be reached.
    pub status: u16,
}

struct Inner {
    base: String,
    seq: u64,
    payments: BTreeMap<String, Value>,
    refunds: BTreeMap<String, Value>,
    replays: BTreeMap<String, (u16, Value)>,
    chaos: VecDeque<Chaos>,
    seen: Vec<Seen>,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
}

#[derive(Clone)]
pub struct FakeMollie {
    inner: Arc<Mutex<Inner>>,
}

/// A running fake; stops with the test process.
pub struct Running {
    /// The API's base URL, for the plugin's `api_base` (`http://127.0.0.1:N/v2`).
    pub api_base: String,
    pub fake: FakeMollie,
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

fn iso(secs: i64) -> String {
    payhost_plugin_kit::time::to_rfc3339(secs)
}

fn error(status: u16, title: &str, detail: &str, field: Option<&str>) -> Answer {
    let mut v = json!({
        "status": status,
        "title": title,
        "detail": detail,
        "_links": {"documentation": {"href": "https://docs.mollie.com/overview/handling-errors", "type": "text/html"}},
    });
    if let Some(f) = field {
        v["field"] = json!(f);
    }
    (status, v)
}

fn unprocessable(detail: &str, field: Option<&str>) -> Answer {
    error(422, "Unprocessable Entity", detail, field)
}

fn not_found(what: &str, id: &str) -> Answer {
    error(
        404,
        "Not Found",
        &format!("No {what} exists with token {id}."),
        None,
    )
}

/// Minor units of a Mollie amount, when it has exactly its currency's digits.
fn minor(amount: &Value) -> Result<(Currency, i64), Answer> {
    let bad = |detail: &str, field: &str| unprocessable(detail, Some(field));
    let code = amount["currency"].as_str().unwrap_or_default();
    if code.len() != 3 || code.to_ascii_uppercase() != code {
        return Err(bad(
            "The currency is invalid, use an ISO 4217 code in capitals",
            "amount.currency",
        ));
    }
    let currency = Currency::parse(code)
        .map_err(|_| bad("The currency is not supported", "amount.currency"))?;
    let Some(value) = amount["value"].as_str() else {
        return Err(bad(
            "The amount value must be a string, e.g. \"10.00\"",
            "amount.value",
        ));
    };
    let money = from_decimal(value, &currency)
        .map_err(|_| bad("The amount contains an invalid value", "amount.value"))?;
    // Mollie wants exactly the currency's digits: "10.00", never "10" or "10.0".
    if to_decimal(&money).ok().as_deref() != Some(value) || money.amount <= 0 {
        return Err(bad(
            &format!("The amount contains an invalid value: {value} has not the currency's number of decimals"),
            "amount.value",
        ));
    }
    Ok((currency, money.amount))
}

fn amount(currency: &Currency, minor: i64) -> Value {
    json!({
        "currency": currency.as_str().to_ascii_uppercase(),
        "value": to_decimal(&payhost_plugin_kit::Money::new(minor, currency.clone())).unwrap(),
    })
}

fn currency_of(p: &Value) -> Currency {
    Currency::parse(p["amount"]["currency"].as_str().unwrap_or("EUR")).unwrap()
}

fn cents(v: &Value) -> i64 {
    minor(v).map(|(_, m)| m).unwrap_or(0)
}

impl FakeMollie {
    /// Starts the fake on a free port, on a runtime of its own.
    pub fn start() -> Running {
        let fake = FakeMollie {
            inner: Arc::new(Mutex::new(Inner {
                base: String::new(),
                seq: 0,
                payments: BTreeMap::new(),
                refunds: BTreeMap::new(),
                replays: BTreeMap::new(),
                chaos: VecDeque::new(),
                seen: Vec::new(),
                deliveries: Arc::default(),
            })),
        };
        let app = Router::new().fallback(handle).with_state(fake.clone());
        let addr = crate::serve_in_background(app);
        let base = format!("http://{addr}");
        fake.inner.lock().unwrap().base = base.clone();
        Running {
            api_base: format!("{base}/v2"),
            fake,
        }
    }

    /// The next requests get these answers instead, in order.
    pub fn chaos(&self, plan: impl IntoIterator<Item = Chaos>) {
        self.inner.lock().unwrap().chaos.extend(plan);
    }

    /// Every API request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }

    /// Every webhook try so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        let d = self.inner.lock().unwrap().deliveries.clone();
        let all = d.lock().unwrap().clone();
        all
    }

    /// The payment as Mollie holds it.
    pub fn payment(&self, id: &str) -> Option<Value> {
        let i = self.inner.lock().unwrap();
        i.payments.get(id).map(|p| view(&i, p, false))
    }

    /// The checkout page of payment `id` (what its `_links.checkout` names).
    pub fn checkout_url(&self, id: &str) -> String {
        format!("{}/checkout/{id}", self.inner.lock().unwrap().base)
    }

    /// An open payment's time runs out: it is `expired`, and its webhook is called.
    pub fn expire(&self, id: &str) {
        let mut i = self.inner.lock().unwrap();
        let p = i.payments.get_mut(id).expect("a payment of the fake");
        assert_eq!(p["status"], "open", "only an open payment expires");
        p["status"] = json!("expired");
        p["expiredAt"] = json!(iso(now_secs()));
        notify(&i, id);
    }

    /// Every pending refund settles: `refunded`, or `failed` (its amount goes back to the
    /// payment). The payments' webhooks are called.
    pub fn settle_refunds(&self, fail: bool) {
        let mut i = self.inner.lock().unwrap();
        let pending: Vec<String> = i
            .refunds
            .iter()
            .filter(|(_, r)| r["status"] == "pending")
            .map(|(id, _)| id.clone())
            .collect();
        let mut touched = Vec::new();
        for id in pending {
            let r = i.refunds.get_mut(&id).unwrap();
            r["status"] = json!(if fail { "failed" } else { "refunded" });
            let (payment, value) = (
                r["paymentId"].as_str().unwrap().to_owned(),
                cents(&r["amount"]),
            );
            if fail {
                let p = i.payments.get_mut(&payment).unwrap();
                let c = currency_of(p);
                let refunded = cents(&p["amountRefunded"]) - value;
                p["amountRefunded"] = amount(&c, refunded);
            }
            touched.push(payment);
        }
        touched.dedup();
        for p in touched {
            notify(&i, &p);
        }
    }
}

/// The payment as the API answers it: `isCancelable`, `amountRemaining`, the checkout link
/// while open, its refunds when embedded.
fn view(i: &Inner, p: &Value, embed_refunds: bool) -> Value {
    let mut v = p.clone();
    let id = p["id"].as_str().unwrap_or_default();
    let status = p["status"].as_str().unwrap_or_default();
    let c = currency_of(p);
    let paid = status == "paid";
    let refunded = cents(&p["amountRefunded"]);
    v["amountRemaining"] = amount(
        &c,
        if paid {
            cents(&p["amount"]) - refunded
        } else {
            0
        },
    );
    v["isCancelable"] = json!(
        (status == "open" && p["method"].as_str() != Some("ideal"))
            || (status == "pending" && p["method"] == "banktransfer")
    );
    let mut links = json!({
        "self": {"href": format!("{}/v2/payments/{id}", i.base), "type": "application/hal+json"},
        "dashboard": {"href": format!("https://my.mollie.com/dashboard/payments/{id}"), "type": "text/html"},
    });
    if status == "open" {
        links["checkout"] =
            json!({"href": format!("{}/checkout/{id}", i.base), "type": "text/html"});
    }
    v["_links"] = links;
    if embed_refunds {
        let refunds: Vec<Value> = i
            .refunds
            .values()
            .filter(|r| r["paymentId"] == id)
            .cloned()
            .collect();
        v["_embedded"] = json!({ "refunds": refunds });
    }
    v
}

/// Calls payment `id`'s webhook, if it has one, on a thread of its own: `id=<payment>`,
/// tried again on anything but 2xx.
fn notify(i: &Inner, id: &str) {
    let Some(url) = i.payments[id]["webhookUrl"].as_str().map(str::to_owned) else {
        return;
    };
    let (log, id) = (i.deliveries.clone(), id.to_owned());
    std::thread::spawn(move || {
        for attempt in 0..5u32 {
            let status = crate::post_form(
                &url,
                &[("User-Agent", "Mollie HTTP client")],
                &format!("id={id}"),
            )
            .map_or(0, |(status, _)| status);
            log.lock().unwrap().push(Delivery {
                url: url.clone(),
                payment: id.clone(),
                status,
            });
            if (200..300).contains(&status) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200 << attempt));
        }
    });
}

fn next_id(i: &mut Inner, prefix: &str) -> String {
    i.seq += 1;
    format!("{prefix}_{:x}{:04}", now_secs(), i.seq)
}

/// The buyer on the checkout page picks the outcome, as in Mollie's test mode.
fn checkout(i: &mut Inner, id: &str, q: &Form) -> (u16, String) {
    let Some(p) = i.payments.get_mut(id) else {
        return (404, format!("no payment {id}"));
    };
    if p["status"] != "open" {
        return (409, format!("payment {id} is {}", p["status"]));
    }
    let now = iso(now_secs());
    let outcome = q.get("outcome").unwrap_or("paid").to_owned();
    match outcome.as_str() {
        "paid" => {
            p["paidAt"] = json!(now);
            if p["method"].is_null() {
                p["method"] = json!("creditcard");
            }
        }
        "failed" => {
            p["failedAt"] = json!(now);
            let reason = q.get("reason").unwrap_or("card_declined");
            p["details"] = json!({"failureReason": reason,
                "failureMessage": format!("The payment failed: {}", reason.replace('_', " "))});
        }
        "canceled" => p["canceledAt"] = json!(now),
        "expired" => p["expiredAt"] = json!(now),
        "pending" | "authorized" => {}
        other => return (400, format!("no outcome {other}")),
    }
    p["status"] = json!(outcome);
    notify(i, id);
    (
        200,
        format!("<html><body>Payment {id}: {outcome}. Returning to the merchant.</body></html>"),
    )
}

async fn handle(
    State(fake): State<FakeMollie>,
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
    let query = Form::decode(uri.query().unwrap_or_default()).unwrap_or_default();
    // The buyer's browser: no API key.
    if method == Method::GET {
        if let Some(id) = path.strip_prefix("/checkout/") {
            let mut i = fake.inner.lock().unwrap();
            let (status, text) = checkout(&mut i, id, &query);
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
            idempotency_key: header("idempotency-key"),
            body: parsed.clone(),
        });
        i.chaos.pop_front()
    };
    match chaos {
        Some(Chaos::Slow(d)) => tokio::time::sleep(d).await,
        Some(Chaos::Status(429)) => {
            let (s, v) = error(
                429,
                "Too Many Requests",
                "You have made too many requests. Please wait a minute and try again.",
                None,
            );
            return reply(s, v);
        }
        Some(Chaos::Status(s)) => {
            let (s, v) = error(
                s,
                "Internal Server Error",
                "An internal server error occurred while processing your request.",
                None,
            );
            return reply(s, v);
        }
        None => {}
    }
    if header("authorization").as_deref() != Some(&format!("Bearer {API_KEY}")) {
        let (s, v) = error(
            401,
            "Unauthorized Request",
            "Missing authentication, or failed to authenticate",
            None,
        );
        return reply(s, v);
    }
    if method == Method::POST && !body.is_empty() && parsed.is_null() {
        let (s, v) = error(
            400,
            "Bad Request",
            "The request body is not valid JSON",
            None,
        );
        return reply(s, v);
    }
    let mut i = fake.inner.lock().unwrap();
    let key = header("idempotency-key").filter(|_| method == Method::POST);
    if let Some(key) = &key {
        if let Some((s, v)) = i.replays.get(&format!("{path}#{key}")) {
            return reply(*s, v.clone());
        }
    }
    let (status, value) = route(&mut i, &method, &path, &query, &parsed);
    if let Some(key) = key.filter(|_| status < 500) {
        i.replays
            .insert(format!("{path}#{key}"), (status, value.clone()));
    }
    reply(status, value)
}

fn reply(status: u16, value: Value) -> Response {
    if status == 204 {
        return StatusCode::NO_CONTENT.into_response();
    }
    let mut r = (StatusCode::from_u16(status).unwrap(), value.to_string()).into_response();
    r.headers_mut().insert(
        "content-type",
        axum::http::HeaderValue::from_static("application/hal+json"),
    );
    r
}

fn route(i: &mut Inner, method: &Method, path: &str, q: &Form, body: &Value) -> Answer {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("POST", ["v2", "payments"]) => create_payment(i, body),
        ("GET", ["v2", "payments", id]) => match i.payments.get(*id) {
            Some(p) => (200, view(i, p, q.get("embed") == Some("refunds"))),
            None => not_found("payment", id),
        },
        ("DELETE", ["v2", "payments", id]) => cancel(i, id),
        ("POST", ["v2", "payments", id, "refunds"]) => refund(i, id, body),
        ("GET", ["v2", "payments", id, "refunds", rid]) => match i.refunds.get(*rid) {
            Some(r) if r["paymentId"] == *id => (200, r.clone()),
            _ => not_found("refund", rid),
        },
        _ => error(
            404,
            "Not Found",
            "The requested resource does not exist",
            None,
        ),
    }
}

fn create_payment(i: &mut Inner, b: &Value) -> Answer {
    let (currency, value) = match minor(&b["amount"]) {
        Ok(m) => m,
        Err(e) => return e,
    };
    let description = b["description"].as_str().unwrap_or_default();
    if description.trim().is_empty() {
        return unprocessable("The description is invalid", Some("description"));
    }
    let Some(redirect) = b["redirectUrl"].as_str() else {
        return unprocessable(
            "The redirect URL is required for this payment",
            Some("redirectUrl"),
        );
    };
    if let Some(m) = b.get("method").filter(|m| !m.is_null()) {
        if !m.as_str().is_some_and(|m| METHODS.contains(&m)) {
            return unprocessable("The payment method is invalid", Some("method"));
        }
    }
    let id = next_id(i, "tr");
    let now = now_secs();
    let p = json!({
        "resource": "payment",
        "id": id,
        "mode": "test",
        "createdAt": iso(now),
        "amount": amount(&currency, value),
        "amountRefunded": amount(&currency, 0),
        "description": description,
        "method": b.get("method").cloned().unwrap_or(Value::Null),
        "metadata": b.get("metadata").cloned().unwrap_or(Value::Null),
        "status": "open",
        "expiresAt": iso(now + 15 * 60),
        "profileId": "pfl_fake0001",
        "sequenceType": "oneoff",
        "redirectUrl": redirect,
        "cancelUrl": b.get("cancelUrl").cloned().unwrap_or(Value::Null),
        "webhookUrl": b.get("webhookUrl").cloned().unwrap_or(Value::Null),
    });
    i.payments.insert(id, p.clone());
    (201, view(i, &p, false))
}

fn cancel(i: &mut Inner, id: &str) -> Answer {
    let Some(p) = i.payments.get(id) else {
        return not_found("payment", id);
    };
    if view(i, p, false)["isCancelable"] != true {
        return unprocessable("The payment cannot be canceled", None);
    }
    let p = i.payments.get_mut(id).unwrap();
    p["status"] = json!("canceled");
    p["canceledAt"] = json!(iso(now_secs()));
    let p = p.clone();
    notify(i, id);
    (200, view(i, &p, false))
}

fn refund(i: &mut Inner, id: &str, b: &Value) -> Answer {
    let Some(p) = i.payments.get(id) else {
        return not_found("payment", id);
    };
    if p["status"] != "paid" {
        return unprocessable(
            &format!(
                "The payment cannot be refunded: its status is {}",
                p["status"]
            ),
            None,
        );
    }
    let (currency, value) = match minor(&b["amount"]) {
        Ok(m) => m,
        Err(e) => return e,
    };
    if currency != currency_of(p) {
        return unprocessable(
            "The refund must be in the payment's currency",
            Some("amount.currency"),
        );
    }
    let remaining = cents(&p["amount"]) - cents(&p["amountRefunded"]);
    if value > remaining {
        return unprocessable(
            "The amount is higher than the amount that can be refunded",
            Some("amount"),
        );
    }
    let rid = next_id(i, "re");
    let r = json!({
        "resource": "refund",
        "id": rid,
        "amount": amount(&currency, value),
        "status": "pending",
        "createdAt": iso(now_secs()),
        "description": b.get("description").cloned().unwrap_or(json!("")),
        "metadata": b.get("metadata").cloned().unwrap_or(Value::Null),
        "paymentId": id,
    });
    let p = i.payments.get_mut(id).unwrap();
    p["amountRefunded"] = amount(&currency, cents(&p["amountRefunded"]) + value);
    i.refunds.insert(rid, r.clone());
    (201, r)
}
