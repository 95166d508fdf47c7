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
//!
//! Each endpoint, the emails and the dunning schedules are lanes with a worker of their
//! own, reading only their own rows: a slow, hanging or failing endpoint, or SMTP being
//! down, delays nobody else. When the database is away, a lane pauses (doubling up to 5 s)
//! and keeps the outcomes it could not record, recording them before doing anything again,
//! so a delivery is not repeated for an outage; one that was in flight when the host died
//! is, with the same `Payhost-Event-Id` and email `Message-ID` for the receiver to drop.

use crate::api::views::{EventData, EventView};
use crate::clock::Clock;
use crate::config::{EmailSection, Loaded, WebhookEndpoint};
use crate::lease::Leases;
use crate::locks::Locked;
use crate::outgoing::{http_client, HttpClient};
use crate::pace::Backoff;
use crate::service::{is_payment_id, new_id, PaymentService};
use crate::store::{outbox, Lane, StoreError, Unit};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use lettre::message::{header::ContentType, Mailbox, Message};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use payhost_plugin_api::{signature, Currency, Money};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::Instrument;

/// Email attempts before a row is left `failed`.
const EMAIL_ATTEMPTS: i64 = 10;
/// Webhook attempts: with the delay doubling up to an hour, well over 24 hours of retries.
const WEBHOOK_ATTEMPTS: i64 = 40;
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// Rows a lane reads per round.
const LANE_BATCH: i64 = 100;
/// How often the outbox looks for endpoints with rows that no lane serves.
const STRAYS_EVERY: Duration = Duration::from_secs(5);

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
    /// The lanes with a worker.
    lanes: Mutex<HashSet<Lane>>,
    /// Each lane and the dunning retries are worked by one host at a time.
    leases: Arc<Leases>,
}

/// The lease of the dunning retries.
const DUNNING_LEASE: &str = "dunning:retries";

/// One row of work with its event.
struct Work {
    id: String,
    handler: String,
    target: String,
    attempts: i64,
    event: EventView,
}

/// How a piece of work went, to record: `done`, or `pending` again at `next_ms`, or
/// `failed`. Kept by its lane while the database cannot take it.
struct Finish {
    id: String,
    status: &'static str,
    attempts: i64,
    error: Option<String>,
    http_status: Option<u16>,
    next_ms: Option<i64>,
}

fn money(data: &EventData) -> String {
    match (
        data.amount,
        data.currency
            .as_deref()
            .and_then(|c| Currency::parse(c).ok()),
    ) {
        (Some(a), Some(c)) => Money::new(a, c).display(),
        _ => "your payment".into(),
    }
}

impl Outbox {
    pub fn new(
        service: Arc<PaymentService>,
        clock: Arc<dyn Clock>,
        config: &Loaded,
        leases: Arc<Leases>,
    ) -> Self {
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
                let url = config
                    .config
                    .email
                    .smtp_url
                    .as_ref()
                    .map(|u| u.expose().to_owned())
                    .unwrap_or_default();
                AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
                    .map(|b| b.build())
                    .map_err(|e| format!("email.smtp_url: {e}"))
            }),
            lanes: Mutex::default(),
            leases,
        }
    }

    /// Starts the workers: one lane per application endpoint (and per endpoint found with
    /// deliveries pending but no longer configured), one for emails, one for dunning
    /// schedules, and the dunning retries on their own clock. A slow, hanging or failing
    /// endpoint, or SMTP being down, delays only its own lane.
    pub fn spawn(self: &Arc<Self>, poll: Duration) {
        for endpoint in &self.endpoints {
            self.spawn_lane(Lane::Webhook(endpoint.name.clone()), poll);
        }
        self.spawn_lane(Lane::Email, poll);
        self.spawn_lane(Lane::Dunning, poll);
        let me = self.clone();
        tokio::spawn(async move {
            let mut outage = Backoff::new(Duration::from_millis(250), Duration::from_secs(5));
            loop {
                let pause = match me.dunning_round().await {
                    Ok(n) if n > 0 => continue,
                    Ok(_) => {
                        outage.reset();
                        poll
                    }
                    Err(e) => {
                        if !e.is_unavailable() {
                            tracing::error!(error = %e, "dunning round failed");
                        }
                        outage.next_pause()
                    }
                };
                tokio::time::sleep(pause).await;
            }
        });
        // Endpoints that were removed from the config but still have rows.
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                if let Ok(targets) = me.service.store().outbox_webhook_targets().await {
                    for target in targets {
                        me.spawn_lane(Lane::Webhook(target), poll);
                    }
                }
                tokio::time::sleep(STRAYS_EVERY).await;
            }
        });
    }

    /// One worker per lane (a second call for the same lane does nothing).
    fn spawn_lane(self: &Arc<Self>, lane: Lane, poll: Duration) {
        if !self.lanes.locked().insert(lane.clone()) {
            return;
        }
        let me = self.clone();
        let bells = &self.service.recorder().outbox_wake;
        let mut wake = match lane {
            Lane::Webhook(_) => bells.webhook.subscribe(),
            Lane::Email => bells.email.subscribe(),
            Lane::Dunning => bells.dunning.subscribe(),
        };
        tokio::spawn(async move {
            let mut outage = Backoff::new(Duration::from_millis(250), Duration::from_secs(5));
            let mut unrecorded = Vec::new();
            loop {
                match me.lane_round(&lane, &mut unrecorded).await {
                    Ok(n) if n > 0 => {
                        outage.reset();
                        continue;
                    }
                    Ok(_) => outage.reset(),
                    Err(e) => {
                        if !e.is_unavailable() {
                            tracing::error!(error = %e, lane = ?lane, "outbox round failed");
                        }
                        tokio::time::sleep(outage.next_pause()).await;
                        continue;
                    }
                }
                tokio::select! {
                    _ = wake.changed() => {}
                    () = tokio::time::sleep(poll) => {}
                }
            }
        });
    }

    /// One round of a lane: first the outcomes it could not record before (the database
    /// was away; the work is not done again), then its work. Returns how much was done.
    async fn lane_round(
        &self,
        lane: &Lane,
        unrecorded: &mut Vec<Finish>,
    ) -> Result<usize, StoreError> {
        while let Some(finish) = unrecorded.first() {
            self.record(finish).await?;
            unrecorded.remove(0);
        }
        // Another host works this lane while it holds the lease.
        let lease = lane.lease();
        if !self.leases.hold(&lease).await? {
            return Ok(0);
        }
        let now_ms = self.clock.now_millis();
        let rows = self
            .service
            .store()
            .outbox_lane(lane, now_ms, LANE_BATCH)
            .await?;
        let mut done = 0;
        for (i, r) in rows.into_iter().enumerate() {
            // An endpoint's row waiting for its retry, or failing now, holds the rows after it.
            if r.next_attempt_at > now_ms {
                break;
            }
            // Renewed before each piece of work, which takes less than the lease lasts.
            if i > 0 && !self.leases.hold(&lease).await? {
                break;
            }
            let work = Work {
                id: r.id,
                handler: r.handler,
                target: r.target,
                attempts: r.attempts,
                event: EventView::from(&r.event),
            };
            let finish = self.run(&work, now_ms).await;
            let ok = finish.status == "done";
            if let Err(e) = self.record(&finish).await {
                unrecorded.push(finish);
                return Err(e);
            }
            if ok {
                done += 1;
            } else if matches!(lane, Lane::Webhook(_)) {
                break;
            }
        }
        Ok(done)
    }

    /// Schedules the retries of a failed payment payhost knows (provider-managed invoice
    /// payments have their own retries).
    async fn schedule_dunning(&self, w: &Work) -> Result<Option<u16>, (String, Option<u16>)> {
        let payment = match w.event.kind.as_str() {
            "PaymentFailed" => w.event.object_id.as_deref(),
            _ => w.event.data.payment.as_deref(),
        };
        let (Some(payment), Some(first)) = (payment, self.retry_days.first()) else {
            return Ok(None);
        };
        let now = self.clock.now_secs();
        let mut unit = Unit::new();
        outbox::schedule_dunning(
            &mut unit,
            payment,
            &w.event.id,
            now,
            now + i64::from(*first) * 86_400,
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
        if !self.leases.hold(DUNNING_LEASE).await? {
            return Ok(0);
        }
        let now = self.clock.now_secs();
        let rows = self.service.store().dunning_due(now, 50).await?;
        let n = rows.len();
        for (i, r) in rows.into_iter().enumerate() {
            if i > 0 && !self.leases.hold(DUNNING_LEASE).await? {
                break;
            }
            let attempts = r.attempts + 1;
            let payment = r.payment_id;
            // One key per payment and attempt: a retry sent again (its host died before
            // recording it) is the provider's replay, not a second charge.
            let ctx = crate::service::Ctx {
                request_id: format!("dunning-{payment}-{attempts}"),
                idempotency: Some(crate::service::IdemSlot {
                    scope: "dunning".into(),
                    key: format!("dunning:{payment}:{attempts}"),
                    request_hash: String::new(),
                }),
                ..crate::service::Ctx::default()
            };
            let outcome = self.service.retry_payment(&ctx, &payment).await;
            let (status, error) = match &outcome {
                Ok(payhost_plugin_api::PaymentStatus::Succeeded) => ("recovered", None),
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
                .map_or(now, |d| r.failed_at + i64::from(*d) * 86_400);
            tracing::info!(payment = %payment, attempts, status, "dunning attempt");
            let mut unit = Unit::new();
            outbox::update_dunning(
                &mut unit,
                &payment,
                attempts,
                status,
                next,
                error.as_deref(),
                now,
            );
            if status == "exhausted" {
                outbox::add_work(
                    &mut unit,
                    &new_id("obx"),
                    &r.event_id,
                    "final_notice_email",
                    (now, self.clock.now_millis()),
                );
            }
            self.service.store().commit(unit).await?;
        }
        Ok(n)
    }

    /// Does one piece of work; the outcome to record.
    async fn run(&self, work: &Work, now_ms: i64) -> Finish {
        let webhook = work.handler == "webhook";
        let outcome = match work.handler.as_str() {
            "webhook" => {
                let span = tracing::debug_span!(
                    "outbox.deliver",
                    otel.kind = "client",
                    outbox_id = %work.id,
                    endpoint = %work.target,
                    event_id = %work.event.id,
                    event_type = %work.event.kind,
                    attempt = work.attempts + 1,
                    http.response.status_code = tracing::field::Empty,
                    error = tracing::field::Empty,
                );
                if let Some(payment) = work.event.object_id.as_deref() {
                    if crate::telemetry::enabled() && is_payment_id(payment) {
                        self.service.link_to_payment(&span, payment).await;
                    }
                }
                let outcome = self.deliver(work).instrument(span.clone()).await;
                match &outcome {
                    Ok(status) | Err((_, status)) => {
                        if let Some(status) = status {
                            span.record("http.response.status_code", status);
                        }
                    }
                }
                if let Err((error, _)) = &outcome {
                    span.record("error", error.as_str());
                }
                outcome
            }
            "dunning" => self.schedule_dunning(work).await,
            _ => self.email(work).await,
        };
        let attempts = work.attempts + 1;
        match outcome {
            Ok(http_status) => Finish {
                id: work.id.clone(),
                status: "done",
                attempts,
                error: None,
                http_status,
                next_ms: None,
            },
            Err((error, http_status)) => {
                let limit = if webhook {
                    WEBHOOK_ATTEMPTS
                } else {
                    EMAIL_ATTEMPTS
                };
                let doubling = 1u64 << (attempts.clamp(1, 21) - 1);
                let delay = self.retry_base_ms.saturating_mul(doubling).min(3_600_000);
                tracing::warn!(outbox_id = %work.id, handler = %work.handler, target = %work.target, attempts, error = %error, "outbox work failed");
                Finish {
                    id: work.id.clone(),
                    status: if attempts >= limit {
                        "failed"
                    } else {
                        "pending"
                    },
                    attempts,
                    error: Some(error),
                    http_status,
                    next_ms: Some(now_ms + i64::try_from(delay).unwrap_or(i64::MAX)),
                }
            }
        }
    }

    async fn record(&self, f: &Finish) -> Result<(), StoreError> {
        let mut unit = Unit::new();
        outbox::finish_work(
            &mut unit,
            &f.id,
            f.status,
            f.attempts,
            f.error.as_deref(),
            f.http_status,
            f.next_ms,
            self.clock.now_secs(),
        );
        self.service.store().commit(unit).await.map(drop)
    }

    /// Posts the event to the endpoint, signed, with the delivery's `traceparent` when
    /// traces are on.
    async fn deliver(&self, w: &Work) -> Result<Option<u16>, (String, Option<u16>)> {
        let Some(endpoint) = self.endpoints.iter().find(|e| e.name == w.target) else {
            return Err((
                format!("no webhook endpoint named '{}' is configured", w.target),
                None,
            ));
        };
        let body = serde_json::to_string(&w.event).map_err(|e| (e.to_string(), None))?;
        let t = self.clock.now_secs();
        let request = hyper::Request::post(endpoint.url.as_str())
            .header("content-type", "application/json")
            .header("user-agent", "payhost")
            .header("payhost-event-id", w.event.id.as_str())
            .header(
                "payhost-signature",
                signature::header(&[endpoint.secret.expose()], t, body.as_bytes()),
            )
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| (e.to_string(), None))?;
        let mut request = request;
        crate::telemetry::inject(request.headers_mut());
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
        let data = &w.event.data;
        // The customer the event names, else the customer of the record it is about.
        let object = w.event.object_id.as_deref().unwrap_or_default();
        let kind = if w.event.kind.starts_with("Payment") {
            "payment"
        } else if w.event.kind.starts_with("Subscription") {
            "subscription"
        } else {
            "invoice"
        };
        let recipient = self
            .service
            .store()
            .recipient(data.customer.as_deref(), kind, object)
            .await
            .map_err(|e| (e.to_string(), None))?;
        let Some((email, name)) = recipient.filter(|(e, _)| !e.is_empty()) else {
            // Nobody to write to (a customer payhost does not know, or one erased).
            return Ok(None);
        };
        let amount = money(data);
        let (subject, text) = match w.handler.as_str() {
            "receipt_email" => (
                format!("Receipt: {amount} received"),
                format!("Hello{},\n\nWe received your payment of {amount}.\nPayment: {}\n\nThank you.\n",
                    name.as_deref().map(|n| format!(" {n}")).unwrap_or_default(),
                    data.payment.as_deref().or(w.event.object_id.as_deref()).unwrap_or_default()),
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
                    data.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default()),
            ),
            _ => (
                "Welcome aboard".to_owned(),
                format!("Hello{},\n\nYour subscription to {} has started.\n",
                    name.as_deref().map(|n| format!(" {n}")).unwrap_or_default(),
                    data.plan.as_deref().unwrap_or("your plan")),
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
