//! One watched kind's objects as their JSON text. A typed `k8s-openapi` object takes several times the
//! memory of its JSON (every optional field of every nested struct is allocated whether set or not:
//! a Deployment's pod template alone is kilobytes of `None`s), and a reconcile reads only the dozen
//! children of its stack, so the store keeps the text and a read parses the one object it asks for.
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, PoisonError, RwLock};

use kube::Resource;
use kube::runtime::watcher;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

/// `namespace/name`.
type Key = String;

fn key_of<K: Resource>(object: &K) -> Key {
    let meta = object.meta();
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

/// The reading half: cheap to clone, shared by every reconcile.
pub struct TextStore<K> {
    objects: Arc<RwLock<HashMap<Key, Box<str>>>>,
    /// `true` once the watch listed the kind the first time; closed when the writer is gone.
    listed: watch::Receiver<bool>,
    kind: PhantomData<fn() -> K>,
}

impl<K> Clone for TextStore<K> {
    fn clone(&self) -> Self {
        Self {
            objects: self.objects.clone(),
            listed: self.listed.clone(),
            kind: PhantomData,
        }
    }
}

/// The writing half, fed every event of the watch (a store of its own, as kube's reflector keeps).
pub struct TextWriter<K> {
    objects: Arc<RwLock<HashMap<Key, Box<str>>>>,
    /// What a (re)list collected so far; swapped in whole once it is complete.
    buffer: HashMap<Key, Box<str>>,
    listed: watch::Sender<bool>,
    kind: PhantomData<fn() -> K>,
}

/// An empty store and its writer.
pub fn text_store<K>() -> (TextStore<K>, TextWriter<K>) {
    let objects = Arc::new(RwLock::new(HashMap::new()));
    let (listed_tx, listed) = watch::channel(false);
    (
        TextStore {
            objects: objects.clone(),
            listed,
            kind: PhantomData,
        },
        TextWriter {
            objects,
            buffer: HashMap::new(),
            listed: listed_tx,
            kind: PhantomData,
        },
    )
}

impl<K: Resource + Serialize> TextWriter<K> {
    /// Keeps what the watch reported: an object as it is now, one gone, or a whole new list (kept
    /// aside until complete, so a relist never shows a partial store).
    pub fn apply_watcher_event(&mut self, event: &watcher::Event<K>) {
        match event {
            watcher::Event::Apply(object) => {
                if let Some(text) = text_of(object) {
                    self.write().insert(key_of(object), text);
                }
            }
            watcher::Event::Delete(object) => {
                self.write().remove(&key_of(object));
            }
            watcher::Event::Init => self.buffer = HashMap::new(),
            watcher::Event::InitApply(object) => {
                if let Some(text) = text_of(object) {
                    self.buffer.insert(key_of(object), text);
                }
            }
            watcher::Event::InitDone => {
                let mut listed = std::mem::take(&mut self.buffer);
                listed.shrink_to_fit();
                *self.write() = listed;
                self.listed.send_replace(true);
            }
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Key, Box<str>>> {
        self.objects.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The object as JSON text; `None` (not kept, so reads fall back to a GET) if it cannot be written.
fn text_of<K: Serialize>(object: &K) -> Option<Box<str>> {
    match serde_json::to_string(object) {
        Ok(text) => Some(text.into_boxed_str()),
        Err(error) => {
            tracing::warn!(%error, "a watched object could not be kept");
            None
        }
    }
}

impl<K: DeserializeOwned> TextStore<K> {
    /// Whether the watch listed the kind once (a store that never did answers nothing).
    pub fn is_listed(&self) -> bool {
        *self.listed.borrow()
    }

    /// Resolves once the watch listed the kind, or when its writer is gone.
    pub async fn listed(&self) {
        let _ = self.listed.clone().wait_for(|listed| *listed).await;
    }

    /// The object `name` in `namespace` (`Some(None)`: absent), or `None` before the first list (or
    /// if its text no longer parses, which would be a bug: the caller then asks the API server).
    pub fn get(&self, namespace: &str, name: &str) -> Option<Option<K>> {
        if !self.is_listed() {
            return None;
        }
        let objects = self.objects.read().unwrap_or_else(PoisonError::into_inner);
        let Some(text) = objects.get(&format!("{namespace}/{name}")) else {
            return Some(None);
        };
        match serde_json::from_str(text) {
            Ok(object) => Some(Some(object)),
            Err(error) => {
                tracing::warn!(%error, namespace, name, "a kept object does not parse");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    use super::*;

    fn config(name: &str, value: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                ..ObjectMeta::default()
            },
            data: Some([("key".to_owned(), value.to_owned())].into()),
            ..ConfigMap::default()
        }
    }

    #[test]
    fn a_store_answers_only_once_listed_and_then_as_the_watch_saw_the_objects() {
        let (store, mut writer) = text_store::<ConfigMap>();
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitApply(config("a", "1")));
        assert_eq!(store.get("ns", "a"), None, "not listed yet");
        writer.apply_watcher_event(&watcher::Event::InitDone);
        assert_eq!(store.get("ns", "a"), Some(Some(config("a", "1"))));
        assert_eq!(store.get("ns", "b"), Some(None));
        assert_eq!(store.get("other", "a"), Some(None));

        writer.apply_watcher_event(&watcher::Event::Apply(config("a", "2")));
        writer.apply_watcher_event(&watcher::Event::Apply(config("b", "1")));
        assert_eq!(store.get("ns", "a"), Some(Some(config("a", "2"))));
        writer.apply_watcher_event(&watcher::Event::Delete(config("b", "1")));
        assert_eq!(store.get("ns", "b"), Some(None));
    }

    #[test]
    fn a_relist_replaces_the_objects_only_once_complete() {
        let (store, mut writer) = text_store::<ConfigMap>();
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitApply(config("gone", "1")));
        writer.apply_watcher_event(&watcher::Event::InitDone);

        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitApply(config("new", "1")));
        assert_eq!(
            store.get("ns", "gone"),
            Some(Some(config("gone", "1"))),
            "the old list until done"
        );
        writer.apply_watcher_event(&watcher::Event::InitDone);
        assert_eq!(store.get("ns", "gone"), Some(None));
        assert_eq!(store.get("ns", "new"), Some(Some(config("new", "1"))));
    }

    #[tokio::test]
    async fn waiting_for_the_first_list_ends_with_it_or_with_the_writer() {
        let (store, mut writer) = text_store::<ConfigMap>();
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitDone);
        store.listed().await;

        let (store, writer) = text_store::<ConfigMap>();
        drop(writer);
        store.listed().await;
        assert_eq!(
            store.get("ns", "a"),
            None,
            "never listed: the caller asks the API server"
        );
    }
}
