//! The usual ways to run one statement through [`Db::timed`]. The statement comes with its
//! parameters bound (`sqlx::query`, `query_as`, `query_scalar`, or a `QueryBuilder`'s), and its own
//! SQL is what the query monitor names when it is slow, so the two cannot disagree.
use sqlx::{
    Execute, FromRow, Postgres,
    postgres::{PgArguments, PgQueryResult, PgRow},
    query::{Query, QueryAs, QueryScalar},
};

use super::Db;

/// A statement read as rows of `T` (`sqlx::query_as`).
type Rows<'q, T> = QueryAs<'q, Postgres, T, PgArguments>;
/// A statement read as the first column of its rows (`sqlx::query_scalar`).
type Values<'q, T> = QueryScalar<'q, Postgres, T, PgArguments>;

/// What a row can be read into.
pub trait Row: for<'r> FromRow<'r, PgRow> + Send + Unpin {}
impl<T: for<'r> FromRow<'r, PgRow> + Send + Unpin> Row for T {}

impl Db {
    /// The one row `query` returns, timed as `op`.
    pub async fn fetch_one<T: Row>(&self, op: &'static str, query: Rows<'_, T>) -> Result<T, sqlx::Error> {
        self.timed(
            op,
            query.sql(),
            |pool| async move { query.fetch_one(&pool).await },
        )
        .await
    }

    /// The row `query` returns, if any, timed as `op`.
    pub async fn fetch_optional<T: Row>(
        &self,
        op: &'static str,
        query: Rows<'_, T>,
    ) -> Result<Option<T>, sqlx::Error> {
        self.timed(op, query.sql(), |pool| async move {
            query.fetch_optional(&pool).await
        })
        .await
    }

    /// Every row `query` returns, timed as `op`.
    pub async fn fetch_all<T: Row>(
        &self,
        op: &'static str,
        query: Rows<'_, T>,
    ) -> Result<Vec<T>, sqlx::Error> {
        self.timed(
            op,
            query.sql(),
            |pool| async move { query.fetch_all(&pool).await },
        )
        .await
    }

    /// The one value `query` returns, timed as `op`.
    pub async fn fetch_scalar<T: Send + Unpin>(
        &self,
        op: &'static str,
        query: Values<'_, T>,
    ) -> Result<T, sqlx::Error>
    where
        (T,): for<'r> FromRow<'r, PgRow>,
    {
        self.timed(
            op,
            query.sql(),
            |pool| async move { query.fetch_one(&pool).await },
        )
        .await
    }

    /// The value `query` returns, if it returns a row, timed as `op`.
    pub async fn fetch_optional_scalar<T: Send + Unpin>(
        &self,
        op: &'static str,
        query: Values<'_, T>,
    ) -> Result<Option<T>, sqlx::Error>
    where
        (T,): for<'r> FromRow<'r, PgRow>,
    {
        self.timed(op, query.sql(), |pool| async move {
            query.fetch_optional(&pool).await
        })
        .await
    }

    /// Runs `query` (a write, or a statement whose rows do not matter), timed as `op`.
    pub async fn execute(
        &self,
        op: &'static str,
        query: Query<'_, Postgres, PgArguments>,
    ) -> Result<PgQueryResult, sqlx::Error> {
        self.timed(op, query.sql(), |pool| async move { query.execute(&pool).await })
            .await
    }

    /// The one row `sql` (a statement without parameters) returns, as `T`, timed as `op`.
    pub async fn fetch_row<T: Row>(&self, op: &'static str, sql: &'static str) -> Result<T, sqlx::Error> {
        self.fetch_one(op, sqlx::query_as(sql)).await
    }

    /// The one value `sql` (a statement without parameters) returns, timed as `op`.
    pub async fn fetch_value<T: Send + Unpin>(
        &self,
        op: &'static str,
        sql: &'static str,
    ) -> Result<T, sqlx::Error>
    where
        (T,): for<'r> FromRow<'r, PgRow>,
    {
        self.fetch_scalar(op, sqlx::query_scalar(sql)).await
    }
}
