//! Kubernetes Events (`events.k8s.io/v1`) the stand-ins emit like their
//! real counterparts. Best effort: a failed publish is logged, never
//! retried, never fails a reconcile. Like the real components' event
//! broadcaster, publishing is asynchronous: an Event is queued and one
//! writer task per controller publishes the queue in order, so a
//! controller never waits for its Events before its next API call.

use std::sync::{Arc, OnceLock};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tokio::sync::mpsc;
use tracing::debug;

/// Publishes Events as one reporting controller.
#[derive(Clone)]
pub struct Events {
    recorder: Recorder,
    /// The writer task's queue, started on the first Event (on the runtime).
    queue: Arc<OnceLock<mpsc::UnboundedSender<(Event, ObjectReference)>>>,
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
            queue: Arc::new(OnceLock::new()),
        }
    }

    /// A `Normal` event about `regarding` (and the `related` object it
    /// affected, which also keeps events about different objects apart).
    pub fn normal(
        &self,
        regarding: &ObjectReference,
        related: Option<ObjectReference>,
        reason: &str,
        action: &str,
        note: String,
    ) {
        self.publish(regarding, related, EventType::Normal, reason, action, note);
    }

    /// A `Warning` event about `regarding`.
    pub fn warning(
        &self,
        regarding: &ObjectReference,
        related: Option<ObjectReference>,
        reason: &str,
        action: &str,
        note: String,
    ) {
        self.publish(regarding, related, EventType::Warning, reason, action, note);
    }

    fn publish(
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
        let queue = self.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::unbounded_channel();
            tokio::spawn(write_events(self.recorder.clone(), receiver));
            sender
        });
        if queue.send((event, regarding.clone())).is_err() {
            debug!(reason, "event not published: the writer stopped");
        }
    }
}

/// Publishes queued Events in order until every emitter is dropped.
async fn write_events(
    recorder: Recorder,
    mut queue: mpsc::UnboundedReceiver<(Event, ObjectReference)>,
) {
    while let Some((event, regarding)) = queue.recv().await {
        if let Err(err) = recorder.publish(&event, &regarding).await {
            debug!(reason = %event.reason, error = %err, "event not published");
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
