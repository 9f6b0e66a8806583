//! The in-memory object store: one table per resource, a global
//! resourceVersion counter, a bounded event history per table and a broadcast
//! channel per table for watches, plus one per object watched by name
//! (`fieldSelector=metadata.name=x`, what a client's wait for one object
//! uses): an event wakes the table's watchers and that object's, not every
//! name-scoped watch of the resource, as the real API server's watch cache
//! dispatches by an index of its watchers.
//!
//! **Invariant**: resourceVersions are allocated and events are broadcast
//! while holding the table's write lock, so within a table events arrive at
//! every watcher in resourceVersion order, and a watcher that subscribes
//! under the lock misses nothing.

mod delete;
mod index;
mod write;

pub use delete::DeleteOptions;
pub use write::{Subresource, WriteOptions};

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::registry::{Registry, ResourceDef};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::{ApiError, ApiResult, Res};
use index::{Candidates, Index};

/// A stored object: the value and its serialized JSON (served without
/// re-serializing).
#[derive(Debug, Clone)]
pub struct Obj {
    /// The object.
    pub value: Arc<Value>,
    /// `value` serialized as JSON.
    pub json: Bytes,
}

impl Obj {
    fn new(value: Value) -> Self {
        let json = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        Self {
            value: Arc::new(value),
            json,
        }
    }
}

/// Type of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Object created.
    Added,
    /// Object changed.
    Modified,
    /// Object removed.
    Deleted,
}

impl EventType {
    /// The wire name: `ADDED`, `MODIFIED`, `DELETED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change in a table.
#[derive(Debug, Clone)]
pub struct Event {
    /// What happened.
    pub kind: EventType,
    /// resourceVersion of the change.
    pub rv: u64,
    /// The object after the change (for Deleted: the last state, new RV).
    pub obj: Obj,
    /// The object before the change (Modified and Deleted).
    pub prev: Option<Obj>,
}

/// Key of an object in its table: (namespace, name); namespace is "" for
/// cluster-scoped resources.
pub type Key = (String, String);

/// The objects of one resource and their recent history.
#[derive(Debug)]
struct Table {
    objects: BTreeMap<Key, Obj>,
    /// Objects by label and by owner, for selector lists and GC.
    index: Index,
    history: VecDeque<Arc<Event>>,
    /// RV of the newest event dropped from `history` (0 = none dropped).
    compacted: u64,
    /// Watchers of the whole table (or a label/namespace slice of it).
    tx: broadcast::Sender<Arc<Event>>,
    /// Watchers of one object by name. Subscribed to under the table's
    /// read lock (hence the Mutex), sent to under its write lock.
    named: Mutex<HashMap<Key, broadcast::Sender<Arc<Event>>>>,
}

/// Capacity of an object's own watch channel: a watcher this many events
/// behind on one object is ended (the client resumes from its last
/// resourceVersion, served from the table's history), as for the table's
/// channel. Smaller than the table's: a broadcast channel allocates its
/// slots up front, and there is one per watched object.
const NAMED_CAPACITY: usize = 256;

/// Channels of names no longer watched are dropped when their object
/// changes, and all at once whenever the map reaches a multiple of this.
const NAMED_SWEEP: usize = 1024;

impl Table {
    /// A receiver of the events of the object `key`.
    fn subscribe_named(&self, key: Key) -> broadcast::Receiver<Arc<Event>> {
        let mut named = self.named.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = named.get(&key) {
            return tx.subscribe();
        }
        if named.len() % NAMED_SWEEP == NAMED_SWEEP - 1 {
            named.retain(|_, tx| tx.receiver_count() > 0);
        }
        let (tx, rx) = broadcast::channel(NAMED_CAPACITY);
        named.insert(key, tx);
        rx
    }

    /// Sends `event` to the watchers of the table and of its object `key`.
    fn broadcast(&mut self, key: &Key, event: Arc<Event>) {
        let named = self.named.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = named.get(key) {
            if tx.receiver_count() == 0 {
                named.remove(key);
            } else {
                let _ = tx.send(event.clone());
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(event);
    }
}

/// A page of a list.
#[derive(Debug)]
pub struct ListPage {
    /// Matching objects in key order.
    pub items: Vec<Obj>,
    /// resourceVersion of the list.
    pub rv: u64,
    /// Token for the next page, when `limit` cut the list.
    pub continue_token: Option<String>,
    /// How many more objects match after this page.
    pub remaining: usize,
}

/// Where a watch starts.
#[derive(Debug)]
pub struct WatchStart {
    /// Events to send first (synthetic ADDED, or history after the RV).
    pub initial: Vec<Arc<Event>>,
    /// Live events.
    pub rx: broadcast::Receiver<Arc<Event>>,
    /// The RV the watch is at once `initial` is sent.
    pub rv: u64,
}

/// A filter for lists and watches.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Only this namespace (None = all).
    pub namespace: Option<String>,
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
}

impl Filter {
    /// Whether an object passes the filter.
    pub fn matches(&self, obj: &Value) -> bool {
        if let Some(ns) = &self.namespace
            && crate::meta::meta_str(obj, "namespace").unwrap_or_default() != ns
        {
            return false;
        }
        self.labels
            .matches(obj.get("metadata").and_then(|m| m.get("labels")))
            && self.fields.matches(obj)
    }
}

/// The store shared by the HTTP server and the [`Sandbox`](crate::Sandbox).
#[derive(Debug)]
pub struct Store {
    registry: Registry,
    tables: HashMap<(String, String, String), RwLock<Table>>,
    rv: AtomicU64,
    history_len: usize,
    seq: AtomicU64,
}

fn table_key(def: &ResourceDef) -> (String, String, String) {
    (def.group.clone(), def.version.clone(), def.plural.clone())
}

/// The table key of an object: namespace ("" for cluster-scoped) and name.
fn key_of(def: &ResourceDef, ns: &str, name: &str) -> Key {
    let ns = if def.namespaced { ns } else { "" };
    (ns.to_string(), name.to_string())
}

/// The stored object under `key`, or 404.
fn current(table: &Table, def: &ResourceDef, key: &Key) -> ApiResult<Obj> {
    table
        .objects
        .get(key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(res(def), &key.1))
}

/// Identity of a resource for error messages.
pub fn res(def: &ResourceDef) -> Res<'_> {
    Res {
        plural: &def.plural,
        group: &def.group,
    }
}

impl Store {
    /// An empty store for every resource of `registry`, keeping up to
    /// `history_len` events per resource for watches from an old RV.
    pub fn new(registry: Registry, history_len: usize) -> Self {
        let tables = registry
            .all()
            .iter()
            .map(|def| {
                let (tx, _) = broadcast::channel(history_len.clamp(64, 1 << 16));
                let table = Table {
                    objects: BTreeMap::new(),
                    index: Index::default(),
                    history: VecDeque::new(),
                    compacted: 0,
                    tx,
                    named: Mutex::new(HashMap::new()),
                };
                (table_key(def), RwLock::new(table))
            })
            .collect();
        Self {
            registry,
            tables,
            rv: AtomicU64::new(1),
            history_len: history_len.max(1),
            seq: AtomicU64::new(0),
        }
    }

    /// The resource table.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The newest resourceVersion handed out.
    pub fn current_rv(&self) -> u64 {
        self.rv.load(Ordering::SeqCst)
    }

    fn table(&self, def: &ResourceDef) -> ApiResult<&RwLock<Table>> {
        self.tables
            .get(&table_key(def))
            .ok_or_else(|| ApiError::internal(format!("no table for resource {}", def.plural)))
    }

    fn read(&self, def: &ResourceDef) -> ApiResult<RwLockReadGuard<'_, Table>> {
        Ok(self
            .table(def)?
            .read()
            .unwrap_or_else(PoisonError::into_inner))
    }

    fn write(&self, def: &ResourceDef) -> ApiResult<RwLockWriteGuard<'_, Table>> {
        Ok(self
            .table(def)?
            .write()
            .unwrap_or_else(PoisonError::into_inner))
    }

    /// One object.
    pub fn get(&self, def: &ResourceDef, ns: &str, name: &str) -> ApiResult<Obj> {
        current(&*self.read(def)?, def, &key_of(def, ns, name))
    }

    /// A page of matching objects, starting after `continue_token`.
    pub fn list(
        &self,
        def: &ResourceDef,
        filter: &Filter,
        limit: Option<usize>,
        continue_token: Option<&str>,
    ) -> ApiResult<ListPage> {
        let after = continue_token
            .filter(|t| !t.is_empty())
            .map(decode_continue)
            .transpose()?;
        let table = self.read(def)?;
        let rv = self.current_rv();
        let mut items = Vec::new();
        let mut remaining = 0;
        let mut last = None;
        for (key, obj) in matching(&table, def, filter, after) {
            if limit.is_some_and(|l| items.len() >= l) {
                remaining += 1;
                continue;
            }
            last = Some(key.clone());
            items.push(obj.clone());
        }
        let continue_token = if remaining > 0 {
            last.map(|k| encode_continue(&k, rv))
        } else {
            None
        };
        Ok(ListPage {
            items,
            rv,
            continue_token,
            remaining,
        })
    }

    /// Starts a watch: `from_rv` None (or 0) sends the current objects as
    /// ADDED first; otherwise history after `from_rv`, or 410 Gone when that
    /// history was dropped.
    pub fn watch(
        &self,
        def: &ResourceDef,
        filter: &Filter,
        from_rv: Option<u64>,
    ) -> ApiResult<WatchStart> {
        let table = self.read(def)?;
        let rv = self.current_rv();
        let rx = match named_key(def, filter) {
            Some(key) => table.subscribe_named(key),
            None => table.tx.subscribe(),
        };
        let initial = match from_rv {
            None | Some(0) => matching(&table, def, filter, None)
                .map(|(_, o)| {
                    let obj_rv = crate::meta::resource_version(&o.value)
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(rv);
                    Arc::new(Event {
                        kind: EventType::Added,
                        rv: obj_rv,
                        obj: o.clone(),
                        prev: None,
                    })
                })
                .collect(),
            Some(from) if from < table.compacted => {
                return Err(ApiError::gone(from, table.compacted));
            }
            // History is in resourceVersion order (appended under the lock).
            Some(from) => {
                let first = table.history.partition_point(|e| e.rv <= from);
                table.history.range(first..).cloned().collect()
            }
        };
        Ok(WatchStart { initial, rx, rv })
    }

    /// The RV up to which every event of `def`'s table has been broadcast
    /// (a safe bookmark position once a watcher drained its receiver).
    pub fn watch_position(&self, def: &ResourceDef) -> u64 {
        match self.read(def) {
            Ok(_guard) => self.current_rv(),
            Err(_) => 0,
        }
    }

    /// Drops the kept history of every table, so a watch from any earlier
    /// resourceVersion gets 410 Gone (what etcd compaction does).
    pub fn compact(&self) {
        for table in self.tables.values() {
            let mut t = table.write().unwrap_or_else(PoisonError::into_inner);
            t.history.clear();
            t.compacted = self.current_rv();
        }
    }

    /// Allocates the next RV, stamps it, stores or removes the object,
    /// records and broadcasts the event. Must run under the table lock.
    fn commit(&self, table: &mut Table, key: Key, mut value: Value, kind: EventType) -> Obj {
        let rv = self.rv.fetch_add(1, Ordering::SeqCst) + 1;
        crate::meta::metadata_mut(&mut value)
            .insert("resourceVersion".into(), json!(rv.to_string()));
        let obj = Obj::new(value);
        let prev = match kind {
            EventType::Deleted => table.objects.remove(&key),
            _ => table.objects.insert(key.clone(), obj.clone()),
        };
        if let Some(prev) = &prev {
            table.index.remove(&key, &prev.value);
        }
        if kind != EventType::Deleted {
            table.index.insert(&key, &obj.value);
        }
        let event = Arc::new(Event {
            kind,
            rv,
            obj: obj.clone(),
            prev,
        });
        table.history.push_back(event.clone());
        while table.history.len() > self.history_len {
            if let Some(old) = table.history.pop_front() {
                table.compacted = old.rv;
            }
        }
        table.broadcast(&key, event);
        obj
    }

    /// A process-wide sequence number (Service IPs, pod IPs, generateName).
    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Keys of the objects whose ownerReferences name `uid`, in `ns` (all
    /// namespaces when None) across every table, for garbage collection.
    fn dependents(&self, ns: Option<&str>, uid: &str) -> Vec<(Arc<ResourceDef>, Key)> {
        let mut out = Vec::new();
        for def in self.registry.all() {
            if ns.is_some() && !def.namespaced {
                continue;
            }
            let Ok(table) = self.read(def) else { continue };
            out.extend(
                table
                    .index
                    .owned_by(uid)
                    .filter(|key| ns.is_none_or(|n| key.0 == n))
                    .map(|key| (def.clone(), key.clone())),
            );
        }
        out
    }

    /// Keys of objects in `ns` (all namespaces when None) across every
    /// table, for namespace deletion.
    fn scan(
        &self,
        ns: Option<&str>,
        mut pick: impl FnMut(&Value) -> bool,
    ) -> Vec<(Arc<ResourceDef>, Key)> {
        let mut out = Vec::new();
        for def in self.registry.all() {
            if ns.is_some() && !def.namespaced {
                continue;
            }
            let Ok(table) = self.read(def) else { continue };
            for (key, obj) in &table.objects {
                if ns.is_some_and(|n| key.0 != n) {
                    continue;
                }
                if pick(&obj.value) {
                    out.push((def.clone(), key.clone()));
                }
            }
        }
        out
    }
}

/// The key of the one object `filter` can match, when it names it
/// (`metadata.name=x`, and the namespace for a namespaced resource).
fn named_key(def: &ResourceDef, filter: &Filter) -> Option<Key> {
    let name = filter.fields.name()?;
    let ns = match (&filter.namespace, def.namespaced) {
        (Some(ns), true) => ns.clone(),
        (None, true) => return None,
        (_, false) => String::new(),
    };
    Some((ns, name.to_string()))
}

/// The objects of `table` that pass `filter`, in key order, after `after`.
/// Visits only the filter's namespace, only the objects carrying one of
/// its equality labels (see [`index`]), and one object for a
/// `metadata.name=x` field selector.
fn matching<'a>(
    table: &'a Table,
    def: &ResourceDef,
    filter: &'a Filter,
    after: Option<Key>,
) -> Box<dyn Iterator<Item = (&'a Key, &'a Obj)> + 'a> {
    let in_ns = def.namespaced && filter.namespace.is_some();
    let ns = filter.namespace.clone().unwrap_or_default();
    if let Some(key) = named_key(def, filter) {
        // O(1) path for `metadata.name=x` (what kube's get-by-watch does).
        let found = table
            .objects
            .get_key_value(&key)
            .filter(|(k, _)| after.as_ref().is_none_or(|a| *k > a));
        return Box::new(found.into_iter().filter(|(_, o)| filter.matches(&o.value)));
    }
    let lower = match after {
        Some(key) => Bound::Excluded(key),
        None if in_ns => Bound::Included((ns.clone(), String::new())),
        None => Bound::Unbounded,
    };
    let range = (lower, Bound::Unbounded);
    let candidates: Box<dyn Iterator<Item = (&'a Key, &'a Obj)> + 'a> =
        match table.index.candidates(&filter.labels) {
            Candidates::All => Box::new(table.objects.range(range)),
            Candidates::Keys(keys) => Box::new(
                keys.range(range)
                    .filter_map(|k| table.objects.get_key_value(k)),
            ),
            Candidates::Nothing => Box::new(std::iter::empty()),
        };
    Box::new(
        candidates
            .take_while(move |(key, _)| !in_ns || key.0 == ns)
            .filter(|(_, obj)| filter.matches(&obj.value)),
    )
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    ns: String,
    name: String,
    rv: u64,
}

fn encode_continue(key: &Key, rv: u64) -> String {
    let token = ContinueToken {
        ns: key.0.clone(),
        name: key.1.clone(),
        rv,
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&token).unwrap_or_default())
}

fn decode_continue(token: &str) -> ApiResult<Key> {
    let bad = || {
        ApiError::bad_request(format!(
            "invalid continue token {token:?}: pass the token of the previous page unchanged"
        ))
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let t: ContinueToken = serde_json::from_slice(&raw).map_err(|_| bad())?;
    Ok((t.ns, t.name))
}

#[cfg(test)]
mod tests;
