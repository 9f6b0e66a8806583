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

/// Events published through one [`Recorder`] before the writer replaces
/// it. kube's Recorder remembers every Event of the last 6 minutes to
/// count repeats into a series, and scans all of them on each publish: in
/// the fleet benchmark (thousands of pod Events a minute) that scan was 2%
/// of the sandbox's CPU. A fresh Recorder forgets older Events, as
/// client-go's bounded event cache evicts them: a repeat after that many
/// Events starts a new Event instead of counting into the old series.
const EVENTS_PER_RECORDER: usize = 512;

/// Publishes Events as one reporting controller.
#[derive(Clone)]
pub struct Events {
    client: Client,
    reporter: Reporter,
    /// [`EVENTS_PER_RECORDER`] (smaller in tests).
    per_recorder: usize,
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
            client,
            reporter,
            per_recorder: EVENTS_PER_RECORDER,
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
            tokio::spawn(write_events(
                self.client.clone(),
                self.reporter.clone(),
                self.per_recorder,
                receiver,
            ));
            sender
        });
        if queue.send((event, regarding.clone())).is_err() {
            debug!(reason, "event not published: the writer stopped");
        }
    }
}

/// Publishes queued Events in order until every emitter is dropped, with
/// a fresh Recorder every `per_recorder` Events.
async fn write_events(
    client: Client,
    reporter: Reporter,
    per_recorder: usize,
    mut queue: mpsc::UnboundedReceiver<(Event, ObjectReference)>,
) {
    let mut recorder = Recorder::new(client.clone(), reporter.clone());
    let mut published = 0;
    while let Some((event, regarding)) = queue.recv().await {
        if published == per_recorder {
            recorder = Recorder::new(client.clone(), reporter.clone());
            published = 0;
        }
        published += 1;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Sandbox, SandboxConfig};
    use k8s_openapi::api::events::v1::Event as K8sEvent;
    use kube::Api;

    /// Repeats count into one Event's series until the writer changes
    /// Recorder; after that a repeat is a new Event.
    #[tokio::test]
    async fn repeats_form_a_series_until_the_recorder_is_replaced() {
        let config = SandboxConfig {
            controllers: false,
            ..SandboxConfig::default()
        };
        let sandbox = Sandbox::start(config).await.expect("sandbox");
        let ctx = super::super::ControllerContext {
            base_url: sandbox.https_url(),
            token: sandbox.admin_token(),
            kubelet: Default::default(),
            state_dir: sandbox.state_dir().to_owned(),
        };
        let client = super::super::client(&ctx).expect("client");
        let mut events = Events::new(client.clone(), "test-controller");
        events.per_recorder = 3;
        let pod = reference("v1", "Pod", "default", "db-0", Some("uid-0"));
        let other = reference("v1", "Pod", "default", "db-1", Some("uid-1"));
        let api: Api<K8sEvent> = Api::namespaced(client, "default");
        let count = |reason: &'static str| {
            let api = api.clone();
            async move {
                let list = api.list(&Default::default()).await.expect("list");
                list.items
                    .iter()
                    .filter(|e| e.reason.as_deref() == Some(reason))
                    .count()
            }
        };
        // Publishes 1-3 share the first Recorder: the repeat is a series.
        events.warning(&pod, None, "BackOff", "Restart", "back-off".into());
        events.normal(&other, None, "Started", "Start", "started".into());
        events.warning(&pod, None, "BackOff", "Restart", "back-off".into());
        // Publish 4 comes from a fresh Recorder: a new Event.
        events.warning(&pod, None, "BackOff", "Restart", "back-off".into());
        events.normal(&other, None, "Done", "Mark", "all published".into());
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while count("Done").await == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "events not published"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(count("BackOff").await, 2);
    }
}
