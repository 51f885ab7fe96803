//! Small helpers over JSON schemas (the JSON form of utoipa's schemas), shared by the OpenAPI
//! pass of `apps/api` and the AsyncAPI generator of `connections`.

use serde_json::{Value, json};

/// True when the property schema admits `null` (`type: [.., "null"]` or a `oneOf` with a
/// null branch), which is how utoipa writes an `Option` field.
pub fn is_nullable(prop: &Value) -> bool {
    let in_type = prop
        .get("type")
        .and_then(Value::as_array)
        .is_some_and(|t| t.iter().any(|x| x == "null"));
    let in_one_of = prop
        .get("oneOf")
        .and_then(Value::as_array)
        .is_some_and(|b| b.iter().any(|x| x.get("type") == Some(&json!("null"))));
    in_type || in_one_of
}

/// Marks the nullable properties required in every object of `schema` (nested ones too).
///
/// For shapes the server only sends: serde writes an `Option` as `null` unless the field has
/// `skip_serializing_if`, so the field is always present and a client need not expect it
/// absent. A field that IS skipped when empty must say so with `#[schema(nullable = false)]`
/// (then it stays optional), or the document would promise a field that does not come.
pub fn require_nullables(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if let Some(props) = map.get("properties").and_then(Value::as_object) {
                let nullable: Vec<String> = props
                    .iter()
                    .filter(|(_, p)| is_nullable(p))
                    .map(|(k, _)| k.clone())
                    .collect();
                if !nullable.is_empty()
                    && let Some(required) = map
                        .entry("required")
                        .or_insert_with(|| json!([]))
                        .as_array_mut()
                {
                    for name in nullable {
                        if !required.iter().any(|r| r == name.as_str()) {
                            required.push(json!(name));
                        }
                    }
                }
            }
            map.values_mut().for_each(require_nullables);
        }
        Value::Array(items) => items.iter_mut().for_each(require_nullables),
        _ => {}
    }
}
