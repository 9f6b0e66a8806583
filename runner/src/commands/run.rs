//! `dbops run PIPELINE`: validate (no I/O), load plugins, connect, then
//! execute under the target's lock with a durable journal.
//!
//! The run id is `--run-id`, else `$DBOPS_RUN_ID`, else `$JOB_UID` (the
//! Job's uid from the downward API: the same for every pod the Job starts,
//! so a restarted pod resumes the run), else a new one. `JOB_NAME` and
//! `JOB_UID` together make the journal owned by the Job.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::KubeArgs;
use super::prepare::prepare;
use crate::exit;
use crate::run::{self, RunError, RunOptions};
use crate::telemetry::LogFormat;

/// Arguments of `dbops run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The pipeline file (TOML).
    pub pipeline: PathBuf,
    /// Override a variable or target field: KEY=VALUE (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Cluster connection.
    #[command(flatten)]
    pub kube: KubeArgs,
    /// Run id; reuse one to resume an interrupted run (default: $JOB_UID
    /// in a Job, else a new id).
    #[arg(long, env = "DBOPS_RUN_ID", value_name = "ID")]
    pub run_id: Option<String>,
    /// Run the plugins without writing anything: no lock, no journal, no
    /// Events; every write request is refused.
    #[arg(long)]
    pub dry_run: bool,
    /// Time `always` steps get after SIGTERM/SIGINT.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "20s", env = "DBOPS_GRACE_PERIOD")]
    pub grace_period: Duration,
    /// Duration of the target's lock lease (renewed every third of it).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s", env = "DBOPS_LOCK_DURATION")]
    pub lock_duration: Duration,
    /// Fleet runs: one run per target matching a label selector.
    #[command(flatten)]
    pub fleet: crate::fleet::FleetArgs,
}

/// A run id: lowercase letters, digits and `-`, at most 50 characters.
pub fn check_run_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 50
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !id.starts_with('-')
        && !id.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "run id {id:?} is not valid: use at most 50 lowercase letters, digits and '-', starting and ending with a letter or digit"
        ))
    }
}

/// A new run id: the UTC time and a random suffix.
pub(crate) fn new_run_id() -> String {
    format!(
        "{}-{:06x}",
        chrono::Utc::now().format("%Y%m%d-%H%M%S"),
        rand::random::<u32>() & 0xff_ffff
    )
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Execute `dbops run`.
pub async fn run(args: RunArgs, plugin_dir: &Path, log_format: LogFormat) -> i32 {
    if let Some(selector) = args.fleet.targets_selector.clone() {
        return crate::fleet::run(&args, &selector, plugin_dir, log_format).await;
    }
    // Connect while the pipeline is validated and its plugins are loaded:
    // reading the kubeconfig and the TLS handshake overlap that work
    // instead of following it. The warm-up is read-only (GET /version);
    // nothing is written before the pipeline is known to be valid.
    let connecting = tokio::spawn({
        let kube = args.kube.clone();
        async move {
            let cluster = kube.connect().await?;
            tokio::spawn(cluster.clone().warm_up());
            Ok::<_, String>(cluster)
        }
    });
    let (pipeline, plugins) = match prepare(&args.pipeline, &args.sets, plugin_dir) {
        Ok(ready) => ready,
        Err(not_ready) => {
            connecting.abort();
            eprintln!("{not_ready}");
            eprintln!(
                "dbops: {} is not valid; nothing was written to the cluster",
                args.pipeline.display()
            );
            return exit::VALIDATION;
        }
    };
    let run_id = args
        .run_id
        .clone()
        .filter(|id| !id.trim().is_empty())
        .or_else(|| env_nonempty("JOB_UID"))
        .unwrap_or_else(new_run_id);
    if let Err(message) = check_run_id(&run_id) {
        connecting.abort();
        eprintln!("dbops: {message}");
        return exit::VALIDATION;
    }
    let cluster = match connecting.await {
        Ok(Ok(cluster)) => cluster,
        Ok(Err(message)) => {
            eprintln!("dbops: {message}");
            return exit::INTERNAL;
        }
        Err(failed) => {
            eprintln!("dbops: connecting to the cluster failed: {failed}");
            return exit::INTERNAL;
        }
    };
    let cancel = CancellationToken::new();
    if let Err(e) = run::signals::cancel_on_signals(cancel.clone()) {
        tracing::warn!("cannot install signal handlers: {e}");
    }
    let owner = env_nonempty("JOB_NAME").zip(env_nonempty("JOB_UID"));
    let options = RunOptions {
        run_id,
        dry_run: args.dry_run,
        grace: args.grace_period,
        lock_duration: args.lock_duration,
        owner,
    };
    let result = run::run(
        cluster,
        Arc::new(pipeline),
        Arc::new(plugins),
        options,
        cancel,
    )
    .await;
    match result {
        Ok(report) => {
            summarize(&report, log_format);
            report.outcome.exit_code()
        }
        Err(RunError::LockHeld(e)) => {
            eprintln!("dbops: {e}");
            exit::LOCK_HELD
        }
        Err(e) => {
            eprintln!("dbops: {e}");
            exit::INTERNAL
        }
    }
}

fn summarize(report: &run::RunReport, log_format: LogFormat) {
    use crate::run::journal::StepState;
    let record = &report.journal;
    let mut lines = vec![format!(
        "run {} {}: {}{}",
        report.run_id,
        if report.already_finished {
            "had already finished"
        } else {
            "finished"
        },
        report.outcome.as_str(),
        if report.resumed && !report.already_finished {
            " (resumed)"
        } else {
            ""
        },
    )];
    for step in &record.steps {
        let mark = match step.state {
            StepState::Succeeded => "ok",
            StepState::Skipped => "skipped",
            StepState::Failed => "FAILED",
            StepState::Compensated => "rolled back",
            StepState::Interrupted => "interrupted",
            StepState::Running => "running",
            StepState::Pending => "not run",
        };
        let detail = step
            .message
            .as_deref()
            .map(|m| format!(" - {m}"))
            .unwrap_or_default();
        lines.push(format!(
            "  {:<24} {:<12} attempts {}{}",
            step.id, mark, step.attempts, detail
        ));
    }
    lines.push(format!("trace id: {}", report.trace_id));
    if record.dry_run {
        lines.push("dry run: nothing was written".into());
    } else {
        lines.push(format!(
            "journal: configmap {}/{}",
            record.namespace,
            run::journal::configmap_name(&report.run_id)
        ));
    }
    if log_format == LogFormat::Json {
        // Keep stderr pure JSON lines for log collectors.
        tracing::info!(
            run_id = %report.run_id,
            outcome = report.outcome.as_str(),
            trace_id = %report.trace_id,
            "{}",
            lines.join("; ")
        );
    } else {
        eprintln!("{}", lines.join("\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids() {
        check_run_id("a1b2-c3").expect("valid");
        check_run_id(&new_run_id()).expect("generated ids are valid");
        assert!(check_run_id("Upper").is_err());
        assert!(check_run_id("-x").is_err());
        assert!(check_run_id(&"a".repeat(51)).is_err());
    }
}
