use super::*;
use crate::config::routing::{Facts, When};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// Instances as a test declares them: capabilities, running or not, circuit.
#[derive(Default)]
struct Fleet(BTreeMap<String, (Vec<String>, bool, Circuit)>);

impl Fleet {
    fn with(mut self, name: &str, caps: &[&str]) -> Self {
        let caps = caps.iter().map(|c| (*c).to_owned()).collect();
        self.0
            .insert(name.to_owned(), (caps, true, Circuit::Closed));
        self
    }
    fn stopped(mut self, name: &str) -> Self {
        self.0.get_mut(name).unwrap().1 = false;
        self
    }
    fn open(mut self, name: &str) -> Self {
        self.0.get_mut(name).unwrap().2 = Circuit::Open { until: 9 };
        self
    }
}

impl Instances for Fleet {
    fn lacks(&self, instance: &str, needs: &[&str]) -> Result<Option<String>, String> {
        match self.0.get(instance) {
            Some((caps, true, _)) => Ok(needs
                .iter()
                .find(|n| !caps.iter().any(|c| c == *n))
                .map(|n| (*n).to_owned())),
            Some(_) => Err("stopped".into()),
            None => Err("unknown".into()),
        }
    }
    fn circuit(&self, instance: &str) -> Circuit {
        self.0.get(instance).map_or(Circuit::Closed, |i| i.2)
    }
}

fn router(text: &str) -> Router {
    let c: Config = toml::from_str(&format!(
        "[host]\ndefault_provider = \"a\"\n[providers.a]\nplugin = \"x\"\n[providers.b]\nplugin = \"x\"\n\
         [providers.c]\nplugin = \"x\"\n{text}"
    ))
    .unwrap();
    let mut problems = Vec::new();
    crate::config::routing::problems(&c, &mut problems);
    assert!(problems.is_empty(), "{problems:?}");
    Router::new(&c)
}

fn fleet() -> Fleet {
    Fleet::default()
        .with("a", &["payments"])
        .with("b", &["payments", "manual_capture"])
        .with("c", &["payments"])
}

fn eur(amount: i64) -> Facts {
    Facts {
        currency: Some("eur".into()),
        amount: Some(amount),
        ..Facts::default()
    }
}

const TABLE: &str = "[routing]\ndefault = [\"a\", \"b\"]\n\
    [[routing.rules]]\nname = \"eur-small\"\nwhen = { currency = [\"eur\"], amount_max = 1000 }\nroute = [\"c\", \"a\"]\n\
    [[routing.rules]]\nname = \"eur\"\nwhen = { currency = [\"eur\"] }\nroute = [\"b\"]\n\
    [[routing.rules]]\nname = \"acme\"\nwhen = { tenant = [\"acme\"] }\nsplit = { a = 90, c = 10 }\n";

#[test]
fn the_first_rule_that_matches_wins() {
    let r = router(TABLE);
    let f = fleet();
    let d = r.decide(&eur(500), &["payments"], "k", None, &f);
    assert_eq!(
        (d.rule.as_str(), d.candidates.clone()),
        ("eur-small", vec!["c".into(), "a".into()])
    );
    let d = r.decide(&eur(5000), &["payments"], "k", None, &f);
    assert_eq!((d.rule.as_str(), d.kind), ("eur", "priority"));
    let usd = Facts {
        currency: Some("usd".into()),
        ..Facts::default()
    };
    let d = r.decide(&usd, &["payments"], "k", None, &f);
    assert_eq!(
        (d.rule.as_str(), d.candidates.clone()),
        ("default", vec!["a".into(), "b".into()])
    );
    let acme = Facts {
        tenant: Some("acme".into()),
        ..eur(5000)
    };
    assert_eq!(
        r.decide(&acme, &["payments"], "k", None, &f).rule,
        "eur",
        "the eur rule comes first"
    );
}

#[test]
fn a_tenant_mapping_and_a_named_instance_are_one_instance_routes() {
    let r = router(&format!("[tenants]\ninitech = \"c\"\n{TABLE}"));
    let f = fleet();
    let t = Facts {
        tenant: Some("initech".into()),
        ..eur(5)
    };
    let d = r.decide(&t, &["payments"], "k", Some("b"), &f);
    assert_eq!(
        (d.rule.as_str(), d.candidates.clone()),
        ("tenants.initech", vec!["c".into()])
    );
    let d = r.decide(&eur(5), &["payments"], "k", Some("b"), &f);
    assert_eq!(
        (d.rule.as_str(), d.kind, d.candidates.clone()),
        ("provider", "provider", vec!["b".into()])
    );
}

#[test]
fn instances_that_cannot_take_it_are_skipped_with_the_reason() {
    let r = router(TABLE);
    let f = fleet().stopped("a");
    let d = r.decide(&eur(5000), &["payments", "manual_capture"], "k", None, &f);
    assert_eq!(d.candidates, vec!["b".to_owned()]);
    let usd = Facts::default();
    let d = r.decide(&usd, &["payments", "manual_capture"], "k", None, &f);
    assert_eq!(d.candidates, vec!["b".to_owned()]);
    assert_eq!(d.skipped[0].instance, "a");
    assert!(matches!(d.skipped[0].why, Skip::NotRunning { .. }));
    let d = r.decide(
        &eur(10),
        &["payments", "manual_capture"],
        "k",
        None,
        &fleet().open("b"),
    );
    assert!(d.candidates.is_empty());
    assert_eq!(
        d.skipped.iter().map(|s| s.why.clone()).collect::<Vec<_>>(),
        vec![
            Skip::Lacks {
                capability: "manual_capture".into()
            },
            Skip::Lacks {
                capability: "manual_capture".into()
            }
        ]
    );
    assert_eq!(d.first(), Some("c"), "whose error the caller gets");
    let d = r.decide(&eur(5000), &["payments"], "k", None, &fleet().open("b"));
    assert!(
        matches!(d.skipped[0].why, Skip::CircuitOpen { .. }),
        "{d:?}"
    );
}

#[test]
fn a_split_lands_within_two_percent_over_100k_payments_and_stays_put_per_key() {
    let r = router(TABLE);
    let f = fleet();
    let acme = Facts {
        tenant: Some("acme".into()),
        ..Facts::default()
    };
    let mut to_a = 0u32;
    for i in 0..100_000 {
        let d = r.decide(&acme, &["payments"], &format!("order-{i}"), None, &f);
        assert_eq!(d.candidates.len(), 2, "the other instance takes over");
        if d.candidates[0] == "a" {
            to_a += 1;
        }
    }
    assert!(
        (88_000..=92_000).contains(&to_a),
        "{to_a} of 100,000 to a (90%)"
    );
    let first = r.decide(&acme, &["payments"], "order-7", None, &f);
    for _ in 0..10 {
        assert_eq!(r.decide(&acme, &["payments"], "order-7", None, &f), first);
    }
}

fn when_strategy() -> impl Strategy<Value = When> {
    let list = |items: &'static [&'static str]| {
        proptest::option::of(proptest::sample::subsequence(items, 1..=items.len()))
            .prop_map(|o| o.map(|v| v.into_iter().map(str::to_owned).collect::<Vec<_>>()))
    };
    (
        list(&["acme", "initech"]),
        list(&["eur", "usd", "jpy"]),
        proptest::option::of(0i64..2000),
        proptest::option::of(0i64..2000),
        proptest::option::of(proptest::bool::ANY),
        proptest::option::of(prop_oneof![Just("automatic"), Just("manual")]),
        proptest::option::of(proptest::sample::subsequence(&["web", "app"][..], 0..=1)),
    )
        .prop_map(
            |(tenant, currency, lo, hi, redirect, capture, channel)| When {
                tenant,
                currency,
                amount_min: lo,
                amount_max: hi,
                redirect,
                capture_method: capture.map(str::to_owned),
                metadata: channel.map(|c| {
                    c.into_iter()
                        .map(|v| ("channel".to_owned(), v.to_owned()))
                        .collect()
                }),
                ..When::default()
            },
        )
}

fn facts_strategy() -> impl Strategy<Value = Facts> {
    (
        proptest::option::of(prop_oneof![Just("acme"), Just("initech"), Just("other")]),
        proptest::option::of(prop_oneof![
            Just("eur"),
            Just("usd"),
            Just("jpy"),
            Just("gbp")
        ]),
        proptest::option::of(0i64..2000),
        proptest::bool::ANY,
        proptest::option::of(prop_oneof![Just("automatic"), Just("manual")]),
        proptest::option::of(prop_oneof![Just("web"), Just("app")]),
    )
        .prop_map(
            |(tenant, currency, amount, redirect, capture, channel)| Facts {
                tenant: tenant.map(str::to_owned),
                currency: currency.map(str::to_owned),
                amount,
                redirect,
                capture_method: capture.map(str::to_owned),
                metadata: channel
                    .map(|c| [("channel".to_owned(), c.to_owned())].into())
                    .unwrap_or_default(),
                ..Facts::default()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// A rule refused as shadowed really can never match: whatever the later rule matches,
    /// the earlier one matches too.
    #[test]
    fn a_covered_rule_never_matches_what_the_covering_one_does_not(
        wide in when_strategy(), narrow in when_strategy(), f in facts_strategy()
    ) {
        if wide.covers(&narrow) && narrow.matches(&f) {
            prop_assert!(wide.matches(&f), "{wide:?} covers {narrow:?} but not {f:?}");
        }
    }

    /// The decision names the first rule whose conditions hold, whatever the table.
    #[test]
    fn the_decision_is_the_first_matching_rule(
        whens in proptest::collection::vec(when_strategy(), 1..6), f in facts_strategy()
    ) {
        let mut text = String::from("[routing]\ndefault = [\"a\"]\n");
        for i in 0..whens.len() {
            text.push_str(&format!("[[routing.rules]]\nname = \"r{i}\"\nroute = [\"b\"]\n"));
        }
        let mut c: Config = toml::from_str(&format!(
            "[providers.a]\nplugin = \"x\"\n[providers.b]\nplugin = \"x\"\n{text}"
        )).unwrap();
        for (rule, w) in c.routing.rules.iter_mut().zip(&whens) {
            rule.when = w.clone();
        }
        let d = Router::new(&c).decide(&f, &["payments"], "k", None, &fleet());
        let expected = whens
            .iter()
            .position(|w| w.matches(&f))
            .map_or("default".to_owned(), |i| format!("r{i}"));
        prop_assert_eq!(d.rule, expected);
    }
}
