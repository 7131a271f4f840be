//! What users, projects and tasks have in common, written once: read a row by id, change some of
//! its columns, delete it, list a filtered page in one of its orders, and count the rows behind the
//! `total` of an offset page. [`Resource`] says what differs (table, columns, filters, changes);
//! [`SortKey`] says how a list is ordered and where a keyset page continues.
use serde::{Serialize, de::DeserializeOwned};
use sqlx::{Encode, FromRow, Postgres, QueryBuilder, Type, postgres::PgRow};

use super::{
    Db,
    page::{Slice, Window},
    totals::{ListFilter, ListTotals, Table, TotalOf},
};

/// A table the API serves as a resource.
pub trait Resource:
    for<'r> FromRow<'r, PgRow> + Serialize + DeserializeOwned + Send + Unpin + 'static
{
    /// The table; also names its list totals.
    const TABLE: Table;
    /// One row, as clients and cache keys name it: `user` (`user:42`, "user not found").
    const NOUN: &'static str;
    /// The columns in the order of the row type.
    const COLUMNS: &'static str;
    /// The fields `?fields=` may pick.
    const FIELDS: &'static [&'static str];
    /// Names of its operations in the query monitor.
    const OPS: Operations;
    /// Tasks a delete of a row changes too (`ON DELETE SET NULL` / `CASCADE`), if any.
    const DEPENDENT_TASKS: Option<DependentTasks> = None;

    /// The filters of its lists.
    type Filter: ListFilter;
    /// A validated partial update.
    type Patch: Sync;

    fn id(&self) -> i64;
    /// Appends ` WHERE TRUE` and one ` AND ...` per filter set.
    fn push_filters(qb: &mut QueryBuilder<'_, Postgres>, filter: &Self::Filter);
    /// Appends `, column = $n` per column the patch changes.
    fn push_changes(qb: &mut QueryBuilder<'static, Postgres>, patch: &Self::Patch);
}

/// Operation names of a resource's queries (the `operation` label of the query metrics).
#[derive(Debug, Clone, Copy)]
pub struct Operations {
    pub get: &'static str,
    pub update: &'static str,
    pub delete: &'static str,
    pub list: &'static str,
    pub count: &'static str,
    /// A page of a list read with its total in one statement (when the total was not cached).
    pub list_and_count: &'static str,
}

/// `Operations` named `<table>.get`, `<table>.update`, ... for a table name literal.
macro_rules! operations {
    ($table:literal) => {
        $crate::db::resource::Operations {
            get: concat!($table, ".get"),
            update: concat!($table, ".update"),
            delete: concat!($table, ".delete"),
            list: concat!($table, ".list"),
            count: concat!($table, ".count"),
            list_and_count: concat!($table, ".list_and_count"),
        }
    };
}
pub(crate) use operations;

/// How to find the tasks a delete changes: the query (`$1` is the deleted row's id) and its name.
#[derive(Debug, Clone, Copy)]
pub struct DependentTasks {
    pub op: &'static str,
    pub sql: &'static str,
}

/// The order of a list of `R`: its sort key, which a keyset cursor carries.
pub trait SortKey<R>: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// What follows `ORDER BY`.
    const ORDER_BY: &'static str;
    /// The key of a row.
    fn of(row: &R) -> Self;
    /// Appends ` AND ...`: the rows after `self` in this order.
    fn push_after(&self, qb: &mut QueryBuilder<'_, Postgres>);
}

/// Id order, the plain list order of users and tasks.
impl<R: Resource> SortKey<R> for i64 {
    const ORDER_BY: &'static str = "id";

    fn of(row: &R) -> Self {
        row.id()
    }

    fn push_after(&self, qb: &mut QueryBuilder<'_, Postgres>) {
        qb.push(" AND id > ").push_bind(*self);
    }
}

/// Appends `, <column> = $n` when `value` is set (a patch's changed column).
pub fn push_change<T>(qb: &mut QueryBuilder<'static, Postgres>, column: &str, value: &Option<T>)
where
    T: Clone + Encode<'static, Postgres> + Type<Postgres> + 'static,
{
    if let Some(value) = value {
        qb.push(format_args!(", {column} = ")).push_bind(value.clone());
    }
}

/// Appends ` AND <column> = $n` when `value` is set (a list filter).
pub fn push_equal<'a, T>(qb: &mut QueryBuilder<'a, Postgres>, column: &str, value: &Option<T>)
where
    T: Clone + Encode<'a, Postgres> + Type<Postgres> + 'a,
{
    if let Some(value) = value {
        qb.push(format_args!(" AND {column} = ")).push_bind(value.clone());
    }
}

/// One row by id.
pub async fn get<R: Resource>(db: &Db, id: i64) -> Result<Option<R>, sqlx::Error> {
    // language=PostgreSQL
    let sql = &format!("SELECT {} FROM {} WHERE id = $1", R::COLUMNS, R::TABLE.as_str());
    db.fetch_optional(R::OPS.get, sqlx::query_as(sql).bind(id)).await
}

/// The `UPDATE` of `patch`, returning the row; [`update`] runs it on the pool, a caller with a
/// transaction runs it there.
pub fn update_query<R: Resource>(id: i64, patch: &R::Patch) -> QueryBuilder<'static, Postgres> {
    let mut qb = QueryBuilder::new(format!("UPDATE {} SET updated_at = now()", R::TABLE.as_str()));
    R::push_changes(&mut qb, patch);
    qb.push(" WHERE id = ").push_bind(id);
    qb.push(format_args!(" RETURNING {}", R::COLUMNS));
    qb
}

/// Applies `patch`; `None` when there is no such row.
pub async fn update<R: Resource>(db: &Db, id: i64, patch: &R::Patch) -> Result<Option<R>, sqlx::Error> {
    let mut qb = update_query::<R>(id, patch);
    db.fetch_optional(R::OPS.update, qb.build_query_as()).await
}

/// Deletes a row; `false` when there was none.
pub async fn delete<R: Resource>(db: &Db, id: i64) -> Result<bool, sqlx::Error> {
    // language=PostgreSQL
    let sql = &format!("DELETE FROM {} WHERE id = $1", R::TABLE.as_str());
    let done = db.execute(R::OPS.delete, sqlx::query(sql).bind(id)).await?;
    Ok(done.rows_affected() > 0)
}

/// Ids of the tasks a delete of row `id` will change, read before the delete so that their cache
/// entries can be retired after it; `None` for a resource without dependent tasks.
pub async fn dependent_tasks<R: Resource>(db: &Db, id: i64) -> Result<Option<Vec<i64>>, sqlx::Error> {
    let Some(DependentTasks { op, sql }) = R::DEPENDENT_TASKS else {
        return Ok(None);
    };
    db.timed(op, sql, |pool| async move {
        sqlx::query_scalar::<_, i64>(sql).bind(id).fetch_all(&pool).await
    })
    .await
    .map(Some)
}

/// Appends the list query of `R` in the order `K` to `qb`; tests prefix it with `EXPLAIN`.
pub fn push_list<R: Resource, K: SortKey<R>>(
    qb: &mut QueryBuilder<'_, Postgres>,
    filter: &R::Filter,
    window: &Window<K>,
) {
    qb.push(format_args!("SELECT {}", R::COLUMNS));
    push_list_rest::<R, K>(qb, filter, window);
}

/// Appends the list query of `R` with one more column, [`TOTAL_COLUMN`]: the count behind the
/// page's total, as an uncorrelated subquery PostgreSQL runs once per statement. Reads the page
/// and its total in one round trip.
pub fn push_list_and_count<R: Resource, K: SortKey<R>>(
    qb: &mut QueryBuilder<'_, Postgres>,
    filter: &R::Filter,
    window: &Window<K>,
) {
    qb.push(format_args!("SELECT {}, (", R::COLUMNS));
    push_count::<R>(qb, filter);
    qb.push(format_args!(") AS {TOTAL_COLUMN}"));
    push_list_rest::<R, K>(qb, filter, window);
}

/// What follows the select list of a list query: table, filters, position, order and window.
fn push_list_rest<R: Resource, K: SortKey<R>>(
    qb: &mut QueryBuilder<'_, Postgres>,
    filter: &R::Filter,
    window: &Window<K>,
) {
    qb.push(format_args!(" FROM {}", R::TABLE.as_str()));
    R::push_filters(qb, filter);
    if let Some(after) = window.after() {
        after.push_after(qb);
    }
    qb.push(format_args!(" ORDER BY {}", K::ORDER_BY));
    window.push_limit(qb);
}

/// The column [`push_list_and_count`] adds for the total.
const TOTAL_COLUMN: &str = "list_total";

/// A row of [`push_list_and_count`]: the resource's row and the total beside it.
struct Counted<R> {
    row: R,
    total: i64,
}

impl<'r, R: FromRow<'r, PgRow>> FromRow<'r, PgRow> for Counted<R> {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            row: R::from_row(row)?,
            total: sqlx::Row::try_get(row, TOTAL_COLUMN)?,
        })
    }
}

/// A page of `R` in the order `K`, timed as `op`; offset pages take their total from `totals`.
/// When the total is not cached, the page and its count are read in one statement.
pub async fn list<R: Resource, K: SortKey<R>>(
    db: &Db,
    totals: &ListTotals,
    op: &'static str,
    filter: &R::Filter,
    window: &Window<K>,
) -> Result<Slice<R>, sqlx::Error> {
    let Window::Offset { .. } = window else {
        return Ok(Slice::from_rows(
            page(db, op, filter, window).await?,
            window,
            None,
        ));
    };
    let of = TotalOf::new(R::TABLE, filter.clone());
    let (total, read) = totals
        .get_or_count_with(of, || page_and_count(db, filter, window))
        .await?;
    let rows = match read {
        Some(rows) => rows,
        None => page(db, op, filter, window).await?,
    };
    Ok(Slice::from_rows(rows, window, Some(total)))
}

/// The rows of a page, timed as `op`.
async fn page<R: Resource, K: SortKey<R>>(
    db: &Db,
    op: &'static str,
    filter: &R::Filter,
    window: &Window<K>,
) -> Result<Vec<R>, sqlx::Error> {
    let mut qb = QueryBuilder::new("");
    push_list(&mut qb, filter, window);
    db.fetch_all(op, qb.build_query_as()).await
}

/// The total under `filter` and the rows of the offset page `window`, in one statement. An empty
/// page carries no total: on the first page it is 0, further on it takes a count of its own.
async fn page_and_count<R: Resource, K: SortKey<R>>(
    db: &Db,
    filter: &R::Filter,
    window: &Window<K>,
) -> Result<(i64, Vec<R>), sqlx::Error> {
    let mut qb = QueryBuilder::new("");
    push_list_and_count(&mut qb, filter, window);
    let rows: Vec<Counted<R>> = db.fetch_all(R::OPS.list_and_count, qb.build_query_as()).await?;
    let total = match rows.first() {
        Some(first) => first.total,
        None if matches!(window, Window::Offset { offset: 0, .. }) => 0,
        None => count::<R>(db, filter).await?,
    };
    Ok((total, rows.into_iter().map(|counted| counted.row).collect()))
}

/// Appends the count behind the `total` of an offset page of `R` under `filter` to `qb`; tests
/// prefix it with `EXPLAIN`.
pub fn push_count<R: Resource>(qb: &mut QueryBuilder<'_, Postgres>, filter: &R::Filter) {
    qb.push(format_args!("SELECT count(*) FROM {}", R::TABLE.as_str()));
    R::push_filters(qb, filter);
}

/// Rows matching `filter`: the exact `total` of an offset page (cached by [`ListTotals`]).
pub async fn count<R: Resource>(db: &Db, filter: &R::Filter) -> Result<i64, sqlx::Error> {
    let mut qb = QueryBuilder::new("");
    push_count::<R>(&mut qb, filter);
    db.fetch_scalar(R::OPS.count, qb.build_query_scalar()).await
}

#[cfg(test)]
mod tests;
