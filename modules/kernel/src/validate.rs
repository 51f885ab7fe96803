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

    /// A trimmed text: at least `min` characters after trimming, at most `max` as sent (so
    /// the OpenAPI `maxLength` of the field is exactly what is accepted).
    pub fn text(&mut self, field: &str, value: &str, min: usize, max: usize) -> String {
        let trimmed = value.trim();
        let n = trimmed.chars().count();
        let sent = value.chars().count();
        if n < min {
            self.errors.push(FieldError::new(
                field,
                if min == 1 {
                    "must not be empty".to_owned()
                } else {
                    format!("must be at least {min} characters")
                },
            ));
        } else if sent > max {
            self.errors.push(FieldError::new(
                field,
                format!("must be at most {max} characters"),
            ));
        }
        trimmed.to_owned()
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
