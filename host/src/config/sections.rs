//! The smaller sections: `[retention]`, `[dunning]`, `[email]` and
//! `[[webhook_endpoints]]`, with their defaults. Secrets among them never show in `Debug`.

use super::Secret;
use serde::Deserialize;
use std::path::PathBuf;

/// How long payhost keeps what it no longer needs. Nothing still needed is touched:
/// pending or failed inbox and outbox rows stay, events stay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    /// Stored answers to `Idempotency-Key` requests (they can hold client secrets).
    #[serde(default = "default_idempotency_hours")]
    pub idempotency_hours: u32,
    /// Processed webhooks keep their row (a late redelivery is still a duplicate) but their
    /// payload (personal data) is cleared after this many days.
    #[serde(default = "default_retention_days")]
    pub inbox_payload_days: u32,
    /// Outbox rows done are deleted after this many days.
    #[serde(default = "default_retention_days")]
    pub outbox_days: u32,
    /// `.eml` files of the file transport are deleted after this many days.
    #[serde(default = "default_retention_days")]
    pub mail_days: u32,
    /// How often the sweeper runs (it also runs at start).
    #[serde(default = "default_sweep_minutes")]
    pub sweep_every_minutes: u32,
    /// Rows of the audit trail are kept this many days (a year by default; assessors such
    /// as PCI DSS ask for one), then removed by a sweep of their own that the trail records.
    #[serde(default = "default_audit_days")]
    pub audit_days: u32,
}

fn default_audit_days() -> u32 {
    365
}

impl Default for RetentionSection {
    fn default() -> Self {
        Self {
            idempotency_hours: default_idempotency_hours(),
            inbox_payload_days: default_retention_days(),
            outbox_days: default_retention_days(),
            mail_days: default_retention_days(),
            sweep_every_minutes: default_sweep_minutes(),
            audit_days: default_audit_days(),
        }
    }
}

fn default_idempotency_hours() -> u32 {
    24
}

fn default_retention_days() -> u32 {
    30
}

fn default_sweep_minutes() -> u32 {
    10
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DunningSection {
    /// Days after a failed payment when it is attempted again; empty turns dunning off.
    #[serde(default = "default_retry_days")]
    pub retry_days: Vec<u32>,
}

impl Default for DunningSection {
    fn default() -> Self {
        Self {
            retry_days: default_retry_days(),
        }
    }
}

fn default_retry_days() -> Vec<u32> {
    vec![1, 3, 5]
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSection {
    /// `file` (default: `.eml` files in `dir`, nothing to install) or `smtp`.
    #[serde(default = "default_email_transport")]
    pub transport: String,
    /// Folder for the file transport, relative to the config file (default: `mail` in the
    /// data folder).
    #[serde(default)]
    pub dir: Option<PathBuf>,
    #[serde(default = "default_mail_from")]
    pub from: String,
    /// `smtp://host:port` or `smtps://user:password@host` for the smtp transport.
    #[serde(default)]
    pub smtp_url: Option<Secret>,
}

impl Default for EmailSection {
    fn default() -> Self {
        Self {
            transport: default_email_transport(),
            dir: None,
            from: default_mail_from(),
            smtp_url: None,
        }
    }
}

fn default_email_transport() -> String {
    "file".into()
}

fn default_mail_from() -> String {
    "payhost <billing@payhost.invalid>".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpoint {
    pub name: String,
    pub url: String,
    /// Signs every delivery (`Payhost-Signature: t=..,v1=..`).
    pub secret: Secret,
}

/// `[telemetry]`: where traces go. Off unless an endpoint is named here or in
/// `OTEL_EXPORTER_OTLP_ENDPOINT` (which wins).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySection {
    /// The OTLP/HTTP collector's base URL (`http://127.0.0.1:4318`); spans go to
    /// `<base>/v1/traces` as protobuf.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// `service.name` on every span.
    #[serde(default = "default_service_name")]
    pub service_name: String,
    /// Where the console links a payment's trace: a URL with `{trace_id}` in it
    /// (`http://jaeger:16686/trace/{trace_id}`). Without it the console shows the id alone.
    #[serde(default)]
    pub trace_url: Option<String>,
}

impl Default for TelemetrySection {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: default_service_name(),
            trace_url: None,
        }
    }
}

impl TelemetrySection {
    /// Where this host exports its traces, if anywhere (the environment considered).
    pub fn settings(&self) -> Option<crate::telemetry::Settings> {
        crate::telemetry::Settings::resolve(self.otlp_endpoint.as_deref(), &self.service_name)
    }

    /// The console's link to the trace `trace_id`, when `trace_url` is set.
    pub fn trace_link(&self, trace_id: &str) -> Option<String> {
        self.trace_url
            .as_ref()
            .map(|u| u.replace("{trace_id}", trace_id))
    }
}

fn default_service_name() -> String {
    "payhost".into()
}
