//! The rules of reviews: who may review which request and when, double-blind publication,
//! and what is visible to whom. The module's tables are read only here.

use std::sync::Arc;

use catalog::Role;
use catalog::contract::{Page, RequestStatus, Review, Timestamp, new_id, now};
use catalog::events::ReviewPublished;
use kernel::error::ErrorCode;
use kernel::pagination::{PageParams, encode_cursor};
use kernel::timers::{self, Job, NewTimer, Outcome, TimerHandler};
use kernel::{ApiError, AuthUser, EventBus, Result, Tx};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde_json::json;
use uuid::Uuid;

use crate::ReviewsConfig;
use crate::dto::{NewReview, ReviewPage};
use crate::entity::review;

/// The kind of the durable timer that publishes a request's hidden reviews when its review
/// window closes, keyed by the request's id.
pub const DEADLINE: &str = "reviews.publish";

fn not_completed() -> ApiError {
    ApiError::conflict(
        ErrorCode::RequestNotCompleted,
        "reviews are written once the request is completed",
    )
}

/// When the review window of a request completed at `completed_at` closes (never, for a
/// window beyond what a time can hold).
fn closes_at(completed_at: Timestamp, config: ReviewsConfig) -> Timestamp {
    chrono::Duration::from_std(config.window)
        .ok()
        .and_then(|d| completed_at.checked_add_signed(d))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
}

/// `caller` reviews the other party of a completed request: its buyer reviews the accepted
/// seller, the seller the buyer. The review is hidden (only its author sees it) until the
/// other party has reviewed too, which publishes both at once in this transaction, or until
/// the window closes ([`Deadline`], scheduled here with the first review).
///
/// 403 for admins (they never review), whatever the id; 404 for anyone who is not a party
/// (and unknown requests); 409 `request_not_completed` before completion (and for a request
/// that was refunded or cancelled), `review_window_closed` once the window has closed,
/// `review_exists` for a second review by the same author (a unique index, so concurrent
/// duplicates fail too).
#[tracing::instrument(skip_all, fields(user_id = %caller.id, %request_id))]
pub async fn create(
    bus: &EventBus,
    config: ReviewsConfig,
    caller: AuthUser,
    request_id: Uuid,
    new: NewReview,
) -> Result<Review> {
    caller.require(&[Role::Buyer, Role::Seller])?;
    let mut tx = bus.begin().await?;
    let parties = requests::hold_parties(&mut tx, request_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let subject = if caller.id == parties.buyer_id {
        parties.seller_id
    } else if parties.seller_id == Some(caller.id) {
        Some(parties.buyer_id)
    } else {
        return Err(ApiError::NotFound);
    };
    // A buyer's request without an accepted offer has nobody to review yet.
    let Some(subject) = subject else {
        return Err(not_completed());
    };
    if parties.status != RequestStatus::Completed {
        return Err(not_completed());
    }
    let completed_at = parties
        .completed_at
        .ok_or_else(|| ApiError::internal("a completed request without its completion time"))?;
    let closes = closes_at(completed_at, config);
    let at = now();
    // Read after the request's row is held: a deadline that ran first has published already,
    // and this review is refused rather than left hidden for ever.
    if at >= closes {
        return Err(ApiError::conflict(
            ErrorCode::ReviewWindowClosed,
            format!("reviews of this request closed at {}", closes.to_rfc3339()),
        ));
    }
    let id = new_id();
    let row = review::ActiveModel {
        id: Set(id),
        request_id: Set(request_id),
        author_id: Set(caller.id),
        subject_id: Set(subject),
        rating: Set(i32::from(new.rating)),
        comment: Set(new.comment),
        created_at: Set(at),
        published_at: Set(None),
    };
    match review::Entity::insert(row)
        .exec_without_returning(tx.conn())
        .await
    {
        Ok(_) => {}
        Err(e) if kernel::error::is_unique_violation(&e) => {
            return Err(ApiError::conflict(
                ErrorCode::ReviewExists,
                "you have reviewed this request already",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    let other = review::Entity::find()
        .filter(review::Column::RequestId.eq(request_id))
        .filter(review::Column::AuthorId.eq(subject))
        .one(tx.conn())
        .await?;
    let key = request_id.to_string();
    if other.is_some() {
        publish_hidden(&mut tx, request_id, at).await?;
        timers::cancel(tx.conn(), DEADLINE, &key).await?;
    } else {
        timers::schedule(
            tx.conn(),
            NewTimer {
                kind: DEADLINE,
                key,
                payload: json!({ "requestId": request_id }),
                run_at: closes,
            },
        )
        .await?;
    }
    let mine = review::Entity::find_by_id(id)
        .one(tx.conn())
        .await?
        .ok_or_else(|| ApiError::internal("the review vanished"))?
        .to_api()?;
    tx.commit().await?;
    Ok(mine)
}

/// Publishes every hidden review of the request at `at`, inside `tx` (which holds the
/// request's row): each gets `publishedAt`, counts into its subject's rating and publishes
/// `review:published`, once (a compare-and-set from hidden). Answers how many it published.
async fn publish_hidden(tx: &mut Tx, request_id: Uuid, at: Timestamp) -> Result<usize> {
    let hidden = review::Entity::find()
        .filter(review::Column::RequestId.eq(request_id))
        .filter(review::Column::PublishedAt.is_null())
        .order_by_asc(review::Column::Id)
        .all(tx.conn())
        .await?;
    let mut published = Vec::with_capacity(hidden.len());
    for mut row in hidden {
        let res = review::Entity::update_many()
            .col_expr(review::Column::PublishedAt, Expr::value(at))
            .filter(review::Column::Id.eq(row.id))
            .filter(review::Column::PublishedAt.is_null())
            .exec(tx.conn())
            .await?;
        if res.rows_affected != 1 {
            continue;
        }
        row.published_at = Some(at);
        published.push(row.to_api()?);
    }
    // Users' rows in one global order (by id): two publications that touch the same two users
    // (two requests between the same buyer and seller) can never wait on each other in a
    // circle.
    let mut by_subject: Vec<&Review> = published.iter().collect();
    by_subject.sort_by_key(|r| r.subject_id);
    for review in by_subject {
        auth::add_rating(tx.conn(), review.subject_id, review.rating).await?;
    }
    let count = published.len();
    for review in published {
        tx.publish(ReviewPublished(review));
    }
    Ok(count)
}

/// Runs [`DEADLINE`] jobs: when a request's review window has closed, whatever was written is
/// published (one review, or none when it was published with the other meanwhile), and the
/// job ends in the same transaction.
pub struct Deadline {
    bus: EventBus,
    config: ReviewsConfig,
}

impl Deadline {
    /// The handler, for [`kernel::Module::timers`].
    pub fn handler(bus: EventBus, config: ReviewsConfig) -> Arc<dyn TimerHandler> {
        Arc::new(Self { bus, config })
    }
}

#[async_trait::async_trait]
impl TimerHandler for Deadline {
    fn kind(&self) -> &'static str {
        DEADLINE
    }

    async fn run(&self, job: &Job) -> Result<Outcome> {
        let Some(request_id) = job
            .payload
            .get("requestId")
            .and_then(|v| v.as_str())
            .and_then(|s| Uuid::parse_str(s).ok())
        else {
            tracing::error!(key = %job.key, "review deadline job without a request id; dropped");
            return Ok(Outcome::Done);
        };
        let mut tx = self.bus.begin().await?;
        let Some(parties) = requests::hold_parties(&mut tx, request_id).await? else {
            return Ok(Outcome::Done);
        };
        if let Some(completed_at) = parties.completed_at {
            let closes = closes_at(completed_at, self.config);
            if closes > now() {
                return Ok(Outcome::At(closes));
            }
        }
        let published = publish_hidden(&mut tx, request_id, now()).await?;
        job.complete_in(tx.conn()).await?;
        tx.commit().await?;
        if published > 0 {
            tracing::info!(%request_id, published, "review window closed; hidden reviews published");
        }
        Ok(Outcome::Done)
    }
}

/// The reviews of a request that `caller` may see, oldest first: the published ones and the
/// caller's own (hidden or not). 404 when the request is not visible to `caller`.
pub async fn of_request<C: ConnectionTrait>(
    conn: &C,
    caller: AuthUser,
    request_id: Uuid,
    params: PageParams,
) -> Result<Page<Review>> {
    let limit = params.limit()?;
    let cursor: Option<Uuid> = params.cursor()?;
    requests::visible(conn, caller, request_id).await?;
    let mut cond = Condition::all()
        .add(review::Column::RequestId.eq(request_id))
        .add(
            Condition::any()
                .add(review::Column::PublishedAt.is_not_null())
                .add(review::Column::AuthorId.eq(caller.id)),
        );
    if let Some(after) = cursor {
        cond = cond.add(review::Column::Id.gt(after));
    }
    let rows = review::Entity::find()
        .filter(cond)
        .order_by_asc(review::Column::Id)
        .limit(limit + 1)
        .all(conn)
        .await?;
    let items = rows
        .iter()
        .map(review::Model::to_api)
        .collect::<Result<Vec<_>>>()?;
    Ok(kernel::pagination::page(items, limit, |r| r.id))
}

/// The published reviews about a user, newest published first (then newest written), with
/// the user's rating over all of them. Any signed-in user may read them (they are what others
/// said in public); 404 for an unknown user.
pub async fn about_user<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
    params: PageParams,
) -> Result<ReviewPage> {
    let limit = params.limit()?;
    let cursor: Option<(Timestamp, Uuid)> = params.cursor()?;
    let user = auth::user(conn, user_id).await?.ok_or(ApiError::NotFound)?;
    let mut cond = Condition::all()
        .add(review::Column::SubjectId.eq(user_id))
        .add(review::Column::PublishedAt.is_not_null());
    if let Some((published, id)) = cursor {
        cond = cond.add(
            Condition::any()
                .add(review::Column::PublishedAt.lt(published))
                .add(
                    Condition::all()
                        .add(review::Column::PublishedAt.eq(published))
                        .add(review::Column::Id.lt(id)),
                ),
        );
    }
    let rows = review::Entity::find()
        .filter(cond)
        .order_by_desc(review::Column::PublishedAt)
        .order_by_desc(review::Column::Id)
        .limit(limit + 1)
        .all(conn)
        .await?;
    let mut items = rows
        .iter()
        .map(review::Model::to_api)
        .collect::<Result<Vec<_>>>()?;
    let next_cursor = if items.len() as u64 > limit {
        items.truncate(limit as usize);
        items
            .last()
            .and_then(|r| r.published_at.map(|p| encode_cursor(&(p, r.id))))
    } else {
        None
    };
    Ok(ReviewPage {
        items,
        next_cursor,
        summary: user.rating,
    })
}
