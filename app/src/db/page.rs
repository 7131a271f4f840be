//! Which slice of a list a query returns: an offset page (with a total) or a keyset page that
//! continues after the last row a client saw. Both are applied in SQL, never in memory.
use sqlx::{Postgres, QueryBuilder};

/// The slice of an ordered list to read. `K` is the sort key of the list (its cursor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Window<K> {
    /// `LIMIT limit OFFSET offset`, and a `COUNT(*)` for the total.
    Offset { limit: i64, offset: i64 },
    /// The first `limit` rows after `after` in list order (from the start when `None`).
    Keyset { limit: i64, after: Option<K> },
}

impl<K> Window<K> {
    pub fn limit(&self) -> i64 {
        match self {
            Self::Offset { limit, .. } | Self::Keyset { limit, .. } => *limit,
        }
    }

    /// The keyset position to continue after, if any.
    pub fn after(&self) -> Option<&K> {
        match self {
            Self::Keyset { after, .. } => after.as_ref(),
            Self::Offset { .. } => None,
        }
    }

    /// Appends `LIMIT`/`OFFSET`. Keyset pages read one row more than asked to learn whether
    /// another page follows.
    pub fn push_limit(&self, qb: &mut QueryBuilder<'_, Postgres>) {
        match self {
            Self::Offset { limit, offset } => {
                qb.push(" LIMIT ").push_bind(*limit);
                qb.push(" OFFSET ").push_bind(*offset);
            }
            Self::Keyset { limit, .. } => {
                qb.push(" LIMIT ").push_bind(*limit + 1);
            }
        }
    }
}

/// Rows of one page and what the caller needs to describe the next one.
#[derive(Debug, Clone)]
pub struct Slice<T> {
    pub rows: Vec<T>,
    /// Rows matching the filters in the whole list (offset pages only).
    pub total: Option<i64>,
    /// Whether rows follow this page (keyset pages only; offset pages derive it from `total`).
    pub has_more: bool,
}

impl<T> Slice<T> {
    /// Builds a slice from the rows a windowed query returned, trimming the look-ahead row of a
    /// keyset page.
    pub fn from_rows<K>(mut rows: Vec<T>, window: &Window<K>, total: Option<i64>) -> Self {
        let has_more = match window {
            Window::Keyset { limit, .. } => {
                let limit = usize::try_from(*limit).unwrap_or(usize::MAX);
                let more = rows.len() > limit;
                rows.truncate(limit);
                more
            }
            Window::Offset { .. } => false,
        };
        Self {
            rows,
            total,
            has_more,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyset_slice_trims_look_ahead_row() {
        let window: Window<i64> = Window::Keyset {
            limit: 2,
            after: None,
        };
        let slice = Slice::from_rows(vec![1, 2, 3], &window, None);
        assert_eq!(slice.rows, vec![1, 2]);
        assert!(slice.has_more);
        let slice = Slice::from_rows(vec![1, 2], &window, None);
        assert!(!slice.has_more);
    }
}
