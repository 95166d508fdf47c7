//! The OpenAPI 3.1 description, generated: utoipa builds the paths and schemas from the
//! handlers' annotations and the request and answer types; this module adds what every
//! operation of a group shares (security, the tenant and idempotency headers, the error
//! answers, `X-Request-Id`), the bodies' cross-field rules (from the same [`Rules`] the
//! parser checks), the configured provider names, and the links between operations that
//! stateful clients and testers follow. The reference page at `/docs` renders it with
//! Swagger UI, whose assets are vendored in the binary.

use crate::api::requests::{Body, Checkout, CreatePayment, CreateSubscription, Rules};
use crate::api::{fields, ErrorBody};
use crate::config::Loaded;
use serde_json::{json, Map, Value};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Tag};
use utoipa::{PartialSchema, ToSchema};

/// The description's skeleton: info, tags, security schemes, the error schema.
pub fn base() -> OpenApi {
    let bearer = |what: &str| {
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(format!("`Authorization: Bearer <{what}>`")))
                .build(),
        )
    };
    let tag = |name: &str, description: &str| {
        let mut t = Tag::new(name);
        t.description = Some(description.to_owned());
        t
    };
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("payhost")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "A payment-provider plugin host: one API over every provider plugin loaded. \
                     Reads answer from payhost's own records; writes go to the record's \
                     provider. Every error has the shape `{\"error\": {\"type\", \"code\", \
                     \"message\", \"param\", \"decline_code\", \"request_id\"}}`.",
                ))
                .build(),
        )
        .components(Some(
            ComponentsBuilder::new()
                .security_scheme("api_key", bearer("API key"))
                .security_scheme("admin_key", bearer("admin key"))
                .schema(ErrorBody::name(), ErrorBody::schema())
                .schemas_from_iter(parameter_schemas())
                .build(),
        ))
        .tags(Some(vec![
            tag(
                "customers",
                "Application users on a provider, and their payment methods.",
            ),
            tag("payments", "One-time payments."),
            tag(
                "refunds",
                "Refunds of payments, made here or at the provider.",
            ),
            tag("subscriptions", "Recurring payments to a price."),
            tag("invoices", "Invoices the provider issued."),
            tag("checkout", "A customer and what they buy, in one call."),
            tag("events", "The domain event log."),
            tag("providers", "The provider instances."),
            tag("webhooks", "Providers' signed webhooks."),
            tag("admin", "The operator's API."),
            tag("operations", "Health, readiness and metrics."),
        ]))
        .build()
}

/// The schemas of the error body and of the types query and path parameters name (utoipa
/// registers body types by itself, not parameter types).
fn parameter_schemas() -> Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::Schema>)> {
    fn entry<T: ToSchema>(
        out: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::Schema>)>,
    ) {
        out.push((T::name().into_owned(), T::schema()));
        T::schemas(out);
    }
    let mut out = Vec::new();
    entry::<ErrorBody>(&mut out);
    entry::<fields::Id>(&mut out);
    entry::<fields::Limit>(&mut out);
    entry::<fields::Flag>(&mut out);
    entry::<fields::Timestamp>(&mut out);
    entry::<fields::StatusFilter>(&mut out);
    entry::<fields::EventType>(&mut out);
    entry::<fields::ProviderName>(&mut out);
    entry::<fields::UserId>(&mut out);
    entry::<fields::Email>(&mut out);
    entry::<fields::TenantId>(&mut out);
    entry::<fields::KeyParam>(&mut out);
    entry::<fields::AuditText>(&mut out);
    out
}

/// The bodies with rules across their fields.
fn body_rules() -> Vec<(String, Rules)> {
    fn entry<T: Body>() -> (String, Rules) {
        (T::name().into_owned(), T::RULES)
    }
    vec![
        entry::<CreatePayment>(),
        entry::<CreateSubscription>(),
        entry::<Checkout>(),
    ]
}

/// `{"required": fields, "properties": {field: not null}}`: the fields given.
fn given(fields: &[&str]) -> Value {
    let props: Map<String, Value> = fields
        .iter()
        .map(|f| ((*f).to_owned(), json!({"not": {"type": "null"}})))
        .collect();
    json!({"required": fields, "properties": props})
}

/// Writes a body's rules into its schema: `anyOf` the groups, `not` both of a pair.
fn apply_rules(schema: &mut Value, rules: &Rules) {
    let mut all = Vec::new();
    if !rules.any_of.is_empty() {
        all.push(json!({
            "anyOf": rules.any_of.iter().map(|g| given(g)).collect::<Vec<_>>(),
            "description": rules.any_of_message,
        }));
    }
    for (a, b) in rules.exclusive {
        all.push(json!({"not": given(&[a, b])}));
    }
    if !all.is_empty() {
        schema["allOf"] = Value::Array(all);
    }
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "headers": {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    })
}

/// The error answers an operation of `/v1` can give, by whether it writes.
fn api_errors(writes: bool, has_body: bool) -> Vec<(&'static str, &'static str)> {
    let mut out = vec![
        ("400", "Invalid request: the field, parameter or header at fault is in `param`"),
        ("401", "Missing or wrong API key"),
        ("403", "The API key lacks the scope (`insufficient_scope`) or acts for another tenant (`tenant_forbidden`)"),
        ("404", "No such record (or route)"),
        ("409", "The record's state does not allow this (`invalid_state`), or the same Idempotency-Key is in flight"),
        ("429", "The provider is rate limiting (`rate_limited`), or this address sent too many wrong keys (`too_many_failed_attempts`, with Retry-After)"),
        ("500", "Internal error; the host log has the details under the request id"),
        ("502", "The provider failed or answered inconsistently"),
        ("503", "The provider is not running or unavailable"),
        ("504", "The provider did not answer in time"),
    ];
    if writes {
        out.push(("402", "The card was declined (`decline_code` says why)"));
        out.push((
            "422",
            "The Idempotency-Key was used for a different request",
        ));
    }
    if has_body {
        out.push(("413", "The body is larger than the host accepts"));
        out.push(("415", "The body is not JSON"));
    }
    out
}

/// Links: after `source` answers `statuses`, these operations can use its answer.
struct LinkSpec {
    source: &'static str,
    statuses: &'static [&'static str],
    name: &'static str,
    target: &'static str,
    parameters: Value,
    body: Option<Value>,
}

fn link(
    source: &'static str,
    statuses: &'static [&'static str],
    name: &'static str,
    target: &'static str,
    parameters: Value,
    body: Option<Value>,
) -> LinkSpec {
    LinkSpec {
        source,
        statuses,
        name,
        target,
        parameters,
        body,
    }
}

/// Every link: each record a write creates leads to what can be done with it.
fn links() -> Vec<LinkSpec> {
    const CREATED: &[&str] = &["200", "201"];
    const OK: &[&str] = &["200"];
    let id = || json!({"id": "$response.body#/id"});
    let first = || json!({"id": "$response.body#/data/0/id"});
    let mut out = Vec::new();
    // Customers.
    for (target, name) in [
        ("get_customer", "GetCustomer"),
        ("update_customer", "UpdateCustomer"),
        ("list_payment_methods", "ListPaymentMethods"),
        ("attach_payment_method", "AttachPaymentMethod"),
        ("set_default_payment_method", "SetDefaultPaymentMethod"),
        ("list_customer_invoices", "ListCustomerInvoices"),
        ("delete_customer", "DeleteCustomer"),
    ] {
        out.push(link("create_customer", CREATED, name, target, id(), None));
        out.push(link("list_customers", OK, name, target, first(), None));
    }
    for (source, statuses) in [("create_customer", CREATED), ("get_customer", OK)] {
        out.push(link(
            source,
            statuses,
            "PayAsCustomer",
            "create_payment",
            json!({}),
            Some(json!({"customer": "$response.body#/id", "user_id": null})),
        ));
        out.push(link(
            source,
            statuses,
            "SubscribeCustomer",
            "create_subscription",
            json!({}),
            Some(json!({"customer": "$response.body#/id", "user_id": null})),
        ));
        out.push(link(
            source,
            statuses,
            "ListPaymentsOfCustomer",
            "list_payments",
            json!({"customer": "$response.body#/id"}),
            None,
        ));
        out.push(link(
            source,
            statuses,
            "ListInvoicesOfCustomer",
            "list_invoices",
            json!({"customer": "$response.body#/id"}),
            None,
        ));
    }
    out.push(link(
        "attach_payment_method",
        OK,
        "DetachPaymentMethod",
        "detach_payment_method",
        json!({"id": "$response.body#/customer", "payment_method": "$response.body#/id"}),
        None,
    ));
    out.push(link(
        "list_payment_methods",
        OK,
        "DetachPaymentMethod",
        "detach_payment_method",
        json!({"id": "$response.body#/data/0/customer", "payment_method": "$response.body#/data/0/id"}),
        None,
    ));
    // Payments.
    for (target, name) in [
        ("get_payment", "GetPayment"),
        ("confirm_payment", "ConfirmPayment"),
        ("capture_payment", "CapturePayment"),
        ("cancel_payment", "CancelPayment"),
    ] {
        out.push(link("create_payment", CREATED, name, target, id(), None));
        out.push(link("list_payments", OK, name, target, first(), None));
    }
    for (source, statuses) in [
        ("create_payment", CREATED),
        ("confirm_payment", OK),
        ("capture_payment", OK),
        ("get_payment", OK),
    ] {
        out.push(link(
            source,
            statuses,
            "RefundPayment",
            "create_refund",
            json!({}),
            Some(json!({"payment": "$response.body#/id"})),
        ));
        out.push(link(
            source,
            statuses,
            "ListRefundsOfPayment",
            "list_refunds",
            json!({"payment": "$response.body#/id"}),
            None,
        ));
        out.push(link(
            source,
            statuses,
            "EventsOfPayment",
            "list_events",
            json!({"object_id": "$response.body#/id"}),
            None,
        ));
    }
    // Refunds.
    out.push(link(
        "create_refund",
        CREATED,
        "GetRefund",
        "get_refund",
        id(),
        None,
    ));
    out.push(link(
        "list_refunds",
        OK,
        "GetRefund",
        "get_refund",
        first(),
        None,
    ));
    // Subscriptions.
    for (target, name) in [
        ("get_subscription", "GetSubscription"),
        ("change_price", "ChangePrice"),
        ("cancel_subscription", "CancelSubscription"),
        ("reactivate_subscription", "ReactivateSubscription"),
    ] {
        out.push(link(
            "create_subscription",
            CREATED,
            name,
            target,
            id(),
            None,
        ));
        out.push(link("list_subscriptions", OK, name, target, first(), None));
    }
    out.push(link(
        "cancel_subscription",
        OK,
        "ReactivateSubscription",
        "reactivate_subscription",
        id(),
        None,
    ));
    // Checkout.
    out.push(link(
        "checkout",
        CREATED,
        "GetCheckoutPayment",
        "get_payment",
        json!({"id": "$response.body#/payment/id"}),
        None,
    ));
    out.push(link(
        "checkout",
        CREATED,
        "GetCheckoutSubscription",
        "get_subscription",
        json!({"id": "$response.body#/subscription/id"}),
        None,
    ));
    out.push(link(
        "checkout",
        CREATED,
        "GetCheckoutCustomer",
        "get_customer",
        json!({"id": "$response.body#/customer/id"}),
        None,
    ));
    // Invoices.
    for source in ["list_invoices", "list_customer_invoices"] {
        out.push(link(source, OK, "GetInvoice", "get_invoice", first(), None));
    }
    // Events.
    out.push(link(
        "list_events",
        OK,
        "EventsAfter",
        "list_events",
        json!({"starting_after": "$response.body#/data/0/id"}),
        None,
    ));
    // Webhooks go to a provider instance by name.
    out.push(link(
        "list_providers",
        OK,
        "ProviderWebhook",
        "receive",
        json!({"provider": "$response.body#/data/0/name"}),
        None,
    ));
    // Admin: the outbox's rows can be retried, the inbox's replayed; plugins reloaded.
    out.push(link(
        "outbox_list",
        OK,
        "RetryWork",
        "outbox_retry",
        first(),
        None,
    ));
    out.push(link(
        "inbox_list",
        OK,
        "ReplayDelivery",
        "inbox_replay",
        first(),
        None,
    ));
    for (name, target) in [("ReloadPlugin", "reload"), ("StopPlugin", "stop")] {
        out.push(link(
            "plugins",
            OK,
            name,
            target,
            json!({"name": "$response.body#/plugins/0/name"}),
            None,
        ));
    }
    // From the plugins view to the operator's other views and the rescan.
    for (name, target) in [
        ("Rescan", "rescan"),
        ("Outbox", "outbox_list"),
        ("Inbox", "inbox_list"),
        ("Routing", "routing"),
        ("Audit", "audit"),
    ] {
        out.push(link("plugins", OK, name, target, json!({}), None));
    }
    // An operator's action, then what the audit trail recorded of it.
    for source in ["stop", "reload", "rescan", "outbox_retry", "inbox_replay"] {
        out.push(link(source, OK, "AuditTrail", "audit", json!({}), None));
    }
    // Where a payment to the routing table's first default instance would go.
    out.push(link(
        "routing",
        OK,
        "ExplainPayment",
        "explain",
        json!({}),
        Some(json!({"provider": "$response.body#/default/0"})),
    ));
    out
}

/// The description served: the generated one with what operations share, the rules, the
/// provider names and the links.
pub fn finish(api: OpenApi, config: &Loaded) -> Value {
    let mut doc = serde_json::to_value(&api).unwrap_or_default();
    doc["components"]["headers"]["X-Request-Id"] = json!({
        "description": "The request's id: the caller's when sane, else a new one. Errors \
                        carry it as `request_id`; the host's log lines carry it too.",
        "required": true,
        "schema": {"type": "string"},
    });
    // The configured provider instances are the names a request may give.
    let providers: Vec<&String> = config.config.providers.keys().collect();
    if let Some(p) = doc["components"]["schemas"].get_mut("ProviderName") {
        p["enum"] = json!(providers);
    }
    for (name, rules) in body_rules() {
        if let Some(schema) = doc["components"]["schemas"].get_mut(&name) {
            apply_rules(schema, &rules);
        }
    }
    let paths = doc["paths"]
        .as_object_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    // The API first, in the order a reader (and a stateful tester) meets it: customers,
    // payments, refunds, subscriptions, invoices, checkout, events; then webhooks, the
    // operator's routes, and health.
    let rank = |path: &str| {
        const ORDER: [&str; 11] = [
            "/v1/customers",
            "/v1/payments",
            "/v1/refunds",
            "/v1/subscriptions",
            "/v1/invoices",
            "/v1/checkout",
            "/v1/events",
            "/v1/providers",
            "/webhooks/",
            "/admin/",
            "/",
        ];
        ORDER
            .iter()
            .position(|p| path.starts_with(p))
            .unwrap_or(ORDER.len())
    };
    let mut paths: Vec<(String, Value)> = paths.into_iter().collect();
    paths.sort_by_key(|(path, _)| rank(path));
    // The tenants a request may name (an unknown X-Tenant-Id is refused).
    let tenants: Vec<String> = crate::config::known_tenants(&config.config)
        .into_iter()
        .collect();
    let mut out = Map::new();
    for (path, mut item) in paths {
        let group = if path.starts_with("/v1/") {
            Some("api_key")
        } else if path.starts_with("/admin/") {
            Some("admin_key")
        } else {
            None
        };
        if let Some(ops) = item.as_object_mut() {
            for (method, op) in ops.iter_mut() {
                decorate(op, method, group, &tenants);
                name_tenants(op, &tenants);
            }
        }
        out.insert(path, item);
    }
    out.insert(
        "/openapi.json".into(),
        json!({"get": {
            "operationId": "openapi",
            "tags": ["operations"],
            "summary": "This description (the reference page renders it at /docs).",
            "responses": {"200": {
                "description": "OpenAPI 3.1",
                "headers": {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}},
                "content": {"application/json": {"schema": {"type": "object"}}},
            }},
        }}),
    );
    doc["paths"] = Value::Object(out);
    // A body that requires nothing may be left out: the host reads no body as `{}`.
    let schemas = doc["components"]["schemas"].clone();
    let emptiable = |name: &str| {
        let s = &schemas[name];
        s.is_object()
            && s["required"].as_array().is_none_or(Vec::is_empty)
            && ["anyOf", "oneOf", "allOf", "not"]
                .iter()
                .all(|k| s.get(*k).is_none())
    };
    if let Some(paths) = doc["paths"].as_object_mut() {
        for op in paths
            .values_mut()
            .filter_map(Value::as_object_mut)
            .flat_map(|m| m.values_mut())
        {
            let name = op
                .pointer("/requestBody/content/application~1json/schema/$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.rsplit('/').next())
                .map(str::to_owned);
            if name.is_some_and(|n| emptiable(&n)) {
                op["requestBody"]["required"] = json!(false);
            }
        }
    }
    distribute_composed(&mut doc);
    reference_list_items(&mut doc);
    for l in links() {
        let Some(op) = find_operation(&mut doc, l.source) else {
            tracing::error!(
                operation = l.source,
                "a link names an operation that does not exist"
            );
            continue;
        };
        for status in l.statuses {
            if let Some(resp) = op["responses"].get_mut(*status) {
                let mut def = json!({"operationId": l.target});
                if l.parameters.as_object().is_some_and(|p| !p.is_empty()) {
                    def["parameters"] = l.parameters.clone();
                }
                if let Some(b) = &l.body {
                    def["requestBody"] = b.clone();
                }
                resp["links"][l.name] = def;
            }
        }
    }
    doc
}

/// A struct that flattens a tagged enum beside its own fields (`LifecycleView`: `seq`,
/// `at_millis` and the event; `Skipped`: `instance` and the reason) comes out of utoipa as
/// `allOf` over a `oneOf`, which is no object: client generators drop it (and every schema
/// using it). It is rewritten as what it is on the wire — one object per variant, each a
/// named component (`LifecycleViewPluginRegistered`, `SkippedNotRunning`) with the
/// variant's fields and the struct's — and a `oneOf` of them with the tag as discriminator.
fn distribute_composed(doc: &mut Value) {
    let Some(schemas) = doc["components"]["schemas"].as_object().cloned() else {
        return;
    };
    let resolve = |v: &Value| -> Option<Value> {
        let name = v["$ref"].as_str()?.strip_prefix("#/components/schemas/")?;
        schemas.get(name).cloned()
    };
    let mut added = Map::new();
    let mut rewritten = Map::new();
    'schemas: for (name, schema) in &schemas {
        let Some([first, own]) = schema["allOf"].as_array().map(Vec::as_slice) else {
            continue;
        };
        let Some(variants) = resolve(first).and_then(|e| e["oneOf"].as_array().cloned()) else {
            continue;
        };
        if own["type"] != "object" {
            continue;
        }
        let mut refs = Vec::new();
        let mut mapping = Map::new();
        let mut tag_name = None;
        for v in &variants {
            // The tag: the required property whose schema admits one string.
            let Some((tag, value)) = v["properties"].as_object().and_then(|props| {
                props.iter().find_map(|(k, p)| {
                    let one = p["enum"].as_array().filter(|e| e.len() == 1)?;
                    Some((k.clone(), one[0].as_str()?.to_owned()))
                })
            }) else {
                continue 'schemas;
            };
            let variant_name = format!("{name}{}", pascal(&value));
            let mut merged = v.clone();
            for (k, p) in own["properties"].as_object().into_iter().flatten() {
                merged["properties"][k] = p.clone();
            }
            let mut required: Vec<Value> =
                merged["required"].as_array().cloned().unwrap_or_default();
            required.extend(own["required"].as_array().cloned().unwrap_or_default());
            merged["required"] = Value::Array(required);
            let r = format!("#/components/schemas/{variant_name}");
            mapping.insert(value, json!(r));
            refs.push(json!({"$ref": r}));
            added.insert(variant_name, merged);
            tag_name = Some(tag);
        }
        let mut one = json!({
            "oneOf": refs,
            "discriminator": {"propertyName": tag_name, "mapping": mapping},
        });
        if let Some(d) = schema.get("description") {
            one["description"] = d.clone();
        }
        rewritten.insert(name.clone(), one);
    }
    if let Some(out) = doc["components"]["schemas"].as_object_mut() {
        out.extend(rewritten);
        out.extend(added);
    }
}

/// A page (`List_PaymentView`) names its items' schema instead of a copy of it: utoipa
/// writes the generic's parameter out inline, and client generators then make a second
/// class (`ListPaymentViewDataItem`) beside `PaymentView` for the same object.
fn reference_list_items(doc: &mut Value) {
    let Some(schemas) = doc["components"]["schemas"].as_object_mut() else {
        return;
    };
    let names: Vec<String> = schemas.keys().cloned().collect();
    for name in &names {
        let Some(item) = name.strip_prefix("List_") else {
            continue;
        };
        if !schemas.contains_key(item) {
            continue;
        }
        if let Some(items) = schemas
            .get_mut(name)
            .and_then(|l| l.pointer_mut("/properties/data/items"))
        {
            *items = json!({"$ref": format!("#/components/schemas/{item}")});
        }
    }
}

/// `plugin_registered` / `PluginRegistered` → `PluginRegistered`.
fn pascal(s: &str) -> String {
    s.split(['_', '-'])
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

/// The operation with `operation_id`.
fn find_operation<'a>(doc: &'a mut Value, operation_id: &str) -> Option<&'a mut Value> {
    doc["paths"]
        .as_object_mut()?
        .values_mut()
        .flat_map(|item| {
            item.as_object_mut()
                .into_iter()
                .flat_map(|m| m.values_mut())
        })
        .find(|op| op["operationId"] == operation_id)
}

/// Adds to one operation what its group shares.
/// A `tenant` query parameter (the admin's explain) takes the configured tenants only, as
/// `X-Tenant-Id` does: its schema lists them; with none configured it is left out.
fn name_tenants(op: &mut Value, tenants: &[String]) {
    let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
        return;
    };
    if tenants.is_empty() {
        params.retain(|p| !(p["name"] == "tenant" && p["in"] == "query"));
        return;
    }
    for p in params.iter_mut() {
        if p["name"] == "tenant" && p["in"] == "query" {
            p["schema"] = json!({"type": "string", "enum": tenants});
        }
    }
}

fn decorate(op: &mut Value, method: &str, group: Option<&str>, tenants: &[String]) {
    let writes = method != "get";
    let has_body = op.get("requestBody").is_some();
    // An optional body is described as the body's schema, not required (utoipa writes
    // "null or the schema").
    let mut optional = false;
    if let Some(content) = op
        .pointer_mut("/requestBody/content")
        .and_then(Value::as_object_mut)
    {
        for media in content.values_mut() {
            let variants = media["schema"]["oneOf"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if let [null, schema] = variants.as_slice() {
                if null == &json!({"type": "null"}) {
                    media["schema"] = schema.clone();
                    optional = true;
                }
            }
        }
    }
    if optional {
        op["requestBody"]["required"] = json!(false);
    }
    if let Some(responses) = op["responses"].as_object_mut() {
        for resp in responses.values_mut() {
            resp["headers"]["X-Request-Id"] = json!({"$ref": "#/components/headers/X-Request-Id"});
        }
    }
    let Some(scheme) = group else {
        return;
    };
    op["security"] = json!([{scheme: []}]);
    let errors = if scheme == "api_key" {
        api_errors(writes, has_body)
    } else {
        vec![
            ("400", "Invalid request"),
            ("401", "Missing or wrong admin key"),
            ("404", "No such plugin or row"),
            ("429", "This address sent too many wrong keys (`too_many_failed_attempts`, with Retry-After)"),
            ("422", "The plugin could not be reloaded"),
            ("500", "Internal error"),
        ]
    };
    for (status, description) in errors {
        if op["responses"].get(status).is_none() {
            op["responses"][status] = error_response(description);
        }
    }
    if scheme != "api_key" {
        return;
    }
    let params = op["parameters"].as_array().cloned().unwrap_or_default();
    let mut params = params;
    // Only configured tenants may be named; with none configured, there is no header.
    if !tenants.is_empty() {
        params.push(json!({
            "name": "X-Tenant-Id",
            "in": "header",
            "required": false,
            "description": "The tenant the request acts for: new records go to its provider, \
                            reads see only its records. A key bound to a tenant acts for it \
                            without this header, and for no other.",
            "schema": {"type": "string", "enum": tenants},
        }));
    }
    if writes {
        params.push(json!({
            "name": "Idempotency-Key",
            "in": "header",
            "required": false,
            "description": "Makes the request safe to retry: the same key and request \
                            replays the first answer (`Idempotent-Replayed: true`) without \
                            calling the provider again; the same key with another request \
                            is refused (422). A UUID per logical request.",
            "schema": {"type": "string", "pattern": super::call::KEY_PATTERN},
        }));
    }
    op["parameters"] = Value::Array(params);
}

/// `/docs`: the reference page, Swagger UI with its assets in the binary, reading
/// `/openapi.json`.
pub fn reference_page<S: Clone + Send + Sync + 'static>(doc: Value) -> axum::Router<S> {
    utoipa_swagger_ui::SwaggerUi::new("/docs")
        .external_url_unchecked("/openapi.json", doc)
        .into()
}
