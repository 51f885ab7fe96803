//! Small helpers that turn client strings into checked values, collecting every invalid field
//! into one 422.

use crate::error::ErrorCode;
use catalog::FieldError;

use crate::error::ApiError;

/// Collects field errors; [`Fields::finish`] answers 422 with all of them.
#[derive(Debug, Default)]
pub struct Fields {
    errors: Vec<FieldError>,
}

impl Fields {
    pub fn new() -> Self {
        Self::default()
    }

    /// A trimmed text under the contract's one text rule ([`check_text`]): at least `min`
    /// characters once whitespace and zero-width characters are trimmed, at most `max` as
    /// sent (so the OpenAPI `maxLength` of the field is exactly what is accepted).
    pub fn text(&mut self, field: &str, value: &str, min: usize, max: usize) -> String {
        match check_text(field, value, min, max) {
            Ok(v) => v,
            Err(e) => {
                self.errors.push(e);
                trim_text(value).to_owned()
            }
        }
    }

    /// Records an error found by the caller.
    pub fn push(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// Records the field errors of a failed parse (e.g. `Money::parse`).
    pub fn absorb<T, E: Into<ApiError>>(&mut self, result: Result<T, E>) -> Option<T> {
        match result.map_err(Into::<ApiError>::into) {
            Ok(v) => Some(v),
            Err(ApiError::Validation { errors, .. }) => {
                self.errors.extend(errors);
                None
            }
            Err(other) => {
                self.errors.push(FieldError::new("body", other.to_string()));
                None
            }
        }
    }

    /// `Ok` when nothing was wrong, else a 422 listing every invalid field.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation {
                code: ErrorCode::ValidationFailed,
                errors: self.errors,
            })
        }
    }
}

/// An http(s) URL of reasonable length, or a 422 for `field`.
pub fn http_url(field: &str, value: &str) -> Result<String, ApiError> {
    let v = value.trim();
    let ok = (v.starts_with("https://") || v.starts_with("http://"))
        && v.len() <= 2048
        && v.split("://")
            .nth(1)
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
        && !v.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(v.to_owned())
    } else {
        Err(ApiError::invalid(field, "must be an http(s) URL"))
    }
}

/// Zero-width characters that render as nothing: trimmed like whitespace, so a title made of
/// them counts as empty.
const ZERO_WIDTH: [char; 5] = ['\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}'];

/// `value` without leading and trailing whitespace and zero-width characters.
pub fn trim_text(value: &str) -> &str {
    value.trim_matches(|c: char| c.is_whitespace() || ZERO_WIDTH.contains(&c))
}

/// Why `c` may not appear in text people type: control characters other than line feed,
/// carriage return and tab (NUL included: PostgreSQL cannot store it, so both engines refuse
/// it alike), and the bidirectional override and isolate characters (U+202A–U+202E,
/// U+2066–U+2069), which make a text display as something other than what it says.
fn forbidden(c: char) -> Option<&'static str> {
    if c.is_control() && !matches!(c, '\n' | '\r' | '\t') {
        Some("must not contain control characters")
    } else if matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}') {
        Some("must not contain bidirectional override or isolate characters")
    } else {
        None
    }
}

/// The contract's one rule for text that people type (names, titles, descriptions, messages,
/// reasons, notes): no forbidden character ([`forbidden`]); at least `min` characters once
/// trimmed ([`trim_text`]); at most `max` characters as sent. Answers the trimmed text, or
/// the field's error.
pub fn check_text(field: &str, value: &str, min: usize, max: usize) -> Result<String, FieldError> {
    if let Some(why) = value.chars().find_map(forbidden) {
        return Err(FieldError::new(field, why));
    }
    let trimmed = trim_text(value);
    if trimmed.chars().count() < min {
        return Err(FieldError::new(
            field,
            if min <= 1 {
                "must not be empty".to_owned()
            } else {
                format!("must be at least {min} characters")
            },
        ));
    }
    if value.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// A text query filter (`?category=`): the same character rule as typed text, 422 naming the
/// parameter; `None` when absent or empty once trimmed.
pub fn query_text(
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, ApiError> {
    let Some(value) = value else { return Ok(None) };
    match check_text(field, value, 0, max) {
        Ok(v) if v.is_empty() => Ok(None),
        Ok(v) => Ok(Some(v)),
        Err(e) => Err(ApiError::Validation {
            code: ErrorCode::ValidationFailed,
            errors: vec![e],
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_rule_refuses_nul_controls_and_bidi_overrides_and_trims_zero_width() {
        assert!(check_text("t", "a\0b", 1, 10).is_err());
        assert!(check_text("t", "a\u{7}b", 1, 10).is_err());
        assert!(check_text("t", "a\u{202E}b", 1, 10).is_err());
        assert!(check_text("t", "a\u{2067}b", 1, 10).is_err());
        assert_eq!(
            check_text("t", "line\r\n\tnext", 1, 20).unwrap(),
            "line\r\n\tnext"
        );
        let empty = check_text("title", "\u{200B}\u{200B} \u{FEFF}", 1, 10).unwrap_err();
        assert_eq!(empty.field, "title");
        assert_eq!(
            check_text("t", "\u{200B} ok \u{200D}", 1, 10).unwrap(),
            "ok"
        );
        assert_eq!(check_text("t", "héllo", 1, 5).unwrap(), "héllo");
        assert!(check_text("t", "héllo!", 1, 5).is_err());
        assert_eq!(query_text("category", Some("  "), 10).unwrap(), None);
        assert!(query_text("category", Some("a\0b"), 10).is_err());
    }
}
