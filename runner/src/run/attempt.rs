//! One call into a plugin (`run` or `compensate`) with a deadline.
//!
//! The plugin runs on a blocking thread. At the deadline (or when the run
//! is cancelled) the host first asks it to stop: `is_cancelled` turns true
//! and `deadline_remaining` reaches zero. If it has not returned after
//! [`STOP_GRACE`], the host stops it hard: the attempt is reported failed,
//! the host refuses every further request from that thread, and the thread
//! is abandoned (it cannot be killed; the library stays loaded).

use std::sync::Arc;
use std::time::{Duration, Instant};

use dbops_plugin_sdk::abi::PluginRef;
use dbops_plugin_sdk::protocol::{RunRequest, RunResponse};
use dbops_plugin_sdk::{ErrorClass, Outputs};
use tokio_util::sync::CancellationToken;

use super::host::{StepEnv, StepHost};

/// How long a plugin has to return after being asked to stop.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// Which entry point to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// `run`.
    Run,
    /// `compensate`.
    Compensate,
}

/// The result of one call.
#[derive(Debug, Clone)]
pub enum CallOutcome {
    /// The plugin finished.
    Succeeded {
        /// Its outputs.
        outputs: Outputs,
        /// Its one-line summary.
        summary: String,
    },
    /// The plugin (or the host on its behalf) reported an error.
    Failed {
        /// Retry or not.
        class: ErrorClass,
        /// PascalCase reason.
        reason: String,
        /// Message.
        message: String,
    },
    /// The run was cancelled (signal) while the call ran.
    Interrupted {
        /// What happened.
        message: String,
    },
}

/// What to call, with what.
pub struct Call<'a> {
    /// The plugin.
    pub plugin: PluginRef,
    /// `run` or `compensate`.
    pub kind: CallKind,
    /// The request.
    pub request: &'a RunRequest,
    /// Step index in the pipeline (for durable state).
    pub step_index: usize,
    /// The step span (logs and plugin spans go under it).
    pub span: tracing::Span,
    /// Attempt timeout.
    pub timeout: Duration,
    /// The run's cancellation (signals).
    pub cancel: CancellationToken,
}

enum Stop {
    Deadline,
    Cancelled,
}

/// Run one call to completion, deadline or cancellation.
pub async fn call(env: Arc<StepEnv>, call: Call<'_>) -> CallOutcome {
    let json = match serde_json::to_string(call.request) {
        Ok(json) => json,
        Err(e) => {
            return failed("HostBug", format!("cannot encode the run request: {e}"));
        }
    };
    let now = Instant::now();
    // A timeout too large to represent means "no practical limit".
    let deadline = now
        .checked_add(call.timeout)
        .unwrap_or_else(|| now + Duration::from_secs(10 * 365 * 24 * 3600));
    let attempt_cancel = call.cancel.child_token();
    let host = Arc::new(StepHost::new(
        env,
        call.step_index,
        &call.request.step_id,
        call.span.clone(),
        Some(deadline),
        attempt_cancel,
    ));
    let (plugin, kind, thread_host) = (call.plugin, call.kind, host.clone());
    let mut task = tokio::task::spawn_blocking(move || match kind {
        CallKind::Run => plugin.run(&*thread_host, &json),
        CallKind::Compensate => plugin.compensate(&*thread_host, &json),
    });

    let stop = tokio::select! {
        joined = &mut task => {
            return match decode(joined) {
                // The plugin noticed the deadline itself and gave up.
                CallOutcome::Failed { message, .. } if Instant::now() >= deadline => failed(
                    "DeadlineExceeded",
                    format!(
                        "step did not finish within its timeout of {}: {message}; raise the step's `timeout` if it needs longer",
                        humantime::format_duration(call.timeout)
                    ),
                ),
                outcome => outcome,
            };
        }
        () = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => Stop::Deadline,
        () = call.cancel.cancelled() => Stop::Cancelled,
    };
    // Ask the plugin to stop, then give it a short grace.
    host.cancel.cancel();
    let joined = tokio::time::timeout(STOP_GRACE, &mut task).await;
    let late = match joined {
        Ok(joined) => Some(decode(joined)),
        Err(_) => {
            host.stop();
            None
        }
    };
    match (stop, late) {
        // Finished right at the deadline: keep the result.
        (_, Some(outcome @ CallOutcome::Succeeded { .. })) => outcome,
        (Stop::Cancelled, late) => CallOutcome::Interrupted {
            message: match late {
                Some(CallOutcome::Failed { message, .. }) => {
                    format!("interrupted by a signal: {message}")
                }
                _ if late.is_none() => format!(
                    "interrupted by a signal; the plugin did not stop within {}s and was abandoned",
                    STOP_GRACE.as_secs()
                ),
                _ => "interrupted by a signal".to_owned(),
            },
        },
        (Stop::Deadline, late) => failed(
            "DeadlineExceeded",
            match late {
                Some(CallOutcome::Failed { message, .. }) => format!(
                    "step did not finish within its timeout of {}: {message}; raise the step's `timeout` if it needs longer",
                    humantime::format_duration(call.timeout)
                ),
                _ => format!(
                    "step did not finish within its timeout of {} and did not stop when asked; it was abandoned (its further requests are refused); raise the step's `timeout` if it needs longer",
                    humantime::format_duration(call.timeout)
                ),
            },
        ),
    }
}

fn failed(reason: &str, message: String) -> CallOutcome {
    CallOutcome::Failed {
        class: ErrorClass::Permanent,
        reason: reason.to_owned(),
        message,
    }
}

fn decode(
    joined: Result<Result<String, dbops_plugin_sdk::abi::CallError>, tokio::task::JoinError>,
) -> CallOutcome {
    let text = match joined {
        Ok(Ok(text)) => text,
        Ok(Err(e)) => return failed("PluginCallFailed", e.to_string()),
        Err(e) => {
            return failed(
                "HostPanicked",
                format!("the plugin call failed in the host: {e}"),
            );
        }
    };
    match serde_json::from_str::<RunResponse>(&text) {
        Ok(RunResponse::Ok { outputs, summary }) => CallOutcome::Succeeded { outputs, summary },
        Ok(RunResponse::Error {
            class,
            reason,
            message,
        }) => CallOutcome::Failed {
            class,
            reason,
            message,
        },
        Err(e) => failed(
            "MalformedResponse",
            format!(
                "the plugin returned a malformed response ({e}): {}",
                text.chars().take(200).collect::<String>()
            ),
        ),
    }
}
