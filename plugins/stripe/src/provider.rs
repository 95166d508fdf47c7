//! The operations, each one or two Stripe calls. A card declined while creating or
//! confirming a payment is a result, not an error: Stripe's 402 `card_error` carries the
//! intent, which becomes a payment with status `failed` (as the mock reports declines).

use crate::client::{Client, Failure, Method};
use crate::config::StripeConfig;
use crate::webhook;
use crate::wire::{
    List, PaymentIntent, StripeCustomer, StripeInvoice, StripePaymentMethod, StripeRefund,
    StripeSubscription, SubStatus,
};
use payhost_plugin_kit::prelude::*;
use serde::de::DeserializeOwned;

/// One Stripe account as a provider instance.
pub struct StripeProvider {
    client: Client,
    webhook_secrets: Vec<Secret>,
}

/// Path segments come from callers: keep them to the provider's id alphabet.
fn seg(id: &str, param: &str) -> Result<String, PluginError> {
    payhost_plugin_kit::path_id(id, param, "Stripe", 255)
}

fn metadata(form: Form, m: &Metadata) -> Form {
    form.metadata(m.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

impl StripeProvider {
    fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        form: &Form,
        ctx: &CallCtx,
    ) -> Result<T, PluginError> {
        self.client
            .call(method, path, form, ctx)
            .map_err(Failure::into_plugin_error)
    }

    /// A create or confirm: a declined card comes back as a failed payment.
    fn charge(&self, path: &str, form: &Form, ctx: &CallCtx) -> Result<Payment, PluginError> {
        match self
            .client
            .call::<PaymentIntent>(Method::Post, path, form, ctx)
        {
            Ok(pi) => pi.to_payment(false),
            Err(Failure::Stripe { status, error }) => match error.payment_intent.clone() {
                Some(mut pi) if error.kind == "card_error" => {
                    if pi.last_payment_error.is_none() {
                        pi.last_payment_error = Some(crate::wire::LastError {
                            code: error.code.clone(),
                            decline_code: error.decline_code.clone(),
                            message: error.message.clone(),
                        });
                    }
                    pi.to_payment(true)
                }
                _ => Err(Failure::Stripe { status, error }.into_plugin_error()),
            },
            Err(f) => Err(f.into_plugin_error()),
        }
    }

    fn subscription(&self, id: &str, ctx: &CallCtx) -> Result<StripeSubscription, PluginError> {
        self.call(
            Method::Get,
            &format!("/v1/subscriptions/{}", seg(id, "id")?),
            &Form::new(),
            ctx,
        )
    }

    fn intent(&self, id: &str, ctx: &CallCtx) -> Result<PaymentIntent, PluginError> {
        self.call(
            Method::Get,
            &format!("/v1/payment_intents/{}", seg(id, "id")?),
            &Form::new().set("expand[0]", "latest_charge"),
            ctx,
        )
    }
}

impl Plugin for StripeProvider {
    type Config = StripeConfig;

    fn manifest() -> Manifest {
        Manifest::new("stripe", env!("CARGO_PKG_VERSION"))
            .capabilities(&capabilities::ALL)
            .webhook_headers(&[webhook::SIGNATURE_HEADER])
            .fixtures(Fixtures {
                payment_method_succeeds: Some("pm_card_visa".into()),
                payment_method_declines: Some("pm_card_chargeDeclined".into()),
                payment_method_requires_action: Some("pm_card_authenticationRequired".into()),
                price: Some("price_basic".into()),
                other_price: Some("price_pro".into()),
                currency: Some("usd".into()),
                ..Fixtures::default()
            })
    }

    fn new(config: StripeConfig, host: Host) -> Result<Self, PluginError> {
        config.validate()?;
        host.info("stripe provider ready");
        Ok(Self {
            client: Client::new(host, &config),
            webhook_secrets: config.webhook_secret.0,
        })
    }
}

impl Provider for StripeProvider {
    fn create_customer(&self, ctx: &CallCtx, req: NewCustomer) -> Result<Customer, PluginError> {
        let form = metadata(
            Form::new()
                .set("email", &req.email)
                .opt("name", req.name.as_deref()),
            &req.metadata,
        );
        let c: StripeCustomer = self.call(Method::Post, "/v1/customers", &form, ctx)?;
        Ok((&c).into())
    }

    fn get_customer(&self, ctx: &CallCtx, req: ObjectRef) -> Result<Customer, PluginError> {
        let path = format!("/v1/customers/{}", seg(&req.id, "id")?);
        let c: StripeCustomer = self.call(Method::Get, &path, &Form::new(), ctx)?;
        Ok((&c).into())
    }

    fn update_customer(&self, ctx: &CallCtx, req: CustomerUpdate) -> Result<Customer, PluginError> {
        let form = metadata(
            Form::new()
                .opt("email", req.email.as_deref())
                .opt("name", req.name.as_deref()),
            &req.metadata,
        );
        let path = format!("/v1/customers/{}", seg(&req.customer_id, "customer")?);
        let c: StripeCustomer = self.call(Method::Post, &path, &form, ctx)?;
        Ok((&c).into())
    }

    fn attach_payment_method(
        &self,
        ctx: &CallCtx,
        req: AttachPaymentMethod,
    ) -> Result<PaymentMethod, PluginError> {
        let path = format!(
            "/v1/payment_methods/{}/attach",
            seg(&req.payment_method, "payment_method")?
        );
        let form = Form::new().set("customer", seg(&req.customer_id, "customer")?);
        let pm: StripePaymentMethod = self.call(Method::Post, &path, &form, ctx)?;
        Ok((&pm).into())
    }

    fn list_payment_methods(
        &self,
        ctx: &CallCtx,
        req: CustomerRef,
    ) -> Result<PaymentMethodList, PluginError> {
        let form = Form::new()
            .set("customer", seg(&req.customer_id, "customer")?)
            .set("type", "card")
            .set("limit", 100);
        let list: List<StripePaymentMethod> =
            self.call(Method::Get, "/v1/payment_methods", &form, ctx)?;
        Ok(PaymentMethodList {
            data: list.data.iter().map(PaymentMethod::from).collect(),
        })
    }

    fn detach_payment_method(
        &self,
        ctx: &CallCtx,
        req: DetachPaymentMethod,
    ) -> Result<PaymentMethod, PluginError> {
        let path = format!(
            "/v1/payment_methods/{}/detach",
            seg(&req.payment_method, "payment_method")?
        );
        let pm: StripePaymentMethod = self.call(Method::Post, &path, &Form::new(), ctx)?;
        Ok((&pm).into())
    }

    fn delete_customer(&self, ctx: &CallCtx, req: ObjectRef) -> Result<Deleted, PluginError> {
        let path = format!("/v1/customers/{}", seg(&req.id, "id")?);
        let d: crate::wire::DeletedObject = self.call(Method::Delete, &path, &Form::new(), ctx)?;
        Ok(Deleted {
            id: d.id,
            deleted: d.deleted,
        })
    }

    fn set_default_payment_method(
        &self,
        ctx: &CallCtx,
        req: SetDefaultPaymentMethod,
    ) -> Result<Customer, PluginError> {
        let form = Form::new().set(
            "invoice_settings[default_payment_method]",
            seg(&req.payment_method, "payment_method")?,
        );
        let path = format!("/v1/customers/{}", seg(&req.customer_id, "customer")?);
        let c: StripeCustomer = self.call(Method::Post, &path, &form, ctx)?;
        Ok((&c).into())
    }

    fn create_payment(&self, ctx: &CallCtx, req: NewPayment) -> Result<Payment, PluginError> {
        let customer = req.customer_id.as_deref().ok_or_else(|| {
            PluginError::invalid("customer", "Stripe payments need the provider's customer")
        })?;
        let capture = match &req.capture_method {
            CaptureMethod::Automatic => "automatic",
            CaptureMethod::Manual => "manual",
            CaptureMethod::Unknown(m) => {
                return Err(PluginError::new(
                    codes::UNSUPPORTED,
                    format!("Stripe has no capture method '{m}'"),
                )
                .with_param("capture_method"))
            }
        };
        let mut form = metadata(
            Form::new()
                .set("amount", req.amount.amount)
                .set("currency", req.amount.currency.as_str())
                .set("customer", seg(customer, "customer")?)
                .set("capture_method", capture)
                .set("automatic_payment_methods[enabled]", true)
                .opt("description", req.description.as_deref()),
            &req.metadata,
        )
        .set("expand[0]", "latest_charge");
        if let Some(pm) = &req.payment_method {
            form = form
                .set("payment_method", seg(pm, "payment_method")?)
                .set("confirm", true);
            // With a return URL the buyer can be sent through 3-D Secure; without one, the
            // charge is off-session and redirect-based methods are refused.
            form = match &req.return_url {
                Some(url) => form.set("return_url", url),
                None => form.set("automatic_payment_methods[allow_redirects]", "never"),
            };
        }
        self.charge("/v1/payment_intents", &form, ctx)
    }

    fn get_payment(&self, ctx: &CallCtx, req: ObjectRef) -> Result<Payment, PluginError> {
        self.intent(&req.id, ctx)?.to_payment(false)
    }

    fn confirm_payment(&self, ctx: &CallCtx, req: ConfirmPayment) -> Result<Payment, PluginError> {
        let path = format!("/v1/payment_intents/{}/confirm", seg(&req.id, "id")?);
        let form = Form::new()
            .opt(
                "payment_method",
                req.payment_method
                    .as_deref()
                    .map(|p| seg(p, "payment_method"))
                    .transpose()?,
            )
            .opt("return_url", req.return_url.as_deref())
            .set("expand[0]", "latest_charge");
        self.charge(&path, &form, ctx)
    }

    fn cancel_payment(&self, ctx: &CallCtx, req: ObjectRef) -> Result<Payment, PluginError> {
        let path = format!("/v1/payment_intents/{}/cancel", seg(&req.id, "id")?);
        let pi: PaymentIntent = self.call(Method::Post, &path, &Form::new(), ctx)?;
        pi.to_payment(false)
    }

    fn capture_payment(&self, ctx: &CallCtx, req: CapturePayment) -> Result<Payment, PluginError> {
        let path = format!("/v1/payment_intents/{}/capture", seg(&req.id, "id")?);
        let form = Form::new()
            .opt("amount_to_capture", req.amount)
            .set("expand[0]", "latest_charge");
        let pi: PaymentIntent = self.call(Method::Post, &path, &form, ctx)?;
        pi.to_payment(false)
    }

    fn create_subscription(
        &self,
        ctx: &CallCtx,
        req: NewSubscription,
    ) -> Result<Subscription, PluginError> {
        let customer = req.customer_id.as_deref().ok_or_else(|| {
            PluginError::invalid(
                "customer",
                "Stripe subscriptions need the provider's customer",
            )
        })?;
        let mut form = metadata(
            Form::new()
                .set("customer", seg(customer, "customer")?)
                .set("items[0][price]", seg(&req.price_id, "price")?)
                // Charge the default method now; without one the subscription is incomplete
                // and its first invoice's client secret lets the customer pay.
                .set("payment_behavior", "allow_incomplete"),
            &req.metadata,
        )
        .set("expand[0]", "latest_invoice.payment_intent");
        if req.trial_days > 0 {
            form = form.set("trial_period_days", req.trial_days);
        }
        let s: StripeSubscription = self.call(Method::Post, "/v1/subscriptions", &form, ctx)?;
        s.to_subscription()
    }

    fn get_subscription(&self, ctx: &CallCtx, req: ObjectRef) -> Result<Subscription, PluginError> {
        self.subscription(&req.id, ctx)?.to_subscription()
    }

    fn change_subscription_price(
        &self,
        ctx: &CallCtx,
        req: ChangeSubscriptionPrice,
    ) -> Result<Subscription, PluginError> {
        let current = self.subscription(&req.id, ctx)?;
        if current.status == SubStatus::Canceled {
            return Err(PluginError::conflict(format!(
                "subscription '{}' is canceled",
                req.id
            )));
        }
        let form = Form::new()
            .set("items[0][id]", &current.item()?.id)
            .set("items[0][price]", seg(&req.price_id, "price")?)
            .set("proration_behavior", "create_prorations");
        let path = format!("/v1/subscriptions/{}", seg(&req.id, "id")?);
        let s: StripeSubscription = self.call(Method::Post, &path, &form, ctx)?;
        s.to_subscription()
    }

    fn cancel_subscription(
        &self,
        ctx: &CallCtx,
        req: CancelSubscription,
    ) -> Result<Subscription, PluginError> {
        let current = self.subscription(&req.id, ctx)?;
        if current.status == SubStatus::Canceled {
            return Err(PluginError::conflict(format!(
                "subscription '{}' is already canceled",
                req.id
            )));
        }
        let path = format!("/v1/subscriptions/{}", seg(&req.id, "id")?);
        let s: StripeSubscription = if req.at_period_end {
            self.call(
                Method::Post,
                &path,
                &Form::new().set("cancel_at_period_end", true),
                ctx,
            )?
        } else {
            self.call(Method::Delete, &path, &Form::new(), ctx)?
        };
        s.to_subscription()
    }

    fn reactivate_subscription(
        &self,
        ctx: &CallCtx,
        req: ObjectRef,
    ) -> Result<Subscription, PluginError> {
        let current = self.subscription(&req.id, ctx)?;
        if current.status == SubStatus::Canceled {
            return Err(PluginError::conflict(format!(
                "subscription '{}' was canceled and cannot be reactivated; create a new one",
                req.id
            )));
        }
        if !current.cancel_at_period_end {
            return Err(PluginError::conflict(format!(
                "subscription '{}' is not scheduled for cancellation",
                req.id
            )));
        }
        let form = Form::new().set("cancel_at_period_end", false);
        let path = format!("/v1/subscriptions/{}", seg(&req.id, "id")?);
        let s: StripeSubscription = self.call(Method::Post, &path, &form, ctx)?;
        s.to_subscription()
    }

    fn create_refund(&self, ctx: &CallCtx, req: NewRefund) -> Result<Refund, PluginError> {
        let form = Form::new()
            .set("payment_intent", seg(&req.payment_id, "payment")?)
            .opt("amount", req.amount)
            .opt("reason", req.reason.as_deref());
        let r: StripeRefund = self.call(Method::Post, "/v1/refunds", &form, ctx)?;
        r.to_refund()
    }

    fn get_refund(&self, ctx: &CallCtx, req: RefundRef) -> Result<Refund, PluginError> {
        let path = format!("/v1/refunds/{}", seg(&req.id, "id")?);
        let r: StripeRefund = self.call(Method::Get, &path, &Form::new(), ctx)?;
        r.to_refund()
    }

    fn get_invoice(&self, ctx: &CallCtx, req: ObjectRef) -> Result<Invoice, PluginError> {
        let path = format!("/v1/invoices/{}", seg(&req.id, "id")?);
        let inv: StripeInvoice = self.call(Method::Get, &path, &Form::new(), ctx)?;
        inv.to_invoice()
    }

    fn list_invoices(&self, ctx: &CallCtx, q: InvoiceQuery) -> Result<InvoicePage, PluginError> {
        let form = Form::new()
            .set("customer", seg(&q.customer_id, "customer")?)
            .set("limit", q.limit.clamp(1, 100))
            .opt(
                "starting_after",
                q.starting_after
                    .as_deref()
                    .map(|s| seg(s, "starting_after"))
                    .transpose()?,
            );
        let list: List<StripeInvoice> = self.call(Method::Get, "/v1/invoices", &form, ctx)?;
        Ok(InvoicePage {
            data: list
                .data
                .iter()
                .map(StripeInvoice::to_invoice)
                .collect::<Result<Vec<_>, _>>()?,
            has_more: list.has_more,
        })
    }

    fn verify_webhook(
        &self,
        ctx: &CallCtx,
        delivery: WebhookDelivery,
    ) -> Result<VerifiedEvent, PluginError> {
        let secrets: Vec<&str> = self.webhook_secrets.iter().map(Secret::expose).collect();
        let verified = webhook::verify(&delivery, &secrets)?;
        let mut event = verified.event;
        if let Some(path) = verified.fetch {
            // A thin event: read what it names now, with this account's key (contract
            // 2.2's `fetched`); an object Stripe does not have is refused, nothing stored.
            let object: serde_json::Value = self
                .call(Method::Get, &path, &Form::new(), ctx)
                .map_err(|e| {
                    if e.is(codes::NOT_FOUND) {
                        PluginError::invalid(
                            "related_object",
                            format!("the thin event names {path}, which Stripe does not have"),
                        )
                    } else {
                        e
                    }
                })?;
            event.fetched = Some(object.to_string());
        }
        Ok(event)
    }

    fn map_webhook(
        &self,
        _ctx: &CallCtx,
        event: WebhookEvent,
    ) -> Result<WebhookReports, PluginError> {
        webhook::map(&event).map(|events| WebhookReports { events })
    }
}
