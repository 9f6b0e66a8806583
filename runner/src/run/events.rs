//! Kubernetes Events on the target (core/v1, so `kubectl describe` shows
//! them): one per step outcome plus the plugins' own. Each carries the run
//! id and trace id in its annotations and at the end of its message, so a
//! user can jump from `kubectl describe` to the trace.
//!
//! The regarding object is the database custom resource when the target
//! names one, else the workload. In a dry run nothing is written; the Event
//! is logged instead.

use chrono::{SecondsFormat, Utc};
use dbops_plugin_sdk::Target;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::cluster::{Cluster, ClusterError};

/// Maximum message length (the API server's limit is 1 KiB for notes).
const MAX_MESSAGE: usize = 1024;

/// Emits Events for one run.
pub struct EventSink {
    cluster: Option<Cluster>,
    target: Target,
    run_id: String,
    trace_id: String,
    regarding: OnceCell<Value>,
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
    /// Events for `target`; `cluster` is `None` in a dry run.
    pub fn new(
        cluster: Option<Cluster>,
        target: Target,
        run_id: &str,
        trace_id: &str,
    ) -> EventSink {
        EventSink {
            cluster,
            target,
            run_id: run_id.to_owned(),
            trace_id: trace_id.to_owned(),
            regarding: OnceCell::new(),
        }
    }

    /// The object reference of the target, with its uid when readable.
    async fn regarding(&self, cluster: &Cluster) -> Value {
        self.regarding
            .get_or_init(|| async {
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
                if let Ok(Some(object)) = cluster.get(&path).await
                    && let Some(uid) = object.pointer("/metadata/uid")
                {
                    reference["uid"] = uid.clone();
                }
                reference
            })
            .await
            .clone()
    }

    /// Emit one Event. `event_type` is `Normal` or `Warning`; `reason` PascalCase.
    pub async fn emit(
        &self,
        event_type: &str,
        reason: &str,
        message: &str,
        step: Option<&str>,
    ) -> Result<(), ClusterError> {
        let note = truncate(
            &format!("{message} (run {}, trace {})", self.run_id, self.trace_id),
            MAX_MESSAGE,
        );
        let Some(cluster) = &self.cluster else {
            tracing::info!(event_type, reason, "dry run: would emit Event: {note}");
            return Ok(());
        };
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        let name = format!("{}.dbops.{:016x}", self.target.name, rand::random::<u64>());
        let body = json!({
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
            "involvedObject": self.regarding(cluster).await,
            "reason": reason,
            "message": note,
            "type": if event_type == "Warning" { "Warning" } else { "Normal" },
            "source": {"component": "dbops"},
            "reportingComponent": "dbops",
            "reportingInstance": self.run_id,
            "action": step.unwrap_or("Run"),
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        });
        let path = format!("/api/v1/namespaces/{}/events", self.target.namespace);
        cluster.json("POST", &path, Some(&body)).await.map(|_| ())
    }

    /// Emit, logging (not returning) a failure: Events are best effort.
    pub async fn emit_logged(
        &self,
        event_type: &str,
        reason: &str,
        message: &str,
        step: Option<&str>,
    ) {
        if let Err(e) = self.emit(event_type, reason, message, step).await {
            tracing::warn!("could not emit Event {reason}: {e}");
        }
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
