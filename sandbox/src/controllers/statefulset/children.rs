//! The set's children: PersistentVolumeClaims, pods and ControllerRevisions
//! (reads and writes against the API server).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use serde_json::{Value, json};
use tracing::debug;

use crate::selector::LabelSelector;

use super::cache::OwnerCache;
use super::{Error, SetSpec, revision};

/// Creates the pod's PersistentVolumeClaims from the claim templates (kept
/// when the pod or the set goes, like the default retention policy) and
/// marks them Bound.
pub(super) async fn ensure_claims(
    client: &Client,
    namespace: &str,
    set: &str,
    ordinal: u32,
    spec: &SetSpec,
) -> Result<(), Error> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let selector_labels = spec
        .selector
        .as_ref()
        .and_then(|s| s.match_labels.clone())
        .unwrap_or_default();
    for template in &spec.volume_claim_templates {
        let Some(claim) = template.pointer("/metadata/name").and_then(Value::as_str) else {
            continue;
        };
        let name = revision::claim_name(claim, set, ordinal);
        let mut labels: BTreeMap<String, String> = template
            .pointer("/metadata/labels")
            .and_then(|l| serde_json::from_value(l.clone()).ok())
            .unwrap_or_default();
        labels.extend(selector_labels.clone());
        let object = json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
        });
        let object: PersistentVolumeClaim =
            serde_json::from_value(object).map_err(|source| Error::InvalidSpec {
                kind: "PersistentVolumeClaim".to_owned(),
                namespace: namespace.to_owned(),
                name: name.clone(),
                source,
            })?;
        match api.create(&PostParams::default(), &object).await {
            Ok(_) => {
                let bound = json!({"status": {"phase": "Bound"}});
                if let Err(err) = api
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(bound))
                    .await
                {
                    debug!(claim = %name, error = %err, "could not mark claim Bound");
                }
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(source) => {
                return Err(Error::Api {
                    action: format!("create persistentvolumeclaim {namespace}/{name}"),
                    source,
                });
            }
        }
    }
    Ok(())
}

/// Creates the pod (and records it in `cache`); false if it exists already.
pub(super) async fn create_pod(
    client: &Client,
    cache: &OwnerCache<Pod>,
    namespace: &str,
    pod: Value,
) -> Result<bool, Error> {
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let object: DynamicObject =
        serde_json::from_value(pod).map_err(|source| Error::InvalidSpec {
            kind: "Pod".to_owned(),
            namespace: namespace.to_owned(),
            name: name.clone(),
            source,
        })?;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &ApiResource::erase::<Pod>(&()));
    match api.create(&PostParams::default(), &object).await {
        Ok(created) => {
            write_through(cache, &created);
            Ok(true)
        }
        // Still terminating, or created by a previous pass: the next event retries.
        Err(kube::Error::Api(status)) if status.code == 409 => {
            debug!(pod = %name, "pod exists already");
            Ok(false)
        }
        Err(source) => Err(Error::Api {
            action: format!("create pod {namespace}/{name}"),
            source,
        }),
    }
}

/// Records a typed copy of the API server's answer to the controller's
/// own write (see [`OwnerCache::write_through`]); an answer that does not
/// convert is left to the watch.
fn write_through<K: serde::de::DeserializeOwned + kube::ResourceExt>(
    cache: &OwnerCache<K>,
    answer: &impl serde::Serialize,
) {
    match serde_json::to_value(answer).and_then(serde_json::from_value::<K>) {
        Ok(object) => cache.write_through(object),
        Err(err) => debug!(error = %err, "answer not cached; the watch brings it"),
    }
}

/// Deletes the pod (the API server's answer is recorded in `cache`, see
/// [`OwnerCache::delete_answered`]); false if it was gone already.
pub(super) async fn delete_pod(
    api: &Api<Pod>,
    cache: &OwnerCache<Pod>,
    namespace: &str,
    name: &str,
) -> Result<bool, Error> {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(answer) => {
            if let Some(deleted) = answer.left() {
                cache.delete_answered(deleted);
            }
            Ok(true)
        }
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(source) => Err(Error::Api {
            action: format!("delete pod {namespace}/{name}"),
            source,
        }),
    }
}

/// The set's ControllerRevisions (from the controller's cache).
pub(super) struct Revisions {
    api: Api<ControllerRevision>,
    cache: OwnerCache<ControllerRevision>,
    items: Vec<Arc<ControllerRevision>>,
}

impl Revisions {
    /// The revisions in `namespace` owned by the set `uid` whose labels
    /// match the set's `selector`.
    pub(super) fn load(
        client: &Client,
        cache: &OwnerCache<ControllerRevision>,
        namespace: &str,
        selector: &LabelSelector,
        uid: &str,
    ) -> Self {
        let api: Api<ControllerRevision> = Api::namespaced(client.clone(), namespace);
        let items = cache.selected(namespace, uid, selector);
        Self {
            api,
            cache: cache.clone(),
            items,
        }
    }

    /// Whether the revision `name` exists.
    pub(super) fn has(&self, name: &str) -> bool {
        self.items
            .iter()
            .any(|rev| rev.metadata.name.as_deref() == Some(name))
    }

    pub(super) fn template(&self, name: &str) -> Option<Value> {
        let rev = self
            .items
            .iter()
            .find(|rev| rev.metadata.name.as_deref() == Some(name))?;
        let value = serde_json::to_value(rev.as_ref()).ok()?;
        revision::template_of_revision(&value)
    }

    fn newest_number(&self) -> i64 {
        self.items.iter().map(|rev| rev.revision).max().unwrap_or(0)
    }

    /// Creates the revision, or bumps an older one that became current again.
    pub(super) async fn ensure(
        &self,
        name: &str,
        namespace: &str,
        labels: &serde_json::Map<String, Value>,
        owner: &Value,
        template: &Value,
    ) -> Result<(), Error> {
        let newest = self.newest_number();
        match self
            .items
            .iter()
            .find(|rev| rev.metadata.name.as_deref() == Some(name))
        {
            Some(rev) if rev.revision == newest => Ok(()),
            Some(_) => self
                .api
                .patch(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"revision": newest + 1})),
                )
                .await
                .map(|bumped| self.cache.write_through(bumped))
                .map_err(|source| Error::Api {
                    action: format!("bump controllerrevision {namespace}/{name}"),
                    source,
                }),
            None => {
                let value = revision::controller_revision(
                    name,
                    namespace,
                    labels,
                    owner,
                    template,
                    newest + 1,
                );
                let object: ControllerRevision =
                    serde_json::from_value(value).map_err(|source| Error::InvalidSpec {
                        kind: "ControllerRevision".to_owned(),
                        namespace: namespace.to_owned(),
                        name: name.to_owned(),
                        source,
                    })?;
                match self.api.create(&PostParams::default(), &object).await {
                    Ok(created) => {
                        self.cache.write_through(created);
                        Ok(())
                    }
                    Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
                    Err(source) => Err(Error::Api {
                        action: format!("create controllerrevision {namespace}/{name}"),
                        source,
                    }),
                }
            }
        }
    }

    /// Deletes the oldest unused revisions beyond `limit`.
    pub(super) async fn prune(&self, in_use: &[&str], limit: usize) {
        let mut unused: Vec<&Arc<ControllerRevision>> = self
            .items
            .iter()
            .filter(|rev| !in_use.contains(&rev.metadata.name.as_deref().unwrap_or_default()))
            .collect();
        if unused.len() <= limit {
            return;
        }
        unused.sort_by_key(|rev| rev.revision);
        for rev in &unused[..unused.len() - limit] {
            let Some(name) = rev.metadata.name.as_deref() else {
                continue;
            };
            if let Err(err) = self.api.delete(name, &DeleteParams::default()).await {
                debug!(revision = name, error = %err, "could not prune controllerrevision");
            }
        }
    }
}
