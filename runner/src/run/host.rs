//! [`StepHost`]: the host services one plugin call sees, implemented on the
//! host's tokio runtime. The plugin runs on a blocking thread; each callback
//! blocks that thread on a future running on the runtime (`Handle::block_on`
//! is allowed there), so plugins need neither tokio nor kube.
//!
//! - Kubernetes requests go through the host's [`kube::Client`] (its
//!   connection pool and credentials). In a dry run every non-GET request
//!   is refused.
//! - Watches are streams read by a task into a channel; `watch_next` waits
//!   on the channel with the plugin's timeout.
//! - Logs become tracing events inside the step span; child spans are
//!   tracing spans under it (exported with the run's trace).
//! - Durable state is read from and written to the run journal.
//! - After a hard stop ([`StepHost::stop`]) every callback that could change
//!   anything is refused: an abandoned plugin thread cannot touch the
//!   cluster or the journal any more.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use dbops_plugin_sdk::services::{HostServices, Level, WatchNext};
use futures::StreamExt;
use serde_json::{Map, Value};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::cluster::Cluster;
use super::events::EventSink;
use super::journal::Journal;
use crate::telemetry;

enum WatchItem {
    Line(Vec<u8>),
    Failed(String),
}

struct Watch {
    rx: Option<mpsc::Receiver<WatchItem>>,
    task: tokio::task::AbortHandle,
}

/// What a step call needs from the run.
pub struct StepEnv {
    /// Runtime the callbacks run on.
    pub rt: Handle,
    /// API access.
    pub cluster: Cluster,
    /// Dry run: writes are refused.
    pub dry_run: bool,
    /// The run journal.
    pub journal: Arc<Journal>,
    /// Events on the target.
    pub events: Arc<EventSink>,
}

/// Host services for one plugin call (one attempt of one step).
pub struct StepHost {
    env: Arc<StepEnv>,
    step_index: usize,
    step_id: String,
    span: tracing::Span,
    deadline: Option<Instant>,
    /// Cancelled to ask the plugin to stop (deadline, signal).
    pub cancel: CancellationToken,
    stopped: AtomicBool,
    next_id: AtomicU64,
    spans: Mutex<HashMap<u64, tracing::Span>>,
    watches: Mutex<HashMap<u64, Watch>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl StepHost {
    /// A host for one call of step `step_index`, inside `span`.
    pub fn new(
        env: Arc<StepEnv>,
        step_index: usize,
        step_id: &str,
        span: tracing::Span,
        deadline: Option<Instant>,
        cancel: CancellationToken,
    ) -> StepHost {
        StepHost {
            env,
            step_index,
            step_id: step_id.to_owned(),
            span,
            deadline,
            cancel,
            stopped: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            spans: Mutex::new(HashMap::new()),
            watches: Mutex::new(HashMap::new()),
        }
    }

    /// Hard stop: refuse every further request, close watches and spans.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.cancel.cancel();
        for (_, watch) in lock(&self.watches).drain() {
            watch.task.abort();
        }
        lock(&self.spans).clear();
    }

    /// Only paths on the API server: never an absolute URL that would send
    /// the host's credentials elsewhere.
    fn check_path(path: &str) -> Result<(), String> {
        if path.starts_with('/') && !path.starts_with("//") {
            Ok(())
        } else {
            Err(format!(
                "request path {path:?} refused: plugins may only send paths on the API server, starting with '/'"
            ))
        }
    }

    fn refused(&self) -> Option<String> {
        self.stopped.load(Ordering::SeqCst).then(|| {
            format!(
                "step {} was stopped by the host (deadline or cancellation); request refused",
                self.step_id
            )
        })
    }
}

impl Drop for StepHost {
    fn drop(&mut self) {
        for (_, watch) in lock(&self.watches).drain() {
            watch.task.abort();
        }
    }
}

macro_rules! log_at {
    ($level:expr, $($rest:tt)*) => {
        match $level {
            Level::Debug => tracing::debug!($($rest)*),
            Level::Info => tracing::info!($($rest)*),
            Level::Warn => tracing::warn!($($rest)*),
            Level::Error => tracing::error!($($rest)*),
        }
    };
}

impl HostServices for StepHost {
    fn k8s_request(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), String> {
        if let Some(refused) = self.refused() {
            return Err(refused);
        }
        Self::check_path(path)?;
        let method = method.to_ascii_uppercase();
        if self.env.dry_run && method != "GET" {
            return Err(format!(
                "dry run: refused {method} {path} (dry runs do not write)"
            ));
        }
        let cluster = self.env.cluster.clone();
        let (path, content_type, body) = (path.to_owned(), content_type.to_owned(), body.to_vec());
        self.env
            .rt
            .block_on(async move { cluster.raw(&method, &path, &content_type, body).await })
            .map_err(|e| e.to_string())
    }

    fn watch_open(&self, path: &str) -> Result<u64, String> {
        if let Some(refused) = self.refused() {
            return Err(refused);
        }
        Self::check_path(path)?;
        let cluster = self.env.cluster.clone();
        let owned = path.to_owned();
        let stream = self
            .env
            .rt
            .block_on(async move { cluster.watch_lines(&owned).await })
            .map_err(|e| e.to_string())?;
        let (tx, rx) = mpsc::channel(1024);
        let task = self.env.rt.spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(line) = stream.next().await {
                let item = match line {
                    Ok(l) => WatchItem::Line(l.into_bytes()),
                    Err(e) => WatchItem::Failed(e.to_string()),
                };
                let failed = matches!(item, WatchItem::Failed(_));
                if tx.send(item).await.is_err() || failed {
                    return;
                }
            }
        });
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        lock(&self.watches).insert(
            id,
            Watch {
                rx: Some(rx),
                task: task.abort_handle(),
            },
        );
        Ok(id)
    }

    fn watch_next(&self, handle: u64, timeout: Duration) -> WatchNext {
        if let Some(refused) = self.refused() {
            return WatchNext::Error(refused);
        }
        // Take the receiver out while waiting so other callbacks are not blocked.
        let Some(mut rx) = lock(&self.watches)
            .get_mut(&handle)
            .and_then(|w| w.rx.take())
        else {
            return WatchNext::Error(format!("unknown or busy watch handle {handle}"));
        };
        let next = self
            .env
            .rt
            .block_on(async { tokio::time::timeout(timeout, rx.recv()).await });
        if let Some(watch) = lock(&self.watches).get_mut(&handle) {
            watch.rx = Some(rx);
        }
        match next {
            Ok(Some(WatchItem::Line(bytes))) => WatchNext::Event(bytes),
            Ok(Some(WatchItem::Failed(e))) => WatchNext::Error(e),
            Ok(None) => WatchNext::Closed,
            Err(_) => WatchNext::Timeout,
        }
    }

    fn watch_close(&self, handle: u64) {
        if let Some(watch) = lock(&self.watches).remove(&handle) {
            watch.task.abort();
        }
    }

    fn log(&self, level: Level, message: &str, fields: &Map<String, Value>) {
        let _entered = self.span.enter();
        if fields.is_empty() {
            log_at!(level, "[{}] {message}", self.step_id);
        } else {
            let fields = Value::Object(fields.clone()).to_string();
            log_at!(level, fields = %fields, "[{}] {message}", self.step_id);
        }
    }

    fn span_start(&self, parent: u64, name: &str, attributes: &Map<String, Value>) -> u64 {
        let mut spans = lock(&self.spans);
        let parent_span = spans.get(&parent).unwrap_or(&self.span).clone();
        let span = tracing::info_span!(
            parent: &parent_span,
            "plugin.span",
            otel.name = %name,
            step.id = %self.step_id,
        );
        for (key, value) in attributes {
            telemetry::set_json_attribute(&span, key, value);
        }
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        spans.insert(id, span);
        id
    }

    fn span_end(&self, span: u64, error: Option<&str>, attributes: &Map<String, Value>) {
        let Some(span) = lock(&self.spans).remove(&span) else {
            return;
        };
        for (key, value) in attributes {
            telemetry::set_json_attribute(&span, key, value);
        }
        if let Some(error) = error {
            telemetry::set_error(&span, error);
        }
        drop(span);
    }

    fn state_get(&self) -> Result<Option<Value>, String> {
        let journal = self.env.journal.clone();
        let index = self.step_index;
        Ok(self.env.rt.block_on(async move {
            journal
                .snapshot()
                .await
                .steps
                .get(index)
                .and_then(|s| s.plugin_state.clone())
        }))
    }

    fn state_put(&self, value: &Value) -> Result<(), String> {
        if let Some(refused) = self.refused() {
            return Err(refused);
        }
        let journal = self.env.journal.clone();
        let index = self.step_index;
        let value = value.clone();
        self.env
            .rt
            .block_on(async move {
                journal
                    .update(|record| {
                        if let Some(step) = record.steps.get_mut(index) {
                            step.plugin_state = Some(value);
                        }
                    })
                    .await
            })
            .map_err(|e| e.to_string())
    }

    fn event(&self, event_type: &str, reason: &str, message: &str) -> Result<(), String> {
        if let Some(refused) = self.refused() {
            return Err(refused);
        }
        // Queued: written in the background, in order (see EventSink).
        self.env
            .events
            .emit(event_type, reason, message, Some(&self.step_id));
        Ok(())
    }

    fn deadline_remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    fn is_cancelled(&self) -> bool {
        // The deadline is reported by `deadline_remaining` reaching zero,
        // so the plugin can tell a timeout from a cancellation.
        self.cancel.is_cancelled() || self.stopped.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::StepHost;

    #[test]
    fn only_api_server_paths_are_allowed() {
        StepHost::check_path("/api/v1/namespaces/a/pods?watch=true").expect("api path");
        for bad in ["http://example.com/api", "//example.com/api", "api/v1"] {
            assert!(StepHost::check_path(bad).is_err(), "{bad}");
        }
    }
}
