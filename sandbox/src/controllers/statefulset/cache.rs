//! The controller's view of a set's children (pods, ControllerRevisions):
//! a cache fed by one watch per kind and indexed by owner uid, like the
//! informers and indexers the real StatefulSet controller reads from.
//!
//! A reconcile used to list both kinds from the API server on every pass
//! (two requests, two JSON documents parsed, per pod event). The cache is
//! updated by the same watch stream that triggers the reconcile, *before*
//! the trigger is queued ([`OwnerCache::apply`] returns what to queue), so
//! a pass started by an event sees that event. The windows that remain are
//! handled as a real controller does:
//!
//! - The controller's own writes (a pod created or deleted, a revision
//!   created) are put into the cache from the API server's answers
//!   ([`OwnerCache::write_through`], [`OwnerCache::delete_answered`];
//!   client-go's mutation cache), so a pass right after them does not
//!   create or delete the same pod again while the watch event is still in
//!   flight. Neither an answer nor a late watch event replaces a newer
//!   version (resourceVersions compared), and an answer never brings back
//!   an object whose deletion was seen.
//! - A re-list (watch restart) fills a new index and swaps it in when the
//!   list is complete; until then passes read the previous one, never an
//!   empty one. At the swap the owners of every listed object and of every
//!   object the list no longer has (deleted while the watch was down) are
//!   queued. Passes wait for the first complete lists
//!   ([`OwnerCache::ready`]).
//!
//! Anything still stale makes a create answer 409 or a delete 404, which
//! the callers treat as "already done"; the next event triggers another pass.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock};

use kube::ResourceExt;
use kube::runtime::watcher;
use tokio::sync::watch;

use crate::selector::LabelSelector;

/// (namespace, name) of a cached object.
type Key = (String, String);

/// Objects of one kind by key, plus the index owner uid -> keys.
struct Index<K> {
    objects: HashMap<Key, Arc<K>>,
    by_owner: HashMap<String, BTreeMap<Key, Arc<K>>>,
    /// resourceVersion of the deletion of objects the watch saw deleted,
    /// so a late answer to an earlier write cannot bring them back.
    deleted: HashMap<Key, u64>,
}

impl<K> Default for Index<K> {
    fn default() -> Self {
        Self {
            objects: HashMap::new(),
            by_owner: HashMap::new(),
            deleted: HashMap::new(),
        }
    }
}

/// Deletions remembered at most; beyond it the oldest knowledge is
/// dropped (a late write answer is then only as safe as without a cache:
/// the next re-list or event corrects it).
const MAX_DELETED: usize = 10_000;

impl<K: ResourceExt> Index<K> {
    fn key(object: &K) -> Key {
        (object.namespace().unwrap_or_default(), object.name_any())
    }

    fn insert(&mut self, object: Arc<K>) {
        let key = Self::key(&object);
        self.remove(&key);
        self.deleted.remove(&key);
        for owner in object.owner_references() {
            self.by_owner
                .entry(owner.uid.clone())
                .or_default()
                .insert(key.clone(), object.clone());
        }
        self.objects.insert(key, object);
    }

    /// Removes `key`, remembering that it was deleted at `version`.
    fn forget(&mut self, key: Key, version: u64) {
        self.remove(&key);
        if self.deleted.len() >= MAX_DELETED {
            self.deleted.clear();
        }
        self.deleted.insert(key, version);
    }

    fn remove(&mut self, key: &Key) {
        let Some(old) = self.objects.remove(key) else {
            return;
        };
        for owner in old.owner_references() {
            if let Some(owned) = self.by_owner.get_mut(&owner.uid) {
                owned.remove(key);
                if owned.is_empty() {
                    self.by_owner.remove(&owner.uid);
                }
            }
        }
    }
}

struct State<K> {
    current: Index<K>,
    /// A re-list in progress: the objects listed so far.
    relist: Option<Index<K>>,
}

/// A cache of one kind, indexed by owner uid; cheap to clone.
pub(super) struct OwnerCache<K> {
    state: Arc<RwLock<State<K>>>,
    ready: watch::Sender<bool>,
}

impl<K> Clone for OwnerCache<K> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            ready: self.ready.clone(),
        }
    }
}

impl<K: ResourceExt> OwnerCache<K> {
    /// An empty cache, not ready until its first list completes.
    pub(super) fn new() -> Self {
        let state = State {
            current: Index::default(),
            relist: None,
        };
        Self {
            state: Arc::new(RwLock::new(state)),
            ready: watch::channel(false).0,
        }
    }

    /// Records one watch event and returns the objects whose owners must be
    /// reconciled because of it (queue them only after this call): the
    /// object of an Apply or Delete; at the end of a re-list, every listed
    /// object and every cached one the list no longer has (deleted while
    /// the watch was down: no Delete event will come for it). Objects of a
    /// re-list in progress are returned only once it is complete, when
    /// they become visible.
    pub(super) fn apply(&self, event: &watcher::Event<K>) -> Vec<Arc<K>>
    where
        K: Clone,
    {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        match event {
            watcher::Event::Apply(object) => {
                let object = Arc::new(object.clone());
                let key = Index::key(object.as_ref());
                let cached = state.current.objects.get(&key).map(|o| version(o.as_ref()));
                // An answer written through may be newer than a watch event
                // still in flight; never go back to the older version.
                if cached.is_none_or(|cached| version(object.as_ref()) >= cached) {
                    state.current.insert(object.clone());
                }
                vec![object]
            }
            watcher::Event::Delete(object) => {
                state.current.forget(Index::key(object), version(object));
                vec![Arc::new(object.clone())]
            }
            watcher::Event::Init => {
                state.relist = Some(Index::default());
                Vec::new()
            }
            watcher::Event::InitApply(object) => {
                if let Some(relist) = state.relist.as_mut() {
                    relist.insert(Arc::new(object.clone()));
                }
                Vec::new()
            }
            watcher::Event::InitDone => {
                self.ready.send_replace(true);
                let Some(mut listed) = state.relist.take() else {
                    return Vec::new();
                };
                let old = std::mem::take(&mut state.current);
                let mut touched: Vec<Arc<K>> = listed.objects.values().cloned().collect();
                // Deletions seen before stay known; objects the list lacks
                // were deleted at an unknown version: refuse every answer
                // for them until the watch brings the name back.
                for (key, deleted_at) in old.deleted {
                    if !listed.objects.contains_key(&key) {
                        listed.deleted.insert(key, deleted_at);
                    }
                }
                for (key, object) in old.objects {
                    if !listed.objects.contains_key(&key) {
                        listed.deleted.insert(key, u64::MAX);
                        touched.push(object);
                    }
                }
                state.current = listed;
                touched
            }
        }
    }

    /// Records an object the API server returned for the controller's own
    /// create or update, unless the watch already brought a newer version
    /// or its deletion.
    pub(super) fn write_through(&self, object: K) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let key = Index::key(&object);
        let newest_seen = match state.current.objects.get(&key) {
            Some(cached) => Some(version(cached.as_ref())),
            None => state.current.deleted.get(&key).copied(),
        };
        if newest_seen.is_none_or(|seen| version(&object) > seen) {
            state.current.insert(Arc::new(object));
        }
    }

    /// Records the API server's answer to the controller's own delete: a
    /// terminating object (grace period, finalizers) updates the cached
    /// one; an object without a deletion timestamp was removed at once.
    /// Never goes back to an older version, never adds an object.
    pub(super) fn delete_answered(&self, answer: K) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let key = Index::key(&answer);
        let answered = version(&answer);
        let Some(cached) = state.current.objects.get(&key).map(|o| version(o.as_ref())) else {
            return;
        };
        if answered <= cached {
            return;
        }
        if answer.meta().deletion_timestamp.is_some() {
            state.current.insert(Arc::new(answer));
        } else {
            state.current.forget(key, answered);
        }
    }

    /// The cached objects in `namespace` that name `uid` among their owners.
    pub(super) fn owned_by(&self, namespace: &str, uid: &str) -> Vec<Arc<K>> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        state
            .current
            .by_owner
            .get(uid)
            .into_iter()
            .flat_map(|owned| owned.iter())
            .filter(|((ns, _), _)| ns == namespace)
            .map(|(_, object)| object.clone())
            .collect()
    }

    /// [`OwnerCache::owned_by`], only the objects whose labels match
    /// `selector` (a set's children: owned by it and selected by it).
    pub(super) fn selected(
        &self,
        namespace: &str,
        uid: &str,
        selector: &LabelSelector,
    ) -> Vec<Arc<K>> {
        let mut owned = self.owned_by(namespace, uid);
        owned.retain(|object| {
            selector.matches_with(|key| object.labels().get(key).map(String::as_str))
        });
        owned
    }

    /// Waits until the first list is complete.
    pub(super) async fn ready(&self) {
        let mut ready = self.ready.subscribe();
        // Err only if the sender is gone, which `self` holds.
        let _ = ready.wait_for(|ready| *ready).await;
    }
}

/// An object's resourceVersion as a number (the sandbox's are a global
/// counter); 0 when absent or not a number, so an answer without one never
/// replaces a watched version.
fn version<K: ResourceExt>(object: &K) -> u64 {
    object
        .resource_version()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    fn pod(name: &str, owner: &str, rv: u64) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns", "resourceVersion": rv.to_string(),
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "s", "uid": owner, "controller": true}]}
        }))
        .expect("valid pod")
    }

    fn names(pods: &[Arc<Pod>]) -> Vec<String> {
        pods.iter().map(|p| p.name_any()).collect()
    }

    #[test]
    fn indexes_by_owner_and_follows_applies_and_deletes() {
        let cache = OwnerCache::new();
        cache.apply(&watcher::Event::Apply(pod("a-0", "u1", 1)));
        cache.apply(&watcher::Event::Apply(pod("a-1", "u1", 2)));
        cache.apply(&watcher::Event::Apply(pod("b-0", "u2", 3)));
        assert_eq!(names(&cache.owned_by("ns", "u1")), ["a-0", "a-1"]);
        assert!(cache.owned_by("other", "u1").is_empty());
        cache.apply(&watcher::Event::Delete(pod("a-0", "u1", 4)));
        assert_eq!(names(&cache.owned_by("ns", "u1")), ["a-1"]);
        // An owner change moves the object between index entries.
        cache.apply(&watcher::Event::Apply(pod("a-1", "u2", 5)));
        assert!(cache.owned_by("ns", "u1").is_empty());
        assert_eq!(names(&cache.owned_by("ns", "u2")), ["a-1", "b-0"]);
    }

    #[test]
    fn a_relist_is_swapped_in_only_when_complete() {
        let cache = OwnerCache::new();
        cache.apply(&watcher::Event::Apply(pod("a-0", "u1", 1)));
        cache.apply(&watcher::Event::Init);
        cache.apply(&watcher::Event::InitApply(pod("a-1", "u1", 7)));
        // Mid-list: the previous contents are still served.
        assert_eq!(names(&cache.owned_by("ns", "u1")), ["a-0"]);
        cache.apply(&watcher::Event::InitDone);
        // a-0 was not listed: it is gone.
        assert_eq!(names(&cache.owned_by("ns", "u1")), ["a-1"]);
    }

    #[tokio::test]
    async fn ready_after_the_first_complete_list() {
        let cache: OwnerCache<Pod> = OwnerCache::new();
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(20), cache.ready());
        assert!(waiting.await.is_err(), "ready before any list");
        cache.apply(&watcher::Event::Init);
        cache.apply(&watcher::Event::InitDone);
        cache.ready().await;
    }

    #[test]
    fn write_through_never_replaces_a_newer_watched_version() {
        let cache = OwnerCache::new();
        cache.write_through(pod("a-0", "u1", 5));
        assert_eq!(names(&cache.owned_by("ns", "u1")), ["a-0"]);
        cache.apply(&watcher::Event::Apply(pod("a-0", "u2", 9)));
        // The older answer arrives late: ignored.
        cache.write_through(pod("a-0", "u1", 6));
        assert!(cache.owned_by("ns", "u1").is_empty());
        assert_eq!(names(&cache.owned_by("ns", "u2")), ["a-0"]);
    }

    #[test]
    fn write_through_never_brings_back_a_deleted_object() {
        let cache = OwnerCache::new();
        cache.apply(&watcher::Event::Apply(pod("a-0", "u1", 5)));
        cache.apply(&watcher::Event::Delete(pod("a-0", "u1", 8)));
        // The answer to a create (rv 6) the watch already saw deleted.
        cache.write_through(pod("a-0", "u1", 6));
        assert!(cache.owned_by("ns", "u1").is_empty());
        // A newer create of the same name is recorded.
        cache.write_through(pod("a-0", "u1", 10));
        assert_eq!(names(&cache.owned_by("ns", "u1")), ["a-0"]);
    }

    fn terminating(mut pod: Pod) -> Pod {
        pod.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Default::default()),
        );
        pod
    }

    #[test]
    fn a_delete_answer_updates_or_removes_but_never_adds() {
        let cache = OwnerCache::new();
        // Not cached (gone already): nothing is added.
        cache.delete_answered(terminating(pod("b-0", "u1", 9)));
        assert!(cache.owned_by("ns", "u1").is_empty());
        // Graceful: the cached pod becomes terminating.
        cache.apply(&watcher::Event::Apply(pod("a-0", "u1", 5)));
        cache.delete_answered(terminating(pod("a-0", "u1", 7)));
        let cached = cache.owned_by("ns", "u1");
        assert!(cached[0].metadata.deletion_timestamp.is_some());
        // The older watch event still in flight does not undo it.
        cache.apply(&watcher::Event::Apply(pod("a-0", "u1", 6)));
        let cached = cache.owned_by("ns", "u1");
        assert!(cached[0].metadata.deletion_timestamp.is_some());
        // Removed at once (no deletion timestamp): gone, and a late
        // create answer cannot bring it back.
        cache.apply(&watcher::Event::Apply(pod("c-0", "u2", 10)));
        cache.delete_answered(pod("c-0", "u2", 11));
        assert!(cache.owned_by("ns", "u2").is_empty());
        cache.write_through(pod("c-0", "u2", 10));
        assert!(cache.owned_by("ns", "u2").is_empty());
    }

    #[test]
    fn the_end_of_a_relist_queues_listed_and_vanished_objects_and_refuses_their_ghosts() {
        let cache = OwnerCache::new();
        cache.apply(&watcher::Event::Apply(pod("a-0", "u1", 1)));
        cache.apply(&watcher::Event::Apply(pod("a-1", "u1", 2)));
        assert!(cache.apply(&watcher::Event::Init).is_empty());
        assert!(
            cache
                .apply(&watcher::Event::InitApply(pod("a-0", "u1", 1)))
                .is_empty(),
            "not visible before the list is complete"
        );
        // a-1 was deleted while the watch was down: no Delete event.
        let mut touched = names(&cache.apply(&watcher::Event::InitDone));
        touched.sort();
        assert_eq!(touched, ["a-0", "a-1"], "both owners are queued");
        assert_eq!(names(&cache.owned_by("ns", "u1")), ["a-0"]);
        // A late answer for the vanished pod is refused...
        cache.write_through(pod("a-1", "u1", 3));
        assert_eq!(names(&cache.owned_by("ns", "u1")), ["a-0"]);
        // ...until the watch brings the name back.
        cache.apply(&watcher::Event::Apply(pod("a-1", "u1", 9)));
        assert_eq!(names(&cache.owned_by("ns", "u1")), ["a-0", "a-1"]);
    }
}
