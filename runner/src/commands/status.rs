//! `dbops status [--namespace NS] [--target NAME]`: the runs recorded in
//! the cluster, read from their journal ConfigMaps: outcome, steps with
//! states, attempts and durations, trace ids. Read-only.

use chrono::{DateTime, Utc};

use super::KubeArgs;
use crate::exit;
use crate::run::cluster::encode;
use crate::run::journal::{self, RunRecord};

/// Arguments of `dbops status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Only runs in this namespace (default: all namespaces).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Only runs on this target.
    #[arg(long)]
    pub target: Option<String>,
    /// Print the journals as JSON.
    #[arg(long)]
    pub json: bool,
    /// Cluster connection.
    #[command(flatten)]
    pub kube: KubeArgs,
}

fn duration(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> String {
    match (from, to) {
        (Some(a), Some(b)) => {
            let ms = u64::try_from((b - a).num_milliseconds()).unwrap_or(0);
            humantime::format_duration(std::time::Duration::from_millis(ms)).to_string()
        }
        (Some(_), None) => "running".into(),
        _ => "-".into(),
    }
}

/// Execute `dbops status`.
pub async fn status(args: StatusArgs) -> i32 {
    let cluster = match args.kube.connect().await {
        Ok(cluster) => cluster,
        Err(message) => {
            eprintln!("dbops: {message}");
            return exit::INTERNAL;
        }
    };
    let mut selector = journal::SELECTOR.to_owned();
    if let Some(target) = &args.target {
        selector.push_str(&format!(
            ",dbops.io/target={}",
            journal::label_value(target)
        ));
    }
    let base = match &args.namespace {
        Some(ns) => format!("/api/v1/namespaces/{ns}/configmaps"),
        None => "/api/v1/configmaps".to_owned(),
    };
    let path = format!("{base}?labelSelector={}", encode(&selector));
    let list = match cluster.get(&path).await {
        Ok(Some(list)) => list,
        Ok(None) => serde_json::json!({"items": []}),
        Err(e) => {
            eprintln!("dbops: cannot list run journals: {e}");
            return exit::INTERNAL;
        }
    };
    let mut runs: Vec<RunRecord> = list
        .get("items")
        .and_then(|i| i.as_array())
        .map(|items| items.iter().filter_map(journal::decode).collect())
        .unwrap_or_default();
    runs.sort_by_key(|r| r.started_at);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&runs).unwrap_or_default()
        );
        return exit::SUCCESS;
    }
    if runs.is_empty() {
        println!("no dbops runs found");
        return exit::SUCCESS;
    }
    for run in &runs {
        println!(
            "run {}  {}/{}  pipeline {} ({})  {}  started {}  took {}  trace {}",
            run.run_id,
            run.namespace,
            run.target,
            run.pipeline,
            run.operation,
            run.outcome.as_deref().unwrap_or("running"),
            run.started_at.format("%Y-%m-%d %H:%M:%S"),
            duration(Some(run.started_at), run.finished_at),
            run.trace_id,
        );
        for step in &run.steps {
            println!(
                "    {:<24} {:<12} attempts {:<2} {}",
                step.id,
                format!("{:?}", step.state).to_lowercase(),
                step.attempts,
                duration(step.started_at, step.finished_at),
            );
        }
    }
    exit::SUCCESS
}
