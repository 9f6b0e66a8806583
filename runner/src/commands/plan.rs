//! `dbops plan PIPELINE`: the resolved steps and their inputs, in order,
//! after validation. No cluster I/O, nothing written. Values that depend
//! on earlier steps' outputs are shown as their `${steps...}` reference.
//! Values of password-like keys in `with` are shown as `****`: they may
//! come from `${env.*}` and the plan is meant to be shared and pasted.
//!
//! `dbops plan --diff` also reads the cluster: every step runs as in
//! `dbops run --dry-run` (reads only; no lock, no journal, no Event; every
//! write is refused), and the plan ends with what each step would do and
//! the unified diff of every configuration file it would change, secret
//! values masked (`kubectl diff` for a whole pipeline).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::KubeArgs;
use super::prepare::prepare;
use crate::exit;
use crate::pipeline::Pipeline;
use crate::plugins::PluginSet;
use crate::run::journal::StepState;
use crate::run::{self, RunOptions, RunReport};

/// Arguments of `dbops plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The pipeline file.
    pub pipeline: PathBuf,
    /// Override a variable or target field: KEY=VALUE (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also read the cluster: run every step as `dbops run --dry-run` does
    /// (nothing is written) and show what it would do, with the unified
    /// diff of every configuration file it would change (secrets masked).
    #[arg(long)]
    pub diff: bool,
    /// Cluster connection (with --diff).
    #[command(flatten)]
    pub kube: KubeArgs,
}

/// Execute `dbops plan`.
pub async fn plan(args: PlanArgs, plugin_dir: &Path) -> i32 {
    let (pipeline, plugins) = match prepare(&args.pipeline, &args.sets, plugin_dir) {
        Ok(ready) => ready,
        Err(not_ready) => {
            eprintln!("{not_ready}");
            return exit::VALIDATION;
        }
    };
    let steps: Vec<_> = pipeline
        .steps
        .iter()
        .map(|s| {
            let plugin = plugins.get(&s.uses);
            json!({
                "id": s.id,
                "uses": s.uses,
                "plugin_version": plugin.map(|p| p.info.version.clone()),
                "plugin_path": plugin.map(|p| p.path.display().to_string()),
                "compensates": plugin.is_some_and(|p| p.info.has_compensate),
                "timeout": humantime::format_duration(s.timeout).to_string(),
                "retry_attempts": s.retry.attempts,
                "always": s.always,
                "when": s.when,
                "with": masked(&s.with),
                "deferred": s.deferred_pointers(),
            })
        })
        .collect();
    if args.json {
        let mut doc = json!({
            "pipeline": pipeline.name,
            "operation": pipeline.operation,
            "on_failure": pipeline.on_failure,
            "target": pipeline.target,
            "steps": steps,
        });
        let mut code = exit::SUCCESS;
        if args.diff {
            let dry_run = match dry_run(&args.kube, pipeline, plugins).await {
                Ok(report) => {
                    code = report.outcome.exit_code();
                    dry_run_json(&report)
                }
                Err(message) => {
                    code = exit::INTERNAL;
                    json!({"error": message})
                }
            };
            doc["dry_run"] = dry_run;
        }
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return code;
    }
    let t = &pipeline.target;
    println!(
        "pipeline {} ({}) on {} {}/{} [{}]",
        pipeline.name,
        pipeline.operation,
        t.engine,
        t.namespace,
        t.name,
        format!("{:?}", pipeline.on_failure).to_lowercase()
    );
    for (i, s) in pipeline.steps.iter().enumerate() {
        let plugin = plugins.get(&s.uses);
        let mut flags = vec![format!("timeout {}", humantime::format_duration(s.timeout))];
        if s.retry.attempts > 1 {
            flags.push(format!("{} attempts", s.retry.attempts));
        }
        if s.always {
            flags.push("always".into());
        }
        if plugin.is_some_and(|p| p.info.has_compensate) {
            flags.push("compensates".into());
        }
        println!(
            "{}. {} uses {} {} ({})",
            i + 1,
            s.id,
            s.uses,
            plugin.map(|p| p.info.version.as_str()).unwrap_or("?"),
            flags.join(", ")
        );
        if let Some(when) = &s.when {
            println!("   when: {when}");
        }
        let with = serde_json::to_string_pretty(&masked(&s.with)).unwrap_or_default();
        for line in with.lines() {
            println!("   {line}");
        }
    }
    if !args.diff {
        return exit::SUCCESS;
    }
    match dry_run(&args.kube, pipeline, plugins).await {
        Ok(report) => {
            print_dry_run(&report);
            report.outcome.exit_code()
        }
        Err(message) => {
            eprintln!("dbops: plan --diff: {message}");
            exit::INTERNAL
        }
    }
}

/// Run the pipeline as `dbops run --dry-run` does: reads only.
async fn dry_run(
    kube: &KubeArgs,
    pipeline: Pipeline,
    plugins: PluginSet,
) -> Result<RunReport, String> {
    let cluster = kube.connect().await?;
    let options = RunOptions {
        run_id: format!("plan-{}", super::run::new_run_id()),
        dry_run: true,
        grace: Duration::from_secs(5),
        lock_duration: Duration::from_secs(30),
        owner: None,
    };
    run::run(
        cluster,
        Arc::new(pipeline),
        Arc::new(plugins),
        options,
        CancellationToken::new(),
    )
    .await
    .map_err(|e| e.to_string())
}

/// A step's one-line account in a dry run.
fn step_line(state: StepState, message: Option<&str>) -> String {
    let state = match state {
        StepState::Succeeded => "would run",
        StepState::Skipped => "would be skipped",
        StepState::Failed => "would FAIL",
        StepState::Compensated => "would be rolled back",
        StepState::Interrupted => "interrupted",
        StepState::Running | StepState::Pending => "not reached",
    };
    match message {
        Some(message) => format!("{state}: {message}"),
        None => state.to_string(),
    }
}

fn print_dry_run(report: &RunReport) {
    println!();
    println!(
        "dry run against the cluster (nothing was written): {}",
        report.outcome.as_str()
    );
    for step in &report.journal.steps {
        println!(
            "- {}: {}",
            step.id,
            step_line(step.state, step.message.as_deref())
        );
        if let Some(diff) = step.outputs.get("diff").and_then(Value::as_str) {
            if diff.is_empty() {
                println!("  (no change)");
            }
            for line in diff.lines() {
                println!("  {line}");
            }
        }
    }
}

fn dry_run_json(report: &RunReport) -> Value {
    let steps: Vec<Value> = report
        .journal
        .steps
        .iter()
        .map(|step| {
            json!({
                "id": step.id,
                "state": step.state,
                "message": step.message,
                "diff": step.outputs.get("diff"),
            })
        })
        .collect();
    json!({"outcome": report.outcome.as_str(), "steps": steps})
}

/// What a masked value is shown as.
const MASK: &str = "****";

/// Whether a `with` key holds a secret VALUE (a password, token,
/// credential, JAAS config), e.g. `ssl.keyStore.password`. Keys that only
/// NAME where a secret lives (`password_secret`, `password_env`,
/// `password_key`, `password_dir`, ...) are shown.
fn is_secret_value_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    let names_something = ["secret", "_env", "_dir", "_key", "_file", "_path", "_name"]
        .iter()
        .any(|suffix| lower.ends_with(suffix));
    !names_something
        && (["password", "passwd", "token", "credential", "jaas"]
            .iter()
            .any(|word| lower.contains(word))
            || lower.ends_with("pwd"))
}

/// `with` with the scalar values of secret keys (at any depth) masked.
fn masked(value: &Value) -> Value {
    match value {
        Value::Object(map) => map
            .iter()
            .map(|(key, v)| {
                let scalar = !(v.is_object() || v.is_array() || v.is_null());
                let shown = if scalar && is_secret_value_key(key) {
                    Value::String(MASK.into())
                } else {
                    masked(v)
                };
                (key.clone(), shown)
            })
            .collect(),
        Value::Array(items) => Value::Array(items.iter().map(masked).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_values_are_masked_and_secret_names_shown() {
        let with = json!({
            "set": {"ssl.keyStore.password": "hunter2", "sasl.jaas.config": "x password=\"p\"", "tickTime": 2000},
            "password_secret": "zk-tls-keystore-password",
            "source": {"secret": "zk-custom-config", "key": "zoo.cfg"},
            "credentials": {"secret": "pxc-auth", "password_key": "password", "token": 7},
            "files": [{"set": {"db_pwd": "x"}}]
        });
        let shown = masked(&with);
        assert_eq!(shown["set"]["ssl.keyStore.password"], MASK);
        assert_eq!(shown["set"]["sasl.jaas.config"], MASK);
        assert_eq!(shown["set"]["tickTime"], 2000);
        assert_eq!(shown["password_secret"], "zk-tls-keystore-password");
        assert_eq!(shown["source"], with["source"]);
        assert_eq!(shown["credentials"]["password_key"], "password");
        assert_eq!(shown["credentials"]["token"], MASK);
        assert_eq!(shown["files"][0]["set"]["db_pwd"], MASK);
    }
}
