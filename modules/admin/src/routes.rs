//! `/api/admin/*` system endpoints. Each handler checks the admin role in [`crate::service`].

use kernel::AppState;
use utoipa_axum::router::OpenApiRouter;

/// Every admin route of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
