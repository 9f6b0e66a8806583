//! The retry loop of one step (or compensation): attempts until success,
//! a permanent error, the step's retry budget, or cancellation, with
//! exponential backoff and jitter between attempts.

use std::time::Duration;

use chrono::Utc;
use dbops_plugin_sdk::protocol::RunRequest;
use dbops_plugin_sdk::{ErrorClass, Outputs};
use rand::Rng;
use tokio_util::sync::CancellationToken;

use super::attempt::{self, Call, CallKind, CallOutcome};
use super::executor::Executor;
use super::journal::StepState;
use crate::pipeline::{RetryPolicy, StepSpec};

/// Exponential backoff with jitter before attempt `tries + 1`: between half
/// and all of `initial * 2^(tries-1)`, capped at `max`.
pub fn backoff(policy: &RetryPolicy, tries: u32) -> Duration {
    let exp = policy
        .initial_backoff
        .saturating_mul(2u32.saturating_pow(tries.saturating_sub(1)));
    let capped = exp.min(policy.max_backoff);
    let factor = rand::rng().random_range(0.5..=1.0);
    capped.mul_f64(factor)
}

impl Executor {
    /// Call the plugin until success, a permanent error, the retry budget
    /// or cancellation. For `run`, each attempt is recorded in the journal
    /// first (so a resumed run counts on from it).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn attempts(
        &self,
        index: usize,
        step: &StepSpec,
        plugin: dbops_plugin_sdk::abi::PluginRef,
        kind: CallKind,
        with: serde_json::Value,
        step_outputs: Outputs,
        previous_attempts: u32,
        cancel: &CancellationToken,
        span: &tracing::Span,
    ) -> CallOutcome {
        let mut tries = 0u32;
        loop {
            tries += 1;
            let attempt = previous_attempts + tries;
            span.record("step.attempts", attempt);
            if kind == CallKind::Run {
                let result = self
                    .env
                    .journal
                    .update(|record| {
                        if let Some(s) = record.steps.get_mut(index) {
                            s.state = StepState::Running;
                            s.attempts = attempt;
                            s.started_at.get_or_insert_with(Utc::now);
                        }
                    })
                    .await;
                if let Err(e) = result {
                    return CallOutcome::Failed {
                        class: ErrorClass::Transient,
                        reason: "JournalUnavailable".into(),
                        message: format!("cannot record the attempt in the run journal: {e}"),
                    };
                }
            }
            tracing::info!(
                attempt,
                "{} step {} ({})",
                if kind == CallKind::Run {
                    "starting"
                } else {
                    "compensating"
                },
                step.id,
                step.uses
            );
            let request = RunRequest {
                step_id: step.id.clone(),
                run_id: self.run_id.clone(),
                trace_id: self.trace_id.clone(),
                attempt,
                dry_run: self.env.dry_run,
                target: self.pipeline.target.clone(),
                with: with.clone(),
                outputs: step_outputs.clone(),
            };
            let outcome = attempt::call(
                self.env.clone(),
                Call {
                    plugin,
                    kind,
                    request: &request,
                    step_index: index,
                    span: span.clone(),
                    timeout: step.timeout,
                    cancel: cancel.clone(),
                },
            )
            .await;
            let CallOutcome::Failed {
                class,
                reason,
                message,
            } = &outcome
            else {
                return outcome;
            };
            if *class != ErrorClass::Transient
                || tries >= step.retry.attempts.max(1)
                || cancel.is_cancelled()
            {
                return outcome;
            }
            let delay = backoff(&step.retry, tries);
            let pretty = humantime::format_duration(Duration::from_millis(
                u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            ));
            tracing::warn!(
                attempt,
                reason = %reason,
                "step {} failed with a transient error, retrying in {pretty}: {message}",
                step.id,
            );
            self.env.events.emit(
                "Warning",
                reason,
                &format!(
                    "step {} attempt {attempt} failed ({message}); retrying in {pretty}",
                    step.id
                ),
                Some(&step.id),
            );
            if kind == CallKind::Run {
                let (reason, message) = (reason.clone(), message.clone());
                let _ = self
                    .env
                    .journal
                    .update(|record| {
                        if let Some(s) = record.steps.get_mut(index) {
                            s.reason = Some(reason);
                            s.message = Some(message);
                        }
                    })
                    .await;
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = cancel.cancelled() => {
                    return CallOutcome::Interrupted { message: "interrupted while waiting to retry".into() };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_cap() {
        let policy = RetryPolicy {
            attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
        };
        for _ in 0..50 {
            let first = backoff(&policy, 1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let second = backoff(&policy, 2);
            assert!(second >= Duration::from_millis(100) && second <= Duration::from_millis(200));
            let capped = backoff(&policy, 10);
            assert!(capped <= Duration::from_millis(300));
        }
    }
}
