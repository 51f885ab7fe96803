//! `POST /api/uploads`: the file part is streamed into a temporary file with the size limit
//! enforced while reading (never held in memory whole), recognised from its first bytes,
//! images processed on the blocking pool behind the service's semaphore, then stored and
//! recorded, with its removal job, in one transaction.

use std::io::SeekFrom;

use axum::extract::Multipart;
use axum::extract::multipart::MultipartError;
use axum::http::StatusCode;
use catalog::contract::{Attachment, new_id, now};
use kernel::monitor as m;
use kernel::{ApiError, AuthUser, Result};
use sea_orm::{ActiveValue::Set, EntityTrait};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::entity::attachment;
use crate::media::{self, ImageRefused, Kind};
use crate::service::{Files, UNATTACHED_TTL, clean_name, schedule_removal};

/// How many first bytes are kept to recognise the file.
const HEAD: usize = 8192;

/// What became of an upload, for the metrics.
#[derive(Clone, Copy)]
enum Outcome {
    Stored,
    TooLarge,
    Unsupported,
    InvalidImage,
    BadRequest,
    Failed,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Stored => m::UPLOAD_OUTCOMES[0],
            Outcome::TooLarge => m::UPLOAD_OUTCOMES[1],
            Outcome::Unsupported => m::UPLOAD_OUTCOMES[2],
            Outcome::InvalidImage => m::UPLOAD_OUTCOMES[3],
            Outcome::BadRequest => m::UPLOAD_OUTCOMES[4],
            Outcome::Failed => m::UPLOAD_OUTCOMES[5],
        }
    }

    fn of(err: &ApiError) -> Outcome {
        match err.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Outcome::TooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Outcome::Unsupported,
            StatusCode::UNPROCESSABLE_ENTITY => Outcome::InvalidImage,
            s if s.is_client_error() => Outcome::BadRequest,
            _ => Outcome::Failed,
        }
    }
}

fn record(outcome: Outcome, bytes: u64) {
    metrics::counter!(m::UPLOADS, "outcome" => outcome.label()).increment(1);
    metrics::counter!(m::UPLOAD_BYTES, "outcome" => outcome.label()).increment(bytes);
}

/// A multipart failure: the envelope over its limit is a 413, anything else a 400.
fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::bad_request(kernel::error::ErrorCode::UnreadableBody, e.body_text())
    }
}

/// The file part, received into a temporary file.
struct Received {
    name: String,
    declared: Option<String>,
    head: Vec<u8>,
    size: u64,
    sha256: String,
    file: tokio::fs::File,
}

/// Reads the multipart body: exactly one part named `file` (other parts are read and
/// dropped, within the envelope's limit).
async fn receive(files: &Files, multipart: &mut Multipart, seen: &mut u64) -> Result<Received> {
    let mut received: Option<Received> = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        if field.name() != Some("file") {
            while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                *seen += chunk.len() as u64;
            }
            continue;
        }
        if received.is_some() {
            return Err(ApiError::invalid(
                "file",
                "send exactly one part named `file`",
            ));
        }
        let name = clean_name(field.file_name());
        let declared = field.content_type().map(str::to_owned);
        let std_file = tokio::task::spawn_blocking(tempfile::tempfile)
            .await
            .map_err(ApiError::internal)?
            .map_err(|e| ApiError::internal(format!("temporary file: {e}")))?;
        let mut file = tokio::fs::File::from_std(std_file);
        let mut head = Vec::with_capacity(HEAD);
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            size += chunk.len() as u64;
            *seen += chunk.len() as u64;
            if size > files.max_bytes() {
                return Err(ApiError::PayloadTooLarge);
            }
            if head.len() < HEAD {
                let take = (HEAD - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
            }
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(|e| ApiError::internal(format!("temporary file: {e}")))?;
        }
        file.flush()
            .await
            .map_err(|e| ApiError::internal(format!("temporary file: {e}")))?;
        received = Some(Received {
            name,
            declared,
            head,
            size,
            sha256: hex::encode(hasher.finalize()),
            file,
        });
    }
    received.ok_or_else(|| ApiError::invalid("file", "a part named `file` is required"))
}

/// Receives, checks, processes and stores one upload of `caller`.
pub async fn upload(
    files: &Files,
    caller: AuthUser,
    mut multipart: Multipart,
) -> Result<Attachment> {
    let mut seen: u64 = 0;
    let result = store(files, caller, &mut multipart, &mut seen).await;
    match &result {
        Ok(_) => record(Outcome::Stored, seen),
        Err(e) => record(Outcome::of(e), seen),
    }
    result
}

async fn store(
    files: &Files,
    caller: AuthUser,
    multipart: &mut Multipart,
    seen: &mut u64,
) -> Result<Attachment> {
    let received = receive(files, multipart, seen).await?;
    if received.size == 0 {
        return Err(ApiError::invalid("file", "the file is empty"));
    }
    let kind = Kind::sniff(&received.head).ok_or_else(|| ApiError::UnsupportedMediaType {
        detail:
            "only JPEG, PNG, WebP, GIF and PDF files are accepted (recognised from their bytes)"
                .into(),
    })?;
    if let Some(declared) = &received.declared
        && !kind.agrees_with(declared)
    {
        return Err(ApiError::UnsupportedMediaType {
            detail: format!("the part says {declared} but the bytes are {}", kind.mime()),
        });
    }
    let id = new_id();
    let storage = &files.inner.storage;
    let original_key = format!("attachments/{id}/original");
    let mut file = received.file;
    file.seek(SeekFrom::Start(0))
        .await
        .map_err(|e| ApiError::internal(format!("temporary file: {e}")))?;
    let row = if kind.is_image() {
        let permit = files
            .inner
            .work
            .acquire()
            .await
            .map_err(|_| ApiError::internal("the image workers are closed"))?;
        let std_file = file.into_std().await;
        let processed = tokio::task::spawn_blocking(move || media::process_image(std_file, kind))
            .await
            .map_err(|e| ApiError::internal(format!("image worker: {e}")))?;
        drop(permit);
        let processed = processed.map_err(|e| match e {
            ImageRefused::TooLarge(..) => ApiError::invalid("file", e.to_string()),
            ImageRefused::Undecodable(_) => ApiError::invalid("file", e.to_string()),
        })?;
        let thumbnail_key = format!("attachments/{id}/thumbnail");
        let row = attachment::Model {
            id,
            uploader_id: caller.id,
            name: received.name,
            content_type: processed.content_type.to_owned(),
            size: processed.bytes.len() as i64,
            sha256: hex::encode(Sha256::digest(&processed.bytes)),
            width: Some(processed.width as i32),
            height: Some(processed.height as i32),
            storage_key: original_key.clone(),
            thumbnail_key: Some(thumbnail_key.clone()),
            thumbnail_content_type: Some(processed.thumbnail_content_type.to_owned()),
            attached_kind: None,
            attached_to: None,
            position: 0,
            party_a: None,
            party_b: None,
            admins_see: false,
            created_at: now(),
            attached_at: None,
        };
        storage
            .put(&original_key, processed.bytes)
            .await
            .map_err(storage_failed)?;
        storage
            .put(&thumbnail_key, processed.thumbnail)
            .await
            .map_err(storage_failed)?;
        row
    } else {
        storage
            .put_file(&original_key, file)
            .await
            .map_err(storage_failed)?;
        attachment::Model {
            id,
            uploader_id: caller.id,
            name: received.name,
            content_type: kind.mime().to_owned(),
            size: received.size as i64,
            sha256: received.sha256,
            width: None,
            height: None,
            storage_key: original_key.clone(),
            thumbnail_key: None,
            thumbnail_content_type: None,
            attached_kind: None,
            attached_to: None,
            position: 0,
            party_a: None,
            party_b: None,
            admins_see: false,
            created_at: now(),
            attached_at: None,
        }
    };
    if let Err(e) = record_row(files, &row).await {
        for key in crate::service::keys_of(&row) {
            let _ = storage.delete(&key).await;
        }
        return Err(e);
    }
    files.view(&row).await
}

/// The row and its removal job (due 24 h from now), in one transaction.
async fn record_row(files: &Files, row: &attachment::Model) -> Result<()> {
    let tx = files.begin_write().await?;
    attachment::Entity::insert(attachment::ActiveModel {
        id: Set(row.id),
        uploader_id: Set(row.uploader_id),
        name: Set(row.name.clone()),
        content_type: Set(row.content_type.clone()),
        size: Set(row.size),
        sha256: Set(row.sha256.clone()),
        width: Set(row.width),
        height: Set(row.height),
        storage_key: Set(row.storage_key.clone()),
        thumbnail_key: Set(row.thumbnail_key.clone()),
        thumbnail_content_type: Set(row.thumbnail_content_type.clone()),
        attached_kind: Set(None),
        attached_to: Set(None),
        position: Set(0),
        party_a: Set(None),
        party_b: Set(None),
        admins_see: Set(false),
        created_at: Set(row.created_at),
        attached_at: Set(None),
    })
    .exec_without_returning(&tx)
    .await?;
    schedule_removal(&tx, row, row.created_at + UNATTACHED_TTL).await?;
    tx.commit().await?;
    Ok(())
}

fn storage_failed(e: crate::storage::StorageError) -> ApiError {
    tracing::error!(error = %e, "storing an upload failed");
    ApiError::Unavailable {
        code: kernel::error::ErrorCode::StorageUnavailable,
        detail: "the file store does not answer".into(),
    }
}
