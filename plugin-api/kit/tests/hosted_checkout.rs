//! The in-process conformance suite on a provider that calls HTTP and sends the buyer to a
//! hosted checkout page, written as an author would with the kit alone: the fake provider
//! is a closure behind `FakeHost::on_http`, the buyer who pays on the checkout page is
//! `FakeHost::on_visit`. The suite reaches the redirect, pays through it, and refunds the
//! payment it paid that way. Amounts travel as decimal strings (`money`), errors through
//! `StatusErrors`.

use payhost_plugin_kit::conformance::{in_process, run, Outcome};
use payhost_plugin_kit::money::{from_decimal, to_decimal};
use payhost_plugin_kit::prelude::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type R<T> = Result<T, PluginError>;

/// The plugin's configuration.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The provider's API.
    api_base: String,
}

struct Hosted {
    http: HttpClient,
    errors: StatusErrors,
}

impl Plugin for Hosted {
    type Config = Config;

    fn manifest() -> Manifest {
        use capabilities::{PAYMENTS, REDIRECTS, REFUNDS};
        Manifest::new("hosted", "0.1.0")
            .capabilities(&[PAYMENTS, REDIRECTS, REFUNDS])
            .fixtures(Fixtures {
                approve_redirect_by_visiting: true,
                config: [("api_base".into(), "https://api.hosted.test/v1".into())].into(),
                ..Fixtures::default()
            })
    }

    fn new(config: Config, host: Host) -> R<Self> {
        Ok(Self {
            http: HttpClient::new(host, &config.api_base).idempotency_header("idempotency-key"),
            errors: StatusErrors::new("Hosted", "api_key").on(422, codes::CONFLICT, false),
        })
    }
}

impl Hosted {
    fn answer(&self, r: payhost_plugin_kit::Response) -> R<Value> {
        if r.is_success() {
            return r.json();
        }
        let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
        Err(self.errors.error(r.status, body["detail"].as_str()))
    }

    fn payment(&self, v: &Value) -> R<Payment> {
        let currency = Currency::parse(v["amount"]["currency"].as_str().unwrap_or_default())
            .map_err(|e| PluginError::new(codes::INTERNAL, e.to_string()))?;
        let money =
            |field: &str| from_decimal(v[field]["value"].as_str().unwrap_or("0"), &currency);
        let status = match v["status"].as_str() {
            Some("open") => PaymentStatus::RequiresAction,
            Some("paid") => PaymentStatus::Succeeded,
            Some("canceled") => PaymentStatus::Canceled,
            other => PaymentStatus::Unknown(other.unwrap_or_default().into()),
        };
        let mut p = Payment::new(
            v["id"].as_str().unwrap_or_default(),
            money("amount")?,
            status.clone(),
        );
        if status == PaymentStatus::RequiresAction {
            p.next_action = Some(NextAction::RedirectToUrl {
                url: v["checkout"].as_str().unwrap_or_default().into(),
                return_url: v["redirect_url"].as_str().map(str::to_owned),
            });
        }
        if status == PaymentStatus::Succeeded {
            p.amount_received = p.amount.amount;
        }
        p.amount_refunded = money("amount_refunded")?.amount;
        Ok(p)
    }
}

impl Provider for Hosted {
    fn create_payment(&self, ctx: &CallCtx, req: NewPayment) -> R<Payment> {
        let body = json!({
            "amount": {"currency": req.amount.currency.as_str(), "value": to_decimal(&req.amount)?},
            "redirect_url": req.return_url,
        });
        let v = self.answer(self.http.post("/payments").json(&body).ctx(ctx).send()?)?;
        self.payment(&v)
    }

    fn get_payment(&self, ctx: &CallCtx, req: ObjectRef) -> R<Payment> {
        let id = payhost_plugin_kit::path_id(&req.id, "id", "Hosted", 64)?;
        let v = self.answer(self.http.get(&format!("/payments/{id}")).ctx(ctx).send()?)?;
        self.payment(&v)
    }

    /// A hosted checkout has nothing to confirm: the buyer pays on the page.
    fn confirm_payment(&self, ctx: &CallCtx, req: ConfirmPayment) -> R<Payment> {
        let p = self.get_payment(ctx, ObjectRef::new(&req.id))?;
        match p.status {
            PaymentStatus::Succeeded => Ok(p),
            _ => Err(PluginError::conflict(
                "the buyer has not paid on the checkout page",
            )),
        }
    }

    fn cancel_payment(&self, ctx: &CallCtx, req: ObjectRef) -> R<Payment> {
        let id = payhost_plugin_kit::path_id(&req.id, "id", "Hosted", 64)?;
        let v = self.answer(
            self.http
                .delete(&format!("/payments/{id}"))
                .ctx(ctx)
                .send()?,
        )?;
        self.payment(&v)
    }

    fn create_refund(&self, ctx: &CallCtx, req: NewRefund) -> R<Refund> {
        let paid = self.get_payment(ctx, ObjectRef::new(&req.payment_id))?;
        let amount = Money::new(
            req.amount
                .unwrap_or(paid.amount_received - paid.amount_refunded),
            paid.amount.currency.clone(),
        );
        let path = format!("/payments/{}/refunds", paid.id);
        let body = json!({"amount": {"currency": amount.currency.as_str(), "value": to_decimal(&amount)?}});
        let v = self.answer(self.http.post(&path).json(&body).ctx(ctx).send()?)?;
        let mut r = refund(&v, &paid.id)?;
        (r.reason, r.metadata) = (req.reason, req.metadata);
        Ok(r)
    }

    fn get_refund(&self, ctx: &CallCtx, req: RefundRef) -> R<Refund> {
        let payment = payhost_plugin_kit::path_id(&req.payment_id, "payment_id", "Hosted", 64)?;
        let id = payhost_plugin_kit::path_id(&req.id, "id", "Hosted", 64)?;
        let path = format!("/payments/{payment}/refunds/{id}");
        refund(
            &self.answer(self.http.get(&path).ctx(ctx).send()?)?,
            &req.payment_id,
        )
    }
}

/// A refund as the provider answers it.
fn refund(v: &Value, payment: &str) -> R<Refund> {
    let currency = Currency::parse(v["amount"]["currency"].as_str().unwrap_or_default())
        .map_err(|e| PluginError::new(codes::INTERNAL, e.to_string()))?;
    Ok(Refund {
        id: v["id"].as_str().unwrap_or_default().into(),
        payment_id: payment.into(),
        amount: from_decimal(v["amount"]["value"].as_str().unwrap_or("0"), &currency)?,
        status: match v["status"].as_str() {
            Some("refunded") => RefundStatus::Succeeded,
            _ => RefundStatus::Pending,
        },
        reason: None,
        created: 0,
        metadata: Metadata::new(),
    })
}

/// The provider: payments in minor units, answering with decimal strings as such APIs do.
#[derive(Default)]
struct FakeProvider {
    payments: HashMap<String, (i64, String, &'static str, i64)>,
    /// Refund ids and their answers.
    refunds: HashMap<String, Value>,
    next: u32,
}

impl FakeProvider {
    fn view(&self, id: &str) -> Value {
        let (amount, currency, status, refunded) = &self.payments[id];
        let dec = |minor: i64| format!("{}.{:02}", minor / 100, minor % 100);
        json!({
            "id": id, "status": status,
            "amount": {"currency": currency, "value": dec(*amount)},
            "amount_refunded": {"currency": currency, "value": dec(*refunded)},
            "checkout": format!("https://pay.hosted.test/checkout/{id}"),
        })
    }

    fn handle(&mut self, req: &HttpRequest) -> HttpResponse {
        let answer = |status: u16, body: Value| HttpResponse {
            status,
            headers: Headers::new().with("content-type", "application/json"),
            body: body.to_string().into(),
        };
        let body: Value = serde_json::from_slice(&req.body.0).unwrap_or_default();
        let path = req.url.trim_start_matches("https://api.hosted.test/v1");
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let cents = |v: &Value| {
            v["value"]
                .as_str()
                .and_then(|s| s.replace('.', "").parse::<i64>().ok())
                .unwrap_or(0)
        };
        match (req.method.as_str(), parts.as_slice()) {
            ("POST", ["payments"]) => {
                self.next += 1;
                let id = format!("pay_{}", self.next);
                let currency = body["amount"]["currency"]
                    .as_str()
                    .unwrap_or("eur")
                    .to_owned();
                self.payments
                    .insert(id.clone(), (cents(&body["amount"]), currency, "open", 0));
                answer(201, self.view(&id))
            }
            (method, ["payments", id, rest @ ..]) if self.payments.contains_key(*id) => {
                let id = (*id).to_owned();
                match (method, rest) {
                    ("GET", []) => answer(200, self.view(&id)),
                    ("DELETE", []) => {
                        let p = self.payments.get_mut(&id).unwrap();
                        if p.2 != "open" {
                            return answer(
                                422,
                                json!({"detail": "The payment cannot be canceled"}),
                            );
                        }
                        p.2 = "canceled";
                        answer(200, self.view(&id))
                    }
                    ("POST", ["refunds"]) => {
                        let p = self.payments.get_mut(&id).unwrap();
                        let want = cents(&body["amount"]);
                        if p.2 != "paid" || want <= 0 || want > p.0 - p.3 {
                            return answer(
                                422,
                                json!({"detail": "The amount is higher than the amount that can be refunded"}),
                            );
                        }
                        p.3 += want;
                        let refund = format!("re_{}_{}", id, p.3);
                        let r =
                            json!({"id": refund, "status": "pending", "amount": body["amount"]});
                        self.refunds.insert(refund, r.clone());
                        answer(201, r)
                    }
                    ("GET", ["refunds", refund]) => match self.refunds.get(*refund) {
                        Some(r) => answer(200, r.clone()),
                        None => answer(404, json!({"detail": "No refund exists with this id"})),
                    },
                    _ => answer(404, json!({"detail": "no such route"})),
                }
            }
            _ => answer(404, json!({"detail": "No payment exists with this id"})),
        }
    }
}

#[test]
fn the_suite_pays_through_the_checkout_page_and_refunds_what_it_paid() {
    let target = in_process::<Hosted>(None);
    let provider = Arc::new(Mutex::new(FakeProvider::default()));
    let api = provider.clone();
    target
        .host()
        .on_http(move |req| Ok(api.lock().unwrap().handle(req)));
    let buyer = provider.clone();
    target.host().on_visit(move |url| {
        let id = url
            .strip_prefix("https://pay.hosted.test/checkout/")
            .ok_or_else(|| format!("not a checkout page: {url}"))?;
        let mut fake = buyer.lock().unwrap();
        let p = fake.payments.get_mut(id).ok_or("no such payment")?;
        p.2 = "paid";
        Ok(())
    });

    let report = run(&target);
    report.assert_passed();
    let outcome = |name: &str| report.outcome(name).cloned();
    for reached in [
        "redirects.next_action",
        "redirects.confirm_before_approval_refused",
        "redirects.approve_then_confirm",
        "refunds.refused_above_remaining",
        "payments.cancel",
    ] {
        assert_eq!(
            outcome(reached),
            Some(Outcome::Pass),
            "{reached}:\n{report}"
        );
    }
    // The amounts went as decimal strings.
    let created = target.host().requests_to("POST", "/v1/payments");
    let body: Value = serde_json::from_slice(&created[0].body.0).unwrap();
    assert!(
        body["amount"]["value"].as_str().unwrap().contains('.'),
        "{body}"
    );
}

#[test]
fn without_a_buyer_the_redirect_is_reported_not_passed() {
    let target = in_process::<Hosted>(None);
    let provider = Arc::new(Mutex::new(FakeProvider::default()));
    target
        .host()
        .on_http(move |req| Ok(provider.lock().unwrap().handle(req)));
    let report = run(&target);
    match report.outcome("redirects.approve_then_confirm") {
        Some(Outcome::Fail(why)) => assert!(why.contains("on_visit"), "{why}"),
        other => panic!("approving without a buyer: {other:?}\n{report}"),
    }
}
