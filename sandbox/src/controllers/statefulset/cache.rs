//! The controller's view of a set's children (pods, ControllerRevisions):
//! a cache fed by one watch per kind and indexed by owner uid, like the
//! informers and indexers the real StatefulSet controller reads from.
//!
//! A reconcile used to list both kinds from the API server on every pass
//! (two requests, two JSON documents parsed, per pod event). The cache is
//! updated by the same watch stream that triggers the reconcile, *before*
//! the trigger is queued, so a pass started by an event sees that event.
//! Two windows remain, handled as a real controller does:
//!
//! - The controller's own writes (a pod created or deleted, a revision
//!   created) are put into the cache from the API server's answer
//!   ([`OwnerCache::write_through`], client-go's mutation cache), so a pass
//!   right after them does not create or delete the same pod again while
//!   the watch event is still in flight. An answer never replaces a newer
//!   version the watch brought (resourceVersions compared).
//! - A re-list (watch restart) fills a new index and swaps it in when the
//!   list is complete; until then passes read the previous one, never an
//!   empty one. Passes wait for the first complete list
//!   ([`OwnerCache::ready`]).
//!
//! Anything still stale makes a create answer 409 or a delete 404, which
//! the callers treat as "already done"; the next event triggers another pass.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock};

use kube::ResourceExt;
use kube::runtime::watcher;
use tokio::sync::watch;

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

    /// Records one watch event (call before the event triggers anything).
    pub(super) fn apply(&self, event: &watcher::Event<K>)
    where
        K: Clone,
    {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        match event {
            watcher::Event::Apply(object) => state.current.insert(Arc::new(object.clone())),
            watcher::Event::Delete(object) => {
                let key = Index::key(object);
                state.current.remove(&key);
                if state.current.deleted.len() >= MAX_DELETED {
                    state.current.deleted.clear();
                }
                state.current.deleted.insert(key, version(object));
            }
            watcher::Event::Init => state.relist = Some(Index::default()),
            watcher::Event::InitApply(object) => {
                if let Some(relist) = state.relist.as_mut() {
                    relist.insert(Arc::new(object.clone()));
                }
            }
            watcher::Event::InitDone => {
                if let Some(listed) = state.relist.take() {
                    state.current = listed;
                }
                self.ready.send_replace(true);
            }
        }
    }

    /// Records an object the API server returned for the controller's own
    /// write (a create, or a graceful delete's terminating object), unless
    /// the watch already brought a newer version or its deletion. A
    /// terminating object only updates a cached one: it may be gone already.
    pub(super) fn write_through(&self, object: K) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let key = Index::key(&object);
        let answered = version(&object);
        let newest_seen = match state.current.objects.get(&key) {
            Some(cached) => Some(version(cached.as_ref())),
            None if object.meta().deletion_timestamp.is_some() => return,
            None => state.current.deleted.get(&key).copied(),
        };
        if newest_seen.is_none_or(|seen| answered > seen) {
            state.current.insert(Arc::new(object));
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
        // A terminating object (a delete's answer) never adds one.
        let mut terminating = pod("b-0", "u1", 9);
        terminating.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Default::default()),
        );
        cache.write_through(terminating);
        assert!(cache.owned_by("ns", "u1").is_empty());
        // A newer create of the same name is recorded.
        cache.write_through(pod("a-0", "u1", 10));
        assert_eq!(names(&cache.owned_by("ns", "u1")), ["a-0"]);
    }
}
