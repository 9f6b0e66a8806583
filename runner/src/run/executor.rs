//! The executor: runs a pipeline's steps against the journal.
//!
//! 1. Steps run in order. A step already `succeeded` or `skipped` in the
//!    journal (an earlier process of this run) is not run again; its
//!    outputs are reused. A step whose `when` is false is skipped.
//! 2. Each attempt has the step's timeout ([`super::attempt`]); transient
//!    errors are retried with exponential backoff and jitter up to the
//!    step's `retry.attempts`; permanent errors and timeouts are not.
//! 3. After a failure with `on_failure = "rollback"`, the compensations of
//!    the steps that completed before it run in reverse order.
//! 4. Then the remaining `always` steps run (e.g. resume); other remaining
//!    steps are skipped. Their `when` may test `run.failed`,
//!    `run.rolled_back` and `run.interrupted`.
//! 5. On a signal the current step is asked to stop and marked
//!    `interrupted` (resumable); remaining `always` steps run within the
//!    grace period; nothing is rolled back (a resumed run continues).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use dbops_plugin_sdk::Outputs;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::attempt::{CallKind, CallOutcome};
use super::host::StepEnv;
use super::journal::StepState;
use crate::pipeline::{self, OnFailure, Pipeline, StepSpec};
use crate::plugins::PluginSet;
use crate::telemetry;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every step succeeded (or was skipped by `when`).
    Succeeded,
    /// A step failed; every completed step was compensated.
    FailedRolledBack,
    /// A step failed; not rolled back (`halt`, or a compensation failed).
    FailedNotRolledBack,
    /// Stopped by a signal; resumable with the same run id.
    Interrupted,
}

impl Outcome {
    /// The process exit code ([`crate::exit`]).
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Succeeded => crate::exit::SUCCESS,
            Outcome::FailedRolledBack => crate::exit::FAILED_ROLLED_BACK,
            Outcome::FailedNotRolledBack => crate::exit::FAILED_NOT_ROLLED_BACK,
            Outcome::Interrupted => crate::exit::INTERRUPTED,
        }
    }

    /// The name written to the journal and the root span.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::FailedRolledBack => "failed-rolled-back",
            Outcome::FailedNotRolledBack => "failed",
            Outcome::Interrupted => "interrupted",
        }
    }

    /// Parse a journal outcome.
    pub fn parse(s: &str) -> Option<Outcome> {
        [
            Outcome::Succeeded,
            Outcome::FailedRolledBack,
            Outcome::FailedNotRolledBack,
            Outcome::Interrupted,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// Everything one execution needs.
pub struct Executor {
    /// The pipeline.
    pub pipeline: Arc<Pipeline>,
    /// Its plugins.
    pub plugins: Arc<PluginSet>,
    /// Cluster, journal, Events.
    pub env: Arc<StepEnv>,
    /// Run id.
    pub run_id: String,
    /// Trace id.
    pub trace_id: String,
    /// Cancelled by signals (or a lost lock).
    pub cancel: CancellationToken,
    /// Time `always` steps get after a signal.
    pub grace: Duration,
}

/// Why a step failed.
#[derive(Debug, Clone)]
struct Failure {
    reason: String,
    message: String,
}

enum StepEnd {
    Succeeded(Outputs),
    Skipped,
    Failed(Failure),
    Interrupted,
}

/// A token cancelled `grace` after `cancel` is.
fn with_grace(cancel: &CancellationToken, grace: Duration) -> CancellationToken {
    let token = CancellationToken::new();
    let (outer, inner) = (cancel.clone(), token.clone());
    tokio::spawn(async move {
        outer.cancelled().await;
        tokio::time::sleep(grace).await;
        inner.cancel();
    });
    token
}

impl Executor {
    /// Run the pipeline. Every state change is in the journal before this
    /// returns, except the last step's result, which the caller's write of
    /// the run's outcome persists ([`super::journal::Journal::update_with_next_write`]).
    pub async fn execute(&self) -> Outcome {
        let steps = &self.pipeline.steps;
        let recorded = self.env.journal.snapshot().await;
        let mut outputs: BTreeMap<String, Outputs> = recorded
            .steps
            .iter()
            .filter(|s| s.state == StepState::Succeeded)
            .map(|s| (s.id.clone(), s.outputs.clone()))
            .collect();

        let mut failure: Option<(usize, Failure)> = None;
        let mut interrupted = false;
        let mut next = steps.len();
        for (index, step) in steps.iter().enumerate() {
            let state = recorded.steps.get(index).map(|s| s.state);
            match state {
                Some(StepState::Succeeded) => {
                    tracing::info!(step.id = %step.id, "step {} already succeeded in this run; not repeating it", step.id);
                    continue;
                }
                Some(StepState::Skipped) => continue,
                Some(StepState::Failed | StepState::Compensated) => {
                    let record = &recorded.steps[index];
                    failure = Some((
                        index,
                        Failure {
                            reason: record.reason.clone().unwrap_or_else(|| "StepFailed".into()),
                            message: record.message.clone().unwrap_or_default(),
                        },
                    ));
                    next = index + 1;
                    break;
                }
                _ => {}
            }
            if self.cancel.is_cancelled() {
                interrupted = true;
                next = index;
                break;
            }
            match self.run_step(index, step, &outputs, &self.cancel).await {
                StepEnd::Succeeded(out) => {
                    outputs.insert(step.id.clone(), out);
                }
                StepEnd::Skipped => {}
                StepEnd::Failed(f) => {
                    failure = Some((index, f));
                    next = index + 1;
                    break;
                }
                StepEnd::Interrupted => {
                    interrupted = true;
                    next = index + 1;
                    break;
                }
            }
        }

        let after = with_grace(&self.cancel, self.grace);
        let mut rolled_back = false;
        if let Some((failed_at, f)) = &failure {
            tracing::error!(reason = %f.reason, "step {} failed: {}", steps[*failed_at].id, f.message);
            if self.pipeline.on_failure == OnFailure::Rollback && !interrupted {
                rolled_back = self.roll_back(*failed_at, &outputs, &after).await;
            }
        }
        if failure.is_some() || interrupted {
            // `run.failed`, `run.rolled_back`, `run.interrupted` for the
            // `when` of the remaining `always` steps (e.g. a re-roll onto
            // the restored configuration after a rollback).
            let facts: Outputs = [
                ("failed", failure.is_some()),
                ("rolled_back", rolled_back),
                ("interrupted", interrupted),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::Bool(v)))
            .collect();
            outputs.insert(pipeline::when::RUN_FACTS.to_string(), facts);
            self.finish_remaining(next, interrupted, &mut outputs, &after)
                .await;
        }
        match (failure, interrupted) {
            (_, true) => Outcome::Interrupted,
            (Some(_), false) if rolled_back => Outcome::FailedRolledBack,
            (Some(_), false) => Outcome::FailedNotRolledBack,
            (None, false) => Outcome::Succeeded,
        }
    }

    /// After a failure or an interruption: run the `always` steps from
    /// `next` on; skip the others (after an interruption leave them pending
    /// for the resumed run).
    async fn finish_remaining(
        &self,
        next: usize,
        interrupted: bool,
        outputs: &mut BTreeMap<String, Outputs>,
        cancel: &CancellationToken,
    ) {
        for (index, step) in self.pipeline.steps.iter().enumerate().skip(next) {
            if !step.always {
                if !interrupted {
                    self.mark(
                        index,
                        StepState::Skipped,
                        None,
                        Some("an earlier step failed".into()),
                    )
                    .await;
                }
                continue;
            }
            tracing::info!(step.id = %step.id, "running `always` step {}", step.id);
            match self.run_step(index, step, outputs, cancel).await {
                StepEnd::Succeeded(out) => {
                    outputs.insert(step.id.clone(), out);
                }
                StepEnd::Failed(f) => {
                    tracing::error!(reason = %f.reason, "`always` step {} failed: {}", step.id, f.message);
                }
                StepEnd::Skipped | StepEnd::Interrupted => {}
            }
        }
    }

    pub(super) async fn mark(
        &self,
        index: usize,
        state: StepState,
        reason: Option<String>,
        message: Option<String>,
    ) {
        let result = self
            .env
            .journal
            .update(|record| {
                if let Some(step) = record.steps.get_mut(index) {
                    step.state = state;
                    step.reason = reason;
                    step.message = message;
                    if state != StepState::Running && state != StepState::Interrupted {
                        step.finished_at = Some(Utc::now());
                    }
                }
            })
            .await;
        if let Err(e) = result {
            tracing::error!("could not write the run journal: {e}");
        }
    }

    async fn run_step(
        &self,
        index: usize,
        step: &StepSpec,
        outputs: &BTreeMap<String, Outputs>,
        cancel: &CancellationToken,
    ) -> StepEnd {
        let span = tracing::info_span!(
            "dbops.step",
            step.id = %step.id,
            step.plugin = %step.uses,
            step.attempts = tracing::field::Empty,
            step.outcome = tracing::field::Empty,
        );
        let end = self
            .run_step_in_span(index, step, outputs, cancel, &span)
            .instrument(span.clone())
            .await;
        let outcome = match &end {
            StepEnd::Succeeded(_) => "succeeded",
            StepEnd::Skipped => "skipped",
            StepEnd::Failed(f) => {
                telemetry::set_error(&span, &format!("{}: {}", f.reason, f.message));
                "failed"
            }
            StepEnd::Interrupted => {
                telemetry::set_error(&span, "interrupted");
                "interrupted"
            }
        };
        span.record("step.outcome", outcome);
        end
    }

    async fn run_step_in_span(
        &self,
        index: usize,
        step: &StepSpec,
        outputs: &BTreeMap<String, Outputs>,
        cancel: &CancellationToken,
        span: &tracing::Span,
    ) -> StepEnd {
        match pipeline::should_run(step, outputs) {
            Ok(true) => {}
            Ok(false) => {
                let why = format!("`when = {:?}` is false", step.when.as_deref().unwrap_or(""));
                tracing::info!("step {} skipped: {why}", step.id);
                self.mark(index, StepState::Skipped, None, Some(why)).await;
                return StepEnd::Skipped;
            }
            Err(problem) => {
                return self
                    .fail(index, step, "WhenFailed", problem.to_string())
                    .await;
            }
        }
        let with = match pipeline::resolve_step(step, outputs) {
            Ok(with) => with,
            Err(problem) => {
                return self
                    .fail(index, step, "InputUnresolved", problem.to_string())
                    .await;
            }
        };
        let Some(plugin) = self.plugins.get(&step.uses) else {
            let message = format!("plugin `{}` is not loaded", step.uses);
            return self.fail(index, step, "PluginMissing", message).await;
        };
        let previous = self
            .env
            .journal
            .snapshot()
            .await
            .steps
            .get(index)
            .map_or(0, |s| s.attempts);
        let started = std::time::Instant::now();
        let outcome = self
            .attempts(
                index,
                step,
                plugin.plugin(),
                CallKind::Run,
                with,
                Outputs::new(),
                previous,
                cancel,
                span,
            )
            .await;
        let took = humantime::format_duration(Duration::from_millis(
            u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        ));
        match outcome {
            CallOutcome::Succeeded { outputs, summary } => {
                let shown = if summary.is_empty() {
                    String::new()
                } else {
                    format!(": {summary}")
                };
                tracing::info!("step {} succeeded in {took}{shown}", step.id);
                // Written with the executor's next write (the next step's
                // attempt, a skip or the run's outcome), which comes before
                // any other plugin runs: one PUT per step boundary. The
                // Event waits for that write: a run killed before it repeats
                // the step, which must not be announced as succeeded twice.
                let events = self.env.events.clone();
                let (id, message) = (
                    step.id.clone(),
                    format!("step {} ({}) succeeded{shown}", step.id, step.uses),
                );
                self.env
                    .journal
                    .update_with_next_write(
                        |record| {
                            if let Some(s) = record.steps.get_mut(index) {
                                s.state = StepState::Succeeded;
                                s.outputs = outputs.clone();
                                s.finished_at = Some(Utc::now());
                                s.reason = None;
                                s.message = (!summary.is_empty()).then(|| summary.clone());
                            }
                        },
                        move || events.emit("Normal", "StepSucceeded", &message, Some(&id)),
                    )
                    .await;
                StepEnd::Succeeded(outputs)
            }
            CallOutcome::Failed {
                reason, message, ..
            } => self.fail(index, step, &reason, message).await,
            CallOutcome::Interrupted { message } => {
                tracing::warn!("step {} interrupted: {message}", step.id);
                self.mark(
                    index,
                    StepState::Interrupted,
                    Some("Interrupted".into()),
                    Some(message.clone()),
                )
                .await;
                self.env.events.emit(
                    "Warning",
                    "StepInterrupted",
                    &format!("step {} interrupted: {message}", step.id),
                    Some(&step.id),
                );
                StepEnd::Interrupted
            }
        }
    }

    async fn fail(&self, index: usize, step: &StepSpec, reason: &str, message: String) -> StepEnd {
        self.mark(
            index,
            StepState::Failed,
            Some(reason.to_owned()),
            Some(message.clone()),
        )
        .await;
        self.env.events.emit(
            "Warning",
            reason,
            &format!("step {} failed: {message}", step.id),
            Some(&step.id),
        );
        StepEnd::Failed(Failure {
            reason: reason.to_owned(),
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_round_trip() {
        for o in [
            Outcome::Succeeded,
            Outcome::FailedRolledBack,
            Outcome::FailedNotRolledBack,
            Outcome::Interrupted,
        ] {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(
            Outcome::FailedRolledBack.exit_code(),
            crate::exit::FAILED_ROLLED_BACK
        );
    }
}
