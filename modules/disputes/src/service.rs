//! The rules of disputes: who may open one and when, who may add evidence and see it, and a
//! resolution that moves the request and starts its payout in the same transaction.

use catalog::Role;
use catalog::contract::{
    Dispute, DisputeStatus, Evidence, Page, PayoutKind, RequestStatus, Resolution, new_id, now,
};
use catalog::events::{DisputeEvidenceAdded, DisputeOpened, DisputeResolved};
use kernel::error::ErrorCode;
use kernel::pagination::{PageParams, page};
use kernel::validate::{Fields, http_url};
use kernel::{ApiError, AuthUser, EventBus, Result};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, Iterable, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use files::{Files, Target, TargetKind};

use crate::dto::{DisputeDetail, DisputeListParams, EvidenceBody, ResolveBody};
use crate::entity::dispute::{self, Status};
use crate::entity::evidence;

const MAX_TEXT: usize = 4000;

/// Opens a dispute on a paid or delivered request: its buyer or its accepted seller. The
/// request becomes `disputed` and `dispute:opened` is published, in one transaction.
///
/// 403 for admins (they resolve disputes, never open one), whatever the id; 404 for anyone
/// else who is not a party (and unknown requests); 409 `dispute_open` when one is already
/// open; 409 `invalid_transition` unless the request is `paid` or `delivered` (a dispute stops
/// the automatic completion of a delivered request: `requests::transition` cancels it).
#[tracing::instrument(skip_all, fields(user_id = %caller.id, %request_id))]
pub async fn open(
    bus: &EventBus,
    caller: AuthUser,
    request_id: Uuid,
    reason: &str,
) -> Result<Dispute> {
    if caller.is_admin() {
        return Err(ApiError::forbidden(
            "only the request's buyer or its accepted seller may open a dispute",
        ));
    }
    let mut f = Fields::new();
    let reason = f.text("reason", reason, 1, MAX_TEXT);
    f.finish()?;
    let mut tx = bus.begin().await?;
    let req = requests::find(tx.conn(), request_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let seller_id = offers::accepted_offer(tx.conn(), request_id)
        .await?
        .map(|o| o.seller_id);
    let is_party = req.buyer_id == caller.id || seller_id == Some(caller.id);
    if !is_party {
        return Err(ApiError::NotFound);
    }
    let Some(seller_id) = seller_id else {
        return Err(ApiError::conflict(
            ErrorCode::InvalidTransition,
            "a request without an accepted offer cannot be disputed",
        ));
    };
    let already = dispute::Entity::find()
        .filter(dispute::Column::OpenKey.eq(request_id))
        .one(tx.conn())
        .await?;
    if already.is_some() {
        return Err(ApiError::conflict(
            ErrorCode::DisputeOpen,
            "this request already has an open dispute",
        ));
    }
    requests::transition(
        &mut tx,
        request_id,
        RequestStatus::Disputed,
        Some(caller.id),
    )
    .await?;
    let at = now();
    let id = new_id();
    let row = dispute::ActiveModel {
        id: Set(id),
        request_id: Set(request_id),
        opened_by: Set(caller.id),
        buyer_id: Set(req.buyer_id),
        seller_id: Set(seller_id),
        reason: Set(reason),
        status: Set(Status::Open),
        resolution: Set(None),
        note: Set(None),
        open_key: Set(Some(request_id)),
        created_at: Set(at),
        resolved_at: Set(None),
    };
    match dispute::Entity::insert(row)
        .exec_without_returning(tx.conn())
        .await
    {
        Ok(_) => {}
        Err(e) if kernel::error::is_unique_violation(&e) => {
            return Err(ApiError::conflict(
                ErrorCode::DisputeOpen,
                "this request already has an open dispute",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    let model = dispute::Entity::find_by_id(id)
        .one(tx.conn())
        .await?
        .ok_or_else(|| ApiError::internal("dispute vanished"))?;
    let api = model.to_api();
    tx.publish(DisputeOpened {
        dispute: api.clone(),
        buyer_id: model.buyer_id,
        seller_id: model.seller_id,
    });
    tx.commit().await?;
    Ok(api)
}

fn can_see(caller: AuthUser, d: &dispute::Model) -> bool {
    caller.is_admin() || d.buyer_id == caller.id || d.seller_id == caller.id
}

async fn visible<C: ConnectionTrait>(
    conn: &C,
    caller: AuthUser,
    id: Uuid,
) -> Result<dispute::Model> {
    match dispute::Entity::find_by_id(id).one(conn).await? {
        Some(d) if can_see(caller, &d) => Ok(d),
        _ => Err(ApiError::NotFound),
    }
}

/// Adds evidence to an open dispute: its buyer, its seller or an admin, with the author's
/// uploads of `attachmentIds` attached to it (kept unchanged from then on). 409
/// `dispute_closed` once resolved.
#[tracing::instrument(skip_all, fields(user_id = %caller.id, %dispute_id))]
pub async fn add_evidence(
    bus: &EventBus,
    files: &Files,
    caller: AuthUser,
    dispute_id: Uuid,
    body: EvidenceBody,
) -> Result<Evidence> {
    let mut f = Fields::new();
    let description = f.text("description", &body.description, 1, MAX_TEXT);
    let attachment_url = match body
        .attachment_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        Some(url) => f.absorb(http_url("attachmentUrl", url)),
        None => None,
    };
    let attachment_ids = body.attachment_ids.unwrap_or_default();
    f.absorb(files::check_ids(&attachment_ids));
    f.finish()?;
    let mut tx = bus.begin().await?;
    let d = visible(tx.conn(), caller, dispute_id).await?;
    // Holds the dispute row while the evidence is written, so a resolution cannot slip between.
    let still_open = dispute::Entity::update_many()
        .col_expr(dispute::Column::Status, Expr::col(dispute::Column::Status))
        .filter(dispute::Column::Id.eq(dispute_id))
        .filter(dispute::Column::Status.eq(Status::Open.as_str()))
        .exec(tx.conn())
        .await?;
    if still_open.rows_affected != 1 {
        return Err(ApiError::conflict(
            ErrorCode::DisputeClosed,
            "the dispute is resolved; no more evidence is taken",
        ));
    }
    let id = new_id();
    let row = evidence::ActiveModel {
        id: Set(id),
        dispute_id: Set(dispute_id),
        author_id: Set(caller.id),
        description: Set(description),
        attachment_url: Set(attachment_url),
        created_at: Set(now()),
    };
    evidence::Entity::insert(row)
        .exec_without_returning(tx.conn())
        .await?;
    let attachments = if attachment_ids.is_empty() {
        Vec::new()
    } else {
        files
            .attach(
                tx.conn(),
                caller.id,
                &attachment_ids,
                Target {
                    kind: TargetKind::Evidence,
                    id,
                    parties: [d.buyer_id, d.seller_id],
                },
            )
            .await?
    };
    let ev = evidence::Entity::find_by_id(id)
        .one(tx.conn())
        .await?
        .ok_or_else(|| ApiError::internal("evidence vanished"))?
        .to_api(attachments);
    tx.publish(DisputeEvidenceAdded {
        dispute_id,
        evidence: ev.clone(),
        request_id: d.request_id,
        buyer_id: d.buyer_id,
        seller_id: d.seller_id,
    });
    tx.commit().await?;
    Ok(ev)
}

/// A dispute with its evidence.
pub async fn get<C: ConnectionTrait>(
    conn: &C,
    files: &Files,
    caller: AuthUser,
    id: Uuid,
) -> Result<DisputeDetail> {
    let d = visible(conn, caller, id).await?;
    let rows = evidence::Entity::find()
        .filter(evidence::Column::DisputeId.eq(id))
        .order_by_asc(evidence::Column::Id)
        .all(conn)
        .await?;
    let ids: Vec<Uuid> = rows.iter().map(|e| e.id).collect();
    let mut attachments = files.of_targets(conn, &ids).await?;
    let evidence = rows
        .iter()
        .map(|e| e.to_api(attachments.remove(&e.id).unwrap_or_default()))
        .collect();
    Ok(DisputeDetail {
        dispute: d.to_api(),
        evidence,
    })
}

/// Admins: all disputes (`?status=`); others: the disputes of their requests. Newest first.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    caller: AuthUser,
    params: DisputeListParams,
) -> Result<Page<Dispute>> {
    let paging = PageParams {
        limit: params.limit,
        cursor: params.cursor,
    };
    let limit = paging.limit()?;
    let cursor: Option<Uuid> = paging.cursor()?;
    let mut q = dispute::Entity::find();
    if let Some(status) = params.status.as_deref().filter(|s| !s.is_empty()) {
        let Some(status) = Status::iter().find(|s| s.as_str() == status) else {
            return Err(ApiError::invalid("status", "must be open or resolved"));
        };
        q = q.filter(dispute::Column::Status.eq(status.as_str()));
    }
    if !caller.is_admin() {
        q = q.filter(
            Condition::any()
                .add(dispute::Column::BuyerId.eq(caller.id))
                .add(dispute::Column::SellerId.eq(caller.id)),
        );
    }
    if let Some(c) = cursor {
        q = q.filter(dispute::Column::Id.lt(c));
    }
    let rows = q
        .order_by_desc(dispute::Column::Id)
        .limit(limit + 1)
        .all(conn)
        .await?;
    let items: Vec<Dispute> = rows.iter().map(dispute::Model::to_api).collect();
    Ok(page(items, limit, |d| d.id))
}

/// An admin settles an open dispute. In one transaction: the dispute becomes `resolved`, the
/// request `completed` (release) or `refunded` (refund), the matching payout is created
/// (`payout:created`), and `dispute:resolved` is published — or nothing at all happens.
///
/// 403 for non-admins; 409 `dispute_closed` when already resolved; 409 `no_payout_address`
/// when the recipient has no payout address.
#[tracing::instrument(skip_all, fields(admin_id = %caller.id, %dispute_id))]
pub async fn resolve(
    bus: &EventBus,
    caller: AuthUser,
    dispute_id: Uuid,
    body: ResolveBody,
) -> Result<Dispute> {
    caller.require(&[Role::Admin])?;
    let mut f = Fields::new();
    let resolution = dispute::Resolution::iter()
        .find(|r| r.as_str() == body.resolution.trim())
        .map(Resolution::from);
    if resolution.is_none() {
        f.push("resolution", "must be release_to_seller or refund_buyer");
    }
    let note = body
        .note
        .as_deref()
        .map(|n| f.text("note", n, 0, MAX_TEXT))
        .filter(|n| !n.is_empty());
    f.finish()?;
    let Some(resolution) = resolution else {
        return Err(ApiError::internal("validated resolution missing"));
    };

    let mut tx = bus.begin().await?;
    let d = dispute::Entity::find_by_id(dispute_id)
        .one(tx.conn())
        .await?
        .ok_or(ApiError::NotFound)?;
    let at = now();
    let res = dispute::Entity::update_many()
        .col_expr(
            dispute::Column::Status,
            Expr::value(Status::Resolved.as_str()),
        )
        .col_expr(
            dispute::Column::Resolution,
            Expr::value(dispute::Resolution::from(resolution).as_str()),
        )
        .col_expr(dispute::Column::Note, Expr::value(note.clone()))
        .col_expr(dispute::Column::OpenKey, Expr::value(Option::<Uuid>::None))
        .col_expr(dispute::Column::ResolvedAt, Expr::value(Some(at)))
        .filter(dispute::Column::Id.eq(dispute_id))
        .filter(dispute::Column::Status.eq(Status::Open.as_str()))
        .exec(tx.conn())
        .await?;
    if res.rows_affected != 1 {
        return Err(ApiError::conflict(
            ErrorCode::DisputeClosed,
            "the dispute is already resolved",
        ));
    }
    let (next, kind) = match resolution {
        Resolution::ReleaseToSeller => (RequestStatus::Completed, PayoutKind::Release),
        Resolution::RefundBuyer => (RequestStatus::Refunded, PayoutKind::Refund),
    };
    requests::transition(&mut tx, d.request_id, next, Some(caller.id)).await?;
    payments::ensure_payout(&mut tx, d.request_id, kind).await?;
    tx.publish(DisputeResolved {
        dispute_id,
        resolution,
        request_id: d.request_id,
        buyer_id: d.buyer_id,
        seller_id: d.seller_id,
        actor_id: caller.id,
    });
    let updated = dispute::Entity::find_by_id(dispute_id)
        .one(tx.conn())
        .await?
        .ok_or_else(|| ApiError::internal("dispute vanished"))?;
    tx.commit().await?;
    debug_assert_eq!(updated.status(), DisputeStatus::Resolved);
    Ok(updated.to_api())
}
