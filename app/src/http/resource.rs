//! The handlers users, projects and tasks share: create, read one row through the cache with
//! `?fields=`, PATCH, DELETE, and a page of a list. Each write retires its caches through
//! [`writes::retire`]. What differs per resource is [`Writes`] (how its rows are written) and what
//! [`resource_routes!`] is given (OpenAPI descriptions, request bodies); the per-resource modules
//! keep their bodies, validation, lists and special routes.
use std::future::Future;

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::Value;

use super::{
    AppState,
    error::ApiError,
    fields::{FieldSet, Picked},
    pagination::{Cursor, FieldsParam, ListRequest, Page},
};
use crate::{
    cache::{
        entities,
        writes::{self, Write},
    },
    db::resource::{self, Resource, SortKey},
};

/// How the API writes a resource where that differs from the plain statements of `db::resource`.
pub trait Writes: Resource {
    /// A validated new row.
    type New: Sync;

    /// Inserts `new`.
    fn insert(state: &AppState, new: &Self::New) -> impl Future<Output = Result<Self, sqlx::Error>> + Send;

    /// Applies a validated PATCH; `None` when there is no such row.
    fn apply(
        state: &AppState,
        id: i64,
        patch: &Self::Patch,
    ) -> impl Future<Output = Result<Option<Self>, sqlx::Error>> + Send {
        resource::update::<Self>(&state.db, id, patch)
    }

    /// The answer to a DELETE that failed (a foreign key may forbid it).
    fn delete_failed(err: sqlx::Error) -> ApiError {
        ApiError::from(err)
    }
}

/// `201 Created` with `Location: /api/v1/<table>/<id>` and the row.
pub type Created<R> = (StatusCode, [(header::HeaderName, String); 1], Json<R>);

/// `POST /<table>`: inserts as `R` writes it, retires what the insert changed (it may have committed
/// even if it failed), then `201 Created` or the error.
pub async fn create<R: Writes>(state: &AppState, new: &R::New) -> Result<Created<R>, ApiError> {
    let inserted = R::insert(state, new).await;
    retire::<R>(state, Write::Created).await;
    let row = inserted?;
    let location = format!("/api/v1/{}/{}", R::TABLE.as_str(), row.id());
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(row)))
}

/// `GET /<table>/{id}`: the row through the cache, with the fields `?fields=` picks. The whole row
/// is the cached JSON as it is (a cache hit decodes and encodes nothing); a projection decodes it.
pub async fn get_one<R: Resource>(
    state: &AppState,
    id: i64,
    fields: &FieldsParam,
) -> Result<Response, ApiError> {
    let fields = FieldSet::parse(fields.fields.as_deref(), R::FIELDS)?;
    let json = entities::get_json::<R>(&state.cache, &state.db, id)
        .await?
        .ok_or(ApiError::NotFound(R::NOUN))?;
    if fields.is_all() {
        let content_type = HeaderValue::from_static("application/json");
        return Ok(([(header::CONTENT_TYPE, content_type)], json).into_response());
    }
    let row: Value = serde_json::from_slice(&json).map_err(ApiError::Encode)?;
    Ok(Json(fields.project(&row)?).into_response())
}

/// `PATCH /<table>/{id}`: applies the patch as `R` writes it, retires what it changed, then the row
/// or 404.
pub async fn update_one<R: Writes>(state: &AppState, id: i64, patch: &R::Patch) -> Result<Json<R>, ApiError> {
    let changed = R::apply(state, id, patch).await;
    retire::<R>(state, Write::Updated(id)).await;
    let row = changed?.ok_or(ApiError::NotFound(R::NOUN))?;
    Ok(Json(row))
}

/// `DELETE /<table>/{id}`: reads the tasks the delete changes, deletes, retires what changed, then
/// 204 or 404.
pub async fn delete_one<R: Writes>(state: &AppState, id: i64) -> Result<StatusCode, ApiError> {
    let dependent_tasks = resource::dependent_tasks::<R>(&state.db, id).await?;
    let deleted = resource::delete::<R>(&state.db, id).await;
    retire::<R>(state, Write::Deleted { id, dependent_tasks }).await;
    if deleted.map_err(R::delete_failed)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(R::NOUN))
    }
}

/// A page of `R` in the order `K` (timed as `op`), in the list envelope.
pub async fn page<R: Resource, K: SortKey<R> + Cursor>(
    state: &AppState,
    op: &'static str,
    request: &ListRequest<K>,
    filter: &R::Filter,
) -> Result<Json<Page<Picked<R>>>, ApiError> {
    let slice = resource::list::<R, K>(&state.db, &state.totals, op, filter, &request.window).await?;
    Ok(Json(request.respond(slice, K::of)?))
}

async fn retire<R: Resource>(state: &AppState, write: Write) {
    writes::retire::<R>(&state.cache, &state.totals, &write).await;
}

/// The create, get, PATCH and DELETE handlers of a resource, each with its OpenAPI description.
/// What differs is given here: row type, paths, tag, request bodies, doc comments, the description
/// of a create's 422 and the responses a resource has beyond the common ones (`also`); the bodies are
/// the functions above. The request bodies validate into the resource's `New` and `Patch` types
/// with a `validate(self)` method.
macro_rules! resource_routes {
    (
        $row:ident at $collection:literal and $item:literal, tag $tag:literal;
        $(#[$create_doc:meta])* $create:ident($create_body:ident) invalid $invalid:literal also($($create_also:tt)*);
        $(#[$get_doc:meta])* $get:ident;
        $(#[$update_doc:meta])* $update:ident($update_body:ident) also($($update_also:tt)*);
        $(#[$delete_doc:meta])* $delete:ident also($($delete_also:tt)*);
    ) => {
        $(#[$create_doc])*
        #[utoipa::path(post, path = $collection, tag = $tag, request_body = $create_body,
            responses(
                (status = 201, body = $row,
                 description = format!("Created; `Location` names the {}", <$row as crate::db::resource::Resource>::NOUN)),
                (status = 422, description = $invalid, body = Problem, content_type = "application/problem+json"),
                $($create_also)*
            ))]
        async fn $create(
            State(state): State<AppState>,
            Json(body): Json<$create_body>,
        ) -> Result<impl IntoResponse, ApiError> {
            resource::create::<$row>(&state, &body.validate()?).await
        }

        $(#[$get_doc])*
        #[utoipa::path(get, path = $item, tag = $tag, params(("id" = i64, Path), FieldsParam),
            responses(
                (status = 200, body = $row),
                (status = 404, body = Problem, content_type = "application/problem+json"),
            ))]
        async fn $get(
            State(state): State<AppState>,
            Path(id): Path<i64>,
            Query(fields): Query<FieldsParam>,
        ) -> Result<impl IntoResponse, ApiError> {
            resource::get_one::<$row>(&state, id, &fields).await
        }

        $(#[$update_doc])*
        #[utoipa::path(patch, path = $item, tag = $tag, params(("id" = i64, Path)),
            request_body = $update_body,
            responses(
                (status = 200, body = $row),
                (status = 404, body = Problem, content_type = "application/problem+json"),
                (status = 422, body = Problem, content_type = "application/problem+json"),
                $($update_also)*
            ))]
        async fn $update(
            State(state): State<AppState>,
            Path(id): Path<i64>,
            Json(body): Json<$update_body>,
        ) -> Result<impl IntoResponse, ApiError> {
            resource::update_one::<$row>(&state, id, &body.validate()?).await
        }

        $(#[$delete_doc])*
        #[utoipa::path(delete, path = $item, tag = $tag, params(("id" = i64, Path)),
            responses(
                (status = 204, description = "Deleted"),
                (status = 404, body = Problem, content_type = "application/problem+json"),
                $($delete_also)*
            ))]
        async fn $delete(State(state): State<AppState>, Path(id): Path<i64>) -> Result<StatusCode, ApiError> {
            resource::delete_one::<$row>(&state, id).await
        }
    };
}
pub(crate) use resource_routes;
