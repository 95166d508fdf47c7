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

mod links;
mod rewrite;

use links::links;
use rewrite::{distribute_composed, reference_list_items};

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
