//! Cursor pagination: `?limit=` (default 20, at most 100) and an opaque `?cursor=`.
//! Lists are ordered by time-ordered ids (UUID v7), so "after this id" neither skips nor
//! repeats an item when new ones arrive between pages.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use crate::error::ApiError;

pub const DEFAULT_LIMIT: u64 = 20;
pub const MAX_LIMIT: u64 = 100;

/// The query parameters of every list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page: 1 to 100, default 20 (larger values are cut to 100).
    pub limit: Option<i64>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageParams {
    /// The validated limit.
    pub fn limit(&self) -> Result<u64, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if n < 1 => Err(ApiError::invalid("limit", "must be at least 1")),
            Some(n) => Ok((n as u64).min(MAX_LIMIT)),
        }
    }

    /// The decoded cursor, if any; a cursor this API did not make is a 422.
    pub fn cursor<T: DeserializeOwned>(&self) -> Result<Option<T>, ApiError> {
        self.cursor
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(decode_cursor)
            .transpose()
    }
}

/// Makes an opaque cursor from any serializable position.
pub fn encode_cursor<T: Serialize>(position: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(position).unwrap_or_default())
}

/// Reads a cursor made by [`encode_cursor`].
pub fn decode_cursor<T: DeserializeOwned>(cursor: &str) -> Result<T, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| ApiError::invalid("cursor", "not a cursor this API made"))
}

/// Cuts a fetched `limit + 1` rows to a page: the extra row only says there is a next page.
pub fn page<T, P: Serialize>(
    mut rows: Vec<T>,
    limit: u64,
    position: impl Fn(&T) -> P,
) -> catalog::contract::Page<T> {
    let has_more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if has_more {
        rows.last().map(|r| encode_cursor(&position(r)))
    } else {
        None
    };
    catalog::contract::Page {
        items: rows,
        next_cursor,
    }
}
