//! PayPal's webhooks: RSA signatures over a certificate PayPal names, not an HMAC secret.
//!
//! The signed message is `<transmission id>|<transmission time>|<webhook id>|<crc32>`, the
//! CRC-32 (IEEE) of the raw body as an unsigned decimal, signed with RSA PKCS#1 v1.5 and
//! SHA-256 (`PAYPAL-AUTH-ALGO: SHA256withRSA`). The certificate comes from
//! `PAYPAL-CERT-URL`, which the sender controls: it is fetched only over https from
//! PayPal's own API hosts (or the configured `api_base`'s host, for a fake PayPal), cached
//! per URL, and must chain to a trusted root (the public web PKI by default, or
//! `trusted_roots`) and be valid at the delivery's time. `webhook_verification` can hand the
//! decision to PayPal's verify-webhook-signature API instead, or when the certificate
//! cannot be used.

use crate::client::Client;
use crate::config::{origin, PaypalConfig, Verification};
use crate::money::{from_paypal, Amount};
use crate::wire::rfc3339;
use base64::Engine;
use payhost_plugin_kit::prelude::*;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The headers a delivery is signed in.
pub const HEADERS: [&str; 5] = [
    "paypal-transmission-id",
    "paypal-transmission-time",
    "paypal-transmission-sig",
    "paypal-cert-url",
    "paypal-auth-algo",
];

/// PayPal's hosts that serve webhook certificates (live and sandbox, old and new names).
pub const PAYPAL_HOSTS: [&str; 4] = [
    "api.paypal.com",
    "api-m.paypal.com",
    "api.sandbox.paypal.com",
    "api-m.sandbox.paypal.com",
];

/// A certificate chain larger than this is not PayPal's.
const MAX_CERT_BYTES: usize = 64 * 1024;
/// Certificates kept per instance (a new URL when PayPal rolls its certificate).
const MAX_CACHED: usize = 16;

/// Checks deliveries for one instance.
pub struct Verifier {
    webhook_id: String,
    mode: Verification,
    roots: Vec<TrustAnchor<'static>>,
    /// `(scheme, host)` pairs a certificate may come from.
    allowed: Vec<(String, String)>,
    certs: Mutex<HashMap<String, Arc<Vec<CertificateDer<'static>>>>>,
}

/// Why a delivery was not verified locally.
enum Refusal {
    /// The signature does not match: refuse, whatever the mode.
    Forged(String),
    /// The certificate could not be used (not fetched, not trusted): the API may decide.
    Unusable(String),
}

/// Accepts any extended key usage: the certificate signs messages, not TLS sessions; the
/// chain to a trusted root and the host it came from are what make it PayPal's.
struct AnyUsage;

impl webpki::ExtendedKeyUsageValidator for AnyUsage {
    fn validate(&self, iter: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        for purpose in iter {
            purpose?;
        }
        Ok(())
    }
}

impl Verifier {
    /// A verifier for `cfg`.
    ///
    /// # Errors
    /// `invalid_config` (key `trusted_roots`) for a roots file that cannot be read or holds
    /// no certificate.
    pub fn new(cfg: &PaypalConfig) -> Result<Self, PluginError> {
        let roots = match &cfg.trusted_roots {
            None => webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    PluginError::config("trusted_roots", format!("cannot read {path}: {e}"))
                })?;
                let mut roots = Vec::new();
                for der in CertificateDer::pem_slice_iter(&pem) {
                    let der = der.map_err(|e| {
                        PluginError::config(
                            "trusted_roots",
                            format!("{path}: not PEM certificates: {e}"),
                        )
                    })?;
                    let anchor = webpki::anchor_from_trusted_cert(&der).map_err(|e| {
                        PluginError::config(
                            "trusted_roots",
                            format!("{path}: not a usable root: {e}"),
                        )
                    })?;
                    roots.push(anchor.to_owned());
                }
                if roots.is_empty() {
                    return Err(PluginError::config(
                        "trusted_roots",
                        format!("{path} holds no certificate"),
                    ));
                }
                roots
            }
        };
        let mut allowed: Vec<(String, String)> = PAYPAL_HOSTS
            .iter()
            .map(|h| ("https".to_owned(), (*h).to_owned()))
            .collect();
        if let Some(o) = origin(cfg.base()) {
            allowed.push(o);
        }
        Ok(Self {
            webhook_id: cfg.webhook_id.clone(),
            mode: cfg.webhook_verification,
            roots,
            allowed,
            certs: Mutex::new(HashMap::new()),
        })
    }

    /// The certificate chain at `url`, fetched once.
    fn chain(
        &self,
        url: &str,
        host: &Host,
        ctx: &CallCtx,
    ) -> Result<Arc<Vec<CertificateDer<'static>>>, Refusal> {
        let o = origin(url).ok_or_else(|| {
            Refusal::Forged(format!("PAYPAL-CERT-URL '{url}' is not an https URL"))
        })?;
        if !self.allowed.contains(&o) {
            return Err(Refusal::Forged(format!(
                "PAYPAL-CERT-URL names {}://{}, which is not one of PayPal's hosts",
                o.0, o.1
            )));
        }
        if let Some(c) = self
            .certs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(url)
        {
            return Ok(c.clone());
        }
        let http = HttpClient::new(host.clone(), "").retry(RetryPolicy {
            max_retries: 1,
            ..RetryPolicy::default()
        });
        let response = http.get(url).ctx(ctx).send().map_err(|e| {
            Refusal::Unusable(format!("cannot fetch the certificate: {}", e.message))
        })?;
        if !response.is_success() {
            return Err(Refusal::Unusable(format!(
                "fetching the certificate answered {}",
                response.status
            )));
        }
        if response.body.0.len() > MAX_CERT_BYTES {
            return Err(Refusal::Unusable("the certificate is too large".into()));
        }
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&response.body.0)
            .collect::<Result<_, _>>()
            .map_err(|e| Refusal::Unusable(format!("the certificate is not PEM: {e}")))?;
        if chain.is_empty() {
            return Err(Refusal::Unusable(
                "the certificate URL holds no certificate".into(),
            ));
        }
        let chain = Arc::new(chain);
        let mut cache = self.certs.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(url.to_owned(), chain.clone());
        Ok(chain)
    }

    /// The local check: chain, dates, signature.
    fn check_certificate(
        &self,
        signed: &Signed<'_>,
        host: &Host,
        ctx: &CallCtx,
        now: i64,
    ) -> Result<(), Refusal> {
        let chain = self.chain(signed.cert_url, host, ctx)?;
        let leaf = webpki::EndEntityCert::try_from(&chain[0])
            .map_err(|e| Refusal::Unusable(format!("the certificate cannot be read: {e}")))?;
        let at = UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(now).unwrap_or(0)));
        leaf.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &self.roots,
            &chain[1..],
            at,
            AnyUsage,
            None,
            None,
        )
        .map_err(|e| match e {
            webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. } => {
                Refusal::Forged(format!(
                    "the certificate is not valid at the delivery's time ({e:?})"
                ))
            }
            webpki::Error::UnknownIssuer => {
                Refusal::Unusable("the certificate does not chain to a trusted root".into())
            }
            other => Refusal::Unusable(format!("the certificate is not trusted: {other:?}")),
        })?;
        let signature = base64::engine::general_purpose::STANDARD
            .decode(signed.signature.trim())
            .map_err(|_| Refusal::Forged("PAYPAL-TRANSMISSION-SIG is not base64".into()))?;
        leaf.verify_signature(
            webpki::ring::RSA_PKCS1_2048_8192_SHA256,
            signed.message.as_bytes(),
            &signature,
        )
        .map_err(|_| Refusal::Forged("the signature does not match the delivery".into()))
    }
}

/// What a delivery claims.
struct Signed<'a> {
    transmission_id: &'a str,
    transmission_time: &'a str,
    signature: &'a str,
    cert_url: &'a str,
    auth_algo: &'a str,
    message: String,
}

fn refused(why: impl Into<String>) -> PluginError {
    PluginError::new(codes::INVALID_SIGNATURE, why)
}

#[derive(Deserialize)]
struct Envelope {
    id: String,
    event_type: String,
    #[serde(default)]
    create_time: Option<String>,
}

/// Verifies a delivery (see the module docs) and reads its envelope.
///
/// # Errors
/// `invalid_signature` naming what was wrong; nothing else about the delivery is trusted.
pub fn verify(
    (v, client, host): (&Verifier, &Client, &Host),
    ctx: &CallCtx,
    delivery: &WebhookDelivery,
) -> Result<VerifiedEvent, PluginError> {
    let header = |name: &str| {
        delivery
            .headers
            .get(name)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| refused(format!("missing {} header", name.to_ascii_uppercase())))
    };
    let body = &delivery.body.0;
    let mut signed = Signed {
        transmission_id: header(HEADERS[0])?,
        transmission_time: header(HEADERS[1])?,
        signature: header(HEADERS[2])?,
        cert_url: header(HEADERS[3])?,
        auth_algo: header(HEADERS[4])?,
        message: String::new(),
    };
    if signed.auth_algo != "SHA256withRSA" {
        return Err(refused(format!(
            "PAYPAL-AUTH-ALGO '{}' is not SHA256withRSA",
            signed.auth_algo
        )));
    }
    signed.message = format!(
        "{}|{}|{}|{}",
        signed.transmission_id,
        signed.transmission_time,
        v.webhook_id,
        crc32fast::hash(body)
    );
    let envelope: Envelope = serde_json::from_slice(body)
        .map_err(|e| refused(format!("the body is not a PayPal event: {e}")))?;
    let decided_by_api = match v.mode {
        Verification::Api => true,
        Verification::Certificate => match v.check_certificate(&signed, host, ctx, delivery.now) {
            Ok(()) => false,
            Err(Refusal::Forged(why) | Refusal::Unusable(why)) => return Err(refused(why)),
        },
        Verification::CertificateThenApi => {
            match v.check_certificate(&signed, host, ctx, delivery.now) {
                Ok(()) => false,
                Err(Refusal::Forged(why)) => return Err(refused(why)),
                Err(Refusal::Unusable(why)) => {
                    host.warn(&format!(
                        "webhook certificate not usable here ({why}); asking PayPal's verify-webhook-signature API"
                    ));
                    true
                }
            }
        }
    };
    if decided_by_api {
        verify_with_api((v, client), ctx, &signed, body)?;
    }
    Ok(VerifiedEvent {
        id: envelope.id,
        event_type: envelope.event_type,
        created: envelope
            .create_time
            .as_deref()
            .and_then(rfc3339)
            .unwrap_or(delivery.now),
        ..VerifiedEvent::default()
    })
}

/// PayPal's verify-webhook-signature API decides.
fn verify_with_api(
    (v, client): (&Verifier, &Client),
    ctx: &CallCtx,
    signed: &Signed<'_>,
    body: &[u8],
) -> Result<(), PluginError> {
    let event: Value =
        serde_json::from_slice(body).map_err(|e| refused(format!("the body is not JSON: {e}")))?;
    let request = json!({
        "auth_algo": signed.auth_algo,
        "cert_url": signed.cert_url,
        "transmission_id": signed.transmission_id,
        "transmission_sig": signed.signature,
        "transmission_time": signed.transmission_time,
        "webhook_id": v.webhook_id,
        "webhook_event": event,
    });
    let answer: Value = client
        .call(
            "POST",
            "/v1/notifications/verify-webhook-signature",
            Some(&request),
            ctx,
        )
        .map_err(crate::client::Failure::into_plugin_error)?;
    match answer["verification_status"].as_str() {
        Some("SUCCESS") => Ok(()),
        other => Err(refused(format!(
            "PayPal's verify-webhook-signature API answered {}",
            other.unwrap_or("no verification_status")
        ))),
    }
}

/// The facts an event tells (see README's PayPal section for the table).
///
/// # Errors
/// `plugin_internal` for an event whose body cannot be read.
pub fn map(event: &WebhookEvent) -> Result<WebhookReports, PluginError> {
    let body: Value = serde_json::from_str(&event.payload).map_err(|e| {
        PluginError::new(
            codes::INTERNAL,
            format!("stored PayPal event {} is not JSON: {e}", event.id),
        )
    })?;
    let r = &body["resource"];
    let at = event.created;
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let order_id = text(&r["supplementary_data"]["related_ids"]["order_id"]);
    let amount = |v: &Value| -> Option<Money> {
        serde_json::from_value::<Amount>(v.clone())
            .ok()
            .and_then(|a| from_paypal(&a).ok())
    };
    let report = |kind: DomainEventKind, object: &str| DomainEventReport::new(kind, object, at);
    let mut out = Vec::new();
    match event.event_type.as_str() {
        t @ ("PAYMENT.CAPTURE.COMPLETED" | "PAYMENT.CAPTURE.DENIED") => {
            if let Some(order) = &order_id {
                let succeeded = t == "PAYMENT.CAPTURE.COMPLETED";
                let mut e = report(
                    if succeeded {
                        DomainEventKind::PaymentSucceeded
                    } else {
                        DomainEventKind::PaymentFailed
                    },
                    order,
                );
                e.amount = amount(&r["amount"]);
                e.status = Some(if succeeded { "succeeded" } else { "failed" }.into());
                if !succeeded {
                    e.error = Some("PayPal denied the capture".into());
                }
                out.push(e);
            }
        }
        t @ ("PAYMENT.CAPTURE.REFUNDED" | "PAYMENT.CAPTURE.REVERSED") => {
            if let (Some(order), Some(id)) = (&order_id, r["id"].as_str()) {
                let mut e = report(DomainEventKind::RefundProcessed, id);
                e.payment_id = Some(order.clone());
                e.amount = amount(&r["amount"]);
                e.status = Some("succeeded".into());
                if t == "PAYMENT.CAPTURE.REVERSED" {
                    e.reason = Some("reversed".into());
                }
                out.push(e);
            }
        }
        t @ ("PAYMENT.AUTHORIZATION.CREATED" | "PAYMENT.AUTHORIZATION.VOIDED") => {
            if let Some(order) = &order_id {
                let created = t == "PAYMENT.AUTHORIZATION.CREATED";
                let mut e = report(
                    if created {
                        DomainEventKind::PaymentAuthorized
                    } else {
                        DomainEventKind::PaymentCanceled
                    },
                    order,
                );
                e.amount = amount(&r["amount"]);
                e.status = Some(
                    if created {
                        "requires_capture"
                    } else {
                        "canceled"
                    }
                    .into(),
                );
                out.push(e);
            }
        }
        t if t.starts_with("BILLING.SUBSCRIPTION.") => {
            let Some(id) = r["id"].as_str() else {
                return Ok(WebhookReports { events: out });
            };
            let s: crate::wire::PaypalSubscription =
                serde_json::from_value(r.clone()).unwrap_or_default();
            let mapped = s.to_subscription(None);
            let kind = match t {
                "BILLING.SUBSCRIPTION.CREATED" => DomainEventKind::SubscriptionCreated,
                "BILLING.SUBSCRIPTION.CANCELLED" | "BILLING.SUBSCRIPTION.EXPIRED" => {
                    DomainEventKind::SubscriptionCancelled
                }
                "BILLING.SUBSCRIPTION.ACTIVATED"
                | "BILLING.SUBSCRIPTION.UPDATED"
                | "BILLING.SUBSCRIPTION.SUSPENDED"
                | "BILLING.SUBSCRIPTION.RE-ACTIVATED"
                | "BILLING.SUBSCRIPTION.PAYMENT.FAILED" => DomainEventKind::SubscriptionUpdated,
                _ => return Ok(WebhookReports { events: out }),
            };
            let mut e = report(kind, id);
            e.status = Some(if t == "BILLING.SUBSCRIPTION.PAYMENT.FAILED" {
                "past_due".into()
            } else {
                mapped.status.to_string()
            });
            e.plan_id = (!mapped.price_id.is_empty()).then(|| mapped.price_id.clone());
            if mapped.current_period_end > 0 {
                e.current_period_start = Some(mapped.current_period_start);
                e.current_period_end = Some(mapped.current_period_end);
            }
            e.trial_end = mapped.trial_end;
            out.push(e);
        }
        "PAYMENT.SALE.COMPLETED" => {
            // A subscription's recurring payment (the v1 "sale" shape: total + currency).
            if let (Some(id), Some(sub)) = (r["id"].as_str(), r["billing_agreement_id"].as_str()) {
                let mut e = report(DomainEventKind::InvoicePaid, id);
                e.subscription_id = Some(sub.to_owned());
                e.amount = match (
                    r["amount"]["total"].as_str(),
                    r["amount"]["currency"].as_str(),
                ) {
                    (Some(total), Some(currency)) => from_paypal(&Amount {
                        currency_code: currency.to_owned(),
                        value: total.to_owned(),
                    })
                    .ok(),
                    _ => None,
                };
                e.status = Some("paid".into());
                out.push(e);
            }
        }
        // CHECKOUT.ORDER.APPROVED and the rest: no fact payhost records (the API confirms
        // an approved order).
        _ => {}
    }
    Ok(WebhookReports { events: out })
}
