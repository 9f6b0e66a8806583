//! Fleet runs: `dbops run PIPELINE --targets-selector LABELS` runs the
//! pipeline once per matching target, `--concurrency` at a time.
//!
//! Each target is one ordinary run: the pipeline is loaded again with
//! `--set target.name=<name> --set target.namespace=<ns>` (and the
//! workload's or database's name), and runs under its own lock, journal,
//! run id (`<base>-<ns>-<name>`, see [`shard::run_id`]) and trace (root
//! span `dbops.run` per target). A target's failure never stops the
//! others. The end is a table (target, outcome, duration, trace id, run
//! id) on stdout and exit code 0 (all succeeded, or nothing matched),
//! [`crate::exit::FLEET_FAILED`] (at least one did not succeed) or
//! [`crate::exit::INTERRUPTED`] (SIGTERM/SIGINT).
//!
//! Pieces: [`targets`] (discovery by label selector), [`shard`] (Indexed
//! Job shares and run ids), [`summary`] (table and exit code), `exec.rs`
//! (the concurrent runs).

mod exec;
pub mod shard;
pub mod summary;
pub mod targets;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::commands::prepare::prepare;
use crate::commands::run::{RunArgs, check_run_id};
use crate::exit;
use crate::run;
use crate::telemetry::LogFormat;
use shard::Shard;
use targets::{Scope, TargetKind};

/// The `dbops run` flags of a fleet run.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FleetArgs {
    /// Run once per target matching this label selector (e.g.
    /// `dbops.io/rotate=nightly`): the pipeline's database kind, else its
    /// workload kind (StatefulSet/PetSet).
    #[arg(long, value_name = "LABELS")]
    pub targets_selector: Option<String>,
    /// Namespace to look for targets in (default: the pipeline's
    /// target.namespace).
    #[arg(
        long,
        value_name = "NS",
        requires = "targets_selector",
        conflicts_with = "all_namespaces"
    )]
    pub namespace: Option<String>,
    /// Look for targets in every namespace.
    #[arg(long, short = 'A', requires = "targets_selector")]
    pub all_namespaces: bool,
    /// How many targets run at the same time.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000), requires = "targets_selector")]
    pub concurrency: u32,
    /// Run only share INDEX of COUNT of the targets (stable per target).
    #[arg(
        long,
        value_name = "INDEX/COUNT",
        requires = "targets_selector",
        conflicts_with = "shard_count"
    )]
    pub shard: Option<Shard>,
    /// Split the targets into N shares and run share $JOB_COMPLETION_INDEX
    /// (an Indexed Job with `completions: N`).
    #[arg(
        long,
        value_name = "N",
        env = "DBOPS_SHARD_COUNT",
        requires = "targets_selector"
    )]
    pub shard_count: Option<u32>,
}

/// `--set` keys a fleet run sets itself for every target.
const OWN_KEYS: &[&str] = &[
    "target.name",
    "target.namespace",
    "target.workload.name",
    "target.database.name",
];

/// A syntactically valid name used only to load the pipeline once before
/// the targets are known.
const PLACEHOLDER: &str = "dbops-fleet-discovery";

/// Execute a fleet run (`args.fleet.targets_selector` is set).
pub async fn run(args: &RunArgs, selector: &str, plugin_dir: &Path, log_format: LogFormat) -> i32 {
    let fleet = &args.fleet;
    if let Some(key) = args
        .sets
        .iter()
        .filter_map(|s| s.split_once('=').map(|(k, _)| k.trim()))
        .find(|k| OWN_KEYS.contains(k))
    {
        eprintln!(
            "dbops: --set {key}=... cannot be combined with --targets-selector: the fleet run sets it for every target"
        );
        return exit::VALIDATION;
    }
    let shard = match Shard::resolve(
        fleet.shard,
        fleet.shard_count,
        std::env::var("JOB_COMPLETION_INDEX").ok(),
    ) {
        Ok(shard) => shard,
        Err(e) => {
            eprintln!("dbops: {e}");
            return exit::VALIDATION;
        }
    };
    let mut sets = args.sets.clone();
    sets.push(format!("target.name={PLACEHOLDER}"));
    if let Some(ns) = &fleet.namespace {
        sets.push(format!("target.namespace={ns}"));
    } else if fleet.all_namespaces {
        sets.push("target.namespace=default".into());
    }
    let (pipeline, plugins) = match prepare(&args.pipeline, &sets, plugin_dir) {
        Ok(ready) => ready,
        Err(not_ready) => {
            eprintln!("{not_ready}");
            eprintln!(
                "dbops: {} is not valid; nothing was written to the cluster",
                args.pipeline.display()
            );
            return exit::VALIDATION;
        }
    };
    let scope = if fleet.all_namespaces {
        Scope::All
    } else {
        Scope::Namespace(pipeline.target.namespace.clone())
    };
    let base_id = base_run_id(args.run_id.as_deref());
    if let Err(message) = check_run_id(&base_id) {
        eprintln!("dbops: {message}");
        return exit::VALIDATION;
    }
    let cluster = match args.kube.connect().await {
        Ok(cluster) => cluster,
        Err(message) => {
            eprintln!("dbops: {message}");
            return exit::INTERNAL;
        }
    };
    let kind = TargetKind::of(&pipeline);
    let found = match targets::discover(&cluster, &kind, selector, &scope).await {
        Ok(found) => found,
        Err(e) => {
            eprintln!("dbops: {e}");
            return exit::INTERNAL;
        }
    };
    let matched = found.len();
    let chosen = shard::select(found, shard);
    tracing::info!(
        "fleet run {base_id}: {matched} {} match {selector:?}{}; running {} at most {} at a time",
        kind.kind,
        shard
            .map(|s| format!(", shard {}/{} takes {}", s.index, s.count, chosen.len()))
            .unwrap_or_default(),
        chosen.len(),
        fleet.concurrency
    );
    if chosen.is_empty() {
        eprintln!(
            "dbops: no {} matches {selector:?}; nothing to do",
            kind.kind
        );
    }

    let cancel = CancellationToken::new();
    if let Err(e) = run::signals::cancel_on_signals(cancel.clone()) {
        tracing::warn!("cannot install signal handlers: {e}");
    }
    let started = Instant::now();
    let plan = exec::Plan {
        path: args.pipeline.clone(),
        sets: args.sets.clone(),
        name_key: kind.name_key,
        plugins: Arc::new(plugins),
        cluster,
        base_id,
        dry_run: args.dry_run,
        grace: args.grace_period,
        lock_duration: args.lock_duration,
        owner: env_nonempty("JOB_NAME").zip(env_nonempty("JOB_UID")),
        cancel: cancel.clone(),
    };
    let rows = exec::run_all(Arc::new(plan), chosen, fleet.concurrency as usize).await;
    let table = summary::render(&rows, started.elapsed());
    print!("{table}");
    for row in &rows {
        tracing::info!(
            target_namespace = %row.target.namespace,
            target_name = %row.target.name,
            run_id = %row.run_id,
            outcome = row.outcome.as_str(),
            duration_ms = row.duration.as_millis() as u64,
            trace_id = %row.trace_id,
            "fleet target {} {}",
            row.target,
            row.outcome.as_str()
        );
    }
    if log_format == LogFormat::Text && rows.iter().any(|r| !r.outcome.succeeded()) {
        eprintln!("dbops: some targets did not succeed; `dbops status` shows their steps");
    }
    summary::exit_code(&rows, cancel.is_cancelled())
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `--run-id` / `$DBOPS_RUN_ID`, else `$JOB_UID`, else `fleet-<time>`.
fn base_run_id(flag: Option<&str>) -> String {
    flag.map(str::to_owned)
        .filter(|id| !id.trim().is_empty())
        .or_else(|| env_nonempty("JOB_UID"))
        .unwrap_or_else(|| {
            format!(
                "fleet-{}-{:04x}",
                chrono::Utc::now().format("%Y%m%d-%H%M%S"),
                rand::random::<u16>()
            )
        })
}
