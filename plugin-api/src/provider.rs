//! The provider contract: the FFI trait object the host calls, and the plain Rust trait a
//! plugin author implements. [`Guarded`] adapts one to the other and turns every panic
//! into an error, so no unwind ever crosses the boundary (which would abort the host).

use crate::{
    error::{codes, PluginError},
    events::DomainEventReport,
    types::*,
};
use abi_stable::{
    sabi_trait,
    std_types::{RBox, ROption, RResult, RString, RVec},
};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The operations of a provider instance, as the host sees them across the FFI boundary.
///
/// New methods are only ever added after the last one, with the previous last keeping
/// `#[sabi(last_prefix_field)]`, so plugins built against an older minor version still load.
#[sabi_trait]
pub trait ProviderFfi: Send + Sync {
    fn create_customer(&self, ctx: CallCtx, req: NewCustomer) -> RResult<Customer, PluginError>;
    fn get_customer(&self, ctx: CallCtx, id: RString) -> RResult<Customer, PluginError>;
    fn update_customer(&self, ctx: CallCtx, req: CustomerUpdate) -> RResult<Customer, PluginError>;
    fn attach_payment_method(
        &self,
        ctx: CallCtx,
        customer_id: RString,
        payment_method_id: RString,
    ) -> RResult<PaymentMethod, PluginError>;
    fn list_payment_methods(
        &self,
        ctx: CallCtx,
        customer_id: RString,
    ) -> RResult<RVec<PaymentMethod>, PluginError>;
    fn set_default_payment_method(
        &self,
        ctx: CallCtx,
        customer_id: RString,
        payment_method_id: RString,
    ) -> RResult<Customer, PluginError>;
    fn create_payment(&self, ctx: CallCtx, req: NewPayment) -> RResult<Payment, PluginError>;
    fn get_payment(&self, ctx: CallCtx, id: RString) -> RResult<Payment, PluginError>;
    fn confirm_payment(
        &self,
        ctx: CallCtx,
        id: RString,
        payment_method: ROption<RString>,
    ) -> RResult<Payment, PluginError>;
    fn cancel_payment(&self, ctx: CallCtx, id: RString) -> RResult<Payment, PluginError>;
    fn create_subscription(
        &self,
        ctx: CallCtx,
        req: NewSubscription,
    ) -> RResult<Subscription, PluginError>;
    fn get_subscription(&self, ctx: CallCtx, id: RString) -> RResult<Subscription, PluginError>;
    fn change_subscription_price(
        &self,
        ctx: CallCtx,
        id: RString,
        price_id: RString,
    ) -> RResult<Subscription, PluginError>;
    fn cancel_subscription(
        &self,
        ctx: CallCtx,
        id: RString,
        at_period_end: bool,
    ) -> RResult<Subscription, PluginError>;
    fn reactivate_subscription(
        &self,
        ctx: CallCtx,
        id: RString,
    ) -> RResult<Subscription, PluginError>;
    fn create_refund(&self, ctx: CallCtx, req: NewRefund) -> RResult<Refund, PluginError>;
    fn get_invoice(&self, ctx: CallCtx, id: RString) -> RResult<Invoice, PluginError>;
    fn list_invoices(&self, ctx: CallCtx, query: InvoiceQuery)
        -> RResult<InvoicePage, PluginError>;
    fn verify_webhook(&self, delivery: WebhookDelivery) -> RResult<VerifiedEvent, PluginError>;
    fn map_webhook(&self, event: VerifiedEvent) -> RResult<RVec<DomainEventReport>, PluginError>;
    #[sabi(last_prefix_field)]
    fn shutdown(&self) -> RResult<(), PluginError>;
}

/// A provider instance as the host holds it.
pub type ProviderBox = ProviderFfi_TO<'static, RBox<()>>;

/// What a plugin author implements. Every method has a default that answers
/// `unsupported_operation`; implement the ones your declared capabilities promise.
pub trait Provider: Send + Sync + 'static {
    fn create_customer(&self, _ctx: &CallCtx, _req: NewCustomer) -> Result<Customer, PluginError> {
        Err(PluginError::unsupported("create_customer"))
    }
    fn get_customer(&self, _ctx: &CallCtx, _id: &str) -> Result<Customer, PluginError> {
        Err(PluginError::unsupported("get_customer"))
    }
    fn update_customer(
        &self,
        _ctx: &CallCtx,
        _req: CustomerUpdate,
    ) -> Result<Customer, PluginError> {
        Err(PluginError::unsupported("update_customer"))
    }
    fn attach_payment_method(
        &self,
        _ctx: &CallCtx,
        _customer_id: &str,
        _payment_method_id: &str,
    ) -> Result<PaymentMethod, PluginError> {
        Err(PluginError::unsupported("attach_payment_method"))
    }
    fn list_payment_methods(
        &self,
        _ctx: &CallCtx,
        _customer_id: &str,
    ) -> Result<Vec<PaymentMethod>, PluginError> {
        Err(PluginError::unsupported("list_payment_methods"))
    }
    fn set_default_payment_method(
        &self,
        _ctx: &CallCtx,
        _customer_id: &str,
        _payment_method_id: &str,
    ) -> Result<Customer, PluginError> {
        Err(PluginError::unsupported("set_default_payment_method"))
    }
    fn create_payment(&self, _ctx: &CallCtx, _req: NewPayment) -> Result<Payment, PluginError> {
        Err(PluginError::unsupported("create_payment"))
    }
    fn get_payment(&self, _ctx: &CallCtx, _id: &str) -> Result<Payment, PluginError> {
        Err(PluginError::unsupported("get_payment"))
    }
    fn confirm_payment(
        &self,
        _ctx: &CallCtx,
        _id: &str,
        _payment_method: Option<&str>,
    ) -> Result<Payment, PluginError> {
        Err(PluginError::unsupported("confirm_payment"))
    }
    fn cancel_payment(&self, _ctx: &CallCtx, _id: &str) -> Result<Payment, PluginError> {
        Err(PluginError::unsupported("cancel_payment"))
    }
    fn create_subscription(
        &self,
        _ctx: &CallCtx,
        _req: NewSubscription,
    ) -> Result<Subscription, PluginError> {
        Err(PluginError::unsupported("create_subscription"))
    }
    fn get_subscription(&self, _ctx: &CallCtx, _id: &str) -> Result<Subscription, PluginError> {
        Err(PluginError::unsupported("get_subscription"))
    }
    fn change_subscription_price(
        &self,
        _ctx: &CallCtx,
        _id: &str,
        _price_id: &str,
    ) -> Result<Subscription, PluginError> {
        Err(PluginError::unsupported("change_subscription_price"))
    }
    fn cancel_subscription(
        &self,
        _ctx: &CallCtx,
        _id: &str,
        _at_period_end: bool,
    ) -> Result<Subscription, PluginError> {
        Err(PluginError::unsupported("cancel_subscription"))
    }
    fn reactivate_subscription(
        &self,
        _ctx: &CallCtx,
        _id: &str,
    ) -> Result<Subscription, PluginError> {
        Err(PluginError::unsupported("reactivate_subscription"))
    }
    fn create_refund(&self, _ctx: &CallCtx, _req: NewRefund) -> Result<Refund, PluginError> {
        Err(PluginError::unsupported("create_refund"))
    }
    fn get_invoice(&self, _ctx: &CallCtx, _id: &str) -> Result<Invoice, PluginError> {
        Err(PluginError::unsupported("get_invoice"))
    }
    fn list_invoices(
        &self,
        _ctx: &CallCtx,
        _query: InvoiceQuery,
    ) -> Result<InvoicePage, PluginError> {
        Err(PluginError::unsupported("list_invoices"))
    }
    fn verify_webhook(&self, _delivery: WebhookDelivery) -> Result<VerifiedEvent, PluginError> {
        Err(PluginError::unsupported("verify_webhook"))
    }
    fn map_webhook(&self, _event: VerifiedEvent) -> Result<Vec<DomainEventReport>, PluginError> {
        Err(PluginError::unsupported("map_webhook"))
    }
    /// Releases what the instance holds. Called once, after the last call has finished.
    fn shutdown(&self) -> Result<(), PluginError> {
        Ok(())
    }
}

/// Runs `f`, turning a panic into a `plugin_panicked` error.
pub fn guard<T>(
    operation: &str,
    f: impl FnOnce() -> Result<T, PluginError>,
) -> RResult<T, PluginError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => RResult::ROk(v),
        Ok(Err(e)) => RResult::RErr(e),
        Err(payload) => RResult::RErr(PluginError::new(
            codes::PANICKED,
            format!(
                "the plugin panicked in {operation}: {}",
                panic_message(&*payload)
            ),
        )),
    }
}

/// The text of a panic payload, when it has one.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// Wraps a [`Provider`] as a [`ProviderFfi`], catching every panic.
pub struct Guarded<P>(pub P);

impl<P: Provider> ProviderFfi for Guarded<P> {
    fn create_customer(&self, ctx: CallCtx, req: NewCustomer) -> RResult<Customer, PluginError> {
        guard("create_customer", || self.0.create_customer(&ctx, req))
    }
    fn get_customer(&self, ctx: CallCtx, id: RString) -> RResult<Customer, PluginError> {
        guard("get_customer", || self.0.get_customer(&ctx, &id))
    }
    fn update_customer(&self, ctx: CallCtx, req: CustomerUpdate) -> RResult<Customer, PluginError> {
        guard("update_customer", || self.0.update_customer(&ctx, req))
    }
    fn attach_payment_method(
        &self,
        ctx: CallCtx,
        customer_id: RString,
        payment_method_id: RString,
    ) -> RResult<PaymentMethod, PluginError> {
        guard("attach_payment_method", || {
            self.0
                .attach_payment_method(&ctx, &customer_id, &payment_method_id)
        })
    }
    fn list_payment_methods(
        &self,
        ctx: CallCtx,
        customer_id: RString,
    ) -> RResult<RVec<PaymentMethod>, PluginError> {
        guard("list_payment_methods", || {
            self.0
                .list_payment_methods(&ctx, &customer_id)
                .map(RVec::from)
        })
    }
    fn set_default_payment_method(
        &self,
        ctx: CallCtx,
        customer_id: RString,
        payment_method_id: RString,
    ) -> RResult<Customer, PluginError> {
        guard("set_default_payment_method", || {
            self.0
                .set_default_payment_method(&ctx, &customer_id, &payment_method_id)
        })
    }
    fn create_payment(&self, ctx: CallCtx, req: NewPayment) -> RResult<Payment, PluginError> {
        guard("create_payment", || self.0.create_payment(&ctx, req))
    }
    fn get_payment(&self, ctx: CallCtx, id: RString) -> RResult<Payment, PluginError> {
        guard("get_payment", || self.0.get_payment(&ctx, &id))
    }
    fn confirm_payment(
        &self,
        ctx: CallCtx,
        id: RString,
        payment_method: ROption<RString>,
    ) -> RResult<Payment, PluginError> {
        guard("confirm_payment", || {
            self.0.confirm_payment(
                &ctx,
                &id,
                payment_method.as_ref().map(RString::as_str).into_option(),
            )
        })
    }
    fn cancel_payment(&self, ctx: CallCtx, id: RString) -> RResult<Payment, PluginError> {
        guard("cancel_payment", || self.0.cancel_payment(&ctx, &id))
    }
    fn create_subscription(
        &self,
        ctx: CallCtx,
        req: NewSubscription,
    ) -> RResult<Subscription, PluginError> {
        guard("create_subscription", || {
            self.0.create_subscription(&ctx, req)
        })
    }
    fn get_subscription(&self, ctx: CallCtx, id: RString) -> RResult<Subscription, PluginError> {
        guard("get_subscription", || self.0.get_subscription(&ctx, &id))
    }
    fn change_subscription_price(
        &self,
        ctx: CallCtx,
        id: RString,
        price_id: RString,
    ) -> RResult<Subscription, PluginError> {
        guard("change_subscription_price", || {
            self.0.change_subscription_price(&ctx, &id, &price_id)
        })
    }
    fn cancel_subscription(
        &self,
        ctx: CallCtx,
        id: RString,
        at_period_end: bool,
    ) -> RResult<Subscription, PluginError> {
        guard("cancel_subscription", || {
            self.0.cancel_subscription(&ctx, &id, at_period_end)
        })
    }
    fn reactivate_subscription(
        &self,
        ctx: CallCtx,
        id: RString,
    ) -> RResult<Subscription, PluginError> {
        guard("reactivate_subscription", || {
            self.0.reactivate_subscription(&ctx, &id)
        })
    }
    fn create_refund(&self, ctx: CallCtx, req: NewRefund) -> RResult<Refund, PluginError> {
        guard("create_refund", || self.0.create_refund(&ctx, req))
    }
    fn get_invoice(&self, ctx: CallCtx, id: RString) -> RResult<Invoice, PluginError> {
        guard("get_invoice", || self.0.get_invoice(&ctx, &id))
    }
    fn list_invoices(
        &self,
        ctx: CallCtx,
        query: InvoiceQuery,
    ) -> RResult<InvoicePage, PluginError> {
        guard("list_invoices", || self.0.list_invoices(&ctx, query))
    }
    fn verify_webhook(&self, delivery: WebhookDelivery) -> RResult<VerifiedEvent, PluginError> {
        guard("verify_webhook", || self.0.verify_webhook(delivery))
    }
    fn map_webhook(&self, event: VerifiedEvent) -> RResult<RVec<DomainEventReport>, PluginError> {
        guard("map_webhook", || self.0.map_webhook(event).map(RVec::from))
    }
    fn shutdown(&self) -> RResult<(), PluginError> {
        guard("shutdown", || self.0.shutdown())
    }
}
