//! `[routing]`: where new records go. A default route and ordered rules; a rule matches on
//! what a request carries (`when`) and names a route: instances in priority order
//! (`route`, the next takes over when one cannot be reached) or weights (`split`, a volume
//! split, stable per payment). `[tenants] acme = "x"` is a one-instance route ahead of the
//! rules. The first rule that matches wins; a rule an earlier one always wins over can
//! never match and is refused, as are unknown instances, empty routes and weights that do
//! not add up to 100. What a condition means is written once, here: the router and the
//! checks use the same [`When::matches`] and [`When::covers`].

use super::Config;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingSection {
    /// The route of a request no rule matches, in priority order. Without it,
    /// `host.default_provider` alone.
    #[serde(default)]
    pub default: Option<Vec<String>>,
    /// Evaluated in order; the first whose `when` holds decides.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// When an instance is skipped for its failures.
    #[serde(default)]
    pub breaker: BreakerSection,
    /// How payments whose outcome is unknown are asked about again.
    #[serde(default)]
    pub resolver: ResolverSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Named in errors, `explain` and the events of the payments it routes.
    pub name: String,
    /// The conditions, all of which must hold; none: every request.
    #[serde(default)]
    pub when: When,
    /// Instances in priority order: the next takes over when one cannot be reached.
    #[serde(default)]
    pub route: Option<Vec<String>>,
    /// Instance → weight (adding up to 100): each payment goes to one, chosen by its
    /// Idempotency-Key (else its id), the others take over in order of weight.
    #[serde(default)]
    pub split: Option<BTreeMap<String, u32>>,
}

/// What a rule matches on. A condition on something a request does not carry (a currency
/// for a new customer, a country payhost does not know) does not hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    /// The request's tenant is one of these.
    #[serde(default)]
    pub tenant: Option<Vec<String>>,
    /// ISO 4217 codes, either case.
    #[serde(default)]
    pub currency: Option<Vec<String>>,
    /// Minor units, inclusive.
    #[serde(default)]
    pub amount_min: Option<i64>,
    /// Minor units, inclusive.
    #[serde(default)]
    pub amount_max: Option<i64>,
    /// `automatic` or `manual`.
    #[serde(default)]
    pub capture_method: Option<String>,
    /// Whether the request accepts a redirect (it gives a `return_url`).
    #[serde(default)]
    pub redirect: Option<bool>,
    /// The kind of the saved payment method it names (`card`, ...).
    #[serde(default)]
    pub payment_method_kind: Option<Vec<String>>,
    /// The instance the saved payment method it names belongs to.
    #[serde(default)]
    pub payment_method_provider: Option<Vec<String>>,
    /// The customer's country (ISO 3166 alpha-2, either case), from the customer's
    /// `country` metadata.
    #[serde(default)]
    pub country: Option<Vec<String>>,
    /// Metadata keys with these values, all of them.
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// What payhost knows about a request when it routes it.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub tenant: Option<String>,
    /// Lowercase.
    pub currency: Option<String>,
    pub amount: Option<i64>,
    /// `automatic` or `manual`, for payments.
    pub capture_method: Option<String>,
    pub redirect: bool,
    pub payment_method_kind: Option<String>,
    pub payment_method_provider: Option<String>,
    /// Uppercase.
    pub country: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

fn listed(list: &Option<Vec<String>>, value: Option<&str>, fold: fn(&str) -> String) -> bool {
    match list {
        None => true,
        Some(l) => value.is_some_and(|v| l.iter().any(|x| fold(x) == fold(v))),
    }
}

fn same(s: &str) -> String {
    s.to_owned()
}

fn lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

/// Whether list condition `wide` holds wherever `narrow` does.
fn list_covers(
    wide: &Option<Vec<String>>,
    narrow: &Option<Vec<String>>,
    fold: fn(&str) -> String,
) -> bool {
    match (wide, narrow) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(w), Some(n)) => n.iter().all(|x| w.iter().any(|y| fold(x) == fold(y))),
    }
}

impl When {
    /// Whether every condition holds for `f`.
    pub fn matches(&self, f: &Facts) -> bool {
        listed(&self.tenant, f.tenant.as_deref(), same)
            && listed(&self.currency, f.currency.as_deref(), lower)
            && self
                .amount_min
                .is_none_or(|m| f.amount.is_some_and(|a| a >= m))
            && self
                .amount_max
                .is_none_or(|m| f.amount.is_some_and(|a| a <= m))
            && listed(
                &self.capture_method.clone().map(|c| vec![c]),
                f.capture_method.as_deref(),
                lower,
            )
            && self.redirect.is_none_or(|r| r == f.redirect)
            && listed(
                &self.payment_method_kind,
                f.payment_method_kind.as_deref(),
                lower,
            )
            && listed(
                &self.payment_method_provider,
                f.payment_method_provider.as_deref(),
                same,
            )
            && listed(&self.country, f.country.as_deref(), lower)
            && self
                .metadata
                .as_ref()
                .is_none_or(|m| m.iter().all(|(k, v)| f.metadata.get(k) == Some(v)))
    }

    /// Whether this holds for every request `other` holds for: a rule after one that
    /// covers it can never match.
    pub fn covers(&self, other: &When) -> bool {
        let range = |mine: Option<i64>, theirs: Option<i64>, wider: fn(i64, i64) -> bool| match (
            mine, theirs,
        ) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(m), Some(t)) => wider(m, t),
        };
        list_covers(&self.tenant, &other.tenant, same)
            && list_covers(&self.currency, &other.currency, lower)
            && range(self.amount_min, other.amount_min, |m, t| m <= t)
            && range(self.amount_max, other.amount_max, |m, t| m >= t)
            && list_covers(
                &self.capture_method.clone().map(|c| vec![c]),
                &other.capture_method.clone().map(|c| vec![c]),
                lower,
            )
            && match (self.redirect, other.redirect) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(a), Some(b)) => a == b,
            }
            && list_covers(&self.payment_method_kind, &other.payment_method_kind, lower)
            && list_covers(
                &self.payment_method_provider,
                &other.payment_method_provider,
                same,
            )
            && list_covers(&self.country, &other.country, lower)
            && match (&self.metadata, &other.metadata) {
                (None, _) => true,
                (Some(m), None) => m.is_empty(),
                (Some(m), Some(o)) => m.iter().all(|(k, v)| o.get(k) == Some(v)),
            }
    }

    /// Why no request can match, if none can.
    fn impossible(&self) -> Option<String> {
        let lists = [
            ("tenant", &self.tenant),
            ("currency", &self.currency),
            ("payment_method_kind", &self.payment_method_kind),
            ("payment_method_provider", &self.payment_method_provider),
            ("country", &self.country),
        ];
        if let Some((name, _)) = lists
            .iter()
            .find(|(_, l)| l.as_ref().is_some_and(Vec::is_empty))
        {
            return Some(format!(
                "'when.{name}' is an empty list: nothing matches it"
            ));
        }
        if let (Some(lo), Some(hi)) = (self.amount_min, self.amount_max) {
            if lo > hi {
                return Some(format!(
                    "'when.amount_min' ({lo}) is above 'when.amount_max' ({hi}): no amount matches"
                ));
            }
        }
        None
    }
}

/// One rule's route, as the router walks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteSpec {
    /// In priority order.
    Priority(Vec<String>),
    /// (instance, weight), weights adding up to 100.
    Split(Vec<(String, u32)>),
}

impl RouteSpec {
    /// Every instance the route names.
    pub fn instances(&self) -> Vec<&str> {
        match self {
            RouteSpec::Priority(v) => v.iter().map(String::as_str).collect(),
            RouteSpec::Split(v) => v.iter().map(|(i, _)| i.as_str()).collect(),
        }
    }
}

impl Rule {
    /// The route it names (`route` or `split`, checked to be exactly one by [`problems`]).
    pub fn spec(&self) -> RouteSpec {
        match (&self.route, &self.split) {
            (_, Some(split)) => {
                RouteSpec::Split(split.iter().map(|(k, v)| (k.clone(), *v)).collect())
            }
            (Some(route), None) => RouteSpec::Priority(route.clone()),
            (None, None) => RouteSpec::Priority(Vec::new()),
        }
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakerSection {
    /// Technical failures (unreachable, timeouts, 5xx, 429, panics, no free call slot)
    /// within `window_secs` that open an instance's circuit. Declines and refused input do
    /// not count.
    #[serde(default = "default_failures")]
    pub failures: u32,
    #[serde(default = "default_window_secs")]
    pub window_secs: u64,
    /// How long an open circuit skips its instance before probe calls go through.
    #[serde(default = "default_cooldown_secs")]
    pub cooldown_secs: u64,
    /// Calls let through at once after the cool-down; one success closes the circuit.
    #[serde(default = "default_probes")]
    pub probes: u32,
}

impl Default for BreakerSection {
    fn default() -> Self {
        Self {
            failures: default_failures(),
            window_secs: default_window_secs(),
            cooldown_secs: default_cooldown_secs(),
            probes: default_probes(),
        }
    }
}

fn default_failures() -> u32 {
    5
}
fn default_window_secs() -> u64 {
    60
}
fn default_cooldown_secs() -> u64 {
    30
}
fn default_probes() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolverSection {
    /// Seconds between the checks of a payment whose outcome is unknown: seconds, then
    /// minutes, then hours; the last one repeats until the provider's answer is known.
    #[serde(default = "default_backoff_secs")]
    pub backoff_secs: Vec<u64>,
}

impl Default for ResolverSection {
    fn default() -> Self {
        Self {
            backoff_secs: default_backoff_secs(),
        }
    }
}

fn default_backoff_secs() -> Vec<u64> {
    vec![5, 30, 120, 600, 1800, 3600, 21600]
}

impl ResolverSection {
    /// The pause before check `n` (0-based).
    pub fn pause(&self, n: u64) -> u64 {
        let i = usize::try_from(n).unwrap_or(usize::MAX);
        self.backoff_secs
            .get(i)
            .or(self.backoff_secs.last())
            .copied()
            .unwrap_or(60)
    }
}

impl RoutingSection {
    /// The route of a request no rule matches: `default`, else `host.default_provider`.
    pub fn default_route(&self, default_provider: Option<&str>) -> Vec<String> {
        match &self.default {
            Some(d) => d.clone(),
            None => default_provider.map(str::to_owned).into_iter().collect(),
        }
    }
}

/// `[tenants]` as the rules they are: one per tenant, a one-instance route, ahead of
/// `[[routing.rules]]`.
pub fn tenant_rules(c: &Config) -> Vec<Rule> {
    c.tenants
        .iter()
        .map(|(tenant, instance)| Rule {
            name: format!("tenants.{tenant}"),
            when: When {
                tenant: Some(vec![tenant.clone()]),
                ..When::default()
            },
            route: Some(vec![instance.clone()]),
            split: None,
        })
        .collect()
}

/// The routing section's problems, as (key, what was expected).
pub fn problems(c: &Config, out: &mut Vec<(String, String)>) {
    let r = &c.routing;
    let known = || c.providers.keys().cloned().collect::<Vec<_>>().join(", ");
    let unknown = |key: String, names: &[&str], out: &mut Vec<(String, String)>| {
        for name in names {
            if !c.providers.contains_key(*name) {
                out.push((
                    key.clone(),
                    format!(
                        "'{name}' is not a configured provider (configured: {})",
                        known()
                    ),
                ));
            }
        }
    };
    if let Some(d) = &r.default {
        if d.is_empty() {
            out.push((
                "routing.default".into(),
                "at least one provider instance (an empty route sends nothing anywhere)".into(),
            ));
        }
        let names: Vec<&str> = d.iter().map(String::as_str).collect();
        unknown("routing.default".into(), &names, out);
        repeats("routing.default".into(), &names, out);
        if let (Some(dp), Some(first)) = (&c.host.default_provider, d.first()) {
            if dp != first {
                out.push((
                    "host.default_provider".into(),
                    format!(
                        "'{dp}' differs from routing.default's first instance '{first}': \
                         routing.default is the default route; remove one of them"
                    ),
                ));
            }
        }
    }
    let mut earlier = tenant_rules(c);
    for (i, rule) in r.rules.iter().enumerate() {
        let at = format!("routing.rules[{i}]");
        let named = |what: String| format!("rule '{}': {what}", rule.name);
        if rule.name.trim().is_empty() {
            out.push((
                format!("routing.rules[{i}].name"),
                "a name for the rule".into(),
            ));
        }
        if r.rules[..i].iter().any(|o| o.name == rule.name) {
            out.push((
                at.clone(),
                format!("a unique name ('{}' repeats)", rule.name),
            ));
        }
        match (&rule.route, &rule.split) {
            (Some(_), Some(_)) | (None, None) => out.push((
                at.clone(),
                named("exactly one of 'route' (priority) or 'split' (weights)".into()),
            )),
            (Some(route), None) => {
                if route.is_empty() {
                    out.push((
                        at.clone(),
                        named("'route' names at least one instance".into()),
                    ));
                }
                let names: Vec<&str> = route.iter().map(String::as_str).collect();
                unknown(format!("{at}.route ('{}')", rule.name), &names, out);
                repeats(format!("{at}.route"), &names, out);
            }
            (None, Some(split)) => {
                let names: Vec<&str> = split.keys().map(String::as_str).collect();
                unknown(format!("{at}.split ('{}')", rule.name), &names, out);
                let total: u64 = split.values().map(|w| u64::from(*w)).sum();
                if split.is_empty() || total != 100 || split.values().any(|w| *w == 0) {
                    out.push((
                        format!("{at}.split"),
                        named(format!(
                            "positive weights adding up to 100 (these add up to {total})"
                        )),
                    ));
                }
            }
        }
        if let Some(why) = rule.when.impossible() {
            out.push((format!("{at}.when"), named(why)));
        }
        if let Some(cm) = &rule.when.capture_method {
            if !matches!(cm.to_ascii_lowercase().as_str(), "automatic" | "manual") {
                out.push((
                    format!("{at}.when.capture_method"),
                    named("'automatic' or 'manual'".into()),
                ));
            }
        }
        if let Some(providers) = &rule.when.payment_method_provider {
            let names: Vec<&str> = providers.iter().map(String::as_str).collect();
            unknown(
                format!("{at}.when.payment_method_provider ('{}')", rule.name),
                &names,
                out,
            );
        }
        for (field, codes) in [
            ("currency", &rule.when.currency),
            ("country", &rule.when.country),
        ] {
            let len = if field == "currency" { 3 } else { 2 };
            if let Some(bad) = codes
                .iter()
                .flatten()
                .find(|c| c.len() != len || !c.bytes().all(|b| b.is_ascii_alphabetic()))
            {
                out.push((
                    format!("{at}.when.{field}"),
                    named(format!("'{bad}' is not a {len}-letter code")),
                ));
            }
        }
        if let Some(by) = earlier.iter().find(|e| e.when.covers(&rule.when)) {
            out.push((
                at.clone(),
                named(format!(
                    "can never match: rule '{}' before it matches every request it would",
                    by.name
                )),
            ));
        }
        earlier.push(rule.clone());
    }
    let b = &r.breaker;
    if b.failures == 0 || b.window_secs == 0 || b.probes == 0 {
        out.push((
            "routing.breaker".into(),
            "failures, window_secs and probes of at least 1".into(),
        ));
    }
    if r.resolver.backoff_secs.is_empty() || r.resolver.backoff_secs.contains(&0) {
        out.push((
            "routing.resolver.backoff_secs".into(),
            "positive pauses in seconds, e.g. [5, 30, 120, 600, 3600]".into(),
        ));
    }
}

fn repeats(key: String, names: &[&str], out: &mut Vec<(String, String)>) {
    let twice = names
        .iter()
        .enumerate()
        .find_map(|(i, n)| names[..i].contains(n).then_some(n));
    if let Some(n) = twice {
        out.push((key, format!("'{n}' is named twice")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        toml::from_str(&format!(
            "[providers.a]\nplugin = \"mock\"\n[providers.b]\nplugin = \"mock\"\n\
             [providers.c]\nplugin = \"mock\"\n{text}"
        ))
        .unwrap()
    }

    fn problems_of(text: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        problems(&config(text), &mut out);
        out
    }

    #[test]
    fn a_good_table_has_no_problems() {
        let p = problems_of(
            "[routing]\ndefault = [\"a\", \"b\"]\n\
             [[routing.rules]]\nname = \"eur\"\nwhen = { currency = [\"eur\"], amount_max = 100000 }\nroute = [\"b\", \"a\"]\n\
             [[routing.rules]]\nname = \"share\"\nwhen = { tenant = [\"acme\"] }\nsplit = { a = 90, c = 10 }\n",
        );
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn each_mistake_is_named_by_its_rule() {
        let p = problems_of(
            "[routing]\ndefault = []\n\
             [[routing.rules]]\nname = \"ghost\"\nroute = [\"zz\"]\n\
             [[routing.rules]]\nname = \"weights\"\nwhen = { currency = [\"usd\"] }\nsplit = { a = 50, b = 40 }\n\
             [[routing.rules]]\nname = \"never\"\nwhen = { amount_min = 10, amount_max = 5 }\nroute = [\"a\"]\n",
        );
        let text = format!("{p:?}");
        for needle in [
            "routing.default",
            "'ghost'",
            "'zz' is not a configured provider",
            "'weights'",
            "add up to 90",
            "'never'",
            "no amount matches",
        ] {
            assert!(text.contains(needle), "{needle} in {text}");
        }
    }

    #[test]
    fn a_rule_an_earlier_one_covers_is_refused_naming_both() {
        let p = problems_of(
            "[[routing.rules]]\nname = \"euro\"\nwhen = { currency = [\"eur\", \"usd\"] }\nroute = [\"a\"]\n\
             [[routing.rules]]\nname = \"small-euro\"\nwhen = { currency = [\"EUR\"], amount_max = 500 }\nroute = [\"b\"]\n",
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].1.contains("'small-euro'") && p[0].1.contains("rule 'euro'"),
            "{p:?}"
        );
        // A tenant mapping is a rule ahead of all others.
        let p = problems_of(
            "[tenants]\nacme = \"a\"\n[[routing.rules]]\nname = \"acme-eur\"\nwhen = { tenant = [\"acme\"], currency = [\"eur\"] }\nroute = [\"b\"]\n",
        );
        assert!(p.iter().any(|(_, e)| e.contains("tenants.acme")), "{p:?}");
        // Narrower first, wider after: both can match.
        let p = problems_of(
            "[[routing.rules]]\nname = \"small\"\nwhen = { amount_max = 500 }\nroute = [\"b\"]\n\
             [[routing.rules]]\nname = \"all\"\nroute = [\"a\"]\n",
        );
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn conditions_hold_only_for_what_a_request_carries() {
        let when = When {
            currency: Some(vec!["EUR".into()]),
            amount_min: Some(100),
            metadata: Some([("channel".to_owned(), "web".to_owned())].into()),
            ..When::default()
        };
        let mut f = Facts {
            currency: Some("eur".into()),
            amount: Some(100),
            metadata: [("channel".to_owned(), "web".to_owned())].into(),
            ..Facts::default()
        };
        assert!(when.matches(&f));
        f.amount = Some(99);
        assert!(!when.matches(&f));
        f.amount = None;
        assert!(
            !when.matches(&f),
            "a customer has no amount: the condition does not hold"
        );
        assert!(When::default().matches(&Facts::default()));
    }
}
