//! `/api/uploads`, `/api/attachments/*`.

use axum::Extension;
use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use catalog::contract::Attachment;
use futures::StreamExt;
use kernel::error::Problem;
use kernel::extract::{Path, Query};
use kernel::{ApiError, AppState, AuthUser, Result};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::entity::attachment;
use crate::links::Variant;
use crate::service::{Files, disposition};
use crate::upload;

/// The routes; `files` is handed to them (and to `chat` and `disputes`) as an extension by
/// [`crate::FilesModule::wrap`]. The upload route takes a body as large as `UPLOAD_MAX_BYTES`
/// plus room for the multipart envelope, the only route above the general body limit.
pub fn router(max_bytes: u64) -> OpenApiRouter<AppState> {
    let envelope = usize::try_from(max_bytes.saturating_add(64 * 1024)).unwrap_or(usize::MAX);
    let upload = OpenApiRouter::new()
        .routes(routes!(upload_file))
        .layer(DefaultBodyLimit::max(envelope));
    OpenApiRouter::new()
        .merge(upload)
        .routes(routes!(get_attachment, delete_attachment))
        .routes(routes!(attachment_content))
}

/// The bytes of a file.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct FileBytes(Vec<u8>);

/// The body of `POST /api/uploads`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The file: JPEG, PNG, WebP, GIF or PDF, at most `UPLOAD_MAX_BYTES`. Its part's
    /// `filename` is kept as the attachment's name; its `Content-Type`, when given, must agree
    /// with the bytes.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// Upload a file (any signed-in user). It stays private to the uploader until it is attached
/// to a chat message or dispute evidence (`attachmentIds`), and is deleted after 24 h if it
/// never is. Images are stored re-encoded (metadata such as EXIF with GPS removed,
/// orientation applied) with a thumbnail; PDFs as sent.
#[utoipa::path(post, path = "/api/uploads", operation_id = "uploadFile", tag = "files", security(("bearer" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = Attachment),
        (status = 400, body = Problem, description = "`unreadable_body`: not a readable multipart body"),
        (status = 413, body = Problem, description = "`payload_too_large`: the file is larger than `UPLOAD_MAX_BYTES` (stopped while reading)"),
        (status = 415, body = Problem, description = "`unsupported_media_type`: not multipart/form-data, the bytes are not JPEG, PNG, WebP, GIF or PDF, or the part's declared type contradicts them"),
        (status = 422, body = Problem, description = "`validation_failed` on `file`: no `file` part, an empty file, an image that does not decode, or one over 12,000 px a side or 40,000,000 pixels"),
        (status = 503, body = Problem, description = "`storage_unavailable` or `database_unavailable`"),
    ))]
async fn upload_file(
    Extension(files): Extension<Files>,
    caller: AuthUser,
    multipart: std::result::Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, axum::Json<Attachment>)> {
    let multipart = multipart.map_err(|e| ApiError::UnsupportedMediaType {
        detail: format!("send the file as multipart/form-data: {}", e.body_text()),
    })?;
    let attachment = upload::upload(&files, caller, multipart).await?;
    Ok((StatusCode::CREATED, axum::Json(attachment)))
}

/// An attachment with fresh links (valid 10 minutes): for its uploader; once attached, for
/// the two participants of its chat, or the buyer and accepted seller of its dispute, and for
/// admins. 404 for anyone else.
#[utoipa::path(get, path = "/api/attachments/{id}", operation_id = "getAttachment", tag = "files", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "attachment id")),
    responses((status = 200, body = Attachment), (status = 404, body = Problem)))]
async fn get_attachment(
    Extension(files): Extension<Files>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Attachment>> {
    Ok(axum::Json(files.get(caller, id).await?))
}

/// Delete an upload (its uploader). Dispute evidence is kept unchanged while its dispute
/// exists: 409 `evidence_locked`.
#[utoipa::path(delete, path = "/api/attachments/{id}", operation_id = "deleteAttachment", tag = "files", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "attachment id")),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, body = Problem, description = "`not_found`: no such file of this user (only its uploader may delete it)"),
        (status = 409, body = Problem, description = "`evidence_locked`: the file is dispute evidence"),
    ))]
async fn delete_attachment(
    Extension(files): Extension<Files>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<StatusCode> {
    files.delete(caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The query of a signed content link.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContentParams {
    /// Unix seconds after which the link is refused.
    pub expires: i64,
    /// HMAC of the attachment, the variant and `expires`.
    #[param(max_length = 128)]
    pub signature: String,
    /// `thumbnail` for the thumbnail of an image; the original when absent.
    #[param(pattern = "^(original|thumbnail)$")]
    pub variant: Option<String>,
}

/// The bytes behind a signed link (no bearer token: the signature is the permission). Served
/// with the stored type, `Content-Disposition` (`inline` for images, else `attachment`),
/// `X-Content-Type-Options: nosniff` and `Content-Security-Policy: sandbox`. An expired or
/// altered link → 403.
#[utoipa::path(get, path = "/api/attachments/{id}/content", operation_id = "getAttachmentContent", tag = "files",
    params(("id" = Uuid, Path, description = "attachment id"), ContentParams),
    responses(
        (status = 200, description = "the file", content_type = "application/octet-stream", body = FileBytes),
        (status = 403, body = Problem, description = "`forbidden`: the link expired or its signature does not match"),
        (status = 404, body = Problem, description = "`not_found`: the file is gone"),
        (status = 422, body = Problem, description = "`invalid_query`: a query parameter is malformed"),
        (status = 503, body = Problem, description = "`storage_unavailable` or `database_unavailable`"),
    ))]
async fn attachment_content(
    Extension(files): Extension<Files>,
    Path(id): Path<Uuid>,
    Query(params): Query<ContentParams>,
) -> Result<Response> {
    let variant = match params.variant.as_deref() {
        None | Some("original") => Variant::Original,
        Some("thumbnail") => Variant::Thumbnail,
        Some(_) => {
            return Err(ApiError::invalid(
                "variant",
                "must be original or thumbnail",
            ));
        }
    };
    if params.expires < chrono::Utc::now().timestamp() {
        return Err(ApiError::forbidden("the link has expired"));
    }
    let key = files.link_key().await?;
    if !key.verify(id, variant, params.expires, &params.signature) {
        return Err(ApiError::forbidden("the link's signature does not match"));
    }
    let row = {
        use sea_orm::EntityTrait;
        attachment::Entity::find_by_id(id)
            .one(&files.inner.db)
            .await?
            .ok_or(ApiError::NotFound)?
    };
    let (key, content_type, inline) = match variant {
        Variant::Original => (
            row.storage_key.clone(),
            row.content_type.clone(),
            row.content_type.starts_with("image/"),
        ),
        Variant::Thumbnail => match (&row.thumbnail_key, &row.thumbnail_content_type) {
            (Some(k), Some(ct)) => (k.clone(), ct.clone(), true),
            _ => return Err(ApiError::NotFound),
        },
    };
    let stream = match files.inner.storage.get(&key).await {
        Ok(s) => s,
        Err(crate::storage::StorageError::Store(object_store::Error::NotFound { .. })) => {
            return Err(ApiError::NotFound);
        }
        Err(e) => {
            tracing::error!(error = %e, %id, "reading a stored file failed");
            return Err(ApiError::Unavailable {
                code: kernel::error::ErrorCode::StorageUnavailable,
                detail: "the file store does not answer".into(),
            });
        }
    };
    let body = Body::from_stream(stream.map(|r| r.map_err(std::io::Error::other)));
    let mut res = body.into_response();
    let headers = res.headers_mut();
    let header_value = |v: &str| {
        HeaderValue::from_str(v)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
    };
    headers.insert(header::CONTENT_TYPE, header_value(&content_type));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition(inline, &row.name))
            .unwrap_or_else(|_| HeaderValue::from_static("attachment")),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=600"),
    );
    if variant == Variant::Original
        && let Ok(len) = HeaderValue::from_str(&row.size.to_string())
    {
        headers.insert(header::CONTENT_LENGTH, len);
    }
    Ok(res)
}
