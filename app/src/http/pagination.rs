//! List pagination: `?page=&limit=` (offset, with a total) or `?cursor=` / `?after=` (keyset,
//! opaque cursor), and the `{"data": [...], "pagination": {...}}` envelope.
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    error::ApiError,
    fields::{FieldSet, Picked},
};
use crate::db::{
    page::{Slice, Window},
    projects::ProjectKey,
    tasks::{DueDateKey, PriorityKey},
};

/// Rows per page when the client does not say.
pub const DEFAULT_LIMIT: u32 = 20;
/// Most rows per page; larger `limit` values are clamped to this.
pub const MAX_LIMIT: u32 = 100;

/// Paging and field selection, shared by every list. Every value the OpenAPI document allows is
/// served (`http::openapi` adds the per-list `fields` and `cursor` patterns).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// 1-based page number (offset pagination); ignored when a `cursor` is given.
    #[param(minimum = 1)]
    pub page: Option<i32>,
    /// Rows per page, clamped to 1..=100; default 20.
    #[param(minimum = 0)]
    pub limit: Option<i32>,
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
    pub fn parse<K: Cursor>(
        &self,
        allowed_fields: &'static [&'static str],
    ) -> Result<ListRequest<K>, ApiError> {
        let fields = FieldSet::parse(self.fields.as_deref(), allowed_fields)?;
        let limit = match self.limit {
            Some(limit) if limit < 0 => {
                return Err(ApiError::bad_request(
                    Some("limit".to_owned()),
                    "limit must not be negative",
                ));
            }
            Some(limit) => limit.unsigned_abs(),
            None => DEFAULT_LIMIT,
        };
        let limit = i64::from(limit.clamp(1, MAX_LIMIT));
        let page = match self.page {
            Some(page) if page < 1 => {
                return Err(ApiError::bad_request(
                    Some("page".to_owned()),
                    "page numbers start at 1",
                ));
            }
            page => page.map_or(1, i32::unsigned_abs),
        };
        // `after` is an alias of `cursor`, which wins when both are given; both must be valid.
        if let (Some(_), Some(after)) = (&self.cursor, self.after.as_deref())
            && !after.is_empty()
            && K::from_cursor(after).is_none()
        {
            return Err(ApiError::bad_request(
                Some("after".to_owned()),
                "after is not a cursor this list issued",
            ));
        }
        let cursor = self.cursor.as_deref().or(self.after.as_deref());
        let window = match cursor {
            Some(cursor) => {
                let after = match cursor {
                    "" => None,
                    raw => Some(K::from_cursor(raw).ok_or_else(|| {
                        ApiError::bad_request(Some("cursor".to_owned()), "cursor is not one this list issued")
                    })?),
                };
                return Ok(ListRequest {
                    window: Window::Keyset { limit, after },
                    page: 1,
                    fields,
                });
            }
            None => Window::Offset {
                limit,
                offset: (i64::from(page) - 1) * limit,
            },
        };
        Ok(ListRequest { window, page, fields })
    }
}

/// A sort key as an opaque cursor: a tag naming the list order, then the key, in a form every
/// string matching [`Cursor::PATTERN`] decodes from (so the OpenAPI document can say exactly which
/// cursors are valid, and a cursor of another list is refused instead of misread).
pub trait Cursor: Sized {
    /// The cursors of this order, as a regular expression (the empty cursor: the first page).
    const PATTERN: &'static str;
    fn to_cursor(&self) -> String;
    fn from_cursor(text: &str) -> Option<Self>;
}

/// `<digits>` of at most 18 digits as a non-negative id.
fn id_part(text: &str) -> Option<i64> {
    (!text.is_empty() && text.len() <= 18 && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// A signed integer of at most `digits` digits.
fn signed_part(text: &str, digits: usize) -> Option<i64> {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    (!unsigned.is_empty() && unsigned.len() <= digits && unsigned.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// Id order: `i.<id>`.
impl Cursor for i64 {
    const PATTERN: &'static str = r"^(|i\.[0-9]{1,18})$";
    fn to_cursor(&self) -> String {
        format!("i.{self}")
    }
    fn from_cursor(text: &str) -> Option<Self> {
        id_part(text.strip_prefix("i.")?)
    }
}

/// Priority order: `p.<priority>.<id>`.
impl Cursor for PriorityKey {
    const PATTERN: &'static str = r"^(|p\.[0-4]\.[0-9]{1,18})$";
    fn to_cursor(&self) -> String {
        format!("p.{}.{}", self.0, self.1)
    }
    fn from_cursor(text: &str) -> Option<Self> {
        let (priority, id) = text.strip_prefix("p.")?.split_once('.')?;
        let priority = match priority.as_bytes() {
            [digit @ b'0'..=b'4'] => i16::from(digit - b'0'),
            _ => return None,
        };
        Some((priority, id_part(id)?))
    }
}

/// Due-date order: `d.<days since 1970-01-01 | none>.<id>`.
impl Cursor for DueDateKey {
    // Dates before 1970 take at most 6 digits (back to 768 BC): PostgreSQL's dates end at 4713 BC.
    const PATTERN: &'static str = r"^(|d\.(none|-[0-9]{1,6}|[0-9]{1,7})\.[0-9]{1,18})$";
    fn to_cursor(&self) -> String {
        match self.0 {
            Some(due) => format!("d.{}.{}", (due - epoch_day()).num_days(), self.1),
            None => format!("d.none.{}", self.1),
        }
    }
    fn from_cursor(text: &str) -> Option<Self> {
        let (due, id) = text.strip_prefix("d.")?.split_once('.')?;
        let due = match due {
            "none" => None,
            days => {
                let digits = if days.starts_with('-') { 6 } else { 7 };
                let days = chrono::TimeDelta::try_days(signed_part(days, digits)?)?;
                Some(epoch_day().checked_add_signed(days)?)
            }
        };
        Some((due, id_part(id)?))
    }
}

/// Creation order: `c.<microseconds since 1970>.<id>`.
impl Cursor for ProjectKey {
    const PATTERN: &'static str = r"^(|c\.-?[0-9]{1,16}\.[0-9]{1,18})$";
    fn to_cursor(&self) -> String {
        format!("c.{}.{}", self.0.timestamp_micros(), self.1)
    }
    fn from_cursor(text: &str) -> Option<Self> {
        let (micros, id) = text.strip_prefix("c.")?.split_once('.')?;
        let at = chrono::DateTime::from_timestamp_micros(signed_part(micros, 16)?)?;
        Some((at, id_part(id)?))
    }
}

fn epoch_day() -> chrono::NaiveDate {
    chrono::NaiveDate::default()
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
        /// `COUNT_CACHE_WRITE_REFRESH_MS` (default 1 s) under a stream of writes, others (and all
        /// writes, for totals that took `COUNT_CACHE_SLOW_MS` or longer to count) within the TTL.
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
        /// The cursor of the next page; `null` on the last one. Always present, which tells a
        /// keyset page from an offset page.
        #[schema(required = true)]
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

impl<K: Cursor> ListRequest<K> {
    /// Builds the response envelope from the rows read, projecting the chosen fields.
    pub fn respond<T: Serialize>(
        &self,
        slice: Slice<T>,
        key_of: impl Fn(&T) -> K,
    ) -> Result<Page<Picked<T>>, ApiError> {
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
                    (true, Some(last)) => Some(key_of(last).to_cursor()),
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
            .into_iter()
            .map(|row| self.fields.pick(row))
            .collect::<Result<_, _>>()?;
        Ok(Page { data, pagination })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(page: Option<i32>, limit: Option<i32>, cursor: Option<&str>) -> ListParams {
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
        assert!(params(None, Some(-1), None).parse::<i64>(&["id"]).is_err());
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
        let cursor = (3_i16, 42_i64).to_cursor();
        let req = params(None, None, Some(&cursor))
            .parse::<(i16, i64)>(&["id"])
            .unwrap();
        assert_eq!(req.window.after(), Some(&(3, 42)));
        assert!(params(None, None, Some("!!")).parse::<i64>(&["id"]).is_err());
        assert!(params(Some(0), None, None).parse::<i64>(&["id"]).is_err());
        assert!(
            params(None, None, Some(&cursor)).parse::<i64>(&["id"]).is_err(),
            "another list's cursor"
        );
    }

    #[test]
    fn a_cursor_takes_precedence_over_a_page() {
        let req = params(Some(2), None, Some("")).parse::<i64>(&["id"]).unwrap();
        assert_eq!(
            req.window,
            Window::Keyset {
                limit: 20,
                after: None
            }
        );
    }

    #[test]
    fn every_key_round_trips_through_its_cursor() {
        let due = chrono::NaiveDate::from_ymd_opt(2026, 3, 31).unwrap();
        for key in [(Some(due), 7_i64), (None, 8)] {
            assert_eq!(DueDateKey::from_cursor(&key.to_cursor()), Some(key));
        }
        let created = chrono::DateTime::from_timestamp_micros(1_767_225_600_123_456).unwrap();
        assert_eq!(
            ProjectKey::from_cursor(&(created, 9).to_cursor()),
            Some((created, 9))
        );
        assert_eq!(i64::from_cursor(&42_i64.to_cursor()), Some(42));
        assert_eq!(i64::from_cursor("i.9999999999999999999"), None);
    }

    #[test]
    fn an_alias_beside_a_cursor_must_be_valid_too() {
        let mut both = params(None, None, Some("i.5"));
        both.after = Some("garbage".to_owned());
        assert!(
            both.parse::<i64>(&["id"]).is_err(),
            "an invalid alias beside a cursor"
        );
        both.after = Some("i.7".to_owned());
        let req = both.parse::<i64>(&["id"]).unwrap();
        assert_eq!(req.window.after(), Some(&5), "cursor wins");
    }

    #[test]
    fn due_date_cursors_stay_inside_postgresqls_dates() {
        // The first day a dueDate can have (0001-01-01) still has a cursor.
        let first = chrono::NaiveDate::from_ymd_opt(1, 1, 1).unwrap();
        assert_eq!(
            DueDateKey::from_cursor(&(Some(first), 1).to_cursor()),
            Some((Some(first), 1))
        );
        assert_eq!(DueDateKey::from_cursor("d.-5738566.785217"), None, "15,700 BC");
        assert!(
            DueDateKey::PATTERN.contains("-[0-9]{1,6}"),
            "the document says the same"
        );
    }
}
