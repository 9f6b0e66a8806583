//! Deletion: preconditions, finalizers, pod grace periods, garbage
//! collection of dependents (ownerReferences) and namespace contents.
//!
//! Pod contract: deleting a pod that is bound to a node (`spec.nodeName`
//! set) and not finished (phase not Succeeded/Failed) with a grace period
//! above 0 only marks it terminating (`deletionTimestamp` = now + grace,
//! `deletionGracePeriodSeconds` = grace). The kubelet stand-in stops the
//! pod's process and removes it with a delete with `gracePeriodSeconds=0`;
//! if nobody does, the server removes it when the grace period ends. Unbound
//! or finished pods, and grace 0, are deleted at once.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{EventType, Key, Obj, Store, res};
use crate::meta::{self, metadata_mut};
use crate::registry::ResourceDef;
use crate::status::{ApiError, ApiResult};

/// `meta/v1` DeleteOptions (body or query parameters).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteOptions {
    /// Grace period; pods only.
    pub grace_period_seconds: Option<i64>,
    /// uid / resourceVersion that must match.
    pub preconditions: Option<Preconditions>,
    /// `Orphan`, `Background` or `Foreground` (treated as Background).
    pub propagation_policy: Option<String>,
    /// `["All"]` for a dry run.
    #[serde(default)]
    pub dry_run: Vec<String>,
}

/// Preconditions of a delete.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Preconditions {
    /// Required uid.
    pub uid: Option<String>,
    /// Required resourceVersion.
    pub resource_version: Option<String>,
}

impl DeleteOptions {
    fn orphan(&self) -> bool {
        self.propagation_policy.as_deref() == Some("Orphan")
    }
}

impl Store {
    /// Deletes an object (or marks it terminating); returns its last state.
    pub fn delete(
        self: &Arc<Self>,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> ApiResult<Obj> {
        let key = super::key_of(def, ns, name);
        let mut table = self.write(def)?;
        let cur = super::current(&table, def, &key)?;
        check_preconditions(def, name, &cur.value, opts)?;
        if !opts.dry_run.is_empty() {
            return Ok(cur);
        }
        let grace = pod_grace(def, &cur.value, opts);
        let finalizers = meta::finalizers(&cur.value);
        let current_grace = cur
            .value
            .get("metadata")
            .and_then(|m| m.get("deletionGracePeriodSeconds"))
            .and_then(Value::as_i64);
        if finalizers.is_empty() && grace == 0 {
            let removed = self.commit(&mut table, key, (*cur.value).clone(), EventType::Deleted);
            drop(table);
            self.after_removal(def, &removed, opts.orphan());
            return Ok(removed);
        }
        if meta::is_terminating(&cur.value) && current_grace.is_none_or(|g| g <= grace) {
            return Ok(cur);
        }
        let mut next = (*cur.value).clone();
        let m = metadata_mut(&mut next);
        m.insert("deletionTimestamp".into(), json!(meta::now_plus(grace)));
        m.insert("deletionGracePeriodSeconds".into(), json!(grace));
        let uid = meta::uid(&next).unwrap_or_default().to_string();
        let marked = self.commit(&mut table, key.clone(), next, EventType::Modified);
        drop(table);
        if grace > 0 {
            self.schedule_reap(def, key, uid, grace);
        }
        Ok(marked)
    }

    /// Deletes every object matching `filter`; returns their last states.
    pub fn delete_collection(
        self: &Arc<Self>,
        def: &ResourceDef,
        filter: &super::Filter,
        opts: &DeleteOptions,
    ) -> ApiResult<Vec<Obj>> {
        let page = self.list(def, filter, None, None)?;
        let mut out = Vec::new();
        for obj in page.items {
            let ns = meta::meta_str(&obj.value, "namespace").unwrap_or_default();
            let name = meta::name(&obj.value).unwrap_or_default();
            match self.delete(def, ns, name, opts) {
                Ok(o) => out.push(o),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Removes a terminating pod when its grace period ends (if the kubelet
    /// has not already), or drops its grace to 0 while finalizers remain.
    fn schedule_reap(self: &Arc<Self>, def: &ResourceDef, key: Key, uid: String, grace: i64) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let store = Arc::clone(self);
        let def = def.clone();
        handle.spawn(async move {
            tokio::time::sleep(Duration::from_secs(grace.unsigned_abs())).await;
            let done = store.reap(&def, key.clone(), &uid);
            tracing::debug!(pod = %key.1, ?done, "grace period of terminating pod ended");
        });
    }

    /// The end of a pod's grace period: remove it, or set its grace to 0
    /// while finalizers remain.
    fn reap(self: &Arc<Self>, def: &ResourceDef, key: Key, uid: &str) -> ApiResult<()> {
        let mut table = self.write(def)?;
        let Some(cur) = table.objects.get(&key).cloned() else {
            return Ok(());
        };
        if meta::uid(&cur.value) != Some(uid) || !meta::is_terminating(&cur.value) {
            return Ok(());
        }
        let mut next = (*cur.value).clone();
        if meta::finalizers(&next).is_empty() {
            let removed = self.commit(&mut table, key, next, EventType::Deleted);
            drop(table);
            self.after_removal(def, &removed, false);
        } else {
            metadata_mut(&mut next).insert("deletionGracePeriodSeconds".into(), json!(0));
            self.commit(&mut table, key, next, EventType::Modified);
        }
        Ok(())
    }

    /// After an object is gone: delete a namespace's contents, and collect
    /// the garbage (dependents whose ownerReferences point at it).
    pub(super) fn after_removal(self: &Arc<Self>, def: &ResourceDef, removed: &Obj, orphan: bool) {
        let Some(uid) = meta::uid(&removed.value).map(str::to_string) else {
            return;
        };
        let opts = DeleteOptions::default();
        if def.group.is_empty() && def.plural == "namespaces" {
            let ns = meta::name(&removed.value).unwrap_or_default().to_string();
            for (dep_def, key) in self.scan(Some(&ns), |_| true) {
                let _ = self.delete(&dep_def, &key.0, &key.1, &opts);
            }
            return;
        }
        let ns = meta::meta_str(&removed.value, "namespace").map(str::to_string);
        let scope = if def.namespaced { ns.as_deref() } else { None };
        for (dep_def, key) in self.dependents(scope, &uid) {
            let result = self.release_dependent(&dep_def, &key, &uid, orphan);
            tracing::debug!(dependent = %key.1, owner = %uid, ok = result.is_ok(), "garbage collection");
        }
    }

    /// Deletes a dependent whose last owner is gone, or removes the
    /// reference to the gone owner (other owners remain, or orphaning).
    fn release_dependent(
        self: &Arc<Self>,
        def: &ResourceDef,
        key: &Key,
        owner_uid: &str,
        orphan: bool,
    ) -> ApiResult<Obj> {
        let dep = self.get(def, &key.0, &key.1)?;
        let others = meta::owner_uids(&dep.value)
            .iter()
            .filter(|u| *u != owner_uid)
            .count();
        if others == 0 && !orphan {
            return self.delete(def, &key.0, &key.1, &DeleteOptions::default());
        }
        self.replace(
            def,
            &key.0,
            &key.1,
            super::Subresource::Main,
            &Default::default(),
            |cur| {
                let mut next = cur.clone();
                let m = metadata_mut(&mut next);
                if let Some(Value::Array(refs)) = m.get_mut("ownerReferences") {
                    refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid));
                }
                m.remove("resourceVersion");
                Ok(next)
            },
        )
    }
}

fn check_preconditions(
    def: &ResourceDef,
    name: &str,
    obj: &Value,
    opts: &DeleteOptions,
) -> ApiResult<()> {
    let Some(pre) = &opts.preconditions else {
        return Ok(());
    };
    if let Some(uid) = &pre.uid
        && Some(uid.as_str()) != meta::uid(obj)
    {
        let why = format!(
            "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
            meta::uid(obj).unwrap_or_default()
        );
        return Err(ApiError::precondition(res(def), name, why));
    }
    if let Some(rv) = &pre.resource_version
        && Some(rv.as_str()) != meta::resource_version(obj)
    {
        let why = format!(
            "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
            meta::resource_version(obj).unwrap_or_default()
        );
        return Err(ApiError::precondition(res(def), name, why));
    }
    Ok(())
}

/// The grace period a delete gets: pods bound to a node and still running
/// use the option, else `terminationGracePeriodSeconds`, else 30; anything
/// else 0.
fn pod_grace(def: &ResourceDef, obj: &Value, opts: &DeleteOptions) -> i64 {
    if !(def.group.is_empty() && def.plural == "pods") {
        return 0;
    }
    let bound = obj
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let phase = obj
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !bound || phase == "Succeeded" || phase == "Failed" {
        return 0;
    }
    opts.grace_period_seconds
        .or_else(|| {
            obj.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(30)
        .max(0)
}
