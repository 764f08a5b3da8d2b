//! Checks a JSON answer against the schema the served OpenAPI document gives it: the
//! subset of JSON Schema the document uses (`$ref` to its components, `type`, `required`,
//! `properties`, `additionalProperties`, `items`, `oneOf`/`anyOf`/`allOf`, `enum`,
//! `minimum`).

use serde_json::Value;

/// The schema `doc` gives the answer of `method path` with `status`, in the document's
/// path syntax (`/api/v1/exports/{id}`); `None` when the route documents no JSON answer
/// for that status. An error answer the route does not list still has the API's one error
/// shape.
///
/// # Panics
/// When no documented route matches, or a success status is not documented.
pub(crate) fn answer_schema<'d>(
    doc: &'d Value,
    method: &str,
    path: &str,
    status: u16,
) -> Option<&'d Value> {
    let found = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(t, item)| matches(t, path) && item.get(method).is_some());
    let Some((template, item)) = found else {
        // The router's own refusal of a route or method it does not serve.
        assert!(
            matches!(status, 404 | 405),
            "{method} {path} is not in the OpenAPI document, yet answered {status}"
        );
        return None;
    };
    let responses = &item[method]["responses"];
    match responses.get(status.to_string()) {
        Some(r) => r["content"].get("application/json").map(|c| &c["schema"]),
        None if status >= 400 => Some(&doc["components"]["schemas"]["ErrorBody"]),
        None => panic!("{method} {template} answered {status}, which its document does not list"),
    }
}

/// `path` is an instance of `template` (each `{name}` one segment).
fn matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<_>, Vec<_>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()))
}

/// Where `value` breaks `schema` (resolved in `doc`), by JSON path, or `Ok`.
pub(crate) fn check(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unsupported $ref {r}"));
        let target = &doc["components"]["schemas"][name];
        assert!(target.is_object(), "{r} is not in the document");
        return check(doc, target, value, at);
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            check(doc, s, value, at)?;
        }
    }
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
        let errors: Vec<String> = one
            .iter()
            .filter_map(|s| check(doc, s, value, at).err())
            .collect();
        if one.len() - errors.len() != 1 {
            return Err(format!(
                "{at}: matches {} of the oneOf schemas, not one: {errors:?}",
                one.len() - errors.len()
            ));
        }
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        let errors: Vec<String> = any
            .iter()
            .filter_map(|s| check(doc, s, value, at).err())
            .collect();
        if errors.len() == any.len() {
            return Err(format!("{at}: matches none of anyOf: {errors:?}"));
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            return Err(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => panic!("{at}: type {t}"),
        };
        if !types.iter().any(|t| is_type(value, t)) {
            return Err(format!("{at}: {value} is not {types:?}"));
        }
    }
    if let (Some(min), Some(n)) = (
        schema.get("minimum").and_then(Value::as_f64),
        value.as_f64(),
    ) {
        if n < min {
            return Err(format!("{at}: {n} is below {min}"));
        }
    }
    if let Some(obj) = value.as_object() {
        for key in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !obj.contains_key(key) {
                return Err(format!("{at}: required field {key} is missing"));
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        for (k, v) in obj {
            let at = format!("{at}.{k}");
            match (
                props.and_then(|p| p.get(k)),
                schema.get("additionalProperties"),
            ) {
                (Some(s), _) => check(doc, s, v, &at)?,
                (None, Some(Value::Bool(false))) => {
                    return Err(format!("{at}: not a documented field"))
                }
                (None, Some(s)) if s.is_object() => check(doc, s, v, &at)?,
                (None, _) => {}
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
        for (i, v) in arr.iter().enumerate() {
            check(doc, items, v, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

fn is_type(v: &Value, t: &str) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => panic!("unknown type {t}"),
    }
}

#[test]
fn the_check_refuses_a_missing_field_a_wrong_type_and_an_ambiguous_one_of() {
    let doc = serde_json::json!({"components": {"schemas": {
        "Job": {"type": "object", "required": ["id", "done"],
                "properties": {"id": {"type": "string"}, "done": {"type": ["boolean", "null"]},
                               "n": {"type": "integer", "minimum": 0}}},
        "Either": {"oneOf": [{"$ref": "#/components/schemas/Job"}, {"type": "object"}]},
    }}});
    let job = serde_json::json!({"$ref": "#/components/schemas/Job"});
    let list = serde_json::json!({"type": "array", "items": job});
    let ok = serde_json::json!({"id": "a", "done": null, "n": 3});
    assert_eq!(check(&doc, &job, &ok, "$"), Ok(()));
    for bad in [
        serde_json::json!({"ident": "a", "done": true}),
        serde_json::json!({"id": 1, "done": true}),
        serde_json::json!({"id": "a", "done": true, "n": -1}),
        serde_json::json!({"id": "a", "done": true, "n": 1.5}),
        serde_json::json!([]),
    ] {
        assert!(check(&doc, &job, &bad, "$").is_err(), "{bad}");
    }
    assert!(check(&doc, &list, &serde_json::json!([ok, {"id": "b"}]), "$").is_err());
    let either = serde_json::json!({"$ref": "#/components/schemas/Either"});
    assert!(check(&doc, &either, &ok, "$").is_err(), "both match");
    assert_eq!(check(&doc, &either, &serde_json::json!({}), "$"), Ok(()));
    assert!(matches("/api/v1/exports/{id}", "/api/v1/exports/x1"));
    assert!(!matches(
        "/api/v1/exports/{id}",
        "/api/v1/exports/x1/bundle"
    ));
    assert!(!matches("/api/v1/exports/{id}", "/api/v1/exports/"));
}
