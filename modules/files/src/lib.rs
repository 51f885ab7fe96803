//! The files module: uploads (`POST /api/uploads`), their visibility and signed links, and
//! the durable removal of uploads nobody attached. It owns the `attachments` table and the
//! bytes in the store ([`storage::Storage`]: a local directory or S3).
//!
//! # Public API
//! What other modules may call (its table is private to it):
//! - [`Files::attach`]: attaches a user's uploads to a chat message or dispute evidence,
//!   inside the caller's transaction (422 on `attachmentIds` otherwise).
//! - [`Files::of_targets`]: the attachments of messages or evidence, with fresh links.
//! - [`check_ids`]: the shape rule of `attachmentIds` (at most 10, no repeats), to check
//!   before a transaction starts.

pub(crate) mod entity;
mod links;
mod media;
mod routes;
mod service;
mod storage;
mod upload;

use std::sync::Arc;

use kernel::timers::TimerHandler;
use kernel::{AppState, Module};
use utoipa_axum::router::OpenApiRouter;

pub use service::{
    Files, FilesConfig, MAX_PER_TARGET, REMOVE_KIND, Target, TargetKind, check_ids, disposition,
};
pub use storage::{S3Presigner, S3Settings, StorageLocation};

/// Registers `/api/uploads` and `/api/attachments/*`, hands [`Files`] to every handler (as an
/// extension) and runs the removal timers.
pub struct FilesModule {
    files: Files,
}

impl FilesModule {
    pub fn new(files: Files) -> Self {
        Self { files }
    }
}

impl Module for FilesModule {
    fn name(&self) -> &'static str {
        "files"
    }

    fn router(&self) -> OpenApiRouter<AppState> {
        routes::router(self.files.max_bytes())
    }

    fn timers(&self, _state: &AppState) -> Vec<Arc<dyn TimerHandler>> {
        let files = self.files.clone();
        vec![kernel::timers::handler(REMOVE_KIND, move |job| {
            let files = files.clone();
            async move { files.run_removal(&job).await }
        })]
    }

    fn wrap(&self, router: axum::Router) -> axum::Router {
        router.layer(axum::Extension(self.files.clone()))
    }
}
