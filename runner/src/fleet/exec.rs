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

/// The least time between the starts of two runs of a fleet (at most 500
/// starts a second). Without it the first `concurrency` runs start in
/// the same instant and stay in step: every run restarts its members at
/// the same moments, and each time their API requests queue behind each
/// other. In the fleet benchmark (500 targets, concurrency 50) those 50
/// runs took 0.85-0.88 s each against 0.66 s for the later ones, which
/// start whenever a slot frees; 2 ms apart, 0.69-0.72 s (4 ms: 0.65 s).
/// The same burst is what Kubernetes' controllers avoid with a slow
/// start. Later runs are seldom delayed: slots free up spread out.
const MIN_START_INTERVAL: Duration = Duration::from_millis(2);

/// Hands out start instants at least `interval` apart, in call order.
struct StartPacer {
    interval: Duration,
    next: std::sync::Mutex<Option<tokio::time::Instant>>,
}

impl StartPacer {
    fn new(interval: Duration) -> StartPacer {
        StartPacer {
            interval,
            next: std::sync::Mutex::new(None),
        }
    }

    /// When a run that is ready at `now` may start: `now`, or `interval`
    /// after the previous slot if that is later.
    fn slot(&self, now: tokio::time::Instant) -> tokio::time::Instant {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let slot = next.map_or(now, |next| next.max(now));
        *next = Some(slot + self.interval);
        slot
    }
}

/// Run every target; rows come back in the order of `targets`.
pub(super) async fn run_all(
    plan: Arc<Plan>,
    targets: Vec<FleetTarget>,
    concurrency: usize,
) -> Vec<Row> {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let pacer = Arc::new(StartPacer::new(MIN_START_INTERVAL));
    let tasks: Vec<_> = targets
        .into_iter()
        .map(|target| {
            let (plan, permits, pacer) = (plan.clone(), permits.clone(), pacer.clone());
            // Not instrumented: each run's root span starts its own trace.
            tokio::spawn(async move {
                let permit = tokio::select! {
                    permit = async {
                        let permit = permits.acquire_owned().await;
                        tokio::time::sleep_until(pacer.slot(tokio::time::Instant::now())).await;
                        permit
                    } => permit.ok(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_are_spaced_by_the_interval_and_never_moved_earlier() {
        let pacer = StartPacer::new(Duration::from_millis(2));
        let t0 = tokio::time::Instant::now();
        let ms = |n| Duration::from_millis(n);
        assert_eq!(pacer.slot(t0), t0);
        assert_eq!(pacer.slot(t0), t0 + ms(2));
        assert_eq!(pacer.slot(t0 + ms(1)), t0 + ms(4));
        // A run ready long after the previous slot starts at once.
        assert_eq!(pacer.slot(t0 + ms(100)), t0 + ms(100));
        assert_eq!(pacer.slot(t0 + ms(101)), t0 + ms(102));
    }
}
