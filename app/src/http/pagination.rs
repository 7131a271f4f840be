//! List pagination: `?page=&limit=` (offset, with a total) or `?cursor=` / `?after=` (keyset,
//! opaque cursor), and the `{"data": [...], "pagination": {...}}` envelope.
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{error::ApiError, fields::FieldSet};
use crate::db::page::{Slice, Window};

/// Rows per page when the client does not say.
pub const DEFAULT_LIMIT: u32 = 20;
/// Most rows per page; larger `limit` values are clamped to this.
pub const MAX_LIMIT: u32 = 100;

/// Paging and field selection, shared by every list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// 1-based page number (offset pagination). Cannot be combined with `cursor`.
    pub page: Option<u32>,
    /// Rows per page, 1..=100 (clamped); default 20.
    pub limit: Option<u32>,
    /// Keyset pagination: the `nextCursor` of the previous page; empty for the first page.
    pub cursor: Option<String>,
    /// Alias of `cursor`.
    pub after: Option<String>,
    /// Comma-separated fields to return, e.g. `id,title`; unknown names are a 400.
    pub fields: Option<String>,
}

/// `?fields=` alone, for single-resource reads.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FieldsParam {
    /// Comma-separated fields to return, e.g. `id,email`; unknown names are a 400.
    pub fields: Option<String>,
}

/// A parsed list request.
#[derive(Debug, Clone)]
pub struct ListRequest<K> {
    pub window: Window<K>,
    /// The 1-based page number (offset pagination).
    pub page: u32,
    pub fields: FieldSet,
}

impl ListParams {
    /// Validates the paging parameters for a list whose sort key is `K`.
    pub fn parse<K: DeserializeOwned>(
        &self,
        allowed_fields: &'static [&'static str],
    ) -> Result<ListRequest<K>, ApiError> {
        let fields = FieldSet::parse(self.fields.as_deref(), allowed_fields)?;
        let limit = i64::from(self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT));
        let cursor = self.cursor.as_deref().or(self.after.as_deref());
        let (window, page) = match (cursor, self.page) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    Some("cursor".to_owned()),
                    "use either page or cursor, not both",
                ));
            }
            (Some(cursor), None) => {
                let after = match cursor.trim() {
                    "" => None,
                    raw => Some(decode_cursor(raw)?),
                };
                (Window::Keyset { limit, after }, 1)
            }
            (None, page) => {
                let page = page.unwrap_or(1);
                if page == 0 {
                    return Err(ApiError::bad_request(
                        Some("page".to_owned()),
                        "page numbers start at 1",
                    ));
                }
                let offset = (i64::from(page) - 1) * limit;
                (Window::Offset { limit, offset }, page)
            }
        };
        Ok(ListRequest { window, page, fields })
    }
}

/// Encodes a sort key as an opaque, URL-safe cursor.
pub fn encode_cursor<K: Serialize>(key: &K) -> Result<String, ApiError> {
    let json = serde_json::to_vec(key).map_err(ApiError::Encode)?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

fn decode_cursor<K: DeserializeOwned>(raw: &str) -> Result<K, ApiError> {
    let invalid = || ApiError::bad_request(Some("cursor".to_owned()), "cursor is not one this list issued");
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
    serde_json::from_slice(&bytes).map_err(|_| invalid())
}

/// Page metadata: offset pages report a total, keyset pages a cursor for the next page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Pagination {
    #[serde(rename_all = "camelCase")]
    Offset {
        page: u32,
        limit: i64,
        /// Exact number of rows matching the filters, reused for up to `COUNT_CACHE_TTL_MS`
        /// (default 5 s) per filter set; writes through the same instance show at once, or within
        /// `COUNT_CACHE_WRITE_REFRESH_MS` (default 1 s) under a stream of writes, others within
        /// the TTL.
        total: i64,
        /// Pages of `limit` rows it takes to hold `total` (0 when nothing matches).
        total_pages: i64,
        /// Whether a page follows, judged from `total`.
        has_next: bool,
        has_prev: bool,
    },
    #[serde(rename_all = "camelCase")]
    Keyset {
        limit: i64,
        has_next: bool,
        next_cursor: Option<String>,
    },
}

/// Pages of `limit` rows (at least 1) it takes to hold `total` rows: `ceil(total / limit)`.
pub fn total_pages(total: i64, limit: i64) -> i64 {
    let (total, limit) = (total.max(0), limit.max(1));
    total / limit + i64::from(total % limit != 0)
}

/// A page of a list as the API returns it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub pagination: Pagination,
}

impl<K: Serialize> ListRequest<K> {
    /// Builds the response envelope from the rows read, projecting the chosen fields.
    pub fn respond<T: Serialize>(
        &self,
        slice: Slice<T>,
        key_of: impl Fn(&T) -> K,
    ) -> Result<Page<Value>, ApiError> {
        let limit = self.window.limit();
        let pagination = match &self.window {
            Window::Offset { offset, .. } => {
                let total = slice.total.unwrap_or(0);
                Pagination::Offset {
                    page: self.page,
                    limit,
                    total,
                    total_pages: total_pages(total, limit),
                    has_next: offset + limit < total,
                    has_prev: *offset > 0,
                }
            }
            Window::Keyset { .. } => {
                let next_cursor = match (slice.has_more, slice.rows.last()) {
                    (true, Some(last)) => Some(encode_cursor(&key_of(last))?),
                    _ => None,
                };
                Pagination::Keyset {
                    limit,
                    has_next: slice.has_more,
                    next_cursor,
                }
            }
        };
        let data = slice
            .rows
            .iter()
            .map(|row| self.fields.project(row))
            .collect::<Result<_, _>>()?;
        Ok(Page { data, pagination })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(page: Option<u32>, limit: Option<u32>, cursor: Option<&str>) -> ListParams {
        ListParams {
            page,
            limit,
            cursor: cursor.map(str::to_owned),
            ..ListParams::default()
        }
    }

    #[test]
    fn limit_is_clamped_and_offset_follows_page() {
        let req = params(Some(3), Some(500), None).parse::<i64>(&["id"]).unwrap();
        assert_eq!(
            req.window,
            Window::Offset {
                limit: 100,
                offset: 200
            }
        );
        let req = params(None, Some(0), None).parse::<i64>(&["id"]).unwrap();
        assert_eq!(req.window.limit(), 1);
    }

    #[test]
    fn total_pages_rounds_up_and_is_zero_for_nothing() {
        assert_eq!(total_pages(0, 20), 0);
        assert_eq!(total_pages(1, 20), 1);
        assert_eq!(total_pages(20, 20), 1);
        assert_eq!(total_pages(21, 20), 2);
        assert_eq!(total_pages(5, 2), 3);
    }

    #[test]
    fn cursor_round_trips_and_garbage_is_rejected() {
        let cursor = encode_cursor(&(3_i16, 42_i64)).unwrap();
        let req = params(None, None, Some(&cursor))
            .parse::<(i16, i64)>(&["id"])
            .unwrap();
        assert_eq!(req.window.after(), Some(&(3, 42)));
        assert!(params(None, None, Some("!!")).parse::<i64>(&["id"]).is_err());
        assert!(params(Some(0), None, None).parse::<i64>(&["id"]).is_err());
        assert!(params(Some(2), None, Some("")).parse::<i64>(&["id"]).is_err());
    }
}
