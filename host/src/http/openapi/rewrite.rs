//! Rewrites of the generated description that client generators need: composed schemas
//! made objects they can name, list items as references.

use serde_json::{json, Map, Value};

/// A struct that flattens a tagged enum beside its own fields (`LifecycleView`: `seq`,
/// `at_millis` and the event; `Skipped`: `instance` and the reason) comes out of utoipa as
/// `allOf` over a `oneOf`, which is no object: client generators drop it (and every schema
/// using it). It is rewritten as what it is on the wire — one object per variant, each a
/// named component (`LifecycleViewPluginRegistered`, `SkippedNotRunning`) with the
/// variant's fields and the struct's — and a `oneOf` of them with the tag as discriminator.
pub(super) fn distribute_composed(doc: &mut Value) {
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
pub(super) fn reference_list_items(doc: &mut Value) {
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
