//! Generated inputs (proptest, thousands of cases each) for the parsers payhost exposes to
//! the outside: the signature header, the form encoder, the mock's and Stripe's webhook
//! mappers and verifiers, and the API's JSON bodies. None may panic; every refusal is a
//! clean error; what is well formed round-trips.

use payhost::api::requests::{
    CancelSubscription, ChangePrice, Checkout, CreateCustomer, CreatePayment, CreateRefund,
    CreateSubscription, UpdateCustomer,
};
use payhost::http::parse_json;
use payhost_plugin_api::{codes, signature, Headers, WebhookDelivery, WebhookEvent};
use payhost_plugin_kit::form::Form;
use proptest::prelude::*;
use serde_json::{json, Value};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 2_000,
        ..ProptestConfig::default()
    }
}

/// JSON of any shape, with the strings and numbers parsers trip on.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        prop_oneof![
            Just("usd"),
            Just("jpy"),
            Just("succeeded"),
            Just("pi_1"),
            Just("")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    "[a-z_]{1,12}",
                    Just("id".to_owned()),
                    Just("amount".to_owned()),
                    Just("currency".to_owned()),
                    Just("status".to_owned()),
                    Just("customer".to_owned()),
                    Just("object".to_owned()),
                    Just("metadata".to_owned()),
                ],
                inner,
                0..8
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An event envelope whose type is one the mappers know, around any object.
fn provider_event(types: &'static [&'static str]) -> impl Strategy<Value = String> {
    (prop::sample::select(types), any_json(), any_json()).prop_map(|(kind, object, extra)| {
        json!({"id": "evt_1", "type": kind, "created": 1_700_000_000, "data": {"object": object}, "extra": extra})
            .to_string()
    })
}

const MOCK_TYPES: &[&str] = &[
    "payment.created",
    "payment.succeeded",
    "payment.failed",
    "refund.succeeded",
    "subscription.created",
    "subscription.updated",
    "subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
    "customer.updated",
    "customer.deleted",
];

const STRIPE_TYPES: &[&str] = &[
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "payment_intent.amount_capturable_updated",
    "charge.refunded",
    "charge.refund.updated",
    "charge.dispute.created",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
    "customer.updated",
    "customer.deleted",
    "payment_method.detached",
];

fn event(payload: String) -> WebhookEvent {
    WebhookEvent {
        id: "evt_1".into(),
        event_type: "x".into(),
        created: 1_700_000_000,
        payload,
        fetched: None,
    }
}

fn delivery(body: &[u8], header: (&str, &str)) -> WebhookDelivery {
    WebhookDelivery {
        body: body.to_vec().into(),
        headers: Headers::new().with(header.0, header.1),
        now: 1_700_000_000,
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn signature_headers_of_any_shape_are_refused_cleanly(header in ".{0,200}", body in prop::collection::vec(any::<u8>(), 0..200)) {
        let r = signature::verify(&header, &body, &["whsec_a", "whsec_b"], 1_700_000_000, 300);
        prop_assert!(r.is_err(), "a made-up header verified: {header}");
    }

    #[test]
    fn signature_headers_made_by_the_signer_verify_only_their_body(
        body in prop::collection::vec(any::<u8>(), 0..300),
        t in 1_600_000_000i64..1_800_000_000,
        flip in any::<prop::sample::Index>(),
    ) {
        let header = signature::header(&["whsec_a"], t, &body);
        prop_assert_eq!(signature::verify(&header, &body, &["whsec_b", "whsec_a"], t, 300), Ok(t));
        prop_assert!(signature::verify(&header, &body, &["whsec_b"], t, 300).is_err());
        if !body.is_empty() {
            let mut other = body.clone();
            let i = flip.index(other.len());
            other[i] ^= 1;
            prop_assert!(signature::verify(&header, &other, &["whsec_a"], t, 300).is_err());
        }
        prop_assert!(signature::verify(&header, &body, &["whsec_a"], t + 301, 300).is_err(), "too old");
    }

    #[test]
    fn forms_round_trip_any_text(pairs in prop::collection::vec((".{0,20}", ".{0,40}"), 0..10)) {
        let form = pairs.iter().fold(Form::new(), |f, (k, v)| f.set(k, v));
        let decoded = Form::decode(&form.encode()).unwrap();
        prop_assert_eq!(decoded.pairs(), pairs.as_slice());
    }

    #[test]
    fn any_text_decodes_as_a_form_or_fails_cleanly(s in "([a-z%=&+]|.){0,200}") {
        match Form::decode(&s) {
            // What was read is what encoding it again gives back.
            Ok(form) => {
                let again = Form::decode(&form.encode()).unwrap();
                prop_assert_eq!(again.pairs(), form.pairs());
            }
            // Only a percent escape can be wrong (text with none always decodes), and the
            // refusal says what was wrong.
            Err(why) => {
                prop_assert!(s.contains('%'), "{s:?} refused: {why}");
                prop_assert!(!why.is_empty());
            }
        }
    }

    #[test]
    fn the_mock_mapper_takes_any_event(payload in prop_oneof![provider_event(MOCK_TYPES), ".{0,200}"]) {
        let _ = payhost_plugin_mock::webhook::map(&event(payload.clone()));
        let forged = payhost_plugin_mock::webhook::verify(
            &delivery(payload.as_bytes(), ("X-Webhook-Signature", "t=1700000000,v1=00")),
            &["whsec_a"],
        );
        prop_assert_eq!(forged.map(|v| v.id).map_err(|e| e.code), Err(codes::INVALID_SIGNATURE.to_owned()));
    }

    #[test]
    fn the_stripe_mapper_takes_any_event(payload in prop_oneof![provider_event(STRIPE_TYPES), ".{0,200}"]) {
        let _ = payhost_plugin_stripe::webhook::map(&event(payload.clone()));
        let signed = signature::header(&["whsec_a"], 1_700_000_000, payload.as_bytes());
        let verified = payhost_plugin_stripe::webhook::verify(
            &delivery(payload.as_bytes(), ("Stripe-Signature", &signed)),
            &["whsec_a"],
        )
        .map(|v| v.event);
        // Signed right: accepted exactly when the body is a Stripe event envelope (an
        // object with a non-empty id and type), else refused for its body, not its signature.
        let envelope = serde_json::from_str::<Value>(&payload).ok().filter(|e| {
            e["id"].as_str().is_some_and(|s| !s.is_empty())
                && e["type"].as_str().is_some_and(|s| !s.is_empty())
        });
        match (verified, envelope) {
            (Ok(v), Some(e)) => {
                prop_assert_eq!(Some(v.id.as_str()), e["id"].as_str());
                prop_assert_eq!(Some(v.event_type.as_str()), e["type"].as_str());
            }
            (Err(e), None) => {
                prop_assert_eq!(e.code.as_str(), codes::INVALID_REQUEST, "{}", e.message);
            }
            (Ok(v), None) => prop_assert!(false, "{payload:?} accepted as {}", v.id),
            (Err(e), Some(_)) => prop_assert!(false, "{payload:?} refused: {}", e.message),
        }
    }

    #[test]
    fn api_bodies_of_any_shape_are_parsed_or_refused_with_an_error(body in prop_oneof![
        any_json().prop_map(|v| v.to_string()),
        ".{0,200}",
        any_json().prop_map(|v| json!({"amount": v, "currency": "usd", "customer": "cust_1"}).to_string()),
        any_json().prop_map(|v| json!({"user_id": v, "email": "a@example.com", "metadata": {"k": v}}).to_string()),
    ]) {
        let b = body.as_bytes();
        for outcome in [
            parse_json::<CreateCustomer>(b).err(),
            parse_json::<UpdateCustomer>(b).err(),
            parse_json::<CreatePayment>(b).err(),
            parse_json::<CreateRefund>(b).err(),
            parse_json::<CreateSubscription>(b).err(),
            parse_json::<ChangePrice>(b).err(),
            parse_json::<CancelSubscription>(b).err(),
            parse_json::<Checkout>(b).err(),
        ]
        .into_iter()
        .flatten()
        {
            prop_assert_eq!(outcome.status.as_u16(), 400);
            prop_assert!(!outcome.message.is_empty());
        }
    }
}
