//! What comes in and goes out of the chat routes.

use kernel::ApiError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The longest message, in characters after trimming.
pub const MAX_CONTENT: usize = 4000;

#[derive(Debug, Deserialize, ToSchema)]
pub struct SendMessageBody {
    /// 1 to 4000 characters after surrounding whitespace is trimmed.
    #[schema(min_length = 1)]
    pub content: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MarkReadBody {
    /// A message of this chat; everything up to it counts as read.
    pub message_id: Uuid,
}

/// The text of a message, checked: trimmed, 1 to [`MAX_CONTENT`] characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content(String);

impl Content {
    /// 422 on the field `content` when it breaks the contract's text rule
    /// ([`kernel::validate::check_text`]): a forbidden character, empty once trimmed, or too
    /// long.
    pub fn parse(raw: &str) -> Result<Content, ApiError> {
        let text = kernel::validate::check_text("content", raw, 1, usize::MAX)
            .map_err(|e| ApiError::invalid(e.field, e.message))?;
        if text.chars().count() > MAX_CONTENT {
            return Err(ApiError::invalid(
                "content",
                format!("must be at most {MAX_CONTENT} characters"),
            ));
        }
        Ok(Content(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The position of a chat in "newest activity first" order; the opaque cursor of
/// `GET /api/chats`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatPosition {
    pub a: chrono::DateTime<chrono::Utc>,
    pub i: Uuid,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_trimmed_and_bounded_in_characters_not_bytes() {
        assert_eq!(
            Content::parse("  hi \n").map(Content::into_string).ok(),
            Some("hi".to_owned())
        );
        assert!(Content::parse("").is_err());
        assert!(Content::parse(" \t\n ").is_err());
        assert!(Content::parse(&"é".repeat(MAX_CONTENT)).is_ok());
        assert!(Content::parse(&"é".repeat(MAX_CONTENT + 1)).is_err());
        assert!(Content::parse(&format!("  {}  ", "x".repeat(MAX_CONTENT))).is_ok());
        assert!(Content::parse("a\0b").is_err());
        assert!(Content::parse("\u{202E}gnp.exe").is_err());
        assert!(Content::parse("\u{200B}\u{200B}").is_err());
    }
}
