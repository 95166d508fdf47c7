//! Customers, their ids and payment methods: created, read, refused when missing, never repeating.

use super::*;

impl Suite<'_> {
    // ------------------------------------------------------------------ customers

    pub(super) fn customers(&self, a: &dyn Instance) -> Option<String> {
        if !self.has(cap::CUSTOMERS) {
            self.skip(
                "customers.create_get_update",
                "no customers capability: the host keeps customers",
            );
            return None;
        }
        self.attempt("customers.create_get_update", || {
            let email = self.payer().email.unwrap_or_default();
            let c = self.must::<ops::CreateCustomer>(
                a,
                &NewCustomer {
                    email: email.clone(),
                    name: Some("Conformance Check".into()),
                    metadata: [("source".to_owned(), "conformance".to_owned())].into(),
                },
            )?;
            if c.id.is_empty() || c.email != email {
                return Err(format!(
                    "created customer id '{}' email '{}'",
                    c.id, c.email
                ));
            }
            let read = self.must::<ops::GetCustomer>(a, &ObjectRef::new(&c.id))?;
            if read.id != c.id || read.email != email {
                return Err(format!(
                    "get_customer('{}') answered '{}' <{}>",
                    c.id, read.id, read.email
                ));
            }
            let renamed = self.must::<ops::UpdateCustomer>(
                a,
                &CustomerUpdate {
                    customer_id: c.id.clone(),
                    name: Some("Renamed Check".into()),
                    ..CustomerUpdate::default()
                },
            )?;
            if renamed.id != c.id || renamed.name.as_deref() != Some("Renamed Check") {
                return Err(format!("update_customer answered {renamed:?}"));
            }
            match self.op::<ops::GetCustomer>(a, &ObjectRef::new(MISSING)) {
                Err(e) if e.is(codes::NOT_FOUND) => Ok(c.id),
                other => Err(format!(
                    "get_customer of an unknown id answered {other:?}, not not_found"
                )),
            }
        })
    }

    // ------------------------------------------------------------------ ids

    pub(super) fn ids_never_repeat(&self, a: &dyn Instance, customer: Option<&str>) {
        const NAME: &str = "ids.never_repeat";
        if customer.is_none() && !self.has(cap::PAYMENTS) {
            return self.skip(
                NAME,
                "creates nothing: neither customers nor payments are declared",
            );
        }
        let b = match self.target.instance() {
            Ok(b) => b,
            Err(e) => {
                self.record(
                    NAME,
                    Outcome::Fail(format!("a second instance did not start: {}", err(&e))),
                );
                return;
            }
        };
        let b = &*b;
        self.check(NAME, || {
            let mut seen: Vec<(String, &str)> = Vec::new();
            let mut note = |id: String, whence: &'static str| -> Result<(), String> {
                if let Some((_, first)) = seen.iter().find(|(s, _)| *s == id) {
                    return Err(format!(
                        "id '{id}' came back from {whence} after {first}: provider ids must never \
                         repeat across instances or restarts (payhost keys its records on them)"
                    ));
                }
                seen.push((id, whence));
                Ok(())
            };
            if let Some(c) = customer {
                note(c.to_owned(), "the first instance")?;
            }
            for (inst, whence) in [
                (a, "the first instance"),
                (b, "a second instance (a restart)"),
            ] {
                let own = match customer {
                    Some(_) => {
                        let c = self.must::<ops::CreateCustomer>(
                            inst,
                            &NewCustomer {
                                email: format!("conformance-ids+{}@example.com", self.run_id),
                                ..NewCustomer::default()
                            },
                        )?;
                        note(c.id.clone(), whence)?;
                        Some(c.id)
                    }
                    None => None,
                };
                if self.has(cap::PAYMENTS) {
                    let p = self.must::<ops::CreatePayment>(
                        inst,
                        &self.new_payment(own.as_deref(), None),
                    )?;
                    note(p.id, whence)?;
                }
            }
            Ok(())
        });
    }

    // ------------------------------------------------------------------ payment methods

    pub(super) fn payment_methods(&self, a: &dyn Instance, customer: Option<&str>) {
        const NAME: &str = "payment_methods.attach_list_default";
        if !self.has(cap::PAYMENT_METHODS) {
            return self.skip(NAME, "no payment_methods capability");
        }
        let (Some(customer), Some(method)) = (
            customer,
            self.manifest.fixtures.payment_method_succeeds.as_deref(),
        ) else {
            return self.skip(
                NAME,
                "needs a customer and the payment_method_succeeds fixture",
            );
        };
        self.check(NAME, || {
            let pm = self.must::<ops::AttachPaymentMethod>(
                a,
                &AttachPaymentMethod {
                    customer_id: customer.into(),
                    payment_method: method.into(),
                },
            )?;
            let list = self.must::<ops::ListPaymentMethods>(
                a,
                &CustomerRef {
                    customer_id: customer.into(),
                },
            )?;
            if !list.data.iter().any(|m| m.id == pm.id) {
                return Err(format!(
                    "attached '{}' is not in the customer's list",
                    pm.id
                ));
            }
            let c = self.must::<ops::SetDefaultPaymentMethod>(
                a,
                &SetDefaultPaymentMethod {
                    customer_id: customer.into(),
                    payment_method: pm.id.clone(),
                },
            )?;
            if c.default_payment_method.as_deref() != Some(pm.id.as_str()) {
                return Err(format!(
                    "default payment method is {:?}, not '{}'",
                    c.default_payment_method, pm.id
                ));
            }
            Ok(())
        });
    }
}
