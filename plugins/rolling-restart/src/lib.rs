//! The `rolling-restart` step: restart a database's members one at a time
//! (or `max_unavailable` at a time) in an engine-aware order, checking
//! before each member that the rest of the cluster can lose it, and waiting
//! by watch until it is back Ready on the wanted revision.
//!
//! Where to start: [`RollingRestart::run`] below reads top-down:
//! load -> skip members already current -> ask roles -> order -> pre-check ->
//! restart -> wait -> record, until no member is left. [`config`] is the
//! `with` table, [`plan`] the cluster-free decisions (unit-tested),
//! [`probing`] asks the members (roles, pre-checks) through `dbops-probes`,
//! [`restart`] deletes pods or steps the partition and waits.
//!
//! **No compensation**: a restart cannot be undone, and a re-roll in this
//! step's compensation would run *before* the earlier steps' compensations
//! (they run in reverse order) restore the configuration or certificate, so
//! the pods would restart onto the very configuration being rolled back.
//! After a failed restart the pods left are the ones that were already
//! Ready; in template mode the partition is left where it stopped so the
//! StatefulSet controller rolls no further member onto the failing revision.
//! In dry run the step only reports the order it would use.
//!
//! **Invariant**: two quorum members are never restarted at once unless
//! `max_unavailable` says so and the pre-check confirms a majority remains.
//! **Resumable**: the members done and the pods being restarted are in the
//! durable step state, so a restarted run finishes the member in flight and
//! skips the ones already done.

pub mod config;
pub mod plan;
pub mod probing;
pub mod restart;
pub mod roll;

use std::collections::BTreeMap;
use std::time::Instant;

use dbops_engines::Engine;
use dbops_plugin_sdk::serde_json::{Value, json};
use dbops_plugin_sdk::{
    Context, EventType, Outputs, Problem, Step, StepError, StepResult, Target, export_plugin,
};
use dbops_probes::cluster;

use config::{Config, Mode};
use plan::{Saved, Wanted};
use probing::ProbeSettings;

/// The step.
pub struct RollingRestart;

impl Step for RollingRestart {
    type Config = Config;
    const NAME: &'static str = "rolling-restart";
    const DESCRIPTION: &'static str = "Restart the target's members one at a time in an engine-aware order, with pre-checks, waiting until each is back Ready";
    const OUTPUTS: &'static [(&'static str, &'static str)] = &[
        (
            "order",
            "the members restarted, in the order used (comma separated)",
        ),
        ("restarted", "how many members were restarted"),
        (
            "skipped",
            "members skipped because they already ran the wanted revision or config (comma separated)",
        ),
        (
            "member_seconds",
            "seconds from restart to Ready per member, e.g. zk-2=12.3,zk-1=9.8",
        ),
        ("total_seconds", "wall time of the step"),
    ];

    fn validate(config: &Config, target: &Target) -> Vec<Problem> {
        config::problems(config, target)
    }

    fn run(ctx: &Context<'_>, config: Config) -> StepResult<Outputs> {
        let started = Instant::now();
        let target = ctx.target().clone();
        let engine = Engine::parse(&target.engine).ok_or_else(|| {
            StepError::permanent(
                "InvalidConfig",
                format!("unknown engine {:?}", target.engine),
            )
        })?;
        let mut saved: Saved = ctx.state()?.unwrap_or_default();
        let workload = cluster::load_workload(ctx, &target)?;
        let settings = ProbeSettings::load(ctx, &config, &target, engine)?;
        let wanted = Wanted {
            rolling_revision: workload
                .update_revision
                .clone()
                .filter(|update| workload.current_revision.as_ref() != Some(update)),
            config_hash: config
                .config_hash_annotation
                .clone()
                .zip(config.config_hash.clone()),
        };
        ctx.info(&format!(
            "rolling restart of {} {}/{} ({} members, engine {engine}, mode {:?})",
            workload.kind, workload.namespace, workload.name, workload.replicas, config.mode
        ));
        if ctx.dry_run() {
            return roll::plan_only(ctx, &config, &settings, &workload, &wanted);
        }
        match config.mode {
            Mode::Delete => roll::by_deletion(
                ctx, &config, &target, &settings, workload, &wanted, &mut saved,
            )?,
            Mode::Template => roll::by_template(
                ctx, &config, &target, &settings, workload, &wanted, &mut saved,
            )?,
        }
        let mut outputs = Outputs::new();
        outputs.insert("order".into(), Value::String(saved.order()));
        outputs.insert("restarted".into(), json!(saved.done.len()));
        outputs.insert("skipped".into(), Value::String(saved.skipped.join(",")));
        outputs.insert(
            "member_seconds".into(),
            Value::String(saved.member_seconds()),
        );
        outputs.insert(
            "total_seconds".into(),
            json!((started.elapsed().as_secs_f64() * 10.0).round() / 10.0),
        );
        ctx.event(
            EventType::Normal,
            "RollingRestartDone",
            &format!(
                "restarted {} member(s) in order [{}], skipped [{}]",
                saved.done.len(),
                saved.order(),
                saved.skipped.join(",")
            ),
        );
        Ok(outputs)
    }
}

export_plugin!(RollingRestart);

/// Durations per member, for tests and benchmarks reading the outputs.
pub fn parse_member_seconds(text: &str) -> BTreeMap<String, f64> {
    text.split(',')
        .filter_map(|pair| pair.split_once('='))
        .filter_map(|(name, secs)| Some((name.to_string(), secs.parse().ok()?)))
        .collect()
}
