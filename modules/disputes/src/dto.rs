//! What comes in and goes out of the disputes routes.

use catalog::contract::{Dispute, Evidence};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `POST /api/requests/{id}/disputes`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct OpenDisputeBody {
    /// 1..4000 characters.
    #[schema(min_length = 1, max_length = 4000)]
    pub reason: String,
}

/// `POST /api/disputes/{id}/evidence`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceBody {
    /// 1..4000 characters.
    #[schema(min_length = 1, max_length = 4000)]
    pub description: String,
    /// An http(s) URL, optional.
    #[serde(default)]
    #[schema(pattern = r"^https?://[^/\s][^\s]*$", max_length = 2048)]
    pub attachment_url: Option<String>,
    /// At most 10 of the author's own unattached uploads (`POST /api/uploads`). They are
    /// kept unchanged while the dispute exists.
    #[serde(default)]
    #[schema(max_items = 10)]
    pub attachment_ids: Option<Vec<uuid::Uuid>>,
}

/// `POST /api/disputes/{id}/resolve`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ResolveBody {
    /// `release_to_seller` or `refund_buyer`.
    #[schema(
        example = "refund_buyer",
        pattern = r"^\s*(release_to_seller|refund_buyer)\s*$"
    )]
    pub resolution: String,
    /// Up to 4000 characters.
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub note: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DisputeListParams {
    /// `open` or `resolved`.
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// A dispute with its evidence, oldest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisputeDetail {
    #[serde(flatten)]
    pub dispute: Dispute,
    pub evidence: Vec<Evidence>,
}
