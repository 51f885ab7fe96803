//! The rules of files: who may see one, attaching uploads to a message or evidence, deleting
//! one, the links that show one, and the durable removal of what is not attached in time.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use catalog::contract::{Attachment, now};
use kernel::error::ErrorCode;
use kernel::timers::{Job, NewTimer, Outcome};
use kernel::{ApiError, AuthUser, Result};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, TransactionTrait,
};
use serde_json::json;
use tokio::sync::{OnceCell, Semaphore};
use uuid::Uuid;

use crate::entity::attachment;
use crate::links::{self, LINK_TTL_SECS, LinkKey, Variant};
use crate::storage::{S3Settings, Storage, StorageError, StorageLocation};

/// The timer kind that removes an upload nobody attached (24 h after it was made), and the
/// bytes of a deleted one.
pub const REMOVE_KIND: &str = "files.remove-unattached";

/// How long an upload may wait to be attached.
pub const UNATTACHED_TTL: chrono::Duration = chrono::Duration::hours(24);

/// The most files one message or piece of evidence may carry.
pub const MAX_PER_TARGET: usize = 10;

/// How the files module is set up (from `STORAGE_URL`, `UPLOAD_MAX_BYTES`, `AWS_*`).
#[derive(Debug, Clone)]
pub struct FilesConfig {
    pub location: StorageLocation,
    pub s3: S3Settings,
    /// The largest file accepted, in bytes.
    pub max_bytes: u64,
    /// Base of the links of the local store (`PUBLIC_URL`).
    pub public_url: String,
    /// Images decoded at once (the rest wait): like password hashing, bounded by the cores.
    pub image_workers: usize,
}

/// The files service shared by the routes of `files`, `chat` and `disputes`.
#[derive(Clone)]
pub struct Files {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) storage: Storage,
    pub(crate) db: DatabaseConnection,
    key: OnceCell<LinkKey>,
    pub(crate) max_bytes: u64,
    public_url: String,
    pub(crate) work: Semaphore,
}

/// What an attached file belongs to, and who may see it from then on.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub kind: TargetKind,
    /// The message or evidence id.
    pub id: Uuid,
    /// The two people who may see it besides its uploader (a chat's participants; a
    /// dispute's buyer and accepted seller).
    pub parties: [Uuid; 2],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// Sent in a chat message; the uploader may still delete it.
    Message,
    /// Dispute evidence: kept unchanged while the dispute exists.
    Evidence,
}

impl TargetKind {
    fn as_str(self) -> &'static str {
        match self {
            TargetKind::Message => "message",
            TargetKind::Evidence => "evidence",
        }
    }
}

impl Files {
    /// Opens the store (creating the local directory). Fails on a store that cannot be opened.
    pub fn open(config: &FilesConfig, db: DatabaseConnection) -> Result<Files, StorageError> {
        let storage = Storage::open(&config.location, &config.s3)?;
        Ok(Files {
            inner: Arc::new(Inner {
                storage,
                db,
                key: OnceCell::new(),
                max_bytes: config.max_bytes,
                public_url: config.public_url.trim_end_matches('/').to_owned(),
                work: Semaphore::new(config.image_workers.max(1)),
            }),
        })
    }

    /// Reads (or makes) the key of local links before the first request, so it is never
    /// first read inside a write transaction (on SQLite a second connection would wait for
    /// that very transaction).
    pub async fn prepare(&self) -> Result<()> {
        self.link_key().await.map(|_| ())
    }

    /// A write transaction: `BEGIN IMMEDIATE` on SQLite, so a transaction that reads before
    /// it writes queues behind other writers instead of failing on a stale snapshot.
    pub(crate) async fn begin_write(&self) -> Result<sea_orm::DatabaseTransaction> {
        Ok(self
            .inner
            .db
            .begin_with_options(sea_orm::TransactionOptions {
                sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await?)
    }

    /// The largest file accepted.
    pub fn max_bytes(&self) -> u64 {
        self.inner.max_bytes
    }

    /// The key of local links: kept in the database, the same on every node and restart.
    pub(crate) async fn link_key(&self) -> Result<LinkKey> {
        let key = self
            .inner
            .key
            .get_or_try_init(|| async {
                use secrecy::ExposeSecret;
                let secret = kernel::secrets::kept_secret(&self.inner.db, "file-links").await?;
                Ok::<_, ApiError>(LinkKey::new(secret.expose_secret().as_bytes()))
            })
            .await?;
        Ok(key.clone())
    }

    /// The attachment as the contract shows it, with links minted now.
    pub(crate) async fn view(&self, row: &attachment::Model) -> Result<Attachment> {
        let expires = chrono::Utc::now().timestamp() + LINK_TTL_SECS;
        let ttl = Duration::from_secs(LINK_TTL_SECS as u64);
        let storage = &self.inner.storage;
        let original_disposition = disposition(row.content_type.starts_with("image/"), &row.name);
        let url = match storage.presigned_get(
            &row.storage_key,
            ttl,
            &row.content_type,
            &original_disposition,
        ) {
            Some(u) => u,
            None => self.local_link(row.id, Variant::Original, expires).await?,
        };
        let thumbnail_url = match (&row.thumbnail_key, &row.thumbnail_content_type) {
            (Some(key), Some(ct)) => Some(
                match storage.presigned_get(key, ttl, ct, &disposition(true, &row.name)) {
                    Some(u) => u,
                    None => self.local_link(row.id, Variant::Thumbnail, expires).await?,
                },
            ),
            _ => None,
        };
        Ok(Attachment {
            id: row.id,
            name: row.name.clone(),
            content_type: row.content_type.clone(),
            size: row.size.max(0) as u64,
            sha256: row.sha256.clone(),
            width: row.width.map(|w| w.max(0) as u32),
            height: row.height.map(|h| h.max(0) as u32),
            url,
            thumbnail_url,
            created_at: row.created_at,
        })
    }

    async fn local_link(&self, id: Uuid, variant: Variant, expires: i64) -> Result<String> {
        let key = self.link_key().await?;
        Ok(format!(
            "{}{}",
            self.inner.public_url,
            links::path(&key, id, variant, expires)
        ))
    }

    /// The attachment `id` for `caller` when they may see it: its uploader; once attached, the
    /// two parties of its message or evidence; admins (who may read every chat and decide
    /// disputes). 404 for anyone else and for an unknown id.
    pub async fn get(&self, caller: AuthUser, id: Uuid) -> Result<Attachment> {
        let row = attachment::Entity::find_by_id(id)
            .one(&self.inner.db)
            .await?
            .filter(|r| may_see(r, caller))
            .ok_or(ApiError::NotFound)?;
        self.view(&row).await
    }

    /// Attaches `ids` (in this order) to `target`, inside the caller's transaction `conn`:
    /// each must be one of `owner`'s uploads that is not attached yet, at most
    /// [`MAX_PER_TARGET`], no id twice; else a 422 on `attachmentIds` and nothing changes (the
    /// caller's transaction is rolled back by the error). Answers the attachments.
    pub async fn attach<C: ConnectionTrait>(
        &self,
        conn: &C,
        owner: Uuid,
        ids: &[Uuid],
        target: Target,
    ) -> Result<Vec<Attachment>> {
        check_ids(ids)?;
        let at = now();
        for (position, id) in ids.iter().enumerate() {
            let updated = attachment::Entity::update_many()
                .col_expr(
                    attachment::Column::AttachedKind,
                    Expr::value(Some(target.kind.as_str())),
                )
                .col_expr(attachment::Column::AttachedTo, Expr::value(Some(target.id)))
                .col_expr(attachment::Column::Position, Expr::value(position as i32))
                .col_expr(
                    attachment::Column::PartyA,
                    Expr::value(Some(target.parties[0])),
                )
                .col_expr(
                    attachment::Column::PartyB,
                    Expr::value(Some(target.parties[1])),
                )
                .col_expr(attachment::Column::AdminsSee, Expr::value(true))
                .col_expr(attachment::Column::AttachedAt, Expr::value(Some(at)))
                .filter(attachment::Column::Id.eq(*id))
                .filter(attachment::Column::UploaderId.eq(owner))
                .filter(attachment::Column::AttachedKind.is_null())
                .exec(conn)
                .await?;
            if updated.rows_affected != 1 {
                return Err(ApiError::invalid(
                    "attachmentIds",
                    format!("{id} is not one of your uploads that is still unattached"),
                ));
            }
        }
        let mut found = self.of_targets(conn, &[target.id]).await?;
        Ok(found.remove(&target.id).unwrap_or_default())
    }

    /// The attachments of each of `targets` (messages or evidence), in their order. Targets
    /// without any are absent.
    pub async fn of_targets<C: ConnectionTrait>(
        &self,
        conn: &C,
        targets: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<Attachment>>> {
        if targets.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = attachment::Entity::find()
            .filter(attachment::Column::AttachedTo.is_in(targets.iter().copied()))
            .order_by_asc(attachment::Column::Position)
            .all(conn)
            .await?;
        let mut out: HashMap<Uuid, Vec<Attachment>> = HashMap::new();
        for row in rows {
            let Some(target) = row.attached_to else {
                continue;
            };
            let view = self.view(&row).await?;
            out.entry(target).or_default().push(view);
        }
        Ok(out)
    }

    /// Deletes `caller`'s upload `id`: its row now, its bytes at once and durably (a timer
    /// removes them should this node fail first). 404 for anyone but its uploader (the file
    /// is not theirs, exactly like an unknown id), 409 `evidence_locked` for dispute evidence
    /// (kept unchanged while its dispute exists; disputes are never deleted).
    pub async fn delete(&self, caller: AuthUser, id: Uuid) -> Result<()> {
        let tx = self.begin_write().await?;
        let row = attachment::Entity::find_by_id(id)
            .one(&tx)
            .await?
            .filter(|r| r.uploader_id == caller.id)
            .ok_or(ApiError::NotFound)?;
        if row.attached_kind.as_deref() == Some(TargetKind::Evidence.as_str()) {
            return Err(ApiError::conflict(
                ErrorCode::EvidenceLocked,
                "this file is dispute evidence and is kept unchanged while the dispute exists",
            ));
        }
        let deleted = attachment::Entity::delete_many()
            .filter(attachment::Column::Id.eq(id))
            .filter(
                Condition::any()
                    .add(attachment::Column::AttachedKind.is_null())
                    .add(attachment::Column::AttachedKind.ne(TargetKind::Evidence.as_str())),
            )
            .exec(&tx)
            .await?;
        if deleted.rows_affected != 1 {
            return Err(ApiError::conflict(
                ErrorCode::EvidenceLocked,
                "this file became dispute evidence meanwhile",
            ));
        }
        schedule_removal(&tx, &row, now()).await?;
        tx.commit().await?;
        for key in keys_of(&row) {
            if let Err(e) = self.inner.storage.delete(&key).await {
                tracing::warn!(error = %e, %id, "bytes of a deleted file left for the removal job");
            }
        }
        Ok(())
    }

    /// Runs the removal job of one upload: the row goes unless it was attached meanwhile,
    /// then its bytes. Idempotent (a row or an object already gone is no error).
    pub async fn run_removal(&self, job: &Job) -> Result<Outcome> {
        let Ok(id) = job.key.parse::<Uuid>() else {
            return Ok(Outcome::Done);
        };
        let keys: Vec<String> = job.payload["keys"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let db = &self.inner.db;
        let removed = attachment::Entity::delete_many()
            .filter(attachment::Column::Id.eq(id))
            .filter(attachment::Column::AttachedKind.is_null())
            .exec(db)
            .await?;
        if removed.rows_affected == 0 && attachment::Entity::find_by_id(id).one(db).await?.is_some()
        {
            // Attached in time: it stays.
            return Ok(Outcome::Done);
        }
        for key in keys {
            if let Err(e) = self.inner.storage.delete(&key).await {
                return Ok(Outcome::Retry {
                    after: None,
                    error: format!("removing {key}: {e}"),
                });
            }
        }
        Ok(Outcome::Done)
    }
}

/// The uploader; once attached, its two parties and admins.
fn may_see(row: &attachment::Model, caller: AuthUser) -> bool {
    row.uploader_id == caller.id
        || (row.attached_kind.is_some()
            && (row.party_a == Some(caller.id)
                || row.party_b == Some(caller.id)
                || (row.admins_see && caller.is_admin())))
}

/// At most [`MAX_PER_TARGET`] ids, each once.
pub fn check_ids(ids: &[Uuid]) -> Result<()> {
    if ids.len() > MAX_PER_TARGET {
        return Err(ApiError::invalid(
            "attachmentIds",
            format!("at most {MAX_PER_TARGET} files"),
        ));
    }
    let distinct: HashSet<&Uuid> = ids.iter().collect();
    if distinct.len() != ids.len() {
        return Err(ApiError::invalid("attachmentIds", "an id is given twice"));
    }
    Ok(())
}

/// The storage keys of an upload's bytes.
pub(crate) fn keys_of(row: &attachment::Model) -> Vec<String> {
    let mut keys = vec![row.storage_key.clone()];
    keys.extend(row.thumbnail_key.clone());
    keys
}

/// Schedules the removal job of `row` at `at` (on `conn`, so it is part of the change).
pub(crate) async fn schedule_removal<C: ConnectionTrait>(
    conn: &C,
    row: &attachment::Model,
    at: catalog::contract::Timestamp,
) -> Result<()> {
    kernel::timers::schedule(
        conn,
        NewTimer {
            kind: REMOVE_KIND,
            key: row.id.to_string(),
            payload: json!({ "keys": keys_of(row) }),
            run_at: at,
        },
    )
    .await
}

/// RFC 5987 `attr-char`: what `filename*` leaves unescaped.
const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `Content-Disposition` per RFC 6266: `inline` (images) or `attachment`, an ASCII
/// `filename` fallback and the exact name as `filename*` in UTF-8.
pub fn disposition(inline: bool, name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if (c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '%' | ';')) || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "{}; filename=\"{fallback}\"; filename*=UTF-8''{}",
        if inline { "inline" } else { "attachment" },
        utf8_percent_encode(name, ATTR_CHAR)
    )
}

/// The name an upload is kept under: the last path segment of what the client sent, without
/// control, bidirectional-override or zero-width characters, at most 200 characters; `file`
/// when nothing is left.
pub fn clean_name(raw: Option<&str>) -> String {
    let raw = raw.unwrap_or_default();
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| {
            !c.is_control()
                && !matches!(*c as u32, 0x202A..=0x202E | 0x2066..=0x2069 | 0x200B..=0x200F | 0xFEFF)
        })
        .take(200)
        .collect();
    let trimmed = cleaned.trim().trim_matches('.').trim();
    if trimmed.is_empty() {
        "file".to_owned()
    } else {
        trimmed.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_paths_and_invisible_characters() {
        assert_eq!(clean_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(clean_name(Some("C:\\photos\\a.jpg")), "a.jpg");
        assert_eq!(clean_name(Some("\u{202E}gnp.exe")), "gnp.exe");
        assert_eq!(clean_name(Some("a\u{0}b.pdf")), "ab.pdf");
        assert_eq!(clean_name(None), "file");
        assert_eq!(clean_name(Some("..")), "file");
    }

    #[test]
    fn dispositions_follow_rfc_6266() {
        assert_eq!(
            disposition(true, "photo 1.jpg"),
            "inline; filename=\"photo 1.jpg\"; filename*=UTF-8''photo%201.jpg"
        );
        assert_eq!(
            disposition(false, "Rechnung \"März\".pdf"),
            "attachment; filename=\"Rechnung _M_rz_.pdf\"; filename*=UTF-8''Rechnung%20%22M%C3%A4rz%22.pdf"
        );
    }
}
