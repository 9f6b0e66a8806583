//! Test a step without the runner: [`TestHost`] implements
//! [`HostServices`] over plain HTTP(S) against a Kubernetes API server
//! (the dbops sandbox), keeps durable state in memory and records logs,
//! spans and Events for assertions. [`TestHost::run`] goes through the same
//! JSON request/response path as the real ABI.
//!
//! Unlike the runner, this host does not retry failed requests.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::export::{Step, run_json, validate_json};
use crate::protocol::{Outputs, RunRequest, RunResponse, Target, ValidateResponse};
use crate::services::{HostServices, Level, WatchNext};

/// A recorded log line.
#[derive(Debug, Clone)]
pub struct LogLine {
    /// Level.
    pub level: Level,
    /// Message.
    pub message: String,
    /// Fields.
    pub fields: Map<String, Value>,
}

/// A recorded span.
#[derive(Debug, Clone)]
pub struct SpanRecord {
    /// Span id.
    pub id: u64,
    /// Parent id (0 = step span).
    pub parent: u64,
    /// Name.
    pub name: String,
    /// Start and end attributes merged.
    pub attributes: Map<String, Value>,
    /// Error message if it failed.
    pub error: Option<String>,
    /// Whether it ended.
    pub ended: bool,
}

/// A recorded Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// Normal or Warning.
    pub event_type: String,
    /// Reason.
    pub reason: String,
    /// Message.
    pub message: String,
}

enum WatchItem {
    Line(Vec<u8>),
    Closed,
    Failed(String),
}

/// An in-process host for plugin tests.
pub struct TestHost {
    server: String,
    token: Option<String>,
    agent: ureq::Agent,
    watch_agent: ureq::Agent,
    /// Durable state as the journal would keep it.
    pub state: Mutex<Option<Value>>,
    /// Log lines.
    pub logs: Mutex<Vec<LogLine>>,
    /// Spans.
    pub spans: Mutex<Vec<SpanRecord>>,
    /// Events.
    pub events: Mutex<Vec<EventRecord>>,
    /// Every request as "METHOD path".
    pub requests: Mutex<Vec<String>>,
    deadline: Mutex<Option<Instant>>,
    cancelled: AtomicBool,
    dry_run: AtomicBool,
    next_id: AtomicU64,
    watches: Mutex<HashMap<u64, Receiver<WatchItem>>>,
}

impl TestHost {
    /// A host talking to `server` (e.g. `http://127.0.0.1:PORT`) with an optional bearer token.
    pub fn new(server: &str, token: Option<&str>) -> TestHost {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let watch_agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(None)
            .build()
            .into();
        TestHost {
            server: server.trim_end_matches('/').to_owned(),
            token: token.map(str::to_owned),
            agent,
            watch_agent,
            state: Mutex::new(None),
            logs: Mutex::new(Vec::new()),
            spans: Mutex::new(Vec::new()),
            events: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            deadline: Mutex::new(None),
            cancelled: AtomicBool::new(false),
            dry_run: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            watches: Mutex::new(HashMap::new()),
        }
    }

    /// A host from a kubeconfig written by the sandbox (reads the first
    /// `server:` and `token:` lines; not a general kubeconfig parser).
    pub fn from_kubeconfig(path: &std::path::Path) -> std::io::Result<TestHost> {
        let text = std::fs::read_to_string(path)?;
        let field = |name: &str| {
            text.lines()
                .map(str::trim)
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().trim_matches('"').to_owned())
        };
        let server = field("server:").ok_or_else(|| {
            std::io::Error::other(format!("no server: line in {}", path.display()))
        })?;
        Ok(TestHost::new(&server, field("token:").as_deref()))
    }

    /// Set the step deadline from now.
    pub fn set_deadline(&self, timeout: Option<Duration>) {
        *lock(&self.deadline) = timeout.map(|t| Instant::now() + t);
    }

    /// Cancel the run.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    /// Refuse writes, as the runner does in dry run.
    pub fn set_dry_run(&self, on: bool) {
        self.dry_run.store(on, Ordering::SeqCst);
    }

    /// A run request for `target` with `with`, attempt 1.
    pub fn request(step_id: &str, target: Target, with: Value) -> RunRequest {
        RunRequest {
            step_id: step_id.to_owned(),
            run_id: "test-run".to_owned(),
            trace_id: "0123456789abcdef0123456789abcdef".to_owned(),
            attempt: 1,
            dry_run: false,
            target,
            with,
            outputs: Outputs::new(),
        }
    }

    /// Run step `S` through the JSON glue.
    pub fn run<S: Step>(&self, request: &RunRequest) -> RunResponse {
        self.set_dry_run(request.dry_run);
        let json = serde_json::to_string(request).unwrap_or_default();
        let response = run_json::<S>(self, &json, false);
        serde_json::from_str(&response).unwrap_or_else(|e| RunResponse::Error {
            class: crate::ErrorClass::Permanent,
            reason: "MalformedResponse".into(),
            message: format!("{e}: {response}"),
        })
    }

    /// Compensate step `S` through the JSON glue.
    pub fn compensate<S: Step>(&self, request: &RunRequest) -> RunResponse {
        let json = serde_json::to_string(request).unwrap_or_default();
        let response = run_json::<S>(self, &json, true);
        serde_json::from_str(&response).unwrap_or_else(|e| RunResponse::Error {
            class: crate::ErrorClass::Permanent,
            reason: "MalformedResponse".into(),
            message: format!("{e}: {response}"),
        })
    }

    /// Validate a `with` table for step `S`.
    pub fn validate<S: Step>(target: Target, with: Value, deferred: &[&str]) -> ValidateResponse {
        let request = crate::protocol::ValidateRequest {
            step_id: "test".into(),
            target,
            with,
            deferred: deferred.iter().map(|s| (*s).to_owned()).collect(),
        };
        let json = serde_json::to_string(&request).unwrap_or_default();
        serde_json::from_str(&validate_json::<S>(&json)).unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.server, path)
    }

    fn build(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<ureq::http::Request<Vec<u8>>, String> {
        let mut builder = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path));
        if !content_type.is_empty() {
            builder = builder.header("Content-Type", content_type);
        }
        builder = builder.header("Accept", "application/json");
        if let Some(token) = &self.token {
            builder = builder.header("Authorization", format!("Bearer {token}"));
        }
        builder.body(body.to_vec()).map_err(|e| e.to_string())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl HostServices for TestHost {
    fn k8s_request(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), String> {
        lock(&self.requests).push(format!("{method} {path}"));
        if self.dry_run.load(Ordering::SeqCst) && method != "GET" {
            return Err(format!("dry run: refused {method} {path}"));
        }
        let request = self.build(method, path, content_type, body)?;
        let response = self.agent.run(request).map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()
            .map_err(|e| e.to_string())?;
        Ok((status, bytes))
    }

    fn watch_open(&self, path: &str) -> Result<u64, String> {
        let request = self.build("GET", path, "", &[])?;
        let response = self.watch_agent.run(request).map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        if status != 200 {
            let body = response.into_body().read_to_string().unwrap_or_default();
            return Err(format!("watch {path}: HTTP {status}: {body}"));
        }
        let (tx, rx) = sync_channel(1024);
        let reader = response.into_body().into_reader();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines() {
                let item = match line {
                    Ok(l) if l.trim().is_empty() => continue,
                    Ok(l) => WatchItem::Line(l.into_bytes()),
                    Err(e) => WatchItem::Failed(e.to_string()),
                };
                let failed = matches!(item, WatchItem::Failed(_));
                if tx.send(item).is_err() || failed {
                    return;
                }
            }
            let _ = tx.send(WatchItem::Closed);
        });
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        lock(&self.watches).insert(id, rx);
        Ok(id)
    }

    fn watch_next(&self, handle: u64, timeout: Duration) -> WatchNext {
        let watches = lock(&self.watches);
        let Some(rx) = watches.get(&handle) else {
            return WatchNext::Error(format!("unknown watch handle {handle}"));
        };
        match rx.recv_timeout(timeout) {
            Ok(WatchItem::Line(bytes)) => WatchNext::Event(bytes),
            Ok(WatchItem::Closed) | Err(RecvTimeoutError::Disconnected) => WatchNext::Closed,
            Ok(WatchItem::Failed(e)) => WatchNext::Error(e),
            Err(RecvTimeoutError::Timeout) => WatchNext::Timeout,
        }
    }

    fn watch_close(&self, handle: u64) {
        lock(&self.watches).remove(&handle);
    }

    fn log(&self, level: Level, message: &str, fields: &Map<String, Value>) {
        lock(&self.logs).push(LogLine {
            level,
            message: message.to_owned(),
            fields: fields.clone(),
        });
    }

    fn span_start(&self, parent: u64, name: &str, attributes: &Map<String, Value>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        lock(&self.spans).push(SpanRecord {
            id,
            parent,
            name: name.to_owned(),
            attributes: attributes.clone(),
            error: None,
            ended: false,
        });
        id
    }

    fn span_end(&self, span: u64, error: Option<&str>, attributes: &Map<String, Value>) {
        if let Some(record) = lock(&self.spans).iter_mut().find(|s| s.id == span) {
            record.ended = true;
            record.error = error.map(str::to_owned);
            record.attributes.extend(attributes.clone());
        }
    }

    fn state_get(&self) -> Result<Option<Value>, String> {
        Ok(lock(&self.state).clone())
    }

    fn state_put(&self, value: &Value) -> Result<(), String> {
        *lock(&self.state) = Some(value.clone());
        Ok(())
    }

    fn event(&self, event_type: &str, reason: &str, message: &str) -> Result<(), String> {
        lock(&self.events).push(EventRecord {
            event_type: event_type.to_owned(),
            reason: reason.to_owned(),
            message: message.to_owned(),
        });
        Ok(())
    }

    fn deadline_remaining(&self) -> Option<Duration> {
        lock(&self.deadline).map(|d| d.saturating_duration_since(Instant::now()))
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }
}
