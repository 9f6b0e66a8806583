//! The runs of a fleet: one task per target, at most `concurrency` at a
//! time, each an ordinary [`run::run`] with its own lock, journal and trace.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::shard::run_id;
use super::summary::{Row, TargetOutcome};
use super::targets::FleetTarget;
use crate::commands::prepare::parse_sets;
use crate::pipeline::{self, LoadOptions};
use crate::plugins::PluginSet;
use crate::run::{self, RunError, RunOptions, cluster::Cluster};

/// What every target's run shares.
pub(super) struct Plan {
    /// The pipeline file.
    pub path: PathBuf,
    /// The user's `--set` values.
    pub sets: Vec<String>,
    /// `target.workload.name` or `target.database.name`.
    pub name_key: &'static str,
    /// Plugins, loaded once.
    pub plugins: Arc<PluginSet>,
    /// The API client (one connection pool).
    pub cluster: Cluster,
    /// The fleet's run id; each target's is derived from it.
    pub base_id: String,
    /// Dry run.
    pub dry_run: bool,
    /// Grace period after a signal.
    pub grace: Duration,
    /// Lock lease duration.
    pub lock_duration: Duration,
    /// The owning Job.
    pub owner: Option<(String, String)>,
    /// The signal token.
    pub cancel: CancellationToken,
}

/// Run every target; rows come back in the order of `targets`.
pub(super) async fn run_all(
    plan: Arc<Plan>,
    targets: Vec<FleetTarget>,
    concurrency: usize,
) -> Vec<Row> {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let tasks: Vec<_> = targets
        .into_iter()
        .map(|target| {
            let (plan, permits) = (plan.clone(), permits.clone());
            // Not instrumented: each run's root span starts its own trace.
            tokio::spawn(async move {
                let permit = tokio::select! {
                    permit = permits.acquire_owned() => permit.ok(),
                    () = plan.cancel.cancelled() => None,
                };
                match permit {
                    Some(_permit) => run_one(&plan, target).await,
                    None => not_started(&plan, target),
                }
            })
        })
        .collect();
    let mut rows = Vec::with_capacity(tasks.len());
    for task in tasks {
        match task.await {
            Ok(row) => rows.push(row),
            Err(e) => tracing::error!("a fleet task ended abnormally: {e}"),
        }
    }
    rows
}

fn not_started(plan: &Plan, target: FleetTarget) -> Row {
    Row {
        run_id: run_id(&plan.base_id, &target),
        target,
        outcome: TargetOutcome::NotStarted,
        duration: Duration::ZERO,
        trace_id: String::new(),
        message: Some("interrupted before it started".into()),
    }
}

/// One target: load the pipeline for it, validate, run.
async fn run_one(plan: &Plan, target: FleetTarget) -> Row {
    let started = Instant::now();
    let id = run_id(&plan.base_id, &target);
    let mut row = Row {
        run_id: id.clone(),
        target,
        outcome: TargetOutcome::Error,
        duration: Duration::ZERO,
        trace_id: String::new(),
        message: None,
    };
    if plan.cancel.is_cancelled() {
        return not_started(plan, row.target);
    }
    let pipeline = match load_for(plan, &row.target) {
        Ok(pipeline) => pipeline,
        Err(problems) => {
            tracing::error!(
                "{}: the pipeline is not valid for it:\n{problems}",
                row.target
            );
            row.outcome = TargetOutcome::Invalid;
            row.message = Some(first_line(&problems));
            return row;
        }
    };
    let options = RunOptions {
        run_id: id,
        dry_run: plan.dry_run,
        grace: plan.grace,
        lock_duration: plan.lock_duration,
        owner: plan.owner.clone(),
    };
    let result = run::run(
        plan.cluster.clone(),
        Arc::new(pipeline),
        plan.plugins.clone(),
        options,
        plan.cancel.clone(),
    )
    .await;
    row.duration = started.elapsed();
    match result {
        Ok(report) => {
            row.outcome = TargetOutcome::Run(report.outcome);
            row.trace_id = report.trace_id;
            row.message = report
                .journal
                .steps
                .iter()
                .find_map(|s| s.message.clone().filter(|_| !row.outcome.succeeded()));
        }
        Err(RunError::LockHeld(e)) => {
            row.outcome = TargetOutcome::LockHeld;
            row.message = Some(e.to_string());
        }
        Err(e) => row.message = Some(e.to_string()),
    }
    row
}

/// The pipeline with this target's `--set` values, checked against the
/// plugins (already loaded).
fn load_for(plan: &Plan, target: &FleetTarget) -> Result<pipeline::Pipeline, String> {
    let mut sets = plan.sets.clone();
    sets.push(format!("target.namespace={}", target.namespace));
    sets.push(format!("target.name={}", target.name));
    sets.push(format!("{}={}", plan.name_key, target.name));
    let pairs = parse_sets(&sets).map_err(|e| e.to_string())?;
    let loaded = pipeline::load(&plan.path, &LoadOptions::with_overrides(pairs))
        .map_err(|problems| problems.to_string())?;
    pipeline::check_against_plugins(&loaded, plan.plugins.as_ref())
        .map_err(|problems| problems.to_string())?;
    Ok(loaded)
}

fn first_line(text: &str) -> String {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid pipeline")
        .trim()
        .to_owned()
}
