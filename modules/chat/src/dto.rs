//! What comes in and goes out of the chat routes.

use catalog::contract::Reaction;
use kernel::ApiError;
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use unicode_segmentation::UnicodeSegmentation;
use utoipa::ToSchema;
use uuid::Uuid;

/// The longest message, in characters after trimming.
pub const MAX_CONTENT: usize = 4000;

/// The most files one message may carry.
pub const MAX_ATTACHMENTS: usize = 10;

/// The most distinct emoji on one message (Discord's number).
pub const MAX_DISTINCT_REACTIONS: usize = 20;

/// `POST /api/chats/{id}/messages`: text, files, or both (one of them is required).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SendMessageBody {
    /// 1 to 4000 characters after surrounding whitespace is trimmed; may be left out (or
    /// empty) when `attachmentIds` is given.
    #[serde(default)]
    pub content: Option<String>,
    /// At most 10 of the sender's own uploads that are not attached to anything yet.
    #[serde(default)]
    #[schema(max_items = 10)]
    pub attachment_ids: Option<Vec<Uuid>>,
}

/// The answer of `PUT`/`DELETE /api/chats/{chatId}/messages/{messageId}/reactions/{emoji}`:
/// the message's reactions after the change.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageReactions {
    pub message_id: Uuid,
    pub reactions: Vec<Reaction>,
}

/// One emoji in the form reactions are compared and stored in: NFC, without the variation
/// selectors U+FE0F (emoji presentation) and U+FE0E (text presentation), so "😀", "😀\u{FE0F}"
/// and "😀\u{FE0E}", or a composed and a decomposed sequence, are the same reaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emoji(String);

impl Emoji {
    /// 422 on `emoji` unless `raw` is exactly one grapheme cluster made of emoji characters
    /// (with their joiners, skin tones, keycaps and tags).
    pub fn parse(raw: &str) -> Result<Emoji, ApiError> {
        let bad = || ApiError::invalid("emoji", "must be exactly one emoji");
        let compared: String = raw
            .nfc()
            .filter(|c| *c != '\u{FE0F}' && *c != '\u{FE0E}')
            .collect();
        if compared.is_empty() || compared.len() > 64 || compared.graphemes(true).count() != 1 {
            return Err(bad());
        }
        let mut chars = compared.chars();
        let first = chars.next().ok_or_else(bad)?;
        let keycap = matches!(first, '0'..='9' | '#' | '*') && compared.contains('\u{20E3}');
        if !(is_emoji_char(first) || keycap) {
            return Err(bad());
        }
        if !chars.all(|c| is_emoji_char(c) || is_emoji_joiner(c)) {
            return Err(bad());
        }
        Ok(Emoji(compared))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Characters that stand for a picture: the emoji blocks and the older symbols that have an
/// emoji form (a conservative reading of Unicode's `Extended_Pictographic`).
fn is_emoji_char(c: char) -> bool {
    matches!(c as u32,
        0x00A9 | 0x00AE | 0x203C | 0x2049 | 0x2122 | 0x2139 | 0x2194..=0x21AA
        | 0x231A..=0x23FF | 0x24C2 | 0x25AA..=0x25FE | 0x2600..=0x27BF
        | 0x2934 | 0x2935 | 0x2B05..=0x2B55 | 0x3030 | 0x303D | 0x3297 | 0x3299
        | 0x1F000..=0x1FAFF)
}

/// What may follow inside one emoji: zero-width joiner, keycap, tags (subdivision flags).
fn is_emoji_joiner(c: char) -> bool {
    matches!(c as u32, 0x200D | 0x20E3 | 0xE0020..=0xE007F)
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

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A message to send, checked: text (possibly empty when files are attached) and the ids
/// of the sender's uploads to attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub content: String,
    pub attachment_ids: Vec<Uuid>,
}

impl Draft {
    /// 422 on `content` when there is neither text nor a file, or the text breaks the text
    /// rule; 422 on `attachmentIds` for more than 10 files or an id given twice.
    pub fn parse(
        content: Option<&str>,
        attachment_ids: Option<Vec<Uuid>>,
    ) -> Result<Draft, ApiError> {
        let attachment_ids = attachment_ids.unwrap_or_default();
        if attachment_ids.len() > MAX_ATTACHMENTS {
            return Err(ApiError::invalid(
                "attachmentIds",
                format!("at most {MAX_ATTACHMENTS} files"),
            ));
        }
        files::check_ids(&attachment_ids)?;
        let content = match content {
            Some(raw) if !attachment_ids.is_empty() => {
                let text = kernel::validate::check_text("content", raw, 0, usize::MAX)
                    .map_err(|e| ApiError::invalid(e.field, e.message))?;
                if text.chars().count() > MAX_CONTENT {
                    return Err(ApiError::invalid(
                        "content",
                        format!("must be at most {MAX_CONTENT} characters"),
                    ));
                }
                text
            }
            Some(raw) => Content::parse(raw)?.into_string(),
            None if !attachment_ids.is_empty() => String::new(),
            None => {
                return Err(ApiError::invalid(
                    "content",
                    "a message needs content or attachmentIds",
                ));
            }
        };
        Ok(Draft {
            content,
            attachment_ids,
        })
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

    #[test]
    fn an_emoji_is_compared_without_variation_selectors_and_in_nfc() {
        let plain = Emoji::parse("😀").unwrap();
        assert_eq!(Emoji::parse("😀\u{FE0F}").unwrap(), plain);
        assert_eq!(Emoji::parse("😀\u{FE0E}").unwrap(), plain);
        assert_eq!(
            Emoji::parse("❤\u{FE0F}").unwrap(),
            Emoji::parse("❤").unwrap()
        );
        // A family (ZWJ sequence), a skin tone, a flag, a keycap: one cluster each.
        for ok in [
            "👨\u{200D}👩\u{200D}👧",
            "👍🏽",
            "🇫🇷",
            "1\u{FE0F}\u{20E3}",
            "🏴\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}",
        ] {
            assert!(Emoji::parse(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "", "a", "😀😀", "👍 ", "ab", "1", "\u{FE0F}", "e\u{301}", "<script>",
        ] {
            assert!(Emoji::parse(bad).is_err(), "{bad:?}");
        }
    }
}
