//! `dbops plan PIPELINE`: the resolved steps and their inputs, in order,
//! after validation. No cluster I/O, nothing written. Values that depend
//! on earlier steps' outputs are shown as their `${steps...}` reference.
//! (`dbops run --dry-run` runs the plugins themselves without writing.)

use std::path::{Path, PathBuf};

use serde_json::json;

use super::prepare::prepare;
use crate::exit;

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
}

/// Execute `dbops plan`.
pub fn plan(args: PlanArgs, plugin_dir: &Path) -> i32 {
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
                "with": s.with,
                "deferred": s.deferred_pointers(),
            })
        })
        .collect();
    if args.json {
        let doc = json!({
            "pipeline": pipeline.name,
            "operation": pipeline.operation,
            "on_failure": pipeline.on_failure,
            "target": pipeline.target,
            "steps": steps,
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return exit::SUCCESS;
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
        let with = serde_json::to_string_pretty(&s.with).unwrap_or_default();
        for line in with.lines() {
            println!("   {line}");
        }
    }
    exit::SUCCESS
}
