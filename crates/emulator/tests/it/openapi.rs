//! Alpaca's trading OpenAPI document (data/spec/alpaca/trading-api.json) as JSON Schema validators:
//! OpenAPI 3.0's `nullable` becomes a `null` type, `oneOf` becomes `anyOf` (the document's activity
//! alternatives overlap, so a real reply matches both), `#/components/schemas/X` becomes `#/$defs/X`.
//! Formats (`date-time`, `date`, `uuid`) are checked.

use serde_json::{json, Map, Value};

pub fn doc() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/spec/alpaca/trading-api.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("the OpenAPI document is JSON")
}

/// Keys of a schema object whose values are not schemas.
const VERBATIM: &[&str] = &[
    "enum", "required", "default", "const", "type", "format", "pattern",
];
const DROPPED: &[&str] = &[
    "nullable",
    "example",
    "examples",
    "deprecated",
    "discriminator",
    "xml",
    "externalDocs",
    "readOnly",
    "writeOnly",
];

fn convert(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                if DROPPED.contains(&k.as_str()) || k.starts_with("x-") {
                    continue;
                }
                let x = match k.as_str() {
                    "$ref" => Value::String(
                        x.as_str()
                            .unwrap_or("")
                            .replace("#/components/schemas/", "#/$defs/"),
                    ),
                    "properties" | "patternProperties" | "$defs" => Value::Object(
                        x.as_object()
                            .into_iter()
                            .flatten()
                            .map(|(n, s)| (n.clone(), convert(s)))
                            .collect(),
                    ),
                    k if VERBATIM.contains(&k) => x.clone(),
                    _ => convert(x),
                };
                let k = if k == "oneOf" {
                    "anyOf".to_string()
                } else {
                    k.clone()
                };
                out.insert(k, x);
            }
            if m.get("nullable") == Some(&Value::Bool(true)) {
                if let Some(Value::String(t)) = out.get("type").cloned() {
                    out.insert("type".into(), json!([t, "null"]));
                    if let Some(Value::Array(e)) = out.get_mut("enum") {
                        e.push(Value::Null);
                    }
                } else {
                    return json!({ "anyOf": [Value::Object(out), { "type": "null" }] });
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(convert).collect()),
        other => other.clone(),
    }
}

/// A validator of `schema` (an OpenAPI schema object of the document, possibly a `$ref`).
pub fn validator(doc: &Value, schema: &Value) -> jsonschema::Validator {
    let defs = convert(&Value::Object(
        doc["components"]["schemas"]
            .as_object()
            .cloned()
            .unwrap_or_default(),
    ));
    let mut root = match convert(schema) {
        Value::Object(m) => m,
        other => panic!("not a schema: {other}"),
    };
    root.insert(
        "$schema".into(),
        json!("https://json-schema.org/draft/2020-12/schema"),
    );
    root.insert("$defs".into(), defs);
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&Value::Object(root))
        .unwrap_or_else(|e| panic!("the schema compiles: {e}"))
}

/// The schema of the `status` reply to `method path` (following a `$ref` to a shared response).
pub fn response_schema(doc: &Value, path: &str, method: &str, status: &str) -> Value {
    let mut r = &doc["paths"][path][method]["responses"][status];
    if let Some(p) = r.get("$ref").and_then(Value::as_str) {
        r = doc
            .pointer(p.trim_start_matches('#'))
            .expect("a resolvable response $ref");
    }
    let s = &r["content"]["application/json"]["schema"];
    assert!(s.is_object(), "{method} {path} {status} has a JSON schema");
    s.clone()
}

/// Violations of `value` against the `status` reply schema of `method path`.
pub fn errors(doc: &Value, path: &str, method: &str, status: &str, value: &Value) -> Vec<String> {
    let v = validator(doc, &response_schema(doc, path, method, status));
    v.iter_errors(value)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// Fields of `value` (an object, or each object of an array) the named component schema does not
/// declare, except `allowed`: catches a misspelt field the schema's open objects would accept.
pub fn undeclared(doc: &Value, schema: &str, value: &Value, allowed: &[&str]) -> Vec<String> {
    let props = doc["components"]["schemas"][schema]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{schema} has properties"));
    let items: Vec<&Value> = match value {
        Value::Array(a) => a.iter().collect(),
        v => vec![v],
    };
    let mut out = Vec::new();
    for item in items {
        for k in item.as_object().into_iter().flatten().map(|(k, _)| k) {
            if !props.contains_key(k) && !allowed.contains(&k.as_str()) {
                out.push(format!("{schema}.{k}"));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}
