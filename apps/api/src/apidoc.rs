//! One generic pass over the assembled OpenAPI document so that it describes every answer the
//! server really gives, for every route of every module (including routes added later):
//!
//! - every operation under `/api/` except the public ones ([`PUBLIC`]) is bearer-secured;
//! - the standard error answers are derived from an operation's shape: secured → 401 and 503
//!   (the caller is looked up in the database); a JSON body → 400, 413, 415, 422 and 503;
//!   path parameters → 404 (an id that does not parse names nothing); query parameters → 422;
//!   `/api/admin/...` → 403; a list's `limit` parameter is at least 1 (default 20);
//!   a route's own annotations (403, 409, 429, 502, ...) are kept;
//! - every error answer is `application/problem+json` with the `Problem` schema (429 also
//!   documents `Retry-After`), and every answer has a description;
//! - output shapes list their nullable fields as required: the server always writes them,
//!   as `null` when empty, so clients (and the generated TypeScript) need not expect absence.

use std::collections::{BTreeSet, VecDeque};

use kernel::schema::require_nullables;
use serde_json::{Value, json};
use utoipa::openapi::OpenApi;

/// Operations under `/api/` that need no bearer token.
pub const PUBLIC: &[&str] = &[
    "/api/auth/register",
    "/api/auth/login",
    "/api/openapi.json",
    "/api/asyncapi.json",
    "/api/types.ts",
    "/api/push/public-key",
    // The signed token in the link names the user (RFC 8058 one-click unsubscribe).
    "/api/email/unsubscribe",
    // A signed link: the signature is the permission (see the files module).
    "/api/attachments/{id}/content",
];

/// Prefixes of public routes that authenticate otherwise (provider signatures).
const PUBLIC_PREFIXES: &[&str] = &["/api/webhooks/"];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn is_public(path: &str) -> bool {
    !path.starts_with("/api/")
        || PUBLIC.contains(&path)
        || PUBLIC_PREFIXES.iter().any(|p| path.starts_with(p))
}

/// The finished document. The pass works on the JSON form; should utoipa ever fail to read
/// its own output back, the unfinished document is kept and the failure logged (a unit test
/// guards the round trip).
pub fn finish(doc: OpenApi) -> OpenApi {
    let mut value = match serde_json::to_value(&doc) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize the OpenAPI document");
            return doc;
        }
    };
    finish_value(&mut value);
    match serde_json::from_value(value) {
        Ok(done) => done,
        Err(e) => {
            tracing::error!(error = %e, "cannot read back the finished OpenAPI document");
            doc
        }
    }
}

/// The pass itself, on the JSON form of the document.
pub fn finish_value(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        for method in METHODS {
            if let Some(op) = item.get_mut(*method) {
                if *method == "post" && takes_idempotency_key(path) {
                    document_idempotency_key(op);
                }
                finish_operation(path, op);
            }
        }
    }
    require_output_nullables(doc);
}

/// Every `POST` under `/api/` but the provider's webhooks (they have their own dedupe)
/// accepts `Idempotency-Key` (`kernel::idempotency`).
fn takes_idempotency_key(path: &str) -> bool {
    path.starts_with("/api/") && !path.starts_with("/api/webhooks/")
}

/// The `Idempotency-Key` header, its two refusals and the replay marker of its answers.
fn document_idempotency_key(op: &mut Value) {
    let Some(op) = op.as_object_mut() else {
        return;
    };
    let params = op.entry("parameters").or_insert_with(|| json!([]));
    if let Some(params) = params.as_array_mut() {
        params.push(json!({
            "name": "Idempotency-Key",
            "in": "header",
            "required": false,
            "description": "Makes a retry safe (1 to 255 visible ASCII characters, scoped to the bearer token's user; ignored without a valid bearer token and for multipart uploads). The first answer (not a 5xx) is kept for 24 h: the same key with the same request gets it again with `Idempotent-Replayed: true` and changes nothing; with another request → 422 `idempotency_key_reused`; while the first still runs → 409 `idempotency_key_in_flight`.",
            "schema": { "type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$" }
        }));
    }
    let responses = op.entry("responses").or_insert_with(|| json!({}));
    let Some(responses) = responses.as_object_mut() else {
        return;
    };
    for (status, response) in responses.iter_mut() {
        if status.starts_with('2')
            && let Some(r) = response.as_object_mut()
        {
            let headers = r.entry("headers").or_insert_with(|| json!({}));
            if let Some(h) = headers.as_object_mut() {
                h.insert(
                    "Idempotent-Replayed".into(),
                    json!({ "description": "`true` when this is the kept answer of an earlier request with the same `Idempotency-Key`.", "schema": { "type": "string", "enum": ["true"] } }),
                );
            }
        }
    }
    responses.entry("409").or_insert_with(|| {
        json!({ "description": "`idempotency_key_in_flight`: a request with this `Idempotency-Key` is still running" })
    });
    responses.entry("422").or_insert_with(|| {
        json!({ "description": "`idempotency_key_reused`: this `Idempotency-Key` was used with another request; or the key is not 1 to 255 visible ASCII characters" })
    });
}

fn finish_operation(path: &str, op: &mut Value) {
    let has_security = op
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    let secured = has_security || !is_public(path);
    if secured && !has_security {
        op["security"] = json!([{ "bearer": [] }]);
    }
    // The list convention (kernel::pagination): `limit` is at least 1, 20 when absent.
    if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
        for p in params.iter_mut() {
            let is_limit = p["in"] == "query"
                && p["name"] == "limit"
                && p.pointer("/schema/type") == Some(&json!("integer"));
            if let (true, Some(schema)) =
                (is_limit, p.get_mut("schema").and_then(Value::as_object_mut))
            {
                schema.entry("minimum").or_insert(json!(1));
                schema
                    .entry("default")
                    .or_insert(json!(kernel::pagination::DEFAULT_LIMIT));
            }
        }
    }
    let params = op
        .get("parameters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let in_path = params.iter().any(|p| p["in"] == "path");
    let in_query = params.iter().any(|p| p["in"] == "query");
    let json_body = op
        .pointer("/requestBody/content")
        .and_then(Value::as_object)
        .is_some_and(|c| c.keys().any(|k| k.contains("json")));

    let mut standard: Vec<(&str, &str)> = Vec::new();
    if secured {
        standard.push((
            "401",
            "`unauthorized`: no bearer token, or an invalid or expired one",
        ));
    }
    if path.starts_with("/api/admin/") {
        standard.push(("403", "`forbidden`: not an admin"));
    }
    if json_body {
        standard.extend([
            ("400", "`malformed_json`: the body is not JSON"),
            (
                "413",
                "`payload_too_large`: the body is larger than `BODY_LIMIT_BYTES`",
            ),
            (
                "415",
                "`unsupported_media_type`: the body is not `Content-Type: application/json`",
            ),
            (
                "422",
                "`validation_failed` / `invalid_body`: the listed fields are invalid",
            ),
        ]);
    }
    if in_path {
        standard.push(("404", "`not_found`: no such object, or not visible to you"));
    }
    if in_query {
        standard.push((
            "422",
            "`validation_failed` / `invalid_query`: a query parameter is invalid",
        ));
    }
    if secured || json_body {
        standard.push((
            "503",
            "`database_unavailable`: the database does not answer",
        ));
    }

    let responses = op
        .as_object_mut()
        .map(|o| o.entry("responses").or_insert_with(|| json!({})));
    let Some(responses) = responses.and_then(Value::as_object_mut) else {
        return;
    };
    for (status, description) in standard {
        responses
            .entry(status)
            .or_insert_with(|| json!({ "description": description }));
    }
    for (status, response) in responses.iter_mut() {
        let Some(response) = response.as_object_mut() else {
            continue;
        };
        let code: u16 = status.parse().unwrap_or(0);
        let has_description = response
            .get("description")
            .and_then(Value::as_str)
            .is_some_and(|d| !d.is_empty());
        if !has_description {
            let reason = http::StatusCode::from_u16(code)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Answer");
            response.insert("description".into(), json!(reason));
        }
        if code >= 400 {
            response.insert(
                "content".into(),
                json!({ "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }),
            );
        }
        if code == 429 {
            response.insert(
                "headers".into(),
                json!({ "Retry-After": { "description": "Seconds until a new attempt may succeed.", "schema": { "type": "integer", "minimum": 0 } } }),
            );
        }
    }
    // Stable order: statuses ascending.
    let mut sorted: Vec<(String, Value)> = std::mem::take(responses).into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    responses.extend(sorted);
}

/// The names of the component schemas `value` refers to.
fn refs_in(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(name) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
            {
                out.push(name.to_owned());
            }
            map.values().for_each(|v| refs_in(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs_in(v, out)),
        _ => {}
    }
}

/// Every schema reachable from `roots`.
fn closure(schemas: &serde_json::Map<String, Value>, roots: Vec<String>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut queue: VecDeque<String> = roots.into();
    while let Some(name) = queue.pop_front() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let mut next = Vec::new();
        if let Some(s) = schemas.get(&name) {
            refs_in(s, &mut next);
        }
        queue.extend(next);
    }
    seen
}

/// Schemas that only ever go out (reachable from responses, never from a request body or a
/// parameter) get their nullable fields required.
fn require_output_nullables(doc: &mut Value) {
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for item in paths.values() {
            for method in METHODS {
                let Some(op) = item.get(*method) else {
                    continue;
                };
                if let Some(b) = op.get("requestBody") {
                    refs_in(b, &mut inputs);
                }
                if let Some(p) = op.get("parameters") {
                    refs_in(p, &mut inputs);
                }
                if let Some(r) = op.get("responses") {
                    refs_in(r, &mut outputs);
                }
            }
        }
    }
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let inputs = closure(schemas, inputs);
    let outputs = closure(schemas, outputs);
    for name in outputs.difference(&inputs) {
        if let Some(s) = schemas.get_mut(name) {
            require_nullables(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utoipa_reads_back_a_finished_document_unchanged() {
        let doc = json!({
            "openapi": "3.1.0",
            "info": { "title": "t", "version": "1" },
            "paths": { "/api/things/{id}": { "post": {
                "operationId": "thing",
                "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string", "format": "uuid" } }],
                "requestBody": { "content": { "application/json": { "schema": { "$ref": "#/components/schemas/In" } } }, "required": true },
                "responses": { "200": { "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Out" } } } },
                               "409": { "description": "taken", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Problem" } } } } }
            } } },
            "components": { "schemas": {
                "In": { "type": "object", "properties": { "note": { "type": ["string", "null"] } } },
                "Out": { "type": "object", "required": ["id"], "properties": { "id": { "type": "string" }, "note": { "type": ["string", "null"] } } },
                "Problem": { "type": "object" }
            } }
        });
        let parsed: OpenApi = serde_json::from_value(doc).unwrap();
        let finished = serde_json::to_value(finish(parsed)).unwrap();
        let mut expected =
            serde_json::to_value(serde_json::from_value::<OpenApi>(finished.clone()).unwrap())
                .unwrap();
        assert_eq!(finished, expected);
        let op = &finished["paths"]["/api/things/{id}"]["post"];
        for status in ["400", "401", "404", "409", "413", "415", "422", "503"] {
            assert!(
                op["responses"][status]["content"]["application/problem+json"].is_object(),
                "{status}: {op}"
            );
        }
        assert_eq!(op["security"], json!([{ "bearer": [] }]));
        let schemas = &mut expected["components"]["schemas"];
        assert_eq!(schemas["Out"]["required"], json!(["id", "note"]));
        assert!(schemas["In"].get("required").is_none());
    }
}
