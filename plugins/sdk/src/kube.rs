//! A small, typed Kubernetes API over the host's request and watch calls.
//!
//! Start at [`Kube::api`] (typed, any `k8s_openapi` resource) or
//! [`Kube::dynamic`] (custom resources as `serde_json::Value`), then use
//! [`Api`]: get, list, create, replace, patch, delete, watch, and
//! [`Api::wait_until`] (modelled on kube-runtime's `await_condition`: a
//! condition plus a caller-supplied deadline, driven by a watch).
//!
//! The host retries throttled (429) and failed (5xx) requests; what reaches
//! the plugin is a final answer.

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ErrorClass, StepError};
use crate::services::{HostServices, WatchNext};
use crate::wait::Condition;

/// Errors of Kubernetes calls.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KubeError {
    /// The server answered with a Status error.
    #[error("{verb} {path}: {message} (HTTP {code}, reason {reason})")]
    Api {
        /// The verb, e.g. `get`.
        verb: &'static str,
        /// The request path.
        path: String,
        /// HTTP status code.
        code: u16,
        /// Status reason, e.g. `Conflict`, `Forbidden`.
        reason: String,
        /// The server's message.
        message: String,
    },
    /// The request never got an answer (connection, refused write in dry run).
    #[error("{verb} {path}: {message}")]
    Transport {
        /// The verb.
        verb: &'static str,
        /// The request path.
        path: String,
        /// What failed.
        message: String,
    },
    /// The answer could not be decoded into the expected type.
    #[error("{verb} {path}: cannot decode the response: {message}")]
    Decode {
        /// The verb.
        verb: &'static str,
        /// The request path.
        path: String,
        /// The decoder's message.
        message: String,
    },
    /// A wait ran past its deadline.
    #[error("timed out after {waited:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        waited: Duration,
    },
    /// The run was cancelled while waiting.
    #[error("cancelled while waiting for {what}")]
    Cancelled {
        /// What was awaited.
        what: String,
    },
}

impl KubeError {
    /// HTTP status of an API error.
    pub fn code(&self) -> Option<u16> {
        match self {
            KubeError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// 404.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }

    /// 409 (stale resourceVersion or already exists).
    pub fn is_conflict(&self) -> bool {
        self.code() == Some(409)
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            KubeError::Api { code, .. } => matches!(code, 409 | 429 | 500..=599),
            KubeError::Transport { .. } => true,
            KubeError::Decode { .. } | KubeError::Timeout { .. } | KubeError::Cancelled { .. } => {
                false
            }
        }
    }
}

impl From<KubeError> for StepError {
    fn from(e: KubeError) -> StepError {
        let reason = match &e {
            KubeError::Api { code: 403, .. } => "Forbidden",
            KubeError::Api { code: 404, .. } => "NotFound",
            KubeError::Api { code: 409, .. } => "Conflict",
            KubeError::Api { .. } => "KubernetesApiError",
            KubeError::Transport { .. } => "KubernetesUnreachable",
            KubeError::Decode { .. } => "UnexpectedObject",
            KubeError::Timeout { .. } => "Timeout",
            KubeError::Cancelled { .. } => "Cancelled",
        };
        let mut message = e.to_string();
        if e.code() == Some(403) {
            message.push_str("; grant this verb on this resource to the ServiceAccount dbops runs as (see deploy/)");
        }
        StepError {
            class: if e.is_transient() {
                ErrorClass::Transient
            } else {
                ErrorClass::Permanent
            },
            reason: reason.into(),
            message,
        }
    }
}

/// Result of Kubernetes calls.
pub type KubeResult<T> = Result<T, KubeError>;

/// Where a resource lives in the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResource {
    /// API group, empty for core.
    pub group: String,
    /// Version, e.g. `v1`.
    pub version: String,
    /// Kind, e.g. `Pod`.
    pub kind: String,
    /// Plural resource name, e.g. `pods`.
    pub plural: String,
}

impl ApiResource {
    /// The location of a `k8s_openapi` type.
    pub fn of<K: k8s_openapi::Resource>() -> ApiResource {
        ApiResource {
            group: K::GROUP.to_owned(),
            version: K::VERSION.to_owned(),
            kind: K::KIND.to_owned(),
            plural: K::URL_PATH_SEGMENT.to_owned(),
        }
    }

    /// A custom resource from its `apiVersion` (`group/version` or `v1`), kind and plural.
    pub fn new(api_version: &str, kind: &str, plural: &str) -> ApiResource {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g.to_owned(), v.to_owned()),
            None => (String::new(), api_version.to_owned()),
        };
        ApiResource {
            group,
            version,
            kind: kind.to_owned(),
            plural: plural.to_owned(),
        }
    }

    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    fn prefix(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }
}

/// Entry point to the cluster through the host.
#[derive(Clone, Copy)]
pub struct Kube<'h> {
    host: &'h dyn HostServices,
}

impl<'h> Kube<'h> {
    /// Wrap host services.
    pub fn new(host: &'h dyn HostServices) -> Kube<'h> {
        Kube { host }
    }

    /// A typed API for `K` in `namespace` (None for cluster-scoped resources).
    pub fn api<K: k8s_openapi::Resource + DeserializeOwned + Serialize>(
        &self,
        namespace: Option<&str>,
    ) -> Api<'h, K> {
        Api::with_resource(self.host, ApiResource::of::<K>(), namespace)
    }

    /// An untyped API for a custom resource.
    pub fn dynamic(&self, resource: ApiResource, namespace: Option<&str>) -> Api<'h, Value> {
        Api::with_resource(self.host, resource, namespace)
    }

    /// A raw request (path includes the query); returns status and body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> KubeResult<(u16, Vec<u8>)> {
        self.host
            .k8s_request(method, path, content_type, body)
            .map_err(|message| KubeError::Transport {
                verb: "request",
                path: path.to_owned(),
                message,
            })
    }
}

/// Selectors and paging for list and watch.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    /// e.g. `app=zk,tier in (db)`.
    pub label_selector: Option<String>,
    /// e.g. `metadata.name=zk-0`.
    pub field_selector: Option<String>,
}

impl ListParams {
    /// Select by labels.
    pub fn labels(selector: impl Into<String>) -> ListParams {
        ListParams {
            label_selector: Some(selector.into()),
            field_selector: None,
        }
    }

    /// Select by fields.
    pub fn fields(selector: impl Into<String>) -> ListParams {
        ListParams {
            label_selector: None,
            field_selector: Some(selector.into()),
        }
    }

    fn query(&self, extra: &[(&str, String)]) -> String {
        let mut parts = Vec::new();
        if let Some(l) = &self.label_selector {
            parts.push(format!("labelSelector={}", encode(l)));
        }
        if let Some(f) = &self.field_selector {
            parts.push(format!("fieldSelector={}", encode(f)));
        }
        for (k, v) in extra {
            parts.push(format!("{k}={}", encode(v)));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }
}

/// A patch body and its content type.
#[derive(Debug, Clone)]
pub enum Patch {
    /// `application/merge-patch+json`.
    Merge(Value),
    /// `application/json-patch+json` (an array of operations).
    Json(Value),
    /// `application/strategic-merge-patch+json` (built-in kinds only).
    Strategic(Value),
    /// Server-side apply with a field manager.
    Apply {
        /// The full intended object.
        object: Value,
        /// Field manager name.
        field_manager: String,
        /// Take over conflicting fields.
        force: bool,
    },
}

impl Patch {
    fn content_type(&self) -> &'static str {
        match self {
            Patch::Merge(_) => "application/merge-patch+json",
            Patch::Json(_) => "application/json-patch+json",
            Patch::Strategic(_) => "application/strategic-merge-patch+json",
            Patch::Apply { .. } => "application/apply-patch+yaml",
        }
    }

    fn body(&self) -> &Value {
        match self {
            Patch::Merge(v) | Patch::Json(v) | Patch::Strategic(v) => v,
            Patch::Apply { object, .. } => object,
        }
    }
}

/// What [`Api::delete_versioned`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deletion {
    /// The object did not exist.
    NotFound,
    /// Deleted, or terminating (a grace period or finalizers).
    Accepted {
        /// resourceVersion of the API server's answer (none when it
        /// answered with a Status).
        resource_version: Option<String>,
    },
}

/// Options for delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteParams {
    /// Grace period in seconds.
    pub grace_period_seconds: Option<u64>,
    /// Only delete this exact object (uid precondition).
    pub precondition_uid: Option<String>,
    /// Only delete this exact version (resourceVersion precondition).
    pub precondition_resource_version: Option<String>,
    /// `Foreground`, `Background` or `Orphan`.
    pub propagation_policy: Option<String>,
}

/// One event of a watch.
#[derive(Debug, Clone)]
pub enum WatchEvent<K> {
    /// Object created (or present at the start).
    Added(K),
    /// Object changed.
    Modified(K),
    /// Object removed.
    Deleted(K),
    /// Progress marker with a resourceVersion.
    Bookmark(String),
}

/// A list with its resourceVersion (start a watch from it).
#[derive(Debug, Clone)]
pub struct ObjectList<K> {
    /// The items.
    pub items: Vec<K>,
    /// The list's resourceVersion.
    pub resource_version: String,
}

/// Operations on one resource type in one namespace.
pub struct Api<'h, K> {
    host: &'h dyn HostServices,
    resource: ApiResource,
    namespace: Option<String>,
    _kind: PhantomData<fn() -> K>,
}

impl<'h, K: DeserializeOwned + Serialize> Api<'h, K> {
    fn with_resource(
        host: &'h dyn HostServices,
        resource: ApiResource,
        namespace: Option<&str>,
    ) -> Api<'h, K> {
        Api {
            host,
            resource,
            namespace: namespace.map(str::to_owned),
            _kind: PhantomData,
        }
    }

    /// The resource this API addresses.
    pub fn resource(&self) -> &ApiResource {
        &self.resource
    }

    /// The collection path (`/api/v1/namespaces/NS/pods`).
    pub fn collection_path(&self) -> String {
        match &self.namespace {
            Some(ns) => format!(
                "{}/namespaces/{}/{}",
                self.resource.prefix(),
                ns,
                self.resource.plural
            ),
            None => format!("{}/{}", self.resource.prefix(), self.resource.plural),
        }
    }

    /// The path of one object.
    pub fn object_path(&self, name: &str) -> String {
        format!("{}/{}", self.collection_path(), name)
    }

    fn call(
        &self,
        verb: &'static str,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> KubeResult<Vec<u8>> {
        let (status, bytes) = self
            .host
            .k8s_request(method, path, content_type, body)
            .map_err(|message| KubeError::Transport {
                verb,
                path: path.to_owned(),
                message,
            })?;
        if (200..300).contains(&status) {
            return Ok(bytes);
        }
        let status_obj: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let text = |k: &str| {
            status_obj
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let mut message = text("message");
        if message.is_empty() {
            message = String::from_utf8_lossy(&bytes).chars().take(300).collect();
        }
        Err(KubeError::Api {
            verb,
            path: path.to_owned(),
            code: status,
            reason: text("reason"),
            message,
        })
    }

    fn decode<T: DeserializeOwned>(
        &self,
        verb: &'static str,
        path: &str,
        bytes: &[u8],
    ) -> KubeResult<T> {
        serde_json::from_slice(bytes).map_err(|e| KubeError::Decode {
            verb,
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    fn encode_body(
        &self,
        verb: &'static str,
        path: &str,
        value: &impl Serialize,
    ) -> KubeResult<Vec<u8>> {
        serde_json::to_vec(value).map_err(|e| KubeError::Decode {
            verb,
            path: path.to_owned(),
            message: format!("cannot encode request: {e}"),
        })
    }

    /// Get an object; `Ok(None)` when it does not exist.
    pub fn get_opt(&self, name: &str) -> KubeResult<Option<K>> {
        match self.get(name) {
            Ok(obj) => Ok(Some(obj)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Get an object (404 is an error).
    pub fn get(&self, name: &str) -> KubeResult<K> {
        let path = self.object_path(name);
        let bytes = self.call("get", "GET", &path, "", &[])?;
        self.decode("get", &path, &bytes)
    }

    /// List objects.
    pub fn list(&self, params: &ListParams) -> KubeResult<ObjectList<K>> {
        let path = format!("{}{}", self.collection_path(), params.query(&[]));
        let bytes = self.call("list", "GET", &path, "", &[])?;
        let list: Value = self.decode("list", &path, &bytes)?;
        let resource_version = list
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let items = match list.get("items") {
            Some(Value::Array(items)) => items.clone(),
            _ => Vec::new(),
        };
        let items = items
            .into_iter()
            .map(|item| self.decode_value("list", &path, item))
            .collect::<KubeResult<Vec<K>>>()?;
        Ok(ObjectList {
            items,
            resource_version,
        })
    }

    fn decode_value<T: DeserializeOwned>(
        &self,
        verb: &'static str,
        path: &str,
        value: Value,
    ) -> KubeResult<T> {
        serde_json::from_value(value).map_err(|e| KubeError::Decode {
            verb,
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Create an object.
    pub fn create(&self, object: &K) -> KubeResult<K> {
        let path = self.collection_path();
        let body = self.encode_body("create", &path, object)?;
        let bytes = self.call("create", "POST", &path, "application/json", &body)?;
        self.decode("create", &path, &bytes)
    }

    /// Replace an object; the object's resourceVersion makes it conditional (409 when stale).
    pub fn replace(&self, name: &str, object: &K) -> KubeResult<K> {
        let path = self.object_path(name);
        let body = self.encode_body("replace", &path, object)?;
        let bytes = self.call("replace", "PUT", &path, "application/json", &body)?;
        self.decode("replace", &path, &bytes)
    }

    /// Replace the status subresource.
    pub fn replace_status(&self, name: &str, object: &K) -> KubeResult<K> {
        let path = format!("{}/status", self.object_path(name));
        let body = self.encode_body("replace_status", &path, object)?;
        let bytes = self.call("replace_status", "PUT", &path, "application/json", &body)?;
        self.decode("replace_status", &path, &bytes)
    }

    /// Patch an object.
    pub fn patch(&self, name: &str, patch: &Patch) -> KubeResult<K> {
        self.patch_at("patch", self.object_path(name), patch)
    }

    /// Patch the status subresource.
    pub fn patch_status(&self, name: &str, patch: &Patch) -> KubeResult<K> {
        self.patch_at(
            "patch_status",
            format!("{}/status", self.object_path(name)),
            patch,
        )
    }

    fn patch_at(&self, verb: &'static str, mut path: String, patch: &Patch) -> KubeResult<K> {
        if let Patch::Apply {
            field_manager,
            force,
            ..
        } = patch
        {
            path = format!(
                "{path}?fieldManager={}&force={force}",
                encode(field_manager)
            );
        }
        let body = self.encode_body(verb, &path, patch.body())?;
        let bytes = self.call(verb, "PATCH", &path, patch.content_type(), &body)?;
        self.decode(verb, &path, &bytes)
    }

    /// Delete an object; `Ok(false)` when it did not exist.
    pub fn delete(&self, name: &str, params: &DeleteParams) -> KubeResult<bool> {
        Ok(!matches!(
            self.delete_versioned(name, params)?,
            Deletion::NotFound
        ))
    }

    /// Delete an object and report the resourceVersion the API server
    /// answered with: a watch from it sees everything that happens to the
    /// object after this deletion ([`Api::wait_until_after`]), without
    /// reading it first.
    pub fn delete_versioned(&self, name: &str, params: &DeleteParams) -> KubeResult<Deletion> {
        let path = self.object_path(name);
        let mut options = serde_json::Map::new();
        options.insert("kind".into(), "DeleteOptions".into());
        options.insert("apiVersion".into(), "v1".into());
        if let Some(g) = params.grace_period_seconds {
            options.insert("gracePeriodSeconds".into(), g.into());
        }
        if let Some(p) = &params.propagation_policy {
            options.insert("propagationPolicy".into(), p.clone().into());
        }
        let mut pre = serde_json::Map::new();
        if let Some(uid) = &params.precondition_uid {
            pre.insert("uid".into(), uid.clone().into());
        }
        if let Some(rv) = &params.precondition_resource_version {
            pre.insert("resourceVersion".into(), rv.clone().into());
        }
        if !pre.is_empty() {
            options.insert("preconditions".into(), Value::Object(pre));
        }
        let body = Value::Object(options).to_string();
        match self.call(
            "delete",
            "DELETE",
            &path,
            "application/json",
            body.as_bytes(),
        ) {
            // The answer is the object (terminating, or as it was removed)
            // or a Status; only an object carries a resourceVersion.
            Ok(bytes) => Ok(Deletion::Accepted {
                resource_version: serde_json::from_slice::<Value>(&bytes)
                    .ok()
                    .filter(|answer| answer.get("kind").and_then(Value::as_str) != Some("Status"))
                    .and_then(|answer| {
                        answer
                            .pointer("/metadata/resourceVersion")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    }),
            }),
            Err(e) if e.is_not_found() => Ok(Deletion::NotFound),
            Err(e) => Err(e),
        }
    }

    /// Open a watch from `resource_version` (from a get or list).
    pub fn watch(
        &self,
        params: &ListParams,
        resource_version: &str,
    ) -> KubeResult<WatchStream<'h, K>> {
        let path = format!(
            "{}{}",
            self.collection_path(),
            params.query(&[
                ("watch", "true".into()),
                ("resourceVersion", resource_version.into()),
                ("allowWatchBookmarks", "true".into()),
            ])
        );
        let handle = self
            .host
            .watch_open(&path)
            .map_err(|message| KubeError::Transport {
                verb: "watch",
                path: path.clone(),
                message,
            })?;
        Ok(WatchStream {
            host: self.host,
            handle,
            path,
            last_resource_version: resource_version.to_owned(),
            _kind: PhantomData,
        })
    }

    /// Wait until `condition` holds for the object `name` (None = absent),
    /// or fail at `timeout`. Driven by a watch: reacts as soon as the
    /// server reports a change; reopens dropped watches; re-reads on 410.
    /// Returns the object as it was when the condition held.
    pub fn wait_until(
        &self,
        name: &str,
        condition: impl Condition<K>,
        timeout: Duration,
    ) -> KubeResult<Option<K>> {
        self.wait(name, None, condition, timeout)
    }

    /// [`Api::wait_until`] for a change after `resource_version` (the
    /// caller's own write to the object, e.g. [`Api::delete_versioned`]):
    /// the watch starts there, saving the read of the object. Use it only
    /// when the condition cannot hold at that version. Falls back to read
    /// and watch when the version has expired or the watch drops.
    pub fn wait_until_after(
        &self,
        name: &str,
        resource_version: &str,
        condition: impl Condition<K>,
        timeout: Duration,
    ) -> KubeResult<Option<K>> {
        self.wait(name, Some(resource_version), condition, timeout)
    }

    fn wait(
        &self,
        name: &str,
        mut watch_from: Option<&str>,
        condition: impl Condition<K>,
        timeout: Duration,
    ) -> KubeResult<Option<K>> {
        let started = Instant::now();
        let deadline = started + self.clamp_to_step_deadline(timeout);
        let what = format!("{} {}", self.resource.kind, name);
        let params = ListParams::fields(format!("metadata.name={name}"));
        loop {
            let mut stream = match watch_from.take() {
                Some(version) => self.watch(&params, version)?,
                None => {
                    let list = self.list(&params)?;
                    let current = list.items.into_iter().next();
                    if condition.matches_object(current.as_ref()) {
                        return Ok(current);
                    }
                    self.watch(&params, &list.resource_version)?
                }
            };
            loop {
                if self.host.is_cancelled() {
                    return Err(KubeError::Cancelled { what });
                }
                let now = Instant::now();
                if now >= deadline {
                    return Err(KubeError::Timeout {
                        what,
                        waited: now - started,
                    });
                }
                match stream.next(deadline - now)? {
                    WatchOutcome::Event(WatchEvent::Added(obj))
                    | WatchOutcome::Event(WatchEvent::Modified(obj)) => {
                        if condition.matches_object(Some(&obj)) {
                            return Ok(Some(obj));
                        }
                    }
                    WatchOutcome::Event(WatchEvent::Deleted(_)) => {
                        if condition.matches_object(None) {
                            return Ok(None);
                        }
                    }
                    WatchOutcome::Event(WatchEvent::Bookmark(_)) | WatchOutcome::Timeout => {}
                    // Dropped stream or expired resourceVersion: re-read and re-watch.
                    WatchOutcome::Closed | WatchOutcome::Expired => break,
                }
            }
        }
    }

    fn clamp_to_step_deadline(&self, timeout: Duration) -> Duration {
        match self.host.deadline_remaining() {
            Some(left) => timeout.min(left),
            None => timeout,
        }
    }
}

/// What [`WatchStream::next`] produced.
#[derive(Debug)]
pub enum WatchOutcome<K> {
    /// An event.
    Event(WatchEvent<K>),
    /// Nothing within the timeout.
    Timeout,
    /// The server closed the stream; reopen from [`WatchStream::resource_version`].
    Closed,
    /// The resourceVersion is too old (410 Gone): list again, then watch.
    Expired,
}

/// An open watch; closed on drop.
pub struct WatchStream<'h, K> {
    host: &'h dyn HostServices,
    handle: u64,
    path: String,
    last_resource_version: String,
    _kind: PhantomData<fn() -> K>,
}

impl<K: DeserializeOwned> WatchStream<'_, K> {
    /// The resourceVersion of the last event seen.
    pub fn resource_version(&self) -> &str {
        &self.last_resource_version
    }

    /// Wait up to `timeout` for the next event.
    pub fn next(&mut self, timeout: Duration) -> KubeResult<WatchOutcome<K>> {
        let bytes = match self.host.watch_next(self.handle, timeout) {
            WatchNext::Event(bytes) => bytes,
            WatchNext::Timeout => return Ok(WatchOutcome::Timeout),
            WatchNext::Closed => return Ok(WatchOutcome::Closed),
            WatchNext::Error(message) => {
                return Err(KubeError::Transport {
                    verb: "watch",
                    path: self.path.clone(),
                    message,
                });
            }
        };
        let event: Value = serde_json::from_slice(&bytes).map_err(|e| KubeError::Decode {
            verb: "watch",
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        let kind = event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let object = event.get("object").cloned().unwrap_or(Value::Null);
        if let Some(rv) = object
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
        {
            self.last_resource_version = rv.to_owned();
        }
        let decode = |object: Value| {
            serde_json::from_value::<K>(object).map_err(|e| KubeError::Decode {
                verb: "watch",
                path: self.path.clone(),
                message: e.to_string(),
            })
        };
        Ok(WatchOutcome::Event(match kind.as_str() {
            "ADDED" => WatchEvent::Added(decode(object)?),
            "MODIFIED" => WatchEvent::Modified(decode(object)?),
            "DELETED" => WatchEvent::Deleted(decode(object)?),
            "BOOKMARK" => WatchEvent::Bookmark(self.last_resource_version.clone()),
            "ERROR" => {
                let code = object.get("code").and_then(Value::as_u64).unwrap_or(0);
                if code == 410 {
                    return Ok(WatchOutcome::Expired);
                }
                let message = object
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("watch error");
                return Err(KubeError::Api {
                    verb: "watch",
                    path: self.path.clone(),
                    code: u16::try_from(code).unwrap_or(500),
                    reason: object
                        .get("reason")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    message: message.to_owned(),
                });
            }
            other => {
                return Err(KubeError::Decode {
                    verb: "watch",
                    path: self.path.clone(),
                    message: format!("unknown watch event type {other:?}"),
                });
            }
        }))
    }
}

impl<K> Drop for WatchStream<'_, K> {
    fn drop(&mut self) {
        self.host.watch_close(self.handle);
    }
}

/// Percent-encode a query value.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    #[test]
    fn builds_paths_for_core_group_and_custom_resources() {
        let pods = ApiResource::of::<Pod>();
        assert_eq!(pods.api_version(), "v1");
        let cert = ApiResource::new("cert-manager.io/v1", "Certificate", "certificates");
        assert_eq!(cert.group, "cert-manager.io");
        assert_eq!(cert.prefix(), "/apis/cert-manager.io/v1");
    }

    #[test]
    fn encodes_selectors() {
        let q = ListParams::labels("app in (zk),tier!=web").query(&[("watch", "true".into())]);
        assert_eq!(
            q,
            "?labelSelector=app%20in%20%28zk%29%2Ctier%21%3Dweb&watch=true"
        );
    }
}
