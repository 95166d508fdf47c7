//! The operations, each one or two Stripe calls. A card declined while creating or
//! confirming a payment is a result, not an error: Stripe's 402 `card_error` carries the
//! intent, which becomes a payment with status `failed` (as the mock reports declines).

use crate::client::{Client, Failure, Method};
use crate::config::StripeConfig;
use crate::form::Form;
use crate::webhook;
use crate::wire::{
    List, PaymentIntent, StripeCustomer, StripeInvoice, StripePaymentMethod, StripeRefund,
    StripeSubscription, SubStatus,
};
use payhost_plugin_api::abi_stable::std_types::RVec;
use payhost_plugin_api::{
    capabilities as cap, codes, CallCtx, Customer, CustomerUpdate, HostBox, Invoice, InvoicePage,
    InvoiceQuery, NewCustomer, NewPayment, NewRefund, NewSubscription, Payment, PaymentMethod,
    Plugin, PluginConfig, PluginError, PluginMetadata, Provider, Refund, Subscription,
    VerifiedEvent, WebhookDelivery,
};
use serde::de::DeserializeOwned;

pub struct StripeProvider {
    host: HostBox,
    client: Client,
}

/// Path segments come from callers: keep them to Stripe's id alphabet.
fn seg(id: &str, param: &str) -> Result<String, PluginError> {
    if !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Ok(id.to_owned())
    } else {
        Err(PluginError::invalid(
            param,
            format!("'{id}' is not a Stripe id"),
        ))
    }
}

fn key(ctx: &CallCtx) -> Option<&str> {
    ctx.idempotency_key
        .as_ref()
        .map(|k| k.as_str())
        .into_option()
}

fn conflict(message: String) -> PluginError {
    PluginError::new(codes::CONFLICT, message)
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
            .call(&self.host, method, path, form, key(ctx))
            .map_err(Failure::into_plugin_error)
    }

    /// A create or confirm: a declined card comes back as a failed payment.
    fn charge(&self, path: &str, form: &Form, ctx: &CallCtx) -> Result<Payment, PluginError> {
        match self
            .client
            .call::<PaymentIntent>(&self.host, Method::Post, path, form, key(ctx))
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
}

impl Plugin for StripeProvider {
    fn metadata() -> PluginMetadata {
        PluginMetadata::new("stripe", env!("CARGO_PKG_VERSION"))
            .require(&["api_key", "webhook_secret"])
            .capabilities(&cap::ALL)
            .webhook_header(webhook::SIGNATURE_HEADER)
    }

    fn new(config: PluginConfig, host: HostBox) -> Result<Self, PluginError> {
        let cfg = StripeConfig::from_config(&config)?;
        payhost_plugin_api::HostExt::info(&host, "stripe provider ready");
        Ok(Self {
            host,
            client: Client::new(cfg),
        })
    }
}

impl Provider for StripeProvider {
    fn create_customer(&self, ctx: &CallCtx, req: NewCustomer) -> Result<Customer, PluginError> {
        let form = Form::new()
            .set("email", req.email.as_str())
            .opt("name", req.name.as_ref().map(|n| n.as_str()).into_option())
            .metadata(
                req.metadata
                    .iter()
                    .map(|kv| (kv.key.as_str(), kv.value.as_str())),
            );
        let c: StripeCustomer = self.call(Method::Post, "/v1/customers", &form, ctx)?;
        Ok((&c).into())
    }

    fn get_customer(&self, ctx: &CallCtx, id: &str) -> Result<Customer, PluginError> {
        let c: StripeCustomer = self.call(
            Method::Get,
            &format!("/v1/customers/{}", seg(id, "id")?),
            &Form::new(),
            ctx,
        )?;
        Ok((&c).into())
    }

    fn update_customer(&self, ctx: &CallCtx, req: CustomerUpdate) -> Result<Customer, PluginError> {
        let form = Form::new()
            .opt(
                "email",
                req.email.as_ref().map(|n| n.as_str()).into_option(),
            )
            .opt("name", req.name.as_ref().map(|n| n.as_str()).into_option())
            .metadata(
                req.metadata
                    .iter()
                    .map(|kv| (kv.key.as_str(), kv.value.as_str())),
            );
        let path = format!("/v1/customers/{}", seg(&req.customer_id, "customer")?);
        let c: StripeCustomer = self.call(Method::Post, &path, &form, ctx)?;
        Ok((&c).into())
    }

    fn attach_payment_method(
        &self,
        ctx: &CallCtx,
        customer_id: &str,
        payment_method_id: &str,
    ) -> Result<PaymentMethod, PluginError> {
        let path = format!(
            "/v1/payment_methods/{}/attach",
            seg(payment_method_id, "payment_method")?
        );
        let form = Form::new().set("customer", seg(customer_id, "customer")?);
        let pm: StripePaymentMethod = self.call(Method::Post, &path, &form, ctx)?;
        Ok((&pm).into())
    }

    fn list_payment_methods(
        &self,
        ctx: &CallCtx,
        customer_id: &str,
    ) -> Result<Vec<PaymentMethod>, PluginError> {
        let form = Form::new()
            .set("customer", seg(customer_id, "customer")?)
            .set("type", "card")
            .set("limit", 100);
        let list: List<StripePaymentMethod> =
            self.call(Method::Get, "/v1/payment_methods", &form, ctx)?;
        Ok(list.data.iter().map(PaymentMethod::from).collect())
    }

    fn set_default_payment_method(
        &self,
        ctx: &CallCtx,
        customer_id: &str,
        payment_method_id: &str,
    ) -> Result<Customer, PluginError> {
        let form = Form::new().set(
            "invoice_settings[default_payment_method]",
            seg(payment_method_id, "payment_method")?,
        );
        let path = format!("/v1/customers/{}", seg(customer_id, "customer")?);
        let c: StripeCustomer = self.call(Method::Post, &path, &form, ctx)?;
        Ok((&c).into())
    }

    fn create_payment(&self, ctx: &CallCtx, req: NewPayment) -> Result<Payment, PluginError> {
        let pm = req
            .payment_method
            .as_ref()
            .map(|p| p.as_str())
            .into_option();
        let mut form = Form::new()
            .set("amount", req.amount.amount)
            .set("currency", req.amount.currency.as_str())
            .set("customer", seg(req.customer_id.as_str(), "customer")?)
            .set("automatic_payment_methods[enabled]", true)
            .opt(
                "description",
                req.description.as_ref().map(|d| d.as_str()).into_option(),
            )
            .metadata(
                req.metadata
                    .iter()
                    .map(|kv| (kv.key.as_str(), kv.value.as_str())),
            )
            .set("expand[0]", "latest_charge");
        if let Some(pm) = pm {
            // Charged at once, off-session: no redirect-based methods.
            form = form
                .set("payment_method", seg(pm, "payment_method")?)
                .set("confirm", true)
                .set("automatic_payment_methods[allow_redirects]", "never");
        }
        self.charge("/v1/payment_intents", &form, ctx)
    }

    fn get_payment(&self, ctx: &CallCtx, id: &str) -> Result<Payment, PluginError> {
        let path = format!("/v1/payment_intents/{}", seg(id, "id")?);
        let pi: PaymentIntent = self.call(
            Method::Get,
            &path,
            &Form::new().set("expand[0]", "latest_charge"),
            ctx,
        )?;
        pi.to_payment(false)
    }

    fn confirm_payment(
        &self,
        ctx: &CallCtx,
        id: &str,
        payment_method: Option<&str>,
    ) -> Result<Payment, PluginError> {
        let path = format!("/v1/payment_intents/{}/confirm", seg(id, "id")?);
        let form = Form::new()
            .opt(
                "payment_method",
                payment_method
                    .map(|p| seg(p, "payment_method"))
                    .transpose()?,
            )
            .set("expand[0]", "latest_charge");
        self.charge(&path, &form, ctx)
    }

    fn cancel_payment(&self, ctx: &CallCtx, id: &str) -> Result<Payment, PluginError> {
        let path = format!("/v1/payment_intents/{}/cancel", seg(id, "id")?);
        let pi: PaymentIntent = self.call(Method::Post, &path, &Form::new(), ctx)?;
        pi.to_payment(false)
    }

    fn create_subscription(
        &self,
        ctx: &CallCtx,
        req: NewSubscription,
    ) -> Result<Subscription, PluginError> {
        let mut form = Form::new()
            .set("customer", seg(req.customer_id.as_str(), "customer")?)
            .set("items[0][price]", seg(req.price_id.as_str(), "price")?)
            // Charge the default method now; without one the subscription is incomplete and
            // its first invoice's client secret lets the customer pay.
            .set("payment_behavior", "allow_incomplete")
            .metadata(
                req.metadata
                    .iter()
                    .map(|kv| (kv.key.as_str(), kv.value.as_str())),
            )
            .set("expand[0]", "latest_invoice.payment_intent");
        if req.trial_days > 0 {
            form = form.set("trial_period_days", req.trial_days);
        }
        let s: StripeSubscription = self.call(Method::Post, "/v1/subscriptions", &form, ctx)?;
        s.to_subscription()
    }

    fn get_subscription(&self, ctx: &CallCtx, id: &str) -> Result<Subscription, PluginError> {
        self.subscription(id, ctx)?.to_subscription()
    }

    fn change_subscription_price(
        &self,
        ctx: &CallCtx,
        id: &str,
        price_id: &str,
    ) -> Result<Subscription, PluginError> {
        let current = self.subscription(id, ctx)?;
        if current.status == SubStatus::Canceled {
            return Err(conflict(format!("subscription '{id}' is canceled")));
        }
        let form = Form::new()
            .set("items[0][id]", &current.item()?.id)
            .set("items[0][price]", seg(price_id, "price")?)
            .set("proration_behavior", "create_prorations");
        let s: StripeSubscription = self.call(
            Method::Post,
            &format!("/v1/subscriptions/{}", seg(id, "id")?),
            &form,
            ctx,
        )?;
        s.to_subscription()
    }

    fn cancel_subscription(
        &self,
        ctx: &CallCtx,
        id: &str,
        at_period_end: bool,
    ) -> Result<Subscription, PluginError> {
        let current = self.subscription(id, ctx)?;
        if current.status == SubStatus::Canceled {
            return Err(conflict(format!("subscription '{id}' is already canceled")));
        }
        let path = format!("/v1/subscriptions/{}", seg(id, "id")?);
        let s: StripeSubscription = if at_period_end {
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
        id: &str,
    ) -> Result<Subscription, PluginError> {
        let current = self.subscription(id, ctx)?;
        if current.status == SubStatus::Canceled {
            return Err(conflict(format!(
                "subscription '{id}' was canceled and cannot be reactivated; create a new one"
            )));
        }
        if !current.cancel_at_period_end {
            return Err(conflict(format!(
                "subscription '{id}' is not scheduled for cancellation"
            )));
        }
        let form = Form::new().set("cancel_at_period_end", false);
        let s: StripeSubscription = self.call(
            Method::Post,
            &format!("/v1/subscriptions/{}", seg(id, "id")?),
            &form,
            ctx,
        )?;
        s.to_subscription()
    }

    fn create_refund(&self, ctx: &CallCtx, req: NewRefund) -> Result<Refund, PluginError> {
        let form = Form::new()
            .set("payment_intent", seg(req.payment_id.as_str(), "payment")?)
            .opt("amount", req.amount.into_option())
            .opt(
                "reason",
                req.reason.as_ref().map(|r| r.as_str()).into_option(),
            );
        let r: StripeRefund = self.call(Method::Post, "/v1/refunds", &form, ctx)?;
        r.to_refund()
    }

    fn get_invoice(&self, ctx: &CallCtx, id: &str) -> Result<Invoice, PluginError> {
        let inv: StripeInvoice = self.call(
            Method::Get,
            &format!("/v1/invoices/{}", seg(id, "id")?),
            &Form::new(),
            ctx,
        )?;
        inv.to_invoice()
    }

    fn list_invoices(&self, ctx: &CallCtx, q: InvoiceQuery) -> Result<InvoicePage, PluginError> {
        let form = Form::new()
            .set("customer", seg(q.customer_id.as_str(), "customer")?)
            .set("limit", q.limit.clamp(1, 100))
            .opt(
                "starting_after",
                q.starting_after
                    .as_ref()
                    .map(|s| seg(s.as_str(), "starting_after"))
                    .into_option()
                    .transpose()?,
            );
        let list: List<StripeInvoice> = self.call(Method::Get, "/v1/invoices", &form, ctx)?;
        let invoices = list
            .data
            .iter()
            .map(StripeInvoice::to_invoice)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(InvoicePage {
            invoices: RVec::from(invoices),
            has_more: list.has_more,
        })
    }

    fn verify_webhook(&self, delivery: WebhookDelivery) -> Result<VerifiedEvent, PluginError> {
        let secrets: Vec<&str> = self
            .client
            .config()
            .webhook_secrets
            .iter()
            .map(|s| s.expose())
            .collect();
        webhook::verify(&delivery, &secrets)
    }

    fn map_webhook(
        &self,
        event: VerifiedEvent,
    ) -> Result<Vec<payhost_plugin_api::DomainEventReport>, PluginError> {
        webhook::map(&event)
    }
}
