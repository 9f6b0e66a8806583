//! Kubernetes Events on the target (core/v1, so `kubectl describe` shows
//! them): one per step outcome plus the plugins' own. Each carries the run
//! id and trace id in its annotations and at the end of its message, so a
//! user can jump from `kubectl describe` to the trace.
//!
//! The regarding object is the database custom resource when the target
//! names one, else the workload. In a dry run nothing is written; the Event
//! is logged instead. Events are queued and written by a background task
//! (in order), so they never delay a step; the run waits for the queue
//! before it ends.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use dbops_plugin_sdk::Target;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::cluster::Cluster;

/// Maximum message length (the API server's limit is 1 KiB for notes).
const MAX_MESSAGE: usize = 1024;

/// How long the end of a run waits for queued Events to be written.
const FLUSH_LIMIT: Duration = Duration::from_secs(10);

/// Emits Events for one run. Events are best effort and off the critical
/// path: [`EventSink::emit`] queues the Event (its timestamp taken then)
/// and one writer task POSTs the queue in order; a failure is logged as a
/// warning. [`EventSink::finish`] waits for the queue at the end of a run.
pub struct EventSink {
    run_id: String,
    trace_id: String,
    /// A dry run logs Events instead of writing them.
    dry_run: bool,
    /// `None` in a dry run and after `finish`.
    queue: Mutex<Option<mpsc::UnboundedSender<Pending>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// One queued Event.
struct Pending {
    event_type: &'static str,
    reason: String,
    note: String,
    step: Option<String>,
    at: String,
}

fn truncate(message: &str, max: usize) -> String {
    if message.len() <= max {
        return message.to_owned();
    }
    let mut end = max.saturating_sub(3);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &message[..end])
}

impl EventSink {
    /// Events for `target`; `cluster` is `None` in a dry run. Must be
    /// called on the tokio runtime (it starts the writer task).
    pub fn new(
        cluster: Option<Cluster>,
        target: Target,
        run_id: &str,
        trace_id: &str,
    ) -> EventSink {
        let (queue, writer) = match cluster {
            Some(cluster) => {
                let (sender, receiver) = mpsc::unbounded_channel();
                let writer = Writer {
                    cluster,
                    target: target.clone(),
                    run_id: run_id.to_owned(),
                    trace_id: trace_id.to_owned(),
                };
                (Some(sender), Some(tokio::spawn(writer.run(receiver))))
            }
            None => (None, None),
        };
        EventSink {
            dry_run: queue.is_none(),
            run_id: run_id.to_owned(),
            trace_id: trace_id.to_owned(),
            queue: Mutex::new(queue),
            writer: Mutex::new(writer),
        }
    }

    /// Queue one Event. `event_type` is `Normal` or `Warning`; `reason`
    /// PascalCase; `step` the step id, if any.
    pub fn emit(&self, event_type: &str, reason: &str, message: &str, step: Option<&str>) {
        let note = truncate(
            &format!("{message} (run {}, trace {})", self.run_id, self.trace_id),
            MAX_MESSAGE,
        );
        let event_type = if event_type == "Warning" {
            "Warning"
        } else {
            "Normal"
        };
        if self.dry_run {
            tracing::info!(event_type, reason, "dry run: would emit Event: {note}");
            return;
        }
        let queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let Some(queue) = queue.as_ref() else {
            tracing::warn!("Event {reason} came after the end of the run; not written: {note}");
            return;
        };
        let pending = Pending {
            event_type,
            reason: reason.to_owned(),
            note,
            step: step.map(str::to_owned),
            at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        };
        if queue.send(pending).is_err() {
            tracing::warn!("could not emit Event {reason}: the Event writer has stopped");
        }
    }

    /// Stop queueing and wait (at most [`FLUSH_LIMIT`]) until every queued
    /// Event is written. Later `emit` calls are logged only.
    pub async fn finish(&self) {
        drop(self.queue.lock().unwrap_or_else(|p| p.into_inner()).take());
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(writer) = writer
            && tokio::time::timeout(FLUSH_LIMIT, writer).await.is_err()
        {
            tracing::warn!(
                "some Events of this run were not written within {}s (the API server is slow or unreachable)",
                FLUSH_LIMIT.as_secs()
            );
        }
    }
}

/// The task that writes a run's queued Events, in order.
struct Writer {
    cluster: Cluster,
    target: Target,
    run_id: String,
    trace_id: String,
}

impl Writer {
    async fn run(self, mut queue: mpsc::UnboundedReceiver<Pending>) {
        let mut regarding: Option<Value> = None;
        while let Some(event) = queue.recv().await {
            if regarding.is_none() {
                regarding = Some(self.regarding().await);
            }
            let body = self.body(&event, regarding.as_ref());
            let path = format!("/api/v1/namespaces/{}/events", self.target.namespace);
            if let Err(e) = self.cluster.json("POST", &path, Some(&body)).await {
                tracing::warn!("could not emit Event {}: {e}", event.reason);
            }
        }
    }

    /// The object reference of the target, with its uid when readable.
    /// The regarding object is the database custom resource when the
    /// target names one, else the workload.
    async fn regarding(&self) -> Value {
        let t = &self.target;
        let (api_version, kind, name, path) = match &t.database {
            Some(db) => (
                db.api_version.clone(),
                db.kind.clone(),
                db.name.clone(),
                format!(
                    "/apis/{}/namespaces/{}/{}/{}",
                    db.api_version, t.namespace, db.plural, db.name
                ),
            ),
            None => {
                let plural = format!("{}s", t.workload.kind.to_ascii_lowercase());
                let prefix = if t.workload.api_version.contains('/') {
                    format!("/apis/{}", t.workload.api_version)
                } else {
                    format!("/api/{}", t.workload.api_version)
                };
                (
                    t.workload.api_version.clone(),
                    t.workload.kind.clone(),
                    t.workload.name.clone(),
                    format!(
                        "{prefix}/namespaces/{}/{plural}/{}",
                        t.namespace, t.workload.name
                    ),
                )
            }
        };
        let mut reference = json!({
            "apiVersion": api_version,
            "kind": kind,
            "name": name,
            "namespace": t.namespace,
        });
        if let Ok(Some(object)) = self.cluster.get(&path).await
            && let Some(uid) = object.pointer("/metadata/uid")
        {
            reference["uid"] = uid.clone();
        }
        reference
    }

    fn body(&self, event: &Pending, regarding: Option<&Value>) -> Value {
        let name = format!("{}.dbops.{:016x}", self.target.name, rand::random::<u64>());
        let step = event.step.as_deref();
        json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": name,
                "namespace": self.target.namespace,
                "labels": {"app.kubernetes.io/managed-by": "dbops"},
                "annotations": {
                    "dbops.io/run-id": self.run_id,
                    "dbops.io/trace-id": self.trace_id,
                    "dbops.io/step": step.unwrap_or(""),
                },
            },
            "involvedObject": regarding,
            "reason": event.reason,
            "message": event.note,
            "type": event.event_type,
            "source": {"component": "dbops"},
            "reportingComponent": "dbops",
            "reportingInstance": self.run_id,
            "action": step.unwrap_or("Run"),
            "firstTimestamp": event.at,
            "lastTimestamp": event.at,
            "count": 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncates_on_char_boundary() {
        assert_eq!(truncate("abc", 10), "abc");
        let long = "é".repeat(600);
        let t = truncate(&long, 1024);
        assert!(t.len() <= 1024 && t.ends_with("..."));
    }
}
