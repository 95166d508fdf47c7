//! Subscriptions and invoices.

use super::*;

impl Suite<'_> {
    // ------------------------------------------------------------------ subscriptions

    pub(super) fn subscriptions(&self, a: &dyn Instance, customer: Option<&str>) {
        const NAME: &str = "subscriptions.create_change_cancel";
        if !self.has(cap::SUBSCRIPTIONS) {
            return self.skip(NAME, "no subscriptions capability");
        }
        let Some(price) = self.manifest.fixtures.price.clone() else {
            return self.skip(NAME, "no price fixture");
        };
        self.check(NAME, || {
            let s = self.must::<ops::CreateSubscription>(
                a,
                &NewSubscription {
                    customer_id: customer.map(str::to_owned),
                    payer: self.payer(),
                    price_id: price.clone(),
                    return_url: Some(RETURN_URL.into()),
                    cancel_url: Some(CANCEL_URL.into()),
                    ..NewSubscription::default()
                },
            )?;
            if s.id.is_empty() || s.price_id != price {
                return Err(format!(
                    "created subscription '{}' with price '{}'",
                    s.id, s.price_id
                ));
            }
            if let (Some(NextAction::RedirectToUrl { url, .. }), true) =
                (&s.next_action, self.approvable())
            {
                self.target.visit(url)?;
            }
            let read = self.must::<ops::GetSubscription>(a, &ObjectRef::new(&s.id))?;
            if read.id != s.id {
                return Err(format!("get_subscription answered '{}'", read.id));
            }
            if let Some(other) = &self.manifest.fixtures.other_price {
                let changed = self.must::<ops::ChangeSubscriptionPrice>(
                    a,
                    &ChangeSubscriptionPrice {
                        id: s.id.clone(),
                        price_id: other.clone(),
                    },
                )?;
                if changed.price_id != *other && changed.next_action.is_none() {
                    return Err(format!(
                        "after a change to '{other}' the price is '{}'",
                        changed.price_id
                    ));
                }
            }
            let ended = self.must::<ops::CancelSubscription>(
                a,
                &CancelSubscription {
                    id: s.id.clone(),
                    at_period_end: false,
                },
            )?;
            if ended.status != SubscriptionStatus::Canceled {
                return Err(format!("canceling now answered '{}'", ended.status));
            }
            Ok(())
        });
    }

    // ------------------------------------------------------------------ invoices

    pub(super) fn invoices(&self, a: &dyn Instance, customer: Option<&str>) {
        const NAME: &str = "invoices.list";
        if !self.has(cap::INVOICES) {
            return self.skip(NAME, "no invoices capability");
        }
        let Some(customer) = customer else {
            return self.skip(NAME, "needs a customer");
        };
        self.check(NAME, || {
            let page = self.must::<ops::ListInvoices>(
                a,
                &InvoiceQuery {
                    customer_id: customer.into(),
                    limit: 10,
                    starting_after: None,
                },
            )?;
            if page.data.iter().any(|i| i.customer_id != customer) {
                return Err("the list holds another customer's invoices".into());
            }
            Ok(())
        });
    }
}
