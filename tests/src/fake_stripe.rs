//! A fake Stripe for the tests: a small axum server that behaves like Stripe's v1 API where
//! payhost depends on it. Bearer auth (401 otherwise); form bodies only (a JSON body is a
//! 400); unknown top-level parameters and missing required ones refused with Stripe's error
//! shape; state kept (customers, payment methods, intents, subscriptions, refunds,
//! invoices); a repeated `Idempotency-Key` replays the first answer, the same key with other
//! parameters is an `idempotency_error`, and while its first request is still being served a
//! 409; test cards behave as in test mode. On command it answers 429, 500 or
//! `Stripe-Should-Retry`, drops the connection or answers slowly, once ([`Chaos`]) or for a
//! while ([`Mode`]: failing before doing anything, or doing it and then losing the answer);
//! it can be switched off, its port then refusing connections ([`FakeStripe::start_switched`]).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use payhost_plugin_kit::Form;
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const API_KEY: &str = "sk_test_fake_payhost";

/// What the next request(s) get instead of a normal answer.
#[derive(Debug, Clone)]
pub enum Chaos {
    /// A status with Stripe's error body, optionally with `Stripe-Should-Retry`.
    Status(u16, Option<bool>),
    /// The connection is closed without an answer.
    Drop,
    /// The normal answer, after a pause.
    Slow(Duration),
    /// Applied at once (a charge made, the answer stored under its key), the answer then
    /// held this long: a caller that dies meanwhile never learns it was applied.
    AppliedThenHeld(Duration),
}

/// How the fake behaves from now on, for every request (an outage, a slow spell), beside
/// the one-off [`Chaos`] answers.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Mode {
    #[default]
    Normal,
    /// Every request answered with this status before anything is done (a 5xx: Stripe's
    /// `api_error`): nothing applied, nothing stored under its key.
    FailBeforeApplying(u16),
    /// Every request applied (a charge made, the answer stored under its key), then its
    /// answer held this long: a caller with a shorter deadline never learns it.
    ApplyThenHang(Duration),
    /// Every request applied, then the connection closed without an answer.
    ApplyThenDrop,
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
    pub stripe_version: Option<String>,
    pub form: Vec<(String, String)>,
    /// The W3C trace context the caller sent, if any.
    pub traceparent: Option<String>,
}

#[derive(Default)]
struct Inner {
    /// The fake's own base URL (its 3-D Secure pages live there).
    base: String,
    seq: u64,
    customers: BTreeMap<String, Value>,
    methods: BTreeMap<String, Value>,
    intents: BTreeMap<String, Value>,
    subscriptions: BTreeMap<String, Value>,
    refunds: BTreeMap<String, Value>,
    invoices: Vec<Value>,
    idempotency: BTreeMap<String, (String, u16, Value)>,
    chaos: VecDeque<Chaos>,
    mode: Mode,
    /// Idempotency keys whose request is being served: another with the same key is 409.
    in_flight: std::collections::BTreeSet<String>,
    seen: Vec<Seen>,
}

#[derive(Clone, Default)]
pub struct FakeStripe {
    inner: Arc<Mutex<Inner>>,
}

/// A running fake; stops with the test process.
pub struct Running {
    pub base: String,
    pub fake: FakeStripe,
}

/// A fake that can be switched off (connections refused, every open one closed) and on
/// again, on the same port (see [`FakeStripe::start_switched`]).
pub struct Switch {
    pub base: String,
    pub fake: FakeStripe,
    port: crate::HeldPort,
    server: Option<crate::Server>,
}

impl Switch {
    /// Accepts connections.
    pub fn on(&mut self) {
        if self.server.is_none() {
            let app = Router::new().fallback(handle).with_state(self.fake.clone());
            self.server = Some(crate::serve_until_stopped(self.port.listener(), app));
        }
    }

    /// Refuses connections, and closes the ones open.
    pub fn off(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
        }
    }
}

/// Takes an idempotency key off the in-flight set when its request ends, however it ends.
struct InFlight {
    fake: FakeStripe,
    key: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut i) = self.fake.inner.lock() {
            i.in_flight.remove(&self.key);
        }
    }
}

const NOW: i64 = 1_700_000_000;
const PERIOD: i64 = 30 * 86_400;

fn price(id: &str) -> Option<(i64, &'static str)> {
    Some(match id {
        "price_basic" => (999, "usd"),
        "price_pro" => (2999, "usd"),
        "price_enterprise" => (9999, "usd"),
        "price_basic_eur" => (899, "eur"),
        _ => return None,
    })
}

/// The currencies the fake's account can charge in, with Stripe's minimum charge in minor
/// units (Stripe's "Minimum and maximum charge amounts"); any other code is refused.
fn minimum_charge(currency: &str) -> Option<i64> {
    Some(match currency {
        "usd" | "eur" | "chf" | "cad" | "aud" | "nzd" | "sgd" | "brl" | "inr" | "jpy" => 50,
        "gbp" => 30,
        "sek" | "nok" => 300,
        "dkk" => 250,
        "pln" | "aed" | "ron" | "myr" => 200,
        "czk" => 1500,
        "huf" => 17500,
        "hkd" => 400,
        "mxn" | "thb" => 1000,
        _ => return None,
    })
}

/// At most eight digits: 99,999,999 minor units ($999,999.99).
const MAXIMUM_CHARGE: i64 = 99_999_999;

/// Stripe's refusal of a currency it does not support, or of an amount outside its limits.
fn check_charge(amount: &str, currency: &str) -> Result<(i64, String), Answer> {
    let currency = currency.to_ascii_lowercase();
    let Some(minimum) = minimum_charge(&currency) else {
        return Err(invalid(
            "",
            &format!("Invalid currency: {currency}. Stripe currently supports these currencies: usd, eur, gbp, jpy, chf, cad, aud, ..."),
            Some("currency"),
        ));
    };
    let amount: i64 = amount.parse().ok().filter(|a| *a >= 0).ok_or_else(|| {
        invalid(
            "parameter_invalid_integer",
            "Invalid positive integer",
            Some("amount"),
        )
    })?;
    if amount < minimum {
        return Err(invalid(
            "amount_too_small",
            &format!("Amount must be at least {minimum} (minor units) {currency}"),
            Some("amount"),
        ));
    }
    if amount > MAXIMUM_CHARGE {
        return Err(invalid(
            "amount_too_large",
            &format!("Amount must be no more than {MAXIMUM_CHARGE} (minor units) {currency}"),
            Some("amount"),
        ));
    }
    Ok((amount, currency))
}

/// Test-mode payment methods: brand, last4, the decline code (None: succeeds) and whether
/// it needs authentication.
fn card(token: &str) -> Option<(&'static str, &'static str, Option<&'static str>, bool)> {
    Some(match token {
        "pm_card_visa" => ("visa", "4242", None, false),
        "pm_card_mastercard" => ("mastercard", "4444", None, false),
        "pm_card_chargeDeclined" => ("visa", "0002", Some("generic_decline"), false),
        "pm_card_chargeDeclinedInsufficientFunds" => {
            ("visa", "9995", Some("insufficient_funds"), false)
        }
        "pm_card_authenticationRequired" => ("visa", "3184", None, true),
        _ => return None,
    })
}

fn error(status: u16, kind: &str, code: &str, message: &str, param: Option<&str>) -> (u16, Value) {
    (
        status,
        json!({"error": {"type": kind, "code": code, "message": message, "param": param}}),
    )
}

fn invalid(code: &str, message: &str, param: Option<&str>) -> (u16, Value) {
    error(400, "invalid_request_error", code, message, param)
}

fn missing(what: &str, id: &str) -> (u16, Value) {
    error(
        404,
        "invalid_request_error",
        "resource_missing",
        &format!("No such {what}: '{id}'"),
        Some("id"),
    )
}

type Answer = (u16, Value);

impl FakeStripe {
    /// Starts the fake on a free port, on a runtime of its own.
    pub fn start() -> Running {
        let fake = FakeStripe::default();
        let app = Router::new().fallback(handle).with_state(fake.clone());
        let addr = crate::serve_in_background(app);
        fake.inner.lock().unwrap().base = format!("http://{addr}");
        Running {
            base: format!("http://{addr}"),
            fake,
        }
    }

    /// A fake whose port stays its own while it is switched off and on ([`Switch`]): off,
    /// connections are refused (Stripe unreachable). It starts on.
    pub fn start_switched() -> Switch {
        let port = crate::HeldPort::new();
        let base = format!("http://{}", port.addr());
        let fake = FakeStripe::default();
        fake.inner.lock().unwrap().base = base.clone();
        let mut switch = Switch {
            base,
            fake,
            port,
            server: None,
        };
        switch.on();
        switch
    }

    /// How every request is treated from now on.
    pub fn set_mode(&self, mode: Mode) {
        self.inner.lock().unwrap().mode = mode;
    }

    /// The charges made: every PaymentIntent that received money, once each.
    pub fn charges(&self) -> Vec<Value> {
        self.inner
            .lock()
            .unwrap()
            .intents
            .values()
            .filter(|pi| pi["amount_received"].as_i64().unwrap_or(0) > 0)
            .cloned()
            .collect()
    }

    /// The next requests get these answers instead, in order.
    pub fn chaos(&self, plan: impl IntoIterator<Item = Chaos>) {
        self.inner.lock().unwrap().chaos.extend(plan);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }

    pub fn clear_seen(&self) {
        self.inner.lock().unwrap().seen.clear();
    }
}

async fn handle(
    State(fake): State<FakeStripe>,
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
    let raw_form = if method == Method::GET || method == Method::DELETE {
        uri.query().unwrap_or_default().to_owned()
    } else {
        String::from_utf8_lossy(&body).into_owned()
    };
    // Stripe refuses a body it cannot parse; it is not read as an empty form.
    let form = match Form::decode(&raw_form) {
        Ok(f) => f,
        Err(e) => {
            let (s, body) = invalid(
                "",
                &format!("Invalid request: the request body could not be parsed as application/x-www-form-urlencoded ({e})."),
                None,
            );
            return (StatusCode::from_u16(s).unwrap(), axum::Json(body)).into_response();
        }
    };
    let key = header("idempotency-key");
    let (chaos, mode, busy) = {
        let mut i = fake.inner.lock().unwrap();
        i.seen.push(Seen {
            method: method.to_string(),
            path: uri.path().to_owned(),
            idempotency_key: key.clone(),
            stripe_version: header("stripe-version"),
            form: form.pairs().to_vec(),
            traceparent: header("traceparent"),
        });
        let busy = match (&key, method == Method::POST) {
            (Some(k), true) => !i.in_flight.insert(k.clone()),
            _ => false,
        };
        (i.chaos.pop_front(), i.mode.clone(), busy)
    };
    if busy {
        // Stripe: the same key while its first request is still being served.
        let k = key.unwrap_or_default();
        let (s, body) = error(409, "idempotency_error", "", &format!("There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): {k}. Please try again later."), None);
        return (StatusCode::from_u16(s).unwrap(), axum::Json(body)).into_response();
    }
    let _in_flight = key
        .clone()
        .filter(|_| method == Method::POST)
        .map(|key| InFlight {
            fake: fake.clone(),
            key,
        });
    if let Mode::FailBeforeApplying(status) = mode {
        let (s, body) = error(
            status,
            "api_error",
            "",
            "Something went wrong on Stripe's end.",
            None,
        );
        return (StatusCode::from_u16(s).unwrap(), axum::Json(body)).into_response();
    }
    match chaos {
        Some(Chaos::Drop) => panic!("fake stripe: dropping the connection as told"),
        Some(Chaos::Slow(d)) => tokio::time::sleep(d).await,
        Some(Chaos::AppliedThenHeld(_)) | None => {}
        Some(Chaos::Status(status, should_retry)) => {
            let (s, body) = if status == 429 {
                error(
                    429,
                    "invalid_request_error",
                    "rate_limit",
                    "Too many requests",
                    None,
                )
            } else {
                error(
                    status,
                    "api_error",
                    "",
                    "Something went wrong on Stripe's end.",
                    None,
                )
            };
            let mut r = (StatusCode::from_u16(s).unwrap(), axum::Json(body)).into_response();
            if let Some(b) = should_retry {
                r.headers_mut()
                    .insert("stripe-should-retry", b.to_string().parse().unwrap());
            }
            return r;
        }
    }
    let (status, value, replayed) =
        answer(&fake, &method, uri.path(), &headers, &raw_form, &form, key);
    if let Some(Chaos::AppliedThenHeld(d)) = chaos {
        tokio::time::sleep(d).await;
    }
    match mode {
        Mode::ApplyThenHang(d) => tokio::time::sleep(d).await,
        Mode::ApplyThenDrop => panic!("fake stripe: applied, dropping the answer as told"),
        Mode::Normal | Mode::FailBeforeApplying(_) => {}
    }
    let mut r = (StatusCode::from_u16(status).unwrap(), axum::Json(value)).into_response();
    if replayed {
        r.headers_mut()
            .insert("idempotent-replayed", "true".parse().unwrap());
    }
    r
}

fn answer(
    fake: &FakeStripe,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    raw_form: &str,
    form: &Form,
    key: Option<String>,
) -> (u16, Value, bool) {
    if let (&Method::GET, Some(pi)) = (method, path.strip_prefix("/fake-3ds/")) {
        // The buyer's browser on the bank's page: no API key, and it completes the payment.
        let mut inner = fake.inner.lock().unwrap();
        let (s, v) = authenticate(&mut inner, pi);
        return (s, v, false);
    }
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {API_KEY}")) {
        let (s, v) = error(
            401,
            "invalid_request_error",
            "",
            "Invalid API Key provided: sk_test_****",
            None,
        );
        return (s, v, false);
    }
    // (A GET carries no body: what its Content-Type says does not matter.)
    let json_body = *method == Method::POST
        && headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.contains("json"));
    if json_body {
        let (s, v) = invalid("", "Invalid request: request bodies must be form encoded (application/x-www-form-urlencoded), not JSON.", None);
        return (s, v, false);
    }
    let mut inner = fake.inner.lock().unwrap();
    if *method == Method::POST {
        if let Some(k) = &key {
            let fingerprint = format!("{path}?{raw_form}");
            if let Some((seen, status, body)) = inner.idempotency.get(k) {
                if *seen == fingerprint {
                    return (*status, body.clone(), true);
                }
                let (s, v) = error(400, "idempotency_error", "", &format!("Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{k}' if you meant to execute a different request."), None);
                return (s, v, false);
            }
            let (status, body) = route(&mut inner, method, path, form);
            inner
                .idempotency
                .insert(k.clone(), (fingerprint, status, body.clone()));
            return (status, body, false);
        }
    }
    let (status, body) = route(&mut inner, method, path, form);
    (status, body, false)
}

/// Refuses unknown top-level parameters and missing required ones, as Stripe does.
fn check(form: &Form, allowed: &[&str], required: &[&str]) -> Result<(), Answer> {
    for (k, _) in form.pairs() {
        let top = k.split('[').next().unwrap_or(k);
        if !allowed.contains(&top) {
            return Err(invalid(
                "parameter_unknown",
                &format!("Received unknown parameter: {top}"),
                Some(top),
            ));
        }
    }
    for r in required {
        if !form
            .pairs()
            .iter()
            .any(|(k, _)| k == r || k.starts_with(&format!("{r}[")))
        {
            return Err(invalid(
                "parameter_missing",
                &format!("Missing required param: {r}."),
                Some(r),
            ));
        }
    }
    Ok(())
}

fn metadata(form: &Form) -> Value {
    let m: serde_json::Map<String, Value> = form
        .pairs()
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("metadata[")
                .and_then(|r| r.strip_suffix(']'))
                .map(|name| (name.to_owned(), Value::String(v.clone())))
        })
        .collect();
    Value::Object(m)
}

fn route(i: &mut Inner, method: &Method, path: &str, form: &Form) -> Answer {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let r = match (method.as_str(), parts.as_slice()) {
        ("POST", ["v1", "customers"]) => create_customer(i, form),
        ("GET", ["v1", "customers", id]) => i
            .customers
            .get(*id)
            .cloned()
            .ok_or_else(|| missing("customer", id)),
        ("POST", ["v1", "customers", id]) => update_customer(i, id, form),
        ("POST", ["v1", "payment_methods", pm, "attach"]) => attach(i, pm, form),
        ("POST", ["v1", "payment_methods", pm, "detach"]) => detach(i, pm, form),
        ("DELETE", ["v1", "customers", id]) => i
            .customers
            .remove(*id)
            .map(|_| json!({"id": id, "object": "customer", "deleted": true}))
            .ok_or_else(|| missing("customer", id)),
        ("GET", ["v1", "payment_methods"]) => list_methods(i, form),
        ("POST", ["v1", "payment_intents"]) => create_intent(i, form),
        ("GET", ["v1", "payment_intents", id]) => i
            .intents
            .get(*id)
            .cloned()
            .ok_or_else(|| missing("payment_intent", id)),
        ("POST", ["v1", "payment_intents", id, "confirm"]) => confirm_intent(i, id, form),
        ("POST", ["v1", "payment_intents", id, "cancel"]) => cancel_intent(i, id),
        ("POST", ["v1", "payment_intents", id, "capture"]) => capture_intent(i, id, form),
        ("POST", ["v1", "refunds"]) => refund(i, form),
        ("GET", ["v1", "refunds", id]) => i
            .refunds
            .get(*id)
            .cloned()
            .ok_or_else(|| missing("refund", id)),
        ("POST", ["v1", "subscriptions"]) => create_subscription(i, form),
        ("GET", ["v1", "subscriptions", id]) => i
            .subscriptions
            .get(*id)
            .cloned()
            .ok_or_else(|| missing("subscription", id)),
        ("POST", ["v1", "subscriptions", id]) => update_subscription(i, id, form),
        ("DELETE", ["v1", "subscriptions", id]) => cancel_subscription(i, id),
        ("GET", ["v1", "invoices", id]) => i
            .invoices
            .iter()
            .find(|v| v["id"] == *id)
            .cloned()
            .ok_or_else(|| missing("invoice", id)),
        ("GET", ["v1", "invoices"]) => list_invoices(i, form),
        _ => Err(error(
            404,
            "invalid_request_error",
            "",
            &format!("Unrecognized request URL ({method} {path})."),
            None,
        )),
    };
    match r {
        Ok(v) => (200, v),
        Err(e) => e,
    }
}

fn next(i: &mut Inner, prefix: &str) -> String {
    i.seq += 1;
    format!("{prefix}_fake{:08}", i.seq)
}

fn create_customer(i: &mut Inner, f: &Form) -> Result<Value, Answer> {
    check(
        f,
        &["email", "name", "metadata", "description", "expand"],
        &[],
    )?;
    let id = next(i, "cus");
    let c = json!({"id": id, "object": "customer", "email": f.get("email"), "name": f.get("name"),
        "metadata": metadata(f), "invoice_settings": {"default_payment_method": null}, "created": NOW});
    i.customers.insert(id, c.clone());
    Ok(c)
}

fn update_customer(i: &mut Inner, id: &str, f: &Form) -> Result<Value, Answer> {
    check(
        f,
        &["email", "name", "metadata", "invoice_settings", "expand"],
        &[],
    )?;
    if let Some(pm) = f.get("invoice_settings[default_payment_method]") {
        let owned = i.methods.get(pm).is_some_and(|m| m["customer"] == id);
        if !owned {
            return Err(invalid(
                "resource_missing",
                &format!("No such PaymentMethod: '{pm}'"),
                Some("invoice_settings[default_payment_method]"),
            ));
        }
    }
    let meta = metadata(f);
    let c = i
        .customers
        .get_mut(id)
        .ok_or_else(|| missing("customer", id))?;
    if let Some(e) = f.get("email") {
        c["email"] = e.into();
    }
    if let Some(n) = f.get("name") {
        c["name"] = n.into();
    }
    for (k, v) in meta.as_object().into_iter().flatten() {
        c["metadata"][k] = v.clone();
    }
    if let Some(pm) = f.get("invoice_settings[default_payment_method]") {
        c["invoice_settings"]["default_payment_method"] = pm.into();
    }
    Ok(c.clone())
}

fn attach(i: &mut Inner, token: &str, f: &Form) -> Result<Value, Answer> {
    check(f, &["customer", "expand"], &["customer"])?;
    let customer = f.get("customer").unwrap_or_default().to_owned();
    if !i.customers.contains_key(&customer) {
        return Err(missing("customer", &customer));
    }
    let Some((brand, last4, _, _)) = card(token) else {
        return Err(missing("payment_method", token));
    };
    let id = next(i, "pm");
    let pm = json!({"id": id, "object": "payment_method", "type": "card", "customer": customer,
        "card": {"brand": brand, "last4": last4, "exp_month": 12, "exp_year": 2034}, "token": token});
    i.methods.insert(id, pm.clone());
    Ok(pm)
}

fn detach(i: &mut Inner, pm: &str, f: &Form) -> Result<Value, Answer> {
    check(f, &["expand"], &[])?;
    let m = i
        .methods
        .get_mut(pm)
        .ok_or_else(|| missing("payment_method", pm))?;
    if m["customer"].is_null() {
        return Err(invalid(
            "payment_method_unexpected_state",
            "The payment method you provided is not attached to a customer so detachment is impossible.",
            None,
        ));
    }
    m["customer"] = Value::Null;
    Ok(m.clone())
}

fn list_methods(i: &mut Inner, f: &Form) -> Result<Value, Answer> {
    check(f, &["customer", "type", "limit"], &["customer"])?;
    let c = f.get("customer").unwrap_or_default();
    let data: Vec<Value> = i
        .methods
        .values()
        .filter(|m| m["customer"] == c)
        .cloned()
        .collect();
    Ok(json!({"object": "list", "data": data, "has_more": false, "url": "/v1/payment_methods"}))
}

/// The card behind a payment method id or a test token.
fn behaviour(i: &Inner, pm: &str) -> Option<(Option<&'static str>, bool)> {
    let token = i
        .methods
        .get(pm)
        .and_then(|m| m["token"].as_str().map(str::to_owned))
        .unwrap_or_else(|| pm.to_owned());
    card(&token).map(|(_, _, decline, auth)| (decline, auth))
}

/// Whether `pm` may pay for `customer` (None: an intent without one). A test token
/// (`pm_card_visa`) makes a new card each time and pays for anyone; a saved payment method
/// only for the customer it is attached to, and a detached one never again.
fn usable(i: &Inner, pm: &str, customer: Option<&str>) -> Result<(), Answer> {
    let Some(saved) = i.methods.get(pm) else {
        return Ok(());
    };
    let owner = saved["customer"].as_str();
    match (owner, customer) {
        (None, _) => Err(invalid(
            "",
            &format!("The provided PaymentMethod ({pm}) was previously used with a PaymentIntent without Customer attachment, shared with a connected account without Customer attachment, or was detached from a Customer. It may not be used again. To use a PaymentMethod multiple times, you must attach it to a Customer first."),
            Some("payment_method"),
        )),
        (Some(o), Some(c)) if o == c => Ok(()),
        (Some(_), Some(c)) => Err(invalid(
            "",
            &format!("The customer {c} does not have a payment method with the ID {pm}. The payment method must be attached to the customer."),
            Some("payment_method"),
        )),
        (Some(_), None) => Err(invalid(
            "",
            &format!("The PaymentMethod provided ({pm}) belongs to a Customer, but you did not provide the Customer. Please include the Customer in the `customer` parameter on the PaymentIntent."),
            Some("payment_method"),
        )),
    }
}

/// Tries to pay intent `id` with `pm`; a decline is Stripe's 402 with the intent.
fn pay(i: &mut Inner, id: &str, pm: &str) -> Result<Value, Answer> {
    let Some((decline, needs_auth)) = behaviour(i, pm) else {
        return Err(missing("payment_method", pm));
    };
    let customer = i
        .intents
        .get(id)
        .and_then(|pi| pi["customer"].as_str().map(str::to_owned));
    usable(i, pm, customer.as_deref())?;
    let pi = i
        .intents
        .get_mut(id)
        .ok_or_else(|| missing("payment_intent", id))?;
    pi["payment_method"] = pm.into();
    if let Some(code) = decline {
        pi["status"] = "requires_payment_method".into();
        pi["last_payment_error"] = json!({"type": "card_error", "code": "card_declined", "decline_code": code, "message": "Your card was declined."});
        let body = json!({"error": {"type": "card_error", "code": "card_declined", "decline_code": code,
            "message": "Your card was declined.", "param": null, "payment_intent": pi.clone()}});
        return Err((402, body));
    }
    pi["last_payment_error"] = Value::Null;
    if needs_auth && pi["authenticated"] != true {
        pi["status"] = "requires_action".into();
        pi["next_action"] = match pi["return_url"].as_str() {
            Some(return_url) => json!({"type": "redirect_to_url", "redirect_to_url": {
                "url": format!("{}/fake-3ds/{id}", i_base(pi)), "return_url": return_url}}),
            None => {
                json!({"type": "use_stripe_sdk", "use_stripe_sdk": {"type": "three_d_secure_redirect"}})
            }
        };
        return Ok(pi.clone());
    }
    authorized(pi, id);
    Ok(pi.clone())
}

/// Where the fake's own pages are (the base URL the plugin called, kept on the intent).
fn i_base(pi: &Value) -> String {
    pi["fake_base"]
        .as_str()
        .unwrap_or("http://127.0.0.1")
        .to_owned()
}

/// The card went through: captured at once, or held for a manual capture.
fn authorized(pi: &mut Value, id: &str) {
    pi["next_action"] = Value::Null;
    let charge = json!({"id": format!("ch_{}", &id[3..]), "object": "charge", "amount_refunded": 0,
        "amount_captured": 0, "payment_intent": id});
    pi["latest_charge"] = charge;
    if pi["capture_method"] == "manual" {
        pi["status"] = "requires_capture".into();
        pi["amount_capturable"] = pi["amount"].clone();
    } else {
        pi["status"] = "succeeded".into();
        pi["amount_received"] = pi["amount"].clone();
        pi["latest_charge"]["amount_captured"] = pi["amount"].clone();
    }
}

/// The buyer completed 3-D Secure on the bank's page: the intent goes on by itself.
fn authenticate(i: &mut Inner, id: &str) -> Answer {
    let Some(pi) = i.intents.get_mut(id) else {
        return missing("payment_intent", id);
    };
    if pi["status"] != "requires_action" {
        return (200, json!({"page": "nothing to authenticate"}));
    }
    pi["authenticated"] = true.into();
    authorized(pi, id);
    (
        200,
        json!({"page": "authenticated", "return_url": pi["return_url"]}),
    )
}

fn capture_intent(i: &mut Inner, id: &str, f: &Form) -> Result<Value, Answer> {
    check(
        f,
        &["amount_to_capture", "expand", "final_capture", "metadata"],
        &[],
    )?;
    let pi = i
        .intents
        .get_mut(id)
        .ok_or_else(|| missing("payment_intent", id))?;
    if pi["status"] != "requires_capture" {
        return Err(invalid(
            "payment_intent_unexpected_state",
            &format!(
                "This PaymentIntent could not be captured because it has a status of {}. Only a PaymentIntent with one of the following statuses may be captured: requires_capture.",
                pi["status"].as_str().unwrap_or("")
            ),
            None,
        ));
    }
    let capturable = pi["amount_capturable"].as_i64().unwrap_or(0);
    let amount = match f.get("amount_to_capture") {
        Some(a) => a.parse::<i64>().map_err(|_| {
            invalid(
                "parameter_invalid_integer",
                "Invalid integer: amount_to_capture",
                Some("amount_to_capture"),
            )
        })?,
        None => capturable,
    };
    if amount <= 0 || amount > capturable {
        return Err(invalid(
            "amount_too_large",
            &format!("The amount to capture ({amount}) is greater than the amount capturable ({capturable})."),
            Some("amount_to_capture"),
        ));
    }
    pi["status"] = "succeeded".into();
    pi["amount_received"] = amount.into();
    pi["amount_capturable"] = 0.into();
    pi["latest_charge"]["amount_captured"] = amount.into();
    Ok(pi.clone())
}

fn create_intent(i: &mut Inner, f: &Form) -> Result<Value, Answer> {
    check(
        f,
        &[
            "amount",
            "currency",
            "customer",
            "payment_method",
            "confirm",
            "automatic_payment_methods",
            "description",
            "metadata",
            "expand",
            "off_session",
            "capture_method",
            "return_url",
        ],
        &["amount", "currency"],
    )?;
    let capture = f.get("capture_method").unwrap_or("automatic_async");
    if !matches!(capture, "automatic" | "automatic_async" | "manual") {
        return Err(invalid(
            "parameter_invalid_string",
            "Invalid capture_method: must be one of automatic, automatic_async, or manual",
            Some("capture_method"),
        ));
    }
    if f.get("return_url").is_some() && f.get("confirm") != Some("true") {
        return Err(invalid(
            "parameter_invalid_string",
            "You can only pass in return_url if confirm is true.",
            Some("return_url"),
        ));
    }
    let (amount, currency) = check_charge(
        f.get("amount").unwrap_or_default(),
        f.get("currency").unwrap_or_default(),
    )?;
    if let Some(c) = f.get("customer") {
        if !i.customers.contains_key(c) {
            return Err(missing("customer", c));
        }
    }
    let id = next(i, "pi");
    let pi = json!({"id": id, "object": "payment_intent", "amount": amount, "currency": currency,
        "customer": f.get("customer"), "status": "requires_payment_method", "amount_received": 0,
        "amount_capturable": 0, "capture_method": capture, "next_action": null,
        "return_url": f.get("return_url"), "fake_base": i.base,
        "client_secret": format!("{id}_secret_fake"), "payment_method": null, "last_payment_error": null,
        "latest_charge": null, "description": f.get("description"), "metadata": metadata(f), "created": NOW});
    i.intents.insert(id.clone(), pi.clone());
    match (f.get("confirm"), f.get("payment_method")) {
        (Some("true"), Some(pm)) => pay(i, &id, pm),
        (_, Some(pm)) => {
            let pi = i
                .intents
                .get_mut(&id)
                .ok_or_else(|| missing("payment_intent", &id))?;
            pi["payment_method"] = pm.into();
            pi["status"] = "requires_confirmation".into();
            Ok(pi.clone())
        }
        _ => Ok(pi),
    }
}

fn confirm_intent(i: &mut Inner, id: &str, f: &Form) -> Result<Value, Answer> {
    check(
        f,
        &["payment_method", "expand", "return_url", "off_session"],
        &[],
    )?;
    let pi = i
        .intents
        .get(id)
        .cloned()
        .ok_or_else(|| missing("payment_intent", id))?;
    if !matches!(
        pi["status"].as_str(),
        Some("requires_payment_method" | "requires_confirmation")
    ) {
        return Err(invalid(
            "payment_intent_unexpected_state",
            &format!(
                "You cannot confirm this PaymentIntent because it has a status of {}.",
                pi["status"].as_str().unwrap_or("")
            ),
            None,
        ));
    }
    if let Some(url) = f.get("return_url") {
        if let Some(p) = i.intents.get_mut(id) {
            p["return_url"] = url.into();
        }
    }
    let pm = f
        .get("payment_method")
        .map(str::to_owned)
        .or_else(|| pi["payment_method"].as_str().map(str::to_owned));
    let Some(pm) = pm else {
        return Err(invalid(
            "payment_intent_unexpected_state",
            "You cannot confirm this PaymentIntent because it's missing a payment method.",
            Some("payment_method"),
        ));
    };
    pay(i, id, &pm)
}

fn cancel_intent(i: &mut Inner, id: &str) -> Result<Value, Answer> {
    let pi = i
        .intents
        .get_mut(id)
        .ok_or_else(|| missing("payment_intent", id))?;
    if pi["status"] == "succeeded" || pi["status"] == "canceled" {
        return Err(invalid(
            "payment_intent_unexpected_state",
            &format!(
                "You cannot cancel this PaymentIntent because it has a status of {}.",
                pi["status"].as_str().unwrap_or("")
            ),
            None,
        ));
    }
    pi["status"] = "canceled".into();
    Ok(pi.clone())
}

fn refund(i: &mut Inner, f: &Form) -> Result<Value, Answer> {
    check(
        f,
        &[
            "payment_intent",
            "charge",
            "amount",
            "reason",
            "metadata",
            "expand",
        ],
        &["payment_intent"],
    )?;
    let id = f.get("payment_intent").unwrap_or_default().to_owned();
    let re = next(i, "re");
    let pi = i
        .intents
        .get_mut(&id)
        .ok_or_else(|| missing("payment_intent", &id))?;
    if pi["status"] != "succeeded" {
        return Err(invalid(
            "charge_not_refundable",
            "This PaymentIntent has no successful charge to refund.",
            Some("payment_intent"),
        ));
    }
    let refunded = pi["latest_charge"]["amount_refunded"].as_i64().unwrap_or(0);
    let remaining = pi["amount_received"].as_i64().unwrap_or(0) - refunded;
    let amount = match f.get("amount") {
        Some(a) => a.parse::<i64>().ok().filter(|a| *a > 0).ok_or_else(|| {
            invalid(
                "parameter_invalid_integer",
                "Invalid positive integer",
                Some("amount"),
            )
        })?,
        None => remaining,
    };
    if remaining <= 0 {
        return Err(invalid(
            "charge_already_refunded",
            "Charge has already been refunded.",
            None,
        ));
    }
    if amount > remaining {
        return Err(invalid("amount_too_large", &format!("Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})"), Some("amount")));
    }
    pi["latest_charge"]["amount_refunded"] = (refunded + amount).into();
    let r = json!({"id": re, "object": "refund", "amount": amount, "currency": pi["currency"],
        "status": "succeeded", "payment_intent": id, "reason": f.get("reason"), "created": NOW});
    i.refunds.insert(re, r.clone());
    Ok(r)
}

fn create_subscription(i: &mut Inner, f: &Form) -> Result<Value, Answer> {
    check(
        f,
        &[
            "customer",
            "items",
            "trial_period_days",
            "payment_behavior",
            "metadata",
            "expand",
            "default_payment_method",
        ],
        &["customer", "items"],
    )?;
    let customer = f.get("customer").unwrap_or_default().to_owned();
    let c = i
        .customers
        .get(&customer)
        .cloned()
        .ok_or_else(|| missing("customer", &customer))?;
    let price_id = f.get("items[0][price]").unwrap_or_default().to_owned();
    let (amount, currency) = price(&price_id).ok_or_else(|| {
        invalid(
            "resource_missing",
            &format!("No such price: '{price_id}'"),
            Some("items[0][price]"),
        )
    })?;
    let trial: i64 = f
        .get("trial_period_days")
        .and_then(|d| d.parse().ok())
        .unwrap_or(0);
    let id = next(i, "sub");
    let si = next(i, "si");
    let mut sub = json!({"id": id, "object": "subscription", "customer": customer, "cancel_at_period_end": false,
        "current_period_start": NOW, "current_period_end": NOW + if trial > 0 { trial * 86_400 } else { PERIOD },
        "trial_end": if trial > 0 { json!(NOW + trial * 86_400) } else { Value::Null }, "canceled_at": null,
        "items": {"object": "list", "data": [{"id": si, "price": {"id": price_id}}], "has_more": false},
        "metadata": metadata(f), "latest_invoice": null,
        "status": if trial > 0 { "trialing" } else { "incomplete" }});
    if trial == 0 {
        let inv_id = next(i, "in");
        let pi_id = next(i, "pi");
        let pi = json!({"id": pi_id, "object": "payment_intent", "amount": amount, "currency": currency, "customer": customer,
            "status": "requires_payment_method", "client_secret": format!("{pi_id}_secret_fake"), "amount_received": 0,
            "payment_method": null, "last_payment_error": null, "latest_charge": null, "metadata": {}, "created": NOW});
        i.intents.insert(pi_id.clone(), pi);
        let default = c["invoice_settings"]["default_payment_method"]
            .as_str()
            .map(str::to_owned);
        let paid = match default {
            Some(pm) => pay(i, &pi_id, &pm).is_ok_and(|p| p["status"] == "succeeded"),
            None => false,
        };
        let invoice = json!({"id": inv_id, "object": "invoice", "customer": customer, "subscription": id,
            "payment_intent": pi_id, "amount_due": amount, "amount_paid": if paid { amount } else { 0 },
            "currency": currency, "status": if paid { "paid" } else { "open" },
            "invoice_pdf": format!("https://pay.stripe.fake/invoice/{inv_id}/pdf"), "created": NOW});
        i.invoices.push(invoice.clone());
        sub["status"] = if paid { "active" } else { "incomplete" }.into();
        let mut expanded = invoice;
        expanded["payment_intent"] = i.intents.get(&pi_id).cloned().unwrap_or(Value::Null);
        sub["latest_invoice"] = expanded;
    }
    i.subscriptions.insert(id, sub.clone());
    Ok(sub)
}

fn update_subscription(i: &mut Inner, id: &str, f: &Form) -> Result<Value, Answer> {
    check(
        f,
        &[
            "items",
            "cancel_at_period_end",
            "proration_behavior",
            "metadata",
            "expand",
        ],
        &[],
    )?;
    let sub = i
        .subscriptions
        .get_mut(id)
        .ok_or_else(|| missing("subscription", id))?;
    if sub["status"] == "canceled" {
        return Err(invalid(
            "",
            "A canceled subscription can only update its cancellation_details and metadata.",
            None,
        ));
    }
    if let Some(p) = f.get("items[0][price]") {
        if price(p).is_none() {
            return Err(invalid(
                "resource_missing",
                &format!("No such price: '{p}'"),
                Some("items[0][price]"),
            ));
        }
        if f.get("items[0][id]") != sub["items"]["data"][0]["id"].as_str() {
            return Err(invalid(
                "",
                "The subscription item id does not belong to this subscription.",
                Some("items[0][id]"),
            ));
        }
        sub["items"]["data"][0]["price"]["id"] = p.into();
    }
    if let Some(c) = f.get("cancel_at_period_end") {
        sub["cancel_at_period_end"] = (c == "true").into();
    }
    Ok(sub.clone())
}

fn cancel_subscription(i: &mut Inner, id: &str) -> Result<Value, Answer> {
    let sub = i
        .subscriptions
        .get_mut(id)
        .ok_or_else(|| missing("subscription", id))?;
    sub["status"] = "canceled".into();
    sub["cancel_at_period_end"] = false.into();
    sub["canceled_at"] = NOW.into();
    Ok(sub.clone())
}

fn list_invoices(i: &mut Inner, f: &Form) -> Result<Value, Answer> {
    check(
        f,
        &["customer", "limit", "starting_after", "subscription"],
        &[],
    )?;
    let limit: usize = f.get("limit").and_then(|l| l.parse().ok()).unwrap_or(10);
    let mut all: Vec<&Value> = i
        .invoices
        .iter()
        .filter(|v| f.get("customer").is_none_or(|c| v["customer"] == c))
        .collect();
    all.reverse();
    if let Some(after) = f.get("starting_after") {
        let pos = all
            .iter()
            .position(|v| v["id"] == after)
            .ok_or_else(|| missing("invoice", after))?;
        all.drain(..=pos);
    }
    let has_more = all.len() > limit;
    let data: Vec<Value> = all.into_iter().take(limit).cloned().collect();
    Ok(json!({"object": "list", "data": data, "has_more": has_more, "url": "/v1/invoices"}))
}
