//! The link between payhost's ids and the providers' ids of the same records.

use super::{Arg, RowExt, Store, StoreError};
use std::collections::HashMap;

/// The kinds of records that carry a provider's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    Customer,
    PaymentMethod,
    Payment,
    Subscription,
    Refund,
    Invoice,
}

impl Record {
    pub fn name(self) -> &'static str {
        match self {
            Record::Customer => "customer",
            Record::PaymentMethod => "payment method",
            Record::Payment => "payment",
            Record::Subscription => "subscription",
            Record::Refund => "refund",
            Record::Invoice => "invoice",
        }
    }

    fn table(self) -> &'static str {
        match self {
            Record::Customer => "customers",
            Record::PaymentMethod => "payment_methods",
            Record::Payment => "payments",
            Record::Subscription => "subscriptions",
            Record::Refund => "refunds",
            Record::Invoice => "invoices",
        }
    }
}

/// The records an event can name by the provider's id.
const NAMED_BY_EVENTS: [Record; 5] = [
    Record::Customer,
    Record::Payment,
    Record::Subscription,
    Record::Refund,
    Record::Invoice,
];

impl Store {
    /// payhost's id of the `record` the provider knows as `provider_id`.
    pub async fn id_by_provider_id(
        &self,
        record: Record,
        provider: &str,
        provider_id: &str,
    ) -> Result<Option<String>, StoreError> {
        self.text(
            &format!(
                "SELECT id FROM {} WHERE provider = $1 AND provider_id = $2",
                record.table()
            ),
            vec![provider.into(), provider_id.into()],
        )
        .await
    }

    /// payhost's ids of the provider objects named (customers, payments, subscriptions,
    /// refunds, invoices), in one round trip.
    pub async fn payhost_ids(
        &self,
        provider: &str,
        provider_ids: &[&str],
    ) -> Result<HashMap<String, String>, StoreError> {
        if provider_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let list: Vec<String> = (0..provider_ids.len())
            .map(|i| format!("${}", i + 2))
            .collect();
        let list = list.join(", ");
        let sql = NAMED_BY_EVENTS
            .iter()
            .map(|r| {
                format!(
                    "SELECT provider_id, id FROM {} WHERE provider = $1 AND provider_id IN ({list})",
                    r.table()
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let mut args: Vec<Arg> = vec![provider.into()];
        args.extend(provider_ids.iter().map(|p| Arg::from(*p)));
        self.all(&sql, args)
            .await?
            .iter()
            .map(|r| Ok((r.text("provider_id")?, r.text("id")?)))
            .collect()
    }
}
