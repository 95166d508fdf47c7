//! The outbox worker: the work new domain events owe, done at least once and recorded when
//! done. Rows are written in the same unit as their event, so a crash between an event and
//! its handler loses nothing; a crash between the work and its record repeats it, which
//! every handler tolerates (an email file is written under the row's id; an application
//! webhook carries the event id for the receiver to deduplicate).
//!
//! Emails: a receipt for PaymentSucceeded, a notice for PaymentFailed and
//! InvoicePaymentFailed, a welcome for SubscriptionCreated, a final notice when dunning
//! gives up — real RFC 5322 messages built
//! with lettre, written as `.eml` files (default) or sent over SMTP. Application webhooks:
//! every event, JSON, signed `Payhost-Signature: t=..,v1=..` (HMAC-SHA256 over "t.body", as
//! Stripe signs), delivered per endpoint strictly in event order (a failing delivery holds
//! the ones after it), retried with exponential backoff for more than 24 hours, then left
//! `failed` for an operator to retry. Dunning: a failed payment payhost knows is attempted
//! again `dunning.retry_days` after the failure (with the customer's default method), on
//! the host clock, until it succeeds or the schedule ends.

use crate::clock::Clock;
use crate::config::{EmailSection, Loaded, WebhookEndpoint};
use crate::plugins::services::{http_client, HttpClient};
use crate::service::PaymentService;
use crate::store::{RowExt, StoreError, Unit};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use lettre::message::{header::ContentType, Mailbox, Message};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use payhost_plugin_api::{signature, Currency, Money};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Email attempts before a row is left `failed`.
const EMAIL_ATTEMPTS: i64 = 10;
/// Webhook attempts: with the delay doubling up to an hour, well over 24 hours of retries.
const WEBHOOK_ATTEMPTS: i64 = 40;
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Outbox {
    service: Arc<PaymentService>,
    clock: Arc<dyn Clock>,
    email: EmailSection,
    mail_dir: PathBuf,
    endpoints: Vec<WebhookEndpoint>,
    retry_base_ms: u64,
    retry_days: Vec<u32>,
    http: HttpClient,
    /// The SMTP transport (its connection pool) when `email.transport = "smtp"`, built once;
    /// a URL it cannot use is an error for every message, in the outbox's log.
    smtp: Option<Result<AsyncSmtpTransport<Tokio1Executor>, String>>,
}

/// One row of work with its event.
struct Work {
    id: String,
    handler: String,
    target: String,
    attempts: i64,
    due: bool,
    event: Value,
}

fn money(data: &Value) -> String {
    match (
        data["amount"].as_i64(),
        data["currency"]
            .as_str()
            .and_then(|c| Currency::parse(c).ok()),
    ) {
        (Some(a), Some(c)) => Money::new(a, c).display(),
        _ => "your payment".into(),
    }
}

impl Outbox {
    pub fn new(service: Arc<PaymentService>, clock: Arc<dyn Clock>, config: &Loaded) -> Self {
        Self {
            service,
            clock,
            email: config.config.email.clone(),
            mail_dir: config.mail_dir.clone(),
            endpoints: config.config.webhook_endpoints.clone(),
            retry_base_ms: config.config.host.webhook_retry_base_ms.max(1),
            retry_days: config.config.dunning.retry_days.clone(),
            http: http_client(Duration::from_secs(5)),
            smtp: (config.config.email.transport == "smtp").then(|| {
                let url = config.config.email.smtp_url.clone().unwrap_or_default();
                AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
                    .map(|b| b.build())
                    .map_err(|e| format!("email.smtp_url: {e}"))
            }),
        }
    }

    pub fn spawn(self: &Arc<Self>, poll: Duration) {
        let me = self.clone();
        let wake = self.service.recorder().outbox_wake.clone();
        tokio::spawn(async move {
            loop {
                while me.run_once().await > 0 {}
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(poll) => {}
                }
            }
        });
    }

    /// One round: due emails, each endpoint's deliveries in order, due dunning attempts.
    /// Returns how many pieces of work were done.
    pub async fn run_once(self: &Arc<Self>) -> usize {
        let outbox = self.round().await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "outbox round failed");
            0
        });
        let dunning = self.dunning_round().await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "dunning round failed");
            0
        });
        outbox + dunning
    }

    /// Schedules the retries of a failed payment payhost knows (provider-managed invoice
    /// payments have their own retries).
    async fn schedule_dunning(&self, w: &Work) -> Result<Option<u16>, (String, Option<u16>)> {
        let payment = match w.event["type"].as_str() {
            Some("PaymentFailed") => w.event["object_id"].as_str(),
            _ => w.event["data"]["payment"].as_str(),
        };
        let (Some(payment), Some(first)) = (payment, self.retry_days.first()) else {
            return Ok(None);
        };
        let now = self.clock.now_secs();
        let mut unit = Unit::new();
        unit.push(
            "INSERT INTO dunning (payment_id, event_id, failed_at, attempts, next_at, status, updated_at) \
             VALUES ($1, $2, $3, 0, $4, 'scheduled', $3) ON CONFLICT (payment_id) DO NOTHING",
            vec![
                payment.into(),
                w.event["id"].as_str().unwrap_or_default().into(),
                now.into(),
                (now + i64::from(*first) * 86_400).into(),
            ],
        );
        self.service
            .store()
            .commit(unit)
            .await
            .map_err(|e| (e.to_string(), None))?;
        Ok(None)
    }

    /// Attempts the payments whose retry is due; a success ends their dunning, the last
    /// failure ends it with a final notice to the customer.
    async fn dunning_round(&self) -> Result<usize, StoreError> {
        let now = self.clock.now_secs();
        let rows = self
            .service
            .store()
            .all(
                "SELECT payment_id, event_id, failed_at, attempts FROM dunning \
                 WHERE status = 'scheduled' AND next_at <= $1 ORDER BY next_at LIMIT 50",
                vec![now.into()],
            )
            .await?;
        let n = rows.len();
        for r in rows {
            let (payment, event, failed_at, attempts) = (
                r.text("payment_id")?,
                r.text("event_id")?,
                r.int("failed_at")?,
                r.int("attempts")? + 1,
            );
            let ctx = crate::service::Ctx {
                request_id: format!("dunning-{payment}-{attempts}"),
                ..crate::service::Ctx::default()
            };
            let outcome = self.service.retry_payment(&ctx, &payment).await;
            let (status, error) = match &outcome {
                Ok(s) if s == "succeeded" => ("recovered", None),
                Ok(s) => ("scheduled", Some(format!("the payment is {s}"))),
                Err(e) => ("scheduled", Some(e.to_string())),
            };
            let last = usize::try_from(attempts).unwrap_or(usize::MAX) >= self.retry_days.len();
            let status = if status == "scheduled" && last {
                "exhausted"
            } else {
                status
            };
            let next = self
                .retry_days
                .get(usize::try_from(attempts).unwrap_or(usize::MAX))
                .map_or(now, |d| failed_at + i64::from(*d) * 86_400);
            tracing::info!(payment = %payment, attempts, status, "dunning attempt");
            let mut unit = Unit::new();
            unit.push(
                "UPDATE dunning SET attempts = $2, status = $3, next_at = $4, last_error = $5, \
                 updated_at = $6 WHERE payment_id = $1",
                vec![
                    payment.clone().into(),
                    attempts.into(),
                    status.into(),
                    next.into(),
                    error.into(),
                    now.into(),
                ],
            );
            if status == "exhausted" {
                unit.push(
                    "INSERT INTO outbox (id, event_id, handler, target, status, attempts, \
                     next_attempt_at, created_at) VALUES ($1, $2, 'final_notice_email', '', \
                     'pending', 0, $3, $4) ON CONFLICT (event_id, handler, target) DO NOTHING",
                    vec![
                        crate::service::new_id("obx").into(),
                        event.into(),
                        self.clock.now_millis().into(),
                        now.into(),
                    ],
                );
            }
            self.service.store().commit(unit).await?;
        }
        Ok(n)
    }

    /// Emails and dunning run here; each endpoint's deliveries run in a task of their own,
    /// strictly in order, so an endpoint that hangs delays only itself.
    async fn round(self: &Arc<Self>) -> Result<usize, StoreError> {
        let now_ms = self.clock.now_millis();
        let rows = self
            .service
            .store()
            .all(
                "SELECT o.id, o.handler, o.target, o.attempts, o.next_attempt_at, e.id AS event_id, \
                 e.seq, e.type, e.tenant, e.provider, e.object_id, e.provider_object_id, e.data, \
                 e.created_at FROM outbox o JOIN events e ON e.id = o.event_id \
                 WHERE o.status = 'pending' ORDER BY e.seq, o.id LIMIT 500",
                vec![],
            )
            .await?;
        let mut others = Vec::new();
        let mut targets: BTreeMap<String, Vec<Work>> = BTreeMap::new();
        for r in rows {
            let work = Work {
                id: r.text("id")?,
                handler: r.text("handler")?,
                target: r.text("target")?,
                attempts: r.int("attempts")?,
                due: r.int("next_attempt_at")? <= now_ms,
                event: json!({
                    "id": r.text("event_id")?, "object": "event", "seq": r.int("seq")?,
                    "type": r.text("type")?, "tenant": r.opt_text("tenant")?,
                    "provider": r.text("provider")?, "object_id": r.opt_text("object_id")?,
                    "provider_object_id": r.text("provider_object_id")?,
                    "data": serde_json::from_str::<Value>(&r.text("data")?).unwrap_or(Value::Null),
                    "created_at": r.int("created_at")?,
                }),
            };
            if work.handler == "webhook" {
                targets.entry(work.target.clone()).or_default().push(work);
            } else {
                others.push(work);
            }
        }
        let mut deliveries = tokio::task::JoinSet::new();
        for (_, list) in targets {
            let me = self.clone();
            deliveries.spawn(async move {
                let mut done = 0;
                // A row waiting for its retry, or failing now, holds the rows after it.
                for work in list.iter().take_while(|w| w.due) {
                    if !me.run(work, now_ms).await? {
                        break;
                    }
                    done += 1;
                }
                Ok::<usize, StoreError>(done)
            });
        }
        let mut done = 0;
        for work in others.iter().filter(|w| w.due) {
            if self.run(work, now_ms).await? {
                done += 1;
            }
        }
        while let Some(joined) = deliveries.join_next().await {
            done += joined.unwrap_or(Ok(0))?;
        }
        Ok(done)
    }

    /// Does one piece of work and records the outcome; true when it was done.
    async fn run(&self, work: &Work, now_ms: i64) -> Result<bool, StoreError> {
        let webhook = work.handler == "webhook";
        let outcome = match work.handler.as_str() {
            "webhook" => self.deliver(work).await,
            "dunning" => self.schedule_dunning(work).await,
            _ => self.email(work).await,
        };
        match outcome {
            Ok(status) => {
                self.finish(&work.id, "done", work.attempts + 1, None, status, None)
                    .await?;
                Ok(true)
            }
            Err((error, status)) => {
                let attempts = work.attempts + 1;
                let limit = if webhook {
                    WEBHOOK_ATTEMPTS
                } else {
                    EMAIL_ATTEMPTS
                };
                let doubling = 1u64 << (attempts.clamp(1, 21) - 1);
                let delay = self.retry_base_ms.saturating_mul(doubling).min(3_600_000);
                let state = if attempts >= limit {
                    "failed"
                } else {
                    "pending"
                };
                tracing::warn!(outbox_id = %work.id, handler = %work.handler, target = %work.target, attempts, error = %error, "outbox work failed");
                self.finish(
                    &work.id,
                    state,
                    attempts,
                    Some(&error),
                    status,
                    Some(now_ms + delay as i64),
                )
                .await?;
                Ok(false)
            }
        }
    }

    async fn finish(
        &self,
        id: &str,
        status: &str,
        attempts: i64,
        error: Option<&str>,
        http_status: Option<u16>,
        next_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        let mut unit = Unit::new();
        unit.push(
            "UPDATE outbox SET status = $2, attempts = $3, last_error = $4, last_status = $5, \
             next_attempt_at = COALESCE($6, next_attempt_at), \
             done_at = CASE WHEN $2 = 'done' THEN $7 ELSE done_at END WHERE id = $1",
            vec![
                id.into(),
                status.into(),
                attempts.into(),
                error.map(str::to_owned).into(),
                http_status.map(i64::from).into(),
                next_ms.into(),
                self.clock.now_secs().into(),
            ],
        );
        self.service.store().commit(unit).await.map(drop)
    }

    /// Posts the event to the endpoint, signed.
    async fn deliver(&self, w: &Work) -> Result<Option<u16>, (String, Option<u16>)> {
        let Some(endpoint) = self.endpoints.iter().find(|e| e.name == w.target) else {
            return Err((
                format!("no webhook endpoint named '{}' is configured", w.target),
                None,
            ));
        };
        let body = w.event.to_string();
        let t = self.clock.now_secs();
        let request = hyper::Request::post(endpoint.url.as_str())
            .header("content-type", "application/json")
            .header("user-agent", "payhost")
            .header(
                "payhost-event-id",
                w.event["id"].as_str().unwrap_or_default(),
            )
            .header(
                "payhost-signature",
                signature::header(&[endpoint.secret.as_str()], t, body.as_bytes()),
            )
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| (e.to_string(), None))?;
        let exchange = async {
            let resp = self
                .http
                .request(request)
                .await
                .map_err(|e| (format!("cannot reach the endpoint: {e}"), None))?;
            let status = resp.status().as_u16();
            let _ = resp.into_body().collect().await;
            if (200..300).contains(&status) {
                Ok(Some(status))
            } else {
                Err((format!("the endpoint answered {status}"), Some(status)))
            }
        };
        tokio::time::timeout(WEBHOOK_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| Err(("the endpoint did not answer in time".into(), None)))
    }

    /// Builds and sends one email.
    async fn email(&self, w: &Work) -> Result<Option<u16>, (String, Option<u16>)> {
        let data = &w.event["data"];
        // The customer the event names, else the customer of the record it is about.
        let object = w.event["object_id"].as_str().unwrap_or_default();
        let sql = match (data["customer"].as_str(), w.event["type"].as_str().unwrap_or_default()) {
            (Some(_), _) => "SELECT email, name FROM customers WHERE id = $1",
            (None, t) if t.starts_with("Payment") => {
                "SELECT c.email, c.name FROM customers c JOIN payments p ON p.customer_id = c.id WHERE p.id = $1"
            }
            (None, t) if t.starts_with("Subscription") => {
                "SELECT c.email, c.name FROM customers c JOIN subscriptions s ON s.customer_id = c.id WHERE s.id = $1"
            }
            (None, _) => {
                "SELECT c.email, c.name FROM customers c JOIN invoices i ON i.customer_id = c.id WHERE i.id = $1"
            }
        };
        let key = data["customer"].as_str().unwrap_or(object);
        let row = self
            .service
            .store()
            .one(sql, vec![key.into()])
            .await
            .map_err(|e| (e.to_string(), None))?;
        let Some(row) = row else {
            // Nobody to write to (an event about a customer payhost does not know).
            return Ok(None);
        };
        let (email, name) = (
            row.text("email").unwrap_or_default(),
            row.opt_text("name").unwrap_or_default(),
        );
        let amount = money(data);
        let (subject, text) = match w.handler.as_str() {
            "receipt_email" => (
                format!("Receipt: {amount} received"),
                format!("Hello{},\n\nWe received your payment of {amount}.\nPayment: {}\n\nThank you.\n",
                    name.as_deref().map(|n| format!(" {n}")).unwrap_or_default(),
                    data["payment"].as_str().or(w.event["object_id"].as_str()).unwrap_or_default()),
            ),
            "final_notice_email" => (
                format!("We could not collect {amount}"),
                format!("Hello{},\n\nWe tried your payment of {amount} {} more times and could not collect it.\nPlease update your payment method.\n",
                    name.as_deref().map(|n| format!(" {n}")).unwrap_or_default(),
                    self.retry_days.len()),
            ),
            "failure_email" => (
                format!("Payment failed: {amount}"),
                format!("Hello{},\n\nYour payment of {amount} did not go through{}.\nPlease check your payment method; we will try again.\n",
                    name.as_deref().map(|n| format!(" {n}")).unwrap_or_default(),
                    data["error"].as_str().map(|e| format!(": {e}")).unwrap_or_default()),
            ),
            _ => (
                "Welcome aboard".to_owned(),
                format!("Hello{},\n\nYour subscription to {} has started.\n",
                    name.as_deref().map(|n| format!(" {n}")).unwrap_or_default(),
                    data["plan"].as_str().unwrap_or("your plan")),
            ),
        };
        let to: Mailbox = email
            .parse()
            .map_err(|e| (format!("recipient '{email}': {e}"), None))?;
        let from: Mailbox = self
            .email
            .from
            .parse()
            .map_err(|e| (format!("email.from: {e}"), None))?;
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject(subject)
            .message_id(Some(format!("<{}@payhost>", w.id)))
            .header(ContentType::TEXT_PLAIN)
            .body(text)
            .map_err(|e| (e.to_string(), None))?;
        if let Some(smtp) = &self.smtp {
            let transport = smtp.as_ref().map_err(|e| (e.clone(), None))?;
            transport
                .send(message)
                .await
                .map_err(|e| (format!("smtp: {e}"), None))?;
            return Ok(None);
        }
        // The row's id names the file: doing the work twice writes the same message.
        let dir = self.mail_dir.clone();
        let (file, bytes) = (dir.join(format!("{}.eml", w.id)), message.formatted());
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            let tmp = file.with_extension("eml.tmp");
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, &file)
        })
        .await
        .map_err(|e| (e.to_string(), None))?
        .map_err(|e| (format!("cannot write the message: {e}"), None))?;
        Ok(None)
    }
}
