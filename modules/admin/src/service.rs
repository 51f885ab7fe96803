//! The work behind the admin endpoints.

use std::time::Duration;

use catalog::Role;
use catalog::contract::Page;
use catalog::events::{SystemAnnouncement, SystemMaintenance};
use kernel::bus::RetryOutcome;
use kernel::bus::entity::dead_letter;
use kernel::pagination::{PageParams, page};
use kernel::validate::Fields;
use kernel::{ApiError, AuthUser, EventBus};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::dto::{
    DeadLetter, DeadLetterListParams, DeadLetterRetry, FailedJob, FailedJobs, MaintenanceBody,
};

/// How long "retry now" waits for the node holding the subscriber to run it.
const RETRY_WAIT: Duration = Duration::from_secs(15);

/// 403 unless the caller is an admin: every endpoint of this module starts with it.
pub fn require_admin(caller: &AuthUser) -> Result<(), ApiError> {
    caller.require(&[Role::Admin])
}

/// Dead letters, newest first, optionally only `open` / `resolved` ones or one subscriber's.
pub async fn dead_letters(
    db: &DatabaseConnection,
    caller: AuthUser,
    params: DeadLetterListParams,
) -> Result<Page<DeadLetter>, ApiError> {
    require_admin(&caller)?;
    let paging = PageParams {
        limit: params.limit,
        cursor: params.cursor.clone(),
    };
    let limit = paging.limit()?;
    let cursor: Option<Uuid> = paging.cursor()?;
    let mut q = dead_letter::Entity::find();
    match params.status.as_deref().filter(|s| !s.is_empty()) {
        None => {}
        Some("open") => q = q.filter(dead_letter::Column::ResolvedAt.is_null()),
        Some("resolved") => q = q.filter(dead_letter::Column::ResolvedAt.is_not_null()),
        Some(_) => return Err(ApiError::invalid("status", "must be open or resolved")),
    }
    if let Some(s) = kernel::validate::query_text("subscriber", params.subscriber.as_deref(), 200)?
    {
        q = q.filter(dead_letter::Column::Subscriber.eq(s));
    }
    if let Some(before) = cursor {
        q = q.filter(dead_letter::Column::Id.lt(before));
    }
    let rows = q
        .order_by_desc(dead_letter::Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let rows = page(rows, limit, |r| r.id);
    Ok(Page {
        items: rows.items.into_iter().map(DeadLetter::from).collect(),
        next_cursor: rows.next_cursor,
    })
}

/// Retries one dead letter now, on the node holding its subscriber, and reports the outcome.
pub async fn retry_dead_letter(
    bus: &EventBus,
    caller: AuthUser,
    id: Uuid,
) -> Result<DeadLetterRetry, ApiError> {
    require_admin(&caller)?;
    let (outcome, row) = bus.retry_dead_letter(id, RETRY_WAIT).await?;
    let (outcome, error) = match outcome {
        RetryOutcome::Succeeded => ("succeeded", None),
        RetryOutcome::Failed(e) => ("failed", Some(e)),
        RetryOutcome::Pending => ("pending", None),
    };
    Ok(DeadLetterRetry {
        outcome: outcome.to_owned(),
        error,
        dead_letter: row.into(),
    })
}

/// An admin tells everyone something (`system:announcement`).
pub async fn announce(bus: &EventBus, caller: AuthUser, message: &str) -> Result<(), ApiError> {
    require_admin(&caller)?;
    let mut f = Fields::new();
    let message = f.text("message", message, 1, 2000);
    f.finish()?;
    let mut tx = bus.begin().await?;
    tx.publish(SystemAnnouncement { message });
    tx.commit().await
}

/// An admin announces maintenance (`system:maintenance`).
pub async fn maintenance(
    bus: &EventBus,
    caller: AuthUser,
    body: MaintenanceBody,
) -> Result<(), ApiError> {
    require_admin(&caller)?;
    let mut f = Fields::new();
    let message = f.text("message", &body.message, 1, 2000);
    f.finish()?;
    let mut tx = bus.begin().await?;
    tx.publish(SystemMaintenance {
        message,
        starts_at: body.starts_at,
    });
    tx.commit().await
}

/// Delayed jobs kept as failed after their last attempt (mail failures among them).
pub async fn failed_jobs(
    db: &DatabaseConnection,
    caller: AuthUser,
) -> Result<FailedJobs, ApiError> {
    require_admin(&caller)?;
    let rows = kernel::timers::failed(db, 100).await?;
    Ok(FailedJobs {
        items: rows.into_iter().map(FailedJob::from).collect(),
    })
}

/// Makes a failed job due now with fresh attempts; 404 when there is no such failed job.
pub async fn retry_failed_job(
    db: &DatabaseConnection,
    caller: AuthUser,
    id: Uuid,
) -> Result<(), ApiError> {
    require_admin(&caller)?;
    if kernel::timers::retry_failed(db, id).await? {
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
}
