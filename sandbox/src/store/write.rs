//! Create and update (the base of patch and apply): identity fields,
//! generation, status subresource rules, no-op detection, defaulting.

use std::sync::Arc;

use rand::Rng as _;
use serde_json::{Value, json};

use super::{EventType, Obj, Store, res};
use crate::meta::{self, metadata_mut};
use crate::registry::ResourceDef;
use crate::status::{ApiError, ApiResult};

/// Which part of an object an update may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    /// The main resource: everything but `status` (when the resource has a
    /// status subresource) and the server-owned metadata.
    Main,
    /// `/status`: only `status`.
    Status,
}

/// Options of a write.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `dryRun=All`: compute the result, store nothing.
    pub dry_run: bool,
    /// Keep `status` given at creation (seeding through
    /// [`Sandbox::apply`](crate::Sandbox::apply)); the HTTP API drops it.
    pub keep_status: bool,
}

/// Server-owned metadata fields an update cannot change.
const SERVER_META: &[&str] = &[
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "resourceVersion",
    "namespace",
    "name",
];

impl Store {
    /// Creates an object in namespace `ns` ("" for cluster-scoped).
    pub fn create(
        &self,
        def: &ResourceDef,
        ns: &str,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Obj> {
        let seq = self.next_seq();
        set_type(def, &mut obj);
        let meta = metadata_mut(&mut obj);
        let mut name = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if name.is_empty() {
            let prefix = meta
                .get("generateName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if prefix.is_empty() {
                return Err(ApiError::invalid(
                    res(def),
                    "",
                    "metadata.name: Required value: name or generateName is required",
                ));
            }
            name = format!("{prefix}{}", random_suffix());
            meta.insert("name".into(), json!(name));
        }
        if def.namespaced {
            if let Some(given) = meta.get("namespace").and_then(Value::as_str)
                && !given.is_empty()
                && given != ns
            {
                return Err(ApiError::bad_request(format!(
                    "the namespace of the provided object ({given}) does not match the namespace sent on the request ({ns})"
                )));
            }
            meta.insert("namespace".into(), json!(ns));
        } else {
            meta.remove("namespace");
        }
        meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        meta.insert("creationTimestamp".into(), json!(meta::now()));
        meta.insert("generation".into(), json!(1));
        for field in [
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "resourceVersion",
        ] {
            meta.remove(field);
        }
        if def.status
            && !opts.keep_status
            && let Some(map) = obj.as_object_mut()
        {
            map.remove("status");
        }
        crate::defaults::apply(def, &mut obj, true, seq);
        let key = (
            if def.namespaced {
                ns.to_string()
            } else {
                String::new()
            },
            name.clone(),
        );
        let mut table = self.write(def)?;
        if table.objects.contains_key(&key) {
            return Err(ApiError::already_exists(res(def), &name));
        }
        if opts.dry_run {
            return Ok(Obj::new(obj));
        }
        let created = self.commit(&mut table, key, obj, EventType::Added);
        drop(table);
        if def.namespaced {
            self.ensure_namespace(ns);
        }
        Ok(created)
    }

    /// Read-modify-write of one object: `f` gets the current object and
    /// returns the desired one. A `metadata.resourceVersion` in the result
    /// that differs from the stored one is a 409 Conflict; none means
    /// unconditional. Unchanged objects are not rewritten (no new RV, no
    /// event), like the real server.
    pub fn replace(
        self: &Arc<Self>,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        sub: Subresource,
        opts: &WriteOptions,
        f: impl FnOnce(&Value) -> ApiResult<Value>,
    ) -> ApiResult<Obj> {
        let key = super::key_of(def, ns, name);
        let mut table = self.write(def)?;
        let cur = super::current(&table, def, &key)?;
        let desired = f(&cur.value)?;
        if let Some(rv) = meta::resource_version(&desired)
            && Some(rv) != meta::resource_version(&cur.value)
        {
            return Err(ApiError::stale(res(def), name));
        }
        if let Some(uid) = meta::uid(&desired)
            && Some(uid) != meta::uid(&cur.value)
        {
            let why = format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                meta::uid(&cur.value).unwrap_or_default()
            );
            return Err(ApiError::precondition(res(def), name, why));
        }
        if let Some(given) = meta::name(&desired)
            && given != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({given}) does not match the name on the URL ({name})"
            )));
        }
        let next = match sub {
            Subresource::Main => self.next_main(def, &cur.value, desired),
            Subresource::Status => next_status(&cur.value, desired),
        };
        if next == *cur.value {
            return Ok(cur);
        }
        if opts.dry_run {
            return Ok(Obj::new(next));
        }
        if meta::is_terminating(&next) && meta::finalizers(&next).is_empty() && grace_elapsed(&next)
        {
            let removed = self.commit(&mut table, key, next, EventType::Deleted);
            drop(table);
            self.after_removal(def, &removed, false);
            return Ok(removed);
        }
        Ok(self.commit(&mut table, key, next, EventType::Modified))
    }

    /// The next state for an update of the main resource.
    fn next_main(&self, def: &ResourceDef, cur: &Value, mut desired: Value) -> Value {
        set_type(def, &mut desired);
        let old_meta = cur.get("metadata").cloned().unwrap_or_else(|| json!({}));
        let meta = metadata_mut(&mut desired);
        for field in SERVER_META {
            match old_meta.get(*field) {
                Some(v) => meta.insert((*field).to_string(), v.clone()),
                None => meta.remove(*field),
            };
        }
        if def.status
            && let Some(map) = desired.as_object_mut()
        {
            match cur.get("status") {
                Some(status) => map.insert("status".into(), status.clone()),
                None => map.remove("status"),
            };
        }
        crate::defaults::apply(def, &mut desired, false, self.next_seq());
        if meta::spec_part(&desired) != meta::spec_part(cur) {
            let generation = old_meta
                .get("generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            metadata_mut(&mut desired).insert("generation".into(), json!(generation + 1));
        }
        desired
    }

    /// Creates the Namespace object for `ns` if it does not exist
    /// (namespaces exist implicitly in the sandbox).
    pub(crate) fn ensure_namespace(&self, ns: &str) {
        let Some(def) = self.registry.by_kind("v1", "Namespace").cloned() else {
            return;
        };
        if ns.is_empty() || self.get(&def, "", ns).is_ok() {
            return;
        }
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        // AlreadyExists from a concurrent creation is fine.
        let _ = self.create(&def, "", obj, &WriteOptions::default());
    }
}

/// The next state for a `/status` update: the stored object with the new
/// status; everything else is ignored, like the real server.
fn next_status(cur: &Value, desired: Value) -> Value {
    let mut next = cur.clone();
    if let Some(map) = next.as_object_mut() {
        match desired.get("status") {
            Some(status) => map.insert("status".into(), status.clone()),
            None => map.remove("status"),
        };
    }
    next
}

/// Whether a terminating object may be removed now: pods wait for their
/// grace period (`deletionGracePeriodSeconds` reaching 0).
fn grace_elapsed(obj: &Value) -> bool {
    obj.get("metadata")
        .and_then(|m| m.get("deletionGracePeriodSeconds"))
        .and_then(Value::as_i64)
        .is_none_or(|g| g <= 0)
}

/// Sets `apiVersion` and `kind` from the resource.
fn set_type(def: &ResourceDef, obj: &mut Value) {
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), json!(def.api_version()));
        map.insert("kind".into(), json!(def.kind));
    }
}

/// Five lowercase alphanumerics, as for `generateName`.
fn random_suffix() -> String {
    const CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}
