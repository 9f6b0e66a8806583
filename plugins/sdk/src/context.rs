//! [`Context`]: what a step sees while it runs.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::{StepError, StepResult};
use crate::kube::Kube;
use crate::protocol::{Outputs, RunRequest, Target};
use crate::services::{HostServices, Level};

/// Kubernetes Event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Progress.
    Normal,
    /// Something went wrong.
    Warning,
}

/// The step's view of the run: its input, the cluster, logs, spans, durable
/// state, Events, deadline and cancellation.
pub struct Context<'h> {
    host: &'h dyn HostServices,
    request: RunRequest,
}

impl<'h> Context<'h> {
    /// Build a context (done by the export glue and the test harness).
    pub fn new(host: &'h dyn HostServices, request: RunRequest) -> Context<'h> {
        Context { host, request }
    }

    /// The step's id in the pipeline.
    pub fn step_id(&self) -> &str {
        &self.request.step_id
    }

    /// The run id.
    pub fn run_id(&self) -> &str {
        &self.request.run_id
    }

    /// The run's trace id (hex), for messages.
    pub fn trace_id(&self) -> &str {
        &self.request.trace_id
    }

    /// 1 on the first attempt; more on retries or after a resume.
    pub fn attempt(&self) -> u32 {
        self.request.attempt
    }

    /// Whether this is a dry run (no writes; the host refuses them anyway).
    pub fn dry_run(&self) -> bool {
        self.request.dry_run
    }

    /// The pipeline's target.
    pub fn target(&self) -> &Target {
        &self.request.target
    }

    /// In `compensate`: the outputs the step produced when it ran.
    pub fn outputs(&self) -> &Outputs {
        &self.request.outputs
    }

    /// The Kubernetes API, through the host.
    pub fn kube(&self) -> Kube<'h> {
        Kube::new(self.host)
    }

    /// The raw host services (for helpers that take `&dyn HostServices`).
    pub fn host(&self) -> &'h dyn HostServices {
        self.host
    }

    // --- logs -----------------------------------------------------------

    /// Log at a level with structured fields.
    pub fn log(&self, level: Level, message: &str, fields: &[(&str, Value)]) {
        let map: Map<String, Value> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        self.host.log(level, message, &map);
    }

    /// Progress a user wants to see.
    pub fn info(&self, message: &str) {
        self.log(Level::Info, message, &[]);
    }

    /// Something unexpected that did not stop the step.
    pub fn warn(&self, message: &str) {
        self.log(Level::Warn, message, &[]);
    }

    /// Diagnostics.
    pub fn debug(&self, message: &str) {
        self.log(Level::Debug, message, &[]);
    }

    // --- spans ----------------------------------------------------------

    /// Start a child span of the step span; it ends when dropped (ok) or
    /// with [`Span::fail`].
    pub fn span(&self, name: &str, attributes: &[(&str, Value)]) -> Span<'h> {
        Span::start(self.host, 0, name, attributes)
    }

    // --- durable state --------------------------------------------------

    /// The state this step saved earlier in this run (survives a restart of
    /// the runner). Never store secrets here: it is kept in the journal.
    pub fn state<T: DeserializeOwned>(&self) -> StepResult<Option<T>> {
        let value = self.host.state_get().map_err(|e| {
            StepError::transient("StateUnavailable", format!("cannot read step state: {e}"))
        })?;
        match value {
            None => Ok(None),
            Some(v) => serde_json::from_value(v).map(Some).map_err(|e| {
                StepError::permanent(
                    "StateCorrupt",
                    format!(
                        "the saved state of step {} does not match this plugin version: {e}",
                        self.step_id()
                    ),
                )
            }),
        }
    }

    /// Save durable state; returns once it is in the journal.
    pub fn save_state<T: Serialize>(&self, state: &T) -> StepResult<()> {
        let value = serde_json::to_value(state).map_err(|e| {
            StepError::permanent(
                "StateUnserializable",
                format!("cannot serialize step state: {e}"),
            )
        })?;
        self.host.state_put(&value).map_err(|e| {
            StepError::transient("StateUnavailable", format!("cannot save step state: {e}"))
        })
    }

    // --- events ---------------------------------------------------------

    /// Emit a Kubernetes Event on the target. Failure to emit is logged,
    /// never fatal.
    pub fn event(&self, event_type: EventType, reason: &str, message: &str) {
        let t = match event_type {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        };
        if let Err(e) = self.host.event(t, reason, message) {
            self.warn(&format!("could not emit event {reason}: {e}"));
        }
    }

    // --- deadline and cancellation ---------------------------------------

    /// Time left before the step deadline (None: no deadline).
    pub fn remaining(&self) -> Option<Duration> {
        self.host.deadline_remaining()
    }

    /// The instant of the step deadline, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.remaining().map(|d| Instant::now() + d)
    }

    /// Whether the run is being cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.host.is_cancelled()
    }

    /// Fail fast when cancelled or past the deadline.
    pub fn check_deadline(&self) -> StepResult<()> {
        if self.is_cancelled() {
            return Err(StepError::permanent("Cancelled", "the run was cancelled"));
        }
        if self.remaining() == Some(Duration::ZERO) {
            return Err(StepError::permanent(
                "DeadlineExceeded",
                "the step deadline passed",
            ));
        }
        Ok(())
    }

    /// Sleep, waking early (with an error) on cancellation or deadline.
    /// For backoff between attempts, never for waiting on cluster state
    /// (use watches: [`crate::kube::Api::wait_until`]).
    pub fn sleep(&self, duration: Duration) -> StepResult<()> {
        let until = Instant::now() + duration;
        loop {
            self.check_deadline()?;
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            let slice = (until - now).min(Duration::from_millis(50));
            let slice = match self.remaining() {
                Some(r) => slice.min(r),
                None => slice,
            };
            std::thread::sleep(slice);
        }
    }
}

/// A child span; ends on drop (ok) unless [`Span::fail`] or [`Span::end`] is called.
pub struct Span<'h> {
    host: &'h dyn HostServices,
    id: u64,
    attributes: Map<String, Value>,
    ended: bool,
}

impl<'h> Span<'h> {
    fn start(
        host: &'h dyn HostServices,
        parent: u64,
        name: &str,
        attributes: &[(&str, Value)],
    ) -> Span<'h> {
        let map: Map<String, Value> = attributes
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let id = host.span_start(parent, name, &map);
        Span {
            host,
            id,
            attributes: Map::new(),
            ended: false,
        }
    }

    /// Start a grandchild span.
    pub fn child(&self, name: &str, attributes: &[(&str, Value)]) -> Span<'h> {
        Span::start(self.host, self.id, name, attributes)
    }

    /// Add an attribute recorded when the span ends.
    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.attributes.insert(key.to_owned(), value.into());
    }

    /// End successfully.
    pub fn end(mut self) {
        self.finish(None);
    }

    /// End with an error status and message.
    pub fn fail(mut self, error: &str) {
        self.finish(Some(error));
    }

    fn finish(&mut self, error: Option<&str>) {
        if !self.ended {
            self.ended = true;
            self.host.span_end(self.id, error, &self.attributes);
        }
    }
}

impl Drop for Span<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.finish(Some("panicked"));
        } else {
            self.finish(None);
        }
    }
}
