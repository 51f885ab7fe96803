//! This process's heartbeat: every [`NODE_HEARTBEAT`] it upserts `{ id, host, sockets,
//! heartbeatAt }` into the `nodes` table, so admins see the sockets of every node of a
//! cluster (or of the one process) without Redis. The row is removed on a clean shutdown; a
//! killed node's row simply stops being refreshed and drops out of the live list.

use catalog::contract::{Timestamp, now};
use kernel::monitor::NODE_HEARTBEAT;
use kernel::monitor::entity::node;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use tokio_util::sync::CancellationToken;

/// The sockets of namespace `/` connected to this process.
pub(crate) fn local_sockets<A: Adapter>(io: &SocketIo<A>) -> usize {
    io.of("/").map(|ns| ns.sockets().len()).unwrap_or(0)
}

/// The host name shown next to a node id (`HOSTNAME`, else `/etc/hostname`).
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

async fn beat(
    db: &DatabaseConnection,
    id: &str,
    host: &str,
    sockets: usize,
    started_at: Timestamp,
) -> Result<(), sea_orm::DbErr> {
    let row = node::ActiveModel {
        id: Set(id.to_owned()),
        host: Set(host.to_owned()),
        sockets: Set(i64::try_from(sockets).unwrap_or(i64::MAX)),
        started_at: Set(started_at),
        heartbeat_at: Set(now()),
    };
    node::Entity::insert(row)
        .on_conflict(
            OnConflict::column(node::Column::Id)
                .update_columns([node::Column::Sockets, node::Column::HeartbeatAt])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Writes this node's heartbeat until `cancel` fires, then removes its row. A failed write
/// is logged and tried again at the next beat.
pub(crate) async fn run<A: Adapter>(
    db: DatabaseConnection,
    io: SocketIo<A>,
    id: String,
    cancel: CancellationToken,
) {
    let host = host_name();
    let started_at = now();
    loop {
        if let Err(e) = beat(&db, &id, &host, local_sockets(&io), started_at).await {
            tracing::warn!(error = %e, "cannot write this node's heartbeat");
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(NODE_HEARTBEAT) => {}
        }
    }
    if let Err(e) = node::Entity::delete_by_id(id).exec(&db).await {
        tracing::debug!(error = %e, "cannot remove this node's heartbeat");
    }
}
