//! What comes in and goes out of the notification routes.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `GET /api/notifications` filters beside `limit` and `cursor`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListFilter {
    /// `true`: only notifications not read yet.
    #[serde(default)]
    pub unread: Option<bool>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UnreadCount {
    pub count: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReadAllResult {
    /// How many notifications this call marked read.
    pub updated: u64,
}
