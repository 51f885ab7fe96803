//! The rules of accounts: who may register, how passwords are kept, what a profile may hold.

use std::collections::HashMap;

use catalog::Role;
use catalog::contract::{SellerProfile, User, new_id, now};
use kernel::error::ErrorCode;
use kernel::validate::Fields;
use kernel::{ApiError, AuthUser, JwtKeys, Result};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter,
};
use uuid::Uuid;

use crate::dto::{RegisterBody, UpdateMeBody};
use crate::entity::user;
use crate::hashing::Hasher;

/// An email address as we keep it: trimmed, lower-cased, plausibly deliverable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Option<Email> {
        let e = raw.trim().to_lowercase();
        let (local, domain) = e.split_once('@')?;
        let ok = !local.is_empty()
            && local.len() <= 64
            && e.len() <= 320
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
            && !e.chars().any(|c| c.is_whitespace() || c.is_control());
        ok.then_some(Email(e))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub const MIN_PASSWORD: usize = 8;
/// Argon2 work grows with input; a cap keeps a huge password from becoming a CPU attack.
pub const MAX_PASSWORD: usize = 256;

#[tracing::instrument(skip_all)]
pub async fn register(
    db: &DatabaseConnection,
    keys: &JwtKeys,
    hasher: &Hasher,
    body: RegisterBody,
) -> Result<(String, User)> {
    let mut f = Fields::new();
    let email = Email::parse(&body.email);
    if email.is_none() {
        f.push("email", "must be a valid email address");
    }
    let pw_len = body.password.chars().count();
    if pw_len < MIN_PASSWORD {
        f.push(
            "password",
            format!("must be at least {MIN_PASSWORD} characters"),
        );
    } else if pw_len > MAX_PASSWORD {
        f.push(
            "password",
            format!("must be at most {MAX_PASSWORD} characters"),
        );
    }
    let name = f.text("name", &body.name, 1, 200);
    let role = match Role::parse(&body.role) {
        Some(r @ (Role::Buyer | Role::Seller)) => Some(r),
        _ => {
            f.push("role", "must be \"buyer\" or \"seller\"");
            None
        }
    };
    f.finish()?;
    let (Some(email), Some(role)) = (email, role) else {
        return Err(ApiError::internal("validated fields missing"));
    };

    // Hashed before the insert: no connection is held while the hash waits or runs.
    let hash = hasher.hash(body.password).await?;
    let at = now();
    let row = user::ActiveModel {
        id: Set(new_id()),
        email: Set(email.as_str().to_owned()),
        name: Set(name),
        role: Set(role.into()),
        password_hash: Set(hash),
        payout_address: Set(None),
        created_at: Set(at),
        updated_at: Set(at),
        rating_count: Set(0),
        rating_sum: Set(0),
    };
    let model = match row.insert(db).await {
        Ok(m) => m,
        Err(e) if kernel::error::is_unique_violation(&e) => {
            return Err(ApiError::conflict(
                ErrorCode::EmailTaken,
                "an account with this email already exists",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let token = keys.issue(model.id, role)?;
    Ok((token, model.to_api()))
}

#[tracing::instrument(skip_all)]
pub async fn login(
    db: &DatabaseConnection,
    keys: &JwtKeys,
    hasher: &Hasher,
    email: &str,
    password: String,
) -> Result<(String, User)> {
    let found = match Email::parse(email) {
        Some(e) => {
            user::Entity::find()
                .filter(user::Column::Email.eq(e.as_str()))
                .one(db)
                .await?
        }
        None => None,
    };
    let password = if password.chars().count() > MAX_PASSWORD {
        String::new()
    } else {
        password
    };
    match found {
        Some(u) => {
            if hasher.verify(password, u.password_hash.clone()).await? {
                let token = keys.issue(u.id, u.role())?;
                Ok((token, u.to_api()))
            } else {
                Err(ApiError::Unauthorized)
            }
        }
        None => {
            // As slow as a wrong password, through the same queue (and as `busy` under load).
            hasher.verify_dummy(password).await?;
            Err(ApiError::Unauthorized)
        }
    }
}

async fn find<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Option<user::Model>> {
    Ok(user::Entity::find_by_id(id).one(db).await?)
}

/// The user with this id as the API shows it (its role, its `payoutAddress`), or `None`.
/// Other modules read users only through this.
pub async fn user<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Option<User>> {
    Ok(find(db, id).await?.as_ref().map(user::Model::to_api))
}

/// The users with these ids (those that exist), by id, in one query.
pub async fn users<C: ConnectionTrait>(
    db: &C,
    ids: impl IntoIterator<Item = Uuid>,
) -> Result<std::collections::HashMap<Uuid, User>> {
    let ids: Vec<Uuid> = ids.into_iter().collect();
    if ids.is_empty() {
        return Ok(Default::default());
    }
    Ok(user::Entity::find()
        .filter(user::Column::Id.is_in(ids))
        .all(db)
        .await?
        .iter()
        .map(|u| (u.id, u.to_api()))
        .collect())
}

/// The public face of these users (name and rating), by id, for listings that show who
/// someone is (an offer's seller). Unknown ids are left out.
pub async fn profiles<C: ConnectionTrait>(
    db: &C,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, SellerProfile>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = user::Entity::find()
        .filter(user::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|u| {
            (
                u.id,
                SellerProfile {
                    id: u.id,
                    name: u.name.clone(),
                    rating: u.rating(),
                },
            )
        })
        .collect())
}

/// Counts one published review of `rating` (1 to 5) about `user_id` into the user's rating,
/// on `conn` (the reviews module's transaction that publishes it, so a review counts exactly
/// when it is published). 404 for an unknown user.
pub async fn add_rating<C: ConnectionTrait>(conn: &C, user_id: Uuid, rating: u8) -> Result<()> {
    let res = user::Entity::update_many()
        .col_expr(
            user::Column::RatingCount,
            Expr::col(user::Column::RatingCount).add(1),
        )
        .col_expr(
            user::Column::RatingSum,
            Expr::col(user::Column::RatingSum).add(i64::from(rating)),
        )
        .filter(user::Column::Id.eq(user_id))
        .exec(conn)
        .await?;
    if res.rows_affected != 1 {
        return Err(ApiError::NotFound);
    }
    Ok(())
}

pub async fn me(db: &DatabaseConnection, caller: AuthUser) -> Result<User> {
    find(db, caller.id)
        .await?
        .map(|u| u.to_api())
        .ok_or(ApiError::Unauthorized)
}

#[tracing::instrument(skip_all, fields(user_id = %caller.id))]
pub async fn update_me(
    db: &DatabaseConnection,
    caller: AuthUser,
    body: UpdateMeBody,
) -> Result<User> {
    let mut f = Fields::new();
    let name = body.name.as_deref().map(|n| f.text("name", n, 1, 200));
    let payout = match body.payout_address {
        Some(Some(addr)) => {
            let a = f.text("payoutAddress", &addr, 1, 255);
            if a.chars().any(char::is_whitespace) {
                f.push("payoutAddress", "must not contain spaces");
            }
            Some(Some(a))
        }
        other => other,
    };
    f.finish()?;
    let current = find(db, caller.id).await?.ok_or(ApiError::Unauthorized)?;
    // Release payouts go to the seller's address; once set, it may change but not vanish.
    if payout == Some(None) && current.role() == Role::Seller && current.payout_address.is_some() {
        return Err(ApiError::invalid_with_code(
            ErrorCode::PayoutAddressRequired,
            "payoutAddress",
            "a seller's payout address can be changed but not removed",
        ));
    }
    let mut row: user::ActiveModel = current.into();
    if let Some(n) = name {
        row.name = Set(n);
    }
    if let Some(p) = payout {
        row.payout_address = Set(p);
    }
    row.updated_at = Set(now());
    Ok(row.update(db).await?.to_api())
}

/// Creates this admin, or makes the existing account an admin with this password.
pub async fn ensure_admin(
    db: &DatabaseConnection,
    hasher: &Hasher,
    email: &str,
    password: &str,
) -> Result<User> {
    let email = Email::parse(email)
        .ok_or_else(|| ApiError::invalid("email", "must be a valid email address"))?;
    if password.chars().count() < MIN_PASSWORD {
        return Err(ApiError::invalid(
            "password",
            format!("must be at least {MIN_PASSWORD} characters"),
        ));
    }
    let hash = hasher.hash(password.to_owned()).await?;
    let at = now();
    let existing = user::Entity::find()
        .filter(user::Column::Email.eq(email.as_str()))
        .one(db)
        .await?;
    let model = match existing {
        Some(u) => {
            let mut row: user::ActiveModel = u.into();
            row.role = Set(Role::Admin.into());
            row.password_hash = Set(hash);
            row.updated_at = Set(at);
            row.update(db).await?
        }
        None => {
            user::ActiveModel {
                id: Set(new_id()),
                email: Set(email.as_str().to_owned()),
                name: Set("Administrator".to_owned()),
                role: Set(Role::Admin.into()),
                password_hash: Set(hash),
                payout_address: Set(None),
                created_at: Set(at),
                updated_at: Set(at),
                rating_count: Set(0),
                rating_sum: Set(0),
            }
            .insert(db)
            .await?
        }
    };
    Ok(model.to_api())
}

/// The kernel's view of users: does this id exist, with which role.
pub struct Directory {
    pub db: DatabaseConnection,
}

#[async_trait::async_trait]
impl kernel::UserDirectory for Directory {
    async fn current_role(&self, user_id: Uuid) -> Result<Option<Role>> {
        Ok(find(&self.db, user_id).await?.map(|u| u.role()))
    }
}
