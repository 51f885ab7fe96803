//! Search over purchase requests (requests module): a full-text index of title and
//! description, and the budget as a whole number of hundredths so budgets compare and sort
//! numerically on both engines.
//!
//! Both are kept by the database itself, in the transaction that writes the request, so a
//! request is findable as soon as its insert commits and no code path can forget them:
//! - PostgreSQL: `search_vector`, a stored generated `tsvector` (English configuration,
//!   title weighted `A`, description `B`) with a GIN index; `budget_hundredths`, a stored
//!   generated `bigint`.
//! - SQLite: `purchase_requests_fts`, an FTS5 table (`porter unicode61`, diacritics kept as
//!   PostgreSQL's English configuration keeps them) holding a copy of both texts, written by
//!   triggers on insert, on a change of title or description, and on delete;
//!   `budget_hundredths`, a virtual generated column (indexed).
//!
//! Budgets are positive decimals with at most two decimals and at most 10^12, so their
//! hundredths fit a 64-bit integer exactly (SQLite's `REAL` is exact up to 2^53 > 10^14).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const POSTGRES_UP: &[&str] = &[
    "ALTER TABLE purchase_requests ADD COLUMN budget_hundredths bigint \
     GENERATED ALWAYS AS ((round(budget_amount::numeric * 100))::bigint) STORED",
    "ALTER TABLE purchase_requests ADD COLUMN search_vector tsvector \
     GENERATED ALWAYS AS (\
       setweight(to_tsvector('english'::regconfig, title), 'A') || \
       setweight(to_tsvector('english'::regconfig, description), 'B')) STORED",
    "CREATE INDEX IF NOT EXISTS idx_purchase_requests_search \
     ON purchase_requests USING GIN (search_vector)",
    "CREATE INDEX IF NOT EXISTS idx_purchase_requests_status_budget \
     ON purchase_requests (status, budget_hundredths DESC NULLS LAST, id DESC)",
];

const POSTGRES_DOWN: &[&str] = &[
    "DROP INDEX IF EXISTS idx_purchase_requests_status_budget",
    "DROP INDEX IF EXISTS idx_purchase_requests_search",
    "ALTER TABLE purchase_requests DROP COLUMN IF EXISTS search_vector",
    "ALTER TABLE purchase_requests DROP COLUMN IF EXISTS budget_hundredths",
];

const SQLITE_UP: &[&str] = &[
    "ALTER TABLE purchase_requests ADD COLUMN budget_hundredths INTEGER \
     GENERATED ALWAYS AS (CAST(ROUND(CAST(budget_amount AS REAL) * 100) AS INTEGER)) VIRTUAL",
    "CREATE INDEX IF NOT EXISTS idx_purchase_requests_status_budget \
     ON purchase_requests (status, budget_hundredths DESC, id DESC)",
    "CREATE VIRTUAL TABLE IF NOT EXISTS purchase_requests_fts USING fts5(\
       request_id UNINDEXED, title, description, \
       tokenize = 'porter unicode61 remove_diacritics 0')",
    "CREATE TRIGGER IF NOT EXISTS purchase_requests_fts_insert \
     AFTER INSERT ON purchase_requests BEGIN \
       INSERT INTO purchase_requests_fts (request_id, title, description) \
       VALUES (new.id, new.title, new.description); \
     END",
    "CREATE TRIGGER IF NOT EXISTS purchase_requests_fts_update \
     AFTER UPDATE OF title, description ON purchase_requests BEGIN \
       UPDATE purchase_requests_fts SET title = new.title, description = new.description \
       WHERE request_id = old.id; \
     END",
    "CREATE TRIGGER IF NOT EXISTS purchase_requests_fts_delete \
     AFTER DELETE ON purchase_requests BEGIN \
       DELETE FROM purchase_requests_fts WHERE request_id = old.id; \
     END",
    "INSERT INTO purchase_requests_fts (request_id, title, description) \
     SELECT id, title, description FROM purchase_requests",
];

const SQLITE_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS purchase_requests_fts_delete",
    "DROP TRIGGER IF EXISTS purchase_requests_fts_update",
    "DROP TRIGGER IF EXISTS purchase_requests_fts_insert",
    "DROP TABLE IF EXISTS purchase_requests_fts",
    "DROP INDEX IF EXISTS idx_purchase_requests_status_budget",
    "ALTER TABLE purchase_requests DROP COLUMN budget_hundredths",
];

async fn run(manager: &SchemaManager<'_>, postgres: &[&str], sqlite: &[&str]) -> Result<(), DbErr> {
    let statements = match manager.get_database_backend() {
        DatabaseBackend::Postgres => postgres,
        DatabaseBackend::Sqlite => sqlite,
        other => {
            return Err(DbErr::Migration(format!(
                "search needs PostgreSQL or SQLite, not {other:?}"
            )));
        }
    };
    let conn = manager.get_connection();
    for sql in statements {
        conn.execute_unprepared(sql).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, POSTGRES_UP, SQLITE_UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, POSTGRES_DOWN, SQLITE_DOWN).await
    }
}
