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

/// A notification `kind`: the name of an event that creates notifications.
pub struct NotificationKind;

impl utoipa::PartialSchema for NotificationKind {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "The name of an event that creates notifications (a notification's `kind`).",
            ))
            .enum_values(Some(crate::subscribers::KINDS.iter().map(|k| k.as_str())))
            .into()
    }
}

impl ToSchema for NotificationKind {}

/// How the caller is reached when not connected. A muted kind is still stored and delivered
/// live, only never mailed or pushed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationSettings {
    /// Email digests of notifications that stayed unread (default `true`).
    pub email: bool,
    /// Web push to the caller's push subscriptions (default `true`).
    pub push: bool,
    /// Kinds never mailed or pushed (default none), in catalog order.
    #[schema(value_type = Vec<NotificationKind>)]
    pub muted_kinds: Vec<String>,
    /// The mail relay refused the caller's address for good: no email is sent to it (default
    /// `false`; read-only).
    pub email_undeliverable: bool,
}

impl From<crate::settings::Settings> for NotificationSettings {
    fn from(s: crate::settings::Settings) -> Self {
        Self {
            email: s.email,
            push: s.push,
            muted_kinds: s
                .muted_kinds
                .iter()
                .map(|k| k.as_str().to_owned())
                .collect(),
            email_undeliverable: s.email_undeliverable,
        }
    }
}

/// Absent fields are left as they are; `null` is not a value of any of them.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateSettingsBody {
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = bool)]
    pub email: Option<bool>,
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = bool)]
    pub push: Option<bool>,
    /// Replaces the muted kinds; duplicates are collapsed; an unknown kind is a 422 naming
    /// `mutedKinds`.
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Vec<NotificationKind>)]
    pub muted_kinds: Option<Vec<String>>,
}

/// A field that is present must hold a value: `null` is refused (422) instead of being read
/// as "absent".
fn some<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}
