//! The host's services as a Rust trait.
//!
//! Plugins see the host through this trait: in a loaded plugin it is backed
//! by the C table ([`crate::abi::VtableHost`]); in plugin tests by
//! [`crate::testing::TestHost`] (feature `testing`); the runner implements it
//! on its tokio runtime and hands it over with
//! [`crate::abi::HostApi::for_services`].

use std::time::Duration;

use serde_json::{Map, Value};

/// Severity of a plugin log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub enum Level {
    /// Detailed diagnostics.
    Debug = 1,
    /// Progress a user wants to see.
    Info = 2,
    /// Something unexpected that did not stop the step.
    Warn = 3,
    /// Something failed.
    Error = 4,
}

impl Level {
    /// Decode the ABI value; unknown values are treated as `Info`.
    pub fn from_u32(v: u32) -> Level {
        match v {
            1 => Level::Debug,
            3 => Level::Warn,
            4 => Level::Error,
            _ => Level::Info,
        }
    }
}

/// Result of waiting for the next watch event.
#[derive(Debug)]
pub enum WatchNext {
    /// One watch event, as the JSON object the API server sent.
    Event(Vec<u8>),
    /// Nothing arrived in time.
    Timeout,
    /// The stream ended; reopen from the last seen resourceVersion.
    Closed,
    /// The watch failed.
    Error(String),
}

/// Everything a plugin may ask of the host while a step runs.
pub trait HostServices {
    /// One Kubernetes API request; `path` includes the query string.
    /// Returns the HTTP status and body, or a transport/refusal message.
    fn k8s_request(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), String>;
    /// Open a watch; `path` is a list path whose query has `watch=true`.
    fn watch_open(&self, path: &str) -> Result<u64, String>;
    /// Wait up to `timeout` for the next event of a watch.
    fn watch_next(&self, handle: u64, timeout: Duration) -> WatchNext;
    /// Close a watch.
    fn watch_close(&self, handle: u64);
    /// A log line in the step span.
    fn log(&self, level: Level, message: &str, fields: &Map<String, Value>);
    /// Start a child span (parent 0 = the step span); returns its id.
    fn span_start(&self, parent: u64, name: &str, attributes: &Map<String, Value>) -> u64;
    /// End a span, failed when `error` is set.
    fn span_end(&self, span: u64, error: Option<&str>, attributes: &Map<String, Value>);
    /// The step's durable state from the run journal.
    fn state_get(&self) -> Result<Option<Value>, String>;
    /// Replace the step's durable state (persisted before returning).
    fn state_put(&self, value: &Value) -> Result<(), String>;
    /// A Kubernetes Event on the target.
    fn event(&self, event_type: &str, reason: &str, message: &str) -> Result<(), String>;
    /// Time left before the step deadline.
    fn deadline_remaining(&self) -> Option<Duration>;
    /// Whether the run is being cancelled.
    fn is_cancelled(&self) -> bool;
}
