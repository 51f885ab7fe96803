//! Emoji reactions on chat messages (chat module): one row per (message, user, emoji), the
//! emoji stored in its compared form (NFC, U+FE0F removed), so the primary key makes a
//! repeated reaction one row and a `PUT` idempotent.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ChatReactions {
    Table,
    MessageId,
    UserId,
    Emoji,
    ChatId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ChatMessages {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ChatReactions::Table)
                    .if_not_exists()
                    .col(uuid(ChatReactions::MessageId))
                    .col(uuid(ChatReactions::UserId))
                    .col(string_len(ChatReactions::Emoji, 64))
                    .col(uuid(ChatReactions::ChatId))
                    .col(timestamp_with_time_zone(ChatReactions::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(ChatReactions::MessageId)
                            .col(ChatReactions::UserId)
                            .col(ChatReactions::Emoji),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ChatReactions::Table, ChatReactions::MessageId)
                            .to(ChatMessages::Table, ChatMessages::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_chat_reactions_message_emoji")
                    .table(ChatReactions::Table)
                    .col(ChatReactions::MessageId)
                    .col(ChatReactions::Emoji)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ChatReactions::Table).to_owned())
            .await
    }
}
