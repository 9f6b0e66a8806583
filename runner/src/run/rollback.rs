//! Rollback: after a failure with `on_failure = "rollback"`, the
//! compensations of the steps that completed before it run, last first.
//! A step without a compensation entry has nothing to undo.

use std::collections::BTreeMap;

use dbops_plugin_sdk::Outputs;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::attempt::{CallKind, CallOutcome};
use super::executor::Executor;
use super::journal::StepState;
use crate::pipeline;
use crate::telemetry;

impl Executor {
    /// Compensate the steps that succeeded before `failed_at`, last first.
    /// Returns whether every one that needed it was compensated.
    pub(super) async fn roll_back(
        &self,
        failed_at: usize,
        outputs: &BTreeMap<String, Outputs>,
        cancel: &CancellationToken,
    ) -> bool {
        let recorded = self.env.journal.snapshot().await;
        let mut complete = true;
        for index in (0..failed_at).rev() {
            let step = &self.pipeline.steps[index];
            let Some(record) = recorded.steps.get(index) else {
                continue;
            };
            if record.state != StepState::Succeeded {
                continue;
            }
            let Some(plugin) = self.plugins.get(&step.uses) else {
                complete = false;
                continue;
            };
            if !plugin.info.has_compensate {
                tracing::info!(
                    "step {} ({}) has no compensation; nothing to undo",
                    step.id,
                    step.uses
                );
                continue;
            }
            let span = tracing::info_span!(
                "dbops.compensate",
                step.id = %step.id,
                step.plugin = %step.uses,
                step.attempts = tracing::field::Empty,
            );
            let with = pipeline::resolve_step(step, outputs).unwrap_or_else(|_| step.with.clone());
            let outcome = self
                .attempts(
                    index,
                    step,
                    plugin.plugin(),
                    CallKind::Compensate,
                    with,
                    record.outputs.clone(),
                    0,
                    cancel,
                    &span,
                )
                .instrument(span.clone())
                .await;
            match outcome {
                CallOutcome::Succeeded { .. } => {
                    tracing::info!("compensated step {}", step.id);
                    self.mark(
                        index,
                        StepState::Compensated,
                        None,
                        Some("compensated during rollback".into()),
                    )
                    .await;
                    self.env.events.emit(
                        "Normal",
                        "StepCompensated",
                        &format!("rolled back step {} ({})", step.id, step.uses),
                        Some(&step.id),
                    );
                }
                CallOutcome::Failed {
                    reason, message, ..
                } => {
                    complete = false;
                    telemetry::set_error(&span, &message);
                    tracing::error!(reason = %reason, "compensating step {} failed: {message}", step.id);
                    self.env.events.emit(
                        "Warning",
                        "CompensationFailed",
                        &format!("rolling back step {} failed: {message}", step.id),
                        Some(&step.id),
                    );
                }
                CallOutcome::Interrupted { message } => {
                    complete = false;
                    tracing::error!("compensating step {} was interrupted: {message}", step.id);
                }
            }
        }
        complete
    }
}
