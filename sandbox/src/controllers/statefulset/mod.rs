//! StatefulSet (`apps/v1`) and KubeDB PetSet (`apps.k8s.appscode.com/v1`)
//! controller. Both kinds share the spec shape, so one controller serves
//! either, parameterised by [`SetKind`].
//!
//! A reconcile takes the set from its watch's cache (from the API server
//! when the cache lacks it), its ControllerRevisions and pods from caches
//! fed by their own watches and indexed by owner ([`cache::OwnerCache`],
//! which also records the controller's own writes), asks [`plan::plan`]
//! what to do, performs those writes and patches the status. Pod events
//! (mapped through the pods' controller owner reference) and a new set
//! generation queue the next pass ([`queue::WorkQueue`]); a pod event is
//! in the pod cache before it queues anything.

mod cache;
mod children;
mod plan;
mod queue;
mod revision;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Client, ResourceExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{debug, warn};

use crate::controllers::events::{self, Events};
use crate::selector::LabelSelector as Selector;
use cache::OwnerCache;
use children::{Revisions, create_pod, delete_pod, ensure_claims};
use plan::{PodManagement, PodView, Revision, SetView, UpdateStrategy};
use queue::WorkQueue;
use revision::{REVISION_LABEL, SetIdentity};

/// Which workload kind a controller instance serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetKind {
    /// `apps/v1` StatefulSet.
    StatefulSet,
    /// KubeDB's `apps.k8s.appscode.com/v1` PetSet.
    PetSet,
}

impl SetKind {
    /// The API resource of this kind.
    pub fn api_resource(self) -> ApiResource {
        match self {
            SetKind::StatefulSet => ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("apps", "v1", "StatefulSet"),
                "statefulsets",
            ),
            SetKind::PetSet => ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("apps.k8s.appscode.com", "v1", "PetSet"),
                "petsets",
            ),
        }
    }
}

/// Errors of one reconcile pass (logged, then retried).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The set's spec does not have the StatefulSet shape.
    #[error("{kind} {namespace}/{name}: invalid spec: {source}")]
    InvalidSpec {
        /// The kind.
        kind: String,
        /// The namespace.
        namespace: String,
        /// The name.
        name: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// An object lacks a field the API server always sets.
    #[error("{kind} object without metadata.{field}: the API server must set it")]
    MissingMetadata {
        /// The kind.
        kind: String,
        /// The missing field.
        field: &'static str,
    },
    /// The set's selector does not parse.
    #[error("{kind} {namespace}/{name}: invalid selector: {message}")]
    InvalidSelector {
        /// The kind.
        kind: String,
        /// The namespace.
        namespace: String,
        /// The name.
        name: String,
        /// What is wrong with it.
        message: String,
    },
    /// A request to the API server failed.
    #[error("{action}: {source}")]
    Api {
        /// What was attempted, e.g. `create pod demo/zk-0`.
        action: String,
        /// The kube error.
        #[source]
        source: kube::Error,
    },
}

struct Context {
    client: Client,
    resource: ApiResource,
    events: Events,
    pods: OwnerCache<Pod>,
    revisions: OwnerCache<ControllerRevision>,
}

/// Runs the controller for `kind` until its watch streams end.
pub async fn run(client: Client, kind: SetKind) {
    let resource = kind.api_resource();
    let sets: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let pods: Api<Pod> = Api::all(client.clone());
    let revisions: Api<ControllerRevision> = Api::all(client.clone());
    let mapper_resource = resource.clone();
    let context = Arc::new(Context {
        events: Events::new(client.clone(), "statefulset-controller"),
        client,
        resource: resource.clone(),
        pods: OwnerCache::new(),
        revisions: OwnerCache::new(),
    });
    // The set's own status writes come back as set events; reconciling on
    // them re-reads everything for nothing, so only a new generation (spec
    // change) or a new object triggers from the set side, like
    // `predicates::generation` in real controllers. Pod events trigger as
    // before, and the status in the cache stays current (it is reflected
    // before the filter).
    let set_cache_writer = reflector::store::Writer::new(resource.clone());
    let set_cache = set_cache_writer.as_reader();
    let set_events = watcher(sets, watcher::Config::default())
        .default_backoff()
        .reflect(set_cache_writer)
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default());
    let set_triggers = keys_of(set_events, "set", move |set| {
        Some(ObjectRef::from_obj_with(&set, resource.clone()))
    });
    let pod_cache = context.pods.clone();
    // Each pod event updates the cache first, then queues the owners of
    // the pods it touched (at the end of a re-list: all listed pods and
    // those that vanished meanwhile).
    let pod_events = watcher(pods, watcher::Config::default())
        .default_backoff()
        .map_ok(move |event| futures::stream::iter(pod_cache.apply(&event).into_iter().map(Ok)))
        .try_flatten();
    // Revisions change only by this controller's own writes (recorded in
    // the cache when made): their events feed the cache, nothing else.
    let revision_feeder = {
        let cache = context.revisions.clone();
        let events = watcher(revisions, watcher::Config::default()).default_backoff();
        tokio::spawn(async move {
            let mut events = std::pin::pin!(events);
            while let Some(event) = events.next().await {
                match event {
                    Ok(event) => {
                        cache.apply(&event);
                    }
                    Err(err) => {
                        warn!(error = %err, "statefulset controller: revision watch failed; retrying");
                    }
                }
            }
        })
    };
    let pod_triggers = keys_of(pod_events, "pod", move |pod| {
        owning_set(&pod, &mapper_resource)
    });
    let (queue, mut ready) = WorkQueue::new();
    let feeder = {
        let queue = queue.clone();
        let triggers = futures::stream::select(set_triggers, pod_triggers);
        tokio::spawn(async move {
            let mut triggers = std::pin::pin!(triggers);
            while let Some(key) = triggers.next().await {
                queue.add(key);
            }
        })
    };
    // Like a controller waiting for its informers to sync: a pass before
    // the first complete lists would see no pods and create them again.
    tokio::join!(context.pods.ready(), context.revisions.ready());
    while let Some(key) = ready.recv().await {
        let Some(running) = queue.start(key) else {
            continue;
        };
        let cached = set_cache.get(running.key());
        let (queue, context) = (queue.clone(), context.clone());
        tokio::spawn(async move {
            let object = running.key().clone();
            // Not in the cache: the set is gone (its pods' events still map
            // to it), or the cache is being rebuilt by a re-list (a reflector
            // publishes the listed objects only once the list is complete,
            // while their events already arrive). Ask the API server.
            let set = match cached {
                Some(set) => set,
                None => match fetch_set(&context, &object).await {
                    Ok(Some(set)) => {
                        debug!(%object, "set not in the cache; read from the API server");
                        Arc::new(set)
                    }
                    Ok(None) => return,
                    Err(err) => {
                        warn!(error = %err, "statefulset controller: cannot read {object}; retrying");
                        queue.add_after(object, RETRY);
                        return;
                    }
                },
            };
            match reconcile(set, context).await {
                Ok(()) => {
                    debug!(%object, "reconciled");
                    queue.add_after(object, RESYNC);
                }
                Err(err) => {
                    warn!(error = %err, "statefulset reconcile failed; retrying");
                    queue.add_after(object, RETRY);
                }
            }
            drop(running);
        });
    }
    feeder.abort();
    revision_feeder.abort();
}

/// The sets to reconcile for a watch's objects (`key`); watch errors are
/// logged (the watcher retries with backoff).
fn keys_of<T>(
    events: impl futures::Stream<Item = Result<T, watcher::Error>>,
    watched: &'static str,
    key: impl Fn(T) -> Option<ObjectRef<DynamicObject>>,
) -> impl futures::Stream<Item = ObjectRef<DynamicObject>> {
    events.filter_map(move |event| {
        let found = match event {
            Ok(object) => key(object),
            Err(err) => {
                warn!(error = %err, "statefulset controller: {watched} watch failed; retrying");
                None
            }
        };
        std::future::ready(found)
    })
}

/// The set behind `key`, read from the API server; `None` once deleted.
async fn fetch_set(
    context: &Context,
    key: &ObjectRef<DynamicObject>,
) -> Result<Option<DynamicObject>, kube::Error> {
    let namespace = key.namespace.as_deref().unwrap_or_default();
    let api: Api<DynamicObject> =
        Api::namespaced_with(context.client.clone(), namespace, &context.resource);
    api.get_opt(&key.name).await
}

/// Pod and set events drive everything; the periodic pass is a safety net.
const RESYNC: Duration = Duration::from_secs(300);
/// A failed pass is tried again after this long.
const RETRY: Duration = Duration::from_millis(500);

/// The set that controls `pod`, if it is of this controller's kind.
fn owning_set(pod: &Pod, resource: &ApiResource) -> Option<ObjectRef<DynamicObject>> {
    let owner = pod.owner_references().iter().find(|owner| {
        owner.controller == Some(true)
            && owner.kind == resource.kind
            && owner.api_version == resource.api_version
    })?;
    let namespace = pod.namespace()?;
    Some(ObjectRef::new_with(&owner.name, resource.clone()).within(&namespace))
}

/// The spec fields the controller reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct SetSpec {
    replicas: Option<i64>,
    selector: Option<LabelSelector>,
    template: Value,
    service_name: Option<String>,
    pod_management_policy: Option<String>,
    update_strategy: Option<StrategySpec>,
    revision_history_limit: Option<i64>,
    volume_claim_templates: Vec<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct StrategySpec {
    #[serde(rename = "type")]
    kind: Option<String>,
    rolling_update: Option<RollingSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RollingSpec {
    partition: Option<i64>,
}

impl SetSpec {
    /// What the planner needs to know about the set.
    fn view(&self, update_revision: &str, current_revision: &str) -> SetView {
        let count = |n: i64| n.clamp(0, i64::from(u32::MAX)) as u32;
        let strategy = match self.update_strategy.as_ref() {
            Some(StrategySpec {
                kind: Some(kind), ..
            }) if kind == "OnDelete" => UpdateStrategy::OnDelete,
            other => UpdateStrategy::RollingUpdate {
                partition: count(
                    other
                        .and_then(|s| s.rolling_update.as_ref())
                        .and_then(|r| r.partition)
                        .unwrap_or(0),
                ),
            },
        };
        SetView {
            replicas: count(self.replicas.unwrap_or(1)),
            management: match self.pod_management_policy.as_deref() {
                Some("Parallel") => PodManagement::Parallel,
                _ => PodManagement::OrderedReady,
            },
            strategy,
            update_revision: update_revision.to_owned(),
            current_revision: current_revision.to_owned(),
        }
    }
}

/// The status the set should report.
fn status_document(generation: Option<i64>, counts: &plan::Counts, update_revision: &str) -> Value {
    json!({
        "observedGeneration": generation.unwrap_or(0),
        "replicas": counts.replicas,
        "readyReplicas": counts.ready,
        "availableReplicas": counts.ready,
        "currentReplicas": counts.current,
        "updatedReplicas": counts.updated,
        "currentRevision": counts.current_revision,
        "updateRevision": update_revision,
        "collisionCount": 0,
    })
}

/// Reads the set's revisions and pods, performs the planned writes, patches
/// the status.
async fn reconcile(set: Arc<DynamicObject>, ctx: Arc<Context>) -> Result<(), Error> {
    let kind = ctx.resource.kind.clone();
    let missing = |field| Error::MissingMetadata {
        kind: kind.clone(),
        field,
    };
    let name = set.metadata.name.clone().ok_or_else(|| missing("name"))?;
    let namespace = set
        .metadata
        .namespace
        .clone()
        .ok_or_else(|| missing("namespace"))?;
    let uid = set.metadata.uid.clone().ok_or_else(|| missing("uid"))?;
    if set.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    let spec =
        SetSpec::deserialize(set.data.get("spec").unwrap_or(&Value::Null)).map_err(|source| {
            Error::InvalidSpec {
                kind: kind.clone(),
                namespace: namespace.clone(),
                name: name.clone(),
                source,
            }
        })?;
    let selector = selector_string(spec.selector.as_ref(), &spec.template);
    let owner = revision::owner_reference(&ctx.resource.api_version, &kind, &name, &uid);
    let status = set.data.get("status").cloned().unwrap_or_default();

    let selector = Selector::parse(&selector).map_err(|err| Error::InvalidSelector {
        kind: kind.clone(),
        namespace: namespace.clone(),
        name: name.clone(),
        message: err.to_string(),
    })?;

    // Revisions: make sure the template's revision exists.
    let revisions = Revisions::load(&ctx.client, &ctx.revisions, &namespace, &selector, &uid);
    let update_revision = revision::revision_name(&name, &spec.template);
    let template_labels = spec
        .template
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    revisions
        .ensure(
            &update_revision,
            &namespace,
            &template_labels,
            &owner,
            &spec.template,
        )
        .await?;
    let current_revision = status
        .get("currentRevision")
        .and_then(Value::as_str)
        .filter(|current| revisions.has(current))
        .unwrap_or(&update_revision)
        .to_owned();

    // Pods, by ordinal.
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let pods = ctx.pods.selected(&namespace, &uid, &selector);
    let views = pod_views(&pods, &name, &uid);

    let plan = plan::plan(&spec.view(&update_revision, &current_revision), &views);

    let regarding = events::reference(
        &ctx.resource.api_version,
        &kind,
        &namespace,
        &name,
        Some(&uid),
    );
    let claims = revision::claim_templates(&spec.volume_claim_templates);
    let identity = SetIdentity {
        name: &name,
        namespace: &namespace,
        service_name: spec.service_name.as_deref(),
        owner: &owner,
        claims: &claims,
    };
    for action in &plan.actions {
        match action {
            plan::Action::Create { ordinal, revision } => {
                let (revision_name, template) = match revision {
                    Revision::Update => (&update_revision, spec.template.clone()),
                    Revision::Current => (
                        &current_revision,
                        revisions
                            .template(&current_revision)
                            .unwrap_or_else(|| spec.template.clone()),
                    ),
                };
                ensure_claims(&ctx.client, &namespace, &name, *ordinal, &spec).await?;
                let pod =
                    revision::pod_from_template(&identity, &template, revision_name, *ordinal);
                if create_pod(&ctx.client, &ctx.pods, &namespace, pod).await? {
                    let pod_name = format!("{name}-{ordinal}");
                    let note = format!("create Pod {pod_name} in {kind} {name} successful");
                    let pod = events::reference("v1", "Pod", &namespace, &pod_name, None);
                    let events = &ctx.events;
                    events.normal(&regarding, Some(pod), "SuccessfulCreate", "Create", note);
                }
            }
            plan::Action::Delete { name: pod_name } => {
                if delete_pod(&pods_api, &ctx.pods, &namespace, pod_name).await? {
                    let note = format!("delete Pod {pod_name} in {kind} {name} successful");
                    let pod = events::reference("v1", "Pod", &namespace, pod_name, None);
                    let events = &ctx.events;
                    events.normal(&regarding, Some(pod), "SuccessfulDelete", "Delete", note);
                }
            }
        }
    }

    let counts = &plan.counts;
    let desired = status_document(set.metadata.generation, counts, &update_revision);
    if !is_subset(&desired, &status) {
        let sets: Api<DynamicObject> =
            Api::namespaced_with(ctx.client.clone(), &namespace, &ctx.resource);
        sets.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": desired })),
        )
        .await
        .map_err(|source| Error::Api {
            action: format!("patch status of {kind} {namespace}/{name}"),
            source,
        })?;
    }

    let limit = spec.revision_history_limit.unwrap_or(10).max(0) as usize;
    let in_use: Vec<&str> = views
        .values()
        .map(|pod| pod.revision.as_str())
        .chain([update_revision.as_str(), counts.current_revision.as_str()])
        .collect();
    revisions.prune(&in_use, limit).await;
    Ok(())
}

/// The set's pods by ordinal: controlled by the set (uid), named `SET-N`.
fn pod_views(pods: &[Arc<Pod>], set_name: &str, set_uid: &str) -> BTreeMap<u32, PodView> {
    let prefix = format!("{set_name}-");
    pods.iter()
        .filter(|pod| {
            pod.owner_references()
                .iter()
                .any(|owner| owner.controller == Some(true) && owner.uid == set_uid)
        })
        .filter_map(|pod| {
            let name = pod.metadata.name.clone()?;
            let ordinal: u32 = name.strip_prefix(&prefix)?.parse().ok()?;
            let status = pod.status.as_ref();
            let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
            let ready = phase == "Running"
                && status
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|conditions| {
                        conditions
                            .iter()
                            .any(|c| c.type_ == "Ready" && c.status == "True")
                    });
            let revision = pod
                .labels()
                .get(REVISION_LABEL)
                .cloned()
                .unwrap_or_default();
            Some((
                ordinal,
                PodView {
                    name,
                    revision,
                    ready,
                    terminating: pod.metadata.deletion_timestamp.is_some(),
                    finished: matches!(phase, "Failed" | "Succeeded"),
                },
            ))
        })
        .collect()
}

/// A label selector string from a LabelSelector (or the template's labels
/// when the set has none).
fn selector_string(selector: Option<&LabelSelector>, template: &Value) -> String {
    let mut parts = Vec::new();
    match selector {
        Some(selector) => {
            for (key, value) in selector.match_labels.iter().flatten() {
                parts.push(format!("{key}={value}"));
            }
            for expr in selector.match_expressions.iter().flatten() {
                let values = expr.values.clone().unwrap_or_default().join(",");
                parts.push(match expr.operator.as_str() {
                    "In" => format!("{} in ({values})", expr.key),
                    "NotIn" => format!("{} notin ({values})", expr.key),
                    "DoesNotExist" => format!("!{}", expr.key),
                    _ => expr.key.clone(),
                });
            }
        }
        None => {
            for (key, value) in template
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                parts.push(format!("{key}={}", value.as_str().unwrap_or_default()));
            }
        }
    }
    parts.join(",")
}

/// Whether every field of `desired` (an object) equals the one in `actual`.
fn is_subset(desired: &Value, actual: &Value) -> bool {
    desired
        .as_object()
        .into_iter()
        .flatten()
        .all(|(key, value)| actual.get(key) == Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_string_covers_labels_and_expressions() {
        let selector: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "zk"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "old", "operator": "DoesNotExist"}
            ]
        }))
        .expect("valid selector");
        assert_eq!(
            selector_string(Some(&selector), &Value::Null),
            "app=zk,tier in (a,b),!old"
        );
        let template = json!({"metadata": {"labels": {"app": "x"}}});
        assert_eq!(selector_string(None, &template), "app=x");
    }

    #[test]
    fn subset_compares_only_desired_fields() {
        assert!(is_subset(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(!is_subset(&json!({"a": 1}), &json!({"a": 2})));
        assert!(!is_subset(&json!({"a": 1}), &Value::Null));
    }

    #[test]
    fn pod_views_keep_only_controlled_ordinal_pods() {
        let pod = |name: &str, uid: &str, ready: bool| -> Pod {
            serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {REVISION_LABEL: "web-1"},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": uid, "controller": true}]},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
            }))
            .expect("valid pod")
        };
        let pods = vec![
            Arc::new(pod("web-0", "u1", true)),
            Arc::new(pod("web-1", "u1", false)),
            Arc::new(pod("web-x", "u1", true)),
            Arc::new(pod("web-2", "other", true)),
        ];
        let views = pod_views(&pods, "web", "u1");
        assert_eq!(views.keys().copied().collect::<Vec<_>>(), vec![0, 1]);
        assert!(views[&0].ready);
        assert!(!views[&1].ready);
        assert_eq!(views[&0].revision, "web-1");
    }
}
