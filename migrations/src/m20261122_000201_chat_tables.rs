//! Chats, their messages and the participants' read markers (chat module).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Chats {
    Table,
    Id,
    RequestId,
    BuyerId,
    SellerId,
    LastMessageAt,
    ActivityAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ChatMessages {
    Table,
    Id,
    ChatId,
    SenderId,
    Content,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ChatReadMarkers {
    Table,
    ChatId,
    UserId,
    LastReadMessageId,
    ReadAt,
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
                    .table(Chats::Table)
                    .if_not_exists()
                    .col(pk_uuid(Chats::Id))
                    .col(uuid(Chats::RequestId))
                    .col(uuid(Chats::BuyerId))
                    .col(uuid(Chats::SellerId))
                    .col(timestamp_with_time_zone_null(Chats::LastMessageAt))
                    .col(timestamp_with_time_zone(Chats::ActivityAt))
                    .col(timestamp_with_time_zone(Chats::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Chats::Table, Chats::BuyerId)
                            .to(Users::Table, Users::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Chats::Table, Chats::SellerId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_chats_request_seller")
                    .table(Chats::Table)
                    .col(Chats::RequestId)
                    .col(Chats::SellerId)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("ix_chats_buyer_activity", Chats::BuyerId),
            ("ix_chats_seller_activity", Chats::SellerId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Chats::Table)
                        .col(col)
                        .col(Chats::ActivityAt)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(ChatMessages::Table)
                    .if_not_exists()
                    .col(pk_uuid(ChatMessages::Id))
                    .col(uuid(ChatMessages::ChatId))
                    .col(uuid(ChatMessages::SenderId))
                    .col(text(ChatMessages::Content))
                    .col(timestamp_with_time_zone(ChatMessages::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ChatMessages::Table, ChatMessages::ChatId)
                            .to(Chats::Table, Chats::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_chat_messages_chat_id")
                    .table(ChatMessages::Table)
                    .col(ChatMessages::ChatId)
                    .col(ChatMessages::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ChatReadMarkers::Table)
                    .if_not_exists()
                    .col(uuid(ChatReadMarkers::ChatId))
                    .col(uuid(ChatReadMarkers::UserId))
                    .col(uuid(ChatReadMarkers::LastReadMessageId))
                    .col(timestamp_with_time_zone(ChatReadMarkers::ReadAt))
                    .primary_key(
                        Index::create()
                            .col(ChatReadMarkers::ChatId)
                            .col(ChatReadMarkers::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ChatReadMarkers::Table, ChatReadMarkers::ChatId)
                            .to(Chats::Table, Chats::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ChatReadMarkers::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(ChatMessages::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Chats::Table).to_owned())
            .await
    }
}
