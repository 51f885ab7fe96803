//! When each user was last seen on a socket (connections module).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum UserPresence {
    Table,
    UserId,
    LastSeenAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UserPresence::Table)
                    .if_not_exists()
                    .col(pk_uuid(UserPresence::UserId))
                    .col(timestamp_with_time_zone(UserPresence::LastSeenAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_user_presence_user")
                            .from(UserPresence::Table, UserPresence::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(UserPresence::Table).to_owned())
            .await
    }
}
