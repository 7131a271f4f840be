//! The handler bodies users, projects and tasks share: answer a create, read one row through the
//! cache with `?fields=`, answer a PATCH, delete, and list a page. Each write retires its caches
//! through [`writes::retire`]; the per-resource routers keep their OpenAPI descriptions, bodies and
//! validation, and call these.
use axum::{
    Json,
    http::{StatusCode, header},
};
use serde_json::Value;

use super::{
    AppState,
    error::ApiError,
    fields::FieldSet,
    pagination::{FieldsParam, ListRequest, Page},
};
use crate::{
    cache::{
        entities,
        writes::{self, Write},
    },
    db::resource::{self, Resource, SortKey},
};

/// `201 Created` with `Location: /api/v1/<table>/<id>` and the row.
pub type Created<R> = (StatusCode, [(header::HeaderName, String); 1], Json<R>);

/// Answers a create: retires what the insert changed (it may have committed even if it failed),
/// then the row or the error.
pub async fn created<R: Resource>(
    state: &AppState,
    inserted: Result<R, sqlx::Error>,
) -> Result<Created<R>, ApiError> {
    retire::<R>(state, Write::Created).await;
    let row = inserted?;
    let location = format!("/api/v1/{}/{}", R::TABLE.as_str(), row.id());
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(row)))
}

/// `GET /<table>/{id}`: the row through the cache, with the fields `?fields=` picks.
pub async fn get_one<R: Resource>(
    state: &AppState,
    id: i64,
    fields: &FieldsParam,
) -> Result<Json<Value>, ApiError> {
    let fields = FieldSet::parse(fields.fields.as_deref(), R::FIELDS)?;
    let row = entities::get::<R>(&state.cache, &state.db, id)
        .await?
        .ok_or(ApiError::NotFound(R::NOUN))?;
    Ok(Json(fields.project(&row)?))
}

/// `PATCH /<table>/{id}` through the plain `UPDATE`.
pub async fn update_one<R: Resource>(
    state: &AppState,
    id: i64,
    patch: &R::Patch,
) -> Result<Json<R>, ApiError> {
    let changed = resource::update::<R>(&state.db, id, patch).await;
    updated(state, id, changed).await
}

/// Answers a PATCH however it was written: retires what it changed, then the row or 404.
pub async fn updated<R: Resource>(
    state: &AppState,
    id: i64,
    changed: Result<Option<R>, sqlx::Error>,
) -> Result<Json<R>, ApiError> {
    retire::<R>(state, Write::Updated(id)).await;
    let row = changed?.ok_or(ApiError::NotFound(R::NOUN))?;
    Ok(Json(row))
}

/// `DELETE /<table>/{id}`: reads the tasks the delete changes, deletes, retires what changed, then
/// 204 or 404. `on_error` maps a failed delete (e.g. a foreign key that forbids it).
pub async fn delete_one<R: Resource>(
    state: &AppState,
    id: i64,
    on_error: impl FnOnce(sqlx::Error) -> ApiError,
) -> Result<StatusCode, ApiError> {
    let dependent_tasks = resource::dependent_tasks::<R>(&state.db, id).await?;
    let deleted = resource::delete::<R>(&state.db, id).await;
    retire::<R>(state, Write::Deleted { id, dependent_tasks }).await;
    if deleted.map_err(on_error)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(R::NOUN))
    }
}

/// A page of `R` in the order `K` (timed as `op`), in the list envelope.
pub async fn page<R: Resource, K: SortKey<R>>(
    state: &AppState,
    op: &'static str,
    request: &ListRequest<K>,
    filter: &R::Filter,
) -> Result<Json<Page<Value>>, ApiError> {
    let slice = resource::list::<R, K>(&state.db, &state.totals, op, filter, &request.window).await?;
    Ok(Json(request.respond(slice, K::of)?))
}

async fn retire<R: Resource>(state: &AppState, write: Write) {
    writes::retire::<R>(&state.cache, &state.totals, &write).await;
}
