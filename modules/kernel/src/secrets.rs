//! Secrets the server makes for itself and keeps in the database (`kept_secrets`): a value is
//! made once, by whichever node asks first, and every node (and every restart) reads the same
//! one after. Used for the JWT signing key when `JWT_SECRET` is unset outside production, so
//! no secret is ever written in the code and sessions survive restarts.

use base64::Engine;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, DatabaseConnection};
use secrecy::SecretString;

use crate::error::ApiError;

mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "kept_secrets")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub value: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The secret kept under `name`: made now from 32 random bytes (base64url) if there is none
/// yet. Concurrent first calls from several nodes agree: the first insert wins and everyone
/// reads it back.
pub async fn kept_secret(db: &DatabaseConnection, name: &str) -> Result<SecretString, ApiError> {
    let fresh: [u8; 32] = rand::random();
    let row = entity::ActiveModel {
        name: Set(name.to_owned()),
        value: Set(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(fresh)),
        created_at: Set(catalog::contract::now()),
    };
    entity::Entity::insert(row)
        .on_conflict(
            OnConflict::column(entity::Column::Name)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    let kept = entity::Entity::find_by_id(name.to_owned())
        .one(db)
        .await?
        .ok_or_else(|| ApiError::internal(format!("kept secret {name} vanished")))?;
    Ok(SecretString::from(kept.value))
}
