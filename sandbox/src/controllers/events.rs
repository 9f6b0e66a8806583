//! Kubernetes Events (`events.k8s.io/v1`) the stand-ins emit like their
//! real counterparts. Best effort: a failed publish is logged, never
//! retried, never fails a reconcile.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tracing::debug;

/// Publishes Events as one reporting controller.
#[derive(Clone)]
pub struct Events {
    recorder: Recorder,
}

impl Events {
    /// An emitter reporting as `controller` (e.g. `statefulset-controller`).
    pub fn new(client: Client, controller: &str) -> Self {
        let reporter = Reporter {
            controller: controller.to_owned(),
            instance: Some("sandbox".to_owned()),
        };
        Self {
            recorder: Recorder::new(client, reporter),
        }
    }

    /// A `Normal` event about `regarding` (and the `related` object it
    /// affected, which also keeps events about different objects apart).
    pub async fn normal(
        &self,
        regarding: &ObjectReference,
        related: Option<ObjectReference>,
        reason: &str,
        action: &str,
        note: String,
    ) {
        self.publish(regarding, related, EventType::Normal, reason, action, note)
            .await;
    }

    /// A `Warning` event about `regarding`.
    pub async fn warning(
        &self,
        regarding: &ObjectReference,
        related: Option<ObjectReference>,
        reason: &str,
        action: &str,
        note: String,
    ) {
        self.publish(regarding, related, EventType::Warning, reason, action, note)
            .await;
    }

    async fn publish(
        &self,
        regarding: &ObjectReference,
        related: Option<ObjectReference>,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: action.to_owned(),
            secondary: related,
        };
        if let Err(err) = self.recorder.publish(&event, regarding).await {
            debug!(reason, error = %err, "event not published");
        }
    }
}

/// A reference to an object for an Event.
pub fn reference(
    api_version: &str,
    kind: &str,
    namespace: &str,
    name: &str,
    uid: Option<&str>,
) -> ObjectReference {
    ObjectReference {
        api_version: Some(api_version.to_owned()),
        kind: Some(kind.to_owned()),
        namespace: Some(namespace.to_owned()),
        name: Some(name.to_owned()),
        uid: uid.map(str::to_owned),
        ..ObjectReference::default()
    }
}
