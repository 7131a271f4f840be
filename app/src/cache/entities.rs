//! Users, projects and tasks read by id through the cache: handlers call [`get`] instead of
//! `db::resource::get`, and retire what they wrote through `cache::writes`.
use bytes::Bytes;

use super::{Cache, entity_key};
use crate::db::{
    Db,
    resource::{self, Resource},
};

/// The row `id` of `R`, from L1, L2 or the database.
pub async fn get<R: Resource>(cache: &Cache, db: &Db, id: i64) -> Result<Option<R>, sqlx::Error> {
    cache
        .get_or_load(&entity_key(R::NOUN, id), || resource::get::<R>(db, id))
        .await
}

/// The JSON of row `id` of `R` (what `serde_json` writes for it), from L1, L2 or the database.
pub async fn get_json<R: Resource>(cache: &Cache, db: &Db, id: i64) -> Result<Option<Bytes>, sqlx::Error> {
    cache
        .get_json_or_load(&entity_key(R::NOUN, id), || resource::get::<R>(db, id))
        .await
}

/// Drops the cached row `id` of `R` here, from L2 and from every replica's L1.
pub async fn evict<R: Resource>(cache: &Cache, id: i64) {
    cache.evict(&entity_key(R::NOUN, id)).await;
}
