//! Extractors whose rejections are problem documents, so a malformed body, a bad path id or
//! a bad query string answers the contract's status codes instead of axum's plain text.

use crate::error::ErrorCode;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use catalog::FieldError;

use crate::error::ApiError;

/// A JSON body. Syntax errors → 400 `malformed_json`; wrong types or missing fields →
/// 422 `invalid_body` naming the field; too large → 413; wrong content type → 415.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(json_rejection(JsonRejection::MissingJsonContentType(
                Default::default(),
            )));
        }
        let bytes = match axum::body::Bytes::from_request(req, state).await {
            Ok(b) => b,
            Err(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError::PayloadTooLarge);
            }
            Err(e) => {
                return Err(ApiError::bad_request(
                    ErrorCode::UnreadableBody,
                    e.body_text(),
                ));
            }
        };
        // Every body of this API is an object; serde would also read a struct from an array
        // (`[null, null]`), which no client means.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            return Err(ApiError::Validation {
                code: ErrorCode::InvalidBody,
                errors: vec![FieldError::new("body", "must be a JSON object")],
            });
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// The raw body, for handlers that must see the exact bytes (a signature is computed over
/// them). Over the body limit → 413 `payload_too_large`; unreadable → 400 `unreadable_body`:
/// problem documents like every other rejection, never axum's plain text.
pub struct RawBody(pub axum::body::Bytes);

impl<S> FromRequest<S> for RawBody
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::body::Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(Self(bytes)),
            Err(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::PayloadTooLarge)
            }
            Err(e) => Err(ApiError::bad_request(
                ErrorCode::UnreadableBody,
                e.body_text(),
            )),
        }
    }
}

/// `application/json` or any `application/*+json`, as axum's own `Json` accepts.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::bad_request(ErrorCode::MalformedJson, e.body_text())
        }
        JsonRejection::JsonDataError(e) => {
            // serde_path_to_error formats as "path: message"; keep the field when present.
            let text = e.body_text();
            let inner = text
                .strip_prefix("Failed to deserialize the JSON body into the target type: ")
                .unwrap_or(&text);
            let (field, message) = match inner.split_once(": ") {
                Some((path, msg)) if !path.contains(' ') => (path.to_owned(), msg.to_owned()),
                _ => ("body".to_owned(), inner.to_owned()),
            };
            ApiError::Validation {
                code: ErrorCode::InvalidBody,
                errors: vec![FieldError::new(field, message)],
            }
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType {
            detail: "expected a body with Content-Type: application/json".into(),
        },
        JsonRejection::BytesRejection(e) => {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::bad_request(ErrorCode::UnreadableBody, e.body_text())
            }
        }
        other => ApiError::bad_request(ErrorCode::MalformedJson, other.body_text()),
    }
}

/// Path parameters. An id that does not parse names nothing that exists: 404.
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Self(v)),
            Err(PathRejection::FailedToDeserializePathParams(_)) => Err(ApiError::NotFound),
            Err(other) => Err(ApiError::internal(other.body_text())),
        }
    }
}

/// Query string parameters; a value of the wrong type is a 422 naming the parameter.
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(ApiError::Validation {
                code: ErrorCode::InvalidQuery,
                errors: vec![FieldError::new("query", e.body_text())],
            }),
            Err(other) => Err(ApiError::bad_request(
                ErrorCode::InvalidQuery,
                other.body_text(),
            )),
        }
    }
}
